"""Alerts that leave their Alertmanager group without a resolve.

Each webhook of a group is a snapshot of the whole group, not a delta: every firing alert Alertmanager
would notify, and those resolved since its last flush. Muted alerts (inhibited, silenced) are absent,
and an alert muted after it was notified never gets a resolved notification (the MuteStage drops it,
resolved or not; shared/reference/alertmanager.md). A warning muted by a critical alert of the same
name and namespace that heals meanwhile would stay firing here for ever, and page as "still firing".

So an alert that was in a group's snapshot and is absent from a later complete one (no
`truncatedAlerts`) has left the group: Alertmanager no longer notifies it, muted or resolved while
muted. Either way it says nothing more, and it is taken as ended. If it was only muted it comes back,
firing, once the mute ends, and is judged as an alert again. HA replicas flush the same group up to a
peer timeout (15 s per peer) apart, and one may not yet have an alert the other sent: an alert seen in
any delivery within `departed_after` has not left. Deliveries without a group key (hand-made ones)
and the router's own reconciliation (a difference, not a snapshot) say nothing about departures.

A sender that posts only what changed (a hand-made feed, a relay), or each alert on its own as
it is re-sent, would make every alert "leave" at the next delivery. So absences count only from a
sender (receiver and external URL) that has shown it sends snapshots: a delivery that brought an
alert new to its group together with one of the group's previous delivery, still firing (the
first flush after an alert joins a group: the whole group, old and new). A feed of changes never
re-sends an alert beside a new one, nor does a feed of single alerts. Until a sender is known, a
group's alerts are kept as firing until resolved, so that one muted before the sender showed
itself is still found to have left at its group's next delivery.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from router.core.model import WebhookPayload

# The synthetic delivery the service makes from Alertmanager's API after a restart: a difference
# against what the engine believes, under this receiver and group key (integrations/alertmanager.py).
RECONCILE_GROUP_KEY = "alert-router/reconcile"


class GroupSnapshots:
    """Which alerts each group's last snapshot held firing, and which have left since."""

    def __init__(self, departed_after: timedelta) -> None:
        self.departed_after = departed_after
        # (sender, group key) -> fingerprints firing in its last delivery, and when it came
        self._firing: dict[tuple[str, str], tuple[frozenset[str], datetime]] = {}
        self._snapshot_senders: set[str] = set()

    def left(self, payload: WebhookPayload, now: datetime) -> Iterable[str]:
        """Fingerprints that were firing in this group's last delivery and are absent from this
        one (neither firing nor resolved), in a stable order."""
        if not payload.groupKey or payload.groupKey == RECONCILE_GROUP_KEY:
            return ()
        sender = f"{payload.receiver} {payload.externalURL}"
        key = (sender, payload.groupKey)
        firing = {alert.fingerprint for alert in payload.alerts if alert.status == "firing"}
        before, last = self._firing.get(key, (frozenset(), now))
        if firing & before and firing - before and now - last >= self.departed_after:
            self._snapshot_senders.add(sender)  # the old with the new: a snapshot
        resolved = {alert.fingerprint for alert in payload.alerts if alert.status == "resolved"}
        if payload.truncatedAlerts or sender not in self._snapshot_senders:
            # Not known to be the whole group (cut short, or from a sender not yet shown to send
            # snapshots): what it shows fires, what it leaves out may still, and may be found
            # to have left once the sender is known.
            self._keep(key, (before | firing) - resolved, now)
            return ()
        self._keep(key, firing, now)
        present = firing | resolved
        return sorted(before - present)

    def _keep(self, key: tuple[str, str], firing: frozenset[str] | set[str], now: datetime) -> None:
        if firing:
            self._firing[key] = (frozenset(firing), now)
        else:
            self._firing.pop(key, None)  # the group is empty once its resolves are sent
