"""Prometheus' side: alert conditions become firing alerts on a 30 s evaluation grid once they have held for
their `for`, and kube-prometheus' InfoInhibitor is derived from the firing alerts."""

import math
import random
import urllib.parse
from dataclasses import dataclass

from alerts import AlertSpec
from clock import SECOND
from storm import Conflict

EVALUATION_INTERVAL = 30 * SECOND
# Alertmanager receives an alert's firing and its resolution this many ms (range) after Prometheus evaluates.
SEND_DELAY = (20, 1500)


@dataclass(eq=False)
class AlertInstance:
    """A firing alert as Alertmanager knows it."""

    labels: dict[str, str]
    annotations: dict[str, str]
    owner: str
    role: str
    entity: str | None
    fingerprint: str
    fires_at: int  # startsAt
    resolves_at: int | None  # endsAt; None: still firing when the recording ends
    arrives_at: int  # when Alertmanager learns of it
    resolve_arrives_at: int | None
    generator_url: str

    def firing_at(self, t: int) -> bool:
        """Whether Alertmanager holds the alert as firing at `t` (it resolves when its resolution arrives)."""
        return self.resolve_arrives_at is None or self.resolve_arrives_at > t


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's label-set fingerprint (FNV-1a 64 over sorted name/value, 0xff separators)."""
    digest = 14695981039346656037
    for name in sorted(labels):
        for byte in name.encode() + b"\xff" + labels[name].encode() + b"\xff":
            digest ^= byte
            digest = (digest * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


def _next_evaluation(t: int, grid_offset: int) -> int:
    """The first evaluation at or after `t`."""
    return grid_offset + math.ceil((t - grid_offset) / EVALUATION_INTERVAL) * EVALUATION_INTERVAL


def evaluate(specs: list[AlertSpec], grid_offset: int, rng: random.Random) -> list[AlertInstance]:
    """The alerts the conditions produce; a condition that ends before its `for` has elapsed never fires.

    One fault may describe the same alert twice (a DaemonSet's pods in a dead zone); two faults must not
    (their alerts would be indistinguishable), and the storm is drawn again."""
    out = []
    seen: dict[str, AlertInstance] = {}
    for spec in specs:
        fires_at = _next_evaluation(spec.start + spec.for_seconds * SECOND, grid_offset)
        resolves_at = _next_evaluation(spec.end, grid_offset) if spec.end is not None else None
        if resolves_at is not None and fires_at >= resolves_at:
            continue
        alert_fingerprint = fingerprint(spec.labels)
        if alert_fingerprint in seen:
            if seen[alert_fingerprint].owner != spec.owner:
                other = seen[alert_fingerprint].owner
                raise Conflict(f"fingerprint {alert_fingerprint} shared by {other} and {spec.owner}")
            continue
        arrives_at = fires_at + rng.randrange(*SEND_DELAY)
        resolve_arrives_at = (resolves_at + rng.randrange(*SEND_DELAY)) if resolves_at is not None else None
        prometheus_replica = rng.randrange(0, 2)
        generator_url = (
            f"http://prometheus-k8s-{prometheus_replica}:9090/graph"
            f"?g0.expr={urllib.parse.quote(spec.expr, safe='')}&g0.tab=1"
        )
        instance = AlertInstance(
            spec.labels,
            spec.annotations,
            spec.owner,
            spec.role,
            spec.entity,
            alert_fingerprint,
            fires_at,
            resolves_at,
            arrives_at,
            resolve_arrives_at,
            generator_url,
        )
        seen[alert_fingerprint] = instance
        out.append(instance)
    return out


def info_inhibitors(alerts: list[AlertInstance], cluster: str | None) -> list[AlertInstance]:
    """kube-prometheus' InfoInhibitor: per namespace, firing while an info alert fires and no warning or
    critical one does."""
    by_namespace: dict[str, list[AlertInstance]] = {}
    for alert in alerts:
        if alert.labels.get("severity") in ("info", "warning", "critical"):
            by_namespace.setdefault(alert.labels.get("namespace", ""), []).append(alert)
    out = []
    for namespace, members in sorted(by_namespace.items()):
        if not any(alert.labels["severity"] == "info" for alert in members):
            continue
        changes = sorted(
            {alert.fires_at for alert in members}
            | {alert.resolves_at for alert in members if alert.resolves_at is not None}
        )
        since: int | None = None
        for t in [*changes, None]:
            holds = t is not None and _inhibitor_condition(members, t)
            if holds and since is None:
                since = t
            elif not holds and since is not None:
                inhibitor = _inhibitor(namespace, cluster, since, t)
                if t is None or inhibitor.fires_at < t:
                    out.append(inhibitor)
                since = None
    return out


def _inhibitor_condition(members: list[AlertInstance], t: int) -> bool:
    """An info alert of the namespace fires at `t` and no warning or critical one does."""
    live = [
        alert
        for alert in members
        if alert.fires_at <= t and (alert.resolves_at is None or alert.resolves_at > t)
    ]
    return any(alert.labels["severity"] == "info" for alert in live) and not any(
        alert.labels["severity"] in ("warning", "critical") for alert in live
    )


def _inhibitor(namespace: str, cluster: str | None, since: int, until: int | None) -> AlertInstance:
    """The InfoInhibitor alert for one stretch of its condition; it fires on the next evaluation."""
    labels = {
        "alertname": "InfoInhibitor",
        "severity": "none",
        "namespace": namespace,
        "prometheus": "monitoring/k8s",
    }
    if cluster:
        labels["cluster"] = cluster
    return AlertInstance(
        labels,
        {"summary": "Info-level alert inhibition."},
        owner="noise",
        role="noise",
        entity=None,
        fingerprint=fingerprint(labels),
        fires_at=since + 30 * SECOND,
        resolves_at=until,
        arrives_at=since + 30 * SECOND + 200,
        resolve_arrives_at=(until + 300) if until else None,
        generator_url="http://prometheus-k8s-0:9090/graph?g0.expr=ALERTS&g0.tab=1",
    )
