"""Alert instances and the intake that tells a new instance from a re-send.

Alertmanager delivers snapshots: every group re-send and every HA replica repeats each alert. An
alert *instance* is (fingerprint, startsAt); the intake keeps the latest instance per
fingerprint, remembers resolved instances so that a stale "firing" re-send never reopens one,
and when each fingerprint's instances fired (flapping is one alert firing again and again). It
decides what an incoming alert is; the engine decides what that means for incidents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ground.times import parse_time
from router.core.events import AlertRef
from router.core.model import AlertPayload
from rules.ruleset import Classification


@dataclass(slots=True)
class AlertState:
    fingerprint: str
    starts_at: str
    labels: dict[str, str]
    alertname: str  # the `alertname` label, read once: every event and symptom names it
    annotations: dict[str, str]
    generator_url: str
    cls: Classification
    entity: str
    first_seen: datetime
    last_seen: datetime
    firing: bool = True
    resolved_at: datetime | None = None
    ends_at: str | None = None
    incident: str | None = None
    path: tuple[str, ...] = ()
    judged_at: datetime | None = None  # when it was last judged afresh (detached from a root)
    # It left its Alertmanager group without a resolve (router/core/groups.py): taken as ended,
    # and a firing re-send of it later (its mute ended) is the alert back, not a stale re-send.
    departed: bool = False
    # Alertmanager's inhibit rules mute it (router/core/inhibition.py): nothing more will be said
    # of it, not even its resolve. It stays what it was; it is not judged afresh on its own.
    muted: bool = False
    # Attached to a cause that has shown (a firing root alert that is not itself held): its hold
    # is served, and it may page once it and its cause have each outlived their grace.
    explained_due: datetime | None = None

    @property
    def hold_due(self) -> datetime:
        """When its hold for a cause ends (its arrival, for alerts that are not held)."""
        return (self.judged_at or self.first_seen) + self.cls.hold

    @property
    def due(self) -> datetime:
        """When this alert may escalate its incident: after its grace (time to heal) and its
        hold (time for a cause to show), or once its cause has shown. Never later than it would
        have paged on its own."""
        own = (self.judged_at or self.first_seen) + max(self.cls.grace, self.cls.hold)
        return own if self.explained_due is None else min(own, self.explained_due)

    def ref(self) -> AlertRef:
        return AlertRef(self.fingerprint, self.alertname, self.labels)


class Seen(StrEnum):
    """What an incoming alert is, next to what the intake already knows."""

    NEW = "new"  # a new instance: classify it and attribute it
    RESENT = "resent"  # the firing instance again (re-send, HA replica, new startsAt after a restart)
    STALE = "stale"  # "firing" for an instance already seen resolved
    RESOLVED = "resolved"  # the firing instance ended
    REPEAT = "repeat"  # a resolve already known, or of an instance never seen firing


class AlertIntake:
    FORGET_FLOOR = 50_000  # resolved instances kept before old ones are dropped

    def __init__(self, forget_resolved_after: timedelta) -> None:
        self.latest: dict[str, AlertState] = {}  # fingerprint -> latest instance
        self.fired_at: dict[str, list[datetime]] = {}  # fingerprint -> when its instances fired
        self._resolved: dict[tuple[str, str], datetime] = {}
        self._forget_after = forget_resolved_after
        self._forget_threshold = self.FORGET_FLOOR

    def see(self, payload: AlertPayload, now: datetime) -> tuple[Seen, AlertState | None]:
        """Judge one alert of a delivery. A re-sent instance is refreshed here (last seen, its
        startsAt as Prometheus now reports it); a resolved one gets its end time."""
        fp = payload.fingerprint
        current = self.latest.get(fp)
        same_instance = current is not None and current.starts_at == payload.startsAt
        if payload.status == "firing":
            if current is not None and current.firing:
                # A re-send, or Prometheus restarted and reported a new startsAt: same alert.
                current.last_seen = now
                current.starts_at = payload.startsAt
                return Seen.RESENT, current
            if current is not None and current.departed and same_instance:
                return Seen.NEW, None  # unmuted: it fires again
            if same_instance or (fp, payload.startsAt) in self._resolved:
                return Seen.STALE, current  # firing re-sent after we saw it resolve
            return Seen.NEW, None
        if current is not None and current.firing and (same_instance or parse_time(payload.endsAt)):
            # (A resolve under a startsAt we did not see, after a Prometheus restart, ends ours.)
            current.ends_at = payload.endsAt
            return Seen.RESOLVED, current
        self._resolved.setdefault((fp, payload.startsAt), now)
        return Seen.REPEAT, current

    def fired(self, alert: AlertState, now: datetime) -> None:
        self.latest[alert.fingerprint] = alert
        self.fired_at.setdefault(alert.fingerprint, []).append(now)

    def resolved(self, alert: AlertState, now: datetime) -> None:
        alert.firing = False
        alert.resolved_at = now
        self._resolved[(alert.fingerprint, alert.starts_at)] = now

    def unseen_since(self, fingerprint: str, now: datetime, unseen_for: timedelta) -> AlertState | None:
        """The firing alert under this fingerprint if no delivery showed it within `unseen_for`
        (one that left its group: an HA replica's snapshot may lag the other's)."""
        alert = self.latest.get(fingerprint)
        if alert is None or not alert.firing or alert.cls.heartbeat or now - alert.last_seen < unseen_for:
            return None
        return alert

    def recent_fires(self, fingerprint: str, since: datetime) -> list[datetime]:
        """When this alert's instances fired since `since` (older ones are dropped for good)."""
        history = self.fired_at.get(fingerprint, [])
        while history and history[0] < since:
            history.pop(0)
        return history

    def forget_old(self, now: datetime) -> None:
        """Bound memory: drop resolved instances long past."""
        if len(self._resolved) > self._forget_threshold:
            horizon = now - self._forget_after
            kept = {k: v for k, v in self._resolved.items() if v >= horizon}
            self._resolved = kept
            # Amortised: no rebuild per tick.
            self._forget_threshold = max(self.FORGET_FLOOR, 2 * len(kept))
