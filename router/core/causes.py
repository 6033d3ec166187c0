"""Changes as causes: which recorded change (or lead) most likely started an incident.

Most application incidents start with a change: a rollout with a bad image, an edited feature
flag ConfigMap, a NetworkPolicy, a rotated Secret. The topology carries the changes its sources
saw as timed events (topology/changes.py). When an incident pages, the change named is one
made within `change_window` before its first alert fired, ranked by how close it is to the
incident's root:

1. the root itself, or the workload that runs it (a pod's ReplicaSet and Deployment, a
   Service's Deployment);
2. something the root depends on (the ConfigMap its pods mount, a service it calls and that
   service's own changes);
3. anything else in the root's namespace or in that of a service it calls (nothing tells what
   mounts a ConfigMap).

Recency matters as much as closeness: a bad image or a broken flag shows within minutes, so
after the root's own changes, those of the last `RECENT` (15m) before the failure come first
(beneath the root before elsewhere in the namespace), then older ones; within each, the latest
change wins (the one just before the failure), then the nearest.

One more pattern names a cause (`unreachable_callee`): the root is a service whose calls fail,
and exactly one of the services it calls receives no requests at all (a starvation alert
attached to the incident) while its other callees still do (so it calls at least two). The
caller reaches nobody there: that callee, or the network to it, is the likely cause (a
partition, a NetworkPolicy, a dead listener). Several starving callees say the opposite: the
caller itself broke and stopped calling everyone. The engine prefers this concurrent evidence
to a change beneath the root (circumstantial), not to a change of the root itself.

When no change is near, two weaker leads read off what fails with the root: on a node that its
residents saturate, the one workload there in trouble that no failing callee explains
(`busy_resident`); for a service failing by its callers' measure, the one service it calls that
no healthy caller also calls (`suspect_callee`): a callee failing would fail all its callers.
The engine's `_likely_cause` orders them all (docs/engine.md).

Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta

from router.core.inference import inference_kind
from router.core.reach import Reach
from topology import entities
from topology.changes import Change
from topology.graph import Topology

_WORKLOADS = ("deployment/", "statefulset/", "daemonset/", "replicaset/")


def _owners(topology: Topology, entity: str) -> set[str]:
    """The entity and the workloads that run it (a pod's ReplicaSet and Deployment, a Service's
    workloads)."""
    out = {entity}
    frontier = [entity]
    for current in frontier:
        owner = topology.attrs(current).get("owner") if current in topology else None
        found = [owner] if isinstance(owner, str) else []
        if current.startswith("service/") and current in topology:
            found += [
                d
                for d, redundant in topology.dependencies(current)
                if not redundant and d.startswith(_WORKLOADS)
            ]
        if current.startswith("replicaset/"):
            found += [d for d in topology.dependents(current) if d.startswith("deployment/")]
        for name in found:
            if name not in out:
                out.add(name)
                frontier.append(name)
    return out


def _namespace(entity: str) -> tuple[str, str | None]:
    try:
        _, cluster, namespace, _ = entities.split(entity)
    except ValueError:  # an alert that names no entity stands for itself
        return "", None
    return cluster, namespace


NAMESPACE_RANK = 2
RECENT = timedelta(minutes=15)


def likely_cause(
    topology: Topology, reach: Reach, root: str, failed_at: datetime, window: timedelta
) -> tuple[Change, tuple[str, ...], int] | None:
    """The change that most likely caused a failure of `root` first seen at `failed_at`, the
    dependency path from the root to what changed, and its rank (0 the root's own, 1 beneath it,
    `NAMESPACE_RANK` only its namespace); None when nothing changed nearby."""
    changes = topology.changes.between(failed_at - window, failed_at)
    if not changes:
        return None
    own = _owners(topology, root)
    dependencies = reach.of(root) if root in topology else {}
    # Nothing tells what mounts a ConfigMap: a change anywhere in the root's namespace, or in
    # that of a service it calls, may be the one.
    nearby = {_namespace(root)} | {_namespace(callee) for callee in topology.calls(root)}
    nearby.discard(("", None))
    best: tuple[tuple[bool, int, float, int, str], Change, tuple[str, ...]] | None = None
    for change in changes:
        path: tuple[str, ...]
        if change.entity in own:
            rank, depth, path = 0, 0, (root, change.entity) if change.entity != root else (root,)
        elif change.entity in dependencies:
            path = reach.path(root, change.entity)
            rank, depth = 1, len(path)
        elif _namespace(change.entity) in nearby:
            rank, depth, path = NAMESPACE_RANK, 0, (root, change.entity)
        else:
            continue
        older = rank > 0 and failed_at - change.at > RECENT
        key = (older, rank, -change.at.timestamp(), depth, change.entity)
        if best is None or key < best[0]:
            best = (key, change, path)
    return None if best is None else (best[1], best[2], best[0][1])


def unreachable_callee(
    topology: Topology, root: str, starving: Mapping[str, datetime]
) -> tuple[str, datetime] | None:
    """The one service `root` calls that receives no requests (`starving`: entity -> when its
    alert started), when it is the only one of its callees starving; else None."""
    callees = set(topology.calls(root)) if root in topology else set()
    silent = sorted(entity for entity in starving if entity in callees)
    if len(silent) != 1 or len(callees) < 2:  # a caller of one service may just have stopped
        return None
    return silent[0], starving[silent[0]]


def suspect_callee(topology: Topology, root: str, failing: Collection[str]) -> str | None:
    """The one service `root` calls that may be failing it, or None: a callee that another,
    healthy caller also calls serves that caller well, and is cleared. `failing`: the entities
    with a firing alert."""
    callees = topology.calls(root) if root in topology else []
    left = [
        callee
        for callee in callees
        if all(caller == root or caller in failing for caller in topology.callers(callee))
    ]
    return left[0] if len(left) == 1 else None


def busy_resident(topology: Topology, node: str, failing: Mapping[str, set[str]]) -> str | None:
    """The one workload running on `node` that shows trouble of its own, named by the entity its
    alert is on; None when no workload there or several do.

    `failing` maps each entity with a firing alert (the node's own left out) to the directions
    its alerts travel (`explained_by`). A resident whose errors or latency a failing callee
    explains is a victim of that callee, not a suspect.
    """
    residents: dict[str, str] = {}  # entity -> the workload it stands for
    for pod in sorted(topology.dependents(node)):
        if entities.kind_of(pod) != "pod":
            continue
        owners = _owners(topology, pod)
        workload = next((o for o in sorted(owners) if inference_kind(o) == "workload"), pod)
        services = {s for s in topology.dependents(pod) if entities.kind_of(s) == "service"}
        for entity in owners | services:
            residents.setdefault(entity, workload)
    suspects: dict[str, str] = {}
    for entity, directions in sorted(failing.items()):
        stands_for = residents.get(entity)
        if stands_for is None:
            continue
        if directions == {"dependencies"} and any(callee in failing for callee in topology.calls(entity)):
            continue
        suspects.setdefault(stands_for, entity)
    return next(iter(suspects.values())) if len(suspects) == 1 else None
