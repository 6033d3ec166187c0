"""What topology discovery needs of a Prometheus: a protocol the Prometheus adapter implements
(`integrations.prometheus.client.PrometheusClient`), and PromQL text helpers. Discovery depends on
this, not on the adapter, so the graph can be built from any source that answers instant
queries (and tests can feed it directly)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Protocol

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


class SourceError(Exception):
    """The series source could not answer (unreachable, slow, an error status, bad data)."""


class SeriesStream(Protocol):
    """An instant query's result, decoded while it downloads: iterate once for `(labels,
    value)`; afterwards the counters say what it cost."""

    warnings: list[str]
    series: int
    bytes: int
    wait_seconds: float
    read_seconds: float

    def __iter__(self) -> Iterator[tuple[dict[str, str], float]]: ...


class SeriesSource(Protocol):
    def external_labels_sync(self, timeout: float | None = None) -> dict[str, str]: ...

    def stream_query(
        self, promql: str, *, at: float | None = None, timeout: float | None = None
    ) -> SeriesStream: ...


def promql_string(value: str) -> str:
    """A PromQL string literal (double quotes; backslash, quote and control chars escaped)."""
    return json.dumps(value, ensure_ascii=False)


def matchers(labels: Mapping[str, str], *, regex: Mapping[str, str] | None = None) -> str:
    """`{a="1",b=~"x|y"}` from equality and regex matchers; invalid label names are skipped."""
    parts = [f"{k}={promql_string(v)}" for k, v in labels.items() if _LABEL_NAME.match(k)]
    parts += [f"{k}=~{promql_string(v)}" for k, v in (regex or {}).items() if _LABEL_NAME.match(k)]
    return "{" + ",".join(parts) + "}"
