"""What the engine emits: notifications (messages to people) and decision events (the timeline).

Both are plain data with a `to_dict()` in the exact shape of `shared/contracts.md` (notifications)
and `docs/events.md` (decision events). Their `key` is deterministic, so a replay of the same
input yields the same keys and an outbox can use them as idempotency keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ground.times import format_time

Action = Literal["page", "notice", "update", "resolve"]


@dataclass(frozen=True)
class AlertRef:
    fingerprint: str
    alertname: str
    labels: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "alertname": self.alertname, "labels": self.labels}


@dataclass(frozen=True)
class SymptomRef:
    fingerprint: str
    alertname: str
    entity: str
    path: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "alertname": self.alertname,
            "entity": self.entity,
            "path": list(self.path),
        }


@dataclass(frozen=True)
class Notification:
    at: datetime
    action: Action
    incident: str
    severity: str
    root_entity: str
    root_alert: AlertRef | None
    symptoms: tuple[SymptomRef, ...]
    reason: str
    seq: int  # per-incident sequence number of this notification (0 = first)
    extra: dict[str, Any] = field(default_factory=dict)  # optional contract extensions

    @property
    def key(self) -> str:
        """Idempotency key: stable across replays of the same input."""
        return f"{self.incident}:{self.seq}:{self.action}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": format_time(self.at),
            "action": self.action,
            "incident": self.incident,
            "severity": self.severity,
            "root": {
                "entity": self.root_entity,
                "alert": self.root_alert.to_dict() if self.root_alert else None,
            },
            "symptoms": [s.to_dict() for s in self.symptoms],
            "reason": self.reason,
        }
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class Event:
    """One decision of the engine, with its reason: the raw material of the timeline."""

    at: datetime
    kind: str  # see docs/events.md: alert_fired, alert_resolved, symptom_attached, ...
    incident: str | None
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"at": format_time(self.at), "kind": self.kind, "incident": self.incident, **self.data}


@dataclass(frozen=True)
class CheckRequest:
    """The engine asks the second witness (Prometheus) a question; the answer comes back as an
    input (`Engine.witness`), so that a replay of the recorded inputs decides the same."""

    id: str
    at: datetime
    incident: str
    kind: str  # alert_firing | node_not_ready | dns_down | apiserver_down | etcd_down
    entity: str
    labels: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": format_time(self.at),
            "incident": self.incident,
            "kind": self.kind,
            "entity": self.entity,
            "labels": self.labels,
        }
