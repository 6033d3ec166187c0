"""Hidden roots: blame a dependency that has no alert of its own when the evidence points there.

Evidence is the set of open incidents whose root nothing explains. For every inferable
dependency D (a node, a zone, cluster DNS) reached from an evidence entity over hard edges, we
count what points at D. A candidate qualifies by kind:

- node: alerts on at least `min_workloads_node` distinct workloads running on it (two pods of one
  bad deployment on one node prove nothing about the node);
- zone: node-level alerts on at least `min_nodes_zone` distinct nodes, and at least half of its nodes;
- dns: alerts on `min_workloads_dns` workloads spread over several namespaces and nodes, whose
  shared dependency is cluster DNS.

Candidates are taken most specific first (node, then zone, then DNS). A narrow candidate loses
to a broader one that holds its evidence and more than twice as much (two failing pods on one
node are a coincidence when twelve services fail cluster-wide). Evidence taken by an accepted
candidate is not counted again. Pure: no state, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from router.reach import Reach
from router.settings import InferenceSettings
from topology import entities
from topology.graph import Topology


@dataclass(frozen=True)
class Evidence:
    incident: str
    entity: str


@dataclass(frozen=True)
class Inferred:
    entity: str
    evidence: tuple[Evidence, ...]
    reason: str


def _owner(topology: Topology, entity: str) -> str:
    return topology.attrs(entity).get("owner") or entity


def _node_of(topology: Topology, entity: str) -> str | None:
    kind = entities.kind_of(entity)
    if kind == "node":
        return entity
    if kind == "node-component":
        return entity.rsplit("/", 1)[0]
    node = topology.attrs(entity).get("node")
    if node:
        return entity_node_name(entity, node)
    return None


def entity_node_name(entity: str, node: str) -> str:
    """A pod's `node` attribute may be a bare node name or a full entity name."""
    if node.startswith("node/"):
        return node
    _, cluster, _, _ = entities.split(entity)
    return entities.entity("node", cluster, node)


def _namespace_of(entity: str) -> str | None:
    try:
        return entities.split(entity)[2]
    except ValueError:
        return None


def infer(
    evidence: list[Evidence],
    topology: Topology,
    reach: Reach,
    is_failing: Callable[[str], bool],
    settings: InferenceSettings,
) -> list[Inferred]:
    if not settings.enabled or len(evidence) < 2:
        return []
    kinds = settings.kinds
    pointing: dict[str, list[Evidence]] = {}
    for item in evidence:
        for target in reach.hard(item.entity):
            if reach.kind(target) not in kinds:
                continue
            if is_failing(target):
                continue
            pointing.setdefault(target, []).append(item)

    def qualifies(candidate: str, items: list[Evidence]) -> str | None:
        kind = entities.kind_of(candidate)
        owners = {_owner(topology, e.entity) for e in items}
        nodes = {n for e in items if (n := _node_of(topology, e.entity))}
        if kind == "node" and len(owners) >= settings.min_workloads_node:
            return f"{len(items)} alerts on {len(owners)} workloads running on it, and no alert of its own"
        # A zone is blamed on node-level failures only: pods failing on several nodes of a zone
        # are more often an application or DNS problem than a lost zone.
        nodes_down = {
            _node_of(topology, e.entity)
            for e in items
            if entities.kind_of(e.entity) in ("node", "node-component")
        }
        if kind == "zone" and len(nodes_down) >= settings.min_nodes_zone:
            nodes = nodes_down
            zone_nodes = sum(1 for dep in topology.dependents(candidate) if entities.kind_of(dep) == "node")
            if zone_nodes and len(nodes) * 2 >= zone_nodes:
                return f"{len(nodes)} of its {zone_nodes} nodes are failing, and it has no alert of its own"
        if kind == "dns":
            namespaces = {ns for e in items if (ns := _namespace_of(e.entity))}
            if (
                len(owners) >= settings.min_workloads_dns
                and len(namespaces) >= settings.min_namespaces_dns
                and len(nodes) >= settings.min_nodes_dns
            ):
                return (
                    f"{len(owners)} workloads in {len(namespaces)} namespaces on {len(nodes)} nodes "
                    "are failing and the only dependency they share is cluster DNS"
                )
        return None

    order = {kind: i for i, kind in enumerate(kinds)}
    candidates = sorted(pointing, key=lambda c: (order[entities.kind_of(c)], -len(pointing[c]), c))
    qualified = {c: pointing[c] for c in candidates if qualifies(c, pointing[c])}
    # Evidence of each qualified candidate, for the narrow-versus-broad test (computed once).
    broader = {c: {e.incident for e in items} for c, items in qualified.items()}
    wider_than = {
        rank: [theirs for other, theirs in broader.items() if order[entities.kind_of(other)] > rank]
        for rank in range(len(kinds))
    }
    accepted: list[Inferred] = []
    taken: set[str] = set()
    for candidate in candidates:
        if candidate not in qualified:
            continue
        items = [e for e in pointing[candidate] if e.incident not in taken]
        reason = qualifies(candidate, items)
        if reason is None:
            continue
        own = {e.incident for e in items}
        wider = wider_than[order[entities.kind_of(candidate)]]
        if any(len(own) < settings.narrow_share * len(theirs) and own <= theirs for theirs in wider):
            continue
        accepted.append(Inferred(candidate, tuple(items), reason))
        taken |= own
    return accepted
