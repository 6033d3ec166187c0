"""The Watchdog: heartbeat alerts never page, their absence does.

Prometheus fires a Watchdog alert for ever; Alertmanager re-sends it every repeat interval. When
it resolves or is not re-sent for `heartbeat_timeout`, the alerting pipeline (Prometheus,
Alertmanager, or the path to the router) is broken, and that is paged on the cluster's
`pipeline/<cluster>/alerting-pipeline` entity. This keeps when each heartbeat was last seen; the
engine sets the timer and opens or closes the pipeline incident.
"""

from __future__ import annotations

from datetime import datetime

from ground.times import format_time
from topology import entities


class Heartbeats:
    def __init__(self) -> None:
        self.last_seen: dict[str, datetime] = {}  # fingerprint -> last seen
        self.checking = True  # off at the end of a recording: silence there means nothing

    def seen(self, fingerprint: str, now: datetime) -> None:
        self.last_seen[fingerprint] = now

    def still_missing(self, fingerprint: str, seen: str, default: datetime) -> bool:
        """A timer set when the heartbeat was seen at `seen` (as the timer recorded it) ran
        out: true unless it came again since."""
        return self.checking and format_time(self.last_seen.get(fingerprint, default)) == seen

    @staticmethod
    def pipeline_entity(labels: dict[str, str]) -> str:
        return entities.singleton("pipeline", entities.cluster_of(labels))
