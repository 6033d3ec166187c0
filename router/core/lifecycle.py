"""Incidents and their lifecycle: the one table of transitions, and the book of incidents.

An incident is a root entity and the alerts attached to it (its root alerts and its symptoms).
Its state moves only through `TRANSITIONS`; any other move is a bug and raises. The book keeps
every incident, the live one per root entity, and the escalated incidents that closed moments
ago (their root firing again reopens them). Membership counters (`enter`, `leave`, `recount`)
are kept up to date as alerts come and go, so that no decision scans an incident.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from ground.times import format_time
from router.core.alerts import AlertState
from rules.schema import severity_rank


class State(StrEnum):
    OPEN = "open"
    PAGED = "paged"
    RECOVERED = "recovered"
    RESOLVING = "resolving"
    CLOSED = "closed"
    MERGED = "merged"


# (state, trigger) -> new state. The one table of the incident lifecycle.
TRANSITIONS: dict[tuple[State, str], State] = {
    (State.OPEN, "escalate"): State.PAGED,
    (State.OPEN, "root_resolved"): State.RECOVERED,
    (State.OPEN, "merged"): State.MERGED,
    (State.OPEN, "human_resolve"): State.CLOSED,
    (State.OPEN, "withdrawn"): State.CLOSED,  # an inferred root the evidence no longer supports
    (State.RECOVERED, "root_refired"): State.OPEN,
    (State.RECOVERED, "escalate"): State.PAGED,  # flapping
    (State.RECOVERED, "settled"): State.CLOSED,  # with a notice
    (State.RECOVERED, "merged"): State.MERGED,
    (State.RECOVERED, "human_resolve"): State.CLOSED,
    (State.PAGED, "root_resolved"): State.RESOLVING,
    (State.PAGED, "merged"): State.MERGED,
    (State.PAGED, "human_resolve"): State.CLOSED,
    (State.PAGED, "restored"): State.CLOSED,  # a lost heartbeat came back
    (State.RESOLVING, "root_refired"): State.PAGED,
    (State.RESOLVING, "settled"): State.CLOSED,  # with a resolve
    (State.RESOLVING, "merged"): State.MERGED,
    (State.RESOLVING, "human_resolve"): State.CLOSED,
    (State.CLOSED, "reopened"): State.PAGED,  # an escalated root fired again soon after it resolved
}

LIVE_STATES = frozenset({State.OPEN, State.PAGED, State.RECOVERED, State.RESOLVING})


@dataclass(slots=True)
class Incident:
    id: str
    root: str
    opened_at: datetime
    grace_until: datetime  # the earliest moment it may escalate (shown in views and events)
    inferred: bool = False
    inferred_reason: str = ""
    # What an inferred root rests on: the roots of the incidents merged into it. Re-checked on
    # every inference pass until it pages or an alert of its own confirms it.
    evidence: dict[str, None] = field(default_factory=dict)
    state: State = State.OPEN
    alerts: dict[str, None] = field(default_factory=dict)  # ordered set of fingerprints
    root_alerts: dict[str, None] = field(default_factory=dict)  # those on the root entity itself
    paged_at: datetime | None = None
    noticed: bool = False
    flapping: bool = False
    flap_count: int = 0  # fires within the flap window when it was found flapping
    root_resolved_at: datetime | None = None
    closed_at: datetime | None = None
    merged_into: str | None = None
    acknowledged_by: str | None = None
    silenced_by: str | None = None
    notified: dict[str, None] = field(default_factory=dict)  # symptoms already told to people
    pending: dict[str, None] = field(default_factory=dict)  # symptoms to tell in the next update
    pending_reasons: list[str] = field(default_factory=list)
    severity_told: str | None = None
    seq: int = 0
    # Kept up to date as alerts enter, leave and resolve, so no decision scans the incident.
    firing: int = 0  # firing alerts attached
    firing_roots: int = 0  # firing alerts on the root entity itself
    firing_lagging: int = 0  # firing symptoms whose rule lets them lag long after the root
    # An inferred root stops being "inferred-only" once it alerts: an alert that names a
    # failure, not one of a class that fires before its cause (held: a failed scrape, an
    # error rate), which a replica down or a caller's trouble raises as well.
    has_root_alert: bool = False
    root_urgency: str = "quiet"  # highest urgency among the alerts on the root entity itself
    top_severity: str = "none"
    top_urgency: str = "quiet"
    # When it may page / post a notice: the earliest due of its alerts of that urgency (and an
    # inferred root's own grace). Alerts of lower urgency never bring a page forward, so an old
    # quiet incident does not hand its age to a new page.
    page_due: datetime | None = None
    notice_due: datetime | None = None
    not_before: datetime | None = None  # an inferred root's own grace
    merged_due: datetime | None = None  # when an incident merged into it would have escalated
    witness: str | None = None  # "confirmed" or "refuted" by the second witness
    deferred: bool = False  # the page was put off once because the witness refuted the root
    checks: int = 0


URGENCY_RANK = {"quiet": 0, "notice": 1, "page": 2}


def count_firing(incident: Incident, alert: AlertState, delta: int, lagging_symptom: timedelta) -> None:
    incident.firing += delta
    if alert.entity == incident.root:
        incident.firing_roots += delta
    elif alert.cls.outlive_root > lagging_symptom:
        incident.firing_lagging += delta


def enter(incident: Incident, alert: AlertState, lagging_symptom: timedelta) -> None:
    """An alert joins the incident (as a root alert when it is on the root entity)."""
    incident.alerts[alert.fingerprint] = None
    if alert.firing:
        count_firing(incident, alert, +1, lagging_symptom)
    if alert.entity == incident.root:
        incident.root_alerts[alert.fingerprint] = None
        incident.has_root_alert = incident.has_root_alert or not alert.cls.hold
        if URGENCY_RANK.get(alert.cls.urgency, 2) > URGENCY_RANK[incident.root_urgency]:
            incident.root_urgency = alert.cls.urgency
    if severity_rank(alert.cls.severity) > severity_rank(incident.top_severity):
        incident.top_severity = alert.cls.severity
    if URGENCY_RANK.get(alert.cls.urgency, 2) > URGENCY_RANK[incident.top_urgency]:
        incident.top_urgency = alert.cls.urgency


def leave(incident: Incident, alert: AlertState, lagging_symptom: timedelta) -> None:
    incident.alerts.pop(alert.fingerprint, None)
    incident.root_alerts.pop(alert.fingerprint, None)
    if alert.firing:
        count_firing(incident, alert, -1, lagging_symptom)


def recount(incident: Incident, alerts: dict[str, AlertState], lagging_symptom: timedelta) -> None:
    """After the root changed: which attached alerts are on the root is new."""
    incident.firing = incident.firing_roots = incident.firing_lagging = 0
    for fp in incident.alerts:
        if alerts[fp].firing:
            count_firing(incident, alerts[fp], +1, lagging_symptom)
    on_root = [alerts[fp] for fp in incident.alerts if alerts[fp].entity == incident.root]
    incident.root_alerts = {a.fingerprint: None for a in on_root}
    incident.has_root_alert = any(not a.cls.hold for a in on_root)
    incident.root_urgency = max(
        (a.cls.urgency for a in on_root), key=URGENCY_RANK.__getitem__, default="quiet"
    )


class IncidentBook:
    """Every incident by id, the live incident of each root entity, and escalated incidents
    that closed moments ago (root -> (incident, closed at))."""

    def __init__(self) -> None:
        self.all: dict[str, Incident] = {}
        self.by_root: dict[str, str] = {}  # root entity -> live incident id
        self.live: dict[str, None] = {}  # ids of incidents in a live state
        self.recently_resolved: dict[str, tuple[str, datetime]] = {}

    def __getitem__(self, incident_id: str) -> Incident:
        return self.all[incident_id]

    def get(self, incident_id: str) -> Incident | None:
        return self.all.get(incident_id)

    def live_of(self, root: str) -> Incident | None:
        """The live incident whose root is `root`."""
        incident_id = self.by_root.get(root)
        if incident_id is None:
            return None
        incident = self.all[incident_id]
        return incident if incident.state in LIVE_STATES else None

    def survivor(self, incident: Incident) -> Incident:
        """Where a merged incident lives on."""
        while incident.state == State.MERGED and incident.merged_into:
            incident = self.all[incident.merged_into]
        return incident

    def new_id(self, root: str, now: datetime) -> str:
        """Stable across replays: a digest of the root and the time it opened."""
        salt = 0
        while True:
            digest = hashlib.sha256(f"{root}|{format_time(now)}|{salt}".encode()).hexdigest()
            candidate = f"inc-{digest[:6]}"
            if candidate not in self.all:
                return candidate
            salt += 1

    def add(self, incident: Incident) -> None:
        self.all[incident.id] = incident
        self.live[incident.id] = None
        self.by_root[incident.root] = incident.id

    def transition(
        self, incident: Incident, trigger: str, now: datetime
    ) -> Literal["closed", "reopened"] | None:
        """Move an incident by the table; says whether it left or re-entered the live states."""
        key = (incident.state, trigger)
        if key not in TRANSITIONS:
            raise RuntimeError(f"incident {incident.id}: no transition {trigger!r} from {incident.state}")
        was_live = incident.state in LIVE_STATES
        incident.state = TRANSITIONS[key]
        if was_live and incident.state not in LIVE_STATES:
            incident.closed_at = now
            self.live.pop(incident.id, None)
            if self.by_root.get(incident.root) == incident.id:
                del self.by_root[incident.root]
            if trigger == "settled" and incident.paged_at is not None:
                self.recently_resolved[incident.root] = (incident.id, now)
            return "closed"
        if not was_live and incident.state in LIVE_STATES:
            self.live[incident.id] = None
            self.by_root[incident.root] = incident.id
            return "reopened"
        return None
