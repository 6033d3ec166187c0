"""The timeline as CSV: one row per timeline entry, a fixed header (see docs/export.md)."""

from __future__ import annotations

import csv
import io
from datetime import tzinfo

from ground.times import format_time
from router.export.model import Timeline

COLUMNS = (
    "at",
    "local_time",
    "incident",
    "category",
    "kind",
    "entity",
    "alertname",
    "fingerprint",
    "actor",
    "path",
    "message_action",
    "message_key",
    "message_result",
    "text",
)


def _cell(value: str) -> str:
    """A cell a spreadsheet would run as a formula (a note such as `=HYPERLINK(...)`) is
    quoted with a leading apostrophe (OWASP CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def render_csv(t: Timeline, tz: tzinfo | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(COLUMNS)
    for e in t.entries:
        local = e.at.astimezone(tz).isoformat(timespec="milliseconds") if tz else ""
        m = e.message
        writer.writerow(
            _cell(str(value))
            for value in (
                format_time(e.at),
                local,
                e.incident or "",
                e.category,
                e.kind,
                e.entity or "",
                e.alertname or "",
                e.fingerprint or "",
                e.actor or "",
                " > ".join(e.path or ()),
                m.action if m else "",
                (m.key or "") if m else "",
                m.result if m else "",
                e.text,
            )
        )
    return out.getvalue()
