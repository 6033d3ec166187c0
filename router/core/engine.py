"""The correlation engine: a pure, deterministic state machine over alerts and incidents.

Theory of operation
===================

Inputs are Alertmanager deliveries (`ingest`), the passage of time (`tick`) and human actions
(`act`). Every input carries its own time; the engine never reads a clock, does no I/O and uses
no randomness, so the live service and `alert-router replay` of a recorded stream make the same
decisions, byte for byte. Outputs are notifications (what people are told) and decision events
(the timeline, each with its reason).

Alerts. An alert *instance* is (fingerprint, startsAt). Deliveries are snapshots that repeat
alerts many times (group re-sends, HA replicas); a re-sent instance only refreshes `last_seen`,
a resolved one ends it for good (a stale "firing" re-send never reopens it), and a new startsAt
under the same fingerprint is a new instance that is judged afresh. Each new instance is
classified once by the rule set: the entity it concerns, whether a failure there propagates to
dependents, its grace (`escalate_after`), how long it may outlive a root as a symptom, urgency.

Failing entities. An entity is failing while it has a firing alert whose rule propagates, while
it is the root of an open inferred incident, or when it is a group (a Service, cluster DNS,
the apiserver) all of whose members are failing.

One delivery is one decision. Alertmanager groups by namespace, so a cause and its symptoms
often arrive together in any order: every alert of a delivery is classified and attributed, the
new failures re-judged and inference run, before any incident may escalate.

Attribution. An alert on entity E is a *symptom* when something E depends on is failing
(`router.reach`: hard edges, and a group's members only from E itself). Its incident is that
failing entity's incident; the path is the dependency chain from E to the incident's root.
Among several explanations one that rests on an alert beats one that rests on an unconfirmed
inference, then the deepest root wins, then the shortest path. Cluster DNS and the control plane
are cluster functions: when all their members fail they are the root, and a member explains
them only through what makes the member fail. An application's Service is never a root when its
pods fail: the workload behind it is. An alert nothing explains is a *root*: it opens (or joins)
the incident of its own entity. An alert with no entity at all is its own root: we never hide
what we do not understand.

Symptoms before causes. Causes routinely fire minutes after their symptoms (TargetDown `for:
10m` before KubeNodeNotReady `for: 15m`; application error rates within a minute or two). So an
alert is *due* only after its grace (time to heal) and its rule's *hold* (time for its cause to
show, for classes known to come first), and whenever an entity starts failing, every open
incident whose root depends on it is re-judged: it merges into the cause's incident. If the
merged incident had already paged, it is resolved with a reason pointing at the survivor; if the
survivor had not paged but the merged one had, the paged incident survives instead and its root
is re-attributed (one human, one thread).

Hidden roots (`router.inference`): when unexplained failures share a node, a workload, a zone or
cluster DNS that has no alert of its own, an incident is raised on that dependency with the
evidence as its symptoms; a real alert on it later becomes its root alert. Explaining away comes
first: evidence a failing entity with an alert explains is not evidence. Until it pages or an
alert confirms it, an inferred root is a hypothesis, re-checked on every inference pass and
withdrawn when the evidence no longer supports it; its alerts then find their place again.

Escalate only what did not heal. An incident pages (urgency `page`) once one of its firing alerts
of page urgency is due, or posts a notice (urgency `notice`); `quiet` alerts (info/none) never
bring an escalation forward but still explain others, so an old quiet incident does not hand its
age to a new alert. Correlation never pages later than an alert or a merged incident would have
on its own. An inferred root pages after the inference's grace once some of its evidence is past
its hold. A root that resolves before it is due makes the incident *recovered*; if it stays quiet
for `reopen_window` a notice closes the incident. One alert firing `flap_threshold` times within
`flap_window` pages as flapping: flapping is not healing.

Symptoms outlive roots. After a root resolves, its still-firing symptoms stay attached for
their rule's `outlive_root`, then detach and are judged afresh as alerts of their own. Symptoms
that lag by design (burn rates over hours) do not hold the resolve up, and one that first fires
after its cause healed, within its lag, is attached to the cause's incident. An escalated
incident resolves when its root and its other symptoms are gone; a notice or a resolve closes
the incident.

Watchdog. Heartbeat alerts never page; their absence does: resolved, or not re-sent for
`heartbeat_timeout`, pages "alerting pipeline down" on `pipeline/<cluster>/alerting-pipeline`.
`finish()` (end of a recording) stops the absence check.

Incident lifecycle
==================
States: OPEN (not escalated), PAGED, RECOVERED (root resolved while OPEN), RESOLVING (root
resolved while PAGED), CLOSED, MERGED. A hypothesis the evidence no longer supports is withdrawn
(OPEN -> CLOSED, nobody was told). A root that fires again within
`reopen_window` of its escalated incident's resolve reopens it (CLOSED -> PAGED, an update, no
second page). Every transition goes through `TRANSITIONS`; any other move is a bug and raises.

Time. Timers fire at their own due time; a timer due at T fires after every input stamped T
(information beats a timeout at a tie), and `tick(now)` fires only what is strictly past, so
a live service and a replay of its inputs agree.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ground.times import format_time, parse_time
from router.core.events import AlertRef, CheckRequest, Event, Notification, SymptomRef
from router.core.inference import Evidence, infer, inference_kind
from router.core.model import AlertPayload, Delivery
from router.core.reach import Reach
from router.core.settings import EngineSettings
from router.core.wording import count_kinds, describe, span
from rules.ruleset import Classification, RuleSet
from rules.schema import severity_rank
from topology import entities
from topology.graph import Topology


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
# Groups that are a cluster function of their own: when all their members fail, the group is
# the root (cluster DNS, not the CoreDNS Deployment).
INFRASTRUCTURE_GROUPS = frozenset({"dns", "apiserver", "etcd", "scheduler", "controller-manager"})
URGENCY_RANK = {"quiet": 0, "notice": 1, "page": 2}
# Below this many open incidents an inference pass is cheap enough to run on every new root.
INFER_AT_ONCE_UP_TO = 256
# What the second witness is asked about an inferred root, by the root's kind.
DEPENDENCY_CHECKS = {
    "node": "node_not_ready",
    "dns": "dns_down",
    "apiserver": "apiserver_down",
    "etcd": "etcd_down",
}


@dataclass(slots=True)
class AlertState:
    fingerprint: str
    starts_at: str
    labels: dict[str, str]
    alertname: str  # the `alertname` label, read once: every event and symptom names it
    annotations: dict[str, str]
    generator_url: str
    cls: Classification
    entity: str
    first_seen: datetime
    last_seen: datetime
    firing: bool = True
    resolved_at: datetime | None = None
    ends_at: str | None = None
    incident: str | None = None
    path: tuple[str, ...] = ()
    judged_at: datetime | None = None  # when it was last judged afresh (detached from a root)

    @property
    def hold_due(self) -> datetime:
        """When its hold for a cause ends (its arrival, for alerts that are not held)."""
        return (self.judged_at or self.first_seen) + self.cls.hold

    @property
    def due(self) -> datetime:
        """When this alert may escalate its incident: after its grace (time to heal) and its
        hold (time for a cause to show). Never later than it would have paged on its own."""
        return (self.judged_at or self.first_seen) + max(self.cls.escalate_after, self.cls.hold)

    def ref(self) -> AlertRef:
        return AlertRef(self.fingerprint, self.alertname, self.labels)


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
    has_root_alert: bool = False  # an inferred root stops being "inferred-only" once it alerts
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


class Engine:
    def __init__(self, topology: Topology, rules: RuleSet, settings: EngineSettings | None = None) -> None:
        self.topology = topology
        self.rules = rules
        self.settings = settings or EngineSettings()
        self.reach = Reach(topology)
        self.alerts: dict[str, AlertState] = {}  # fingerprint -> latest instance
        self._resolved_instances: dict[tuple[str, str], datetime] = {}
        self._forget_threshold = 50_000
        self._incidents: dict[str, Incident] = {}
        self._by_root: dict[str, str] = {}  # root entity -> live incident id
        self._live: dict[str, None] = {}  # ids of incidents in a live state
        self._failing: dict[str, int] = {}  # entity -> number of firing propagating alerts
        self._entity_alerts: dict[str, dict[str, None]] = {}  # entity -> firing fingerprints
        self._watchers: dict[str, dict[str, None]] = {}  # entity -> live incidents whose root reaches it
        # entity -> groups it can tip into failing (a member, or what a member depends on), for
        # the groups some incident's root reaches: when it starts failing, they are re-checked.
        self._group_triggers: dict[str, set[str]] = {}
        self._indexed_groups: set[str] = set()
        self._changed: dict[str, None] = {}  # entities that started failing since the last settle
        self._dirty: dict[str, None] = {}  # escalated incidents with something new to tell
        self._touched: dict[str, None] = {}  # incidents to consider for escalation after the input
        self._new_roots = False
        self._last_inference: datetime | None = None
        self._inference_pending = False
        self._flaps: dict[str, list[datetime]] = {}  # fingerprint -> when its instances fired
        self._withdrawn: dict[str, datetime] = {}  # inferred root -> when it was last withdrawn
        # entity -> (incident, when) its last propagating alert resolved: alerts that lag behind
        # their cause (burn rates over long windows) may fire after it healed.
        self._stopped_failing: dict[str, tuple[str, datetime]] = {}
        self._node_trouble: dict[str, dict[str, datetime]] = {}  # zone -> node -> last alert on it
        self._recently_resolved: dict[str, tuple[str, datetime]] = {}  # root -> (incident, closed at)
        self._heartbeats: dict[str, datetime] = {}  # fingerprint -> last seen
        self._heartbeat_checks = True
        self._timers: list[tuple[datetime, int, str, tuple[Any, ...]]] = []
        self._timer_seq = 0
        self._events: list[Event] = []
        self._checks: list[CheckRequest] = []
        self._out: list[Notification] = []
        self._clock: datetime | None = None
        self._group_cache: dict[str, bool] = {}
        self.counters: dict[str, int] = {
            "deliveries": 0,
            "alerts_received": 0,
            "duplicates": 0,
            "stale": 0,
            "instances": 0,
            "symptoms": 0,
            "pages": 0,
            "notices": 0,
            "updates": 0,
            "resolves": 0,
        }

    # ---------------------------------------------------------------- inputs

    def ingest(self, delivery: Delivery, now: datetime) -> list[Notification]:
        self._advance(now)
        self.counters["deliveries"] += 1
        for alert in delivery.payload.alerts:
            self.counters["alerts_received"] += 1
            self._observe(alert, now)
        self._settle(now)
        self._advance(now, inclusive=True)
        return self._take()

    def tick(self, now: datetime) -> list[Notification]:
        self._advance(now)
        self._settle(now)
        return self._take()

    def finish(self, now: datetime) -> list[Notification]:
        """End of a recording: stop the heartbeat check, run timers until nothing is pending."""
        self._heartbeat_checks = False
        self._advance(now, inclusive=True)
        limit = now + self.settings.drain_limit
        while self._timers and self._timers[0][0] <= limit:
            self._advance(self._timers[0][0], inclusive=True)
        self._settle(self._clock or now)
        return self._take()

    def act(
        self, incident_id: str, action: str, user: str, now: datetime, note: str = ""
    ) -> list[Notification]:
        """A human acted on an incident: acknowledge, resolve or silence."""
        self._advance(now)
        incident = self._survivor(self._incidents[incident_id])
        who = user or "someone"
        if action == "acknowledge":
            incident.acknowledged_by = who
            self._event(now, "acknowledged", incident, user=who, note=note)
            if incident.state == State.PAGED:
                self._queue_update(incident, f"acknowledged by {who}")
        elif action == "silence":
            incident.silenced_by = who
            self._event(now, "silenced", incident, user=who, note=note)
            if incident.state == State.PAGED:
                self._queue_update(incident, f"silenced by {who}" + (f" ({note})" if note else ""))
        elif action == "resolve":
            if incident.state in LIVE_STATES:
                was_paged = incident.state in (State.PAGED, State.RESOLVING)
                self._event(now, "human_resolved", incident, user=who, note=note)
                self._transition(incident, "human_resolve", now)
                if was_paged:
                    self._notify(now, "resolve", incident, (), f"resolved by {who}")
        else:
            raise ValueError(f"unknown action {action!r}")
        self._settle(now)
        self._advance(now, inclusive=True)
        return self._take()

    def witness(
        self, check_id: str, confirmed: bool | None, detail: str, now: datetime
    ) -> list[Notification]:
        """The second witness answered a check (None: it could not tell, e.g. a timeout)."""
        self._advance(now)
        incident_id, _, _ = check_id.partition("/")
        if incident_id not in self._incidents:
            raise KeyError(incident_id)
        incident = self._survivor(self._incidents[incident_id])
        self._event(now, "witness_answered", incident, check=check_id, confirmed=confirmed, detail=detail)
        if confirmed is True:
            incident.witness = "confirmed"
            if incident.inferred:
                self._maybe_escalate(incident, now)
        elif confirmed is False and not incident.inferred:
            incident.witness = "refuted"
        self._settle(now)
        self._advance(now, inclusive=True)
        return self._take()

    def set_topology(self, topology: Topology) -> None:
        """Swap in a refreshed graph (live discovery). Alerts keep the entities they were
        classified with; what depends on what is the new graph's from now on. Not an input of
        the recorded stream: a replay uses the topology it is given."""
        for incident_id in self._live:
            self._unwatch(self._incidents[incident_id])
        self.topology = topology
        self.reach = Reach(topology)
        self._group_cache.clear()
        self._group_triggers.clear()
        self._indexed_groups.clear()
        for incident_id in self._live:
            self._watch(self._incidents[incident_id])

    def drain_checks(self) -> list[CheckRequest]:
        checks, self._checks = self._checks, []
        return checks

    def drain_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> datetime | None:
        return self._timers[0][0] if self._timers else None

    # ------------------------------------------------------------ alert intake

    def _observe(self, payload: AlertPayload, now: datetime) -> None:
        fp = payload.fingerprint
        current = self.alerts.get(fp)
        same_instance = current is not None and current.starts_at == payload.startsAt
        if payload.status == "firing":
            if current is not None and current.firing:
                # A re-send, or Prometheus restarted and reported a new startsAt: same alert.
                self.counters["duplicates"] += 1
                current.last_seen = now
                current.starts_at = payload.startsAt
                if current.cls.heartbeat:
                    self._heartbeat_seen(current, now)
                return
            if same_instance or (fp, payload.startsAt) in self._resolved_instances:
                self.counters["stale"] += 1  # firing re-sent after we saw it resolve
                return
            self._fire(self._new_instance(payload, now), now)
            return
        # resolved
        if current is not None and same_instance and current.firing:
            current.ends_at = payload.endsAt
            self._resolve(current, now)
        elif current is not None and current.firing and parse_time(payload.endsAt):
            # Resolved under a startsAt we did not see (restart of Prometheus): it ends ours.
            current.ends_at = payload.endsAt
            self._resolve(current, now)
        else:
            self.counters["duplicates"] += 1
            self._resolved_instances.setdefault((fp, payload.startsAt), now)

    def _new_instance(self, payload: AlertPayload, now: datetime) -> AlertState:
        labels = dict(payload.labels)
        cls = self.rules.classify(labels, self.topology)
        entity = cls.entity or entities.entity(
            "alert", entities.cluster_of(labels), f"{labels.get('alertname', 'alert')}-{payload.fingerprint}"
        )
        self.counters["instances"] += 1
        return AlertState(
            fingerprint=payload.fingerprint,
            starts_at=payload.startsAt,
            labels=labels,
            alertname=labels.get("alertname", ""),
            annotations=dict(payload.annotations),
            generator_url=payload.generatorURL,
            cls=cls,
            entity=entity,
            first_seen=now,
            last_seen=now,
        )

    def _fire(self, alert: AlertState, now: datetime) -> None:
        self.alerts[alert.fingerprint] = alert
        self._flaps.setdefault(alert.fingerprint, []).append(now)
        self._note_trouble(alert.entity, now)
        self._event(
            now,
            "alert_fired",
            None,
            fingerprint=alert.fingerprint,
            alertname=alert.alertname,
            entity=alert.entity,
            severity=alert.cls.severity,
            rule=alert.cls.rule,
            mapped=alert.cls.how,
            starts_at=alert.starts_at,
        )
        if alert.cls.heartbeat:
            self._heartbeat_seen(alert, now)
            return
        self._entity_alerts.setdefault(alert.entity, {})[alert.fingerprint] = None
        if alert.cls.propagates:
            count = self._failing.get(alert.entity, 0)
            self._failing[alert.entity] = count + 1
            if count == 0:
                self._mark_changed(alert.entity)
        self._place(alert, now)

    def _resolve(self, alert: AlertState, now: datetime) -> None:
        alert.firing = False
        alert.resolved_at = now
        self._resolved_instances[(alert.fingerprint, alert.starts_at)] = now
        self._event(
            now,
            "alert_resolved",
            self._incidents.get(alert.incident or ""),
            fingerprint=alert.fingerprint,
            alertname=alert.alertname,
            entity=alert.entity,
            ends_at=alert.ends_at,
        )
        if alert.cls.heartbeat:
            self._heartbeat_lost(alert, now, "the Watchdog alert resolved")
            return
        firing_here = self._entity_alerts.get(alert.entity)
        if firing_here is not None:
            firing_here.pop(alert.fingerprint, None)
            if not firing_here:
                del self._entity_alerts[alert.entity]
        if alert.cls.propagates:
            count = self._failing.get(alert.entity, 0) - 1
            if count <= 0:
                self._failing.pop(alert.entity, None)
                if alert.incident is not None:
                    self._stopped_failing[alert.entity] = (alert.incident, now)
            else:
                self._failing[alert.entity] = count
            self._group_cache.clear()
        incident = self._incidents.get(alert.incident or "")
        if incident is not None and alert.fingerprint in incident.alerts:
            self._count_firing(incident, alert, -1)
        if incident is not None and incident.state in LIVE_STATES:
            self._after_alert_resolved(incident, alert, now)

    # ------------------------------------------------------------- attribution

    def _survivor(self, incident: Incident) -> Incident:
        while incident.state == State.MERGED and incident.merged_into:
            incident = self._incidents[incident.merged_into]
        return incident

    def _is_failing(self, entity: str) -> bool:
        if entity in self._failing:  # holds only positive counts
            return True
        incident_id = self._by_root.get(entity)
        if incident_id is not None:
            incident = self._incidents[incident_id]
            if incident.inferred and incident.state in (State.OPEN, State.PAGED):
                return True
        return self.reach.has_members(entity) and self._group_failing(entity)

    def _is_failing_real(self, entity: str) -> bool:
        """Failing for a reason that does not rest on an unconfirmed inference."""
        if entity in self._failing:
            return True
        incident_id = self._by_root.get(entity)
        if incident_id is not None:
            incident = self._incidents[incident_id]
            if incident.inferred and incident.state in (State.OPEN, State.PAGED):
                return not self._is_hypothesis(incident)
        return self.reach.has_members(entity) and self._group_failing(entity)

    def _real_explanation(self, entity: str, hypothesis: Incident) -> str | None:
        """A failing dependency of `entity`, other than `hypothesis`, that does not rest on an
        unconfirmed inference: the explanation that makes `entity` no evidence for it."""
        keys = self.reach.of(entity).keys()
        for dependency in sorted(keys & self._failing.keys()):  # alerting: the common case, in C
            return dependency
        for dependency in sorted((keys & self._by_root.keys()) | (keys & self.reach.group_entities)):
            if dependency != hypothesis.root and self._is_failing_real(dependency):
                return dependency
        return None

    def _group_failing(self, group: str) -> bool:
        cached = self._group_cache.get(group)
        if cached is not None:
            return cached
        members = self.reach.members(group)
        result = bool(members) and all(self._member_failing(m) for m in members)
        self._group_cache[group] = result
        return result

    def _member_failing(self, member: str) -> bool:
        if self._failing.get(member):
            return True
        return not self._failing.keys().isdisjoint(self.reach.hard(member))

    def _explanation(self, entity: str) -> tuple[Incident, tuple[str, ...]] | None:
        """The incident that explains a failure of `entity`, and the path to its root."""
        members: tuple[str, ...] | list[str] = ()
        if self._is_infrastructure_group(entity) and self._group_failing(entity):
            # Every member fails: the group itself is down (every CoreDNS pod crash-looping)
            # and stands as the root; one member does not explain it.
            reach = self.reach.hard(entity)
        else:
            reach = self.reach.of(entity)
            if self._is_infrastructure_group(entity):
                # A member explains the group's trouble only through what makes the member fail
                # (the node it ran on); a member failing by itself is the group failing.
                members = self.reach.members(entity)
        # Set operations on the dictionaries' keys run in C: a Deployment reaches hundreds of
        # entities, and few of them fail.
        keys = reach.keys()
        failing = keys & self._failing.keys()
        for candidate in (keys & self._by_root.keys()) | (keys & self.reach.group_entities):
            if candidate not in failing and self._is_failing(candidate):
                failing.add(candidate)
        if not failing:
            return None
        # Failing dependencies grouped by the incident their failure belongs to (often one: a
        # zone's pods, nodes and agents all lead to the zone), each with the length of its path
        # (paths are built only for the one chosen: most alerts have several candidates).
        options: dict[str, tuple[Incident, list[tuple[int, str, tuple[str, ...]]]]] = {}
        for dependency in sorted(failing):
            found = self._incident_of_failing(dependency)
            if found is None:
                continue
            incident, tail = found
            if incident.root == entity or incident.root in members:
                continue  # a group of which we are a member: not an explanation of ourselves
            if len(tail) > 1:
                path = self.reach.path(entity, dependency) + tail[1:]
                if len(set(path)) != len(path):
                    continue  # a cycle through ourselves explains nothing
                length = len(path)
            else:
                length = self.reach.depth(entity, dependency)
            options.setdefault(incident.id, (incident, []))[1].append((length, dependency, tail))
        best: tuple[tuple[bool, int, int, int, str], Incident, tuple[int, str, tuple[str, ...]]] | None = None
        for incident, candidates in options.values():
            # For one root, the shortest path explains best (pod -> node, not pod -> CNI agent
            # pod -> node). An incident that rests on an alert beats one that rests on an
            # unconfirmed inference (a replica's dead node, not the healthy node inferred from
            # replicas elsewhere); then the deepest root wins (farthest down what we depend on).
            shortest = min(candidates, key=lambda c: c[0])
            if len(options) == 1:  # the common case: every failure beneath leads to one incident
                best = ((False, 0, 0, 0, ""), incident, shortest)
                break
            hypothetical = self._is_hypothesis(incident)
            depth = self.reach.depth(entity, incident.root) if incident.root in reach else shortest[0]
            score = (hypothetical, -depth, shortest[0], -len(incident.alerts), incident.id)
            if best is None or score < best[0]:
                best = (score, incident, shortest)
        if best is None:
            return None
        _, dependency, tail = best[2]
        return best[1], self.reach.path(entity, dependency) + tail[1:]

    def _incident_of_failing(self, entity: str) -> tuple[Incident, tuple[str, ...]] | None:
        """For a failing entity: the live incident its failure belongs to, and the path from it."""
        for fp in self._entity_alerts.get(entity, ()):
            alert = self.alerts[fp]
            if not alert.cls.propagates:
                continue
            incident = self._incidents.get(alert.incident or "")
            if incident is not None and incident.state in LIVE_STATES:
                return incident, alert.path or (entity,)
        incident_id = self._by_root.get(entity)
        if incident_id is not None and self._incidents[incident_id].state in LIVE_STATES:
            return self._incidents[incident_id], (entity,)
        if self._group_failing(entity):
            return self._group_incident(entity)
        return None

    def _group_incident(self, group: str) -> tuple[Incident, tuple[str, ...]] | None:
        """All members of a group fail: one incident explains them all, or the group is a root."""
        tails: list[tuple[Incident, tuple[str, ...]]] = []
        for member in self.reach.members(group):
            explained = self._incident_of_failing(member) if self._failing.get(member) else None
            if explained is None:
                explained = self._explanation(member)
            if explained is None:
                break
            tails.append((explained[0], (member, *explained[1][1:]) if explained[1] else (member,)))
        if tails and len({t[0].id for t in tails}) == 1 and len(tails) == len(self.reach.members(group)):
            incident, tail = tails[0]
            return incident, (group, *tail)
        if not self._is_infrastructure_group(group):
            # An application's Service is only its pods' front door: when they all fail, what
            # makes them fail (their workload, their nodes) is the root, never the Service.
            if not tails:
                return None
            incident, tail = tails[0]
            return incident, (group, *tail)
        # Members fail for different reasons, or on their own: the group itself is the root.
        now = self._clock_now()
        members = self.reach.members(group)
        incident = self._open_incident(
            group, now, inferred=True, reason=f"all {len(members)} members of it are failing"
        )
        self._mark_changed(group)
        for member in members:
            own = self._by_root.get(member)
            incident = self._survivor(incident)
            if own is not None and own != incident.id and self._incidents[own].state in LIVE_STATES:
                self._merge(self._incidents[own], incident, (member, group), now)
        return incident, (group,)

    def _recently_resolved_incident(self, alert: AlertState, now: datetime) -> Incident | None:
        """The escalated incident this same alert was the root of, if it resolved moments ago:
        the alert firing again is the same problem back (another alert is another problem)."""
        recent = self._recently_resolved.get(alert.entity)
        if recent is None or now - recent[1] > self.settings.reopen_window:
            return None
        incident = self._incidents[recent[0]]
        if incident.state != State.CLOSED or alert.fingerprint not in incident.alerts:
            return None
        return incident

    def _reopen(self, incident: Incident, now: datetime) -> None:
        """On-call already knows this one: the same incident (and thread) reopens, no new page."""
        self._recently_resolved.pop(incident.root, None)
        gap = span(now - incident.closed_at) if incident.closed_at else "moments"
        self._transition(incident, "reopened", now)
        incident.closed_at = None
        incident.root_resolved_at = None
        self._event(now, "reopened", incident, reason=f"its root fired again {gap} after it resolved")
        self._queue_update(
            incident, f"reopened: {describe(incident.root)} fired again {gap} after it resolved"
        )

    def _is_infrastructure_group(self, entity: str) -> bool:
        """Cluster DNS and the control plane: groups that stand as a root when all their
        members fail. An application's Service does not: its workload or nodes do."""
        return self.reach.has_members(entity) and self.reach.kind(entity) in INFRASTRUCTURE_GROUPS

    def _failing_group_of(self, entity: str) -> Incident | None:
        """The incident of a failing infrastructure group this entity is a member of (cluster
        DNS down, all its CoreDNS pods crash-looping): a member's alert tells why the group
        fails. A group that merely has an alert that does not propagate (TargetDown) does not
        count, nor an application's Service (its pods' own failures are a better root)."""
        for group in self.reach.groups_of(entity):
            if not self._is_infrastructure_group(group):
                continue
            incident_id = self._by_root.get(group)
            if incident_id is None or not self._is_failing(group):
                continue
            if self._incidents[incident_id].state in (State.OPEN, State.PAGED):
                return self._incidents[incident_id]
        return None

    def _place(self, alert: AlertState, now: datetime) -> None:
        """Attach a new alert to the incident that explains it, or to its own entity's incident."""
        explained = self._explanation(alert.entity)
        if explained is None and alert.cls.outlive_root > self.settings.lagging_symptom:
            explained = self._lagging_explanation(alert, now)
        if explained is not None:
            incident, path = explained
            self._attach(incident, alert, path, now)
            return
        incident_id = self._by_root.get(alert.entity)
        if incident_id is not None and self._incidents[incident_id].state in LIVE_STATES:
            incident = self._incidents[incident_id]
        elif (recent := self._recently_resolved_incident(alert, now)) is not None:
            incident = recent
            self._reopen(incident, now)
        elif (group := self._failing_group_of(alert.entity)) is not None:
            # A member of a group that already has its incident (cluster DNS, a Service):
            # its alert tells why the group fails, so it belongs there.
            self._attach(group, alert, (alert.entity, group.root), now)
            return
        else:
            incident = self._open_incident(alert.entity, now, grace=alert.cls.escalate_after)
        self._attach(incident, alert, (alert.entity,), now)

    def _lagging_explanation(
        self, alert: AlertState, now: datetime
    ) -> tuple[Incident, tuple[str, ...]] | None:
        """An alert that lags behind its cause (a burn rate over hours) may first fire after the
        cause healed: a dependency that stopped failing within the alert's lag explains it."""
        best: tuple[datetime, str] | None = None
        for dependency in self.reach.of(alert.entity):
            stopped = self._stopped_failing.get(dependency)
            lags = stopped is not None and now - stopped[1] <= alert.cls.outlive_root
            if lags and (best is None or (stopped[1], dependency) > best):  # type: ignore[index]
                best = (stopped[1], dependency)  # type: ignore[index]
        if best is None:
            return None
        dependency = best[1]
        incident = self._survivor(self._incidents[self._stopped_failing[dependency][0]])
        return incident, self.reach.path(alert.entity, dependency)

    def _attach(self, incident: Incident, alert: AlertState, path: tuple[str, ...], now: datetime) -> None:
        alert.incident = incident.id
        alert.path = path
        is_root = alert.entity == incident.root
        first_root_alert = is_root and not incident.has_root_alert
        self._enter(incident, alert)
        if is_root:
            if incident.state in (State.PAGED, State.RESOLVING) and incident.inferred and first_root_alert:
                self._queue_update(incident, f"{alert.alertname} fired on it: the inferred root is confirmed")
            self._event(
                now,
                "root_alert",
                incident,
                fingerprint=alert.fingerprint,
                alertname=alert.alertname,
                entity=alert.entity,
                reason=self._why_root(alert),
            )
            self._root_fired(incident, alert, now)
        else:
            self.counters["symptoms"] += 1
            if self._is_hypothesis(incident) and not any(map(self._is_failing_real, path[1:-1])):
                incident.evidence[alert.entity] = None  # nothing with an alert lies between
            self._event(
                now,
                "symptom_attached",
                incident,
                fingerprint=alert.fingerprint,
                alertname=alert.alertname,
                entity=alert.entity,
                path=list(path),
                reason=f"{alert.entity} depends on {incident.root}",
            )
            if incident.state in (State.RECOVERED, State.RESOLVING) and alert.firing:
                self._schedule(now + alert.cls.outlive_root, "outlive", (incident.id, alert.fingerprint))
        # Correlation never pages later than this alert would have paged on its own.
        self._bring_forward(incident, alert.cls.urgency, alert.due)
        if self._told(incident):
            self._dirty[incident.id] = None
            if not is_root and alert.fingerprint not in incident.notified:
                incident.pending[alert.fingerprint] = None
        self._touched[incident.id] = None

    def _told(self, incident: Incident) -> bool:
        """Whether on-call knows the incident, so that what joins it is worth an update: it was
        paged (a lagging symptom may join it even after it resolved)."""
        return incident.state in (State.PAGED, State.RESOLVING) or (
            incident.state == State.CLOSED and incident.paged_at is not None
        )

    def _bring_forward(self, incident: Incident, urgency: str, due: datetime | None) -> None:
        """An alert (or a merged incident) of this urgency may escalate the incident from `due`."""
        if due is None or incident.state != State.OPEN:
            return
        if urgency == "page" and (incident.page_due is None or due < incident.page_due):
            incident.page_due = due
        elif urgency == "notice" and (incident.notice_due is None or due < incident.notice_due):
            incident.notice_due = due
        else:
            return
        incident.grace_until = min(d for d in (incident.page_due, incident.notice_due) if d is not None)
        self._schedule(due, "grace", (incident.id,))

    def _why_root(self, alert: AlertState) -> str:
        if alert.cls.entity is None:
            return "no entity could be identified from its labels: it stands on its own"
        return f"nothing {alert.entity} depends on is failing"

    def _root_fired(self, incident: Incident, alert: AlertState, now: datetime) -> None:
        # Flapping is one alert firing again and again (new instances after resolves), not
        # several alerts on one entity, nor one alert attached again after re-attribution.
        history = self._flaps.get(alert.fingerprint, [])
        horizon = now - self.settings.flap_window
        while history and history[0] < horizon:
            history.pop(0)
        if incident.state in (State.RECOVERED, State.RESOLVING):
            self._event(now, "root_refired", incident, reason="its root fired again")
            if incident.state == State.RECOVERED:
                # It healed once: give it a fresh grace (from this alert, see _attach);
                # flapping pages without waiting for it.
                incident.page_due = incident.notice_due = None
            self._transition(incident, "root_refired", now)
            incident.root_resolved_at = None
        if len(history) >= self.settings.flap_threshold and not incident.flapping:
            incident.flapping = True
            incident.flap_count = len(history)
            self._event(
                now,
                "flapping",
                incident,
                reason=f"fired {len(history)} times within {span(self.settings.flap_window)}",
            )
            if incident.state == State.PAGED:
                self._queue_update(incident, f"flapping: fired {len(history)} times")

    # -------------------------------------------------------------- incidents

    def _clock_now(self) -> datetime:
        assert self._clock is not None
        return self._clock

    def _open_incident(
        self,
        root: str,
        now: datetime,
        *,
        grace: timedelta | None = None,
        inferred: bool = False,
        reason: str = "",
    ) -> Incident:
        existing = self._by_root.get(root)
        if existing is not None and self._incidents[existing].state in LIVE_STATES:
            return self._incidents[existing]
        if grace is None:
            grace = self.settings.inference.escalate_after
        incident = Incident(
            id=self._incident_id(root, now),
            root=root,
            opened_at=now,
            grace_until=now + grace,
            inferred=inferred,
            inferred_reason=reason,
        )
        if inferred:
            # An inferred root has no alert of its own: it waits for the inference's grace,
            # and pages no earlier than its evidence would have (alerts held for their cause
            # wait out their hold: the cause may still show itself and be a better root).
            incident.not_before = incident.grace_until
        self._incidents[incident.id] = incident
        self._live[incident.id] = None
        self._by_root[root] = incident.id
        self._new_roots = True
        self._watch(incident)
        self._event(
            now,
            "root_inferred" if inferred else "incident_opened",
            incident,
            entity=root,
            grace_until=format_time(incident.grace_until),
            reason=reason or "no failing dependency explains it",
        )
        if inferred:
            self._schedule(incident.grace_until, "grace", (incident.id,))
            self._touched[incident.id] = None
        if self.settings.witness.enabled:
            if inferred and (kind := DEPENDENCY_CHECKS.get(entities.kind_of(root))):
                self._ask(incident, kind, root, {}, now)
            elif not inferred:
                self._schedule(
                    max(now, incident.grace_until - self.settings.witness.lead), "witness", (incident.id,)
                )
        return incident

    def _ask(self, incident: Incident, kind: str, entity: str, labels: dict[str, str], now: datetime) -> None:
        incident.checks += 1
        check = CheckRequest(f"{incident.id}/{incident.checks}", now, incident.id, kind, entity, labels)
        self._checks.append(check)
        self._event(now, "witness_asked", incident, check=check.id, question=kind, entity=entity)

    def _incident_id(self, root: str, now: datetime) -> str:
        salt = 0
        while True:
            digest = hashlib.sha256(f"{root}|{format_time(now)}|{salt}".encode()).hexdigest()
            candidate = f"inc-{digest[:6]}"
            if candidate not in self._incidents:
                return candidate
            salt += 1

    def _transition(self, incident: Incident, trigger: str, now: datetime) -> None:
        key = (incident.state, trigger)
        if key not in TRANSITIONS:
            raise RuntimeError(f"incident {incident.id}: no transition {trigger!r} from {incident.state}")
        was_live = incident.state in LIVE_STATES
        incident.state = TRANSITIONS[key]
        if was_live and incident.state not in LIVE_STATES:
            incident.closed_at = now
            self._live.pop(incident.id, None)
            if self._by_root.get(incident.root) == incident.id:
                del self._by_root[incident.root]
            self._unwatch(incident)
            if trigger == "settled" and incident.paged_at is not None:
                self._recently_resolved[incident.root] = (incident.id, now)
        elif not was_live and incident.state in LIVE_STATES:
            self._live[incident.id] = None
            self._by_root[incident.root] = incident.id
            self._watch(incident)

    def _watch(self, incident: Incident) -> None:
        """Index a live incident under everything its root depends on, to re-judge it when one
        of them starts failing."""
        for dependency in self.reach.of(incident.root):
            self._watchers.setdefault(dependency, {})[incident.id] = None
            if dependency not in self._indexed_groups and self.reach.has_members(dependency):
                self._index_group(dependency)

    def _index_group(self, group: str) -> None:
        """A group fails when all its members do, and a member fails with what it depends on:
        index the group under those, so that their failure re-checks the group's watchers."""
        self._indexed_groups.add(group)
        for member in self.reach.members(group):
            self._group_triggers.setdefault(member, set()).add(group)
            for dependency in self.reach.hard(member):
                self._group_triggers.setdefault(dependency, set()).add(group)

    def _unwatch(self, incident: Incident) -> None:
        for dependency in self.reach.of(incident.root):
            watchers = self._watchers.get(dependency)
            if watchers is not None:
                watchers.pop(incident.id, None)

    def _count_firing(self, incident: Incident, alert: AlertState, delta: int) -> None:
        incident.firing += delta
        if alert.entity == incident.root:
            incident.firing_roots += delta
        elif alert.cls.outlive_root > self.settings.lagging_symptom:
            incident.firing_lagging += delta

    def _enter(self, incident: Incident, alert: AlertState) -> None:
        incident.alerts[alert.fingerprint] = None
        if alert.firing:
            self._count_firing(incident, alert, +1)
        if alert.entity == incident.root:
            incident.root_alerts[alert.fingerprint] = None
            incident.has_root_alert = True
            if URGENCY_RANK.get(alert.cls.urgency, 2) > URGENCY_RANK[incident.root_urgency]:
                incident.root_urgency = alert.cls.urgency
        if severity_rank(alert.cls.severity) > severity_rank(incident.top_severity):
            incident.top_severity = alert.cls.severity
        if URGENCY_RANK.get(alert.cls.urgency, 2) > URGENCY_RANK[incident.top_urgency]:
            incident.top_urgency = alert.cls.urgency

    def _leave(self, incident: Incident, alert: AlertState) -> None:
        incident.alerts.pop(alert.fingerprint, None)
        incident.root_alerts.pop(alert.fingerprint, None)
        if alert.firing:
            self._count_firing(incident, alert, -1)

    def _recount(self, incident: Incident) -> None:
        """After the root changed: which attached alerts are on the root is new."""
        incident.firing = incident.firing_roots = incident.firing_lagging = 0
        for fp in incident.alerts:
            if self.alerts[fp].firing:
                self._count_firing(incident, self.alerts[fp], +1)
        on_root = [self.alerts[fp] for fp in incident.alerts if self.alerts[fp].entity == incident.root]
        incident.root_alerts = {a.fingerprint: None for a in on_root}
        incident.has_root_alert = bool(on_root)
        incident.root_urgency = max(
            (a.cls.urgency for a in on_root), key=URGENCY_RANK.__getitem__, default="quiet"
        )

    def _root_firing(self, incident: Incident) -> bool:
        if incident.inferred and not incident.has_root_alert:
            return incident.firing > 0  # an inferred root fires while its evidence does
        return incident.firing_roots > 0

    def _urgency(self, incident: Incident) -> str:
        return incident.top_urgency

    def _firing_urgency(self, incident: Incident) -> str:
        """What still fires decides whether to wake someone, not what already resolved."""
        if incident.root_urgency == "page" and incident.firing_roots:
            return "page"
        best = "quiet"
        for fp in incident.alerts:
            alert = self.alerts[fp]
            if alert.firing and URGENCY_RANK.get(alert.cls.urgency, 2) > URGENCY_RANK[best]:
                best = alert.cls.urgency
                if best == "page":
                    break
        return best

    def _severity(self, incident: Incident) -> str:
        return incident.top_severity

    def _maybe_escalate(self, incident: Incident, now: datetime) -> None:
        if incident.state not in (State.OPEN, State.RECOVERED):
            return
        flapping = incident.flapping
        confirmed = incident.witness == "confirmed" and incident.inferred
        if not (flapping or confirmed) and incident.state != State.OPEN:
            return
        if not flapping and not self._root_firing(incident):
            return
        if flapping:
            urgency = incident.root_urgency  # flapping is not healing, but info stays info
        elif confirmed:
            urgency = self._firing_urgency(incident)
        else:
            urgency = self._due_urgency(incident, now)
        if urgency == "quiet":
            return
        if incident.witness == "refuted" and not incident.deferred and not flapping:
            # Prometheus no longer sees the root firing: give Alertmanager's resolve a moment.
            incident.deferred = True
            until = now + self.settings.witness.defer
            incident.page_due = incident.grace_until = until
            self._schedule(until, "grace", (incident.id,))
            self._event(
                now,
                "page_deferred",
                incident,
                until=format_time(until),
                reason="Prometheus no longer sees the root alert firing",
            )
            return
        if urgency == "page":
            self._page(incident, now)
        elif urgency == "notice" and not incident.noticed and incident.state == State.OPEN:
            incident.noticed = True
            self._notify(now, "notice", incident, self._symptoms(incident), self._page_reason(incident, now))

    def _due_urgency(self, incident: Incident, now: datetime) -> str:
        """The loudest urgency among firing alerts whose time has come (quiet if none)."""
        if incident.inferred:
            # The inference is evidence too: a workload inferred from its failing pods pages on
            # the inference's grace even when its own (slower) alert has joined it since.
            urgency = self._inferred_due_urgency(incident, now)
            if urgency != "quiet" or not incident.has_root_alert:
                return urgency
        page_due = incident.page_due is not None and incident.page_due <= now
        notice_due = incident.notice_due is not None and incident.notice_due <= now
        if not (page_due or notice_due):
            return "quiet"
        best = "quiet"
        for fp in incident.alerts:
            alert = self.alerts[fp]
            if not alert.firing or alert.due > now:
                continue
            if alert.cls.urgency == "page":
                return "page"
            if alert.cls.urgency == "notice":
                best = "notice"
        if best == "quiet" and page_due:
            # A page-urgency alert was due but resolved: a later one waits for its own due.
            later = [self.alerts[fp].due for fp in incident.alerts if self._pending_page(fp, now)]
            incident.page_due = min(later) if later else None
            if incident.page_due is not None:
                self._schedule(incident.page_due, "grace", (incident.id,))
        return best

    def _inferred_due_urgency(self, incident: Incident, now: datetime) -> str:
        """An inferred root pages after the inference's own grace, once some of its evidence is
        past its hold (alerts that usually precede their cause give the cause time to show and be
        a better root); or as soon as an incident merged into it would have paged on its own."""
        if incident.merged_due is not None and incident.merged_due <= now:
            return self._firing_urgency(incident)
        if incident.not_before is not None and now < incident.not_before:
            self._schedule(incident.not_before, "grace", (incident.id,))
            return "quiet"
        settles = self._zone_settles(incident.root)
        if settles is not None and now < settles:
            # Other nodes of its zone are failing too: the zone may be the root, and its nodes'
            # alerts arrive up to a group interval apart. Let that picture settle first.
            self._schedule(settles, "grace", (incident.id,))
            return "quiet"
        waiting: datetime | None = None
        for fp in incident.alerts:
            alert = self.alerts[fp]
            if not alert.firing or alert.cls.urgency == "quiet":
                continue
            if alert.hold_due <= now:
                return self._firing_urgency(incident)
            if waiting is None or alert.hold_due < waiting:
                waiting = alert.hold_due
        if waiting is not None:
            self._schedule(waiting, "grace", (incident.id,))
        return "quiet"

    def _pending_page(self, fingerprint: str, now: datetime) -> bool:
        alert = self.alerts[fingerprint]
        return alert.firing and alert.cls.urgency == "page" and alert.due > now

    def _page(self, incident: Incident, now: datetime) -> None:
        self._transition(incident, "escalate", now)
        incident.paged_at = now
        symptoms = self._symptoms(incident)
        reason = self._page_reason(incident, now)
        self._event(now, "paged", incident, severity=self._severity(incident), reason=reason)
        incident.notified.update((s.fingerprint, None) for s in symptoms)
        incident.pending.clear()
        incident.pending_reasons.clear()
        incident.severity_told = self._severity(incident)
        self._notify(now, "page", incident, symptoms, reason)
        if not self._root_firing(incident):
            # Paged for flapping while the root is momentarily resolved.
            self._root_resolved(incident, now)

    def _symptoms(self, incident: Incident, only: Iterable[str] | None = None) -> tuple[SymptomRef, ...]:
        chosen = incident.alerts if only is None else only
        out = []
        for fp in chosen:
            alert = self.alerts[fp]
            if alert.entity == incident.root or alert.incident != incident.id:
                continue
            out.append(SymptomRef(fp, alert.alertname, alert.entity, alert.path))
        return tuple(out)

    def _primary_root_alert(self, incident: Incident) -> AlertState | None:
        roots = [self.alerts[fp] for fp in incident.root_alerts]
        if not roots:
            return None
        roots.sort(key=lambda a: (not a.firing, -severity_rank(a.cls.severity), a.first_seen, a.fingerprint))
        return roots[0]

    def _page_reason(self, incident: Incident, now: datetime) -> str:
        root_alert = self._primary_root_alert(incident)
        symptoms = self._symptoms(incident)
        if incident.inferred and root_alert is None:
            head = f"{describe(incident.root)} inferred as root cause: {incident.inferred_reason}"
        elif root_alert is not None and entities.kind_of(incident.root) == "alert":
            head = f"{root_alert.alertname} (no entity could be identified from its labels)"
        elif root_alert is not None:
            head = f"{root_alert.alertname} on {describe(incident.root)}"
        else:
            head = f"{describe(incident.root)} is failing"
        if incident.flapping:
            head += f"; flapping: fired {incident.flap_count} times " + (
                f"within {span(self.settings.flap_window)}"
            )
        else:
            head += f"; still firing after {span(now - incident.opened_at)}"
        if symptoms:
            kinds = count_kinds(s.entity for s in symptoms)
            head += f"; {len(symptoms)} alerts on what depends on it are its symptoms ({kinds})"
        return head

    def _queue_update(self, incident: Incident, reason: str) -> None:
        incident.pending_reasons.append(reason)
        self._dirty[incident.id] = None

    def _after_alert_resolved(self, incident: Incident, alert: AlertState, now: datetime) -> None:
        if incident.state in (State.OPEN, State.PAGED) and not self._root_firing(incident):
            self._root_resolved(incident, now)
        self._maybe_settle(incident, now)

    def _root_resolved(self, incident: Incident, now: datetime) -> None:
        incident.root_resolved_at = now
        self._event(now, "root_recovered", incident, reason="its root stopped firing")
        self._transition(incident, "root_resolved", now)
        self._schedule(now + self.settings.reopen_window, "reopen", (incident.id, format_time(now)))
        for fp in incident.alerts:
            alert = self.alerts[fp]
            if alert.firing and alert.entity != incident.root:
                self._schedule(now + alert.cls.outlive_root, "outlive", (incident.id, fp))
        self._group_cache.clear()

    def _maybe_settle(self, incident: Incident, now: datetime) -> None:
        """Close a recovered/resolving incident once its root stayed quiet and nothing fires."""
        if incident.state not in (State.RECOVERED, State.RESOLVING) or incident.root_resolved_at is None:
            return
        if incident.firing > incident.firing_lagging:
            return  # lagging symptoms (burn rates over long windows) stay attached, holding nothing up
        # An escalated incident resolves as soon as all is quiet; one that healed within its
        # grace waits out the reopen window first, so that flapping is not taken for healing.
        waits = incident.state == State.RECOVERED or incident.flapping
        if waits and now < incident.root_resolved_at + self.settings.reopen_window:
            return
        was_paged = incident.state == State.RESOLVING
        duration = span(now - incident.opened_at)
        self._transition(incident, "settled", now)
        if was_paged:
            self._event(now, "resolved", incident, reason=f"root and symptoms resolved after {duration}")
            self._notify(now, "resolve", incident, (), f"root and all symptoms resolved; lasted {duration}")
        else:
            reason = self._recovery_reason(incident)
            self._event(now, "noticed", incident, reason=reason)
            if self._urgency(incident) != "quiet":
                self._notify(now, "notice", incident, self._symptoms(incident), reason)

    def _recovery_reason(self, incident: Incident) -> str:
        root_alert = self._primary_root_alert(incident)
        what = root_alert.alertname if root_alert else "failure"
        resolved = incident.root_resolved_at or incident.opened_at
        lasted = span(resolved - incident.opened_at)
        symptoms = self._symptoms(incident)
        text = f"{what} on {describe(incident.root)} recovered by itself after {lasted}, within its grace"
        if symptoms:
            text += f"; {len(symptoms)} symptoms went with it"
        return text

    def _detach(self, incident: Incident, alert: AlertState, now: datetime) -> None:
        """A symptom outlived its root's hold: judge it afresh as an alert of its own. Under a
        root that paged it gets its own grace from now (people knew; pods take time to settle
        after a node returns); under a quiet root nobody was told, so it keeps its age and is
        not hidden a second time."""
        self._leave(incident, alert)
        incident.pending.pop(alert.fingerprint, None)
        self._event(
            now,
            "symptom_detached",
            incident,
            fingerprint=alert.fingerprint,
            alertname=alert.alertname,
            entity=alert.entity,
            reason=f"still firing {span(alert.cls.outlive_root)} after its root recovered",
        )
        alert.incident = None
        alert.path = ()
        if incident.paged_at is not None:
            alert.judged_at = now
        self._place(alert, now)

    def _merge(self, source: Incident, target: Incident, bridge: tuple[str, ...], now: datetime) -> None:
        """`source`'s root turned out to depend on `target`'s root through `bridge`."""
        if source.state in (State.PAGED, State.RESOLVING) and target.state not in (
            State.PAGED,
            State.RESOLVING,
        ):
            self._adopt(source, target, bridge, now)
            return
        moved: list[str] = []
        if target.inferred:
            target.evidence[source.root] = None
            target.evidence.update(source.evidence)
        for fp in list(source.alerts):
            alert = self.alerts[fp]
            if alert.entity == target.root:
                alert.path = (alert.entity,)  # an alert on the inferred root itself is its root alert
            else:
                alert.path = alert.path + bridge[1:] if alert.path else bridge
            alert.incident = target.id
            self._enter(target, alert)
            moved.append(fp)
            if target.state in (State.PAGED, State.RESOLVING) and fp not in target.notified:
                target.pending[fp] = None
                self._dirty[target.id] = None
        source.alerts.clear()
        source.root_alerts.clear()
        source.firing = source.firing_roots = source.firing_lagging = 0
        source.merged_into = target.id
        # Correlation never pages later than the merged incident would have on its own; an
        # incident of quiet alerts brings nothing forward.
        self._bring_forward(target, "page", source.page_due)
        self._bring_forward(target, "notice", source.notice_due)
        rests_on_alerts = not (source.inferred and not source.has_root_alert)
        if rests_on_alerts and source.page_due is not None:
            target.merged_due = min(source.page_due, target.merged_due or source.page_due)
        self._event(
            now,
            "merged",
            source,
            into=target.id,
            path=list(bridge),
            reason=f"{source.root} depends on {target.root}, which is failing",
        )
        was_paged = source.state in (State.PAGED, State.RESOLVING)
        self._transition(source, "merged", now)
        self._event(now, "absorbed", target, incident_merged=source.id, alerts=len(moved))
        if was_paged:
            self._notify(
                now,
                "resolve",
                source,
                (),
                f"merged into {target.id}: {describe(target.root)} is the root cause",
            )
            self._queue_update(target, f"incident {source.id} merged in")
        if target.state in (State.RECOVERED, State.RESOLVING):
            for fp in moved:
                if self.alerts[fp].firing:
                    self._schedule(now + self.alerts[fp].cls.outlive_root, "outlive", (target.id, fp))
        self._touched[target.id] = None

    def _adopt(self, paged: Incident, cause: Incident, bridge: tuple[str, ...], now: datetime) -> None:
        """A paged incident found its cause in an unpaged one: keep the paged incident (one page,
        one thread) and re-attribute its root to the cause."""
        old_root = paged.root
        for fp in list(paged.alerts):
            alert = self.alerts[fp]
            alert.path = alert.path + bridge[1:] if alert.path else bridge
            if fp not in paged.notified:
                paged.pending[fp] = None
        for fp in list(cause.alerts):
            alert = self.alerts[fp]
            alert.incident = paged.id
            self._enter(paged, alert)
            if alert.entity != cause.root:
                paged.pending[fp] = None
        cause.alerts.clear()
        cause.root_alerts.clear()
        cause.firing = cause.firing_roots = cause.firing_lagging = 0
        cause.merged_into = paged.id
        self._transition(cause, "merged", now)
        # Re-index the surviving incident under its new root.
        self._unwatch(paged)
        if self._by_root.get(old_root) == paged.id:
            del self._by_root[old_root]
        paged.root = cause.root
        self._recount(paged)
        paged.inferred = cause.inferred
        paged.inferred_reason = cause.inferred_reason
        self._by_root[paged.root] = paged.id
        self._watch(paged)
        for fp in paged.alerts:
            if self.alerts[fp].entity == old_root:
                paged.pending[fp] = None
        self._event(
            now,
            "root_reattributed",
            paged,
            old_root=old_root,
            new_root=paged.root,
            absorbed=cause.id,
            path=list(bridge),
            reason=f"{old_root} depends on {paged.root}, which is failing",
        )
        self._queue_update(paged, f"root cause re-attributed to {describe(paged.root)}")
        if paged.state == State.RESOLVING and self._root_firing(paged):
            self._transition(paged, "root_refired", now)

    # -------------------------------------------------------- settle & infer

    def _mark_changed(self, entity: str) -> None:
        self._changed[entity] = None
        self._group_cache.clear()

    def _note_trouble(self, entity: str, now: datetime) -> None:
        """Remember when something on a node (the node, its agents, its pods) last alerted."""
        kind = self.reach.kind(entity)
        if kind == "node":
            node = entity
        elif kind == "node-component":
            node = entity.rsplit("/", 1)[0]
        elif kind == "pod" and (where := self.topology.attrs(entity).get("node")):
            node = str(where)
        else:
            return
        if zone := self.topology.attrs(node).get("zone"):
            self._node_trouble.setdefault(str(zone), {})[node] = now

    def _zone_settles(self, node: str) -> datetime | None:
        """For an inferred node: when the picture of its zone has settled, if other nodes of the
        zone had alerts lately (the zone may be the root, and its nodes' alerts arrive up to a
        group interval apart)."""
        if self.reach.kind(node) != "node" or not (zone := self.topology.attrs(node).get("zone")):
            return None
        troubled = self._node_trouble.get(str(zone), {})
        latest = max((at for other, at in troubled.items() if other != node), default=None)
        return latest + self.settings.inference.zone_settle if latest else None

    def _settle(self, now: datetime) -> None:
        """After inputs: re-judge incidents a new failure may explain, infer hidden roots, and
        tell people what changed (one update per incident per burst)."""
        for _ in range(8):
            changed = list(self._changed)
            self._changed.clear()
            if changed:
                self._rejudge(changed, now)
                self._new_roots = True  # a new failure may explain away what an inference rests on
            if self._new_roots:
                self._new_roots = False
                self._maybe_infer(now)
            if not self._changed and not self._new_roots:
                break
        # One input is one decision: escalate only once the whole delivery is attributed.
        touched, self._touched = self._touched, {}
        for incident_id in touched:
            self._maybe_escalate(self._survivor(self._incidents[incident_id]), now)
        self._flush_updates(now)

    def _rejudge(self, changed: list[str], now: datetime) -> None:
        for entity in changed:
            self._absorb_members(entity, now)
        candidates: dict[str, None] = {}
        for entity in changed:
            candidates.update(self._watchers.get(entity, {}))
            for group in sorted(self._group_triggers.get(entity, ())):
                if self._group_failing(group):
                    candidates.update(self._watchers.get(group, {}))
        for incident_id in sorted(candidates, key=lambda i: (self._incidents[i].opened_at, i)):
            incident = self._incidents[incident_id]
            if incident.state not in (State.OPEN, State.PAGED):
                continue  # a root that already healed is not explained by what fails now
            explained = self._explanation(incident.root)
            if explained is None:
                continue
            target, bridge = explained
            if target.id == incident.id:
                continue
            if self._is_workload_inference(incident) and self._split_workload(incident, target, now):
                continue
            self._merge(incident, target, bridge, now)

    @staticmethod
    def _is_workload_inference(incident: Incident) -> bool:
        return incident.inferred and inference_kind(incident.root) == "workload"

    def _split_workload(self, incident: Incident, target: Incident, now: datetime) -> bool:
        """A workload inferred from its failing pods is explained by one pod's node only as far
        as that pod goes: pods that fail for their own reason keep their incident. The alerts a
        real failure explains leave for it; a hypothesis left with too little evidence is then
        withdrawn by the inference pass. False when `target` explains every alert (merge)."""
        explained: list[AlertState] = []
        for fp in incident.alerts:
            alert = self.alerts[fp]
            if alert.entity == incident.root:
                return False  # the workload's own alert: the workload itself is explained
            found = self._explanation(alert.entity)
            if found is None or found[0].id != target.id:
                continue
            explained.append(alert)
        if len(explained) == len(incident.alerts):
            return False
        for alert in explained:
            self._leave(incident, alert)
            incident.pending.pop(alert.fingerprint, None)
            incident.evidence.pop(alert.entity, None)
            self._event(
                now,
                "symptom_detached",
                incident,
                fingerprint=alert.fingerprint,
                alertname=alert.alertname,
                entity=alert.entity,
                reason=f"{describe(target.root)} explains it, not {describe(incident.root)}",
            )
            alert.incident = None
            alert.path = ()
            self._place(alert, now)
        self._touched[incident.id] = None
        return True

    def _absorb_members(self, group: str, now: datetime) -> None:
        """A group started failing (CoreDNSDown on cluster DNS): its members' own incidents
        (the CoreDNS pods that crash-loop) tell why, so they join the group's incident."""
        if not self._is_infrastructure_group(group):
            return
        incident_id = self._by_root.get(group)
        if incident_id is None or not self._is_failing(group):
            return
        for member in self.reach.members(group):
            target = self._survivor(self._incidents[incident_id])
            own = self._by_root.get(member)
            if own is None or own == target.id:
                continue
            incident = self._incidents[own]
            if incident.state in (State.OPEN, State.PAGED) and self._explanation(member) is None:
                self._merge(incident, target, (member, group), now)

    def _maybe_infer(self, now: datetime) -> None:
        """Infer at once on new evidence, then at most once per interval while a storm goes on:
        each pass looks at every open incident, so it must not run for every new alert."""
        # A pass costs the open incidents plus what standing inferences rest on (a zone on its
        # thousand nodes). The interval stretches with the square root of that: a pass over
        # 20,000 every 90 s rather than every 10 s (on the engine's clock: replay agrees).
        weight = len(self._live) + sum(
            len(incident.evidence)
            for incident in map(self._incidents.__getitem__, self._live)
            if incident.inferred
        )
        interval = self.settings.inference.interval * max(1, math.isqrt(weight // INFER_AT_ONCE_UP_TO))
        cheap = weight <= INFER_AT_ONCE_UP_TO
        if cheap or self._last_inference is None or now >= self._last_inference + interval:
            self._last_inference = now
            self._infer(now)
        elif not self._inference_pending:
            self._inference_pending = True
            self._schedule(self._last_inference + interval, "infer", ())

    def _timer_infer(self, due: datetime) -> None:
        self._inference_pending = False
        self._last_inference = due
        self._infer(due)

    def _infer(self, now: datetime) -> None:
        """Infer hidden roots from what nothing explains, and re-check the inferences made so
        far: an unconfirmed hypothesis that the evidence no longer supports is withdrawn."""
        hypotheses = [
            incident
            for incident in map(self._incidents.__getitem__, self._live)
            if self._is_hypothesis(incident)
        ]
        evidence = [
            Evidence(incident.id, incident.root)
            for incident in map(self._incidents.__getitem__, self._live)
            if incident.state in (State.OPEN, State.PAGED)
            and not self._is_hypothesis(incident)
            # Inferred roots are evidence too (nodes inferred from their pods point at a zone);
            # info-level noise is not evidence of an outage.
            and (incident.inferred or incident.root_urgency != "quiet")
            and incident.root in self.topology
        ]
        for hypothesis in hypotheses:
            for entity in hypothesis.evidence:
                # Explain away first: evidence that a real failure explains is not evidence.
                if entity in self.topology and self._real_explanation(entity, hypothesis) is None:
                    evidence.append(Evidence(hypothesis.id, entity))
        if not evidence and not hypotheses:
            return
        found = infer(
            evidence,
            self.topology,
            self.reach,
            self._is_failing_real,
            self.settings.inference,
            standing=[h.root for h in hypotheses],
            alerting=self._entity_alerts.__contains__,
        )
        # Never infer again, at the same instant, what was just withdrawn: evidence moving
        # back and forth between two hypotheses must not spin.
        found = [f for f in found if self._withdrawn.get(f.entity) != now]
        kept = {inferred.entity for inferred in found}
        for inferred in found:
            existing = self._by_root.get(inferred.entity)
            incident = self._open_incident(inferred.entity, now, inferred=True, reason=inferred.reason)
            if incident.id != existing:
                self._mark_changed(inferred.entity)
                self._claim_root_alerts(incident, now)
            elif incident.inferred and not incident.has_root_alert:
                incident.inferred_reason = inferred.reason
            for item in inferred.evidence:
                source = self._incidents[item.incident]
                incident = self._survivor(incident)  # a paged source may have adopted it
                if source.state not in LIVE_STATES or source is incident or self._is_hypothesis(source):
                    continue  # a withdrawn hypothesis's alerts find their way on their own
                if self._is_workload_inference(source) and self._split_workload(source, incident, now):
                    continue
                if incident.root in self.reach.of(source.root):
                    bridge = self.reach.path(source.root, incident.root)
                else:
                    bridge = (source.root, incident.root)
                self._merge(source, incident, bridge, now)
        for hypothesis in hypotheses:
            if hypothesis.root not in kept and self._is_hypothesis(hypothesis):
                self._withdraw(hypothesis, now)

    def _is_hypothesis(self, incident: Incident) -> bool:
        """An inferred root nobody was told about and no alert of its own confirms."""
        return incident.inferred and not incident.has_root_alert and incident.state == State.OPEN

    def _withdraw(self, hypothesis: Incident, now: datetime) -> None:
        """The evidence no longer supports an inferred root: close it, and let each of its
        alerts find its place again (a real cause, another inference, or its own root)."""
        self._event(
            now,
            "root_withdrawn",
            hypothesis,
            entity=hypothesis.root,
            reason="the evidence no longer points at it: a better explanation was found or it faded",
        )
        self._withdrawn[hypothesis.root] = now
        alerts = [self.alerts[fp] for fp in hypothesis.alerts]
        hypothesis.alerts.clear()
        hypothesis.root_alerts.clear()
        hypothesis.firing = hypothesis.firing_roots = hypothesis.firing_lagging = 0
        self._transition(hypothesis, "withdrawn", now)
        self._mark_changed(hypothesis.root)
        for alert in alerts:
            alert.incident = None
            alert.path = ()
            self._place(alert, now)

    def _claim_root_alerts(self, incident: Incident, now: datetime) -> None:
        """An inferred root (a workload whose pods all fail) may already have alerts of its own,
        attached elsewhere as symptoms: they are its root alerts now."""
        for fp in list(self._entity_alerts.get(incident.root, ())):
            alert = self.alerts[fp]
            holder = self._incidents.get(alert.incident or "")
            if holder is None or holder is incident or holder.state not in LIVE_STATES:
                continue
            self._leave(holder, alert)
            holder.pending.pop(fp, None)
            self._attach(incident, alert, (alert.entity,), now)

    def _flush_updates(self, now: datetime) -> None:
        dirty, self._dirty = self._dirty, {}
        for incident_id in dirty:
            incident = self._incidents[incident_id]
            if not self._told(incident):
                incident.pending.clear()
                incident.pending_reasons.clear()
                continue
            severity = self._severity(incident)
            raised = severity_rank(severity) > severity_rank(incident.severity_told)
            if not incident.pending and not incident.pending_reasons and not raised:
                continue
            fresh = [fp for fp in incident.pending if self.alerts[fp].incident == incident.id]
            symptoms = self._symptoms(incident, fresh)
            reasons = list(dict.fromkeys(incident.pending_reasons))
            if symptoms:
                reasons.append(
                    f"{len(symptoms)} more symptoms attached ({count_kinds(s.entity for s in symptoms)})"
                )
            if raised:
                reasons.append(f"severity raised to {severity}")
                incident.severity_told = severity
            incident.notified.update((fp, None) for fp in fresh)
            incident.pending.clear()
            incident.pending_reasons.clear()
            if reasons:
                self._notify(now, "update", incident, symptoms, "; ".join(reasons))

    # ----------------------------------------------------------------- timers

    def _schedule(self, due: datetime, kind: str, args: tuple[Any, ...]) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (due, self._timer_seq, kind, args))

    def _advance(self, now: datetime, *, inclusive: bool = False) -> None:
        """Fire the timers due before `now` (also those due at `now` when `inclusive`).

        A timer due at T fires after every input stamped T: at a tie, information (the
        resolve that Alertmanager sends at the end of a group interval) beats a timeout. Inputs
        then close with an inclusive advance, so live ticks and replay agree."""
        if self._clock is None or now > self._clock:
            self._clock = now
        while self._timers and (self._timers[0][0] < now or (inclusive and self._timers[0][0] == now)):
            due, _, kind, args = heapq.heappop(self._timers)
            getattr(self, f"_timer_{kind}")(due, *args)
            self._settle(due)
        self._forget_old(now)

    def _timer_grace(self, due: datetime, incident_id: str) -> None:
        incident = self._incidents[incident_id]
        if incident.state != State.OPEN:
            return
        if due in (incident.page_due, incident.notice_due, incident.not_before):
            self._event(due, "grace_elapsed", incident, firing=self._root_firing(incident))
        self._maybe_escalate(incident, due)

    def _timer_witness(self, due: datetime, incident_id: str) -> None:
        incident = self._incidents[incident_id]
        root_alert = self._primary_root_alert(incident)
        if incident.state == State.OPEN and root_alert is not None and root_alert.firing:
            self._ask(incident, "alert_firing", incident.root, root_alert.labels, due)

    def _timer_reopen(self, due: datetime, incident_id: str, resolved_at: str) -> None:
        incident = self._incidents[incident_id]
        if incident.root_resolved_at is None or format_time(incident.root_resolved_at) != resolved_at:
            return
        self._maybe_settle(incident, due)

    def _timer_outlive(self, due: datetime, incident_id: str, fingerprint: str) -> None:
        incident = self._incidents[incident_id]
        alert = self.alerts.get(fingerprint)
        if (
            incident.state not in (State.RECOVERED, State.RESOLVING, State.CLOSED)
            or alert is None
            or not alert.firing
            or alert.incident != incident.id
            or incident.root_resolved_at is None
            or due < incident.root_resolved_at + alert.cls.outlive_root
        ):
            return
        self._detach(incident, alert, due)
        self._maybe_settle(incident, due)

    def _timer_heartbeat(self, due: datetime, fingerprint: str, seen: str) -> None:
        alert = self.alerts.get(fingerprint)
        if not self._heartbeat_checks or alert is None or not alert.firing:
            return
        if format_time(self._heartbeats.get(fingerprint, alert.last_seen)) != seen:
            return
        self._heartbeat_lost(
            alert, due, f"the Watchdog alert was not received for {span(self.settings.heartbeat_timeout)}"
        )

    # ------------------------------------------------------------- heartbeat

    def _pipeline_entity(self, alert: AlertState) -> str:
        return entities.singleton("pipeline", entities.cluster_of(alert.labels))

    def _heartbeat_seen(self, alert: AlertState, now: datetime) -> None:
        self._heartbeats[alert.fingerprint] = now
        self._schedule(
            now + self.settings.heartbeat_timeout, "heartbeat", (alert.fingerprint, format_time(now))
        )
        incident_id = self._by_root.get(self._pipeline_entity(alert))
        if incident_id is None:
            return
        incident = self._incidents[incident_id]
        if incident.state not in LIVE_STATES:
            return
        self._event(now, "heartbeat_restored", incident, reason="the Watchdog alert is back")
        was_paged = incident.state in (State.PAGED, State.RESOLVING)
        self._transition(incident, "restored", now)
        if was_paged:
            self._notify(
                now,
                "resolve",
                incident,
                (),
                "the Watchdog alert is back: the alerting pipeline delivers again",
            )

    def _heartbeat_lost(self, alert: AlertState, now: datetime, why: str) -> None:
        root = self._pipeline_entity(alert)
        existing = self._by_root.get(root)
        if existing is not None and self._incidents[existing].state in LIVE_STATES:
            return
        incident = self._open_incident(root, now, grace=timedelta(0), reason=why)
        incident.inferred = True
        incident.inferred_reason = why
        self._event(now, "heartbeat_missing", incident, reason=why)
        self._transition(incident, "escalate", now)
        incident.paged_at = now
        incident.severity_told = "critical"
        reason = f"alerting pipeline down: {why}; alerts may not be reaching the router"
        self._event(now, "paged", incident, severity="critical", reason=reason)
        self._notify(now, "page", incident, (), reason, severity="critical")

    # --------------------------------------------------------------- output

    def _notify(
        self,
        now: datetime,
        action: str,
        incident: Incident,
        symptoms: tuple[SymptomRef, ...],
        reason: str,
        severity: str | None = None,
    ) -> None:
        root_alert = self._primary_root_alert(incident)
        notification = Notification(
            at=now,
            action=action,  # type: ignore[arg-type]
            incident=incident.id,
            severity=severity or self._severity(incident),
            root_entity=incident.root,
            root_alert=root_alert.ref() if root_alert else None,
            symptoms=symptoms,
            reason=reason,
            seq=incident.seq,
        )
        incident.seq += 1
        self.counters[
            {"page": "pages", "notice": "notices", "update": "updates", "resolve": "resolves"}[action]
        ] += 1
        self._out.append(notification)
        self._event(now, "notified", incident, action=action, key=notification.key, reason=reason)

    def _event(self, at: datetime, kind: str, incident: Incident | None, **data: Any) -> None:
        self._events.append(Event(at, kind, incident.id if incident else None, data))

    def _take(self) -> list[Notification]:
        out, self._out = self._out, []
        return out

    def _forget_old(self, now: datetime) -> None:
        """Bound memory: drop resolved instances and closed incidents' alerts long past."""
        if len(self._resolved_instances) > self._forget_threshold:
            horizon = now - self.settings.forget_resolved_after
            kept = {k: v for k, v in self._resolved_instances.items() if v >= horizon}
            self._resolved_instances = kept
            self._forget_threshold = max(50_000, 2 * len(kept))  # amortised: no rebuild per tick

    # ------------------------------------------------------------- read views

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        incident = self._incidents.get(incident_id)
        if incident is None:
            return None
        root_alert = self._primary_root_alert(incident)
        return {
            "id": incident.id,
            "state": incident.state.value,
            "severity": self._severity(incident),
            "urgency": self._urgency(incident),
            "root": {"entity": incident.root, "alert": root_alert.ref().to_dict() if root_alert else None},
            "inferred": incident.inferred,
            "opened_at": format_time(incident.opened_at),
            "grace_until": format_time(incident.grace_until),
            "paged_at": _fmt(incident.paged_at),
            "root_resolved_at": _fmt(incident.root_resolved_at),
            "closed_at": _fmt(incident.closed_at),
            "merged_into": incident.merged_into,
            "acknowledged_by": incident.acknowledged_by,
            "silenced_by": incident.silenced_by,
            "flapping": incident.flapping,
            "alerts": [self._alert_view(self.alerts[fp]) for fp in incident.alerts],
            "symptoms": [s.to_dict() for s in self._symptoms(incident)],
        }

    def incidents(self, state: str | None = None) -> list[dict[str, Any]]:
        out = []
        for incident in self._incidents.values():
            if state is not None and incident.state.value != state:
                continue
            view = self.incident(incident.id)
            assert view is not None
            out.append(view)
        return out

    def _alert_view(self, alert: AlertState) -> dict[str, Any]:
        return {
            "fingerprint": alert.fingerprint,
            "alertname": alert.alertname,
            "entity": alert.entity,
            "severity": alert.cls.severity,
            "status": "firing" if alert.firing else "resolved",
            "starts_at": alert.starts_at,
            "first_seen": format_time(alert.first_seen),
            "resolved_at": _fmt(alert.resolved_at),
            "path": list(alert.path),
            "labels": alert.labels,
            "annotations": alert.annotations,
            "generator_url": alert.generator_url,
            "rule": alert.cls.rule,
        }


def _fmt(value: datetime | None) -> str | None:
    return format_time(value) if value else None
