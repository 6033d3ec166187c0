"""Which entities are failing because of alerts, and which groups fail with their members.

An entity fails while it has a firing alert whose rule propagates. A group (cluster DNS, a
Service, the apiserver) fails when every member does, a member failing by its own alert or by a
hard dependency's. The index also remembers when each entity stopped failing, for symptoms that
lag behind their cause (a burn rate over hours may first fire after the cause healed).
It counts, too, the entities whose pods' scrapes fail (rule field `bypasses_dns`), asked for
every alert attribution makes, and those with a failure foreshadowed (rule field `foreshadows`:
a disk predicted to fill), asked when a held alert may page. Failures that rest on incidents
(an inferred root) are the engine's to add: this index knows alerts only.
"""

from __future__ import annotations

from datetime import datetime

from router.core.alerts import AlertState
from router.core.reach import Reach


class FailureIndex:
    def __init__(self, reach: Reach) -> None:
        self.reach = reach
        self.failing: dict[str, int] = {}  # entity -> number of firing propagating alerts (> 0)
        self.alerting: dict[str, dict[str, None]] = {}  # entity -> its firing fingerprints
        # entity -> (incident, when) its last propagating alert resolved.
        self.stopped: dict[str, tuple[str, datetime]] = {}
        # entity -> firing alerts that show its pods' scrapes failing (rule field bypasses_dns)
        self.scrapes_failing: dict[str, int] = {}
        # entity -> firing alerts that warn of a failure to come (rule field foreshadows)
        self.foreshadowing: dict[str, int] = {}
        self._group_cache: dict[str, bool] = {}

    def use(self, reach: Reach) -> None:
        """A refreshed graph: group membership is the new graph's."""
        self.reach = reach
        self._group_cache.clear()

    def alert_fired(self, alert: AlertState) -> bool:
        """Count a firing alert; True when its entity starts failing with it."""
        self.alerting.setdefault(alert.entity, {})[alert.fingerprint] = None
        if alert.cls.bypasses_dns:
            _count(self.scrapes_failing, alert.entity, 1)
        if alert.cls.foreshadows:
            _count(self.foreshadowing, alert.entity, 1)
        if not alert.cls.propagates:
            return False
        count = self.failing.get(alert.entity, 0)
        self.failing[alert.entity] = count + 1
        if count == 0:
            self._group_cache.clear()
        return count == 0

    def alert_resolved(self, alert: AlertState, now: datetime) -> None:
        firing_here = self.alerting.get(alert.entity)
        if firing_here is not None:
            firing_here.pop(alert.fingerprint, None)
            if not firing_here:
                del self.alerting[alert.entity]
        if alert.cls.bypasses_dns:
            _count(self.scrapes_failing, alert.entity, -1)
        if alert.cls.foreshadows:
            _count(self.foreshadowing, alert.entity, -1)
        if not alert.cls.propagates:
            return
        count = self.failing.get(alert.entity, 0) - 1
        if count <= 0:
            self.failing.pop(alert.entity, None)
            if alert.incident is not None:
                self.stopped[alert.entity] = (alert.incident, now)
        else:
            self.failing[alert.entity] = count
        self._group_cache.clear()

    def invalidate(self) -> None:
        """Something that decides group failure changed outside the alerts."""
        self._group_cache.clear()

    def group_failing(self, group: str) -> bool:
        cached = self._group_cache.get(group)
        if cached is not None:
            return cached
        members = self.reach.members(group)
        result = bool(members) and all(self.member_failing(m) for m in members)
        self._group_cache[group] = result
        return result

    def member_failing(self, member: str) -> bool:
        if self.failing.get(member):
            return True
        return not self.failing.keys().isdisjoint(self.reach.hard(member))

    def foreshadowed(self, entity: str) -> bool:
        """Does something the entity depends on warn of a failure to come?"""
        return bool(self.foreshadowing) and not self.foreshadowing.keys().isdisjoint(self.reach.of(entity))


def _count(counter: dict[str, int], entity: str, delta: int) -> None:
    left = counter.get(entity, 0) + delta
    if left > 0:
        counter[entity] = left
    else:
        counter.pop(entity, None)
