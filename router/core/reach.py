"""What an entity depends on, with a way back to the path that explains each dependency.

`Reach` is a cache over the topology. For an entity E, `of(E)` maps every entity E depends on,
directly or transitively, to its *parent*: the entity just before it on a dependency path from
E. `path(E, D)` follows the parents back to E. Hard edges are always followed. Redundant edges
(group -> member) only as the first hop from E itself: an alert on a Service is explained by one
failing endpoint pod, but a pod that merely uses cluster DNS is not explained by one of two
CoreDNS replicas failing. (A group whose members are *all* failing counts as failing itself;
the engine checks that, not this cache.)

The maps are composed from the dependencies' own maps with C-level dict updates: every pod of
a node shares the node's tail (node, zone, region), so a new pod costs a few dict merges, not a
graph walk. Paths are rebuilt only for the few dependencies that are failing.

`starved(E)` is the other direction, for alerts that say E receives no requests: E's callers,
transitively over call edges (a broken caller of a caller starves E too), and what each of
them and E itself run on (their dependencies other than calls: a caller's crashed pods, E's own
pods). A failing callee never explains E going without requests.

The cache is valid for one topology; the engine builds a new one when the topology changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import NamedTuple

from topology import entities
from topology.graph import Topology, is_call

# Bound on one entity's reach: a workload with thousands of pods is still cheap to explain.
MAX_REACH = 50_000


class Rollout(NamedTuple):
    """A Deployment with two or more ReplicaSets that have pods: a rollout in progress (a
    finished rollout scales the old ones to zero, and a ReplicaSet without pods is not in the
    graph). `Reach.rollout`."""

    deployment: str
    replicasets: tuple[frozenset[str], ...]  # the pods of each

    def pods(self) -> frozenset[str]:
        return frozenset().union(*self.replicasets)

    def gone_bad(self, failing: Iterable[str]) -> bool:
        """Whether the failing pods are all in one ReplicaSet no larger than any other, and none
        of the others' fail: the new pods of a rollout gone bad, beside old ones that serve (a
        rollout that stalls, stalls early: maxSurge's few new pods beside most of the old)."""
        failing = set(failing)
        holding = [pods for pods in self.replicasets if pods & failing]
        if len(holding) != 1 or not failing <= holding[0]:
            return False
        return all(len(holding[0]) <= len(pods) for pods in self.replicasets)


class Reach:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._succ = topology.graph._succ  # adjacency: entity -> {dependency: edge attributes}
        self._of: dict[str, dict[str, str]] = {}
        self._starved: dict[str, dict[str, str]] = {}
        self._hard: dict[str, dict[str, str]] = {}
        self._in_progress: set[str] = set()
        self._groups: dict[str, tuple[str, ...]] = {}
        self._members: dict[str, list[str]] = {}
        self._kinds: dict[str, str] = {}
        self._rollouts: dict[str, Rollout | None] = {}
        # Every entity that has members (a group), found once so that a look-up is a set test.
        # A plain set, not a frozenset: `dict.keys() & set` iterates the keys (a reach of a few
        # hundred entities), `dict.keys() & frozenset` would iterate every group.
        self.group_entities: set[str] = {
            a for a, nbrs in self._succ.items() if any(d.get("redundant") for d in nbrs.values())
        }

    def of(self, entity: str) -> dict[str, str]:
        """Dependency -> parent, for everything `entity` depends on (first hop may be a member)."""
        cached = self._of.get(entity)
        if cached is None:
            if entity in self.group_entities:
                cached = self._compose(entity, first_hop_redundant=True)
            else:  # no member edges: the same map as `hard`, often built already (a pod's)
                cached = self.hard(entity)
            self._of[entity] = cached
        return cached

    def hard(self, entity: str) -> dict[str, str]:
        """Like `of`, over hard edges only (what the entity really cannot live without)."""
        cached = self._hard.get(entity)
        if cached is None:
            if entity in self._in_progress:  # a cycle in a hand-written topology: cut it here
                return {}
            self._in_progress.add(entity)
            try:
                cached = self._hard[entity] = self._compose(entity, first_hop_redundant=False)
            finally:
                self._in_progress.discard(entity)
        return cached

    def _compose(self, start: str, *, first_hop_redundant: bool) -> dict[str, str]:
        succ = self._succ.get(start)
        if not succ:
            return {}
        parents: dict[str, str] = {}
        direct: list[str] = []
        built = self._hard
        for dep, data in succ.items():
            if data.get("redundant") and not first_hop_redundant:
                continue
            direct.append(dep)
            tail = built.get(dep)
            parents.update(self.hard(dep) if tail is None else tail)
            if len(parents) >= MAX_REACH:
                break
        for dep in direct:  # direct dependencies hang off `start`, whatever the deeper maps said
            parents[dep] = start
        parents.pop(start, None)
        return parents

    def starved(self, entity: str) -> dict[str, str]:
        """Caller or dependency -> parent, for everything whose failure leaves `entity` without
        requests: its callers, transitively, and what they and `entity` run on (not calls)."""
        cached = self._starved.get(entity)
        if cached is not None:
            return cached
        parents: dict[str, str] = {}
        order = [entity]
        seen = {entity}
        pred = self.topology.graph._pred
        for current in order:  # breadth first: the nearest caller is the parent
            for caller, data in pred.get(current, {}).items():
                if caller not in seen and is_call(caller, current, data):
                    seen.add(caller)
                    parents[caller] = current
                    order.append(caller)
        for runner in order:
            for dependency, parent in self._local(runner, first_hop_redundant=runner == entity).items():
                if dependency not in parents and dependency != entity:
                    parents[dependency] = parent
        self._starved[entity] = parents
        return parents

    def _local(self, start: str, *, first_hop_redundant: bool) -> dict[str, str]:
        """What `start` runs on: its dependencies over every edge but calls (breadth first)."""
        parents: dict[str, str] = {}
        frontier = [start]
        seen = {start}
        for current in frontier:
            for dependency, data in self._succ.get(current, {}).items():
                if dependency in seen or is_call(current, dependency, data):
                    continue
                if data.get("redundant") and not (first_hop_redundant and current == start):
                    continue
                seen.add(dependency)
                parents[dependency] = current
                frontier.append(dependency)
                if len(parents) >= MAX_REACH:
                    return parents
        return parents

    def path(self, start: str, target: str, *, hard: bool = False, starved: bool = False) -> tuple[str, ...]:
        """The dependency chain from `start` to `target` (both included); with `starved`, the
        chain of callers (and what the last one runs on) that leaves `start` without requests."""
        parents = self.starved(start) if starved else self.hard(start) if hard else self.of(start)
        path = [target]
        seen = {target}
        current = target
        while current != start:
            current = parents.get(current, start)
            if current in seen:  # defensive: never loop on a malformed map
                break
            path.append(current)
            seen.add(current)
        path.reverse()
        return tuple(path)

    def indirect(self, path: tuple[str, ...]) -> bool:
        """Whether a dependency path runs through something an entity on it talks to (a Service
        it calls, a cluster function it uses: DNS, the apiserver) rather than only through what
        its first entity runs on."""
        succ = self._succ
        functions = entities.CLUSTER_FUNCTIONS
        for dependent, dependency in pairwise(path):
            # Only a Service calls a Service: the prefix test keeps the look-ups to those.
            if dependent[:8] == "service/" and dependency[:8] == "service/":
                data = succ.get(dependent, {}).get(dependency)
                if data is not None and is_call(dependent, dependency, data):
                    return True
            elif self.kind(dependency) in functions and self.kind(dependent) not in functions:
                return True
        return False

    def depth(self, start: str, target: str, *, starved: bool = False) -> int:
        """len(path(start, target)), without building the path."""
        parents = self.starved(start) if starved else self.of(start)
        count = 1
        current = target
        while current != start and count <= len(parents) + 1:
            current = parents.get(current, start)
            count += 1
        return count

    def kind(self, entity: str) -> str:
        kind = self._kinds.get(entity)
        if kind is None:
            kind = self._kinds[entity] = entities.kind_of(entity)
        return kind

    def has_members(self, entity: str) -> bool:
        return entity in self.group_entities

    def groups_of(self, entity: str) -> tuple[str, ...]:
        """Groups that list `entity` as one of their redundant members."""
        cached = self._groups.get(entity)
        if cached is None:
            graph = self.topology.graph
            if entity in graph:
                cached = tuple(sorted(g for g, data in graph.pred[entity].items() if data.get("redundant")))
            else:
                cached = ()
            self._groups[entity] = cached
        return cached

    def members(self, group: str) -> list[str]:
        cached = self._members.get(group)
        if cached is None:
            cached = self._members[group] = sorted(self.topology.redundant_members(group))
        return cached

    def rollout(self, entity: str) -> Rollout | None:
        """The rollout in progress of a Deployment, or of the Deployment of a pod; None for
        anything else, and for a Deployment with one ReplicaSet that has pods."""
        if entity in self._rollouts:
            return self._rollouts[entity]
        graph = self.topology.graph
        deployment: str | None = entity if self.kind(entity) == "deployment" else None
        if deployment is None and entity in graph and self.kind(entity) == "pod":
            replicaset = next((r for r in graph.pred[entity] if self.kind(r) == "replicaset"), None)
            if replicaset is not None:
                deployment = next((d for d in graph.pred[replicaset] if self.kind(d) == "deployment"), None)
        found: Rollout | None = None
        if deployment is not None and deployment in graph:
            if deployment in self._rollouts:
                found = self._rollouts[deployment]
            else:
                sets = [
                    frozenset(graph.succ[r]) for r in graph.succ[deployment] if self.kind(r) == "replicaset"
                ]
                found = Rollout(deployment, tuple(sets)) if len(sets) >= 2 else None
                self._rollouts[deployment] = found
        self._rollouts[entity] = found
        return found
