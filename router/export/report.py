"""The post-mortem report as a small document tree, rendered by both markdown.py and html.py,
so that the Markdown and the HTML page say exactly the same thing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from router.core.wording import count_kinds, describe
from router.export.model import Alert, Timeline
from router.export.timefmt import duration, stamp, with_zone, zone_label
from topology import entities


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Strong:
    text: str


Inline = str | Code | Strong
Text = list[Inline]


@dataclass
class Para:
    parts: Text
    note: bool = False  # a call-out (blockquote)


@dataclass
class Table:
    header: list[str]
    rows: list[list[Text]]
    css: str = ""  # a class for the HTML table


@dataclass
class Bullets:
    items: list[Text]


Block = Para | Table | Bullets


@dataclass
class Section:
    title: str
    level: int = 2
    blocks: list[Block] = field(default_factory=list)
    id: str = ""


@dataclass
class Report:
    title: str
    banner: Para | None
    sections: list[Section]
    footer: str


STATE_WORDS = {
    "open": "open: within its grace, not escalated",
    "paged": "open: paged",
    "recovered": "open: the root recovered, waiting to settle",
    "resolving": "open: the root recovered, symptoms still firing",
    "closed": "closed",
    "merged": "merged into another incident",
}


def banner(timeline: Timeline) -> Para | None:
    if timeline.open:
        return Para(
            [
                Strong("Still open"),
                f" (state {timeline.state}, last recorded event "
                f"{stamp(timeline.entries[-1].at) if timeline.entries else '—'} UTC): "
                "this timeline is provisional; figures that need the end are blank.",
            ],
            note=True,
        )
    if timeline.state == "merged" and timeline.merged_into:
        return Para(
            [
                Strong("Merged"),
                f" into incident {timeline.merged_into}: its root turned out to depend on that "
                "incident's root; the timeline continues there"
                + (
                    f" (and in {timeline.survivor}, where it ended up)."
                    if timeline.survivor != timeline.merged_into
                    else "."
                ),
            ],
            note=True,
        )
    return None


def build_report(timeline: Timeline, tz: tzinfo | None = None) -> Report:
    sections = [
        _summary(timeline, tz),
        _impact(timeline, tz),
        _root_cause(timeline, tz),
        _timeline(timeline, tz),
        _symptoms(timeline, tz),
        _figures(timeline, tz),
        _messages(timeline, tz),
    ]
    footer = (
        f"Exported by alert-router from {timeline.events} recorded decision events. "
        f"Times are UTC{'' if tz is None else ' and ' + zone_label(tz)}."
    )
    return Report(f"Incident {timeline.id}: {timeline.title}", banner(timeline), sections, footer)


def lead(timeline: Timeline) -> str:
    """The summary in one paragraph, the way a post-mortem opens."""
    f = timeline.figures
    symptoms = [a for a in timeline.alerts if a.role == "symptom"]
    text = timeline.title
    text = text[:1].upper() + text[1:]
    if symptoms:
        entities_hit = {a.entity for a in symptoms}
        text += (
            f" explained {len(symptoms)} other alert{'s' if len(symptoms) != 1 else ''} on "
            f"{len(entities_hit)} dependent entit{'ies' if len(entities_hit) != 1 else 'y'} "
            f"({count_kinds(entities_hit)})."
        )
    else:
        text += "."
    text += f" {f.alerts_received} alert{'s' if f.alerts_received != 1 else ''} received, "
    text += f"{f.pages_sent} page{'s' if f.pages_sent != 1 else ''} sent."
    if f.paged_at is not None:
        text += f" On-call was paged {duration(f.time_to_page)} after the impact began"
        if f.acknowledged_at is not None:
            text += f" and {f.acknowledged_by} acknowledged {duration(f.time_to_acknowledge)} later"
        text += "."
    if f.resolved_at is not None:
        text += f" Resolved {duration(f.time_to_resolve)} after the impact began."
    elif timeline.open:
        text += " Still open."
    return text


def _summary(t: Timeline, tz: tzinfo | None) -> Section:
    root_alert: Text = (
        [t.root_alert.alertname, f" ({t.root_alert.severity})"]
        if t.root_alert
        else ["none: the root was inferred from its dependents" if t.inferred else "none"]
    )
    rows: list[list[Text]] = [
        [["Incident"], [Code(t.id)]],
        [["State"], [STATE_WORDS.get(t.state, t.state)]],
        [["Root cause"], [describe(t.root), " (", Code(t.root), ")"]],
        [["Root alert"], root_alert],
        [["Severity"], [t.severity]],
        [["Opened"], [with_zone(t.opened_at, tz)]],
        [["Paged"], [with_zone(t.figures.paged_at, tz) if t.figures.paged_at else "not paged"]],
        [["Acknowledged by"], [", ".join(t.acknowledged_by) or "—"]],
        [["Silenced by"], [", ".join(t.silenced_by) or "—"]],
        [["Closed"], [with_zone(t.closed_at, tz) if t.closed_at else "—"]],
    ]
    if t.merged_into:
        rows.append([["Merged into"], [Code(t.merged_into)]])
    if t.merged_in:
        rows.append([["Merged in"], _codes(t.merged_in)])
    rows.append([["Alerts / pages"], [f"{t.figures.alerts_received} received / {t.figures.pages_sent} sent"]])
    return Section("Summary", blocks=[Para([lead(t)]), Table(["", ""], rows, "facts")], id="summary")


def _impact(t: Timeline, tz: tzinfo | None) -> Section:
    f = t.figures
    header = ["", "UTC"] + ([zone_label(tz, f.impact_start)] if tz else [])

    def row(label: str, value: datetime | None, missing: str) -> list[Text]:
        cells: list[Text] = [[label], [stamp(value) if value else missing]]
        if tz:
            cells.append([stamp(value, tz) if value else missing])
        return cells

    end_missing = "still firing" if t.alerts else "—"
    rows = [
        row("Start of impact", f.impact_start, "—"),
        row("End of impact", f.impact_end, end_missing),
    ]
    length: list[Text] = [["Duration"], [duration(f.impact_duration) if f.impact_end else "ongoing"]]
    if tz:
        length.append([""])
    rows.append(length)
    note = Para(
        [
            "From the earliest ",
            Code("startsAt"),
            " of the incident's alerts to the last end of one of them (",
            Code("endsAt"),
            ", else when its resolve arrived).",
        ]
    )
    return Section("Impact window", blocks=[Table(header, rows, "impact"), note], id="impact")


def _root_cause(t: Timeline, tz: tzinfo | None) -> Section:
    intro = Para(["Root cause: ", Strong(describe(t.root)), " (", Code(t.root), ")."])
    if t.inferred and t.root_alert is None:
        intro.parts.append(" It has no alert of its own: the router inferred it from its dependents.")
    blocks: list[Block] = [intro]
    if t.evidence:
        # Oldest first, each with its time (UTC, and the zone's when one is asked for).
        dated = len({stamp(e.at)[:10] for e in t.evidence}) > 1
        items: list[Text] = []
        for e in t.evidence:
            when = f"{stamp(e.at, date=dated)} UTC"
            if tz is not None:
                when += f" ({stamp(e.at, tz, date=dated)} {zone_label(tz, e.at)})"
            items.append([Strong(when), " ", e.text])
        blocks.append(Bullets(items))
    return Section("Root cause and evidence", blocks=blocks, id="root-cause")


def _timeline(t: Timeline, tz: tzinfo | None) -> Section:
    one_day = len({stamp(e.at)[:10] for e in t.entries}) <= 1
    header = ["Time (UTC)"] + ([f"Time ({zone_label(tz)})"] if tz else []) + ["Type"]
    several = bool(t.merged_in)
    if several:
        header.append("Incident")
    header.append("What happened")
    rows: list[list[Text]] = []
    for entry in t.entries:
        cells: list[Text] = [[stamp(entry.at, date=not one_day)]]
        if tz:
            cells.append([stamp(entry.at, tz, date=not one_day)])
        cells.append([entry.category])
        if several:
            cells.append([Code(entry.incident)] if entry.incident else [""])
        text = entry.text
        if entry.message is not None:
            text += f" — {entry.message.result}"
        cells.append([text])
        rows.append(cells)
    day = f" All times on {stamp(t.entries[0].at)[:10]}." if one_day and t.entries else ""
    intro = Para([f"Every recorded alert, decision, human action and message, oldest first.{day}"])
    return Section("Timeline", blocks=[intro, Table(header, rows, "timeline")], id="timeline")


def _symptoms(t: Timeline, tz: tzinfo | None) -> Section:
    symptoms = [a for a in t.alerts if a.role == "symptom"]
    if not symptoms:
        return Section(
            "Symptoms by kind", blocks=[Para(["No symptoms: only the root alerted."])], id="symptoms"
        )
    by_kind: dict[str, list[Alert]] = {}
    for alert in symptoms:
        by_kind.setdefault(entities.kind_of(alert.entity), []).append(alert)
    blocks: list[Block] = []
    for kind, items in sorted(by_kind.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        blocks.append(Para([Strong(f"{kind} ({len(items)})")]))
        rows: list[list[Text]] = [
            [
                [a.alertname],
                [Code(a.entity)],
                [" → ".join(describe(p) for p in a.path)],
                [stamp(a.fired_at, tz, date=False)],
                [_ended(a, tz)],
            ]
            for a in sorted(items, key=lambda a: (a.fired_at, a.entity, a.fingerprint))
        ]
        zone_name = zone_label(tz)
        blocks.append(
            Table(
                ["Alert", "Entity", "Path to the root", f"Received ({zone_name})", f"Ended ({zone_name})"],
                rows,
                "symptoms",
            )
        )
    return Section("Symptoms by kind", blocks=blocks, id="symptoms")


def _figures(t: Timeline, tz: tzinfo | None) -> Section:
    f = t.figures

    def at(value: datetime | None) -> str:
        return with_zone(value, tz) if value else "—"

    others = ", ".join(f"{n} {action}" for action, n in sorted(f.messages_sent.items()) if action != "page")
    rows: list[list[Text]] = [
        [["Start of impact"], [at(f.impact_start)], ["earliest startsAt of its alerts"]],
        [
            ["Time to detect"],
            [duration(f.time_to_detect)],
            [f"start of impact → first alert received ({at(f.detected_at)})"],
        ],
        [["Time to page"], [duration(f.time_to_page)], [f"start of impact → first page ({at(f.paged_at)})"]],
        [
            ["Time to acknowledge"],
            [duration(f.time_to_acknowledge)],
            [
                f"{'page' if f.paged_at else 'first alert'} → first acknowledgement"
                + (f" by {f.acknowledged_by}" if f.acknowledged_by else "")
                + f" ({at(f.acknowledged_at)})"
            ],
        ],
        [
            ["Time to resolve"],
            [duration(f.time_to_resolve)],
            [f"start of impact → incident closed ({at(f.resolved_at)})"],
        ],
        [
            ["Alerts received"],
            [str(f.alerts_received)],
            ["alert instances of this incident and those merged into it"],
        ],
        [
            ["Pages sent"],
            [str(f.pages_sent)],
            [f"other messages: {others}" if others else "no other messages"],
        ],
    ]
    return Section(
        "Key figures", blocks=[Table(["Figure", "Value", "Measured"], rows, "figures")], id="figures"
    )


def _messages(t: Timeline, tz: tzinfo | None) -> Section:
    if not t.messages:
        return Section("Messages", blocks=[Para(["No message was sent for this incident."])], id="messages")
    header = (
        ["Time (UTC)"] + ([f"Time ({zone_label(tz)})"] if tz else []) + ["Action", "Key", "Result", "Reason"]
    )
    rows: list[list[Text]] = []
    for m in t.messages:
        cells: list[Text] = [[stamp(m.at)]]
        if tz:
            cells.append([stamp(m.at, tz)])
        cells += [[m.action], [Code(m.key or "—")], [m.result], [m.reason]]
        rows.append(cells)
    return Section("Messages", blocks=[Table(header, rows, "messages")], id="messages")


def _ended(alert: Alert, tz: tzinfo | None) -> str:
    if alert.ended and (alert.detached_at is None or alert.ended <= alert.detached_at):
        return stamp(alert.ended, tz, date=False)
    if alert.detached_at is not None:
        later = f", ended {stamp(alert.ended, tz, date=False)}" if alert.ended else ", still firing"
        return f"detached {stamp(alert.detached_at, tz, date=False)}{later}"
    return "still firing"


def _codes(values: Sequence[str]) -> Text:
    out: Text = []
    for i, value in enumerate(values):
        if i:
            out.append(", ")
        out.append(Code(value))
    return out
