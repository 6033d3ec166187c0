"""Which live incidents to re-judge when an entity starts failing.

A live incident is indexed under everything its root depends on: when one of those starts
failing, the incident may have found its cause. An incident that rests on alerts saying its
root receives no requests is indexed under the root's callers and what they run on too.
Groups (a Service, cluster DNS) fail when all their members do, and a member fails with what it
depends on, so a group that some incident's root reaches is indexed under its members and their
hard dependencies too: their failure re-checks the group's watchers. Indexing costs the reach
of each root once, not a scan of every incident on every change.
"""

from __future__ import annotations

from router.core.reach import Reach


class DependencyWatch:
    def __init__(self, reach: Reach) -> None:
        self.reach = reach
        self._watchers: dict[str, dict[str, None]] = {}  # entity -> live incidents whose root reaches it
        # entity -> groups it can tip into failing (a member, or what a member depends on).
        self._group_triggers: dict[str, set[str]] = {}
        self._indexed_groups: set[str] = set()
        self._starved: set[str] = set()  # incidents watched in the starvation direction too

    def use(self, reach: Reach) -> None:
        """A refreshed graph: unwatch every incident first, then watch them again."""
        self.reach = reach
        self._group_triggers.clear()
        self._indexed_groups.clear()

    def watch(self, incident_id: str, root: str, *, starved: bool = False) -> None:
        if starved:
            self._starved.add(incident_id)
        for dependency in self._watched(incident_id, root):
            self._watchers.setdefault(dependency, {})[incident_id] = None
            if dependency not in self._indexed_groups and self.reach.has_members(dependency):
                self._index_group(dependency)

    def unwatch(self, incident_id: str, root: str) -> None:
        for dependency in self._watched(incident_id, root):
            watchers = self._watchers.get(dependency)
            if watchers is not None:
                watchers.pop(incident_id, None)

    def _watched(self, incident_id: str, root: str) -> list[str]:
        if incident_id not in self._starved:
            return list(self.reach.of(root))
        return list(dict.fromkeys([*self.reach.of(root), *self.reach.starved(root)]))

    def watchers(self, entity: str) -> dict[str, None]:
        """Live incidents whose root depends on `entity` (ordered by when they were watched)."""
        return self._watchers.get(entity, {})

    def groups_tipped_by(self, entity: str) -> list[str]:
        """Watched groups whose failure `entity` failing may complete, sorted."""
        return sorted(self._group_triggers.get(entity, ()))

    def _index_group(self, group: str) -> None:
        self._indexed_groups.add(group)
        for member in self.reach.members(group):
            self._group_triggers.setdefault(member, set()).add(group)
            for dependency in self.reach.hard(member):
                self._group_triggers.setdefault(dependency, set()).add(group)
