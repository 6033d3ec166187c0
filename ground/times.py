"""Times and durations as the contracts write them: RFC 3339 in UTC, Prometheus-style durations."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

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
