"""Times and durations as people read them in a post-mortem: UTC, and optionally a local zone."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from router.core.wording import span
from router.export.model import TimelineRequestError


def zone(name: str | None) -> tzinfo | None:
    """An IANA zone name (`Europe/Paris`) -> tzinfo; None/""/"UTC" -> None (UTC only)."""
    if not name or name.upper() in ("UTC", "Z"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimelineRequestError(
            f"--tz: unknown time zone {name!r} (use an IANA name such as Europe/Paris)"
        ) from None


def zone_label(tz: tzinfo | None, moment: datetime | None = None) -> str:
    if tz is None:
        return "UTC"
    return getattr(tz, "key", None) or (moment.astimezone(tz).tzname() if moment else None) or str(tz)


def stamp(value: datetime | None, tz: tzinfo | None = None, *, date: bool = True) -> str:
    """`2026-10-06 01:06:00` (seconds: post-mortems do not need milliseconds)."""
    if value is None:
        return "—"
    local = value.astimezone(tz or UTC)
    return local.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


def with_zone(value: datetime | None, tz: tzinfo | None = None) -> str:
    """`2026-10-06 01:06:00 UTC (03:06:00 CEST)`."""
    if value is None:
        return "—"
    text = f"{stamp(value)} UTC"
    if tz is not None:
        local = value.astimezone(tz)
        text += f" ({local.strftime('%Y-%m-%d %H:%M:%S')} {local.tzname()})"
    return text


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 0:
        return "-" + span(-seconds)
    return span(seconds)
