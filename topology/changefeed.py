"""Rollouts and configuration changes seen in kube-state-metrics, as timed events (changes.py).

Discovery asks, in the same refresh and through the same Prometheus connection, for what changed
within the last `window` (instant queries only, so every refresh sees the whole window again and
nothing depends on the router having watched):

- edits, from series whose value moves when the object is edited: `kube_configmap_metadata_resource_version`,
  `kube_secret_metadata_resource_version` (KSM exports the resource version as the value) and
  `kube_deployment_metadata_generation` (a Deployment's spec changed: image, probes, command).
  `max_over_time((timestamp(m) * (changes(m[1m]) > bool 0))[window:15s])` is the last moment
  the value moved, to within a minute;
- creations, from `*_created` (the value is the creation time): a ReplicaSet (a rollout, named on
  its Deployment), a NetworkPolicy, a ConfigMap, a Secret.

Families kube-state-metrics does not export (Secrets are often turned off) just answer nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from topology.graph import Topology
from topology.promql import SeriesSource


@dataclass(frozen=True)
class Family:
    metric: str
    kind: str  # entity kind of the object
    label: str  # the label that names it
    what: str
    edited: bool  # an edit (value moves) rather than a creation (value is the time)


FAMILIES = (
    Family(
        "kube_deployment_metadata_generation",
        "deployment",
        "deployment",
        "spec changed (new generation)",
        True,
    ),
    Family(
        "kube_configmap_metadata_resource_version",
        "configmap",
        "configmap",
        "edited (new resource version)",
        True,
    ),
    Family(
        "kube_secret_metadata_resource_version", "secret", "secret", "edited (new resource version)", True
    ),
    Family("kube_replicaset_created", "replicaset", "replicaset", "rolled out: new ReplicaSet {name}", False),
    Family("kube_networkpolicy_created", "networkpolicy", "networkpolicy", "created", False),
    Family("kube_configmap_created", "configmap", "configmap", "created", False),
    Family("kube_secret_created", "secret", "secret", "created", False),
)


@dataclass
class ChangeStats:
    changes: dict[str, int] = field(default_factory=dict)  # metric -> changes recorded

    def to_dict(self) -> dict[str, object]:
        return {"changes": dict(self.changes)}


def query(family: Family, window: str, selector: str = "") -> str:
    series = f"{family.metric}{{{selector}}}"
    if family.edited:
        moved = f"(timestamp({series}) * (changes({series}[1m]) > bool 0))"
        return f"max_over_time({moved}[{window}:15s]) > 0"
    return f"{series} > (time() - {_seconds(window)})"


def _seconds(window: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    total, number = 0, ""
    for char in window:
        if char.isdigit():
            number += char
        elif char in units and number:
            total += int(number) * units[char]
            number = ""
        else:
            raise ValueError(f"change_window: {window!r} is not a duration like 1h or 30m")
    if number or not total:
        raise ValueError(f"change_window: {window!r} is not a duration like 1h or 30m")
    return total


def record(topology: Topology, family: Family, labels: dict[str, str], value: float, cluster: str) -> bool:
    namespace, name = labels.get("namespace"), labels.get(family.label)
    if not namespace or not name or value <= 0:
        return False
    entity = f"{family.kind}/{cluster}/{namespace}/{name}"
    what = family.what.format(name=name)
    if family.kind == "replicaset":
        owners = sorted(d for d in topology.dependents(entity) if d.startswith("deployment/"))
        entity = owners[0] if owners else entity
    topology.record_change(entity, datetime.fromtimestamp(value, UTC), what)
    return True


def discover_changes(
    client: SeriesSource,
    topology: Topology,
    *,
    at: float,
    window: str,
    default_cluster: str,
    selector: str = "",
    timeout: float | None = None,
    warnings: list[str] | None = None,
) -> ChangeStats:
    """Record every change of the last `window` in `topology` (SourceError propagates)."""
    _seconds(window)
    stats = ChangeStats()
    for family in FAMILIES:
        stream = client.stream_query(query(family, window, selector), at=at, timeout=timeout)
        for labels, value in stream:
            cluster = labels.get("cluster") or default_cluster
            if record(topology, family, labels, value, cluster):
                stats.changes[family.metric] = stats.changes.get(family.metric, 0) + 1
        if warnings is not None:
            warnings.extend(f"{family.metric}: {w}" for w in stream.warnings)
    return stats
