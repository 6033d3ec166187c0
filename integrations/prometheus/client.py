"""A Prometheus HTTP API client for instant queries, built on prometheus-api-client.

Public API (everything blocking is also offered as a coroutine that runs it in a worker thread,
so the event loop never waits on Prometheus nor parses its JSON):

    client = PrometheusClient("http://prometheus:9090", timeout=30.0, headers=None, verify=True)
    rows = await client.query('up{job="apiserver"}', timeout=5.0)   # -> list[Sample]
    rows = client.query_sync(...)                                    # the same, blocking
    stream = client.stream_query("kube_pod_info")                    # blocking, see below
    for labels, value in stream: ...                                 # stream.warnings after the loop
    await client.ready()                                             # -> bool (GET /-/ready)
    await client.external_labels()                                   # -> dict (status/config)
    client.close()

Every failure (connection refused, timeout, HTTP status other than 200, `status: error`,
malformed or truncated JSON) raises `PrometheusError`; its message names the query.

Small answers (the second witness: a handful of series) go through
`prometheus_api_client.PrometheusConnect.custom_query`. Large answers (topology discovery: one
`kube_pod_info` of a 150,000-pod cluster is ~70 MB of JSON) go through `stream_query`, which
reads the response of `/api/v1/query` in chunks with the same requests session and decodes the
`result` array one element at a time. `custom_query` would hold the whole body and the whole
decoded list at once (`response.json()`); the stream holds one chunk of raw JSON (256 KiB) and
one decoded element, and the caller (the topology builder) keeps only what it needs from each
element. Why a worker thread and requests rather than aiohttp on the event loop: decoding and
building are CPU work; done on the loop they would stall webhook handling for seconds, done in
a thread they share the interpreter with it in 5 ms slices (see docs/prometheus.md).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from prometheus_api_client import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from topology.promql import SourceError

CHUNK_BYTES = 256 * 1024
# One result element never comes close to this; a buffer beyond it means a broken response.
MAX_ELEMENT_BYTES = 16 * 1024 * 1024


class PrometheusError(SourceError):
    """Prometheus could not answer a query (unreachable, slow, an error status, bad JSON)."""


@dataclass(slots=True)
class Sample:
    """One series of an instant vector: its labels (without `__name__`) and value."""

    labels: dict[str, str]
    value: float
    name: str = ""


@dataclass
class QueryStream:
    """An instant query whose result is decoded while it downloads. Iterate once (blocking, in a
    worker thread); yields `(labels, value)` with `__name__` removed from the labels.
    After the loop: `warnings` (Prometheus/Thanos warnings, e.g. a partial response),
    `series` (elements read), `bytes` (body size), `wait_seconds` (request sent -> headers
    received: Prometheus' own evaluation) and `read_seconds` (download and decoding)."""

    client: PrometheusClient
    query: str
    at: float | None = None
    timeout: float | None = None
    warnings: list[str] = field(default_factory=list)
    series: int = 0
    bytes: int = 0
    wait_seconds: float = 0.0
    read_seconds: float = 0.0

    def __iter__(self) -> Iterator[tuple[dict[str, str], float]]:
        return self.client._stream(self)


class PrometheusClient:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        verify: bool = True,
        retries: int = 1,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.chunk_bytes = chunk_bytes
        self.session = requests.Session()
        self.session.verify = verify
        # Retries only for connection failures and gateway errors, quickly: the caller (refresher,
        # witness) has its own schedule and deadline.
        retry = Retry(
            total=retries,
            backoff_factor=0.2,
            status_forcelist=(502, 503, 504),
            allowed_methods=("GET", "POST"),
            raise_on_status=False,
        )
        self.connect = PrometheusConnect(
            url=self.url,
            headers=self.headers or {},
            disable_ssl=not verify,
            retry=retry,
            session=self.session,
            timeout=timeout,  # type: ignore[arg-type]  # hinted int; requests takes float seconds
        )

    def close(self) -> None:
        self.connect.close()

    # -- small answers -------------------------------------------------------------------------

    async def query(
        self, promql: str, *, at: float | None = None, timeout: float | None = None
    ) -> list[Sample]:
        """Instant query in a worker thread; the result is small (it is held whole)."""
        return await asyncio.to_thread(self.query_sync, promql, at=at, timeout=timeout)

    def query_sync(
        self, promql: str, *, at: float | None = None, timeout: float | None = None
    ) -> list[Sample]:
        params = {"time": f"{at:.3f}"} if at is not None else {}
        seconds = timeout or self.timeout
        try:
            rows = self.connect.custom_query(promql, params=params, timeout=seconds)  # type: ignore[arg-type]
        except PrometheusApiClientException as exc:
            raise PrometheusError(f"query {promql!r}: {_shorten(str(exc))}") from None
        except (requests.RequestException, ValueError) as exc:
            raise PrometheusError(f"query {promql!r}: {_describe(exc)}") from None
        if not isinstance(rows, list):
            raise PrometheusError(f"query {promql!r}: not an instant vector")
        return [_sample(row, promql) for row in rows]

    async def ready(self, timeout: float | None = None) -> bool:
        def probe() -> bool:
            try:
                response = self.session.get(
                    f"{self.url}/-/ready", headers=self.headers, timeout=timeout or self.timeout
                )
            except requests.RequestException:
                return False
            return response.status_code == 200

        return await asyncio.to_thread(probe)

    async def external_labels(self, timeout: float | None = None) -> dict[str, str]:
        """`global.external_labels` of this Prometheus ({} if it has none or cannot tell, e.g.
        a Thanos querier, which has no configuration endpoint)."""
        return await asyncio.to_thread(self.external_labels_sync, timeout)

    def external_labels_sync(self, timeout: float | None = None) -> dict[str, str]:
        try:
            response = self.session.get(
                f"{self.url}/api/v1/status/config", headers=self.headers, timeout=timeout or self.timeout
            )
            if response.status_code != 200:
                return {}
            text = response.json()["data"]["yaml"]
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return {}
        import yaml

        try:
            config = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            return {}
        labels = (config.get("global") or {}).get("external_labels") or {}
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}

    # -- large answers -------------------------------------------------------------------------

    def stream_query(
        self, promql: str, *, at: float | None = None, timeout: float | None = None
    ) -> QueryStream:
        """Instant query decoded element by element (blocking: iterate it in a worker thread).
        `timeout` bounds the whole request, download included."""
        return QueryStream(self, promql, at, timeout)

    def _stream(self, stream: QueryStream) -> Iterator[tuple[dict[str, str], float]]:
        promql = stream.query
        timeout = stream.timeout or self.timeout
        params = {"query": promql}
        if stream.at is not None:
            params["time"] = f"{stream.at:.3f}"
        started = time.perf_counter()
        deadline = started + timeout
        try:
            response = self.session.get(
                f"{self.url}/api/v1/query", params=params, headers=self.headers, stream=True, timeout=timeout
            )
        except requests.RequestException as exc:
            raise PrometheusError(f"query {promql!r}: {_describe(exc)}") from None
        stream.wait_seconds = time.perf_counter() - started
        with response:
            if response.status_code != 200:
                raise PrometheusError(f"query {promql!r}: {_http_error(response)}")
            chunks = response.iter_content(self.chunk_bytes)
            decoder = _VectorDecoder(promql)
            clock = time.perf_counter
            # Time spent by the consumer while this generator is suspended is not read time.
            suspended = 0.0
            try:
                for chunk in chunks:
                    stream.bytes += len(chunk)
                    for element in decoder.feed(chunk):
                        stream.series += 1
                        item = _element(element, promql)
                        paused = clock()
                        yield item
                        suspended += clock() - paused
                    if clock() > deadline:
                        raise PrometheusError(f"query {promql!r}: no complete answer within {timeout:g}s")
                for element in decoder.finish():
                    stream.series += 1
                    item = _element(element, promql)
                    paused = clock()
                    yield item
                    suspended += clock() - paused
            except requests.RequestException as exc:
                raise PrometheusError(f"query {promql!r}: {_describe(exc)}") from None
            finally:
                stream.read_seconds = clock() - started - stream.wait_seconds - suspended
            stream.warnings.extend(decoder.warnings)


class _VectorDecoder:
    """Incremental decoder of `{"status":"success","data":{"resultType":"vector","result":[...]}}`.

    The envelope before the result array is completed (`]}}`) and decoded to check the status and
    type; the elements are decoded one by one with `JSONDecoder.raw_decode`; the tail after the
    array (`}, "warnings": [...]}`) is decoded at the end. Key order is not assumed beyond
    `result` being the last key of `data`, which is how Prometheus and Thanos write it."""

    _RESULT = re.compile(r'"result"\s*:\s*\[')

    def __init__(self, query: str) -> None:
        self.query = query
        self.text = codecs.getincrementaldecoder("utf-8")()
        self.buffer = ""
        self.state = "head"  # head -> items -> tail
        self.json = json.JSONDecoder()
        self.warnings: list[str] = []

    def feed(self, chunk: bytes) -> Iterator[Any]:
        self.buffer += self.text.decode(chunk)
        if self.state == "head" and not self._head():
            return
        if self.state == "items":
            yield from self._items()

    def finish(self) -> Iterator[Any]:
        """The elements left at the end of the body; then checks that the body was complete."""
        self.buffer += self.text.decode(b"", final=True)
        if self.state == "head":
            self._head(final=True)
        if self.state == "items":
            yield from self._items()
            if self.state == "items":
                raise self._error("truncated response (the result array is not closed)")
        envelope = self._decode('{"data":{"result":[]' + self.buffer, "the end of the response")
        self.warnings = [str(w) for w in envelope.get("warnings") or []]

    def _head(self, final: bool = False) -> bool:
        match = self._RESULT.search(self.buffer)
        if match is None:
            if final or len(self.buffer) > 64 * 1024:
                envelope = self._decode(self.buffer, "the response (truncated?)")
                raise self._error(_status_error(envelope) or "no result array in the response")
            return False
        envelope = self._decode(self.buffer[: match.end()] + "]}}", "the response envelope")
        problem = _status_error(envelope)
        if problem:
            raise self._error(problem)
        kind = (envelope.get("data") or {}).get("resultType")
        if kind != "vector":
            raise self._error(f"result type {kind!r}, expected an instant vector")
        self.buffer = self.buffer[match.end() :]
        self.state = "items"
        return True

    def _items(self) -> Iterator[Any]:
        buffer, pos, end = self.buffer, 0, len(self.buffer)
        raw_decode = self.json.raw_decode
        try:
            while pos < end:
                char = buffer[pos]
                if char in ", \t\r\n":
                    pos += 1
                    continue
                if char == "]":
                    self.state = "tail"
                    pos += 1
                    break
                try:
                    element, pos = raw_decode(buffer, pos)
                except json.JSONDecodeError:
                    # Most likely the element continues in the next chunk; `finish` tells apart.
                    if end - pos > MAX_ELEMENT_BYTES:
                        raise self._error("a result element is larger than 16 MiB") from None
                    break
                yield element
        finally:
            self.buffer = buffer[pos:]

    def _decode(self, text: str, what: str) -> dict[str, Any]:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._error(f"malformed JSON in {what}: {exc.msg}") from None
        if not isinstance(value, dict):
            raise self._error(f"{what} is not a JSON object")
        return value

    def _error(self, message: str) -> PrometheusError:
        return PrometheusError(f"query {self.query!r}: {message}")


def _status_error(envelope: dict[str, Any]) -> str:
    if envelope.get("status") == "success":
        return ""
    return f"{envelope.get('errorType') or 'error'}: {envelope.get('error') or 'status is not success'}"


def _element(element: Any, query: str) -> tuple[dict[str, str], float]:
    try:
        labels = element["metric"]
        labels.pop("__name__", None)
        return labels, float(element["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        raise PrometheusError(f"query {query!r}: malformed result element {str(element)[:200]}") from None


def _sample(row: Any, query: str) -> Sample:
    try:
        labels = dict(row["metric"])
        name = labels.pop("__name__", "")
        return Sample(labels, float(row["value"][1]), name)
    except (KeyError, IndexError, TypeError, ValueError):
        raise PrometheusError(f"query {query!r}: malformed result element {str(row)[:200]}") from None


def _http_error(response: requests.Response) -> str:
    body = response.raw.read(64 * 1024, decode_content=True) or b""
    detail = ""
    try:
        payload = json.loads(body)
        if isinstance(payload, dict):
            detail = f"{payload.get('errorType', '')}: {payload.get('error', '')}".strip(": ")
    except ValueError:
        detail = body.decode("utf-8", "replace").strip()
    return f"HTTP {response.status_code}" + (f" ({_shorten(detail)})" if detail else "")


def _describe(exc: Exception) -> str:
    # With a retry adapter, requests reports a read timeout as a ConnectionError.
    # (urllib3's NewConnectionError is a subclass of its ConnectTimeoutError: refused comes first.)
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return f"cannot connect ({_shorten(str(exc))})"
    if isinstance(exc, requests.Timeout) or isinstance(reason, urllib3.exceptions.TimeoutError):
        return f"timed out ({_shorten(str(exc))})"
    if isinstance(exc, requests.ConnectionError):
        return f"cannot connect ({_shorten(str(exc))})"
    return f"{type(exc).__name__}: {_shorten(str(exc))}"


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
