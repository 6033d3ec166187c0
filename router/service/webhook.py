"""`POST /api/v1/alertmanager`: the Alertmanager webhook. Answers 200 only once the delivery is
durably committed to the event log.

Status codes, chosen for Alertmanager's retry rules (2xx done, 5xx retried, 4xx dropped):
- 401 bad or missing credentials (which part was wrong is not said);
- 413 body larger than `server.max_body_bytes`; 415 not `application/json`;
- 400 a payload that will never be valid: malformed JSON, not UTF-8, wrong `version`, a missing
  or mistyped field, an absurd time; the JSON body names the field:
  `{"error": "alerts.0.startsAt: ...", "field": "alerts.0.startsAt"}`;
- 408 the body did not arrive within `server.read_timeout` (slow client);
- 503 the event log cannot take the write now (locked, disk full, shutting down): retried;
- 500 anything unexpected (also retried by Alertmanager).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from ground.errors import InputError
from ground.httpio import ErrorAnswer, Refusal, error, read_body
from ground.jsonio import JsonError, loads
from ground.times import format_time, parse_time
from router.core.model import WebhookPayload, parse_webhook
from router.service.config import Settings
from router.service.store import StorageUnavailable

log = logging.getLogger("alert_router.webhook")

PATH = "/api/v1/alertmanager"
# Seconds the server keeps reading (and dropping) an unread body after answering 408/413, so
# that the client sees the answer rather than a reset; bounded so slow clients cannot hold on.
LINGER = 2.0
JSON_TYPES = frozenset({"application/json"})
# Characters some line readers split on, and what stands for each in a one-line body: in JSON
# that parsed, CR and LF stand only between tokens (a space does as well) and U+2028, U+2029 and
# U+0085 only inside strings (their escape reads the same).
LINE_BREAKS = {"\r": " ", "\n": " ", "\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def _digest(value: str | bytes) -> bytes:
    return hashlib.sha256(value.encode("utf-8") if isinstance(value, str) else value).digest()


class Authenticator:
    """Bearer token and/or basic auth, compared in constant time (digests of equal length, and
    no early exit between user name and password)."""

    def __init__(self, bearer: SecretStr | None, basic: tuple[str, SecretStr] | None) -> None:
        self._bearer = _digest(bearer.get_secret_value()) if bearer else None
        self._user = _digest(basic[0]) if basic else None
        self._password = _digest(basic[1].get_secret_value()) if basic else None

    @property
    def enabled(self) -> bool:
        return self._bearer is not None or self._user is not None

    def check(self, header: str | None) -> bool:
        if not self.enabled:
            return True
        if not header:
            return False
        scheme, _, credentials = header.strip().partition(" ")
        credentials = credentials.strip()
        scheme = scheme.lower()
        if scheme == "bearer" and self._bearer is not None:
            return hmac.compare_digest(_digest(credentials), self._bearer)
        if scheme == "basic" and self._user is not None and self._password is not None:
            try:
                decoded = base64.b64decode(credentials, validate=True)
            except (binascii.Error, ValueError):
                return False
            user, sep, password = decoded.partition(b":")
            user_ok = hmac.compare_digest(_digest(user), self._user)
            password_ok = hmac.compare_digest(_digest(password), self._password)
            return bool(sep) and user_ok & password_ok
        return False


def unauthorized(header: str | None) -> web.Response:
    """401 without telling the client what was wrong (the log says)."""
    return ErrorAnswer(
        401,
        "unauthorized",
        why="credentials refused" if header else "no credentials",
        headers={"WWW-Authenticate": 'Bearer realm="alert-router", Basic realm="alert-router"'},
    )


def one_line(text: str) -> str:
    """A parsed body on one line (the recorded stream is one delivery per line): the same value,
    every other character as received (re-serialising would rewrite numbers and escapes)."""
    for raw, same in LINE_BREAKS.items():
        if raw in text:
            text = text.replace(raw, same)
    return text


def field_of(message: str) -> str:
    """`alerts.0.startsAt: Field required` -> `alerts.0.startsAt` (router.model's error format)."""
    head, sep, _ = message.partition(": ")
    return head if sep and " " not in head else "(body)"


# The common shape of Alertmanager's times: UTC with a Z. Such strings compare like the times
# they name, to the second, which is all the sanity limits need (no parsing on the hot path).
_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _within(value: str, low: datetime, high: datetime, low_text: str, high_text: str) -> bool:
    if _UTC.fullmatch(value):
        return low_text <= value[:19] <= high_text
    moment = parse_time(value)
    return moment is not None and low <= moment <= high


def check_times(payload: WebhookPayload, now: datetime, settings: Settings) -> None:
    """Refuse times that are certainly garbage (documented in docs/configuration.md)."""
    limits = settings.webhook
    earliest = parse_time(limits.earliest)
    assert earliest is not None
    latest_start = now + limits.max_clock_skew
    latest_end = now + limits.max_ends_ahead
    low = format_time(earliest)[:19]
    high_start = format_time(latest_start)[:19]
    high_end = format_time(latest_end)[:19]
    for i, alert in enumerate(payload.alerts):
        if not _within(alert.startsAt, earliest, latest_start, low, high_start):
            raise InputError(
                f"alerts.{i}.startsAt: {alert.startsAt} is outside [{limits.earliest}, now + "
                f"{_span(limits.max_clock_skew)}]"
            )
        ends = alert.endsAt
        if not ends.startswith("0001-01-01") and not _within(ends, earliest, latest_end, low, high_end):
            raise InputError(
                f"alerts.{i}.endsAt: {alert.endsAt} is outside [{limits.earliest}, now + "
                f"{_span(limits.max_ends_ahead)}]"
            )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds}s"


class WebhookHandler:
    def __init__(self, service: Any, auth: Authenticator) -> None:
        self.service = service
        self.settings: Settings = service.settings
        self.auth = auth
        self.metrics = service.metrics
        self._by_status: dict[int, Any] = {}
        self._recorded = self.metrics.deliveries.labels("webhook")

    async def handle(self, request: web.Request) -> web.Response:
        response = await self._handle(request)
        counter = self._by_status.get(response.status)
        if counter is None:
            counter = self._by_status[response.status] = self.metrics.requests.labels(str(response.status))
        counter.inc()
        return response

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        header = request.headers.get("Authorization")
        if not self.auth.check(header):
            return unauthorized(header)
        if request.content_type not in JSON_TYPES:
            return error(415, f"content type must be application/json, not {request.content_type or 'none'}")
        server = self.settings.server
        if self.service.stopping:
            return error(503, "shutting down, retry")
        try:
            body = await read_body(request, server.max_body_bytes, server.read_timeout.total_seconds())
        except Refusal as refusal:
            return refusal.response
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return error(400, "the body is not UTF-8", "(body)")
        try:
            # The rebuild reads the stored line with this same reader: what is accepted here
            # reads back there.
            payload = parse_webhook(loads(text))
            check_times(payload, self.service.clock.peek(), self.settings)
        except JsonError as exc:
            return error(400, str(exc), exc.field)
        except InputError as exc:
            message = str(exc)
            return error(400, message, field_of(message))
        text = one_line(text)
        pending = self.service.submit_delivery(payload, text.strip())
        try:
            await self._committed(pending.write)
        except StorageUnavailable as exc:
            return error(503, f"event log unavailable, retry: {exc}")
        except Exception as exc:
            log.error("webhook: delivery not recorded: %r", exc)
            return error(500, "delivery not recorded, retry")
        self._recorded.inc()
        self.metrics.alerts.inc(len(payload.alerts))
        self.metrics.commit_seconds.observe(time.monotonic() - arrived)
        return web.json_response({"status": "recorded", "seq": pending.seq, "alerts": len(payload.alerts)})

    async def _committed(self, write: Any) -> None:
        """Wait for the commit; past `commit_timeout` withdraw the write if it has not started
        (then 503 and nothing is stored), else wait for its outcome (it is being committed)."""
        timeout = self.settings.storage.commit_timeout.total_seconds()
        try:
            async with asyncio.timeout(timeout):
                await write.wait()
        except TimeoutError:
            if self.service.writer.cancel(write):
                raise StorageUnavailable("the event log did not commit in time") from None
            await write.wait()
