"""The timeline of one incident, built from recorded decision events (docs/events.md) only.

Pure functions over plain dicts (`Event.to_dict()` rows and notification lines), so the same
code serves a replay's files and the service's event log. No wall clock, no I/O.

An incident's timeline is its *family*: the incident itself and every incident that merged into
it (`merged.into`, `absorbed.incident_merged`, `root_reattributed.absorbed`), transitively. Its
alerts are the alert instances attached to any incident of the family (`root_alert`,
`symptom_attached`); `alert_fired` events carry no incident, so each is taken from the instance
it announced. Paths follow the engine: a merge extends every moved alert's path by the bridge.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ground.errors import InputError
from ground.times import format_time, parse_time
from router.core.wording import describe
from rules.schema import severity_rank

LIVE_STATES = ("open", "paged", "recovered", "resolving")
STATES = (*LIVE_STATES, "closed", "merged")
CLOSING_KINDS = ("resolved", "noticed", "human_resolved", "heartbeat_restored")
HUMAN_KINDS = ("acknowledged", "silenced", "human_resolved")
ALERT_KINDS = ("alert_fired", "alert_resolved")


class TimelineNotFound(InputError):
    """No such incident, or nothing recorded at all (the API answers 404, the CLI exits 2)."""


class TimelineRequestError(InputError):
    """A bad format or time zone (the API answers 400, the CLI exits 2)."""


# ------------------------------------------------------------------------------ records


@dataclass
class Delivery:
    """What became of one outbound message at one notifier (service only)."""

    notifier: str
    state: str  # sent | pending | failed
    attempts: int
    last_error: str | None = None
    sent_at: str | None = None


@dataclass
class Message:
    """One notification of the family and its result."""

    at: datetime
    incident: str
    action: str
    key: str | None
    severity: str | None
    reason: str
    symptoms: int
    status: str  # replay (never sent) | sent | pending | failed | unsent (no notifier)
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def result(self) -> str:
        if self.status == "replay":
            return "replay: not delivered"
        if not self.deliveries:
            return "recorded; no notifier configured"
        parts = []
        for d in self.deliveries:
            tries = f"{d.attempts} attempt{'s' if d.attempts != 1 else ''}"
            text = f"{d.state} to {d.notifier} ({tries})"
            if d.last_error and d.state != "sent":
                text += f": {d.last_error}"
            parts.append(text)
        return "; ".join(parts)


@dataclass
class Alert:
    """One alert instance of the incident."""

    fingerprint: str
    alertname: str
    entity: str
    severity: str
    rule: str | None
    mapped: str | None
    starts_at: datetime | None
    fired_at: datetime  # when the router received it
    incident: str  # the incident of the family it joined first
    attached_at: datetime
    role: str = "symptom"  # root | symptom
    path: list[str] = field(default_factory=list)
    reason: str = ""
    resolved_at: datetime | None = None  # when the router received the resolve
    ends_at: datetime | None = None  # Alertmanager's endsAt of the resolve
    detached_at: datetime | None = None
    current: str | None = None  # incident it belongs to now (None once detached)

    @property
    def started(self) -> datetime:
        return self.starts_at or self.fired_at

    @property
    def ended(self) -> datetime | None:
        return self.ends_at or self.resolved_at

    @property
    def left(self) -> datetime | None:
        """When it stopped counting for this incident: its end, or its detachment."""
        ends = [t for t in (self.ended, self.detached_at) if t is not None]
        return min(ends) if ends else None


@dataclass
class Entry:
    """One line of the timeline."""

    at: datetime
    seq: int  # position in the source: ties keep the engine's order
    incident: str | None
    category: str  # alert | decision | human | message
    kind: str
    text: str
    entity: str | None = None
    alertname: str | None = None
    fingerprint: str | None = None
    actor: str | None = None
    reason: str | None = None
    path: list[str] | None = None
    message: Message | None = None


@dataclass
class Figures:
    impact_start: datetime | None = None
    impact_end: datetime | None = None
    detected_at: datetime | None = None
    paged_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    alerts_received: int = 0
    pages_sent: int = 0
    messages_sent: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def _seconds(start: datetime | None, end: datetime | None) -> float | None:
        if start is None or end is None:
            return None
        return round((end - start).total_seconds(), 3)

    @property
    def time_to_detect(self) -> float | None:
        return self._seconds(self.impact_start, self.detected_at)

    @property
    def time_to_page(self) -> float | None:
        return self._seconds(self.impact_start, self.paged_at)

    @property
    def time_to_acknowledge(self) -> float | None:
        """From the page (from detection when nobody was paged)."""
        return self._seconds(self.paged_at or self.detected_at, self.acknowledged_at)

    @property
    def time_to_resolve(self) -> float | None:
        return self._seconds(self.impact_start, self.resolved_at)

    @property
    def impact_duration(self) -> float | None:
        return self._seconds(self.impact_start, self.impact_end)


@dataclass(frozen=True)
class Evidence:
    """One reason the root is the root, and when it was recorded."""

    at: datetime
    text: str


@dataclass
class Timeline:
    id: str
    state: str
    root: str
    inferred: bool
    root_alert: Alert | None
    severity: str
    opened_at: datetime
    closed_at: datetime | None
    merged_into: str | None
    survivor: str | None  # the incident it finally merged into (after a chain of merges)
    merged_in: list[str]
    acknowledged_by: list[str]
    silenced_by: list[str]
    alerts: list[Alert]
    entries: list[Entry]
    messages: list[Message]
    figures: Figures
    evidence: list[Evidence]  # in time order
    events: int  # how many recorded events the timeline was built from

    @property
    def open(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def title(self) -> str:
        if self.root_alert is not None:
            return f"{self.root_alert.alertname} on {describe(self.root)}"
        if any(e.kind == "heartbeat_missing" for e in self.entries):
            return f"{describe(self.root)} down (heartbeat missing)"
        return f"{describe(self.root)} (inferred root cause)"

    def entities(self) -> list[str]:
        """Every entity of the incident, one per lane: the root first, then by distance from
        the root along the symptom paths, then by when they started to fail."""
        first: dict[str, datetime] = {}
        depth: dict[str, int] = {self.root: 0}
        for alert in self.alerts:
            if alert.entity not in first or alert.started < first[alert.entity]:
                first[alert.entity] = alert.started
            if alert.entity != self.root:
                hops = len(alert.path) - 1 if alert.path and alert.path[-1] == self.root else 99
                depth[alert.entity] = min(depth.get(alert.entity, 99), max(hops, 1))
        names = set(first) | {self.root}
        return sorted(names, key=lambda e: (depth.get(e, 99), first.get(e, self.opened_at), e))

    def graph(self) -> tuple[list[str], list[tuple[str, str]]]:
        """The dependency neighbourhood drawn from the symptom paths: nodes and edges
        (dependent, dependency), in first-seen order."""
        nodes: dict[str, None] = {self.root: None}
        edges: dict[tuple[str, str], None] = {}
        for alert in self.alerts:
            path = alert.path or [alert.entity]
            for name in path:
                nodes[name] = None
            for a, b in itertools.pairwise(path):
                if a != b:
                    edges[(a, b)] = None
        return list(nodes), list(edges)


# ------------------------------------------------------------------------------ parsing


def event_time(event: Mapping[str, Any], where: str = "event") -> datetime:
    try:
        value = parse_time(str(event.get("at", "")))
    except ValueError:
        value = None
    if value is None:
        raise InputError(f"{where}: at: not an RFC 3339 time")
    return value


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


# ------------------------------------------------------------------------------ lifecycle

# Event kind -> new state, by current state ("*" for any). Mirrors the engine's TRANSITIONS as
# seen from its events.
_STATE_BY_EVENT: dict[str, dict[str, str]] = {
    "incident_opened": {"*": "open"},
    "root_inferred": {"*": "open"},
    "paged": {"*": "paged"},
    "root_recovered": {"open": "recovered", "paged": "resolving"},
    "root_refired": {"recovered": "open", "resolving": "paged"},
    "noticed": {"*": "closed"},
    "resolved": {"*": "closed"},
    "human_resolved": {"*": "closed"},
    "heartbeat_restored": {"*": "closed"},
    "merged": {"*": "merged"},
    "reopened": {"*": "paged"},
}


def next_state(state: str | None, kind: str) -> str | None:
    moves = _STATE_BY_EVENT.get(kind)
    if moves is None:
        return state
    return moves.get(state or "", moves.get("*", state))


def parents(events: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """merged incident -> the incident it merged into."""
    out: dict[str, str] = {}
    for event in events:
        kind, incident = event.get("kind"), event.get("incident")
        if not incident:
            continue
        if kind == "merged" and event.get("into"):
            out[str(incident)] = str(event["into"])
        elif kind == "absorbed" and event.get("incident_merged"):
            out[str(event["incident_merged"])] = str(incident)
        elif kind == "root_reattributed" and event.get("absorbed"):
            out[str(event["absorbed"])] = str(incident)
    return out


def family_of(incident: str, links: Mapping[str, str]) -> list[str]:
    """The incident and every incident that merged into it, transitively (cycle-safe)."""
    children: dict[str, list[str]] = {}
    for child, parent in links.items():
        children.setdefault(parent, []).append(child)
    out, todo = [incident], [incident]
    while todo:
        for child in sorted(children.get(todo.pop(), [])):
            if child not in out:
                out.append(child)
                todo.append(child)
    return out


def known_incidents(
    events: Iterable[Mapping[str, Any]], notifications: Iterable[Mapping[str, Any]]
) -> set[str]:
    found = {str(e["incident"]) for e in events if e.get("incident")}
    found |= {str(n["incident"]) for n in notifications if n.get("incident")}
    return found


# ------------------------------------------------------------------------------ wording


def _arrow(path: Sequence[str]) -> str:
    return " → ".join(describe(p) for p in path)


def entry_text(event: Mapping[str, Any]) -> str:
    """One sentence per event, for the table and the chart's tooltips."""
    kind = str(event.get("kind"))
    entity = event.get("entity")
    what = describe(str(entity)) if entity else ""
    name = event.get("alertname") or "alert"
    reason = event.get("reason")
    user = event.get("user") or "someone"
    note = f" ({event['note']})" if event.get("note") else ""
    texts: dict[str, str] = {
        "alert_fired": f"{name} fired on {what} (severity {event.get('severity', '?')})",
        "alert_resolved": f"{name} resolved on {what}" + (f": {reason}" if reason else ""),
        "incident_opened": f"incident {event.get('incident')} opened on {what}: {reason}",
        "root_inferred": f"{what} inferred as root cause: {reason}",
        "root_alert": f"{name} is a root alert: {reason}",
        "symptom_attached": f"{name} on {what} attached as a symptom: {_arrow(event.get('path') or [])}",
        "symptom_detached": f"{name} on {what} detached: {reason}",
        "merged": f"incident {event.get('incident')} merged into {event.get('into')}: {reason}",
        "absorbed": f"took in incident {event.get('incident_merged')} "
        f"({_count(event.get('alerts', 0), 'alert')})",
        "root_reattributed": (
            f"root cause re-attributed from {describe(str(event.get('old_root')))} "
            f"to {describe(str(event.get('new_root')))}: {reason}"
        ),
        "grace_elapsed": "grace elapsed; the root "
        + ("still fires" if event.get("firing") else "no longer fires"),
        "likely_cause": _likely_cause(event, what),
        "paged": f"paged on-call (severity {event.get('severity')}): {reason}",
        "flapping": f"flapping: {reason}",
        "root_recovered": f"root recovered: {reason}",
        "root_refired": f"root fired again: {reason}",
        "reopened": f"reopened: {reason}",
        "noticed": f"closed with a notice: {reason}",
        "resolved": f"resolved: {reason}",
        "heartbeat_missing": f"heartbeat missing: {reason}",
        "heartbeat_restored": f"heartbeat restored: {reason}",
        "acknowledged": f"acknowledged by {user}{note}",
        "silenced": f"silenced by {user}{note}",
        "human_resolved": f"resolved by {user}{note}",
        "notified": f"{event.get('action')} message: {reason}",
        "page_deferred": f"page deferred until {event.get('until')}: {reason}",
        "witness_asked": f"asked Prometheus: {event.get('question')} for {describe(str(entity))}",
        "witness_answered": "Prometheus answered: "
        + {True: "confirmed", False: "refuted", None: "could not tell"}.get(event.get("confirmed"), "?")
        + (f" ({event['detail']})" if event.get("detail") else ""),
    }
    if kind in texts:
        return texts[kind]
    extra = reason or ", ".join(f"{k}={v}" for k, v in event.items() if k not in ("at", "kind", "incident"))
    return f"{kind.replace('_', ' ')}: {extra}" if extra else kind.replace("_", " ")


def _likely_cause(event: Mapping[str, Any], what: str) -> str:
    cause, change, at = event.get("cause"), event.get("change"), event.get("changed_at")
    if cause == "unreachable":
        return f"likely cause: {what} unreachable since {at} ({change})"
    if cause in (None, "change"):
        return f"likely cause: {change} on {what} at {at}"
    return f"likely cause: {what}, {change} (since {at})"


def _count(n: Any, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _category(kind: str) -> str:
    if kind in ALERT_KINDS:
        return "alert"
    if kind in HUMAN_KINDS:
        return "human"
    if kind == "notified":
        return "message"
    return "decision"


# ------------------------------------------------------------------------------ messages


def keyed_notifications(
    events: Sequence[Mapping[str, Any]], notifications: Sequence[Mapping[str, Any]]
) -> dict[str, Mapping[str, Any]]:
    """Notifications by idempotency key. A replay's notification lines carry no key: the k-th
    notification of an incident is the one its k-th `notified` event announced."""
    keys: dict[str, list[str]] = {}
    for event in events:
        if event.get("kind") == "notified" and event.get("incident") and event.get("key"):
            keys.setdefault(str(event["incident"]), []).append(str(event["key"]))
    seen: dict[str, int] = {}
    out: dict[str, Mapping[str, Any]] = {}
    for note in notifications:
        incident = str(note.get("incident"))
        index = seen.get(incident, 0)
        seen[incident] = index + 1
        key = note.get("key")
        if not key:
            known = keys.get(incident, [])
            key = known[index] if index < len(known) else f"{incident}:{index}:{note.get('action')}"
        out[str(key)] = note
    return out


def _deliveries(
    key: str | None,
    outbox: Sequence[Mapping[str, Any]] | None,
    attempts: Sequence[Mapping[str, Any]] | None,
) -> list[Delivery]:
    if key is None:
        return []
    found: dict[str, Delivery] = {}
    for row in outbox or ():
        if row.get("key") == key:
            name = str(row.get("notifier"))
            found[name] = Delivery(
                name,
                str(row.get("state")),
                int(row.get("attempts") or 0),
                row.get("last_error"),
                row.get("sent_at"),
            )
    for row in attempts or ():
        if row.get("key") != key:
            continue
        name = str(row.get("notifier"))
        delivery = found.setdefault(name, Delivery(name, "pending", 0))
        delivery.attempts = max(delivery.attempts, int(row.get("attempt") or 0))
        if row.get("ok"):
            delivery.state = "sent"
            delivery.sent_at = delivery.sent_at or row.get("started_at")
        elif row.get("error"):
            delivery.last_error = str(row["error"])
    return [found[name] for name in sorted(found)]


def _status(deliveries: list[Delivery], from_service: bool) -> str:
    if not from_service:
        return "replay"
    if not deliveries:
        return "unsent"
    states = {d.state for d in deliveries}
    for state in ("failed", "pending"):
        if state in states:
            return state
    return "sent"


# ------------------------------------------------------------------------------ building


def build(
    events: Sequence[Mapping[str, Any]],
    notifications: Sequence[Mapping[str, Any]],
    incident: str,
    *,
    outbox: Sequence[Mapping[str, Any]] | None = None,
    attempts: Sequence[Mapping[str, Any]] | None = None,
    origin: str = "the recording",
) -> Timeline:
    """The timeline of `incident`; TimelineNotFound when there is no such incident.

    `outbox` and `attempts` (rows of the service's outbox and outbound tables) give each
    message's result; without them (a replay) messages are marked as never sent."""
    if not events:
        raise empty(origin)
    known = known_incidents(events, notifications)
    if incident not in known:
        raise not_found(incident, origin, len(known))
    links = parents(events)
    family = family_of(incident, links)
    members = set(family)
    from_service = outbox is not None or attempts is not None
    by_key = keyed_notifications(events, notifications)

    state: dict[str, str | None] = {}
    roots: dict[str, str] = {}
    inferred: dict[str, bool] = {}
    opened: dict[str, datetime] = {}
    closed_at: datetime | None = None
    merged_into: str | None = None
    latest: dict[str, Alert] = {}  # fingerprint -> latest instance announced by alert_fired
    fired_entry: dict[int, Entry] = {}  # id(alert) -> its alert_fired entry
    alerts: list[Alert] = []
    entries: list[Entry] = []
    evidence: list[Evidence] = []
    humans: dict[str, list[str]] = {"acknowledged": [], "silenced": []}
    figures = Figures()

    for seq, event in enumerate(events):
        kind = str(event.get("kind"))
        at = event_time(event, f"{origin}: event {seq + 1}")
        owner = event.get("incident")
        fp = str(event.get("fingerprint", ""))
        if kind == "alert_fired":
            alert = Alert(
                fingerprint=fp,
                alertname=str(event.get("alertname", "")),
                entity=str(event.get("entity", "")),
                severity=str(event.get("severity", "warning")),
                rule=event.get("rule"),
                mapped=event.get("mapped"),
                starts_at=_time(event.get("starts_at")),
                fired_at=at,
                incident="",
                attached_at=at,
            )
            latest[fp] = alert
            fired_entry[id(alert)] = _entry(event, at, seq)
            continue
        if kind == "alert_resolved" and fp in latest:
            alert = latest[fp]
            alert.resolved_at = at
            alert.ends_at = _time(event.get("ends_at"))
        if kind == "root_reattributed" and event.get("absorbed") == incident:
            # This incident was the cause a paged one found later: it lives on in that one.
            state[incident], merged_into, closed_at = "merged", str(owner), at
            if owner not in members:
                entries.append(_entry(event, at, seq))
        if owner not in members:
            continue
        owner = str(owner)
        state[owner] = next_state(state.get(owner), kind)
        entry = _entry(event, at, seq)
        if kind in ("incident_opened", "root_inferred"):
            roots.setdefault(owner, str(event.get("entity")))
            inferred.setdefault(owner, kind == "root_inferred")
            opened.setdefault(owner, at)
            if kind == "root_inferred" and owner == incident:
                evidence.append(
                    Evidence(
                        at, f"{describe(roots[owner])} was inferred as the root cause: {event.get('reason')}"
                    )
                )
        elif kind in ("root_alert", "symptom_attached") and fp in latest:
            alert = latest[fp]
            if not alert.incident:
                alert.incident = owner
                alert.attached_at = at
                alerts.append(alert)
                fired = fired_entry[id(alert)]
                fired.incident = owner  # alert_fired names no incident: the one it joined
                entries.append(fired)
            alert.current = owner
            alert.detached_at = None
            alert.path = list(event.get("path") or [alert.entity])
            alert.reason = str(event.get("reason", ""))
        elif kind == "symptom_detached" and fp in latest:
            latest[fp].detached_at = at
            latest[fp].current = None
        elif kind == "merged":
            bridge = list(event.get("path") or [])
            into = str(event.get("into"))
            _move(alerts, owner, into, bridge)
            entry.entity = roots.get(owner)
            if owner == incident:
                merged_into = into
            else:
                evidence.append(Evidence(at, f"incident {owner} merged in: {event.get('reason')}"))
        elif kind == "root_reattributed":
            bridge = list(event.get("path") or [])
            _move(alerts, owner, owner, bridge)  # the survivor's own alerts now hang below the cause
            _move(alerts, str(event.get("absorbed")), owner, [])
            roots[owner] = str(event.get("new_root"))
            inferred[owner] = inferred.get(str(event.get("absorbed")), False)
            evidence.append(Evidence(at, f"root cause re-attributed: {event.get('reason')}"))
        elif kind in ("heartbeat_missing", "flapping"):
            evidence.append(Evidence(at, entry.text))
        elif kind == "paged":
            if figures.paged_at is None:
                figures.paged_at = at
            evidence.append(Evidence(at, f"paged: {event.get('reason')}"))
        elif kind in ("acknowledged", "silenced"):
            who = str(event.get("user") or "someone")
            if who not in humans[kind]:
                humans[kind].append(who)
            if kind == "acknowledged" and figures.acknowledged_at is None:
                figures.acknowledged_at = at
                figures.acknowledged_by = who
        elif kind == "notified":
            note = by_key.get(str(event.get("key")))
            action = str(event.get("action"))
            deliveries = _deliveries(event.get("key"), outbox, attempts)
            entry.message = Message(
                at=at,
                incident=owner,
                action=action,
                key=event.get("key"),
                severity=(note or {}).get("severity"),
                reason=str(event.get("reason") or (note or {}).get("reason", "")),
                symptoms=len((note or {}).get("symptoms") or []),
                status=_status(deliveries, from_service),
                deliveries=deliveries,
            )
            figures.messages_sent[action] = figures.messages_sent.get(action, 0) + 1
        if owner == incident:
            if kind in CLOSING_KINDS:
                closed_at = at
            elif kind == "reopened":
                closed_at = None
            elif kind == "merged":
                closed_at = at
        entries.append(entry)

    root = roots.get(incident) or _root_from_notifications(notifications, incident) or incident
    for alert in alerts:
        alert.role = "root" if alert.entity == root else "symptom"
    entries.sort(key=lambda e: (e.at, e.seq))
    messages = [e.message for e in entries if e.message is not None]
    root_alert = _primary(a for a in alerts if a.entity == root)
    if root_alert is not None:
        line = f"{root_alert.alertname} fired on {describe(root)}: {root_alert.reason}"
        evidence.insert(0, Evidence(root_alert.fired_at, line))
    evidence.sort(key=lambda e: e.at)  # stable: same-time reasons keep the order they were made
    final_state = state.get(incident) or "open"
    figures.alerts_received = len(alerts)
    figures.pages_sent = figures.messages_sent.get("page", 0)
    opened_at = opened.get(incident) or (entries[0].at if entries else event_time(events[0]))
    if alerts:
        figures.impact_start = min(a.started for a in alerts)
        figures.detected_at = min(a.fired_at for a in alerts)
        ends = [a.left for a in alerts]
        if all(ends):
            figures.impact_end = max(e for e in ends if e is not None)
    else:  # an incident without alerts (a missing heartbeat): it is its own evidence
        figures.impact_start = figures.detected_at = opened_at
        if final_state == "closed":
            figures.impact_end = closed_at
    if final_state == "closed":
        figures.resolved_at = closed_at
    severity = max((a.severity for a in alerts), key=severity_rank, default="none")
    return Timeline(
        id=incident,
        state=final_state,
        root=root,
        inferred=inferred.get(incident, False),
        root_alert=root_alert,
        severity=severity,
        opened_at=opened_at,
        closed_at=closed_at if final_state in ("closed", "merged") else None,
        merged_into=merged_into if final_state == "merged" else None,
        survivor=_survivor(incident, links) if final_state == "merged" else None,
        merged_in=family[1:],
        acknowledged_by=humans["acknowledged"],
        silenced_by=humans["silenced"],
        alerts=alerts,
        entries=entries,
        messages=messages,
        figures=figures,
        evidence=evidence,
        events=len(entries),
    )


def empty(origin: str) -> TimelineNotFound:
    return TimelineNotFound(f"no decision events in {origin}: nothing has been recorded yet")


def not_found(incident: str, origin: str, known: int) -> TimelineNotFound:
    if not known:
        return TimelineNotFound(f"no incident {incident} in {origin}: it records no incident at all")
    return TimelineNotFound(
        f"no incident {incident} in {origin} ({known} incident{'s' if known != 1 else ''} recorded; "
        "`alert-router incidents` lists them)"
    )


def _entry(event: Mapping[str, Any], at: datetime, seq: int) -> Entry:
    kind = str(event.get("kind"))
    path = event.get("path")
    return Entry(
        at=at,
        seq=seq,
        incident=event.get("incident"),
        category=_category(kind),
        kind=kind,
        text=entry_text(event),
        entity=event.get("entity") or (event.get("new_root") if kind == "root_reattributed" else None),
        alertname=event.get("alertname"),
        fingerprint=event.get("fingerprint"),
        actor=event.get("user") if kind in HUMAN_KINDS else None,
        reason=event.get("reason"),
        path=list(path) if isinstance(path, list) else None,
    )


def _move(alerts: list[Alert], source: str, target: str, bridge: list[str]) -> None:
    """The engine's merge: each alert of `source` joins `target`, its path extended by the bridge."""
    for alert in alerts:
        if alert.current != source:
            continue
        if bridge:
            alert.path = alert.path + bridge[1:] if alert.path else list(bridge)
        alert.current = target


def _survivor(incident: str, links: Mapping[str, str]) -> str:
    seen = {incident}
    while incident in links and links[incident] not in seen:
        incident = links[incident]
        seen.add(incident)
    return incident


def _primary(alerts: Iterable[Alert]) -> Alert | None:
    ordered = sorted(alerts, key=lambda a: (-severity_rank(a.severity), a.fired_at, a.fingerprint))
    return ordered[0] if ordered else None


def _root_from_notifications(notifications: Sequence[Mapping[str, Any]], incident: str) -> str | None:
    for note in reversed(notifications):
        if note.get("incident") == incident and isinstance(note.get("root"), dict):
            return note["root"].get("entity")
    return None


# ------------------------------------------------------------------------------ listing


@dataclass
class IncidentSummary:
    id: str
    state: str
    root: str
    severity: str
    opened_at: datetime
    paged_at: datetime | None
    closed_at: datetime | None
    merged_into: str | None
    alerts: int
    pages: int
    entities: set[str]


def summarize(
    events: Sequence[Mapping[str, Any]], notifications: Sequence[Mapping[str, Any]] = ()
) -> list[IncidentSummary]:
    """Every incident of a recording in one pass, with the totals of its merged-in incidents."""
    found: dict[str, IncidentSummary] = {}
    own_alerts: dict[str, int] = {}
    own_pages: dict[str, int] = {}
    own_severity: dict[str, str] = {}
    severities: dict[str, str] = {}
    for seq, event in enumerate(events):
        kind = str(event.get("kind"))
        if kind == "alert_fired":
            severities[str(event.get("fingerprint"))] = str(event.get("severity", "warning"))
        owner = event.get("incident")
        if not owner:
            continue
        owner = str(owner)
        at = event_time(event, f"event {seq + 1}")
        item = found.get(owner)
        if item is None:
            item = found[owner] = IncidentSummary(
                owner, "open", str(event.get("entity") or ""), "none", at, None, None, None, 0, 0, set()
            )
        item.state = next_state(item.state, kind) or item.state
        if kind in ("root_alert", "symptom_attached"):
            own_alerts[owner] = own_alerts.get(owner, 0) + 1
            item.entities.add(str(event.get("entity")))
            severity = severities.get(str(event.get("fingerprint")), "warning")
            if severity_rank(severity) > severity_rank(own_severity.get(owner)) or owner not in own_severity:
                own_severity[owner] = severity
        elif kind == "root_reattributed":
            item.root = str(event.get("new_root"))
            adopted = found.get(str(event.get("absorbed")))
            if adopted is not None:  # the cause lives on in the paged incident: no `merged` event
                adopted.state, adopted.merged_into, adopted.closed_at = "merged", owner, at
        elif kind == "paged" and item.paged_at is None:
            item.paged_at = at
        elif kind == "notified" and event.get("action") == "page":
            own_pages[owner] = own_pages.get(owner, 0) + 1
        elif kind == "merged":
            item.merged_into = str(event.get("into"))
        if kind in CLOSING_KINDS or kind == "merged":
            item.closed_at = at
        elif kind == "reopened":
            item.closed_at = None
    links = parents(events)
    own_entities = {i: {item.root, *item.entities} for i, item in found.items()}
    for incident_id, item in found.items():
        family = family_of(incident_id, links)
        item.alerts = sum(own_alerts.get(i, 0) for i in family)
        item.pages = sum(own_pages.get(i, 0) for i in family)
        levels = [own_severity[i] for i in family if i in own_severity]
        item.severity = max(levels, key=severity_rank) if levels else "none"
        item.entities = set().union(*(own_entities.get(i, set()) for i in family))
    if not found and notifications:
        raise InputError("notifications without decision events: give the --events file of the replay")
    return sorted(found.values(), key=lambda s: (s.opened_at, s.id))


def iso(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None
