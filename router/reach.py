"""What an entity depends on, near to far, with the path to each dependency.

`Reach` is a cache over the topology: for an entity E it lists every entity E depends on,
directly or transitively, each with its shortest dependency path from E. Hard edges are
always followed. Redundant edges (group -> member) are followed only as the first hop from E
itself: an alert on a Service is explained by one failing endpoint pod, but a pod that merely
uses cluster DNS is not explained by one of two CoreDNS replicas failing. (A group whose
members are *all* failing counts as failing itself; the engine checks that, not this cache.)

The cache is valid for one topology; the engine builds a new one when the topology changes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from topology.graph import Topology

# Bound on one entity's reach: a workload with thousands of pods is still cheap to explain.
MAX_REACH = 20_000


@dataclass(frozen=True, slots=True)
class Reached:
    entity: str
    path: tuple[str, ...]  # from the alerting entity to `entity`, both included
    via_redundant: bool  # the first hop was a group -> member edge


class Reach:
    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._cache: dict[str, tuple[Reached, ...]] = {}
        self._groups: dict[str, tuple[str, ...]] = {}
        self._members: dict[str, list[str]] = {}

    def of(self, entity: str) -> tuple[Reached, ...]:
        cached = self._cache.get(entity)
        if cached is None:
            cached = self._cache[entity] = self._walk(entity)
        return cached

    def _walk(self, start: str) -> tuple[Reached, ...]:
        if start not in self.topology:
            return ()
        found: list[Reached] = []
        seen = {start}
        queue: deque[tuple[str, tuple[str, ...], bool]] = deque()
        for dep, redundant in self.topology.dependencies(start):
            if dep not in seen:
                seen.add(dep)
                queue.append((dep, (start, dep), redundant))
        while queue and len(found) < MAX_REACH:
            entity, path, via_redundant = queue.popleft()
            found.append(Reached(entity, path, via_redundant))
            for dep, redundant in self.topology.dependencies(entity):
                if redundant or dep in seen:
                    continue
                seen.add(dep)
                queue.append((dep, (*path, dep), via_redundant))
        return tuple(found)

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
