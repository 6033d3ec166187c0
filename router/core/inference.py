"""Hidden roots: blame a dependency that has no alert of its own when the evidence points there.

Evidence is a set of failing entities that nothing failing explains (the roots of open
incidents, and what earlier inferences rest on). For every inferable dependency D (a node, a
workload, a zone, cluster DNS) that evidence depends on, we ask whether D is the simplest
explanation of it. A candidate qualifies by kind:

- node: evidence that points at it *alone*, from at least `min_workloads_node` distinct
  workloads. A pod or a kubelet points at one node; a Deployment whose replicas sit on ten
  nodes, or a Service with endpoints on them, points at none in particular: replicas of a
  spread workload failing elsewhere say nothing about this node; a crash-looping pod points
  at none at all (its node is up, restarting it), nor does a pod a rollout explains (below).
  Spread applications do point at the one node they share beyond chance: at least
  `min_workloads_shared_node` of them have a pod there, two thirds of the failing applications
  and more than chance would put there, and no other node has as many (nine Services slow,
  each with one endpoint on a node whose disk is full);
- workload (Deployment, StatefulSet, DaemonSet): at least two of its pods failing, with no
  node or DNS to blame (a bad rollout or configuration), or one and its own alert unless other
  applications fail on that pod's node (a replica short there is the node's, or its zone's,
  doing: the workload reporting it short is the same failure); or a rollout gone bad: a Deployment
  with two ReplicaSets that have pods is rolling out, and when its failing pods are all in
  one no larger than any other (the one it brings up: a stalled rollout stalls at its surge),
  none in those that serve, even one of them names it (`Rollout.gone_bad`; two bad rollouts
  whose new pods landed on one healthy node are no dead node);
- service: errors or latency of at least `min_callers_service` services calling it (over call
  edges), and no caller of it healthy: a Service that fails would fail all its callers, and one
  that a healthy caller still calls serves that caller well. An application fault no alert
  instruments (an HTTP abort, a partition in front of it) shows only in its callers;
- zone: node-level failures (alerting or inferred nodes, or a node's own agents: its kubelet, a
  DaemonSet's or a static pod) on at least `min_nodes_zone` nodes and at least half of its
  nodes: applications' pods failing in a zone are more often an application or DNS problem
  than a lost zone;
- dns: failures of `min_workloads_dns` workloads over several namespaces and nodes whose *only*
  shared dependency is cluster DNS: if one node or one zone underlies them (more of them sit
  there than chance would put there), that is the better explanation; when as many would sit
  there by chance (every workload spans every zone) the evidence cannot tell a zone from DNS
  yet: a new DNS inference waits for node-level signals, a standing one is kept.

Candidates are taken most specific first (node, workload, zone, DNS), after the standing ones
and a node whose own agents fail outside a standing zone (new evidence, not an equal
alternative). A narrow candidate loses to a broader one that holds its evidence and more than
twice as much (two failing pods on one node are a coincidence when twelve services fail
cluster-wide); a node loses so to cluster DNS even while the evidence cannot tell DNS from a
zone, as the failures are broader than the node either way. Evidence taken by an accepted
candidate is not counted again, and nodes accepted in a pass count as node-level evidence for
their zone in the same pass.

Explaining away happens before this function is called: evidence that a failing entity with an
alert of its own explains is not evidence. The engine re-runs inference as evidence arrives
and withdraws earlier hypotheses that no longer qualify, so an inference made on the first
namespace's alerts is corrected when the others arrive. Pure: no state, no clock.
"""

from __future__ import annotations

import functools
import heapq
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from router.core.reach import Reach
from router.core.settings import InferenceSettings
from topology import entities
from topology.graph import Topology

WORKLOAD_KINDS = frozenset({"deployment", "statefulset", "daemonset"})
# How broad an explanation is: a node and a workload are equally narrow, a zone is broader,
# cluster DNS broader still.
LEVEL = {"node": 0, "workload": 0, "service": 0, "zone": 1, "dns": 2}
NODE_LEVEL_KINDS = frozenset({"node", "node-component"})


class Evidence(NamedTuple):  # a tuple: hashed in C, and sets of thousands are built per pass
    incident: str  # the incident this evidence stands for (an unexplained root, or a hypothesis)
    entity: str  # the failing entity


@dataclass(frozen=True)
class Inferred:
    entity: str
    evidence: tuple[Evidence, ...]
    reason: str


@functools.lru_cache(maxsize=1 << 18)
def inference_kind(entity: str) -> str:
    """The inference kind of a candidate: its entity kind, `workload` for controllers."""
    kind = entities.kind_of(entity)
    return "workload" if kind in WORKLOAD_KINDS else kind


def _namespace_of(entity: str) -> str | None:
    try:
        return entities.split(entity)[2]
    except ValueError:
        return None


def node_of(topology: Topology, entity: str) -> str | None:
    """The node an entity runs on or is part of: a node itself, a node component's node, a
    pod's node (None for what runs nowhere in particular)."""
    kind = entities.kind_of(entity)
    if kind == "node":
        return entity
    if kind == "node-component":
        return entity.rsplit("/", 1)[0]
    node = topology.attrs(entity).get("node")
    return entity_node_name(entity, str(node)) if node else None


def entity_node_name(entity: str, node: str) -> str:
    """A pod's `node` attribute may be a bare node name or a full entity name."""
    if node.startswith("node/"):
        return node
    _, cluster, _, _ = entities.split(entity)
    return entities.entity("node", cluster, node)


class _Static:
    """What inference needs to know about an entity that depends only on the topology: cached
    for as long as the topology (its Reach) lives, across inference passes."""

    def __init__(self, topology: Topology, reach: Reach) -> None:
        self.topology = topology
        self.reach = reach
        self._owners: dict[str, str] = {}
        self._targets: dict[str, tuple[tuple[str, str], ...]] = {}
        self._zone_size: dict[str, int] = {}
        self._own_nodes: dict[str, frozenset[str]] = {}
        self._node_level: dict[str, str | None] = {}
        self._coverage: dict[str, float] | None = None
        # Nodes, zones and cluster DNS, by entity: a reach (hundreds of entities for a Service)
        # is intersected with it in C rather than asked entity by entity.
        self._places: dict[str, str] = {
            entity: kind
            for entity in topology.graph
            if (kind := entities.kind_of(entity)) in ("node", "zone", "dns")
        }

    def owner(self, entity: str) -> str:
        """The application an entity belongs to: a pod's workload, a Service's pods' workload."""
        cached = self._owners.get(entity)
        if cached is not None:
            return cached
        owner = self.topology.attrs(entity).get("owner")
        if not owner and self.reach.has_members(entity):
            owner = next(
                (o for m in self.reach.members(entity) if (o := self.topology.attrs(m).get("owner"))), None
            )
        result = str(owner) if owner else entity
        self._owners[entity] = result
        return result

    def targets(self, entity: str) -> tuple[tuple[str, str], ...]:
        """(inference kind, entity) of everything inferable that `entity` depends on, a group
        (a Service) through its members as its alerts are, and a pod's workload."""
        cached = self._targets.get(entity)
        if cached is not None:
            return cached
        places = self._places
        found = [(places[t], t) for t in self.reach.of(entity).keys() & places.keys()]
        owner = self.owner(entity)
        group = next(
            (g for g in self.reach.groups_of(entity) if inference_kind(g) in entities.CLUSTER_FUNCTIONS), None
        )
        if group is not None:
            # A CoreDNS pod's workload is cluster DNS: that is what fails when its pods do.
            found.append(("workload", group))
        elif (
            entities.kind_of(entity) == "pod"
            and inference_kind(owner) == "workload"
            and owner in self.topology
        ):
            found.append(("workload", owner))
        elif inference_kind(entity) == "workload":
            found.append(("workload", entity))
        if entities.kind_of(entity) == "service":
            # A caller's errors point at the services it calls.
            found += [("service", callee) for callee in self.topology.calls(entity)]
        result = tuple(sorted(found))
        self._targets[entity] = result
        return result

    def own_nodes(self, entity: str) -> frozenset[str]:
        """The nodes the application's own pods run on: a pod's node, a Service's endpoints'
        nodes; not the nodes of what it calls (the callers of one database all reach its node,
        which says nothing about theirs)."""
        cached = self._own_nodes.get(entity)
        if cached is None:
            if self.reach.has_members(entity):
                members = self.reach.members(entity)
                cached = frozenset(n for m in members if (n := node_of(self.topology, m)) is not None)
            else:
                node = node_of(self.topology, entity)
                cached = frozenset() if node is None else frozenset((node,))
            self._own_nodes[entity] = cached
        return cached

    def coverage(self, place: str) -> float:
        """The share of the cluster's applications (Deployments, StatefulSets: not DaemonSets,
        which run everywhere) with a pod on this node or in this zone: how often a failing
        application would sit there by chance."""
        if self._coverage is None:
            self._coverage = self._count_coverage()
        return self._coverage.get(place, 0.0)

    def _count_coverage(self) -> dict[str, float]:
        """One walk over the pods (read from their attributes: caching the owner of every pod
        of a large cluster would cost more than the walk)."""
        topology = self.topology
        where: dict[str, set[str]] = {}  # node or zone -> applications with a pod there
        applications: set[str] = set()
        zones: dict[str, str | None] = {}  # node -> its zone
        for entity, attrs in topology.graph.nodes(data=True):
            if attrs.get("kind") != "pod" or not (node := attrs.get("node")):
                continue
            owner = str(attrs.get("owner") or "")
            if entities.kind_of(owner) not in ("deployment", "statefulset"):
                continue
            applications.add(owner)
            node = entity_node_name(entity, str(node))
            where.setdefault(node, set()).add(owner)
            if node not in zones:
                zones[node] = topology.zone_of(node)
            if zone_name := zones[node]:
                where.setdefault(zone_name, set()).add(owner)
        total = len(applications) or 1
        return {place: len(owners) / total for place, owners in where.items()}

    def zone_size(self, zone: str) -> int:
        size = self._zone_size.get(zone)
        if size is None:
            size = sum(1 for dep in self.topology.dependents(zone) if entities.kind_of(dep) == "node")
            self._zone_size[zone] = size
        return size


_STATIC: weakref.WeakKeyDictionary[Reach, _Static] = weakref.WeakKeyDictionary()


def _static(topology: Topology, reach: Reach) -> _Static:
    static = _STATIC.get(reach)
    if static is None:
        static = _STATIC[reach] = _Static(topology, reach)
    return static


def shares_a_node(topology: Topology, reach: Reach, entity: str, others: Iterable[str]) -> bool:
    """Whether another application among `others` has its own pods on a node `entity`'s own
    pods run on (a Service's endpoints, a pod's node)."""
    static = _static(topology, reach)
    mine = static.own_nodes(entity)
    if not mine:
        return False
    owner = static.owner(entity)
    return any(
        static.owner(other) != owner and not mine.isdisjoint(static.own_nodes(other)) for other in others
    )


class _Facts:
    """The static facts, and which candidates are failing right now (one inference pass)."""

    def __init__(self, topology: Topology, reach: Reach, is_failing: Callable[[str], bool]) -> None:
        static = _static(topology, reach)
        self.static = static
        self.topology = topology
        self.is_failing = is_failing
        self.owner = static.owner
        self.node_of = functools.partial(node_of, topology)
        self.zone_size = static.zone_size
        self._failing: dict[str, bool] = {}
        self._candidates: dict[str, dict[str, list[str]]] = {}
        self._alone: dict[str, str | None] = {}

    def node_level_node(self, entity: str) -> str | None:
        """For a node, a node component or a node agent (a DaemonSet's or a static pod): its
        node (node-level evidence for a zone). Cached with the topology."""
        known = self.static._node_level
        if entity not in known:
            known[entity] = self.node_of(entity) if self.is_agent(entity) else None
        return known[entity]

    def is_agent(self, entity: str) -> bool:
        """Part of a node itself: a node component, or a pod of a DaemonSet or a static pod."""
        kind = entities.kind_of(entity)
        if kind in NODE_LEVEL_KINDS:
            return True
        owner = self.owner(entity)
        return kind == "pod" and (entities.kind_of(owner) in ("daemonset", "node") or owner == entity)

    def alone_on(self, entity: str) -> str | None:
        """The one node the failure of `entity` points at, if it points at one alone: a pod, a
        node agent, a Service whose endpoints all run there. A workload's own alert says nothing
        of where (its pods do; its new pods may not be in the topology at all)."""
        if entity in self._alone:
            return self._alone[entity]
        nodes = self.candidates(entity).get("node", ())
        node = nodes[0] if len(nodes) == 1 and inference_kind(entity) != "workload" else None
        self._alone[entity] = node
        return node

    def nodes_under(self, entity: str) -> set[str]:
        """The nodes a failure of `entity` may sit on: the healthy nodes it depends on, and the
        node it runs on or is part of (failing or not)."""
        nodes = set(self.candidates(entity).get("node", ()))
        if (node := self.node_of(entity)) is not None:
            nodes.add(node)
        return nodes

    def own_nodes(self, entity: str) -> frozenset[str]:
        """The healthy nodes the application's own pods run on (`_Static.own_nodes`)."""
        found = self.static.own_nodes(entity)
        return found.intersection(self.candidates(entity).get("node", ())) if found else found

    def candidates(self, entity: str) -> dict[str, list[str]]:
        """Inferable dependencies of `entity` that are not failing, by inference kind."""
        cached = self._candidates.get(entity)
        if cached is not None:
            return cached
        found: dict[str, list[str]] = {}
        failing = self._failing
        for kind, target in self.static.targets(entity):
            if kind != "workload":
                down = failing.get(target)
                if down is None:
                    down = failing[target] = self.is_failing(target)
                if down:
                    continue
            found.setdefault(kind, []).append(target)
        self._candidates[entity] = found
        return found


def infer(
    evidence: list[Evidence],
    topology: Topology,
    reach: Reach,
    is_failing: Callable[[str], bool],
    settings: InferenceSettings,
    standing: Iterable[str] = (),
    alerting: Callable[[str], bool] = lambda entity: False,
    node_running: Callable[[str], bool] = lambda entity: False,
    node_at_work: Callable[[str], bool] = lambda node: False,
    passes_on: Callable[[str], bool] = lambda entity: True,
    bypasses_dns: Callable[[str], bool] = lambda entity: False,
    node_answers: Callable[[str], bool] = lambda entity: False,
) -> list[Inferred]:
    """The hidden roots the evidence supports, most specific first. `is_failing` must answer
    for failures that do not rest on inference (alerts, confirmed or paged incidents).
    `standing` are the roots inferred before: they claim their evidence first, so that a
    hypothesis is not traded for an equally good one pass after pass (it still loses to a
    broader candidate with far more evidence, and when its evidence is explained away).
    `alerting` tells whether an entity has a firing alert of its own. `node_running` tells
    whether a failing entity's alerts show its node at work (a container restarting in a crash loop):
    they point at no node. `node_at_work` tells whether such an alert shows a node up (a pod
    on it crash-looping): it is no hidden root. `passes_on` tells whether a failing service's
    alerts are of the kind a failing callee causes (errors, latency): only those point at the
    services it calls. `bypasses_dns` tells whether a failing entity's alerts show a failure no name lookup is
    part of (its pods' scrapes failing): its application is no evidence of a DNS outage.
    `node_answers` tells whether a node's alerts are the node reporting on itself (its
    exporter measuring a full disk): it is up and reachable, no sign that its zone is lost."""
    if not settings.enabled or not evidence:
        return []
    kinds = settings.kinds
    order = {kind: i for i, kind in enumerate(kinds)}
    facts = _Facts(topology, reach, is_failing)
    # A candidate is (the rule it is judged by, the entity): cluster DNS is judged by the DNS
    # rule on its clients' failures and by the workload rule on its own pods'.
    pointing: dict[tuple[str, str], list[Evidence]] = {}
    # What each node and zone is judged on, gathered in the same walk: a node on the evidence
    # that points at it alone, a zone on the node-level evidence in it (a spread Service points
    # at every node and zone it has endpoints in, and would be walked again at every look).
    alone_on: dict[str, list[Evidence]] = {}
    # Nodes whose own agents fail (its kubelet, a DaemonSet's pod): new evidence, not an equally
    # good explanation traded pass after pass, so they are judged with the standing hypotheses.
    own_signs: set[str] = set()
    node_level: dict[str, list[tuple[Evidence, str]]] = {}
    # Applications whose own pods fail in a way cluster DNS cannot cause (their scrapes, which
    # go to pod IPs, fail): none of their alerts points at DNS, but they still say where
    # failures sit (`elsewhere`): a zone under them and a few others is no DNS outage.
    not_dns = {facts.owner(item.entity) for item in evidence if bypasses_dns(item.entity)}
    # A rollout gone bad explains its new pods: its serving pods resolve names through cluster
    # DNS too, so neither they nor its Service point at DNS (three bad rollouts in two
    # namespaces are DNS's own pattern of failure otherwise).
    rolled_out = _rolled_out(evidence, facts)
    not_dns |= {facts.owner(pod) for pod in rolled_out}
    elsewhere: list[Evidence] = []
    for item in evidence:
        for kind, targets in facts.candidates(item.entity).items():
            if kind == "dns" and not_dns and facts.owner(item.entity) in not_dns:
                elsewhere.append(item)
                continue
            if kind in order:
                for target in targets:
                    pointing.setdefault((kind, target), []).append(item)
                if (
                    kind == "zone"
                    and (node := facts.node_level_node(item.entity))
                    and not node_answers(item.entity)
                ):
                    for target in targets:
                        node_level.setdefault(target, []).append((item, node))
        if "node" in order and (node := facts.alone_on(item.entity)) and not node_running(item.entity):
            alone_on.setdefault(node, []).append(item)
            if facts.node_level_node(item.entity):  # an agent of the node: its own sign
                own_signs.add(node)

    # Where each workload fails: the nodes its failing evidence points at.
    failing_nodes: dict[str, set[str]] = {}
    for item in evidence:
        failing_nodes.setdefault(facts.owner(item.entity), set()).update(facts.nodes_under(item.entity))

    taken: set[Evidence] = set()
    kept = set(standing)  # roots inferred before: they claim their evidence first

    def untaken(items: list[Evidence]) -> list[Evidence]:
        """What other accepted candidates have not claimed yet (the list itself while none has)."""
        return [e for e in items if e not in taken] if taken else items

    def node_reason(node: str, alone: list[Evidence]) -> str | None:
        """Judged on the evidence that points at this node alone: a pod, a node agent, a Service
        whose endpoints all run there. A workload's own alert says nothing of where (its pods
        do; its new pods may not be in the topology at all)."""
        # A pod its Deployment's rollout explains says nothing of its node (two bad rollouts
        # whose new pods landed on one healthy node).
        owners = {facts.owner(e.entity) for e in alone if e.entity not in rolled_out}
        if len(owners) < settings.min_workloads_node or node_at_work(node):
            return None
        # Two workloads failing together on one node is the node's doing when the node's own
        # agents fail too (its kubelet, its node-exporter, CNI or kube-proxy pod), or when
        # neither workload fails anywhere else; a workload that also fails on other nodes is
        # better explained by itself (a bad rollout) or by what all of them share.
        agents = any(facts.is_agent(e.entity) for e in alone)
        confined = {o for o in owners if failing_nodes.get(o, set()) <= {node}}
        if not agents and len(confined) < settings.min_workloads_node:
            return None
        return f"{len(alone)} alerts on {len(owners)} workloads running on it, and no alert of its own"

    def qualifies(
        candidate: tuple[str, str], items: list[Evidence], extra_nodes: Iterable[str] = ()
    ) -> str | None:
        """Whether a workload, zone or DNS candidate explains `items` (what is left of its
        evidence) by its own rule (nodes: `node_reason`)."""
        kind, entity = candidate
        if kind == "workload":
            # Two of its pods failing, or one and the workload's own alert (a single replica
            # crash-looping while the Deployment reports it short) where nothing else fails on
            # that pod's node, or its rollout's new pods (`_rolled_out`): the workload is broken.
            pods = {e.entity for e in items if entities.kind_of(e.entity) == "pod"}
            own = any(e.entity == entity for e in items) or alerting(entity)
            if pods and pods <= rolled_out:
                # Even one new pod failing while the old ReplicaSet serves: a rollout gone bad,
                # named before its `KubeDeploymentRolloutStuck` (progress deadline, then 15m).
                return (
                    f"the pods of its new ReplicaSet are failing ({len(pods)}) while the previous "
                    "ReplicaSet serves: a rollout gone bad, with no node or DNS to blame"
                )
            if len(pods) == 1 and own and _shares_its_node(next(iter(pods)), facts, alone_on):
                return None
            if len(pods) + own >= 2 and pods:
                return f"{len(pods)} of its pods are failing with no node or DNS to blame"
            return None
        if kind == "zone":
            signs = {node for e, node in node_level.get(entity, ()) if e not in taken}
            nodes = signs | set(extra_nodes) if extra_nodes else signs
            size = facts.zone_size(entity)
            needed = max(settings.min_nodes_zone, (size + 1) // 2)
            if signs and len(nodes) < needed:
                # A node failing by its own signs (its agents, its alerts; not one inferred
                # from applications' pods alone, which may be DNS) may point at the others.
                nodes |= {
                    n
                    for n in _underlying_nodes(entity, items, nodes, facts, settings, node_running)
                    if not node_at_work(n)
                }
            if size and len(nodes) >= needed:
                return f"{len(nodes)} of its {size} nodes are failing, and it has no alert of its own"
            return None
        if kind == "service":
            callers = {e.entity for e in items if passes_on(e.entity)}
            if len(callers) < settings.min_callers_service:
                return None
            if any(
                c not in callers and not alerting(c) and not is_failing(c) for c in topology.callers(entity)
            ):
                return None  # a healthy caller still gets its answers
            return (
                f"{len(callers)} services calling it are failing, none calling it is healthy, "
                "and it has no alert of its own"
            )
        if kind == "dns":
            return _dns_reason(items, facts, settings, standing=entity in kept, elsewhere=untaken(elsewhere))
        return None

    def strength(candidate: tuple[str, str], items: list[Evidence]) -> int:
        """How much of the evidence the candidate would explain by its own rule."""
        return len(untaken(alone_on.get(candidate[1], []))) if candidate[0] == "node" else len(items)

    # Lazy greedy set cover. Standing hypotheses first (with nodes whose own agents fail outside
    # a standing zone), then by breadth level (a node and a
    # workload are equally narrow, then a zone, then cluster DNS); within a level, whatever
    # explains most of what is left (a node where many workloads fail beats the workloads one
    # by one; two bad rollouts beat the node they happen to share).
    def key(candidate: tuple[str, str], power: int) -> tuple[bool, int, int, int, str, str]:
        kind, entity = candidate
        # A standing zone explains its nodes' agents too: its new nodes stay its evidence.
        first = entity in kept or (
            kind == "node" and entity in own_signs and topology.zone_of(entity) not in kept
        )
        return (not first, LEVEL.get(kind, 0), -power, order[kind], entity, kind)

    # Evidence of each qualified broad candidate (zone, DNS), for the narrow-versus-broad test
    # (computed once); narrow ones are judged when their turn comes.
    broader = {
        c: {e.incident for e in items}
        for c, items in pointing.items()
        if LEVEL.get(c[0], 0) > 0 and qualifies(c, items)
    }
    # Cluster DNS the evidence cannot tell from a zone yet (it would be kept were it standing):
    # the failures are broader than one node all the same, so it stands against a node as a
    # qualified one would. Judged once, when a node first comes to that test.
    undecided: dict[tuple[str, str], set[str]] | None = None
    heap = [(key(c, strength(c, items)), c) for c, items in pointing.items()]
    heapq.heapify(heap)
    accepted: dict[str, Inferred] = {}
    accepted_nodes: dict[str, list[str]] = {}  # zone -> nodes accepted in this pass
    while heap:
        recorded, candidate = heapq.heappop(heap)
        kind, entity = candidate
        extra = accepted_nodes.get(entity, ()) if kind == "zone" else ()
        if LEVEL.get(kind, 0) > 0 and candidate not in broader and not extra:
            continue  # did not qualify on all its evidence: less will not do either
        if kind == "node":
            # A node is weighed and judged on what points at it alone; when accepted it takes
            # all the evidence that points at it.
            alone = untaken(alone_on.get(entity, []))
            current = key(candidate, len(alone))
            if current > recorded:  # others took some of its evidence: back in line
                heapq.heappush(heap, (current, candidate))
                continue
            reason = node_reason(entity, alone)
            if reason is None:
                continue
            items = untaken(pointing.get(candidate, []))
        else:
            items = untaken(pointing.get(candidate, []))
            current = key(candidate, len(items))
            if current > recorded:
                heapq.heappush(heap, (current, candidate))
                continue
            reason = qualifies(candidate, items, extra)
            if reason is None:
                continue
        own = {e.incident for e in items}
        level = LEVEL.get(kind, 0)
        against = broader
        if kind == "node":
            if undecided is None:
                undecided = {
                    c: {e.incident for e in theirs}
                    for c, theirs in pointing.items()
                    if c[0] == "dns"
                    and c not in broader
                    and _dns_reason(theirs, facts, settings, standing=True, elsewhere=elsewhere) is not None
                }
            against = broader | undecided
        if any(
            LEVEL.get(other[0], 0) > level
            and len(own) < settings.narrow_share * len(theirs)
            and own <= theirs
            for other, theirs in against.items()
        ):
            continue
        if entity in accepted:  # accepted by another rule too: one root, all its evidence
            previous = accepted[entity]
            accepted[entity] = Inferred(entity, (*previous.evidence, *items), previous.reason)
        else:
            accepted[entity] = Inferred(entity, tuple(items), reason)
        taken.update(items)
        if kind == "node" and (zone := topology.zone_of(entity)):
            accepted_nodes.setdefault(zone, []).append(entity)
            pointing.setdefault(("zone", zone), [])
            heapq.heappush(heap, (key(("zone", zone), 0), ("zone", zone)))
    # Last, from what no structural explanation took (a callee its callers share, a workload,
    # a node its pods point at alone): the one node the failing applications left share
    # beyond chance. Co-location is the weakest evidence, so it never claims evidence first,
    # even as a standing hypothesis.
    left = untaken(evidence)
    shared = _shared_node(left, facts, settings, node_running) if "node" in order and left else None
    if shared is not None and shared[0] not in accepted and not node_at_work(shared[0]):
        node, there, failing = shared
        items = untaken(pointing.get(("node", node), []))
        own = {e.incident for e in items}
        if not any(
            len(own) < settings.narrow_share * len(theirs) and own <= theirs for theirs in broader.values()
        ):
            reason = (
                f"{there} of the {failing} failing applications have a pod on it, more than chance "
                "would put there, and it has no alert of its own"
            )
            accepted[node] = Inferred(node, tuple(items), reason)
    return list(accepted.values())


def _shares_its_node(pod: str, facts: _Facts, alone_on: dict[str, list[Evidence]]) -> bool:
    """Whether other applications fail on the node of a workload's one failing pod: a replica
    short and its workload reporting it short are one failure, and the node under it, or its
    zone, is then the likelier cause (a lost zone's nodes, before their own alerts)."""
    node = facts.alone_on(pod)
    owner = facts.owner(pod)
    return node is not None and any(facts.owner(e.entity) != owner for e in alone_on.get(node, ()))


def _rolled_out(evidence: list[Evidence], facts: _Facts) -> set[str]:
    """Failing pods that a rollout in progress explains (`Rollout.gone_bad`): its new pods
    fail while the old ones serve."""
    failing: dict[str, list[str]] = {}  # Deployment -> its failing pods
    for item in evidence:
        if entities.kind_of(item.entity) == "pod":
            failing.setdefault(facts.owner(item.entity), []).append(item.entity)
    rolled: set[str] = set()
    for pods in failing.values():
        rollout = facts.static.reach.rollout(pods[0])
        if rollout is not None and rollout.gone_bad(pods):
            rolled.update(pods)
    return rolled


def _underlying_nodes(
    zone: str,
    items: list[Evidence],
    failing: set[str],
    facts: _Facts,
    settings: InferenceSettings,
    node_running: Callable[[str], bool],
) -> set[str]:
    """Other nodes of a zone with a node already failing that the evidence left points at: the
    applications still unexplained share them beyond chance. A zone's second node often shows
    first in the error rates of Services spread over several zones whose one common node it
    is, before any pod or agent of its own alerts. A crash-looping pod points at no node (its
    node restarts it), and a node running one is up (the caller checks that)."""
    where: dict[str, set[str]] = {}  # node of the zone -> applications with an endpoint there
    applications: set[str] = set()  # what the failing nodes do not explain
    for item in items:
        item_nodes = facts.nodes_under(item.entity)
        if item_nodes & failing:
            continue  # a failing node of the zone explains it already
        if node_running(item.entity):
            continue
        owner = facts.owner(item.entity)
        applications.add(owner)
        for node in item_nodes:
            if facts.topology.zone_of(node) == zone:
                where.setdefault(node, set()).add(owner)
    return {
        node
        for node, owners in where.items()
        if len(owners) >= settings.min_workloads_node
        and _underlies(len(owners), len(applications), facts.static.coverage(node), standing=False)
    }


def _shared_node(
    evidence: list[Evidence], facts: _Facts, settings: InferenceSettings, node_running: Callable[[str], bool]
) -> tuple[str, int, int] | None:
    """The one node the failing applications share beyond chance, with how many of them sit
    there and how many fail: `_underlies` for a node taken on its own (no DNS to keep), and no
    other node with as many. A crash-looping pod points at no node (its node restarts it)."""
    where: dict[str, set[str]] = {}  # node -> failing applications with a pod there
    applications: set[str] = set()
    for item in evidence:
        if entities.kind_of(item.entity) in NODE_LEVEL_KINDS or facts.is_agent(item.entity):
            continue  # a node's own signs point at it alone already
        owner = facts.owner(item.entity)
        applications.add(owner)
        if node_running(item.entity):
            continue
        for node in facts.own_nodes(item.entity):
            where.setdefault(node, set()).add(owner)
    if len(applications) < settings.min_workloads_shared_node:
        return None
    ranked = sorted(where.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    if not ranked or len(ranked[0][1]) < settings.min_workloads_shared_node:
        return None
    node, owners = ranked[0]
    if len(ranked) > 1 and len(ranked[1][1]) == len(owners):
        return None  # two nodes as shared as each other: the evidence cannot tell them apart
    if not _underlies(len(owners), len(applications), facts.static.coverage(node), standing=True):
        return None
    return node, len(owners), len(applications)


def _underlies(there: int, failing: int, chance: float, *, standing: bool) -> bool:
    """Whether `there` of `failing` failures sitting on one node (or in one zone) makes that
    place, rather than cluster DNS, the better explanation. Under two thirds of them: no. Two
    thirds or more, and at least halfway from the share of applications that sit there anyway
    (`chance`) to all of them: yes, they are concentrated there. More than two thirds but no
    more than chance would put there (in a small cluster most Services have an endpoint in
    every zone): the evidence cannot tell the place from DNS, so a DNS hypothesis already
    standing is kept and a new one waits for signals that can (node-level alerts, CoreDNS's)."""
    share = there / failing
    if share * 3 < 2:
        return False
    if share >= (1 + chance) / 2:
        return True
    return share * 3 > 2 and not standing


def _dns_reason(
    items: list[Evidence],
    facts: _Facts,
    settings: InferenceSettings,
    *,
    standing: bool = False,
    elsewhere: list[Evidence] | tuple[Evidence, ...] = (),
) -> str | None:
    """Cluster DNS is blamed when failures are broad and nothing narrower underlies them: when
    one node (or zone) underlies most of them (`_underlies`), what is left without it must
    still be broad. A dead node and an unrelated bad rollout are not a DNS outage. `standing`:
    DNS is a hypothesis already, kept while the evidence cannot tell. `elsewhere`: failures DNS
    cannot cause (failed scrapes), counted only in where the failures sit."""
    places: dict[str, tuple[set[str], set[str]]] = {}  # item entity -> (its nodes, its zones)
    for item in (*items, *elsewhere):
        zones = set(facts.candidates(item.entity).get("zone", ()))
        places[item.entity] = (facts.nodes_under(item.entity), zones)

    def broad(subset: list[Evidence]) -> tuple[int, int, int] | None:
        owners = {facts.owner(e.entity) for e in subset}
        namespaces = {ns for e in subset if (ns := _namespace_of(e.entity))}
        nodes = set().union(*(places[e.entity][0] for e in subset)) if subset else set()
        if (
            len(owners) < settings.min_workloads_dns
            or len(namespaces) < settings.min_namespaces_dns
            or len(nodes) < settings.min_nodes_dns
        ):
            return None
        return len(owners), len(namespaces), len(nodes)

    figures = broad(items)
    if figures is None:
        return None
    for where in (0, 1):  # the node, then the zone, under the most failures
        counts: dict[str, int] = {}
        for nodes_and_zones in places.values():
            for place in nodes_and_zones[where]:
                counts[place] = counts.get(place, 0) + 1
        if counts:
            top = max(sorted(counts), key=counts.__getitem__)
            if (
                _underlies(counts[top], len(places), facts.static.coverage(top), standing=standing)
                and broad([e for e in items if top not in places[e.entity][where]]) is None
            ):
                return None  # most failures sit on one node (or in one zone), the rest are few
    owners, namespaces, nodes = figures
    return (
        f"{owners} workloads in {namespaces} namespaces on {nodes} nodes are failing, "
        "and no node or zone underlies them: the dependency they share is cluster DNS"
    )
