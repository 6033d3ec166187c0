"""The timeline chart as inline SVG: one lane per entity (the root on top), a bar per alert from
fire to resolve, and markers for the decisions, the human actions and the messages.

Plain SVG with <title> tooltips: no script, no external resource, prints as drawn."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo
from html import escape

from router.core.wording import describe
from router.export.model import Alert, Entry, Timeline
from router.export.timefmt import stamp, zone_label

WIDTH = 1000
LABEL_W = 250
PLOT_X0 = 262
PLOT_X1 = WIDTH - 16
AXIS_Y = 28
TRACK_Y = 38
TRACK_H = 36
# Rows of the incident track: decisions on top, then human actions, then messages.
TRACK_ROWS = {"decision": 9, "human": 18, "message": 27}
LANE_H = 24
STEPS = [
    timedelta(seconds=s)
    for s in (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
]
# Moments worth a vertical guide across every lane.
GUIDES = {"paged": "paged", "acknowledged": "acknowledged", "resolved": "resolved", "noticed": "resolved"}
SHAPES = {"human": "diamond", "message": "square", "decision": "circle"}


class Scale:
    """Time -> x within the plot."""

    def __init__(self, start: datetime, end: datetime) -> None:
        if end <= start:
            end = start + timedelta(minutes=1)
        pad = (end - start) * 0.03
        self.start, self.end = start - pad, end + pad
        self.seconds = (self.end - self.start).total_seconds()

    def x(self, moment: datetime) -> float:
        fraction = (moment - self.start).total_seconds() / self.seconds
        return round(PLOT_X0 + fraction * (PLOT_X1 - PLOT_X0), 1)

    def ticks(self, most: int = 10) -> list[datetime]:
        step = next((s for s in STEPS if self.seconds / s.total_seconds() <= most), STEPS[-1])
        seconds = int(step.total_seconds())
        epoch = int(self.start.timestamp())
        first = epoch - epoch % seconds + seconds
        out = []
        moment = datetime.fromtimestamp(first, tz=self.start.tzinfo)
        while moment <= self.end:
            out.append(moment)
            moment += step
        return out


def span_of(t: Timeline) -> tuple[datetime, datetime]:
    moments = [e.at for e in t.entries]
    for alert in t.alerts:
        moments.append(alert.started)
        if alert.ended:
            moments.append(alert.ended)
    if not moments:
        moments = [t.opened_at]
    return min(moments), max(moments)


_FQDN = re.compile(r"\b([a-z][a-z0-9-]*)(?:\.[a-z][a-z0-9-]*)+\b")


def label(entity: str, limit: int) -> str:
    """An entity in words, short enough for a lane or a box: host names lose their domain
    (`ip-10-0-0-6.eu-west-1.compute.internal` -> `ip-10-0-0-6`) and an over-long name keeps its
    start and its end (`pod shop/billing-9…-mln99`), where replicas differ."""
    text = _FQDN.sub(lambda m: m.group(1), describe(entity))
    if len(text) <= limit:
        return text
    head = (limit - 1) * 3 // 5
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def _marker(shape: str, x: float, y: float, size: float, css: str, title: str) -> str:
    tip = f"<title>{escape(title)}</title>"
    if shape == "diamond":
        points = f"{x},{y - size} {x + size},{y} {x},{y + size} {x - size},{y}"
        return f'<polygon class="{css}" points="{points}">{tip}</polygon>'
    if shape == "square":
        s = size * 0.8
        return f'<rect class="{css}" x="{x - s}" y="{y - s}" width="{2 * s}" height="{2 * s}">{tip}</rect>'
    if shape == "triangle":
        points = f"{x},{y - size} {x + size},{y + size * 0.8} {x - size},{y + size * 0.8}"
        return f'<polygon class="{css}" points="{points}">{tip}</polygon>'
    if shape == "cross":
        d = f"M{x - size},{y - size}L{x + size},{y + size}M{x - size},{y + size}L{x + size},{y - size}"
        return f'<path class="{css}" d="{d}">{tip}</path>'
    return f'<circle class="{css}" cx="{x}" cy="{y}" r="{size}">{tip}</circle>'


def _rows(alerts: list[Alert], end: datetime) -> dict[int, int]:
    """Row (1-based) of each alert's bar in its lane: bars that overlap in time stack, a re-fire
    after a resolve reuses the row (greedy interval colouring)."""
    rows: dict[int, int] = {}
    ends: list[datetime] = []
    for alert in sorted(alerts, key=lambda a: (a.started, a.fingerprint)):
        stop = alert.ended or end
        for index, last in enumerate(ends):
            if last <= alert.started:
                ends[index] = stop
                rows[id(alert)] = index + 1
                break
        else:
            ends.append(stop)
            rows[id(alert)] = len(ends)
    return rows


def _tip(entry: Entry, tz: tzinfo | None) -> str:
    when = stamp(entry.at) + " UTC" + (f" / {stamp(entry.at, tz)} {zone_label(tz)}" if tz else "")
    text = entry.text + (f" — {entry.message.result}" if entry.message else "")
    return f"{when}: {text}"


def _track_marker(entry: Entry) -> tuple[str, str] | None:
    """(shape, css class) of an incident-level entry on the top track, or None."""
    if entry.category == "human":
        return "diamond", f"m-human m-{entry.kind}"
    if entry.category == "message":
        action = entry.message.action if entry.message else "update"
        return "square", f"m-message m-{action}"
    if entry.kind == "paged":
        return "triangle", "m-paged"
    if entry.kind in ("resolved", "noticed", "heartbeat_restored"):
        return "circle", "m-resolved"
    if entry.kind in (
        "incident_opened",
        "root_inferred",
        "merged",
        "absorbed",
        "root_reattributed",
        "reopened",
    ):
        return "circle", f"m-decision m-{entry.kind}"
    if entry.kind in ("grace_elapsed", "flapping", "page_deferred", "heartbeat_missing"):
        return "circle", f"m-decision m-{entry.kind}"
    return None


def _lane_marker(entry: Entry) -> tuple[str, str] | None:
    if entry.kind == "symptom_attached":
        return "circle", "m-attached"
    if entry.kind == "root_alert":
        return "circle", "m-root-alert"
    if entry.kind == "symptom_detached":
        return "cross", "m-detached"
    if entry.kind in ("root_recovered", "root_refired", "flapping"):
        return "diamond", f"m-lane m-{entry.kind}"
    return None


def render_chart(t: Timeline, tz: tzinfo | None = None) -> str:
    lanes = t.entities()
    start, end = span_of(t)
    scale = Scale(start, end)
    lane_top = TRACK_Y + TRACK_H + 8
    height = lane_top + LANE_H * len(lanes) + 30
    out: list[str] = [
        f'<svg class="timeline-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-label="Timeline of incident {escape(t.id)}: '
        f'{len(lanes)} entities">',
        "<defs>",
        '<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)">'
        '<rect width="6" height="6" class="hatch-bg"/><line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/>'
        "</pattern>",
        "</defs>",
    ]
    # Axis and grid.
    out.append('<g class="axis">')
    for tick in scale.ticks():
        x = scale.x(tick)
        hhmm = stamp(tick, tz, date=False)[:5]
        out.append(f'<line class="grid" x1="{x}" y1="{AXIS_Y + 4}" x2="{x}" y2="{height - 24}"/>')
        out.append(f'<text class="tick" x="{x}" y="{AXIS_Y}" text-anchor="middle">{hhmm}</text>')
    out.append(f'<text class="axis-label" x="8" y="{AXIS_Y}">time ({escape(zone_label(tz, start))})</text>')
    out.append("</g>")
    # The incident track: decisions, human actions, messages.
    ty = TRACK_Y + TRACK_H / 2
    out.append('<g class="track" data-track="incident">')
    out.append(f'<rect class="track-bg" x="0" y="{TRACK_Y}" width="{WIDTH}" height="{TRACK_H}"/>')
    out.append(f'<text class="lane-label track-label" x="8" y="{ty + 4}">incident {escape(t.id)}</text>')
    for entry in t.entries:
        found = _track_marker(entry)
        if found is not None:
            shape, css = found
            y = TRACK_Y + TRACK_ROWS.get(entry.category, 9)
            out.append(_marker(shape, scale.x(entry.at), y, 5, f"marker {css}", _tip(entry, tz)))
    out.append("</g>")
    # One lane per entity.
    by_entity: dict[str, list] = {}
    for alert in t.alerts:
        by_entity.setdefault(alert.entity, []).append(alert)
    lane_entries: dict[str, list[Entry]] = {}
    for entry in t.entries:
        if entry.entity and _lane_marker(entry):
            lane_entries.setdefault(entry.entity, []).append(entry)
    for index, entity in enumerate(lanes):
        y = lane_top + index * LANE_H
        role = "root" if entity == t.root else "symptom"
        out.append(f'<g class="lane lane-{role}" data-entity="{escape(entity)}" data-role="{role}">')
        out.append(f"<title>{escape(entity)}</title>")
        out.append(
            f'<rect class="lane-bg lane-{index % 2}" x="0" y="{y}" width="{WIDTH}" height="{LANE_H}"/>'
        )
        text = label(entity, 33 if role == "root" else 38)
        badge = '<tspan class="root-badge">ROOT </tspan>' if role == "root" else ""
        out.append(f'<text class="lane-label" x="8" y="{y + LANE_H / 2 + 4}">{badge}{escape(text)}</text>')
        alerts = by_entity.get(entity, [])
        if not alerts and role == "root":
            x0 = scale.x(t.opened_at)
            x1 = scale.x(t.closed_at or end)
            out.append(
                f'<rect class="bar bar-inferred" x="{x0}" y="{y + 5}" width="{max(x1 - x0, 2)}" '
                f'height="{LANE_H - 10}"><title>inferred root: {escape(describe(entity))}</title></rect>'
            )
        rows = _rows(alerts, end)
        height_each = (LANE_H - 8) / max(rows.values(), default=1)
        for alert in sorted(alerts, key=lambda a: (a.started, a.fingerprint)):
            n = rows[id(alert)] - 1
            x0 = scale.x(alert.started)
            x1 = scale.x(alert.ended or end)
            top = y + 4 + n * height_each
            state = "resolved" if alert.ended else "firing"
            tip = (
                f"{alert.alertname} ({alert.severity}) on {alert.entity}: from {stamp(alert.started)} UTC "
                + (f"to {stamp(alert.ended)} UTC" if alert.ended else "still firing")
            )
            out.append(
                f'<rect class="bar bar-{escape(alert.severity)} bar-{state} bar-{alert.role}" '
                f'data-fingerprint="{escape(alert.fingerprint)}" x="{x0}" y="{round(top, 1)}" '
                f'width="{max(round(x1 - x0, 1), 2)}" height="{round(max(height_each - 1, 3), 1)}" rx="2">'
                f"<title>{escape(tip)}</title></rect>"
            )
            rx = scale.x(alert.fired_at)
            out.append(
                f'<line class="received" x1="{rx}" y1="{round(top, 1)}" x2="{rx}" '
                f'y2="{round(top + max(height_each - 1, 3), 1)}"/>'
            )
        for entry in lane_entries.get(entity, []):
            shape, css = _lane_marker(entry) or ("circle", "")
            out.append(
                _marker(shape, scale.x(entry.at), y + LANE_H / 2, 3.5, f"marker {css}", _tip(entry, tz))
            )
        out.append("</g>")
    bottom = lane_top + LANE_H * len(lanes)
    # Impact window shading, over the lanes (translucent; it must not hide their tooltips).
    f = t.figures
    if f.impact_start is not None:
        x0 = scale.x(f.impact_start)
        x1 = scale.x(f.impact_end or end)
        out.append(
            f'<rect class="impact" x="{x0}" y="{TRACK_Y}" width="{max(x1 - x0, 1)}" '
            f'height="{bottom - TRACK_Y}"/>'
        )
    # Guides for the moments that matter, across all lanes.
    seen: set[str] = set()
    for entry in t.entries:
        guide = GUIDES.get(entry.kind)
        if guide is None or guide in seen or (entry.incident != t.id and guide != "paged"):
            continue
        seen.add(guide)
        x = scale.x(entry.at)
        out.append(
            f'<line class="guide guide-{guide}" x1="{x}" y1="{TRACK_Y}" x2="{x}" y2="{bottom}">'
            f"<title>{escape(_tip(entry, tz))}</title></line>"
        )
        out.append(
            f'<text class="guide-label guide-{guide}" x="{x}" y="{bottom + 14}" '
            f'text-anchor="middle">{guide}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


LEGEND = (
    ("bar bar-critical", "rect", "critical alert, fire → resolve"),
    ("bar bar-warning", "rect", "warning alert"),
    ("bar bar-info", "rect", "info alert"),
    ("bar bar-inferred", "rect", "inferred root (no alert of its own)"),
    ("marker m-paged", "triangle", "paged"),
    ("marker m-human", "diamond", "human action (acknowledge, silence, resolve)"),
    ("marker m-message", "square", "message sent"),
    ("marker m-decision", "circle", "decision (opened, merged, grace elapsed…)"),
    ("marker m-resolved", "circle", "resolved / closed"),
    ("marker m-attached", "circle", "alert attached (as symptom or root)"),
    ("marker m-detached", "cross", "symptom detached"),
)


def render_legend() -> str:
    items = []
    for css, shape, label in LEGEND:
        if shape == "rect":
            icon = f'<rect class="{css}" x="1" y="3" width="16" height="8" rx="2"/>'
        else:
            icon = _marker(shape, 9, 7, 5, css, label)
        items.append(
            f'<li><svg class="legend-icon" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 18 14" '
            f'width="18" height="14" aria-hidden="true">{icon}</svg>{escape(label)}</li>'
        )
    return '<ul class="legend">' + "".join(items) + "</ul>"
