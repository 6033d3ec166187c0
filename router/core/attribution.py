"""Attribution: which failing incident explains an alert on an entity, and by which path.

An alert on entity E is a symptom when something E depends on is failing (`router.core.reach`:
hard edges, and a group's members only from E itself). Its explanation is that failing
entity's incident, with the dependency chain from E to the incident's root. Among several, one
that rests on an alert beats one that rests on an unconfirmed inference, then the deepest root
wins, then the shortest path. Cluster DNS and the control plane are cluster functions: when all
their members fail they are the root, and a member explains them only through what makes the
member fail. An application's Service is never a root when its pods fail: the workload is.

Attribution reads the failure index and the incident book and changes neither. When the answer
is a cluster function that has no incident yet (every CoreDNS pod failing, for different
reasons), it says so (`OpenGroup`): the engine opens that incident and asks again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from router.core.alerts import AlertState
from router.core.failures import FailureIndex
from router.core.lifecycle import LIVE_STATES, Incident, IncidentBook, State
from router.core.reach import Reach

# Groups that are a cluster function of their own: when all their members fail, the group is
# the root (cluster DNS, not the CoreDNS Deployment).
INFRASTRUCTURE_GROUPS = frozenset({"dns", "apiserver", "etcd", "scheduler", "controller-manager"})


def is_hypothesis(incident: Incident) -> bool:
    """An inferred root nobody was told about and no alert of its own confirms."""
    return incident.inferred and not incident.has_root_alert and incident.state == State.OPEN


def rests_on_starvation(incident: Incident, alerts: Mapping[str, AlertState]) -> bool:
    """An incident whose root alerts all say its root receives no requests: a failing caller
    explains it, not a failing dependency, and it says nothing about where its root runs."""
    roots = [alerts[fp] for fp in incident.root_alerts if fp in alerts]
    return bool(roots) and all(a.cls.explained_by == "dependents" for a in roots)


@dataclass(frozen=True, slots=True)
class OpenGroup:
    """The explanation is a cluster function whose members all fail and which has no incident
    yet: open it (an inferred root), then ask again."""

    group: str


class _OpenGroup(Exception):
    def __init__(self, group: str) -> None:
        self.group = group


class Attribution:
    def __init__(
        self, reach: Reach, failures: FailureIndex, book: IncidentBook, alerts: Mapping[str, AlertState]
    ) -> None:
        self.reach = reach
        self.failures = failures
        self.book = book
        self.alerts = alerts

    def use(self, reach: Reach) -> None:
        self.reach = reach

    def explanation(
        self, entity: str, *, starved: bool = False
    ) -> tuple[Incident, tuple[str, ...]] | OpenGroup | None:
        """The incident that explains a failure of `entity` and the path to its root; or the
        cluster function to open first; or None: nothing `entity` depends on is failing. With
        `starved`, what explains `entity` going without requests (a failing caller)."""
        try:
            return self._explain(entity, starved=starved)
        except _OpenGroup as opening:
            return OpenGroup(opening.group)

    def is_failing(self, entity: str) -> bool:
        if entity in self.failures.failing:  # holds only positive counts
            return True
        incident_id = self.book.by_root.get(entity)
        if incident_id is not None:
            incident = self.book[incident_id]
            if incident.inferred and incident.state in (State.OPEN, State.PAGED):
                return True
        return self.reach.has_members(entity) and self.failures.group_failing(entity)

    def is_failing_real(self, entity: str) -> bool:
        """Failing for a reason that does not rest on an unconfirmed inference."""
        if entity in self.failures.failing:
            return True
        incident_id = self.book.by_root.get(entity)
        if incident_id is not None:
            incident = self.book[incident_id]
            if incident.inferred and incident.state in (State.OPEN, State.PAGED):
                return not is_hypothesis(incident)
        return self.reach.has_members(entity) and self.failures.group_failing(entity)

    def real_explanation(self, entity: str, hypothesis: Incident) -> str | None:
        """A failing dependency of `entity`, other than `hypothesis`, that does not rest on an
        unconfirmed inference: the explanation that makes `entity` no evidence for it."""
        keys = self.reach.of(entity).keys()
        for dependency in sorted(keys & self.failures.failing.keys()):  # alerting: the common case, in C
            if not self._explains_not(entity, dependency):
                return dependency
        for dependency in sorted((keys & self.book.by_root.keys()) | (keys & self.reach.group_entities)):
            if (
                dependency != hypothesis.root
                and self.is_failing_real(dependency)
                and not self._explains_not(entity, dependency)
            ):
                return dependency
        return None

    def _explains_not(self, entity: str, dependency: str) -> bool:
        """A failing dependency that is no explanation all the same: cluster DNS under a rollout
        gone bad (`_dns_past_a_rollout`)."""
        return self.reach.kind(dependency) == "dns" and self._dns_past_a_rollout(
            self.reach.path(entity, dependency)
        )

    def _explain(self, entity: str, *, starved: bool = False) -> tuple[Incident, tuple[str, ...]] | None:
        """The incident that explains a failure of `entity`, and the path to its root."""
        members: tuple[str, ...] | list[str] = ()
        if starved:
            reach = self.reach.starved(entity)
        elif self.is_infrastructure_group(entity) and self.failures.group_failing(entity):
            # Every member fails. For one reason they share (the zone that held every CoreDNS
            # pod), that reason explains the group; else the group itself is down (every
            # CoreDNS pod crash-looping) and stands as the root: one member does not explain it.
            shared = self._one_incident(entity, self._member_tails(entity))
            if shared is not None and shared[0].root != entity:
                return shared
            reach = self.reach.hard(entity)
        else:
            reach = self.reach.of(entity)
            if self.is_infrastructure_group(entity):
                # A member explains the group's trouble only through what makes the member fail
                # (the node it ran on); a member failing by itself is the group failing.
                members = self.reach.members(entity)
        # Set operations on the dictionaries' keys run in C: a Deployment reaches hundreds of
        # entities, and few of them fail.
        # An application whose pods' scrapes fail (no name lookup on that path) fails by its
        # pods or what they run on: cluster DNS explains none of its trouble.
        no_dns = not starved and self.bypasses_dns(entity)
        keys = reach.keys()
        failing = keys & self.failures.failing.keys()
        for candidate in (keys & self.book.by_root.keys()) | (keys & self.reach.group_entities):
            if candidate not in failing and self.is_failing(candidate):
                failing.add(candidate)
        if not failing:
            return None
        # Failing dependencies grouped by the incident their failure belongs to (often one: a
        # zone's pods, nodes and agents all lead to the zone), each with the length of its path
        # (paths are built only for the one chosen: most alerts have several candidates).
        options: dict[str, tuple[Incident, list[tuple[str, tuple[str, ...]]]]] = {}
        for dependency in sorted(failing):
            found = self.incident_of_failing(dependency)
            if found is None:
                continue
            incident, tail = found
            if incident.root == entity or incident.root in members:
                continue  # a group of which we are a member: not an explanation of ourselves
            options.setdefault(incident.id, (incident, []))[1].append((dependency, tail))
        best: tuple[tuple[bool, bool, int, int, int, str], Incident, tuple[str, ...]] | None = None
        for incident, candidates in options.values():
            # For one root, the shortest path explains best (pod -> node, not pod -> CNI agent
            # pod -> node). An incident that rests on an alert beats one that rests on an
            # unconfirmed inference (a replica's dead node, not the healthy node inferred from
            # replicas elsewhere); then the deepest root wins (farthest down what we depend on).
            path = self._shortest_path(entity, candidates, starved, no_dns)
            if path is None:
                continue  # every way there runs in a cycle through ourselves (or through DNS)
            if len(options) == 1:  # the common case: every failure beneath leads to one incident
                return incident, path
            hypothetical = is_hypothesis(incident)
            depth = (
                self.reach.depth(entity, incident.root, starved=starved)
                if incident.root in reach
                else len(path)
            )
            # What the entity runs on (its workload, pods, nodes, volumes) explains it before
            # what it talks to (a service it calls, cluster DNS, the apiserver): a service whose
            # own pods crash-loop fails whatever its callees do, and the kubelet of a dead node
            # is unreachable whatever etcd does. Starvation travels over calls by nature.
            talks = not starved and self.reach.indirect(path)
            score = (hypothetical, talks, -depth, len(path), -len(incident.alerts), incident.id)
            if best is None or score < best[0]:
                best = (score, incident, path)
        if best is None:
            return None
        return best[1], best[2]

    def _shortest_path(
        self, entity: str, candidates: list[tuple[str, tuple[str, ...]]], starved: bool, no_dns: bool = False
    ) -> tuple[str, ...] | None:
        """The shortest of the paths from `entity` through a failing dependency and on along its
        failure's own path (the first listed among equals), skipping any that runs through
        `entity` again: a cycle through ourselves explains nothing; with `no_dns`, any that runs
        through cluster DNS. Lengths are measured only when there is a choice (most failures
        lead one way)."""
        if len(candidates) > 1:
            candidates = sorted(
                candidates, key=lambda c: self.reach.depth(entity, c[0], starved=starved) + len(c[1])
            )
        for dependency, tail in candidates:
            path = self.reach.path(entity, dependency, starved=starved) + tail[1:]
            if no_dns and any(self.reach.kind(step) == "dns" for step in path):
                continue
            if self._dns_past_a_rollout(path):
                continue
            if len(tail) == 1 or len(set(path)) == len(path):
                return path
        return None

    def _dns_past_a_rollout(self, path: tuple[str, ...]) -> bool:
        """Whether the path reaches cluster DNS through a pod of a Deployment whose rollout went
        bad (`Rollout.gone_bad`): the old pods use cluster DNS as well and serve, so it does
        not explain the new ones failing, nor the Deployment (the rollout does)."""
        for before, step in pairwise(path):
            if self.reach.kind(step) == "dns" and (rollout := self.reach.rollout(before)) is not None:
                failing = self.failures.failing
                return rollout.gone_bad(pod for pod in rollout.pods() if pod in failing)
        return False

    def bypasses_dns(self, entity: str) -> bool:
        """Whether an alert on the entity, or on a Service it is an endpoint of, shows a failure
        no name lookup is part of (its pods' scrapes failing: Prometheus scrapes pod IPs)."""
        failing = self.failures.scrapes_failing
        if not failing:
            return False
        return entity in failing or any(group in failing for group in self.reach.groups_of(entity))

    def incident_of_failing(self, entity: str) -> tuple[Incident, tuple[str, ...]] | None:
        """For a failing entity: the live incident its failure belongs to, and the path from it."""
        for fp in self.failures.alerting.get(entity, ()):
            alert = self.alerts[fp]
            if not alert.cls.propagates:
                continue
            incident = self.book.get(alert.incident or "")
            if incident is not None and incident.state in LIVE_STATES:
                return incident, alert.path or (entity,)
        incident_id = self.book.by_root.get(entity)
        if incident_id is not None and self.book[incident_id].state in LIVE_STATES:
            return self.book[incident_id], (entity,)
        if self.failures.group_failing(entity):
            return self.group_incident(entity)
        return None

    def _member_tails(self, group: str) -> list[tuple[Incident, tuple[str, ...]]]:
        """For each member of a group in turn, until one is unexplained: the incident its
        failure belongs to, and the path from the member to that incident's root."""
        tails: list[tuple[Incident, tuple[str, ...]]] = []
        for member in self.reach.members(group):
            explained = self.incident_of_failing(member) if self.failures.failing.get(member) else None
            if explained is None:
                explained = self._explain(member)
            if explained is None:
                break
            tails.append((explained[0], (member, *explained[1][1:]) if explained[1] else (member,)))
        return tails

    def _one_incident(
        self, group: str, tails: list[tuple[Incident, tuple[str, ...]]]
    ) -> tuple[Incident, tuple[str, ...]] | None:
        """The one incident every member's failure belongs to (`tails`: `_member_tails`),
        with the path from the group through the first member."""
        if tails and len({t[0].id for t in tails}) == 1 and len(tails) == len(self.reach.members(group)):
            incident, tail = tails[0]
            return incident, (group, *tail)
        return None

    def group_incident(self, group: str) -> tuple[Incident, tuple[str, ...]] | None:
        """All members of a group fail: one incident explains them all, or the group is a root."""
        tails = self._member_tails(group)
        shared = self._one_incident(group, tails)
        if shared is not None:
            return shared
        if not self.is_infrastructure_group(group):
            # An application's Service is only its pods' front door: when they all fail, what
            # makes them fail (their workload, their nodes) is the root, never the Service.
            if not tails:
                return None
            incident, tail = tails[0]
            return incident, (group, *tail)
        # Members fail for different reasons, or on their own: the group itself is the root.
        raise _OpenGroup(group)

    def is_infrastructure_group(self, entity: str) -> bool:
        """Cluster DNS and the control plane: groups that stand as a root when all their
        members fail. An application's Service does not: its workload or nodes do."""
        return self.reach.has_members(entity) and self.reach.kind(entity) in INFRASTRUCTURE_GROUPS

    def failing_group_of(self, entity: str) -> Incident | None:
        """The incident of a failing infrastructure group this entity is a member of (cluster
        DNS down, all its CoreDNS pods crash-looping): a member's alert tells why the group
        fails. A group that merely has an alert that does not propagate (TargetDown) does not
        count, nor an application's Service (its pods' own failures are a better root)."""
        for group in self.reach.groups_of(entity):
            if not self.is_infrastructure_group(group):
                continue
            incident_id = self.book.by_root.get(group)
            if incident_id is None or not self.is_failing(group):
                continue
            if self.book[incident_id].state in (State.OPEN, State.PAGED):
                return self.book[incident_id]
        return None

    def lagging_explanation(
        self, alert: AlertState, now: datetime
    ) -> tuple[Incident, tuple[str, ...]] | None:
        """An alert that lags behind its cause (a burn rate over hours) may first fire after the
        cause healed: a dependency that stopped failing within the alert's lag explains it."""
        best: tuple[datetime, str] | None = None
        for dependency in self.reach.of(alert.entity):
            stopped = self.failures.stopped.get(dependency)
            lags = stopped is not None and now - stopped[1] <= alert.cls.outlive_root
            if lags and (best is None or (stopped[1], dependency) > best):  # type: ignore[index]
                best = (stopped[1], dependency)  # type: ignore[index]
        if best is None:
            return None
        dependency = best[1]
        incident = self.book.survivor(self.book[self.failures.stopped[dependency][0]])
        return incident, self.reach.path(alert.entity, dependency)
