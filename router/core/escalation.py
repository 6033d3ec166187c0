"""When an incident may escalate, and how loud.

An incident pages (urgency `page`) once one of its firing alerts of page urgency is due, or
posts a notice (`notice`); `quiet` alerts (info/none) never bring an escalation forward, so an
old quiet incident does not hand its age to a new alert. An alert is due after its grace (time
to heal) and its rule's hold (time for its cause to show; served once it is attached to a
cause that has shown, whose own grace it then waits for). An inferred root waits for the
inference's own grace, for some of its evidence to be past its hold (what runs on a node and
alerts with its `for:` gives the node's own alerts a group interval more), and for its zone's
picture to settle; it pages as soon as an incident merged into it would have paged on its own.
An inferred node's own alert (a NIC flapping) is no evidence of what runs there: it makes the
node page on its own due, as it would have alone, so a two-minute blip stays quiet.
A node down by its own alert also waits for its zone's picture while other nodes of the zone
are down (a dead zone's nodes alert a group interval apart), at most `zone_settle` past its own
due. A held alert (an error rate) whose entity depends on something that warns of a failure to
come (a disk predicted to fill: rule field `foreshadows`) waits `foreshadow_wait` past its due
for that failure, which fires with its own long `for:`; so does a Service that is only slow,
with nothing failing beside it (`slow_alone_wait`): a node's filling disk shows so first.

The policy reads incidents and alerts and returns a verdict: how loud, and when to look again.
Applying it (timers, pages, notices) is the engine's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from router.core.alerts import AlertState
from router.core.inference import NODE_LEVEL_KINDS
from router.core.lifecycle import URGENCY_RANK, Incident
from topology import entities


@dataclass(slots=True)
class Verdict:
    urgency: str = "quiet"
    wake: list[datetime] = field(default_factory=list)  # look again at these times, in order
    # A page-urgency alert was due but resolved: the incident's page waits for the next one.
    page_due: datetime | None = None
    page_due_lapsed: bool = False


def root_firing(incident: Incident) -> bool:
    if incident.inferred and not incident.has_root_alert:
        return incident.firing > 0  # an inferred root fires while its evidence does
    return incident.firing_roots > 0


class EscalationPolicy:
    def __init__(
        self,
        alerts: Mapping[str, AlertState],
        zone_settles: Callable[[Incident], datetime | None],
        zone_nodes_settle: Callable[[str], datetime | None],
        zone_settle: timedelta,
        foreshadowed: Callable[[str], bool],
        foreshadow_wait: timedelta,
        co_located: Callable[[Incident], bool],
        slow_alone_wait: timedelta,
        change_explains: Callable[[Incident], bool],
    ) -> None:
        self.alerts = alerts
        self.zone_settles = zone_settles
        self.zone_nodes_settle = zone_nodes_settle
        self.zone_settle = zone_settle
        self.foreshadowed = foreshadowed
        self.foreshadow_wait = foreshadow_wait
        self.co_located = co_located
        self.slow_alone_wait = slow_alone_wait
        self.change_explains = change_explains

    def firing_urgency(self, incident: Incident) -> str:
        """What still fires decides whether to wake someone, not what already resolved."""
        if incident.root_urgency == "page" and incident.firing_roots:
            return "page"
        best = "quiet"
        for fp in incident.alerts:
            alert = self.alerts[fp]
            if alert.firing and URGENCY_RANK.get(alert.cls.urgency, 2) > URGENCY_RANK[best]:
                best = alert.cls.urgency
                if best == "page":
                    break
        return best

    def due(self, incident: Incident, now: datetime) -> Verdict:
        """The loudest urgency among firing alerts whose time has come (quiet if none)."""
        verdict = Verdict()
        if incident.inferred:
            # The inference is evidence too: a workload inferred from its failing pods pages on
            # the inference's grace even when its own (slower) alert has joined it since.
            self._inferred_due(incident, now, verdict)
            if verdict.urgency != "quiet" or not incident.has_root_alert:
                return verdict
        page_due = incident.page_due is not None and incident.page_due <= now
        notice_due = incident.notice_due is not None and incident.notice_due <= now
        if not (page_due or notice_due):
            return verdict
        if page_due and (settles := self._zone_settles_for(incident)) is not None and now < settles:
            verdict.wake.append(settles)
            return verdict
        if page_due and (waits := self._foreshadowed_until(incident)) is not None and now < waits:
            verdict.wake.append(waits)
            return verdict
        best = "quiet"
        for fp in incident.alerts:
            alert = self.alerts[fp]
            if not alert.firing or alert.due > now:
                continue
            if alert.cls.urgency == "page":
                verdict.urgency = "page"
                return verdict
            if alert.cls.urgency == "notice":
                best = "notice"
        verdict.urgency = best
        if best == "quiet" and page_due:
            later = [self.alerts[fp].due for fp in incident.alerts if self._pending_page(fp, now)]
            verdict.page_due_lapsed = True
            verdict.page_due = min(later) if later else None
            if verdict.page_due is not None:
                verdict.wake.append(verdict.page_due)
        return verdict

    def _inferred_due(self, incident: Incident, now: datetime, verdict: Verdict) -> None:
        if incident.merged_due is not None and incident.merged_due <= now:
            verdict.urgency = self.firing_urgency(incident)
            return
        if incident.not_before is not None and now < incident.not_before:
            verdict.wake.append(incident.not_before)
            return
        settles = self.zone_settles(incident)
        if settles is not None and now < settles:
            # Other nodes of its zone are failing too: the zone may be the root, and its nodes'
            # alerts arrive up to a group interval apart. Let that picture settle first.
            verdict.wake.append(settles)
            return
        # Cluster DNS fails every workload at once, and its evidence is gathered from everywhere:
        # one pod ready to page (crash-looping since before the others failed) may be another
        # fault's. It pages once evidence on two entities is ready.
        needed = 2 if entities.kind_of(incident.root) == "dns" else 1
        ready_now: set[str] = set()
        waiting: dict[str, datetime] = {}  # entity ("" when one is enough) -> when it is ready
        for fp in incident.alerts:
            alert = self.alerts[fp]
            if not alert.firing or alert.cls.urgency == "quiet":
                continue
            ready = self._evidence_ready(incident, alert)
            if ready <= now:
                ready_now.add(alert.entity)
                if len(ready_now) >= needed:
                    verdict.urgency = self.firing_urgency(incident)
                    return
                continue
            key = alert.entity if needed > 1 else ""
            if key not in waiting or ready < waiting[key]:
                waiting[key] = ready
        later = sorted(at for entity, at in waiting.items() if entity not in ready_now)
        if len(later) >= needed - len(ready_now):
            verdict.wake.append(later[needed - len(ready_now) - 1])

    def _evidence_ready(self, incident: Incident, alert: AlertState) -> datetime:
        """When an alert may make an inferred root page: past its hold. On a node inferred
        without an alert of its own, what runs on it alerts with the node's 15m `for:`
        (`KubePodNotReady`, a StatefulSet short of replicas) and arrives with the node's own
        alerts when the node is dead, a group interval apart at most in another Alertmanager
        group: those get `zone_settle` to show. Their absence is what tells the node from cluster
        DNS failing the applications on it, and their arrival on the zone's other nodes makes it
        the zone. The node's own components (its kubelet) are its own signs: no wait."""
        if alert.entity == incident.root and entities.kind_of(alert.entity) == "node":
            # The node's own alert (a NIC flapping on a node inferred from its Services' errors)
            # is not evidence of what runs there: it pages on its own grace, as it would alone.
            return alert.due
        if (
            incident.has_root_alert
            or alert.cls.hold
            or entities.kind_of(incident.root) != "node"
            or entities.kind_of(alert.entity) in NODE_LEVEL_KINDS
        ):
            return alert.hold_due
        return alert.hold_due + self.zone_settle

    def _zone_settles_for(self, incident: Incident) -> datetime | None:
        """A node down by its own alert while other nodes of its zone are too: the zone may be
        the root, and its nodes' alerts arrive up to a group interval apart. Wait for that
        picture to settle, at most `zone_settle` past the node's own due."""
        settles = self.zone_nodes_settle(incident.root)
        if settles is None or incident.page_due is None:
            return None
        return min(settles, incident.page_due + self.zone_settle)

    def _foreshadowed_until(self, incident: Incident) -> datetime | None:
        """Held alerts alone on an entity whose dependency warns of a failure to come (a node's
        disk predicted to fill while the applications on it slow down), or beside another
        application failing on a node they share (`co_located`): the failure fires with its own
        long `for:` (30m for a nearly full disk), later than the hold. Wait for it a little
        longer; an alert that is not held pages on its own time."""
        paging = [a for fp in incident.alerts if (a := self.alerts[fp]).firing and a.cls.urgency == "page"]
        if not paging or not all(a.cls.hold for a in paging):
            return None
        if self.foreshadowed(incident.root) or self.co_located(incident):
            return min(a.due for a in paging) + self.foreshadow_wait
        if self._slow_alone(incident) and not self.change_explains(incident):
            # A change just before it (a rollout beneath it, a ConfigMap edited) says why already.
            return min(a.due for a in paging) + self.slow_alone_wait
        return None

    def _slow_alone(self, incident: Incident) -> bool:
        """Whether all that fires in the incident says its root is slow (latency), not failing,
        with nothing else failing beside it: a node's resource running out shows so first."""
        return all(
            alert.entity == incident.root and alert.cls.slowness
            for fp in incident.alerts
            if (alert := self.alerts[fp]).firing and alert.cls.urgency != "quiet"
        )

    def _pending_page(self, fingerprint: str, now: datetime) -> bool:
        alert = self.alerts[fingerprint]
        return alert.firing and alert.cls.urgency == "page" and alert.due > now
