"""Inference passes: when to look for hidden roots, and what one pass finds.

A pass gathers the evidence (every open incident that is not a hypothesis and not info-level
noise, plus what standing hypotheses rest on once a real failure explains none of it: explaining
away comes first) and asks `router.core.inference` for the hidden roots it supports. Passes run
at once on new evidence while few incidents are open, then at most once per interval, which
stretches with the square root of what a pass costs (a zone resting on a thousand nodes): on the
engine's clock, so a replay agrees. The engine applies what a pass finds (opens the inferred
incidents, merges their evidence, withdraws what is no longer supported); this remembers what
was withdrawn or merged away, so that evidence moving back and forth between two hypotheses
does not spin, and when each zone's nodes last showed trouble (an inferred node waits while its
zone settles).
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from router.core.attribution import Attribution, is_hypothesis, rests_on_starvation
from router.core.escalation import root_firing
from router.core.failures import FailureIndex
from router.core.inference import (
    NODE_LEVEL_KINDS,
    Evidence,
    Inferred,
    infer,
    inference_kind,
    node_of,
    shares_a_node,
)
from router.core.lifecycle import Incident, IncidentBook, State
from router.core.reach import Reach
from router.core.settings import InferenceSettings
from topology.entities import kind_of, split
from topology.graph import Topology

# What an application's failure shows in: its pods, its Service, its controller.
APPLICATION_KINDS = frozenset({"pod", "service", "deployment", "statefulset"})

# Below this weight (open incidents plus what standing inferences rest on) a pass is cheap
# enough to run on every new root.
INFER_AT_ONCE_UP_TO = 256


class InferencePasses:
    def __init__(
        self,
        topology: Topology,
        reach: Reach,
        book: IncidentBook,
        failures: FailureIndex,
        attribution: Attribution,
        settings: InferenceSettings,
    ) -> None:
        self.topology = topology
        self.reach = reach
        self.book = book
        self.failures = failures
        self.attribution = attribution
        self.settings = settings
        self._last_pass: datetime | None = None
        self._pending = False  # a timer for the next pass is set
        # Inferred root -> when it was last withdrawn or merged away.
        self._set_aside: dict[str, datetime] = {}
        self._node_trouble: dict[str, dict[str, datetime]] = {}  # zone -> node -> last alert on it
        self._node_down: dict[str, dict[str, datetime]] = {}  # zone -> node -> last alert of its own
        # Firing alerts that give the share of a cluster's nodes down: fingerprint -> (cluster,
        # share, first seen).
        self._node_shares: dict[str, tuple[str, float, datetime]] = {}
        self._node_counts: dict[str, int] | None = None  # cluster -> nodes in the topology
        self._nodes_down: dict[str, set[str]] = {}  # cluster -> nodes that alerted of their own

    def use(self, topology: Topology, reach: Reach) -> None:
        self.topology = topology
        self.reach = reach
        self._node_counts = None

    def when(self, now: datetime) -> datetime | None:
        """`now` to pass now; a later time to set a timer for; None: a timer is set already."""
        book = self.book
        weight = len(book.live) + sum(
            len(incident.evidence) for incident in map(book.__getitem__, book.live) if incident.inferred
        )
        interval = self.settings.interval * max(1, math.isqrt(weight // INFER_AT_ONCE_UP_TO))
        cheap = weight <= INFER_AT_ONCE_UP_TO
        if cheap or self._last_pass is None or now >= self._last_pass + interval:
            self._last_pass = now
            return now
        if self._pending:
            return None
        self._pending = True
        return self._last_pass + interval

    def timer_fired(self, due: datetime) -> None:
        self._pending = False
        self._last_pass = due

    def run(self, now: datetime) -> tuple[list[Inferred], list[Incident]]:
        """The hidden roots the evidence supports now, and the standing hypotheses (those not
        found again are to be withdrawn once what was found is applied)."""
        live = [self.book[incident_id] for incident_id in self.book.live]
        hypotheses = [incident for incident in live if is_hypothesis(incident)]
        evidence = [
            Evidence(incident.id, incident.root)
            for incident in live
            if incident.state in (State.OPEN, State.PAGED)
            and not is_hypothesis(incident)
            # What healed is not evidence (a withdrawn hypothesis's resolved alerts, placed
            # again, open incidents that no longer fire).
            and root_firing(incident)
            # Inferred roots are evidence too (nodes inferred from their pods point at a zone);
            # info-level noise is not evidence of an outage.
            and (incident.inferred or incident.root_urgency != "quiet")
            and incident.root in self.topology
            # A service without requests says its caller broke, nothing about where it runs.
            and not rests_on_starvation(incident, self.attribution.alerts)
        ]
        for hypothesis in hypotheses:
            still_failing = self._still_failing(hypothesis)
            for entity in hypothesis.evidence:
                # Evidence that healed is not evidence any more (two services' error rates that
                # came and went with a node's blip do not keep cluster DNS suspected), nor is
                # what a real failure explains: explaining away comes first.
                if (
                    entity in still_failing
                    and entity in self.topology
                    and self.attribution.real_explanation(entity, hypothesis) is None
                ):
                    evidence.append(Evidence(hypothesis.id, entity))
        if not evidence and not hypotheses:
            return [], []
        found = infer(
            evidence,
            self.topology,
            self.reach,
            self.attribution.is_failing_real,
            self.settings,
            standing=[h.root for h in hypotheses],
            alerting=self.failures.alerting.__contains__,
            node_running=self._node_running,
            node_at_work=self._node_at_work,
            passes_on=self._passes_on,
            bypasses_dns=self.attribution.bypasses_dns,
            node_answers=self._node_answers,
        )
        # Never infer again, at the same instant, what was just withdrawn or merged away:
        # evidence moving back and forth between two hypotheses must not spin (a DaemonSet
        # inferred from its pods, then explained by the inferred node one of them ran on).
        return [f for f in found if self._set_aside.get(f.entity) != now], hypotheses

    def _node_running(self, entity: str) -> bool:
        """Whether every firing alert on the entity shows its node at work (a crash loop)."""
        firing = self.failures.alerting.get(entity, {})
        alerts = self.attribution.alerts
        return bool(firing) and all(alerts[fp].cls.node_running for fp in firing)

    def _node_answers(self, entity: str) -> bool:
        """Whether every firing alert on the entity is the node reporting on itself (its
        exporter measuring a full disk, its kubelet reporting pressure): the node is up."""
        firing = self.failures.alerting.get(entity, {})
        alerts = self.attribution.alerts
        return bool(firing) and all(alerts[fp].cls.node_answers for fp in firing)

    def _node_at_work(self, node: str) -> bool:
        """Whether a pod on the node shows its kubelet at work (restarting a container in a
        crash loop): the node is up, whatever else fails there."""
        alerting = self.failures.alerting
        alerts = self.attribution.alerts
        return any(
            alerts[fp].cls.node_running
            for pod in self.topology.dependents(node)
            for fp in alerting.get(pod, ())
        )

    def _passes_on(self, entity: str) -> bool:
        """Whether an alert on the entity is of a kind its callees' failures cause (errors,
        latency), not starvation."""
        alerts = self.attribution.alerts
        return any(
            alerts[fp].cls.explained_by == "dependencies" for fp in self.failures.alerting.get(entity, {})
        )

    def _still_failing(self, hypothesis: Incident) -> set[str]:
        """What the hypothesis's firing alerts still show failing: each alert's entity and the
        path that leads it to the inferred root. Info-level alerts show nothing (noise is not
        evidence of an outage)."""
        alerts = self.attribution.alerts
        failing: set[str] = set()
        for fingerprint in hypothesis.alerts:
            alert = alerts.get(fingerprint)
            if alert is not None and alert.firing and alert.cls.urgency != "quiet":
                failing.update(alert.path or (alert.entity,))
        return failing

    def set_aside(self, root: str, now: datetime) -> None:
        """An inferred root was withdrawn, or merged into another incident, at `now`."""
        self._set_aside[root] = now

    def note_trouble(self, entity: str, now: datetime, answers: bool = False) -> None:
        """Remember when something on a node (the node, its agents, its pods, a Service whose
        endpoints all run there) last alerted, and when the node or its components did, unless
        the alert is the node reporting on itself (`answers`: a full disk; the node is up)."""
        node = self._node_under(entity)
        if node is not None and (zone := self.topology.zone_of(node)):
            self._node_trouble.setdefault(zone, {})[node] = now
            if self.reach.kind(entity) in NODE_LEVEL_KINDS and not answers:
                self._node_down.setdefault(zone, {})[node] = now
                self._nodes_down.setdefault(_cluster_of(node), set()).add(node)

    def note_node_share(self, fingerprint: str, entity: str, text: str, now: datetime) -> None:
        """A firing alert whose text gives the share of its cluster's nodes down (`NN% of the`)."""
        found = _SHARE.search(text)
        if found is not None and fingerprint not in self._node_shares:
            self._node_shares[fingerprint] = (_cluster_of(entity), float(found[1]) / 100, now)

    def forget_node_share(self, fingerprint: str) -> None:
        self._node_shares.pop(fingerprint, None)

    def unseen_nodes_settle(self, node: str) -> datetime | None:
        """While the share of the cluster's nodes reported down (the kubelet's or node exporter's
        TargetDown) counts more nodes than have shown their own signs, more of them are down:
        the zone may be the root, and their own alerts are on their way. Wait for them, at most
        `unseen_nodes_wait` past the first such report."""
        cluster = _cluster_of(node)
        shares = [(share, at) for where, share, at in self._node_shares.values() if where == cluster]
        if not shares:
            return None
        if self._node_counts is None:
            counts: dict[str, int] = {}
            for name in self.topology.graph:
                if kind_of(name) == "node":
                    counts[_cluster_of(name)] = counts.get(_cluster_of(name), 0) + 1
            self._node_counts = counts
        reported = max(round(share * self._node_counts.get(cluster, 0)) for share, _ in shares)
        down = self._nodes_down.get(cluster, set())
        # A node counts itself among those reported; cluster DNS is no node and counts none.
        if reported <= len(down) + (self.reach.kind(node) == "node" and node not in down):
            return None
        return min(at for _, at in shares) + self.settings.unseen_nodes_wait

    def _node_under(self, entity: str) -> str | None:
        """The one node an alert on `entity` points at, if any (as inference's `alone_on`)."""
        if self.reach.kind(entity) == "service" and self.reach.has_members(entity):
            found: str | None = None
            for member in self.reach.members(entity):
                node = node_of(self.topology, member)
                if node is None or (found is not None and node != found):
                    return None  # endpoints on several nodes (or somewhere unknown)
                found = node
            return found
        return node_of(self.topology, entity)

    def zone_settles(self, incident: Incident) -> datetime | None:
        """For an inferred root: when the picture of the zone under it has settled. An inferred
        node waits while other nodes of its zone had alerts lately (the zone may be the root,
        and its nodes' alerts arrive up to a group interval apart); an inferred workload while
        other nodes of its failing pods' zones are down by their own alerts (its pods' node may
        be one of the zone's whose alerts are still on their way), at most `zone_settle` past
        its own grace."""
        node = incident.root
        if self.reach.kind(node) == "node":
            return self._node_zone_settles(node)
        if self.reach.kind(node) == "dns":
            # Applications failing on a node reported down (TargetDown) whose own alerts are
            # still on their way look like DNS failing them: wait for that node to show.
            return self.unseen_nodes_settle(node)
        if inference_kind(node) != "workload" or incident.not_before is None:
            return None
        latest = max(
            (
                settles
                for entity in incident.evidence
                if (pod_node := node_of(self.topology, entity)) is not None
                and (settles := self.zone_nodes_settle(pod_node)) is not None
            ),
            default=None,
        )
        return min(latest, incident.not_before + self.settings.zone_settle) if latest else None

    def _node_zone_settles(self, node: str) -> datetime | None:
        if not (zone := self.topology.zone_of(node)):
            return None
        troubled = self._node_trouble.get(zone, {})
        latest = max((at for other, at in troubled.items() if other != node), default=None)
        return _later(latest + self.settings.zone_settle if latest else None, self.unseen_nodes_settle(node))

    def co_located(self, incident: Incident) -> bool:
        """Whether another unexplained application fails beside this incident's root on a node
        they both run on: applications failing together foreshadow that node's own alert, and
        the slowest (a full disk, `for: 30m`) comes after their hold (`foreshadow_wait`)."""
        if kind_of(incident.root) not in APPLICATION_KINDS or incident.root not in self.topology:
            return False
        others = (
            other.root
            for other in map(self.book.__getitem__, self.book.live)
            if other is not incident
            and other.state in (State.OPEN, State.PAGED)
            and kind_of(other.root) in APPLICATION_KINDS
            and not other.inferred
            and other.root_urgency != "quiet"
            and root_firing(other)
            and other.root in self.topology
        )
        return shares_a_node(self.topology, self.reach, incident.root, others)

    def zone_nodes_settle(self, node: str) -> datetime | None:
        """When the picture of the node's zone has settled, if at least `min_nodes_zone` other
        nodes of the zone alerted of their own (a dead zone's nodes alert up to a group interval
        apart: paging each node on its own grace pages a large zone node by node before half of
        it is known). One other dead node does not make a zone suspect. Cluster DNS down by its
        own alert waits too while more nodes are reported down than have shown it: CoreDNS
        runs on a handful of nodes, and a zone that takes them all fails cluster DNS with it."""
        if self.reach.kind(node) == "dns":
            return self.unseen_nodes_settle(node)
        if self.reach.kind(node) != "node" or not (zone := self.topology.zone_of(node)):
            return None
        others = [at for other, at in self._node_down.get(zone, {}).items() if other != node]
        unseen = self.unseen_nodes_settle(node)
        if len(others) < self.settings.min_nodes_zone:
            return unseen
        return _later(max(others) + self.settings.zone_settle, unseen)


_SHARE = re.compile(r"(\d+(?:\.\d+)?)% of the")


def _cluster_of(entity: str) -> str:
    return split(entity)[1]


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)
