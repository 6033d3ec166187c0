"""Real failure timelines as alert specs for the Alertmanager simulator (router/sim/storm.py).

Alert names, severities, annotations and the labels each alert really carries come from the
kube-prometheus rule catalogue (tests/fixtures/reference/kubernetes-alerts.json); the timings follow the
worked orderings of shared/reference/kube-state-metrics-and-alerts.md §(c): how `for:`
durations, scrape/evaluation delays and the node-lifecycle controller order a real failure.

Label facts worth knowing when reading a stream built here:
- node-exporter alerts carry `instance=<node name>` and the exporter's own `pod`/`namespace`;
- kubelet alerts carry `node` and `instance=<node IP>:10250`;
- KSM alerts carry `job="kube-state-metrics"`, `instance=<KSM pod IP>:8443` and, where the
  series has no container of its own, `container="kube-rbac-proxy-main"`;
- `TargetDown` identifies only `job/namespace/service`, never a node: one alert per job;
- every alert also carries Prometheus' external label `prometheus="monitoring/k8s"` (set by
  prometheus-operator) and `cluster` when one is given.

Pods are described as `PodRef = (namespace, pod, workload_kind, workload_name)` where
workload_kind is the top controller: Deployment, StatefulSet, DaemonSet, Job, CronJob, Node
(static pod) or "" (bare pod).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from router.sim.storm import AlertSpec, fingerprint

PodRef = tuple[str, str, str, str]

EXTERNAL_LABELS: dict[str, str] = {"prometheus": "monitoring/k8s"}
KSM_INSTANCE = "10.244.2.7:8443"  # any KSM pod IP works; gen_cluster reports the real one

# --- timings (from the moment the failure starts) -------------------------------------------
SCRAPE_DETECT = timedelta(seconds=30)  # first failed scrape seen by a rule evaluation
NODE_GRACE = timedelta(seconds=50)  # --node-monitor-grace-period (40s before Kubernetes 1.32)
TARGET_DOWN_AT = SCRAPE_DETECT + timedelta(minutes=10)  # TargetDown for: 10m
KUBELET_UNREACHABLE_AT = SCRAPE_DETECT + timedelta(minutes=15)  # KubeletInstanceUnreachable for: 15m
NODE_NOT_READY_AT = NODE_GRACE + timedelta(minutes=15)  # node, pod, DaemonSet alerts: ~15m50s
STATEFULSET_MISMATCH_AT = NODE_NOT_READY_AT + timedelta(seconds=30)  # one evaluation later: ~16m20s
CRASHLOOP_VISIBLE = timedelta(minutes=1)  # restarts until CrashLoopBackOff shows
DNS_CLIENTS_FAIL = timedelta(seconds=90)  # client readiness probes fail once DNS caches expire
RECOVERY_SCRAPE = timedelta(seconds=30)  # up-based and node alerts clear on the next scrape+eval
RECOVERY_PODS = timedelta(seconds=60)  # containers restart and pass readiness
CRASHLOOP_CLEARS = timedelta(minutes=5, seconds=30)  # max_over_time(...[5m]) keeps it 5m longer
WATCHDOG_TIMEOUT = timedelta(minutes=4)  # endsAt = last send + 4 x max(eval interval, resend delay)


@dataclass(frozen=True)
class AlertMeta:
    severity: str
    summary: str
    description: str  # Go template as in the rule; rendered by render_annotations()
    runbook_url: str


# From tests/fixtures/reference/kubernetes-alerts.json (kube-prometheus 4d719f1, coredns-mixin eb356cf).
# Alerts with two severities are listed with the one these scenarios use.
_RB = "https://runbooks.prometheus-operator.dev/runbooks"
CATALOGUE: dict[str, AlertMeta] = {
    "Watchdog": AlertMeta(
        "none",
        "An alert that should always be firing to certify that Alertmanager is working properly.",
        "This is an alert meant to ensure that the entire alerting pipeline is functional.\n"
        "This alert is always firing, therefore it should always be firing in Alertmanager\n"
        "and always fire against a receiver. There are integrations with various notification\n"
        "mechanisms that send a notification when this alert is not firing. For example the\n"
        '"DeadMansSnitch" integration in PagerDuty.\n',
        f"{_RB}/general/watchdog",
    ),
    "TargetDown": AlertMeta(
        "warning",
        "One or more targets are unreachable.",
        '{{ printf "%.4g" $value }}% of the {{ $labels.job }}/{{ $labels.service }} targets in '
        "{{ $labels.namespace }} namespace are down.",
        f"{_RB}/general/targetdown",
    ),
    "KubeletInstanceUnreachable": AlertMeta(
        "warning",
        "Kubelet instance is unreachable.",
        "A Kubelet instance has been unreachable for more than 15 minutes.",
        f"{_RB}/kubernetes/kubeletinstanceunreachable",
    ),
    "KubeNodeNotReady": AlertMeta(
        "warning",
        "Node is not ready.",
        "{{ $labels.node }} has been unready for more than 15 minutes on cluster {{ $labels.cluster }}.",
        f"{_RB}/kubernetes/kubenodenotready",
    ),
    "KubeNodeUnreachable": AlertMeta(
        "warning",
        "Node is unreachable.",
        "{{ $labels.node }} is unreachable and some workloads may be rescheduled on cluster "
        "{{ $labels.cluster }}.",
        f"{_RB}/kubernetes/kubenodeunreachable",
    ),
    "KubeNodeReadinessFlapping": AlertMeta(
        "warning",
        "Node readiness status is flapping.",
        "The readiness status of node {{ $labels.node }} has changed {{ $value }} times in the last "
        "15 minutes on cluster {{ $labels.cluster }}.",
        f"{_RB}/kubernetes/kubenodereadinessflapping",
    ),
    "KubePodNotReady": AlertMeta(
        "warning",
        "Pod has been in a non-ready state for more than 15 minutes.",
        "Pod {{ $labels.namespace }}/{{ $labels.pod }} has been in a non-ready state for longer than "
        "15 minutes on cluster {{ $labels.cluster }}.",
        f"{_RB}/kubernetes/kubepodnotready",
    ),
    "KubePodCrashLooping": AlertMeta(
        "warning",
        "Pod is crash looping.",
        "Pod {{ $labels.namespace }}/{{ $labels.pod }} ({{ $labels.container }}) is in waiting state "
        '(reason: "CrashLoopBackOff") on cluster {{ $labels.cluster }}.',
        f"{_RB}/kubernetes/kubepodcrashlooping",
    ),
    "KubeDaemonSetRolloutStuck": AlertMeta(
        "warning",
        "DaemonSet rollout is stuck.",
        "DaemonSet {{ $labels.namespace }}/{{ $labels.daemonset }} has not finished or progressed for "
        "at least 15m on cluster {{ $labels.cluster }}.",
        f"{_RB}/kubernetes/kubedaemonsetrolloutstuck",
    ),
    "KubeDaemonSetMisScheduled": AlertMeta(
        "warning",
        "DaemonSet pods are misscheduled.",
        "{{ $value }} Pods of DaemonSet {{ $labels.namespace }}/{{ $labels.daemonset }} are running "
        "where they are not supposed to run on cluster {{ $labels.cluster }}.",
        f"{_RB}/kubernetes/kubedaemonsetmisscheduled",
    ),
    "KubeStatefulSetReplicasMismatch": AlertMeta(
        "warning",
        "StatefulSet has not matched the expected number of replicas.",
        "StatefulSet {{ $labels.namespace }}/{{ $labels.statefulset }} has not matched the expected "
        "number of replicas for longer than 15 minutes on cluster {{ $labels.cluster }}.",
        f"{_RB}/kubernetes/kubestatefulsetreplicasmismatch",
    ),
    "KubeDeploymentReplicasMismatch": AlertMeta(
        "warning",
        "Deployment has not matched the expected number of replicas.",
        "Deployment {{ $labels.namespace }}/{{ $labels.deployment }} has not matched the expected "
        "number of replicas for longer than 15 minutes on cluster {{ $labels.cluster }}.",
        f"{_RB}/kubernetes/kubedeploymentreplicasmismatch",
    ),
    "KubeContainerWaiting": AlertMeta(
        "warning",
        "Pod container waiting longer than 1 hour",
        "pod/{{ $labels.pod }} in namespace {{ $labels.namespace }} on container {{ $labels.container}} "
        'has been in waiting state for longer than 1 hour. (reason: "{{ $labels.reason }}") on cluster '
        "{{ $labels.cluster }}.",
        f"{_RB}/kubernetes/kubecontainerwaiting",
    ),
    "KubeAPIInstanceUnreachable": AlertMeta(
        "warning",
        "KubeAPI instance is unreachable.",
        "A KubeAPI instance has been unreachable for more than 15 minutes.",
        f"{_RB}/kubernetes/kubeapiinstanceunreachable",
    ),
    "CoreDNSDown": AlertMeta(
        "critical",
        "CoreDNS has disappeared from Prometheus target discovery.",
        "CoreDNS has disappeared from Prometheus target discovery.",
        "https://github.com/povilasv/coredns-mixin/tree/master/runbook.md#alert-name-corednsdown",
    ),
    "NodeClockNotSynchronising": AlertMeta(
        "warning",
        "Clock not synchronising.",
        "Clock at {{ $labels.instance }} is not synchronising. Ensure NTP is configured on this host.",
        f"{_RB}/node/nodeclocknotsynchronising",
    ),
    "NodeNetworkReceiveErrs": AlertMeta(
        "warning",
        "Network interface is reporting many receive errors.",
        '{{ $labels.instance }} interface {{ $labels.device }} has encountered {{ printf "%.0f" $value }} '
        "receive errors in the last two minutes.",
        f"{_RB}/node/nodenetworkreceiveerrs",
    ),
    "NodeFilesystemSpaceFillingUp": AlertMeta(
        "warning",
        "Filesystem is predicted to run out of space within the next 24 hours.",
        "Filesystem on {{ $labels.device }}, mounted on {{ $labels.mountpoint }}, at {{ $labels.instance }} "
        'has only {{ printf "%.2f" $value }}% available space left and is filling up.',
        f"{_RB}/node/nodefilesystemspacefillingup",
    ),
}

_TEMPLATE = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")


def render_annotations(alertname: str, labels: Mapping[str, str], value: str = "1") -> dict[str, str]:
    """summary/description/runbook_url of a catalogue alert, its template filled like Prometheus would.

    `{{ $labels.x }}` becomes the label value (empty when absent, as Prometheus prints it) and
    any expression on `$value` becomes `value`.
    """
    meta = CATALOGUE.get(alertname)
    if meta is None:
        return {}

    def fill(match: re.Match[str]) -> str:
        expr = match.group(1)
        label = re.fullmatch(r"\$labels\.(\w+)", expr)
        if label:
            return labels.get(label.group(1), "")
        return value if "$value" in expr else ""

    return {
        "description": _TEMPLATE.sub(fill, meta.description),
        "runbook_url": meta.runbook_url,
        "summary": meta.summary,
    }


def make_alert(
    alertname: str,
    labels: Mapping[str, str],
    fires_at: datetime,
    resolves_at: datetime | None = None,
    *,
    value: str = "1",
) -> AlertSpec | None:
    """One catalogue alert: severity and annotations filled in. None if it resolves before firing."""
    if resolves_at is not None and resolves_at <= fires_at:
        return None  # the condition cleared during `for:`: Prometheus never sends it
    meta = CATALOGUE.get(alertname)
    full = {"alertname": alertname, **labels}
    if "severity" not in full:
        if meta is None:
            raise ValueError(f"{alertname}: not in the catalogue, give a severity label")
        full["severity"] = meta.severity
    return AlertSpec(
        labels=full,
        fires_at=fires_at,
        resolves_at=resolves_at,
        annotations=render_annotations(alertname, full, value),
    )


def pod_uid(namespace: str, pod: str, cluster: str | None = None) -> str:
    """A stable pod UID; bench/gen_cluster.py uses the same one so its topology and storms agree."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"k8s://{cluster or 'default'}/{namespace}/pods/{pod}"))


def node_ip_of(node: str) -> str:
    """The node's InternalIP: read from an EC2-style name (`ip-10-0-1-21...`), else derived from it."""
    match = re.match(r"ip-(\d+)-(\d+)-(\d+)-(\d+)", node)
    if match:
        return ".".join(match.groups())
    digest = int(fingerprint({"node": node}), 16)
    return f"10.0.{(digest >> 8) % 250 + 1}.{digest % 250 + 4}"


def _base(cluster: str | None, external_labels: Mapping[str, str] | None) -> dict[str, str]:
    base = dict(EXTERNAL_LABELS if external_labels is None else external_labels)
    if cluster:
        base["cluster"] = cluster
    return base


def ksm_labels(ksm_instance: str = KSM_INSTANCE, *, own_container: bool = False) -> dict[str, str]:
    """Target labels a KSM series keeps (kube-prometheus' ServiceMonitor drops pod/service/namespace)."""
    labels = {"instance": ksm_instance, "job": "kube-state-metrics"}
    if not own_container:
        labels["container"] = "kube-rbac-proxy-main"
    return labels


def node_exporter_labels(node: str, exporter_pod: str) -> dict[str, str]:
    """Target labels of a node-exporter series: instance is relabelled to the node name."""
    return {
        "container": "kube-rbac-proxy",
        "endpoint": "https",
        "instance": node,
        "job": "node-exporter",
        "namespace": "monitoring",
        "pod": exporter_pod,
        "service": "node-exporter",
    }


def kubelet_labels(node: str, node_ip: str | None = None) -> dict[str, str]:
    """Target labels of the kubelet's /metrics endpoint (prometheus-operator managed Service)."""
    return {
        "endpoint": "https-metrics",
        "instance": f"{node_ip or node_ip_of(node)}:10250",
        "job": "kubelet",
        "metrics_path": "/metrics",
        "namespace": "kube-system",
        "node": node,
        "service": "kubelet",
    }


_SCRAPE_JOBS = {
    "node-exporter": {"job": "node-exporter", "namespace": "monitoring", "service": "node-exporter"},
    "kubelet": {"job": "kubelet", "namespace": "kube-system", "service": "kubelet"},
    "kube-dns": {"job": "kube-dns", "namespace": "kube-system", "service": "kube-dns"},
}


def _percent(down: int, total: int | None) -> str:
    return "?" if not total else f"{100 * down / total:.4g}"


def _target_down_fires(down: int, total: int | None) -> bool:
    # TargetDown: more than 10% of a job's targets down; unknown size means a small cluster.
    return total is None or 100 * down / total > 10


def _add(out: list[AlertSpec], spec: AlertSpec | None) -> None:
    if spec is not None:
        out.append(spec)


def node_down(
    node: str,
    pods_on_node: Sequence[PodRef],
    daemonsets: Sequence[tuple[str, str]],
    t0: datetime,
    recover_at: datetime | None = None,
    cluster: str | None = None,
    *,
    node_ip: str | None = None,
    cluster_nodes: int | None = None,
    target_down: bool | None = None,
    ksm_instance: str = KSM_INSTANCE,
    misscheduled: bool = False,
    external_labels: Mapping[str, str] | None = None,
) -> list[AlertSpec]:
    """A worker node dies at t0 (power off or partition) and maybe comes back at recover_at.

    Ordering (reference §(c).1): TargetDown for the node-exporter and kubelet jobs at ~10m30s
    (only if this node is more than 10% of the job's targets: give `cluster_nodes`, or force
    it with `target_down`), then
    KubeletInstanceUnreachable at ~15m30s, then KubeNodeNotReady, KubeNodeUnreachable,
    KubePodNotReady for each of its pods (Job pods excluded, evicted pods stuck Terminating
    included) and KubeDaemonSetRolloutStuck for each DaemonSet at ~15m50s, then
    KubeStatefulSetReplicasMismatch for StatefulSets with a pod there at ~16m20s. Alerts whose
    condition clears before their `for:` elapses (early recovery) are not produced.
    """
    base = _base(cluster, external_labels)
    ip = node_ip or node_ip_of(node)
    ksm = ksm_labels(ksm_instance)
    up_clears = recover_at + RECOVERY_SCRAPE if recover_at else None
    pods_clear = recover_at + RECOVERY_PODS if recover_at else None
    out: list[AlertSpec] = []
    if target_down if target_down is not None else _target_down_fires(1, cluster_nodes):
        for job in ("node-exporter", "kubelet"):
            labels = {**base, **_SCRAPE_JOBS[job]}
            _add(
                out,
                make_alert(
                    "TargetDown", labels, t0 + TARGET_DOWN_AT, up_clears, value=_percent(1, cluster_nodes)
                ),
            )
    _add(
        out,
        make_alert(
            "KubeletInstanceUnreachable",
            {**base, **kubelet_labels(node, ip)},
            t0 + KUBELET_UNREACHABLE_AT,
            up_clears,
        ),
    )
    at = t0 + NODE_NOT_READY_AT
    _add(
        out,
        make_alert(
            "KubeNodeNotReady",
            {**base, **ksm, "node": node, "condition": "Ready", "status": "true"},
            at,
            up_clears,
        ),
    )
    unreachable = {
        **base,
        **ksm,
        "node": node,
        "key": "node.kubernetes.io/unreachable",
        "effect": "NoSchedule",
    }
    _add(out, make_alert("KubeNodeUnreachable", unreachable, at, up_clears))
    statefulsets: dict[tuple[str, str], None] = {}
    for namespace, pod, kind, name in pods_on_node:
        if kind == "StatefulSet":
            statefulsets[(namespace, name)] = None
        if kind in ("Job", "CronJob"):
            continue  # KubePodNotReady excludes pods owned by Jobs
        labels = {**base, "namespace": namespace, "pod": pod, "job": "kube-state-metrics"}
        _add(out, make_alert("KubePodNotReady", labels, at, pods_clear))
    for namespace, name in daemonsets:
        labels = {**base, **ksm, "namespace": namespace, "daemonset": name}
        _add(out, make_alert("KubeDaemonSetRolloutStuck", labels, at, pods_clear))
        if misscheduled:
            _add(out, make_alert("KubeDaemonSetMisScheduled", labels, at, pods_clear))
    for namespace, name in statefulsets:
        labels = {**base, **ksm, "namespace": namespace, "statefulset": name}
        _add(
            out,
            make_alert("KubeStatefulSetReplicasMismatch", labels, t0 + STATEFULSET_MISMATCH_AT, pods_clear),
        )
    return out


def zone_outage(
    nodes_in_zone: Sequence[str],
    pods_by_node: Mapping[str, Sequence[PodRef]],
    daemonsets: Sequence[tuple[str, str]],
    t0: datetime,
    recover_at: datetime | None = None,
    cluster: str | None = None,
    *,
    node_ips: Mapping[str, str] | None = None,
    cluster_nodes: int | None = None,
    stagger: timedelta = timedelta(0),
    ksm_instance: str = KSM_INSTANCE,
    external_labels: Mapping[str, str] | None = None,
) -> list[AlertSpec]:
    """Every node of a zone dies (node k at t0 + k * stagger): the node-death ordering per node.

    Alerts that do not name a node (TargetDown per job, one per DaemonSet or StatefulSet) are
    produced once, from the first node that raises them. TargetDown fires when the zone is more
    than 10% of the cluster's nodes (`cluster_nodes`; unknown means it fires).
    """
    fires = _target_down_fires(len(nodes_in_zone), cluster_nodes)
    base = _base(cluster, external_labels)
    specs: list[AlertSpec] = []
    if fires and nodes_in_zone:
        up_clears = recover_at + RECOVERY_SCRAPE if recover_at else None
        for job in ("node-exporter", "kubelet"):
            labels = {**base, **_SCRAPE_JOBS[job]}
            value = _percent(len(nodes_in_zone), cluster_nodes)
            _add(specs, make_alert("TargetDown", labels, t0 + TARGET_DOWN_AT, up_clears, value=value))
    for k, node in enumerate(nodes_in_zone):
        specs.extend(
            node_down(
                node,
                pods_by_node.get(node, ()),
                daemonsets,
                t0 + k * stagger,
                recover_at,
                cluster,
                node_ip=(node_ips or {}).get(node),
                target_down=False,  # raised once for the zone above
                ksm_instance=ksm_instance,
                external_labels=external_labels,
            )
        )
    return combine(specs)


def coredns_crash(
    coredns_pods: Sequence[str],
    affected_pods_by_ns: Mapping[str, Sequence[tuple[str, str, str]]],
    t0: datetime,
    recover_at: datetime | None = None,
    cluster: str | None = None,
    *,
    total_pods: int | None = None,
    deployment: str = "coredns",
    ksm_instance: str = KSM_INSTANCE,
    external_labels: Mapping[str, str] | None = None,
) -> list[AlertSpec]:
    """CoreDNS pods crash-loop from t0 (reference §(c).2).

    `coredns_pods` are the crashing pods (of `total_pods`, default all of them);
    `affected_pods_by_ns` maps a namespace to `(pod, workload_kind, workload_name)` of the
    clients whose readiness fails without DNS. Ordering: TargetDown{job="kube-dns"} ~10m30s,
    CoreDNSDown (no labels at all; only when every CoreDNS pod is down) ~15m30s,
    KubePodCrashLooping and KubeDeploymentReplicasMismatch for CoreDNS ~16m, then the clients'
    KubePodNotReady ~16m30s and their workloads' mismatch alerts ~17m. Clients only break
    when DNS is fully down. KubePodCrashLooping clears 5m after the crashes stop (max_over_time).
    """
    base = _base(cluster, external_labels)
    total = total_pods or len(coredns_pods)
    all_down = len(coredns_pods) >= total
    up_clears = recover_at + RECOVERY_SCRAPE if recover_at else None
    pods_clear = recover_at + RECOVERY_PODS if recover_at else None
    out: list[AlertSpec] = []
    if _target_down_fires(len(coredns_pods), total):
        labels = {**base, **_SCRAPE_JOBS["kube-dns"]}
        _add(
            out,
            make_alert(
                "TargetDown", labels, t0 + TARGET_DOWN_AT, up_clears, value=_percent(len(coredns_pods), total)
            ),
        )
    if all_down:
        _add(
            out, make_alert("CoreDNSDown", dict(base), t0 + SCRAPE_DETECT + timedelta(minutes=15), up_clears)
        )
    crash_at = t0 + CRASHLOOP_VISIBLE + timedelta(minutes=15)
    for pod in coredns_pods:
        labels = {
            **base,
            **ksm_labels(ksm_instance, own_container=True),
            "namespace": "kube-system",
            "pod": pod,
            "uid": pod_uid("kube-system", pod, cluster),
            "container": "coredns",
            "reason": "CrashLoopBackOff",
        }
        clears = recover_at + CRASHLOOP_CLEARS if recover_at else None
        _add(out, make_alert("KubePodCrashLooping", labels, crash_at, clears))
    labels = {**base, **ksm_labels(ksm_instance), "namespace": "kube-system", "deployment": deployment}
    _add(out, make_alert("KubeDeploymentReplicasMismatch", labels, crash_at, pods_clear))
    if not all_down:
        return out
    clients_fail = t0 + DNS_CLIENTS_FAIL + timedelta(minutes=15)
    workloads_clear = recover_at + RECOVERY_PODS + SCRAPE_DETECT if recover_at else None
    for namespace, pods in sorted(affected_pods_by_ns.items()):
        workloads: dict[tuple[str, str], None] = {}
        for pod, kind, name in pods:
            if kind in ("Job", "CronJob"):
                continue
            workloads[(kind, name)] = None
            labels = {**base, "namespace": namespace, "pod": pod, "job": "kube-state-metrics"}
            _add(out, make_alert("KubePodNotReady", labels, clients_fail, pods_clear))
        for kind, name in workloads:
            alertname, key = {
                "Deployment": ("KubeDeploymentReplicasMismatch", "deployment"),
                "StatefulSet": ("KubeStatefulSetReplicasMismatch", "statefulset"),
                "DaemonSet": ("KubeDaemonSetRolloutStuck", "daemonset"),
            }.get(kind, ("", ""))
            if alertname:
                labels = {**base, **ksm_labels(ksm_instance), "namespace": namespace, key: name}
                _add(out, make_alert(alertname, labels, clients_fail + SCRAPE_DETECT, workloads_clear))
    return out


def transient(labels: Mapping[str, str], t0: datetime, duration: timedelta) -> list[AlertSpec]:
    """One alert that fires at t0 and resolves `duration` later (severity from the catalogue if missing)."""
    if not labels.get("alertname"):
        raise ValueError("labels: missing 'alertname'")
    rest = {k: v for k, v in labels.items() if k != "alertname"}
    spec = make_alert(labels["alertname"], rest, t0, t0 + duration)
    return [spec] if spec else []


def flapping(
    labels: Mapping[str, str],
    t0: datetime,
    period: timedelta,
    count: int,
    *,
    firing_for: timedelta | None = None,
) -> list[AlertSpec]:
    """The same alert fires `count` times, every `period`, each time for `firing_for` (default half)."""
    up = firing_for if firing_for is not None else period / 2
    if not timedelta(0) < up < period:
        raise ValueError("firing_for must be positive and shorter than period")
    out: list[AlertSpec] = []
    for k in range(count):
        out.extend(transient(labels, t0 + k * period, up))
    return out


def watchdog(
    t0: datetime,
    until: datetime | None = None,
    *,
    cluster: str | None = None,
    vanished: bool = True,
    external_labels: Mapping[str, str] | None = None,
) -> list[AlertSpec]:
    """The always-firing Watchdog, as one long alert that stops at `until` (None: never).

    `vanished` (the usual way it stops: Prometheus or its path to Alertmanager died) resolves
    it only when its last endsAt passes, WATCHDOG_TIMEOUT after `until`. Alertmanager re-sends
    it with each repeat of its group; give it `storm.heartbeat_route(interval)` in the config
    to have it re-sent every `interval` as heartbeat setups do.
    """
    resolves = None if until is None else until + (WATCHDOG_TIMEOUT if vanished else timedelta(0))
    spec = make_alert("Watchdog", _base(cluster, external_labels), t0, resolves)
    return [spec] if spec else []


def combine(*scenarios: Iterable[AlertSpec]) -> list[AlertSpec]:
    """Concatenate scenarios; the same alert raised twice over overlapping spans becomes one.

    The merged alert fires at the earliest time and resolves at the latest (never if either
    never resolves); disjoint spans stay separate alerts (a re-fire).
    """
    by_fp: dict[str, list[AlertSpec]] = {}
    order: list[str] = []
    for scenario in scenarios:
        for spec in scenario:
            fp = fingerprint(spec.labels)
            if fp not in by_fp:
                order.append(fp)
            by_fp.setdefault(fp, []).append(spec)
    out: list[AlertSpec] = []
    for fp in order:
        merged: list[AlertSpec] = []
        for spec in sorted(by_fp[fp], key=lambda s: s.fires_at):
            last = merged[-1] if merged else None
            if last is not None and (last.resolves_at is None or spec.fires_at < last.resolves_at):
                ends = last.resolves_at
                if ends is not None:
                    ends = None if spec.resolves_at is None else max(ends, spec.resolves_at)
                merged[-1] = AlertSpec(
                    last.labels, last.fires_at, ends, last.annotations, last.starts_at, last.generator_url
                )
            else:
                merged.append(spec)
        out.extend(merged)
    return out
