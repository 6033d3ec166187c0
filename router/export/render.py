"""One entry point for every format: what the CLI and `GET /api/v1/incidents/{id}/timeline` call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from router.export.csvexport import render_csv
from router.export.html import render_html
from router.export.jsonexport import render_json
from router.export.markdown import render_markdown
from router.export.model import Timeline, TimelineRequestError, build
from router.export.report import build_report
from router.export.timefmt import zone

CONTENT_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}
FORMATS = tuple(CONTENT_TYPES)


def render(timeline: Timeline, fmt: str, tz: str | None = None) -> tuple[str, str]:
    if fmt not in CONTENT_TYPES:
        raise TimelineRequestError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    zone_info = zone(tz)
    if fmt == "md":
        body = render_markdown(build_report(timeline, zone_info))
    elif fmt == "json":
        body = render_json(timeline)  # always UTC: a stable format for other tools
    elif fmt == "html":
        body = render_html(timeline, zone_info)
    else:
        body = render_csv(timeline, zone_info)
    return CONTENT_TYPES[fmt], body


def render_timeline(
    events: Sequence[Mapping[str, Any]],
    notifications: Sequence[Mapping[str, Any]],
    incident_id: str,
    fmt: str,
    tz: str | None = None,
    *,
    outbox: Sequence[Mapping[str, Any]] | None = None,
    attempts: Sequence[Mapping[str, Any]] | None = None,
    origin: str = "the event log",
) -> tuple[str, str]:
    """(content type, body) of an incident's timeline.

    `events`: every decision event (Event.to_dict() rows, oldest first; at least those of the
    incident, of incidents merged into it, and the `alert_fired` events of its alerts, which
    carry no incident). `notifications`: the notification lines. `outbox`/`attempts`: rows of
    the service's outbox and outbound tables (dicts keyed by column name), for each message's
    result. Raises TimelineNotFound (-> 404) or TimelineRequestError (-> 400)."""
    if fmt not in CONTENT_TYPES:
        raise TimelineRequestError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    zone(tz)  # a bad zone is a bad request even when the incident does not exist
    timeline = build(events, notifications, incident_id, outbox=outbox, attempts=attempts, origin=origin)
    return render(timeline, fmt, tz)
