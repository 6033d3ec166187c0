"""Data the engine consumes and produces: Alertmanager deliveries in, notifications out.

Parsing is strict about what the contract needs (version "4", alert fields) and lenient about
what it does not (unknown fields are kept, so a recorded delivery re-serialises unchanged).

`loads` is the one JSON reader for what comes from outside: webhook and API bodies, Slack's
interaction payloads, Alertmanager's API, and the recorded lines read back by the rebuild at
start and by `replay`. One parser with one strictness, so that whatever the service accepted and
stored, the rebuild reads back the same way.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import from_json

# Alertmanager writes the Go zero time for "not ended"; it must never be read as year 1.
ZERO_TIME = "0001-01-01T00:00:00Z"


@functools.lru_cache(maxsize=1 << 16)  # every re-send repeats its times: parse each once
def parse_time(value: str) -> datetime | None:
    """RFC 3339 -> aware UTC datetime; the Go zero time -> None."""
    if value is None or value == "" or value.startswith("0001-01-01"):
        return None
    try:
        parsed = datetime.fromisoformat(value)  # 3.11 reads Z and any fraction: the fast path
    except ValueError:
        parsed = _parse_time_slow(value)
    if parsed.tzinfo is None:
        raise ValueError(f"time without timezone: {value!r}")
    return parsed.astimezone(UTC)


def _parse_time_slow(value: str) -> datetime:
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    # Go may print up to 9 fractional digits; Python accepts at most 6.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            digits += rest[i]
            i += 1
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[i:]}"
    return datetime.fromisoformat(text)


def format_time(value: datetime) -> str:
    """Aware datetime -> RFC 3339 UTC with millisecond precision, as in the contract."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_duration(value: str | int | float) -> timedelta:
    """Prometheus-style duration (`90s`, `5m`, `1h30m`, `2d`) or seconds -> timedelta."""
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    text = value.strip()
    if not text:
        raise ValueError("empty duration")
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    total = 0.0
    number = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else ch
        if unit not in units or not number:
            raise ValueError(f"invalid duration {value!r} (use e.g. 30s, 5m, 1h)")
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    if number:
        raise ValueError(f"invalid duration {value!r}: number {number!r} has no unit")
    return timedelta(seconds=total)


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60}m"
    return f"{seconds}s"


class AlertPayload(BaseModel):
    """One alert of a webhook delivery, as Alertmanager sends it."""

    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str
    endsAt: str = ZERO_TIME
    generatorURL: str = ""
    fingerprint: str

    @field_validator("startsAt")
    @classmethod
    def _starts_at_is_time(cls, value: str) -> str:
        if parse_time(value) is None:
            raise ValueError("startsAt must be a real RFC 3339 time")
        return value

    @field_validator("endsAt")
    @classmethod
    def _ends_at_is_time(cls, value: str) -> str:
        parse_time(value)
        return value

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint_not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("fingerprint must not be empty")
        return value


class WebhookPayload(BaseModel):
    """An Alertmanager webhook body (payload version 4)."""

    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    groupKey: str = ""
    status: Literal["firing", "resolved"] = "firing"
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    truncatedAlerts: int = 0
    alerts: list[AlertPayload]


class Delivery(BaseModel):
    """One recorded webhook delivery: when it arrived and what it carried."""

    model_config = ConfigDict(extra="allow")

    received_at: str
    payload: WebhookPayload

    @field_validator("received_at")
    @classmethod
    def _received_at_is_time(cls, value: str) -> str:
        if parse_time(value) is None:
            raise ValueError("received_at must be a real RFC 3339 time")
        return value

    @property
    def received(self) -> datetime:
        received = parse_time(self.received_at)
        assert received is not None  # guaranteed by the validator
        return received


class InputError(ValueError):
    """Bad input with a message that names where it came from (field, file, line)."""


# ------------------------------------------------------------------------------ JSON from outside

MAX_JSON_DEPTH = 200  # jiter's recursion limit
MAX_INT_DIGITS = 4300  # jiter's, and Python's int/str conversion limit

_WHERE = re.compile(r" at line (\d+) column (\d+)$")
_SURROGATE = re.compile("[\ud800-\udfff]")
# jiter's messages for a \u escape that is half of a surrogate pair.
_SURROGATE_ERRORS = ("unexpected end of hex escape", "lone leading surrogate in hex escape")


class JsonError(InputError):
    """Input that is not acceptable JSON. `field` is the dotted path of the offending value (or
    of the object holding an offending key) when it can be told, else `(body)`."""

    def __init__(self, problem: str, field: str = "(body)") -> None:
        super().__init__(problem if field == "(body)" else f"{field}: {problem}")
        self.problem = problem
        self.field = field


def loads(data: str | bytes) -> Any:
    """JSON text (bytes: UTF-8) -> value, with pydantic-core's parser (jiter, the one pydantic
    validates JSON with) and NaN/Infinity refused. Unlike Python's `json.loads` it refuses, with
    the place named (JsonError):
    - a lone UTF-16 surrogate escape (`"\\ud800"`) in a key or a value: not Unicode text, which
      SQLite cannot store;
    - nesting deeper than MAX_JSON_DEPTH levels (`json.loads` recurses into a RecursionError);
    - an integer of more than MAX_INT_DIGITS digits (`json.loads` raises a bare ValueError);
    and, like it, malformed JSON, trailing data and raw control characters in strings."""
    try:
        return from_json(data, allow_inf_nan=False)
    except ValueError as exc:
        raise _json_error(str(exc), data) from None


def _json_error(message: str, data: str | bytes) -> JsonError:
    found = _WHERE.search(message)
    where = f" at line {found.group(1)} column {found.group(2)}" if found else ""
    what = message[: found.start()] if found else message
    if what == "recursion limit exceeded":
        return JsonError(f"nested deeper than {MAX_JSON_DEPTH} levels{where}")
    if what == "number out of range":
        return JsonError(f"an integer of more than {MAX_INT_DIGITS} digits{where}")
    if what in _SURROGATE_ERRORS:
        located = _locate_surrogate(data)
        if located is None:
            return JsonError(f"a lone UTF-16 surrogate escape is not Unicode text{where}")
        field, char = located
        return JsonError(f"a lone UTF-16 surrogate (\\u{ord(char):04x}) is not Unicode text{where}", field)
    return JsonError(f"malformed JSON: {message}")


def _locate_surrogate(data: str | bytes) -> tuple[str, str] | None:
    """(path, character) of the first lone surrogate, read with the lenient `json.loads`: only
    on this error path, for the field name. None when even that reader cannot tell."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[str, Any]] = [("(body)", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found:
                return path, found.group()
        elif isinstance(value, dict):
            for key in value:
                found = _SURROGATE.search(key)
                if found:  # a key cannot be named by a path: the object holding it is
                    return path, found.group()
            stack.extend(reversed([(_join(path, key), item) for key, item in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([(_join(path, str(i)), item) for i, item in enumerate(value)]))
    return None


def _join(path: str, key: str) -> str:
    return key if path == "(body)" else f"{path}.{key}"


def describe_validation_error(error: ValidationError) -> str:
    """First pydantic error as `field.path: message`, short enough for a log line or HTTP body."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "(body)"
    return f"{location}: {first['msg']}"


def parse_delivery_line(line: str) -> Delivery:
    """One JSON line of a recorded stream -> Delivery, or InputError naming the field."""
    try:
        # The webhook's reader: a line the service recorded always reads back.
        return Delivery.model_validate(loads(line))
    except JsonError as exc:
        raise InputError(f"not valid JSON ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "model_type" and not first["loc"]:
            raise InputError("a line must be a JSON object with received_at and payload") from None
        raise InputError(describe_validation_error(exc)) from None
    except ValueError as exc:
        raise InputError(str(exc)) from None


def parse_webhook(raw: Any) -> WebhookPayload:
    """A decoded webhook body -> WebhookPayload, or InputError naming the field."""
    if not isinstance(raw, dict):
        raise InputError("(body): the payload must be a JSON object")
    try:
        return WebhookPayload.model_validate(raw)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc)) from None
    except ValueError as exc:
        raise InputError(str(exc)) from None


def canonical_json(value: Any) -> str:
    """Deterministic compact JSON used for every line the router writes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False)
