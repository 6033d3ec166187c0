"""Changes as timed events: a rollout, an edited ConfigMap, a new NetworkPolicy.

Most application incidents start with a change. The topology sources record the changes they
can see (topology/discovery.py from kube-state-metrics: Deployment generation and image
changes, new ReplicaSets, ConfigMap and Secret resource versions, NetworkPolicies created; the
topology file's `changes:` section for anything else), and the engine names the change that
most likely caused an incident (router/core/causes.py): one on the incident's first failing
entity or on something it depends on, shortly before it failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from ground.times import format_time


@dataclass(frozen=True, order=True, slots=True)
class Change:
    at: datetime
    entity: str  # the object that changed, as an entity name (configmap/<cluster>/<ns>/<name>)
    what: str  # one short phrase: "image checkout:1.2 -> checkout:1.3", "edited (resource version 7 -> 9)"

    def to_dict(self) -> dict[str, str]:
        return {"at": format_time(self.at), "entity": self.entity, "what": self.what}


class ChangeLog:
    """The changes a topology knows, in time order, without duplicates."""

    def __init__(self) -> None:
        self._changes: dict[tuple[str, datetime, str], Change] = {}

    def record(self, change: Change) -> None:
        self._changes.setdefault((change.entity, change.at, change.what), change)

    def extend(self, changes: ChangeLog) -> None:
        for change in changes:
            self.record(change)

    def __iter__(self) -> Iterator[Change]:
        return iter(sorted(self._changes.values()))

    def __len__(self) -> int:
        return len(self._changes)

    def between(self, since: datetime, until: datetime) -> list[Change]:
        """Changes with since <= at <= until, oldest first."""
        return [c for c in sorted(self._changes.values()) if since <= c.at <= until]
