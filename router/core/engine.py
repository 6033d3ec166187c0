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
under the same fingerprint is a new instance that is judged afresh. A firing alert absent from a
later snapshot of its group has left it, muted (`router.core.groups`): no resolve will come, so it
ends there, and is an alert again if it comes back firing. Each new instance is
classified once by the rule set: the entity it concerns, whether a failure there propagates to
dependents, its grace (`grace`), how long it may outlive a root as a symptom, urgency.

Failing entities. An entity is failing while it has a firing alert whose rule propagates, while
it is the root of an open inferred incident, or when it is a group (a Service, cluster DNS,
the apiserver) all of whose members are failing.

Clusters. An entity's cluster is its alert's `cluster` label. A topology taken without that
label (a kube-state-metrics dump fetched with curl: the label is Prometheus' external label)
describes one unnamed cluster; the first alert naming a cluster the topology does not know
gives it that name (`cluster_named`), in replay as live.

One delivery is one decision. Alertmanager groups by namespace, so a cause and its symptoms
often arrive together in any order: every alert of a delivery is classified and attributed, the
new failures re-judged and inference run, before any incident may escalate.

Attribution. An alert on entity E is a *symptom* when something E depends on is failing
(`router.reach`: hard edges, and a group's members only from E itself). Its incident is that
failing entity's incident; the path is the dependency chain from E to the incident's root. Among
several explanations one that rests on an alert beats one that rests on an unconfirmed
inference, then one through what E runs on beats one through what it talks to (a service it
calls, cluster DNS, the apiserver), then the deepest root wins, then the shortest path. A symptom
attached through what it talks to is judged again when something it depends on directly starts
failing (its own workload's bad rollout, its node). Cluster DNS
and the control plane are cluster functions: when all their members fail they are the root, and
a member explains them only through what makes the member fail. An application's Service is
never a root when its pods fail: the workload behind it is. An alert nothing explains is a
*root*: it opens (or joins) the incident of its own entity. An alert with no entity at all is
its own root: we never hide what we do not understand.

Symptoms before causes. Causes routinely fire minutes after their symptoms (TargetDown `for:
10m` before KubeNodeNotReady `for: 15m`; application error rates within a minute or two). So an
alert is *due* only after its grace (time to heal) and its rule's *hold* (time for its cause to
show, for classes known to come first), and whenever an entity starts failing, every open
incident whose root depends on it is re-judged: it merges into the cause's incident. A hold
has served once the symptom is attached to a cause that has shown (a firing root alert that
propagates and is not itself held): it may then page when it and its cause have each outlived
their grace, as the cause alone would have (kubelet evictions are info and never page alone). If the
merged incident had already paged, it is resolved with a reason pointing at the survivor; if the
survivor had not paged but the merged one had, the paged incident survives instead and its root
is re-attributed (one human, one thread).

Hidden roots (`router.inference`): when unexplained failures share a node, a workload, a zone or
cluster DNS that has no alert of its own, an incident is raised on that dependency with the
evidence as its symptoms; a real alert on it later becomes its root alert (and confirms it,
unless its class is held: a failed scrape or an error rate names no failure). Explaining away comes
first: evidence a failing entity with an alert explains is not evidence. Until it pages or an
alert confirms it, an inferred root is a hypothesis, re-checked on every inference pass and
withdrawn when the evidence no longer supports it (checked again whenever an alert it rests on
resolves); its alerts then find their place again.
Nothing withdrawn or merged away is inferred again at the same instant. Pods the topology does
not know yet (a rollout's new ReplicaSet) have their alerts mapped onto their workload: two of
them make its incident the inferred workload it would have been had the pods been known.

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
`finish()` (end of a recording) stops the absence check, and lagging symptoms past their lag
are not judged afresh after the end: no resolve can come in a recording that has ended.

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

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ground.times import format_time, parse_time
from router.core import views
from router.core.alerts import AlertIntake, AlertState, Seen
from router.core.attribution import Attribution, OpenGroup, is_hypothesis, rests_on_starvation
from router.core.causes import (
    NAMESPACE_RANK,
    RECENT,
    busy_resident,
    likely_cause,
    suspect_callee,
    unreachable_callee,
)
from router.core.escalation import EscalationPolicy, root_firing
from router.core.events import CheckRequest, Event, Notification, SymptomRef
from router.core.failures import FailureIndex
from router.core.groups import RECONCILE_GROUP_KEY, GroupSnapshots
from router.core.heartbeat import Heartbeats
from router.core.hypotheses import InferencePasses
from router.core.inference import Inferred, inference_kind
from router.core.inhibition import Inhibitions, InhibitRule
from router.core.lifecycle import (
    LIVE_STATES,
    Incident,
    IncidentBook,
    State,
    count_firing,
    enter,
    leave,
    recount,
)
from router.core.model import AlertPayload, Delivery, WebhookPayload
from router.core.reach import Reach
from router.core.settings import EngineSettings
from router.core.timers import Timers
from router.core.watch import DependencyWatch
from router.core.wording import cause_phrase, cause_reason, count_kinds, describe, span
from rules.ruleset import RuleSet
from rules.schema import severity_rank
from topology import entities
from topology.changes import Change
from topology.graph import Topology

# What the second witness is asked about an inferred root, by the root's kind.
DEPENDENCY_CHECKS = {
    "node": "node_not_ready",
    "dns": "dns_down",
    "apiserver": "apiserver_down",
    "etcd": "etcd_down",
}


class Engine:
    def __init__(self, topology: Topology, rules: RuleSet, settings: EngineSettings | None = None) -> None:
        self.topology = topology
        self.rules = rules
        self.settings = settings or EngineSettings()
        self.reach = Reach(topology)
        # Collaborators, each owning its state: what alerts came in (intake), which entities
        # fail (failures), the incidents and their lifecycle (book), what to re-judge when
        # something fails (watch), which incident explains an alert (attribution), hidden roots
        # (passes), when to escalate (policy), the timers, the Watchdog. They read each other's
        # state and return facts and decisions; none calls the engine, which alone acts.
        self.intake = AlertIntake(self.settings.forget_resolved_after)
        self.groups = GroupSnapshots(self.settings.departed_after)
        self.alerts: dict[str, AlertState] = self.intake.latest  # fingerprint -> latest instance
        self.inhibitions = Inhibitions(
            [
                InhibitRule.parse(r.source_matchers, r.target_matchers, r.equal)
                for r in self.settings.inhibit_rules
            ],
            self.alerts,
        )
        self.failures = FailureIndex(self.reach)
        self.book = IncidentBook()
        self.watch = DependencyWatch(self.reach)
        self.attribution = Attribution(self.reach, self.failures, self.book, self.alerts)
        self.passes = InferencePasses(
            topology, self.reach, self.book, self.failures, self.attribution, self.settings.inference
        )
        self.policy = EscalationPolicy(
            self.alerts,
            self.passes.zone_settles,
            self.passes.zone_nodes_settle,
            self.settings.inference.zone_settle,
            self.failures.foreshadowed,
            self.settings.foreshadow_wait,
            self.passes.co_located,
            self.settings.slow_alone_wait,
            self._change_explains,
        )
        self.timers = Timers()
        self.heartbeats = Heartbeats()
        self._changed: dict[str, None] = {}  # entities that started failing since the last settle
        self._dirty: dict[str, None] = {}  # escalated incidents with something new to tell
        self._touched: dict[str, None] = {}  # incidents to consider for escalation after the input
        self._new_roots = False
        self._events: list[Event] = []
        self._checks: list[CheckRequest] = []
        self._out: list[Notification] = []
        self._clock: datetime | None = None
        # The clusters the topology names, and the name an unlabelled one took from its alerts.
        self._clusters = topology.clusters()
        self._named_cluster: str | None = None
        self._listening_since: datetime | None = None  # the first delivery's time
        self._recording_ended: datetime | None = None  # replay: the last delivery's time
        self.counters: dict[str, int] = {
            "deliveries": 0,
            "alerts_received": 0,
            "duplicates": 0,
            "stale": 0,
            "departed": 0,
            "instances": 0,
            "symptoms": 0,
            "pages": 0,
            "notices": 0,
            "updates": 0,
            "resolves": 0,
        }

    # ---------------------------------------------------------------- inputs

    def ingest(self, delivery: Delivery, now: datetime) -> list[Notification]:
        if self._listening_since is None:
            self._listening_since = now
        self._advance(now)
        self.counters["deliveries"] += 1
        for alert in delivery.payload.alerts:
            self.counters["alerts_received"] += 1
            self._observe(alert, now)
        self._inhibit(delivery.payload, now)
        for fingerprint in self.groups.left(delivery.payload, now):
            self._departed(fingerprint, now)
        self._settle(now)
        self._advance(now, inclusive=True)
        return self._take()

    def tick(self, now: datetime) -> list[Notification]:
        self._advance(now)
        self._settle(now)
        return self._take()

    def finish(self, now: datetime) -> list[Notification]:
        """End of a recording: stop the heartbeat check, run timers until nothing is pending.
        No delivery comes after the end, so an alert's resolve cannot either: a lagging symptom
        (a burn rate over an hour) still firing at the end fires by design, and its lag running
        out after the end is no sign that it outlived its cause: it is not judged afresh."""
        self.heartbeats.checking = False
        self._recording_ended = now
        self._advance(now, inclusive=True)
        limit = now + self.settings.drain_limit
        while (due := self.timers.next_due()) is not None and due <= limit:
            self._advance(due, inclusive=True)
        self._settle(self._clock or now)
        return self._take()

    def act(
        self, incident_id: str, action: str, user: str, now: datetime, note: str = ""
    ) -> list[Notification]:
        """A human acted on an incident: acknowledge, resolve or silence."""
        self._advance(now)
        incident = self.book.survivor(self.book[incident_id])
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
        if incident_id not in self.book.all:
            raise KeyError(incident_id)
        incident = self.book.survivor(self.book[incident_id])
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
        for incident_id in self.book.live:
            self.watch.unwatch(incident_id, self.book[incident_id].root)
        clusters = topology.clusters()
        if self._named_cluster and clusters == {entities.DEFAULT_CLUSTER}:
            topology = topology.renamed_cluster(entities.DEFAULT_CLUSTER, self._named_cluster)
            clusters = {self._named_cluster}
        self._clusters = clusters
        self.topology = topology
        self.reach = Reach(topology)
        self.failures.use(self.reach)
        self.watch.use(self.reach)
        self.attribution.use(self.reach)
        self.passes.use(topology, self.reach)
        for incident_id in self.book.live:
            self.watch.watch(incident_id, self.book[incident_id].root)

    def drain_checks(self) -> list[CheckRequest]:
        checks, self._checks = self._checks, []
        return checks

    def drain_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> datetime | None:
        return self.timers.next_due()

    # ------------------------------------------------------------ alert intake

    def _observe(self, payload: AlertPayload, now: datetime) -> None:
        seen, alert = self.intake.see(payload, now)
        if seen == Seen.NEW:
            self._fire(self._new_instance(payload, now), now)
        elif seen == Seen.RESOLVED:
            assert alert is not None
            self._resolve(alert, now)
        elif seen == Seen.STALE:
            self.counters["stale"] += 1  # firing re-sent after we saw it resolve
        else:
            self.counters["duplicates"] += 1
            if seen == Seen.RESENT and alert is not None:
                alert.muted = False  # delivered again: heard of
                if alert.cls.heartbeat:
                    self._heartbeat_seen(alert, now)

    def _new_instance(self, payload: AlertPayload, now: datetime) -> AlertState:
        labels = dict(payload.labels)
        cluster = labels.get("cluster")
        if cluster and cluster not in self._clusters:
            self._name_unlabelled_cluster(cluster, now)
        cls = self.rules.classify(labels, self.topology)
        if cls.urgency == "page" and self._standing(payload.startsAt):
            cls = replace(
                cls,
                urgency="notice",
                how=f"{cls.how}; firing since long before the router listened: a standing condition",
            )
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

    def _standing(self, starts_at: str) -> bool:
        """Whether an alert had been firing for `standing_after` when the router began to
        listen: someone was told of it before (or it is accepted noise: a target down for days)."""
        if self._listening_since is None:
            return False
        started = parse_time(starts_at)  # validated on intake
        return started is not None and started < self._listening_since - self.settings.standing_after

    def _name_unlabelled_cluster(self, cluster: str, now: datetime) -> None:
        """The topology came without a `cluster` label (a kube-state-metrics dump taken with
        curl: the label is Prometheus' external label, which only its alerts carry), and an
        alert names a cluster it does not know: the one cluster it describes is that one. The
        first such name is taken; a second cluster stays unknown to it."""
        if self._named_cluster is not None or self._clusters != {entities.DEFAULT_CLUSTER}:
            return
        self._named_cluster = cluster
        self.set_topology(self.topology)
        self._event(
            now,
            "cluster_named",
            None,
            cluster=cluster,
            reason=f"the topology names no cluster and alerts come from {cluster}: it describes that one",
        )

    def _fire(self, alert: AlertState, now: datetime) -> None:
        self.intake.fired(alert, now)
        self.inhibitions.fired(alert)
        self.passes.note_trouble(alert.entity, now, answers=alert.cls.node_answers)
        if alert.cls.node_share:
            text = alert.annotations.get("description") or alert.annotations.get("summary", "")
            self.passes.note_node_share(alert.fingerprint, alert.entity, text, now)
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
        if self.failures.alert_fired(alert):
            self._mark_changed(alert.entity)
        elif inference_kind(alert.entity) == "workload":
            # A workload's own alert (its rollout stuck, its replicas short) is evidence for the
            # workload with one failing pod, even when its pod's incident takes it in.
            self._new_roots = True
        self._place(alert, now)

    def _inhibit(self, payload: WebhookPayload, now: datetime) -> None:
        """Alertmanager's inhibit rules (`router.core.inhibition`). An alert this delivery shows
        firing that a firing alert Alertmanager already knew would mute shows that the sender
        does not apply that rule; a firing alert new in it mutes what its rules say."""
        if not self.inhibitions.rules or not payload.groupKey or payload.groupKey == RECONCILE_GROUP_KEY:
            return
        sender = f"{payload.receiver} {payload.externalURL}"
        here = {
            a.fingerprint: alert
            for a in payload.alerts
            if a.status == "firing" and (alert := self.alerts.get(a.fingerprint)) is not None and alert.firing
        }

        def known_before(source: AlertState) -> bool:
            return source.fingerprint in here or source.first_seen + self.settings.departed_after <= now

        for target in here.values():
            if (rule := self.inhibitions.inhibitor(target, sender, known_before)) is not None:
                self.inhibitions.ignore(sender, rule)
                self._event(
                    now,
                    "inhibit_rule_ignored",
                    None,
                    sender=sender,
                    rule=rule,
                    reason=f"{target.alertname} on {describe(target.entity)} was delivered while an "
                    "alert the rule says mutes it fired: this Alertmanager does not apply the rule",
                )
        for source in here.values():
            if source.first_seen != now:
                continue  # an inhibitor mutes at its arrival; later targets are never delivered
            for fp in list(self.inhibitions.muted_by(source, sender)):
                self._muted(self.alerts[fp], source, now)

    def _muted(self, alert: AlertState, source: AlertState, now: datetime) -> None:
        """Alertmanager mutes a firing alert: nothing more will be said of it, not even its
        resolve. What it is stays (a root keeps its incident: never hidden), but it is not
        judged afresh on its own without news of it (`_place`)."""
        if alert.muted:
            return
        alert.muted = True
        self._event(
            now,
            "alert_muted",
            self.book.get(alert.incident or ""),
            fingerprint=alert.fingerprint,
            alertname=alert.alertname,
            entity=alert.entity,
            reason=f"muted by {source.alertname} on {describe(source.entity)} (Alertmanager's inhibit "
            "rules): nothing more will be said of it, not even its resolve",
        )

    def _unheard(self, alert: AlertState, now: datetime, reason: str) -> None:
        """End a firing alert no resolve will come for; it may fire again (`departed`)."""
        alert.departed = True
        self.counters["departed"] += 1
        self._resolve(alert, now, reason=reason)

    def _departed(self, fingerprint: str, now: datetime) -> None:
        """A firing alert left its Alertmanager group without a resolve (`router.core.groups`):
        muted, or resolved while muted. No resolve will come: it ends here, and may fire again.
        Except the root of a page: people were told, and a silence they set is no resolve."""
        alert = self.intake.unseen_since(fingerprint, now, self.settings.departed_after)
        if alert is None:
            return
        incident = self.book.get(alert.incident or "")
        if (
            incident is not None
            and incident.state in (State.PAGED, State.RESOLVING)
            and fingerprint in incident.root_alerts
        ):
            return
        if any(
            other != fingerprint and self.alerts[other].alertname == alert.alertname
            for other in self.failures.alerting.get(alert.entity, ())
        ):
            # Its more severe self fires (kube-prometheus mutes a warning while the critical
            # alert of the same name fires): muted, not ended; it still counts as it was.
            return
        self._unheard(
            alert,
            now,
            "left its Alertmanager group without a resolve: muted (inhibited or silenced), or "
            "resolved while muted",
        )

    def _resolve(self, alert: AlertState, now: datetime, reason: str | None = None) -> None:
        self.intake.resolved(alert, now)
        self._event(
            now,
            "alert_resolved",
            self.book.get(alert.incident or ""),
            fingerprint=alert.fingerprint,
            alertname=alert.alertname,
            entity=alert.entity,
            ends_at=alert.ends_at,
            **({"reason": reason} if reason else {}),
        )
        if alert.cls.heartbeat:
            self._heartbeat_lost(alert, now, "the Watchdog alert resolved")
            return
        self.failures.alert_resolved(alert, now)
        self.passes.forget_node_share(alert.fingerprint)
        incident = self.book.get(alert.incident or "")
        if incident is not None and alert.fingerprint in incident.alerts:
            self._count_firing(incident, alert, -1)
            if is_hypothesis(incident):
                # What the hypothesis rests on healed: check it again before it may page.
                self._new_roots = True
        if incident is not None and incident.state in LIVE_STATES:
            self._after_alert_resolved(incident, alert, now)

    # ------------------------------------------------------------- attribution

    def _recently_resolved_incident(self, alert: AlertState, now: datetime) -> Incident | None:
        """The escalated incident this same alert was the root of, if it resolved moments ago:
        the alert firing again is the same problem back (another alert is another problem)."""
        recent = self.book.recently_resolved.get(alert.entity)
        if recent is None or now - recent[1] > self.settings.reopen_window:
            return None
        incident = self.book[recent[0]]
        if incident.state != State.CLOSED or alert.fingerprint not in incident.alerts:
            return None
        return incident

    def _reopen(self, incident: Incident, now: datetime) -> None:
        """On-call already knows this one: the same incident (and thread) reopens, no new page."""
        self.book.recently_resolved.pop(incident.root, None)
        gap = span(now - incident.closed_at) if incident.closed_at else "moments"
        self._transition(incident, "reopened", now)
        incident.closed_at = None
        incident.root_resolved_at = None
        self._event(now, "reopened", incident, reason=f"its root fired again {gap} after it resolved")
        self._queue_update(
            incident, f"reopened: {describe(incident.root)} fired again {gap} after it resolved"
        )

    def _explanation(self, entity: str, *, starved: bool = False) -> tuple[Incident, tuple[str, ...]] | None:
        """The incident that explains a failure of `entity` (with `starved`: its going without
        requests), and the path to its root."""
        while True:
            found = self.attribution.explanation(entity, starved=starved)
            if not isinstance(found, OpenGroup):
                return found
            self._open_group(found.group)

    def _open_group(self, group: str) -> None:
        """All members of a cluster function fail, for different reasons or on their own: the
        function itself is the root. Its members' incidents tell why, so they join it."""
        now = self._clock_now()
        members = self.reach.members(group)
        incident = self._open_incident(
            group, now, inferred=True, reason=f"all {len(members)} members of it are failing"
        )
        self._mark_changed(group)
        for member in members:
            own = self.book.by_root.get(member)
            incident = self.book.survivor(incident)
            if own is not None and own != incident.id and self.book[own].state in LIVE_STATES:
                self._merge(self.book[own], incident, (member, group), now)

    def _place(self, alert: AlertState, now: datetime) -> None:
        """Attach a new alert to the incident that explains it, or to its own entity's incident."""
        starved = alert.cls.explained_by == "dependents"
        explained = self._explanation(alert.entity, starved=starved)
        if explained is None and alert.cls.outlive_root > self.settings.lagging_symptom:
            explained = self.attribution.lagging_explanation(alert, now)
        if explained is not None:
            incident, path = explained
            self._attach(incident, alert, path, now)
            return
        if alert.muted:
            # Its cause let it go (or the hypothesis it joined was withdrawn), and Alertmanager
            # has said nothing of it since it was muted: no news is no sign that it still fires.
            self._unheard(
                alert,
                now,
                "muted by Alertmanager's inhibit rules and not heard of since: taken as ended "
                "rather than judged afresh on its own",
            )
            return
        incident_id = self.book.by_root.get(alert.entity)
        if incident_id is not None and self.book[incident_id].state in LIVE_STATES:
            incident = self.book[incident_id]
        elif (recent := self._recently_resolved_incident(alert, now)) is not None:
            incident = recent
            self._reopen(incident, now)
        elif (group := self.attribution.failing_group_of(alert.entity)) is not None:
            # A member of a group that already has its incident (cluster DNS, a Service):
            # its alert tells why the group fails, so it belongs there.
            self._attach(group, alert, (alert.entity, group.root), now)
            return
        else:
            incident = self._open_incident(alert.entity, now, grace=alert.cls.grace, starved=starved)
        self._attach(incident, alert, (alert.entity,), now)

    def _attach(self, incident: Incident, alert: AlertState, path: tuple[str, ...], now: datetime) -> None:
        alert.incident = incident.id
        alert.path = path
        is_root = alert.entity == incident.root
        first_root_alert = is_root and not incident.has_root_alert
        cause_shown = is_root and self._cause_due(incident) is not None
        self._enter(incident, alert)
        alert.explained_due = None
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
            if not cause_shown:  # the cause shows after its held symptoms: served from now on
                self._serve_holds(incident, incident.alerts)
        else:
            self.counters["symptoms"] += 1
            self._serve_holds(incident, (alert.fingerprint,))
            if is_hypothesis(incident):
                if not any(map(self.attribution.is_failing_real, path[1:-1])):
                    incident.evidence[alert.entity] = None  # nothing with an alert lies between
                if alert.cls.node_running and inference_kind(incident.root) == "node":
                    self._new_roots = True  # its kubelet restarts a container: check the node again
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
                self.timers.set(now + alert.cls.outlive_root, "outlive", (incident.id, alert.fingerprint))
        # Correlation never pages later than this alert would have paged on its own.
        self._bring_forward(incident, alert.cls.urgency, alert.due)
        if is_root and not incident.inferred and incident.state == State.OPEN:
            self._infer_from_unknown_pods(incident, now)
        if self._told(incident):
            self._dirty[incident.id] = None
            if not is_root and alert.fingerprint not in incident.notified:
                incident.pending[alert.fingerprint] = None
        self._touched[incident.id] = None

    def _cause_due(self, incident: Incident) -> datetime | None:
        """When the incident's cause, shown by a firing root alert that names a failure (one that
        propagates and is not itself held for a cause), has outlived its grace; None while none
        fires."""
        dues = [
            alert.due
            for fp in incident.root_alerts
            if (alert := self.alerts[fp]).firing and alert.cls.propagates and not alert.cls.hold
        ]
        return min(dues) if dues else None

    def _serve_holds(self, incident: Incident, fingerprints: Iterable[str]) -> None:
        """A held symptom (an error rate, a latency) waits for its cause to show; once attached
        to a cause that has, what is left to wait for is healing: it may page when it and its
        cause have each outlived their grace (a node's memory pressure, its evictions info,
        slowing five Services for twenty minutes), not when its hold would have ended."""
        cause_due = self._cause_due(incident)
        if cause_due is None:
            return
        for fp in fingerprints:
            alert = self.alerts[fp]
            if alert.cls.hold and alert.firing and alert.entity != incident.root:
                alert.explained_due = max((alert.judged_at or alert.first_seen) + alert.cls.grace, cause_due)
                self._bring_forward(incident, alert.cls.urgency, alert.due)

    def _infer_from_unknown_pods(self, incident: Incident, now: datetime) -> None:
        """Alerts on pods the topology does not know (a rollout's new ReplicaSet) map onto their
        workload. Two such pods failing, with nothing beneath to blame, is what the workload
        rule of inference reads as a broken workload: the incident becomes the inferred workload
        it would have been had the pods been known, and pages on the inference's grace rather
        than a pod's (a pod alone may still heal within its grace)."""
        if inference_kind(incident.root) != "workload":
            return
        pods = {
            pod
            for fp in incident.root_alerts
            if (alert := self.alerts[fp]).firing
            and alert.cls.urgency == "page"
            and (pod := alert.labels.get("pod"))
        }
        if len(pods) < 2:
            return
        incident.inferred = True
        incident.inferred_reason = f"{len(pods)} of its pods are failing with no node or DNS to blame"
        incident.not_before = now + self.settings.inference.grace
        self.timers.set(incident.not_before, "grace", (incident.id,))

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
        self.timers.set(due, "grace", (incident.id,))

    def _why_root(self, alert: AlertState) -> str:
        if alert.cls.entity is None:
            return "no entity could be identified from its labels: it stands on its own"
        return f"nothing {alert.entity} depends on is failing"

    def _root_fired(self, incident: Incident, alert: AlertState, now: datetime) -> None:
        # Flapping is one alert firing again and again (new instances after resolves), not
        # several alerts on one entity, nor one alert attached again after re-attribution.
        history = self.intake.recent_fires(alert.fingerprint, now - self.settings.flap_window)
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
        starved: bool = False,
    ) -> Incident:
        existing = self.book.by_root.get(root)
        if existing is not None and self.book[existing].state in LIVE_STATES:
            return self.book[existing]
        if grace is None:
            grace = self.settings.inference.grace
        incident = Incident(
            id=self.book.new_id(root, now),
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
        self.book.add(incident)
        self._new_roots = True
        self.watch.watch(incident.id, root, starved=starved)
        self._event(
            now,
            "root_inferred" if inferred else "incident_opened",
            incident,
            entity=root,
            grace_until=format_time(incident.grace_until),
            reason=reason or "no failing dependency explains it",
        )
        if inferred:
            self.timers.set(incident.grace_until, "grace", (incident.id,))
            self._touched[incident.id] = None
        if self.settings.witness.enabled:
            if inferred and (kind := DEPENDENCY_CHECKS.get(entities.kind_of(root))):
                self._ask(incident, kind, root, {}, now)
            elif not inferred:
                self.timers.set(
                    max(now, incident.grace_until - self.settings.witness.lead), "witness", (incident.id,)
                )
        return incident

    def _ask(self, incident: Incident, kind: str, entity: str, labels: dict[str, str], now: datetime) -> None:
        incident.checks += 1
        check = CheckRequest(f"{incident.id}/{incident.checks}", now, incident.id, kind, entity, labels)
        self._checks.append(check)
        self._event(now, "witness_asked", incident, check=check.id, question=kind, entity=entity)

    def _transition(self, incident: Incident, trigger: str, now: datetime) -> None:
        moved = self.book.transition(incident, trigger, now)
        if moved == "closed":
            self.watch.unwatch(incident.id, incident.root)
        elif moved == "reopened":
            self.watch.watch(incident.id, incident.root)

    def _enter(self, incident: Incident, alert: AlertState) -> None:
        enter(incident, alert, self.settings.lagging_symptom)

    def _leave(self, incident: Incident, alert: AlertState) -> None:
        leave(incident, alert, self.settings.lagging_symptom)

    def _count_firing(self, incident: Incident, alert: AlertState, delta: int) -> None:
        count_firing(incident, alert, delta, self.settings.lagging_symptom)

    def _maybe_escalate(self, incident: Incident, now: datetime) -> None:
        if incident.state not in (State.OPEN, State.RECOVERED):
            return
        flapping = incident.flapping
        confirmed = incident.witness == "confirmed" and incident.inferred
        if not (flapping or confirmed) and incident.state != State.OPEN:
            return
        if not flapping and not root_firing(incident):
            return
        if flapping:
            urgency = incident.root_urgency  # flapping is not healing, but info stays info
        elif confirmed:
            urgency = self.policy.firing_urgency(incident)
        else:
            verdict = self.policy.due(incident, now)
            if verdict.page_due_lapsed:
                # A page-urgency alert was due but resolved: a later one waits for its own due.
                incident.page_due = verdict.page_due
            for wake in verdict.wake:
                self.timers.set(wake, "grace", (incident.id,))
            urgency = verdict.urgency
        if urgency == "quiet":
            return
        if incident.witness == "refuted" and not incident.deferred and not flapping:
            # Prometheus no longer sees the root firing: give Alertmanager's resolve a moment.
            incident.deferred = True
            until = now + self.settings.witness.defer
            incident.page_due = incident.grace_until = until
            self.timers.set(until, "grace", (incident.id,))
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
            self._notify(
                now,
                "notice",
                incident,
                views.symptoms(incident, self.alerts),
                views.page_reason(incident, self.alerts, now, self.settings.flap_window),
            )

    def _page(self, incident: Incident, now: datetime) -> None:
        self._transition(incident, "escalate", now)
        incident.paged_at = now
        symptoms = views.symptoms(incident, self.alerts)
        reason = views.page_reason(incident, self.alerts, now, self.settings.flap_window)
        extra: dict[str, Any] = {}
        cause = self._likely_cause(incident)
        if cause is not None:
            kind, change, path = cause
            when = format_time(change.at)
            reason += "; likely cause: " + cause_phrase(kind, describe(change.entity), change.what, when)
            extra["likely_cause"] = {**change.to_dict(), "kind": kind, "path": list(path)}
            self._event(
                now,
                "likely_cause",
                incident,
                cause=kind,
                entity=change.entity,
                changed_at=when,
                change=change.what,
                path=list(path),
                reason=cause_reason(kind, describe(change.entity), describe(incident.root)),
            )
        self._event(now, "paged", incident, severity=incident.top_severity, reason=reason)
        incident.notified.update((s.fingerprint, None) for s in symptoms)
        incident.pending.clear()
        incident.pending_reasons.clear()
        incident.severity_told = incident.top_severity
        self._notify(now, "page", incident, symptoms, reason, extra=extra)
        if not root_firing(incident):
            # Paged for flapping while the root is momentarily resolved.
            self._root_resolved(incident, now)

    def _failed_at(self, incident: Incident) -> datetime:
        """When the incident's first alert started (by its source's clock)."""
        started = [parse_time(self.alerts[fp].starts_at) for fp in incident.alerts if fp in self.alerts]
        return min([t for t in started if t is not None], default=incident.opened_at)

    def _nearby_change(
        self, incident: Incident, failed_at: datetime
    ) -> tuple[Change, tuple[str, ...], int] | None:
        """The recorded change nearest the root before it failed (router/core/causes.py)."""
        if not len(self.topology.changes):
            return None
        return likely_cause(self.topology, self.reach, incident.root, failed_at, self.settings.change_window)

    def _change_explains(self, incident: Incident) -> bool:
        """Whether a recorded change says why the incident started: the root's own, one beneath
        it, or one in its namespace (or a callee's) just before it failed, as the page names it."""
        failed_at = self._failed_at(incident)
        found = self._nearby_change(incident, failed_at)
        return found is not None and (found[2] < NAMESPACE_RANK or failed_at - found[0].at <= RECENT)

    def _likely_cause(self, incident: Incident) -> tuple[str, Change, tuple[str, ...]] | None:
        """What most likely started the incident (router/core/causes.py), strongest lead first:
        a change of the root itself; the one callee of the root that receives no requests (of
        several, or the one no healthy caller clears); a change beneath the root or a recent
        one near it; on a saturated node, the one workload
        there in trouble; the one callee no healthy caller clears; an older change in the
        namespace of the root or of a service it calls."""
        failed_at = self._failed_at(incident)
        found = self._nearby_change(incident, failed_at)
        if found is not None and found[2] == 0:  # the root's own change (a rollout of it)
            return "change", found[0], found[1]
        starving: dict[str, datetime] = {}
        for fp in incident.alerts:
            alert = self.alerts.get(fp)
            if alert is not None and alert.firing and alert.cls.explained_by == "dependents":
                started_at = parse_time(alert.starts_at) or alert.first_seen
                starving[alert.entity] = min(started_at, starving.get(alert.entity, started_at))
        silent = unreachable_callee(self.topology, incident.root, starving) if starving else None
        if silent is not None:
            callee, since = silent
            what = f"it receives no requests while the calls of {describe(incident.root)} fail"
            return "unreachable", Change(since, callee, what), (incident.root, callee)
        lead = self._concurrent_lead(incident, failed_at, starving)
        if lead is not None and lead[0] == "callee" and lead[1].entity in starving:
            # The one callee left receives nothing while the calls to it fail: as concurrent
            # as the silent callee above.
            what = f"it receives no requests while the calls of {describe(incident.root)} fail"
            return "unreachable", Change(starving[lead[1].entity], lead[1].entity, what), lead[2]
        # A change beneath the root is circumstantial next to a callee silent right now; one
        # just before the failure, even if only in the namespace (a NetworkPolicy), beats a
        # lead read off the graph.
        if found is not None and (found[2] < NAMESPACE_RANK or failed_at - found[0].at <= RECENT):
            return "change", found[0], found[1]
        if lead is not None:
            return lead
        # A change only in the namespace names nothing the root is known to touch, but is all
        # there is.
        return None if found is None else ("change", found[0], found[1])

    def _concurrent_lead(
        self, incident: Incident, failed_at: datetime, starving: dict[str, datetime]
    ) -> tuple[str, Change, tuple[str, ...]] | None:
        """A lead read off what fails with the root when no change names one: the one workload
        in trouble on a node its residents saturate, or the one service a failing caller calls
        that no healthy caller also calls."""
        root_alerts = [self.alerts[fp] for fp in incident.root_alerts if fp in self.alerts]
        firing = [a for a in root_alerts if a.firing]
        saturated = entities.kind_of(incident.root) == "node" and all(a.cls.contention for a in firing)
        # A service failing by its callers' measure (errors, latency) may pass on its callee's.
        passing_on = entities.kind_of(incident.root) == "service" and any(
            a.cls.explained_by == "dependencies" for a in firing
        )
        if not firing or not (saturated or passing_on):
            return None
        failing: dict[str, set[str]] = {}  # entity -> which ways its firing alerts travel
        for alert in self.alerts.values():
            if alert.firing and alert.entity != incident.root and alert.cls.urgency != "quiet":
                failing.setdefault(alert.entity, set()).add(alert.cls.explained_by)
        if saturated:
            resident = busy_resident(self.topology, incident.root, failing)
            if resident is not None:
                since = min(
                    parse_time(a.starts_at) or a.first_seen
                    for a in self.alerts.values()
                    if a.firing and a.entity == resident
                )
                what = f"the one workload on {describe(incident.root)} in trouble while it is saturated"
                return "resident", Change(since, resident, what), (incident.root, resident)
        if passing_on:
            callee = suspect_callee(self.topology, incident.root, failing)
            if callee is not None:
                alone = len(self.topology.calls(incident.root)) == 1
                what = (
                    f"the only callee of {describe(incident.root)}"
                    if alone
                    else f"the one callee of {describe(incident.root)} that no healthy caller also calls"
                )
                return "callee", Change(failed_at, callee, what), (incident.root, callee)
        return None

    def _queue_update(self, incident: Incident, reason: str) -> None:
        incident.pending_reasons.append(reason)
        self._dirty[incident.id] = None

    def _after_alert_resolved(self, incident: Incident, alert: AlertState, now: datetime) -> None:
        if incident.state in (State.OPEN, State.PAGED) and not root_firing(incident):
            self._root_resolved(incident, now)
        self._maybe_settle(incident, now)

    def _root_resolved(self, incident: Incident, now: datetime) -> None:
        incident.root_resolved_at = now
        self._event(now, "root_recovered", incident, reason="its root stopped firing")
        self._transition(incident, "root_resolved", now)
        self.timers.set(now + self.settings.reopen_window, "reopen", (incident.id, format_time(now)))
        for fp in incident.alerts:
            alert = self.alerts[fp]
            if alert.firing and alert.entity != incident.root:
                self.timers.set(now + alert.cls.outlive_root, "outlive", (incident.id, fp))
        self.failures.invalidate()

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
            reason = views.recovery_reason(incident, self.alerts)
            self._event(now, "noticed", incident, reason=reason)
            if incident.top_urgency != "quiet":
                self._notify(now, "notice", incident, views.symptoms(incident, self.alerts), reason)

    def _detach(self, incident: Incident, alert: AlertState, now: datetime) -> None:
        """A symptom outlived its root's hold: judge it afresh as an alert of its own. Under a
        root that paged it gets its own grace from now (people knew; pods take time to settle
        after a node returns); under a quiet root nobody was told, so it keeps its age and is
        not hidden a second time."""
        self._release(
            incident, alert, f"still firing {span(alert.cls.outlive_root)} after its root recovered", now
        )
        if incident.paged_at is not None:
            alert.judged_at = now
        self._place(alert, now)

    def _release(self, incident: Incident, alert: AlertState, reason: str, now: datetime) -> None:
        """Take an alert out of an incident (recorded with its reason), to be placed afresh."""
        self._leave(incident, alert)
        incident.pending.pop(alert.fingerprint, None)
        self._event(
            now,
            "symptom_detached",
            incident,
            fingerprint=alert.fingerprint,
            alertname=alert.alertname,
            entity=alert.entity,
            reason=reason,
        )
        alert.incident = None
        alert.path = ()

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
        self._serve_holds(target, moved)
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
        if source.inferred:
            self.passes.set_aside(source.root, now)
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
                    self.timers.set(now + self.alerts[fp].cls.outlive_root, "outlive", (target.id, fp))
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
        self.watch.unwatch(paged.id, paged.root)
        if self.book.by_root.get(old_root) == paged.id:
            del self.book.by_root[old_root]
        paged.root = cause.root
        recount(paged, self.alerts, self.settings.lagging_symptom)
        paged.inferred = cause.inferred
        paged.inferred_reason = cause.inferred_reason
        self.book.by_root[paged.root] = paged.id
        self.watch.watch(paged.id, paged.root)
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
        if paged.state == State.RESOLVING and root_firing(paged):
            self._transition(paged, "root_refired", now)

    # -------------------------------------------------------- settle & infer

    def _mark_changed(self, entity: str) -> None:
        self._changed[entity] = None
        self.failures.invalidate()

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
            self._maybe_escalate(self.book.survivor(self.book[incident_id]), now)
        self._flush_updates(now)

    def _rejudge(self, changed: list[str], now: datetime) -> None:
        for entity in changed:
            self._absorb_members(entity, now)
        self._rejudge_indirect_symptoms(changed, now)
        candidates: dict[str, None] = {}
        for entity in changed:
            candidates.update(self.watch.watchers(entity))
            for group in self.watch.groups_tipped_by(entity):
                if self.failures.group_failing(group):
                    candidates.update(self.watch.watchers(group))
        for incident_id in sorted(candidates, key=lambda i: (self.book[i].opened_at, i)):
            incident = self.book[incident_id]
            if incident.state not in (State.OPEN, State.PAGED):
                continue  # a root that already healed is not explained by what fails now
            explained = self._explanation(incident.root, starved=self._starved(incident))
            if explained is None:
                continue
            target, bridge = explained
            if target.id == incident.id:
                continue
            if self._is_workload_inference(incident) and self._split_workload(incident, target, now):
                continue
            self._merge(incident, target, bridge, now)

    def _rejudge_indirect_symptoms(self, changed: list[str], now: datetime) -> None:
        """A symptom attached through something it talks to (errors on `worker` because
        `uploader` it calls sits on a dead node; a kubelet unreachable while etcd has no leader)
        is judged again when what it runs on starts failing (its own Deployment's pods
        crash-loop, its node is confirmed dead): its own stack explains it first."""
        for entity in changed:
            if not self.attribution.is_failing(entity):
                continue
            for dependent in self.topology.dependents(entity):
                for fp in list(self.failures.alerting.get(dependent, ())):
                    alert = self.alerts[fp]
                    holder = self.book.get(alert.incident or "")
                    if (
                        holder is None
                        or alert.entity == holder.root
                        or alert.cls.explained_by == "dependents"
                        or not self.reach.indirect(alert.path)
                    ):
                        continue
                    found = self._explanation(alert.entity)
                    if found is None or found[0].id == holder.id:
                        continue
                    why = f"{describe(found[0].root)} explains it, not {describe(holder.root)}"
                    self._release(holder, alert, why, now)
                    self._place(alert, now)

    def _starved(self, incident: Incident) -> bool:
        return rests_on_starvation(incident, self.alerts)

    @staticmethod
    def _is_workload_inference(incident: Incident) -> bool:
        return incident.inferred and inference_kind(incident.root) == "workload"

    def _split_workload(self, incident: Incident, target: Incident, now: datetime) -> bool:
        """A workload inferred from its failing pods is explained by one pod's node only as far
        as that pod goes: pods that fail for their own reason keep their incident. The alerts a
        real failure explains leave for it; a hypothesis left with too little evidence is then
        withdrawn by the inference pass. The workload's own alert (a DaemonSet's rollout stuck)
        and what it explains go with its pods: explained when all of them are. False when
        `target` explains every pod (merge)."""
        explained: list[AlertState] = []
        follows = 0  # the workload's own alerts, and the symptoms they explain
        for fp in incident.alerts:
            alert = self.alerts[fp]
            if alert.entity == incident.root:
                follows += 1
                continue
            found = self._explanation(alert.entity)
            if found is not None and found[0].id == incident.id:
                follows += 1
            elif found is not None and found[0].id == target.id:
                explained.append(alert)
        if len(explained) + follows == len(incident.alerts):
            return False
        for alert in explained:
            self._release(
                incident, alert, f"{describe(target.root)} explains it, not {describe(incident.root)}", now
            )
            incident.evidence.pop(alert.entity, None)
            self._place(alert, now)
        self._touched[incident.id] = None
        return True

    def _absorb_members(self, group: str, now: datetime) -> None:
        """A group started failing (CoreDNSDown on cluster DNS): its members' own incidents
        (the CoreDNS pods that crash-loop) tell why, so they join the group's incident."""
        if not self.attribution.is_infrastructure_group(group):
            return
        incident_id = self.book.by_root.get(group)
        if incident_id is None or not self.attribution.is_failing(group):
            return
        for member in self.reach.members(group):
            target = self.book.survivor(self.book[incident_id])
            own = self.book.by_root.get(member)
            if own is None or own == target.id:
                continue
            incident = self.book[own]
            if incident.state in (State.OPEN, State.PAGED) and self._explanation(member) is None:
                self._merge(incident, target, (member, group), now)

    def _maybe_infer(self, now: datetime) -> None:
        """Infer at once on new evidence, then at most once per interval while a storm goes on."""
        when = self.passes.when(now)
        if when == now:
            self._infer(now)
        elif when is not None:
            self.timers.set(when, "infer", ())

    def _timer_infer(self, due: datetime) -> None:
        self.passes.timer_fired(due)
        self._infer(due)

    def _infer(self, now: datetime) -> None:
        """Infer hidden roots from what nothing explains, and re-check the inferences made so
        far: an unconfirmed hypothesis that the evidence no longer supports is withdrawn."""
        found, hypotheses = self.passes.run(now)
        kept = {inferred.entity for inferred in found}
        held_by_withdrawn: list[tuple[Incident, str]] = []
        for inferred in found:
            existing = self.book.by_root.get(inferred.entity)
            incident = self._open_incident(inferred.entity, now, inferred=True, reason=inferred.reason)
            if incident.id != existing:
                self._mark_changed(inferred.entity)
                self._claim_root_alerts(incident, now)
                if self._one_daemonset_pod(inferred):
                    # One DaemonSet pod failing says as much of its node, whose own signs may
                    # take minutes more: a node dies with every DaemonSet a pod short.
                    incident.not_before = max(
                        incident.not_before or now, now + self.settings.inference.zone_settle
                    )
                    self.timers.set(incident.not_before, "grace", (incident.id,))
            elif incident.inferred and not incident.has_root_alert:
                incident.inferred_reason = inferred.reason
            for item in inferred.evidence:
                source = self.book[item.incident]
                if is_hypothesis(source) and source.root not in kept:
                    # Its alerts find their place once it is withdrawn, below: the evidence
                    # then has an incident of its own to take in.
                    held_by_withdrawn.append((incident, item.entity))
                else:
                    self._take_in(source, incident, now)
        for hypothesis in hypotheses:
            if hypothesis.root not in kept and is_hypothesis(hypothesis):
                self._withdraw(hypothesis, now)
        for incident, entity in held_by_withdrawn:
            if (own := self.book.by_root.get(entity)) is not None:
                self._take_in(self.book[own], incident, now)

    def _take_in(self, source: Incident, incident: Incident, now: datetime) -> None:
        """An inferred root takes in the incident of a piece of its evidence."""
        incident = self.book.survivor(incident)  # a paged source may have adopted it
        if source.state not in LIVE_STATES or source is incident or is_hypothesis(source):
            return
        if self._is_workload_inference(source) and self._split_workload(source, incident, now):
            return
        if incident.root in self.reach.of(source.root):
            bridge = self.reach.path(source.root, incident.root)
        else:
            bridge = (source.root, incident.root)
        self._merge(source, incident, bridge, now)

    @staticmethod
    def _one_daemonset_pod(inferred: Inferred) -> bool:
        return entities.kind_of(inferred.entity) == "daemonset" and (
            sum(entities.kind_of(item.entity) == "pod" for item in inferred.evidence) == 1
        )

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
        self.passes.set_aside(hypothesis.root, now)
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
            placed = self.book.get(alert.incident or "")
            if not alert.firing and placed is not None and placed.state in LIVE_STATES:
                # It resolved while the hypothesis held it: where it lands now, it has healed
                # already (an incident it opens is recovered, and closes with a notice).
                self._after_alert_resolved(placed, alert, now)

    def _claim_root_alerts(self, incident: Incident, now: datetime) -> None:
        """An inferred root (a workload whose pods all fail) may already have alerts of its own,
        attached elsewhere as symptoms: they are its root alerts now."""
        for fp in list(self.failures.alerting.get(incident.root, ())):
            alert = self.alerts[fp]
            holder = self.book.get(alert.incident or "")
            if holder is None or holder is incident or holder.state not in LIVE_STATES:
                continue
            self._leave(holder, alert)
            holder.pending.pop(fp, None)
            self._attach(incident, alert, (alert.entity,), now)

    def _flush_updates(self, now: datetime) -> None:
        dirty, self._dirty = self._dirty, {}
        for incident_id in dirty:
            incident = self.book[incident_id]
            if not self._told(incident):
                incident.pending.clear()
                incident.pending_reasons.clear()
                continue
            severity = incident.top_severity
            raised = severity_rank(severity) > severity_rank(incident.severity_told)
            if not incident.pending and not incident.pending_reasons and not raised:
                continue
            fresh = [fp for fp in incident.pending if self.alerts[fp].incident == incident.id]
            symptoms = views.symptoms(incident, self.alerts, fresh)
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

    def _advance(self, now: datetime, *, inclusive: bool = False) -> None:
        """Fire the timers due before `now` (also those due at `now` when `inclusive`).

        A timer due at T fires after every input stamped T: at a tie, information (the
        resolve that Alertmanager sends at the end of a group interval) beats a timeout. Inputs
        then close with an inclusive advance, so live ticks and replay agree."""
        if self._clock is None or now > self._clock:
            self._clock = now
        for due, kind, args in self.timers.pop_due(now, inclusive=inclusive):
            getattr(self, f"_timer_{kind}")(due, *args)
            self._settle(due)
        self.intake.forget_old(now)

    def _timer_grace(self, due: datetime, incident_id: str) -> None:
        incident = self.book[incident_id]
        if incident.state != State.OPEN:
            return
        if due in (incident.page_due, incident.notice_due, incident.not_before):
            self._event(due, "grace_elapsed", incident, firing=root_firing(incident))
        self._maybe_escalate(incident, due)

    def _timer_witness(self, due: datetime, incident_id: str) -> None:
        incident = self.book[incident_id]
        root_alert = views.primary_root_alert(incident, self.alerts)
        if incident.state == State.OPEN and root_alert is not None and root_alert.firing:
            self._ask(incident, "alert_firing", incident.root, root_alert.labels, due)

    def _timer_reopen(self, due: datetime, incident_id: str, resolved_at: str) -> None:
        incident = self.book[incident_id]
        if incident.root_resolved_at is None or format_time(incident.root_resolved_at) != resolved_at:
            return
        self._maybe_settle(incident, due)

    def _timer_outlive(self, due: datetime, incident_id: str, fingerprint: str) -> None:
        incident = self.book[incident_id]
        alert = self.alerts.get(fingerprint)
        if (
            incident.state not in (State.RECOVERED, State.RESOLVING, State.CLOSED)
            or alert is None
            or not alert.firing
            or alert.incident != incident.id
            or incident.root_resolved_at is None
            or due < incident.root_resolved_at + alert.cls.outlive_root
            or (
                self._recording_ended is not None
                and due > self._recording_ended
                and alert.cls.outlive_root > self.settings.lagging_symptom
            )
        ):
            return
        self._detach(incident, alert, due)
        self._maybe_settle(incident, due)

    def _timer_heartbeat(self, due: datetime, fingerprint: str, seen: str) -> None:
        alert = self.alerts.get(fingerprint)
        if alert is None or not alert.firing:
            return
        if not self.heartbeats.still_missing(fingerprint, seen, alert.last_seen):
            return
        self._heartbeat_lost(
            alert, due, f"the Watchdog alert was not received for {span(self.settings.heartbeat_timeout)}"
        )

    # ------------------------------------------------------------- heartbeat

    def _heartbeat_seen(self, alert: AlertState, now: datetime) -> None:
        self.heartbeats.seen(alert.fingerprint, now)
        self.timers.set(
            now + self.settings.heartbeat_timeout, "heartbeat", (alert.fingerprint, format_time(now))
        )
        incident_id = self.book.by_root.get(self.heartbeats.pipeline_entity(alert.labels))
        if incident_id is None:
            return
        incident = self.book[incident_id]
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
        root = self.heartbeats.pipeline_entity(alert.labels)
        existing = self.book.by_root.get(root)
        if existing is not None and self.book[existing].state in LIVE_STATES:
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
        extra: dict[str, Any] | None = None,
    ) -> None:
        root_alert = views.primary_root_alert(incident, self.alerts)
        notification = Notification(
            at=now,
            action=action,  # type: ignore[arg-type]
            incident=incident.id,
            severity=severity or incident.top_severity,
            root_entity=incident.root,
            root_alert=root_alert.ref() if root_alert else None,
            symptoms=symptoms,
            reason=reason,
            seq=incident.seq,
            extra=extra or {},
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

    # ------------------------------------------------------------- read views

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        incident = self.book.get(incident_id)
        return views.incident_view(incident, self.alerts) if incident is not None else None

    def incidents(self, state: str | None = None) -> list[dict[str, Any]]:
        return [
            views.incident_view(incident, self.alerts)
            for incident in self.book.all.values()
            if state is None or incident.state.value == state
        ]
