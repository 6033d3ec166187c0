"""Fault timelines for the world generator: what breaks, which alerts fire when, and which of them
describe the root cause itself rather than its symptoms.

Each builder takes a cluster (router/sim/cluster.py), the world's generator and the fault's
start `t0`, and returns a `Fault` (or None when the cluster has nothing it can break): the root
entity named as docs/contracts.md fixes it, whether the fault must page or is expected to stay
quiet (it heals by itself), and its alerts split in two:

- `root_alerts`: alerts on the root entity itself or on the parts it is made of (CoreDNSDown and
  the crash-looping CoreDNS pods for cluster DNS, the crash-looping pods of a bad Deployment,
  NodeFilesystemAlmostOutOfSpace for a full node disk). The engine may stand one of them as the
  incident's root alert, or fold them in; they are not counted as symptoms;
- `symptoms`: alerts on what depends on the root (pods of a dead node, Services of broken
  pods, the apiserver of a lost etcd...): the engine should attach them to the root's incident.

Timings come from the reference notes on how `for:` durations order a real failure
(kube-state-metrics-and-alerts.md §(c): "Worked orderings") and from the `for` and labels of the
kube-prometheus catalogue (tests/fixtures/reference/kubernetes-alerts.json); router/sim/scenarios.py
already encodes the node-death and CoreDNS orderings and is reused here. Application alerts
(RED / OpenTelemetry style, not in kube-prometheus) fire 1-5 minutes after the fault and resolve
a minute or two after it heals.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ground.times import format_time
from router.sim import scenarios as sc
from router.sim.cluster import NAME_ALPHABET, ClusterWorld, PodInfo, ServiceInfo, WorkloadInfo
from router.sim.storm import AlertSpec, fingerprint

EXTERNAL = sc.EXTERNAL_LABELS


def minutes(value: float) -> timedelta:
    return timedelta(seconds=round(value * 60, 3))


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


# `for:` of every catalogue alert the worlds produce (kubernetes-alerts.json; tests check this
# table against the catalogue). Keyed by (alertname, severity) where a name has two rules.
FOR: dict[tuple[str, str], timedelta] = {
    ("TargetDown", "warning"): minutes(10),
    ("KubeletInstanceUnreachable", "warning"): minutes(15),
    ("KubeNodeNotReady", "warning"): minutes(15),
    ("KubeNodeUnreachable", "warning"): minutes(15),
    ("KubePodNotReady", "warning"): minutes(15),
    ("KubePodCrashLooping", "warning"): minutes(15),
    ("KubeDaemonSetRolloutStuck", "warning"): minutes(15),
    ("KubeDaemonSetMisScheduled", "warning"): minutes(15),
    ("KubeDeploymentReplicasMismatch", "warning"): minutes(15),
    ("KubeDeploymentRolloutStuck", "warning"): minutes(15),
    ("KubeStatefulSetReplicasMismatch", "warning"): minutes(15),
    ("CoreDNSDown", "critical"): minutes(15),
    ("KubePersistentVolumeFillingUp", "critical"): minutes(1),
    ("NodeFilesystemAlmostOutOfSpace", "warning"): minutes(30),
    ("NodeFilesystemAlmostOutOfSpace", "critical"): minutes(30),
    ("KubeNodePressure", "info"): minutes(10),
    ("KubeNodeEviction", "info"): timedelta(0),
    ("etcdNoLeader", "critical"): minutes(1),
    ("etcdInsufficientMembers", "critical"): minutes(3),
    ("etcdMembersDown", "warning"): minutes(20),
    ("KubeAPIInstanceUnreachable", "warning"): minutes(15),
    ("KubeSchedulerInstanceUnreachable", "warning"): minutes(15),
    ("KubeControllerManagerInstanceUnreachable", "warning"): minutes(15),
    ("KubeStateMetricsListErrors", "critical"): minutes(15),
    ("KubeStateMetricsWatchErrors", "critical"): minutes(15),
    ("CPUThrottlingHigh", "info"): minutes(15),
}
# KubeAPIErrorBudgetBurn has four rules told apart by their static `long` label.
FOR_BURN = {"1h": minutes(2), "6h": minutes(15)}
APP_FOR = (minutes(1), minutes(5))  # application alerts: `for:` 1m to 5m


def for_of(labels: dict[str, str]) -> timedelta:
    """The `for:` of the rule behind an alert (application alerts: their shortest, 1m)."""
    if labels["alertname"] == "KubeAPIErrorBudgetBurn":
        return FOR_BURN[labels["long"]]
    return FOR.get((labels["alertname"], labels["severity"]), APP_FOR[0])


# A Service that requests no longer reach (a partition in front of it): OpenTelemetry style.
STARVATION_ALERT = ("NoRequestsReceived", "warning", "No requests reaching {service}")
APP_ALERTS = (  # (alertname, severity, summary)
    ("HighErrorRate", "critical", "High 5xx error rate on {service}"),
    ("HighErrorRate", "warning", "Elevated 5xx error rate on {service}"),
    ("RequestErrorRateHigh", "critical", "More than 5% of requests to {service} fail"),
    ("HighLatency", "warning", "p95 latency of {service} above its SLO"),
    ("LatencyP99High", "warning", "p99 latency of {service} above 2s"),
)


@dataclass
class Fault:
    """One injected failure and its ground truth."""

    kind: str
    root: str  # entity name (docs/contracts.md)
    must_page: bool  # False: it heals by itself before anything slow fires; expected quiet
    start: datetime
    heal: datetime | None
    summary: str  # one line for people: what broke
    root_alerts: list[AlertSpec] = field(default_factory=list)
    symptoms: list[AlertSpec] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)  # what it affects: two faults must not share
    id: str = ""
    # The recorded change that started it (`{entity, at, what}`, the topology file's `changes`),
    # which a page may name as its likely cause instead of naming the root.
    change: dict[str, str] | None = None

    def alerts(self) -> list[tuple[str, AlertSpec]]:
        return [("root", s) for s in self.root_alerts] + [("symptom", s) for s in self.symptoms]

    def fingerprints(self) -> set[str]:
        return {fingerprint(s.labels) for _, s in self.alerts()}


class Ctx:
    """What every builder needs: the cluster, the generator, and label helpers."""

    def __init__(self, cluster: ClusterWorld, rng: random.Random) -> None:
        self.c = cluster
        self.rng = rng
        self.base = {**EXTERNAL, **({"cluster": cluster.label} if cluster.label else {})}

    def uniform(self, low: float, high: float) -> float:
        return round(self.rng.uniform(low, high), 3)

    def maybe_heal(self, t0: datetime, probability: float, low: float, high: float) -> datetime | None:
        """Some faults are fixed (or fix themselves) after a while; the rest outlive the recording."""
        return t0 + minutes(self.uniform(low, high)) if self.rng.random() < probability else None

    def ksm(self, **labels: str) -> dict[str, str]:
        """A KSM-based alert on an object without its own `container` label."""
        return {**self.base, **sc.ksm_labels(self.c.ksm_instance), **labels}

    def alert(
        self,
        alertname: str,
        labels: dict[str, str],
        fires: datetime,
        resolves: datetime | None,
        *,
        severity: str | None = None,
        value: str = "1",
        starts_at: datetime | None = None,
    ) -> AlertSpec | None:
        """A catalogue alert (severity given for the ones router/sim/scenarios.py does not list)."""
        full = {**labels, **({"severity": severity} if severity else {})}
        if "severity" not in full and alertname not in sc.CATALOGUE:
            raise ValueError(f"{alertname}: give a severity")
        spec = sc.make_alert(alertname, full, fires, resolves, value=value)
        if spec is not None and starts_at is not None:
            spec = AlertSpec(spec.labels, spec.fires_at, spec.resolves_at, spec.annotations, starts_at)
        return spec

    def app_alert(
        self,
        service: ServiceInfo,
        fires: datetime,
        resolves: datetime | None,
        kind: tuple[str, str, str] | None = None,
    ) -> AlertSpec | None:
        """A RED/OpenTelemetry alert on a Service, labelled the way its namespace labels them:
        `kind` (alertname, severity, summary), else an error or latency alert drawn at random."""
        name, severity, summary = kind or self.rng.choice(APP_ALERTS)
        labels = {**self.base, "alertname": name, "severity": severity, "namespace": service.namespace}
        if service.alert_style == "service":
            labels["service"] = service.name
        elif service.alert_style == "service_name":
            labels["service_name"] = service.name  # OpenTelemetry span metrics
        elif service.alert_style == "job_ns":
            labels["job"] = f"{service.namespace}/{service.name}"
        else:
            labels["job"] = service.name
        if resolves is not None and resolves <= fires:
            return None
        text = summary.format(service=service.name)
        return AlertSpec(
            labels=labels,
            fires_at=fires,
            resolves_at=resolves,
            annotations={"summary": text, "description": f"{text} in namespace {service.namespace}."},
        )

    def app_alerts(
        self,
        services: Iterable[ServiceInfo],
        after: datetime,
        heal: datetime | None,
        *,
        delay: tuple[float, float] = (1, 5),
        kind: tuple[str, str, str] | None = None,
    ) -> list[AlertSpec]:
        """Application alerts (`kind`, else errors or latency) fire 1-5 minutes after `after`,
        resolve 1-2 minutes after the heal."""
        out: list[AlertSpec] = []
        for service in services:
            fires = after + minutes(self.uniform(*delay))
            resolves = heal + minutes(self.uniform(1, 2)) if heal else None
            _add(out, self.app_alert(service, fires, resolves, kind))
        return out

    def target_down(
        self, job: str, namespace: str, service: str, at: datetime, clears: datetime | None, percent: float
    ) -> AlertSpec | None:
        labels = {**self.base, "job": job, "namespace": namespace, "service": service}
        return self.alert("TargetDown", labels, at, clears, value=f"{percent:.4g}")


def _add(out: list[AlertSpec], spec: AlertSpec | None) -> None:
    if spec is not None:
        out.append(spec)


def _split(
    specs: Iterable[AlertSpec], is_root: Callable[[AlertSpec], bool]
) -> tuple[list[AlertSpec], list[AlertSpec]]:
    roots: list[AlertSpec] = []
    symptoms: list[AlertSpec] = []
    for spec in specs:
        (roots if is_root(spec) else symptoms).append(spec)
    return roots, symptoms


def _node_pods(ctx: Ctx, nodes: Iterable[str]) -> list[PodInfo]:
    return [p for n in nodes for p in ctx.c.pods_by_node[n]]


def _share_on(service: ServiceInfo, nodes: set[str]) -> float:
    if not service.pods:
        return 0.0
    return sum(p.node in nodes for p in service.pods) / len(service.pods)


def _touched_by_pods(pods: Iterable[PodInfo], ctx: Ctx) -> set[str]:
    touched = set()
    for pod in pods:
        touched.add(f"workload:{pod.namespace}/{pod.workload}")
    for service in ctx.c.services.values():
        if any(p in service.pods for p in pods):
            touched.add(f"service:{service.namespace}/{service.name}")
    return touched


def _pod_backed_target_downs(
    ctx: Ctx, dead: set[str], t0: datetime, heal: datetime | None
) -> list[AlertSpec]:
    """TargetDown for every scraped pod-backed job that loses more than 10% of its targets.

    kube-prometheus: `100 * count(up == 0) / count(up) > 10` per (job, namespace, service), for
    10m (reference §(c) table); the pods of an unreachable node stay discovered (Terminating).
    """
    clears = heal + sc.RECOVERY_SCRAPE if heal else None
    out: list[AlertSpec] = []
    jobs: list[tuple[str, str, str, list[PodInfo]]] = [
        ("kube-dns", "kube-system", "kube-dns", ctx.c.coredns.pods)
    ]
    for service in ctx.c.services.values():
        # node-exporter's TargetDown comes with the node-death ordering (router/sim/scenarios.py).
        if service.scraped and service.pods and service.name != "node-exporter":
            jobs.append((service.name, service.namespace, service.name, service.pods))
    for job, namespace, service_name, pods in jobs:
        down = sum(p.node in dead for p in pods)
        if down and 100 * down / len(pods) > 10:
            _add(
                out,
                ctx.target_down(
                    job, namespace, service_name, t0 + sc.TARGET_DOWN_AT, clears, 100 * down / len(pods)
                ),
            )
    return out


def _lost_deployments(
    ctx: Ctx,
    pods: list[PodInfo],
    t0: datetime,
    heal: datetime | None,
    probability: Callable[[WorkloadInfo], float],
) -> list[AlertSpec]:
    """KubeDeploymentReplicasMismatch for Deployments whose evicted replicas cannot be placed.

    Usually a dead node's Deployment pods are evicted after the 300s NoExecute toleration and
    rescheduled, and the alert never fires (reference §(c).1); it does when the replacement
    cannot be scheduled (a zone spread constraint, no capacity left), ~15m after the replicas
    became unavailable.
    """
    out: list[AlertSpec] = []
    seen: dict[tuple[str, str], None] = {}
    for pod in pods:
        if pod.workload_kind == "Deployment":
            seen[(pod.namespace, pod.workload)] = None
    clears = heal + sc.RECOVERY_PODS + sc.SCRAPE_DETECT if heal else None
    for namespace, name in seen:
        workload = next(w for w in ctx.c.workloads if w.key == (namespace, name))
        if ctx.rng.random() < probability(workload):
            at = t0 + sc.NODE_NOT_READY_AT + seconds(20)
            labels = ctx.ksm(namespace=namespace, deployment=name)
            _add(out, ctx.alert("KubeDeploymentReplicasMismatch", labels, at, clears))
    return out


def _affected_services(ctx: Ctx, dead: set[str], full: float, partial: float) -> list[ServiceInfo]:
    """Application Services that lose pods: most fire an error alert when they lose most of
    their endpoints, few when they lose one of many (traffic moves to the others)."""
    out = []
    for service in ctx.c.app_services():
        share = _share_on(service, dead)
        if share and ctx.rng.random() < (full if share >= 0.5 else partial):
            out.append(service)
    return out


# --- node down, zone down, node blip -----------------------------------------------------------


def _eligible_workers(ctx: Ctx) -> list[str]:
    """Workers a fault may take down: not the one running kube-state-metrics (see worldcluster)."""
    return [n for n in ctx.c.workers if n != ctx.c.ksm_node]


def node_down(ctx: Ctx, t0: datetime) -> Fault | None:
    """A worker powers off; sometimes it comes back after 20-60 minutes (reference §(c).1)."""
    candidates = _eligible_workers(ctx)
    if not candidates:
        return None
    node = ctx.rng.choice(candidates)
    heal = ctx.maybe_heal(t0, 0.5, 25, 60)
    c = ctx.c
    pods = c.pods_by_node[node]
    specs = sc.node_down(
        node,
        [p.ref for p in pods],
        c.daemonsets,
        t0,
        heal,
        c.label,
        node_ip=c.nodes[node].ip,
        cluster_nodes=len(c.nodes),
        ksm_instance=c.ksm_instance,
        misscheduled=ctx.rng.random() < 0.3,
        external_labels=EXTERNAL,
    )
    specs += _pod_backed_target_downs(ctx, {node}, t0, heal)
    specs += _lost_deployments(ctx, pods, t0, heal, lambda w: 0.35)
    specs += ctx.app_alerts(_affected_services(ctx, {node}, 0.9, 0.25), t0, heal)
    roots, symptoms = _split(
        specs, lambda s: s.labels["alertname"] in ("KubeNodeNotReady", "KubeNodeUnreachable")
    )
    touched = {f"node:{node}", "job:node-exporter", "job:kubelet"} | _touched_by_pods(pods, ctx)
    back = f", back after {_mins(heal - t0)}" if heal else ""
    return Fault(
        "node_down",
        c.entity("node", node),
        True,
        t0,
        heal,
        f"worker {node} powers off{back}",
        roots,
        symptoms,
        touched,
    )


def _control_plane_loss(ctx: Ctx, nodes: list[str], t0: datetime, heal: datetime | None) -> list[AlertSpec]:
    """One control-plane node of three down: its members of every control-plane job are down."""
    out: list[AlertSpec] = []
    c = ctx.c
    total = len(c.control_plane)
    percent = 100 * len(nodes) / total
    clears = heal + sc.RECOVERY_SCRAPE if heal else None
    at = t0 + sc.TARGET_DOWN_AT
    unreachable_at = t0 + sc.SCRAPE_DETECT + minutes(15)
    _add(out, ctx.target_down("apiserver", "default", "kubernetes", at, clears, percent))
    _add(out, ctx.target_down("etcd", "kube-system", "etcd", at, clears, percent))
    for component, port, alert in (
        ("kube-scheduler", 10259, "KubeSchedulerInstanceUnreachable"),
        ("kube-controller-manager", 10257, "KubeControllerManagerInstanceUnreachable"),
    ):
        service = f"{component}-prometheus-discovery"
        _add(out, ctx.target_down(component, "kube-system", service, at, clears, percent))
        for node in nodes:
            labels = {
                **ctx.base,
                "job": component,
                "instance": f"{c.nodes[node].ip}:{port}",
                "pod": f"{component}-{node}",
                "namespace": "kube-system",
                "service": service,
                "endpoint": "https-metrics",
            }
            _add(out, ctx.alert(alert, labels, unreachable_at, clears, severity="warning"))
    for node in nodes:
        labels = {
            **ctx.base,
            "job": "apiserver",
            "instance": f"{c.nodes[node].ip}:6443",
            "namespace": "default",
            "service": "kubernetes",
            "endpoint": "https",
        }
        _add(out, ctx.alert("KubeAPIInstanceUnreachable", labels, unreachable_at, clears))
    labels = {**ctx.base, "job": "etcd", "namespace": "kube-system", "service": "etcd"}
    _add(
        out,
        ctx.alert("etcdMembersDown", labels, t0 + sc.SCRAPE_DETECT + minutes(20), clears, severity="warning"),
    )
    return out


def zone_down(ctx: Ctx, t0: datetime) -> Fault | None:
    """Every node of a zone goes dark (power, network); the node-death ordering per node.

    Not the zone of kube-state-metrics, nor one holding two of three control-plane nodes (that
    would be an etcd quorum loss on top), nor one with a single worker (indistinguishable from
    that node's death). Workloads spread over zones by a hard topology spread
    constraint cannot replace their replicas elsewhere: their Deployments report a mismatch.
    """
    c = ctx.c
    zones = [
        z
        for z, nodes in c.zones.items()
        if c.ksm_node not in nodes
        and sum(n in c.control_plane for n in nodes) <= 1
        and sum(n not in c.control_plane for n in nodes) >= 2  # one node is a node, not a zone
    ]
    if not zones:
        return None
    zone = ctx.rng.choice(zones)
    heal = ctx.maybe_heal(t0, 0.5, 25, 60)
    nodes = c.zones[zone]
    pods = _node_pods(ctx, nodes)
    specs = sc.zone_outage(
        nodes,
        {n: [p.ref for p in c.pods_by_node[n]] for n in nodes},
        c.daemonsets,
        t0,
        heal,
        c.label,
        node_ips={n: c.nodes[n].ip for n in nodes},
        cluster_nodes=len(c.nodes),
        stagger=seconds(ctx.uniform(0, 2)),
        ksm_instance=c.ksm_instance,
        external_labels=EXTERNAL,
    )
    dead = set(nodes)
    specs += _pod_backed_target_downs(ctx, dead, t0, heal)
    specs += _lost_deployments(ctx, pods, t0, heal, lambda w: 0.8 if w.placement == "zone-spread" else 0.25)
    specs += ctx.app_alerts(_affected_services(ctx, dead, 0.9, 0.3), t0, heal)
    control = [n for n in nodes if n in c.control_plane]
    if control:
        specs += _control_plane_loss(ctx, control, t0, heal)
    touched = (
        {f"node:{n}" for n in nodes} | {"job:node-exporter", "job:kubelet"} | _touched_by_pods(pods, ctx)
    )
    if control:
        touched |= {"apiserver", "etcd"}
    back = f", back after {_mins(heal - t0)}" if heal else ""
    summary = f"zone {zone} goes dark ({len(nodes)} nodes{', one control-plane' if control else ''}){back}"
    return Fault("zone_down", c.entity("zone", zone), True, t0, heal, summary, [], sc.combine(specs), touched)


def node_blip(ctx: Ctx, t0: datetime) -> Fault | None:
    """A worker is unreachable for 1-4 minutes and returns before any 15m `for:` elapses.

    Only the application alerts of Services that lost most of their endpoints fire (for: 1m),
    and resolve a minute or two after the node is back. Expected: no page.
    """
    c = ctx.c
    candidates = [
        n for n in _eligible_workers(ctx) if any(_share_on(s, {n}) >= 0.5 for s in c.app_services())
    ]
    if not candidates:
        return None
    node = ctx.rng.choice(candidates)
    heal = t0 + minutes(ctx.uniform(1, 4))
    symptoms: list[AlertSpec] = []
    for service in c.app_services():
        if _share_on(service, {node}) >= 0.5 and ctx.rng.random() < 0.85:
            fires = t0 + seconds(ctx.uniform(60, 110))
            if fires < heal - seconds(10):
                _add(symptoms, ctx.app_alert(service, fires, heal + minutes(ctx.uniform(1, 2))))
    # Its node and its application pods: a blip raises no DaemonSet alert, so another node's
    # death elsewhere is unrelated to it.
    apps = [p for p in c.pods_by_node[node] if p.workload_kind != "DaemonSet"]
    touched = {f"node:{node}"} | _touched_by_pods(apps, ctx)
    summary = f"worker {node} unreachable for {_mins(heal - t0)}"
    return Fault("node_blip", c.entity("node", node), False, t0, heal, summary, [], symptoms, touched)


# --- cluster DNS ---------------------------------------------------------------------------------


def dns_down(ctx: Ctx, t0: datetime) -> Fault | None:
    """Every CoreDNS pod crash-loops (reference §(c).2): TargetDown{job="kube-dns"} ~10m30s,
    CoreDNSDown ~15m30s, the CoreDNS pods' KubePodCrashLooping and their Deployment's mismatch
    ~16m, clients' KubePodNotReady ~16m30s and their workloads' mismatch ~17m; the clients'
    Services error 1-5 minutes in (and the Services that call them)."""
    c = ctx.c
    namespaces = [
        ns
        for ns in c.app_namespaces
        if c.app_workloads("Deployment") and any(w.namespace == ns for w in c.app_workloads("Deployment"))
    ]
    if len(namespaces) < 2:
        return None
    chosen = ctx.rng.sample(namespaces, min(len(namespaces), ctx.rng.randint(2, 4)))
    clients: list[WorkloadInfo] = []
    for namespace in chosen:
        candidates = [w for w in c.app_workloads("Deployment") if w.namespace == namespace]
        clients += ctx.rng.sample(candidates, min(len(candidates), ctx.rng.randint(1, 3)))
    heal = ctx.maybe_heal(t0, 0.5, 25, 60)
    affected: dict[str, list[tuple[str, str, str]]] = {}
    for workload in clients:
        affected.setdefault(workload.namespace, []).extend(
            (p.name, "Deployment", workload.name) for p in workload.pods
        )
    coredns = [p.name for p in c.coredns.pods]
    specs = sc.coredns_crash(
        coredns,
        affected,
        t0,
        heal,
        c.label,
        total_pods=len(coredns),
        ksm_instance=c.ksm_instance,
        external_labels=EXTERNAL,
    )
    # A crash-looping pod is not ready either (scenarios.coredns_crash leaves this out).
    for pod in coredns:
        labels = {**ctx.base, "namespace": "kube-system", "pod": pod, "job": "kube-state-metrics"}
        _add(
            specs,
            ctx.alert(
                "KubePodNotReady",
                labels,
                t0 + sc.SCRAPE_DETECT + minutes(15),
                heal + sc.RECOVERY_PODS if heal else None,
            ),
        )
    services = [c.services[w.key] for w in clients if w.key in c.services]
    for service in list(services):
        services += [d for d in c.dependents(service.key) if d not in services]
    specs += ctx.app_alerts(services, t0, heal)

    def is_root(spec: AlertSpec) -> bool:
        labels = spec.labels
        return (
            labels["alertname"] == "CoreDNSDown"
            or labels.get("job") == "kube-dns"
            or (
                labels.get("namespace") == "kube-system"
                and (labels.get("pod", "") in coredns or labels.get("deployment") == "coredns")
            )
        )

    roots, symptoms = _split(specs, is_root)
    touched = {"dns", "workload:kube-system/coredns", "job:kube-dns"}
    # Cluster DNS down can break every workload that resolves names, not only those that
    # happen to alert: no other fault of the world may fail one of them, or the truth would
    # be undecidable (a crash-looping client could be either fault's).
    touched |= {f"workload:{w.namespace}/{w.name}" for w in c.app_workloads()}
    touched |= {f"service:{s.namespace}/{s.name}" for s in c.services.values()}
    back = f", fixed after {_mins(heal - t0)}" if heal else ""
    summary = f"CoreDNS crash-loops; {len(clients)} client workloads in {len(chosen)} namespaces fail{back}"
    return Fault(
        "dns_down", c.entity("dns", "cluster-dns"), True, t0, heal, summary, roots, symptoms, touched
    )


# --- a bad rollout, a full volume, a full node disk ----------------------------------------------


def bad_rollout(ctx: Ctx, t0: datetime) -> Fault | None:
    """One Deployment's pods crash-loop: a new version that starts, serves errors and crashes
    (the rollout completes, every replica is new: pod names the topology has never seen), or a
    configuration change that makes the existing pods crash at start. Its Service errors first
    (1-5 min), then the Services calling it; KubePodCrashLooping ~16m; the Deployment's mismatch
    ~16m (no rollout) or, with RolloutStuck, ~27m (`changes(updated[10m]) == 0` and the 600s
    progress deadline first). Sometimes rolled back after 25-50 minutes."""
    c = ctx.c
    candidates = [w for w in c.app_workloads("Deployment") if w.key in c.services]
    if not candidates:
        return None
    workload = ctx.rng.choice(candidates)
    heal = ctx.maybe_heal(t0, 0.5, 25, 50)
    rollout = ctx.rng.random() < 0.6
    crash_clears = heal + sc.CRASHLOOP_CLEARS if heal else None
    pods_clear = heal + sc.RECOVERY_PODS if heal else None
    roots: list[AlertSpec] = []
    container = workload.pods[0].container if workload.pods else workload.name
    if rollout:
        new_rs = f"{workload.name}-{_suffix(ctx.rng, 10)}"
        names = [f"{new_rs}-{_suffix(ctx.rng, 5)}" for _ in range(workload.replicas)]
        stalled = t0 + minutes(2)  # the last new pod created; no progress after that
        mismatch_at = stalled + minutes(10) + minutes(15)
        labels = ctx.ksm(
            namespace=workload.namespace,
            deployment=workload.name,
            condition="Progressing",
            status="false",
            reason="ProgressDeadlineExceeded",
        )
        _add(
            roots,
            ctx.alert("KubeDeploymentRolloutStuck", labels, mismatch_at, pods_clear, severity="warning"),
        )
    else:
        names = [p.name for p in workload.pods]
        mismatch_at = t0 + sc.CRASHLOOP_VISIBLE + minutes(15)
    for index, pod in enumerate(names):
        uid = _uuid(ctx.rng) if rollout else sc.pod_uid(workload.namespace, pod, c.label)
        labels = {
            **ctx.base,
            **sc.ksm_labels(c.ksm_instance, own_container=True),
            "namespace": workload.namespace,
            "pod": pod,
            "uid": uid,
            "container": container,
            "reason": "CrashLoopBackOff",
        }
        created = t0 + seconds(ctx.uniform(0, 90) if rollout else index)
        _add(
            roots,
            ctx.alert(
                "KubePodCrashLooping", labels, created + sc.CRASHLOOP_VISIBLE + minutes(15), crash_clears
            ),
        )
        if not rollout:  # crashing at start: never ready for 15m
            labels = {**ctx.base, "namespace": workload.namespace, "pod": pod, "job": "kube-state-metrics"}
            _add(
                roots,
                ctx.alert("KubePodNotReady", labels, created + sc.SCRAPE_DETECT + minutes(15), pods_clear),
            )
    labels = ctx.ksm(namespace=workload.namespace, deployment=workload.name)
    _add(roots, ctx.alert("KubeDeploymentReplicasMismatch", labels, mismatch_at, pods_clear))
    service = c.services[workload.key]
    symptoms = ctx.app_alerts([service], t0, heal)
    dependents = c.dependents(service.key)
    symptoms += ctx.app_alerts(dependents, t0, heal, delay=(1.5, 6))
    if service.scraped:
        _add(
            symptoms,
            ctx.target_down(
                service.name,
                service.namespace,
                service.name,
                t0 + sc.TARGET_DOWN_AT,
                heal + sc.RECOVERY_SCRAPE if heal else None,
                100,
            ),
        )
    touched = {
        f"workload:{workload.namespace}/{workload.name}",
        f"service:{service.namespace}/{service.name}",
    }
    touched |= {f"service:{s.namespace}/{s.name}" for s in dependents}
    touched |= _touched_by_pods([p for s in dependents for p in s.pods], ctx)  # callers fail with it
    # A node fault where its pods run would explain them as well as the rollout does.
    touched |= {f"node:{p.node}" for p in workload.pods}
    how = "a new version crash-loops" if rollout else "a config change makes its pods crash at start"
    back = f", rolled back after {_mins(heal - t0)}" if heal else ""
    summary = f"Deployment {workload.namespace}/{workload.name} ({workload.replicas} replicas): {how}{back}"
    root = c.entity("deployment", workload.name, workload.namespace)
    return Fault("bad_rollout", root, True, t0, heal, summary, roots, symptoms, touched)


def service_fault(ctx: Ctx, t0: datetime) -> Fault | None:
    """An application fault behind one Service that Kubernetes does not see: a bad feature flag,
    an HTTP abort, a partition in front of it. No pod crashes, restarts or turns unready. The
    Services calling it, directly or through others, alert 1.5-6 minutes later; its own error or
    latency alert fires 1-5 minutes in a third of the worlds, a starvation alert
    (`NoRequestsReceived`: a partition cuts it off from its callers) in one in seven, and in
    the other half nothing instruments what fails (an aborted request its server never logs).
    In half, a recorded change starts it 0-3 minutes before: its Deployment rolled out, or the
    ConfigMap its pods mount edited. One in four is undone within 5-15 minutes, before anything
    holds long enough to page."""
    c = ctx.c
    called = sorted({target for targets in c.depends_on.values() for target in targets})
    candidates = [c.services[k] for k in called if k in c.services]
    if not candidates:
        return None
    service = ctx.rng.choice(candidates)
    heal = t0 + minutes(ctx.uniform(5, 15)) if ctx.rng.random() < 0.25 else None
    own = ctx.rng.random()
    roots: list[AlertSpec] = []
    if own < 0.35:  # it fails its requests and says so
        roots = ctx.app_alerts([service], t0, heal)
    elif own < 0.5:  # cut off from its callers: it says it receives nothing
        roots = ctx.app_alerts([service], t0, heal, kind=STARVATION_ALERT)
    dependents = c.dependents(service.key)
    symptoms = ctx.app_alerts(dependents, t0, heal, delay=(1.5, 6))
    change = None
    workload = service.workload
    if workload is not None and ctx.rng.random() < 0.5:
        at = format_time(t0 - minutes(ctx.uniform(0, 3)))
        if workload.kind == "Deployment" and ctx.rng.random() < 0.5:
            entity = c.entity("deployment", workload.name, workload.namespace)
            change = {"entity": entity, "at": at, "what": "rolled out (new image)"}
        else:
            entity = c.entity("configmap", f"{workload.name}-config", workload.namespace)
            change = {"entity": entity, "at": at, "what": "edited (new resource version)"}
    touched = {f"service:{s.namespace}/{s.name}" for s in [service, *dependents]}
    touched |= _touched_by_pods([p for s in [service, *dependents] for p in s.pods], ctx)
    # Whatever else the callers call would explain their errors as well: a node or a rollout
    # under it makes the truth undecidable.
    touched |= {f"service:{ns}/{name}" for s in dependents for ns, name in c.depends_on.get(s.key, [])}
    if workload is not None:
        touched.add(f"workload:{workload.namespace}/{workload.name}")
    how = "it raises no alert of its own"
    if roots:
        how = "it says it receives no requests" if own >= 0.35 else "its own alert fires"
    started = ""
    if change:
        kind, _, namespace, name = change["entity"].split("/")
        started = f", started by a change to {kind} {namespace}/{name}"
    undone = f", undone after {_mins(heal - t0)}" if heal else ""
    summary = (
        f"Service {service.namespace}/{service.name} fails its {len(dependents)} caller(s)' requests; "
        f"{how}{started}{undone}"
    )
    root = c.service_entity(service.key)
    fault = Fault("service_fault", root, heal is None, t0, heal, summary, roots, symptoms, touched)
    fault.change = change
    return fault


def pvc_full(ctx: Ctx, t0: datetime) -> Fault | None:
    """A datastore's volume crosses 97% used at t0 (KubePersistentVolumeFillingUp critical,
    for: 1m, from the kubelet's volume stats: it carries the mounting node's kubelet target
    labels) and is full 2-8 minutes later: writes fail, the pod turns not ready
    (KubePodNotReady +15m, the StatefulSet's mismatch +15m30s) and its Service errors, then the
    Services calling it. Sometimes the volume is expanded after 30-60 minutes."""
    c = ctx.c
    candidates = [
        w for w in c.app_workloads("StatefulSet") if w.pods and w.pods[0].claim and w.key in c.services
    ]
    if not candidates:
        return None
    workload = ctx.rng.choice(candidates)
    pod = workload.pods[0]
    full = t0 + minutes(ctx.uniform(2, 8))
    heal = ctx.maybe_heal(t0, 0.5, 30, 60)
    if heal is not None and heal < full + minutes(20):
        heal = full + minutes(20)
    node = c.nodes[pod.node]
    labels = {
        **ctx.base,
        **sc.kubelet_labels(node.name, node.ip),
        "namespace": pod.namespace,
        "persistentvolumeclaim": pod.claim,
    }
    value = f"{ctx.uniform(0.5, 2.9):.3g}"
    roots: list[AlertSpec] = []
    fires = t0 + sc.SCRAPE_DETECT + FOR[("KubePersistentVolumeFillingUp", "critical")]
    _add(
        roots,
        ctx.alert(
            "KubePersistentVolumeFillingUp",
            labels,
            fires,
            heal + sc.RECOVERY_SCRAPE if heal else None,
            severity="critical",
            value=value,
        ),
    )
    pods_clear = heal + sc.RECOVERY_PODS if heal else None
    symptoms: list[AlertSpec] = []
    labels = {**ctx.base, "namespace": pod.namespace, "pod": pod.name, "job": "kube-state-metrics"}
    _add(symptoms, ctx.alert("KubePodNotReady", labels, full + minutes(15), pods_clear))
    labels = ctx.ksm(namespace=pod.namespace, statefulset=workload.name)
    _add(
        symptoms,
        ctx.alert(
            "KubeStatefulSetReplicasMismatch",
            labels,
            full + minutes(15.5),
            pods_clear + sc.SCRAPE_DETECT if pods_clear else None,
        ),
    )
    service = c.services[workload.key]
    dependents = c.dependents(service.key)
    symptoms += ctx.app_alerts([service], full, heal)
    symptoms += ctx.app_alerts(dependents, full, heal, delay=(1.5, 6))
    touched = {f"workload:{workload.namespace}/{workload.name}", f"pvc:{pod.namespace}/{pod.claim}"}
    touched |= {f"service:{s.namespace}/{s.name}" for s in [service, *dependents]}
    touched |= _touched_by_pods([p for s in dependents for p in s.pods], ctx)  # callers fail with it
    back = f", expanded after {_mins(heal - t0)}" if heal else ""
    summary = f"volume {pod.claim} of {workload.datastore} {pod.namespace}/{pod.name} fills{back}"
    root = c.entity("pvc", pod.claim, pod.namespace)
    return Fault("pvc_full", root, True, t0, heal, summary, roots, symptoms, touched)


def node_disk_full(ctx: Ctx, t0: datetime) -> Fault | None:
    """A worker's root filesystem fills (a runaway host log). At t0 it crosses the kubelet's hard
    eviction threshold (nodefs.available < 10%): DiskPressure at once, KubeNodeEviction (info,
    for: 0s) while it evicts, KubeNodePressure (info) after 10m; pods that stay and cannot
    restart (no space for their containers) turn not ready, KubePodNotReady +15m; the disk
    crosses 5% then 3% free a few minutes later and NodeFilesystemAlmostOutOfSpace warning then
    critical fire 30m after that (the root alert that pages, long after its symptoms)."""
    c = ctx.c
    candidates = [n for n in _eligible_workers(ctx) if _stuck_candidates(c.pods_by_node[n])]
    if not candidates:
        return None
    node = ctx.rng.choice(candidates)
    heal = ctx.maybe_heal(t0, 0.4, 50, 75)
    info = c.nodes[node]
    clears = heal + sc.RECOVERY_SCRAPE if heal else None
    exporter = next(p.name for p in c.pods_by_node[node] if p.workload == "node-exporter")
    device = {"aws": "/dev/nvme0n1p1", "gce": "/dev/sda1", "azure": "/dev/sda1", "metal": "/dev/md0"}[
        c.platform
    ]
    fs = {"device": device, "fstype": ctx.rng.choice(("ext4", "xfs")), "mountpoint": "/"}
    roots: list[AlertSpec] = []
    labels = {**ctx.base, "node": node, "eviction_signal": "nodefs.available", "instance": f"{info.ip}:10250"}
    evicting_until = t0 + minutes(ctx.uniform(5, 8))
    _add(
        roots,
        ctx.alert(
            "KubeNodeEviction",
            labels,
            t0 + seconds(ctx.uniform(30, 60)),
            evicting_until + minutes(15),
            severity="info",
        ),
    )
    labels = ctx.ksm(node=node, condition="DiskPressure", status="true")
    _add(
        roots,
        ctx.alert(
            "KubeNodePressure",
            labels,
            t0 + seconds(10) + minutes(10) + sc.SCRAPE_DETECT,
            clears,
            severity="info",
        ),
    )
    below5 = t0 + minutes(ctx.uniform(3, 8))
    below3 = below5 + minutes(ctx.uniform(1, 4))
    exporter_labels = {**ctx.base, **sc.node_exporter_labels(node, exporter), **fs}
    value = f"{ctx.uniform(0.5, 2.9):.3g}"
    for severity, crossed in (("warning", below5), ("critical", below3)):
        _add(
            roots,
            ctx.alert(
                "NodeFilesystemAlmostOutOfSpace",
                exporter_labels,
                crossed + minutes(30),
                clears,
                severity=severity,
                value=value,
            ),
        )
    stuck = ctx.rng.sample(
        _stuck_candidates(c.pods_by_node[node]),
        min(3, ctx.rng.randint(1, 3), len(_stuck_candidates(c.pods_by_node[node]))),
    )
    symptoms: list[AlertSpec] = []
    for pod in stuck:
        labels = {**ctx.base, "namespace": pod.namespace, "pod": pod.name, "job": "kube-state-metrics"}
        at = t0 + minutes(ctx.uniform(2, 5)) + minutes(15)
        _add(symptoms, ctx.alert("KubePodNotReady", labels, at, heal + sc.RECOVERY_PODS if heal else None))
    # Any pod of the node may be evicted or fail to write: what runs there is this fault's.
    touched = {f"node:{node}"} | _touched_by_pods(c.pods_by_node[node], ctx)
    back = f", cleaned up after {_mins(heal - t0)}" if heal else ""
    summary = f"root filesystem of {node} fills; {len(stuck)} pods cannot restart{back}"
    return Fault("node_disk_full", c.entity("node", node), True, t0, heal, summary, roots, symptoms, touched)


def _stuck_candidates(pods: list[PodInfo]) -> list[PodInfo]:
    return [
        p for p in pods if p.workload_kind in ("Deployment", "StatefulSet") and p.namespace != "monitoring"
    ]


# --- etcd --------------------------------------------------------------------------------------


def etcd_quorum(ctx: Ctx, t0: datetime) -> Fault | None:
    """Two of three etcd members stop answering (self-hosted control planes only; etcd scraped by
    kube-prometheus' static-etcd addon, `job="etcd"`, no `pod`). etcdNoLeader on the survivor
    (for: 1m) and etcdInsufficientMembers (3m) first, TargetDown{job="etcd"} ~10m30s,
    etcdMembersDown 20m (reference §(c).4). The apiserver fails its requests:
    KubeAPIErrorBudgetBurn long=1h (2m) after the 1h error ratio passes 14.4x the budget,
    long=6h (15m) after the 6h ratio passes 6x; each resolves only when its short window (5m,
    30m) has cleared after the heal. kube-state-metrics' list/watch calls fail (15m). The
    controller manager and scheduler lose their leases and crash-loop: their targets go down
    (TargetDown; KubeControllerManagerDown is absent()-based and does not fire while the target
    is still discovered, reference §(c).3/5). Sometimes healed after 20-45 minutes."""
    c = ctx.c
    if c.managed or len(c.control_plane) < 3:
        return None
    survivor = ctx.rng.choice(c.control_plane)
    heal = ctx.maybe_heal(t0, 0.6, 20, 45)
    clears = heal + sc.RECOVERY_SCRAPE if heal else None
    etcd = {**ctx.base, "job": "etcd", "namespace": "kube-system", "service": "etcd"}
    roots: list[AlertSpec] = []
    labels = {**etcd, "instance": f"{c.nodes[survivor].ip}:2379", "endpoint": "metrics"}
    _add(
        roots,
        ctx.alert("etcdNoLeader", labels, t0 + sc.SCRAPE_DETECT + minutes(1), clears, severity="critical"),
    )
    _add(
        roots,
        ctx.alert(
            "etcdInsufficientMembers",
            {**etcd, "endpoint": "metrics"},
            t0 + sc.SCRAPE_DETECT + minutes(3),
            clears,
            severity="critical",
        ),
    )
    _add(roots, ctx.target_down("etcd", "kube-system", "etcd", t0 + sc.TARGET_DOWN_AT, clears, 66.67))
    _add(
        roots,
        ctx.alert(
            "etcdMembersDown", dict(etcd), t0 + sc.SCRAPE_DETECT + minutes(20), clears, severity="warning"
        ),
    )
    symptoms: list[AlertSpec] = []
    error_ratio = ctx.uniform(0.5, 1.0)  # share of apiserver requests failing
    for long, short, factor, window in (("1h", "5m", 14.4, 60), ("6h", "30m", 6.0, 360)):
        # The long window's error ratio passes factor x 1% after factor% of the window.
        crosses = t0 + minutes(factor / 100 * window / error_ratio)
        if heal is not None and crosses >= heal:
            continue  # healed before the long window's ratio got there: it never fires
        short_minutes = float(short[:-1])
        resolves = heal + minutes(ctx.uniform(0.6, 1.0) * short_minutes) if heal else None
        labels = {**ctx.base, "long": long, "short": short}
        _add(
            symptoms,
            ctx.alert(
                "KubeAPIErrorBudgetBurn", labels, crosses + FOR_BURN[long], resolves, severity="critical"
            ),
        )
    ksm_clears = heal + minutes(ctx.uniform(3, 5)) if heal else None
    for name in ("KubeStateMetricsListErrors", "KubeStateMetricsWatchErrors"):
        at = t0 + seconds(ctx.uniform(30, 90)) + minutes(15)
        _add(symptoms, ctx.alert(name, dict(ctx.base), at, ksm_clears, severity="critical"))
    for component in ("kube-controller-manager", "kube-scheduler"):
        if component == "kube-scheduler" and ctx.rng.random() < 0.3:
            continue
        at = t0 + minutes(ctx.uniform(1, 3)) + minutes(10)
        _add(
            symptoms,
            ctx.target_down(
                component,
                "kube-system",
                f"{component}-prometheus-discovery",
                at,
                heal + minutes(1) if heal else None,
                100,
            ),
        )
    touched = {"etcd", "apiserver", "scheduler", "controller-manager", "job:etcd"}
    back = f", restored after {_mins(heal - t0)}" if heal else ""
    summary = f"etcd loses quorum (only the member on {survivor} answers){back}"
    return Fault("etcd_quorum", c.entity("etcd", "etcd"), True, t0, heal, summary, roots, symptoms, touched)


# --- transient trouble that heals ----------------------------------------------------------------


def transient(ctx: Ctx, t0: datetime) -> Fault | None:
    """Trouble that heals within minutes of its alert firing; expected to stay quiet:
    a pod that crash-looped for 15 minutes and stops (KubePodCrashLooping resolves 5.5-8 min
    after firing: max_over_time[5m] keeps it up after the last crash), a Deployment short of
    replicas for 15 minutes that catches up 1-8 minutes after its alert, or a warning
    application alert that resolves 1-8 minutes after firing."""
    c = ctx.c
    deployments = [w for w in c.app_workloads("Deployment") if w.pods]
    variant = ctx.rng.choice(("crashloop", "mismatch", "app"))
    if variant == "app" or not deployments:
        services = c.app_services()
        if not services:
            return None
        service = ctx.rng.choice(services)
        fires = t0 + minutes(ctx.uniform(1, 5))
        spec = ctx.app_alert(service, fires, fires + minutes(ctx.uniform(1, 8)))
        if spec is None:
            return None
        spec = AlertSpec(
            {**spec.labels, "severity": "warning"}, spec.fires_at, spec.resolves_at, spec.annotations
        )
        root = c.entity("service", service.name, service.namespace)
        lasted = _mins(spec.resolves_at - fires)  # type: ignore[operator]
        summary = f"{spec.labels['alertname']} on {service.namespace}/{service.name} for {lasted}"
        touched = {f"service:{service.namespace}/{service.name}"}
        return Fault("transient", root, False, t0, spec.resolves_at, summary, [spec], [], touched)
    workload = ctx.rng.choice(deployments)
    touched = {f"workload:{workload.namespace}/{workload.name}"}
    if variant == "crashloop":
        pod = ctx.rng.choice(workload.pods)
        fires = t0 + sc.CRASHLOOP_VISIBLE + minutes(15)
        resolves = fires + minutes(ctx.uniform(5.5, 8))
        labels = {
            **ctx.base,
            **sc.ksm_labels(c.ksm_instance, own_container=True),
            "namespace": pod.namespace,
            "pod": pod.name,
            "uid": sc.pod_uid(pod.namespace, pod.name, c.label),
            "container": pod.container,
            "reason": "CrashLoopBackOff",
        }
        spec = ctx.alert("KubePodCrashLooping", labels, fires, resolves)
        root = c.entity("pod", pod.name, pod.namespace)
        summary = f"pod {pod.namespace}/{pod.name} crash-loops for 15m, then recovers"
    else:
        fires = t0 + minutes(15) + sc.SCRAPE_DETECT
        resolves = fires + minutes(ctx.uniform(1, 8))
        spec = ctx.alert(
            "KubeDeploymentReplicasMismatch",
            ctx.ksm(namespace=workload.namespace, deployment=workload.name),
            fires,
            resolves,
        )
        root = c.entity("deployment", workload.name, workload.namespace)
        summary = f"Deployment {workload.namespace}/{workload.name} short of replicas, catches up"
    assert spec is not None
    return Fault("transient", root, False, t0, resolves, summary, [spec], [], touched)


def _suffix(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(NAME_ALPHABET) for _ in range(length))


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


def _mins(delta: timedelta) -> str:
    total = int(delta.total_seconds())
    return f"{total // 60}m{total % 60:02d}s"


BUILDERS: dict[str, Callable[[Ctx, datetime], Fault | None]] = {
    "node_down": node_down,
    "zone_down": zone_down,
    "node_blip": node_blip,
    "dns_down": dns_down,
    "bad_rollout": bad_rollout,
    "pvc_full": pvc_full,
    "node_disk_full": node_disk_full,
    "etcd_quorum": etcd_quorum,
    "transient": transient,
    "service_fault": service_fault,
}
KINDS = tuple(BUILDERS)
# Drawn when a caller names no kinds: the Kubernetes faults the worlds were built on. The
# application faults (`service_fault`) are drawn only when asked for, so that adding them left
# every seed's world as it was.
DEFAULT_KINDS = KINDS[: KINDS.index("service_fault")]
# How often each kind is drawn (relative); etcd only where the control plane is visible.
WEIGHTS = {
    "node_down": 2.0,
    "zone_down": 1.0,
    "node_blip": 1.5,
    "dns_down": 1.0,
    "bad_rollout": 1.5,
    "pvc_full": 1.0,
    "node_disk_full": 1.0,
    "etcd_quorum": 0.8,
    "transient": 1.5,
    "service_fault": 1.0,
}
