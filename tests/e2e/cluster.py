"""The project's fake cluster exporter: a Kubernetes cluster a test can break, scraped by a real
Prometheus with the real kube-prometheus rules (tests/e2e/rules.py).

    cluster = E2ECluster(None)                            # no `cluster` label, like stock kube-prometheus
    with Harness() as h:
        exporter = ClusterExporter(h, cluster)            # aiohttp app on the harness' server thread
        prom = exporter.prometheus(rules=catalogue_rules(1 / 90, scale_ranges=True))
        exporter.wait_scraped(prom)
        cluster.stop_node("worker-5"); exporter.wait_scraped(prom)
        exporter.alerts(prom)                             # ALERTS{alertstate="firing"} as label dicts

## The model

`E2ECluster` is a `promharness.TestCluster` (6 workers `worker-0..5` over 2 zones; kube-proxy
on every node; CoreDNS `kube-system/coredns` with 2 pods on worker-0 and worker-1; Deployments
shop/checkout x4, web/frontend x3, db/orders x3 dealt round-robin from worker-2; StatefulSet
shop/postgres (postgres-0 on worker-5, with a PVC)) plus the DaemonSet `monitoring/node-exporter`
(one pod per node) and a control plane that is not a node of the model (kube-apiserver,
kube-scheduler, kube-controller-manager at CONTROL_PLANE_IP, as a kubeadm cluster's discovery
Services expose them). Besides the topology series, `/ksm` serves the status series the rules
read, as KSM v2 prints them: node conditions (Ready, Memory/Disk/PIDPressure), `kube_node_spec_taint`,
pod `kube_pod_status_phase`/`_ready`, container `status_{ready,running,waiting,waiting_reason,
restarts_total}`, and the deployment, statefulset and daemonset status families.
Every mutation bumps `generation` (served as `ksm_harness_generation` on /ksm and
`e2e_harness_generation` on every other endpoint; `ClusterExporter.wait_scraped` waits for it).

## Targets (jobs and target labels as kube-prometheus' ServiceMonitors produce them)

Every target is this exporter's loopback address; its labels (as `up` and every series show
them) and when it answers 500 (so `up` is 0):
- kube-state-metrics (`/ksm`, honor_labels): instance=KSM_INSTANCE (router.sim.scenarios'),
  container=kube-rbac-proxy-main; never down unless put in `failing`.
- node-exporter, one per node (`/node-exporter/<node>`): instance=<node name>,
  namespace=monitoring, service=node-exporter, pod=node-exporter-<id>, container=kube-rbac-proxy,
  endpoint=https; down while the node is stopped.
- kubelet, one per node (`/kubelet/<node>`, honor_labels): instance=<node IP>:10250, node,
  namespace=kube-system, service=kubelet, endpoint=https-metrics, metrics_path=/metrics; down
  while the node is stopped.
- kube-dns, one per CoreDNS pod (`/coredns/<pod>`): instance=<pod IP>:9153, pod,
  namespace=kube-system, service=kube-dns, endpoint=metrics, container=coredns; down while the
  pod crash-loops or its node is stopped.
- apiserver (`/control-plane/apiserver`): instance=CONTROL_PLANE_IP:6443, namespace=default,
  service=kubernetes, endpoint=https. kube-scheduler / kube-controller-manager: instance
  CONTROL_PLANE_IP:10259 / :10257, namespace=kube-system, service=<job>-prometheus-discovery,
  endpoint=https-metrics (kubeadm's discovery Services; no `pod`: the control plane is not
  in the model). Down only when put in `failing`.

A named cluster (`E2ECluster("c1")`) adds `cluster="c1"` to every target and series. Targets
are discovered over HTTP SD (`/sd/<job>`, refreshed every second), so topology changes show;
`scrape_configs(dynamic=False)` gives static_configs instead. Any target can be failed by hand:
`cluster.failing.add((job, name))` (name: the node for node-exporter/kubelet, the pod for
kube-dns, the job itself for the control plane, "" for kube-state-metrics), then `bump()`.

## Breaks (each bumps the generation) and the alerts they raise

With `catalogue_rules(f)`, every `for:` is multiplied by f: the times below are the real `for:`
(15m -> 10s at f=1/90), counted from the first scrape after the break; Watchdog always fires.
The healthy cluster fires Watchdog only (nothing else is even pending).

- `stop_node(node)`: a partition/power-off as the node-lifecycle controller shows it, without its
  grace period (status changes at once): Ready -> Unknown (every condition Unknown), taints
  node.kubernetes.io/unreachable NoSchedule+NoExecute, its pods stay Running but Ready=false
  (endpoints not ready), Deployments/StatefulSets/DaemonSets lose those pods from their
  available/ready counts (no eviction or rescheduling is modelled: a real cluster evicts
  Deployment pods after 300s, so there KubeDeploymentReplicasMismatch usually never fires);
  its kubelet and node-exporter targets (and a CoreDNS pod on it) answer 500. Alerts:
  TargetDown{job,namespace,service} for kubelet and node-exporter (10m; 1 of 6 nodes > 10%),
  KubeletInstanceUnreachable{kubelet target labels} (15m), KubeNodeNotReady{node,condition=Ready,
  status=true}, KubeNodeUnreachable{node,key=node.kubernetes.io/unreachable,effect=NoSchedule},
  KubePodNotReady{namespace,pod,job} for each pod on it, KubeDaemonSetRolloutStuck{namespace,
  daemonset} for kube-proxy and node-exporter, KubeDeploymentReplicasMismatch{namespace,
  deployment} per Deployment with a pod there, KubeStatefulSetReplicasMismatch{namespace,
  statefulset} per StatefulSet with a pod there (all 15m). KSM-sourced alerts also carry
  job=kube-state-metrics, instance=KSM_INSTANCE and container=kube-rbac-proxy-main (or the
  series' own container). `start_node(node)` undoes it.
- `crash_coredns()`: every CoreDNS pod in CrashLoopBackOff (waiting, not ready, restarts rising
  every `restart_every` seconds), kube-dns targets answer 500, coredns Deployment unavailable.
  Alerts: TargetDown{job=kube-dns} (10m), CoreDNSDown with no label but severity (15m),
  KubePodCrashLooping{namespace,pod,uid,container=coredns,reason=CrashLoopBackOff} per pod,
  KubePodNotReady per pod, KubeDeploymentReplicasMismatch{kube-system/coredns} (15m).
  `heal_coredns()` undoes it; KubePodCrashLooping then lasts the rule's max_over_time window
  (5m real; scale it with catalogue_rules(scale_ranges=True)). `crash_pod`/`heal_pod` do the
  same for any pod (its service target, if any, is not failed).
- `fill_disk(node, mountpoint="/")`: node_filesystem_avail_bytes to 1% of size. Alerts:
  NodeFilesystemAlmostOutOfSpace warning (<5%) and critical (<3%), labels {device, fstype,
  mountpoint, instance=<node>, node-exporter target labels} (30m); later
  NodeFilesystemSpaceFillingUp warning and critical (1h: the fall makes predict_linear
  negative). A real kubelet would also set DiskPressure (nodefs < 10%): pass `pressure=True`
  for that (adds KubeNodePressure, info, 10m, and possibly InfoInhibitor). `free_disk(node)`
  undoes it.

Measured with FACTOR 1/90 (tests/e2e/test_cluster_alerts.py, all three breaks at once), seconds
from the break to firing: TargetDown 8-9, KubeletInstanceUnreachable 10, CoreDNSDown 11, the
KSM 15m alerts 11-12, NodeFilesystemAlmostOutOfSpace 21-22, NodeFilesystemSpaceFillingUp 41-42;
after the heals everything but Watchdog resolved within ~4s (scale_ranges=True).

Where this differs from router/sim/scenarios.py (which follows a real cluster's timeline):
- no node-monitor grace period (50s) and no CrashLoopBackOff delay: KSM-side status changes at
  once, so KSM alerts trail the up-based ones by their `for:` difference only;
- no eviction: stop_node adds KubeDeploymentReplicasMismatch for Deployments with a pod there;
- crash_coredns adds KubePodNotReady for the CoreDNS pods (a crash-looping pod is not ready;
  scenarios.coredns_crash leaves it out) and breaks no DNS client (no client KubePodNotReady);
- pods of a stopped node keep phase Running (Ready=false), as during the first 5 minutes of a
  partition; pod UIDs are promharness' (`_uid`), not scenarios.pod_uid's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from router.sim.scenarios import KSM_INSTANCE
from tests.promharness import (
    DEFAULT_APPS,
    EXPOSITION,
    Harness,
    Pod,
    PrometheusProcess,
    Service,
    TestCluster,
    _escape,
    _hash,
    _suffix,
    _uid,
    render,
)

CONTROL_PLANE_IP = "10.0.0.2"
GIB = 1024**3


@dataclass(frozen=True)
class Filesystem:
    mountpoint: str
    device: str
    fstype: str
    size: int
    avail_fraction: float  # healthy share of size available
    files: int


FILESYSTEMS = (
    Filesystem("/", "/dev/nvme0n1p1", "ext4", 100 * GIB, 0.62, 6_553_600),
    Filesystem("/boot/efi", "/dev/nvme0n1p15", "vfat", 104_607_744, 0.94, 0),
)


class E2ECluster(TestCluster):
    """A TestCluster that also renders the status series the alert rules read, and can break."""

    __test__ = False

    def __init__(
        self,
        name: str | None = None,
        *,
        nodes: int = 6,
        zones: int = 2,
        apps: tuple[tuple[str, str, int], ...] = DEFAULT_APPS,
        restart_every: float = 2.0,
    ) -> None:
        super().__init__(name, nodes=nodes, zones=zones, apps=apps)
        self.restart_every = restart_every
        self.stopped: set[str] = set()
        self.crashed: dict[tuple[str, str], float] = {}  # pod -> monotonic time of the crash
        self.restarts: dict[tuple[str, str], int] = {}  # restarts of crash loops that ended
        self.full: dict[tuple[str, str], float] = {}  # (node, mountpoint) -> available fraction
        self.pressure: set[str] = set()  # nodes with DiskPressure=True
        self.failing: set[tuple[str, str]] = set()  # (job, target name) answering 500 by hand
        self.daemonsets.append(("monitoring", "node-exporter"))
        for node in list(self.nodes):
            self.add_pod(
                "monitoring", f"node-exporter-{_suffix('ne/' + node)}", node, "DaemonSet", "node-exporter",
                host=True,
            )  # fmt: skip
        # The Services kube-prometheus scrapes node agents through: node-exporter's selects its
        # DaemonSet's pods; the kubelet's (kept by prometheus-operator) has the nodes as endpoints.
        self.services.append(Service("monitoring", "node-exporter", ("DaemonSet", "node-exporter")))
        self.generation = 1

    # -- queries -----------------------------------------------------------------------------

    def coredns_pods(self) -> list[Pod]:
        return self.pods_of("kube-system", "coredns")

    def node_exporter_pod(self, node: str) -> str:
        with self.lock:
            return self._daemon_pod("node-exporter", node)

    def container_of(self, pod: Pod) -> str:
        """The (single) container of a pod: its workload's name (coredns, kube-proxy, checkout...)."""
        if pod.owner_kind == "ReplicaSet":
            return self.replicasets.get((pod.namespace, pod.owner_name), pod.owner_name)
        return pod.owner_name or pod.name

    def target_up(self, job: str, name: str) -> bool:
        with self.lock:
            return self._target_up(job, name)

    # -- breaks and heals --------------------------------------------------------------------

    def stop_node(self, node: str) -> None:
        """The node stops answering (power off / partition); see the module doc."""
        with self.lock:
            self.nodes[node].ready = False
            self.stopped.add(node)
            self.generation += 1

    def start_node(self, node: str) -> None:
        with self.lock:
            self.nodes[node].ready = True
            self.stopped.discard(node)
            self.generation += 1

    def crash_pod(self, namespace: str, pod: str) -> None:
        with self.lock:
            if (namespace, pod) not in self.pods:
                raise KeyError(f"no pod {namespace}/{pod}")
            self.crashed.setdefault((namespace, pod), time.monotonic())
            self.generation += 1

    def heal_pod(self, namespace: str, pod: str) -> None:
        with self.lock:
            key = (namespace, pod)
            if key in self.crashed:
                self.restarts[key] = self._restarts(key)
                del self.crashed[key]
            self.generation += 1

    def crash_coredns(self) -> list[str]:
        """Every CoreDNS pod crash-loops; returns their names."""
        pods = [p.name for p in self.coredns_pods()]
        for pod in pods:
            self.crash_pod("kube-system", pod)
        return pods

    def heal_coredns(self) -> None:
        for pod in self.coredns_pods():
            self.heal_pod("kube-system", pod.name)

    def fill_disk(
        self, node: str, mountpoint: str = "/", *, avail: float = 0.01, pressure: bool = False
    ) -> None:
        """`avail` (a fraction of size) left on the node's filesystem; `pressure`: DiskPressure=True."""
        if mountpoint not in {fs.mountpoint for fs in FILESYSTEMS}:
            raise KeyError(f"no filesystem mounted on {mountpoint}")
        with self.lock:
            if node not in self.nodes:
                raise KeyError(f"no node {node}")
            self.full[(node, mountpoint)] = avail
            if pressure:
                self.pressure.add(node)
            self.generation += 1

    def free_disk(self, node: str, mountpoint: str | None = None) -> None:
        """Back to the healthy fill (every mountpoint of the node unless one is given)."""
        with self.lock:
            for key in list(self.full):
                if key[0] == node and mountpoint in (None, key[1]):
                    del self.full[key]
            self.pressure.discard(node)
            self.generation += 1

    # -- rendering ---------------------------------------------------------------------------

    def _restarts(self, key: tuple[str, str]) -> int:
        base = self.restarts.get(key, 0)
        since = self.crashed.get(key)
        if since is None:
            return base
        return base + 1 + math.floor((time.monotonic() - since) / self.restart_every)

    def _pod_ready(self, pod: Pod) -> bool:
        return pod.node not in self.stopped and (pod.namespace, pod.name) not in self.crashed

    def _daemon_pod(self, daemonset: str, node: str) -> str:
        for pod in self.pods.values():
            if pod.owner_kind == "DaemonSet" and pod.owner_name == daemonset and pod.node == node:
                return pod.name
        raise KeyError(f"no {daemonset} pod on {node}")

    def _target_up(self, job: str, name: str) -> bool:
        if (job, name) in self.failing:
            return False
        if job in ("node-exporter", "kubelet"):
            return name in self.nodes and name not in self.stopped
        if job == "kube-dns":
            pod = self.pods.get(("kube-system", name))
            return pod is not None and self._pod_ready(pod)
        return True

    def _emit_into(self, out: dict[str, list[str]]) -> Any:
        def emit(family: str, sample: float | int, /, **labels: str) -> None:
            if self.name is not None:
                labels["cluster"] = self.name
            body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            out.setdefault(family, []).append(f"{family}{{{body}}} {_value(sample)}")

        return emit

    def _families(self) -> dict[str, list[str]]:
        out = super()._families()
        emit = self._emit_into(out)
        # Crashed pods are not-ready endpoints too (the base knows node readiness only).
        crashed = {name for (_, name) in self.crashed}
        out["kube_endpointslice_endpoints"] = [
            line.replace('ready="true"', 'ready="false"')
            if any(f'targetref_name="{p}"' in line for p in crashed)
            else line
            for line in out.get("kube_endpointslice_endpoints", [])
        ]
        self._kubelet_service(emit)
        for node in self.nodes.values():
            stopped = node.name in self.stopped
            for condition in ("MemoryPressure", "DiskPressure", "PIDPressure"):
                current = "unknown" if stopped else "false"
                if condition == "DiskPressure" and node.name in self.pressure and not stopped:
                    current = "true"
                for status in ("true", "false", "unknown"):
                    emit(
                        "kube_node_status_condition",
                        int(status == current),
                        node=node.name,
                        condition=condition,
                        status=status,
                    )
            if stopped:
                for effect in ("NoSchedule", "NoExecute"):
                    emit(
                        "kube_node_spec_taint",
                        1,
                        node=node.name,
                        key="node.kubernetes.io/unreachable",
                        value="",
                        effect=effect,
                    )
        for key, pod in self.pods.items():
            common = {"namespace": pod.namespace, "pod": pod.name, "uid": _uid(self.name, pod)}
            ready = self._pod_ready(pod)
            crashing = key in self.crashed
            for status in ("true", "false", "unknown"):
                emit("kube_pod_status_ready", int(status == str(ready).lower()), **common, condition=status)
            container = {**common, "container": self.container_of(pod)}
            emit("kube_pod_container_status_ready", int(not crashing), **container)
            emit("kube_pod_container_status_running", int(not crashing), **container)
            emit("kube_pod_container_status_waiting", int(crashing), **container)
            if crashing:
                emit("kube_pod_container_status_waiting_reason", 1, **container, reason="CrashLoopBackOff")
            emit("kube_pod_container_status_restarts_total", self._restarts(key), **container)
        self._workloads(emit)
        return out

    def _kubelet_service(self, emit: Any) -> None:
        """`kube-system/kubelet`: prometheus-operator's Service (and EndpointSlice) of every
        node's kubelet, endpoints targeting Nodes and always ready (the operator writes them)."""
        uid = _hash(f"{self.name}/kube-system/kubelet")[:36]
        service = {"namespace": "kube-system", "service": "kubelet", "uid": uid, "cluster_ip": "None"}
        unset = dict.fromkeys(("external_name", "load_balancer_ip", "external_traffic_policy"), "")
        emit("kube_service_info", 1, **service, **unset)
        slice_labels = {"endpointslice": "kubelet-7hq2d", "namespace": "kube-system"}
        emit("kube_endpointslice_labels", 1, **slice_labels, label_kubernetes_io_service_name="kubelet")
        for node in self.nodes.values():
            emit(
                "kube_endpointslice_endpoints",
                1,
                endpointslice="kubelet-7hq2d",
                namespace="kube-system",
                ready="true",
                serving="false",
                hostname="",
                terminating="",
                targetref_kind="Node",
                targetref_name=node.name,
                targetref_namespace="",
                endpoint_nodename=node.name,
                endpoint_zone="",
                address=node.ip,
            )

    def _owned(self, namespace: str, kind: str, name: str) -> tuple[list[Pod], int]:
        """The pods a StatefulSet or DaemonSet owns directly, and how many of them are ready."""
        pods = [
            p
            for p in self.pods.values()
            if p.namespace == namespace and (p.owner_kind, p.owner_name) == (kind, name)
        ]
        return pods, sum(1 for p in pods if self._pod_ready(p))

    def _workloads(self, emit: Any) -> None:
        for namespace, name in self.deployments:
            pods = [
                p for p in self.pods.values() if self.replicasets.get((p.namespace, p.owner_name)) == name
            ]
            spec = len(pods)
            available = sum(1 for p in pods if self._pod_ready(p))
            ids = {"namespace": namespace, "deployment": name}
            emit("kube_deployment_status_replicas", spec, **ids)
            emit("kube_deployment_status_replicas_available", available, **ids)
            emit("kube_deployment_status_replicas_unavailable", spec - available, **ids)
            emit("kube_deployment_status_replicas_ready", available, **ids)
            emit("kube_deployment_status_replicas_updated", spec, **ids)
            emit("kube_deployment_status_observed_generation", 1, **ids)
            emit("kube_deployment_metadata_generation", 1, **ids)
            # Available: at least spec - maxUnavailable (25%, rounded down) pods available.
            is_available = available >= spec - math.floor(spec * 0.25)
            conditions = (
                ("Available", "MinimumReplicasAvailable" if is_available else "MinimumReplicasUnavailable",
                 is_available),
                ("Progressing", "NewReplicaSetAvailable", True),
            )  # fmt: skip
            for condition, reason, value in conditions:
                for status in ("true", "false", "unknown"):
                    emit(
                        "kube_deployment_status_condition",
                        int(status == str(value).lower()),
                        **ids,
                        reason=reason,
                        condition=condition,
                        status=status,
                    )
        for namespace, name in self.statefulsets:
            pods, ready = self._owned(namespace, "StatefulSet", name)
            ids = {"namespace": namespace, "statefulset": name}
            revision = f"{name}-{_suffix(f'{namespace}/{name}').lower()}"
            emit("kube_statefulset_status_replicas", len(pods), **ids)
            emit("kube_statefulset_status_replicas_available", ready, **ids)
            emit("kube_statefulset_status_replicas_current", len(pods), **ids)
            emit("kube_statefulset_status_replicas_ready", ready, **ids)
            emit("kube_statefulset_status_replicas_updated", len(pods), **ids)
            emit("kube_statefulset_status_observed_generation", 1, **ids)
            emit("kube_statefulset_metadata_generation", 1, **ids)
            emit("kube_statefulset_status_current_revision", 1, **ids, revision=revision)
            emit("kube_statefulset_status_update_revision", 1, **ids, revision=revision)
        for namespace, name in self.daemonsets:
            pods, ready = self._owned(namespace, "DaemonSet", name)
            ids = {"namespace": namespace, "daemonset": name}
            emit("kube_daemonset_status_current_number_scheduled", len(pods), **ids)
            emit("kube_daemonset_status_number_available", ready, **ids)
            emit("kube_daemonset_status_number_ready", ready, **ids)
            emit("kube_daemonset_status_number_unavailable", len(self.nodes) - ready, **ids)
            emit("kube_daemonset_status_number_misscheduled", 0, **ids)
            emit("kube_daemonset_status_updated_number_scheduled", len(pods), **ids)
            emit("kube_daemonset_status_observed_generation", 1, **ids)
            emit("kube_daemonset_metadata_generation", 1, **ids)

    # -- the other endpoints' text -------------------------------------------------------------

    def node_exporter_text(self, node: str) -> str:
        with self.lock:
            out: dict[str, list[str]] = {}
            emit = self._emit_into(out)
            for fs in FILESYSTEMS:
                share = self.full.get((node, fs.mountpoint), fs.avail_fraction)
                avail = int(fs.size * share)
                ids = {"device": fs.device, "fstype": fs.fstype, "mountpoint": fs.mountpoint}
                emit("node_filesystem_avail_bytes", avail, **ids)
                emit("node_filesystem_free_bytes", avail + int(fs.size * 0.05 * (fs.fstype == "ext4")), **ids)
                emit("node_filesystem_size_bytes", fs.size, **ids)
                emit("node_filesystem_files", fs.files, **ids)
                emit("node_filesystem_files_free", int(fs.files * 0.93), **ids)
                emit("node_filesystem_readonly", 0, **ids)
                emit("node_filesystem_device_error", 0, **ids)
            emit(
                "node_uname_info",
                1,
                domainname="(none)",
                machine="x86_64",
                nodename=node,
                release="6.8.0-45-generic",
                sysname="Linux",
                version="#45-Ubuntu SMP PREEMPT_DYNAMIC",
            )
            return _text(out, self.generation)

    def kubelet_text(self, node: str) -> str:
        with self.lock:
            out: dict[str, list[str]] = {}
            self._emit_into(out)("kubelet_node_name", 1, node=node)
            return _text(out, self.generation)

    def coredns_text(self, pod: str) -> str:
        with self.lock:
            out: dict[str, list[str]] = {}
            emit = self._emit_into(out)
            emit("coredns_build_info", 1, goversion="go1.22.5", revision="a6338e9", version="1.11.3")
            return _text(out, self.generation)

    def plain_text(self) -> str:
        with self.lock:
            return _text({}, self.generation)


def _value(value: float | int) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _text(families: dict[str, list[str]], generation: int) -> str:
    parts = []
    for family, lines in families.items():
        parts.append(f"# HELP {family} {family}.\n# TYPE {family} gauge\n" + "\n".join(lines) + "\n")
    parts.append(
        "# HELP e2e_harness_generation The cluster generation this answer shows.\n"
        f"# TYPE e2e_harness_generation gauge\ne2e_harness_generation {generation}\n"
    )
    return "".join(parts)


# ---------------------------------------------------------------------------- the HTTP side

CONTROL_PLANE = {
    "apiserver": {"instance": f"{CONTROL_PLANE_IP}:6443", "namespace": "default", "service": "kubernetes",
                  "endpoint": "https"},
    "kube-scheduler": {"instance": f"{CONTROL_PLANE_IP}:10259", "namespace": "kube-system",
                       "service": "kube-scheduler-prometheus-discovery", "endpoint": "https-metrics"},
    "kube-controller-manager": {"instance": f"{CONTROL_PLANE_IP}:10257", "namespace": "kube-system",
                                "service": "kube-controller-manager-prometheus-discovery",
                                "endpoint": "https-metrics"},
}  # fmt: skip
JOBS = ("kube-state-metrics", "node-exporter", "kubelet", "kube-dns", *CONTROL_PLANE)
HONOR_LABELS = {"kube-state-metrics", "kubelet"}


class ClusterExporter:
    """Serves an E2ECluster on a loopback port of the harness' server thread:
    `/ksm`, `/node-exporter/<node>`, `/kubelet/<node>`, `/coredns/<pod>`, `/control-plane/<job>`
    (500 while the cluster says that target is down) and `/sd/<job>` (HTTP service discovery)."""

    def __init__(self, harness: Harness, cluster: E2ECluster, *, ksm_instance: str = KSM_INSTANCE) -> None:
        self.harness = harness
        self.cluster = cluster
        self.ksm_instance = ksm_instance
        self.scrapes: dict[str, int] = {}
        self.port = harness._serve(self.app())

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ksm", self._ksm)
        app.router.add_get("/node-exporter/{name}", self._node_exporter)
        app.router.add_get("/kubelet/{name}", self._kubelet)
        app.router.add_get("/coredns/{name}", self._coredns)
        app.router.add_get("/control-plane/{name}", self._control_plane)
        app.router.add_get("/sd/{job}", self._sd)
        return app

    # -- handlers ------------------------------------------------------------------------------

    def _answer(self, job: str, name: str, render: Any) -> web.Response:
        self.scrapes[job] = self.scrapes.get(job, 0) + 1
        if not self.cluster.target_up(job, name):
            return web.Response(status=500, text=f"{job}/{name} is down")
        return web.Response(body=render().encode(), headers={"Content-Type": EXPOSITION})

    async def _ksm(self, request: web.Request) -> web.Response:
        return self._answer("kube-state-metrics", "", lambda: render([self.cluster]))

    async def _node_exporter(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return self._answer("node-exporter", name, lambda: self.cluster.node_exporter_text(name))

    async def _kubelet(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return self._answer("kubelet", name, lambda: self.cluster.kubelet_text(name))

    async def _coredns(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return self._answer("kube-dns", name, lambda: self.cluster.coredns_text(name))

    async def _control_plane(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return self._answer(name, name, self.cluster.plain_text)

    async def _sd(self, request: web.Request) -> web.Response:
        job = request.match_info["job"]
        if job not in JOBS:
            return web.Response(status=404, text=f"no job {job}")
        return web.json_response(self.targets()[job])

    # -- scrape configuration --------------------------------------------------------------------

    def targets(self) -> dict[str, list[dict[str, Any]]]:
        """job -> target groups ({targets, labels}) of the cluster as it is now."""
        cluster = self.cluster
        base = {"cluster": cluster.name} if cluster.name is not None else {}
        groups: dict[str, list[dict[str, Any]]] = {job: [] for job in JOBS}

        def add(job: str, path: str, **labels: str) -> None:
            groups[job].append(
                {"targets": [self.address], "labels": {"__metrics_path__": path, **base, **labels}}
            )

        add("kube-state-metrics", "/ksm", instance=self.ksm_instance, container="kube-rbac-proxy-main")
        with cluster.lock:
            nodes = list(cluster.nodes.values())
            exporters = {n.name: cluster._daemon_pod("node-exporter", n.name) for n in nodes}
            coredns = [
                p
                for p in cluster.pods.values()
                if cluster.replicasets.get((p.namespace, p.owner_name)) == "coredns"
            ]
        for node in nodes:
            add(
                "node-exporter",
                f"/node-exporter/{node.name}",
                instance=node.name,
                namespace="monitoring",
                service="node-exporter",
                pod=exporters[node.name],
                container="kube-rbac-proxy",
                endpoint="https",
            )
        for node in nodes:
            add(
                "kubelet",
                f"/kubelet/{node.name}",
                instance=f"{node.ip}:10250",
                node=node.name,
                namespace="kube-system",
                service="kubelet",
                endpoint="https-metrics",
                metrics_path="/metrics",
            )
        for pod in coredns:
            add(
                "kube-dns",
                f"/coredns/{pod.name}",
                instance=f"{pod.ip}:9153",
                pod=pod.name,
                namespace="kube-system",
                service="kube-dns",
                endpoint="metrics",
                container="coredns",
            )
        for job, labels in CONTROL_PLANE.items():
            add(job, f"/control-plane/{job}", **labels)
        return groups

    def scrape_configs(self, *, dynamic: bool = True, interval: str = "1s") -> list[dict[str, Any]]:
        """Prometheus scrape_configs, one per job, scraping every `interval`. `dynamic`: targets
        from this exporter's HTTP SD (refreshed every second), else a static snapshot."""
        configs = []
        snapshot = None if dynamic else self.targets()
        for job in JOBS:
            config: dict[str, Any] = {
                "job_name": job,
                "scrape_interval": interval,
                "scrape_timeout": interval,
            }
            if job in HONOR_LABELS:
                config["honor_labels"] = True
            if snapshot is None:
                config["http_sd_configs"] = [{"url": f"{self.url}/sd/{job}", "refresh_interval": "1s"}]
            else:
                config["static_configs"] = snapshot[job]
            configs.append(config)
        return configs

    def prometheus_config(self, *, external_labels: dict[str, str] | None = None) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
                **({"external_labels": external_labels} if external_labels else {}),
            },
            "scrape_configs": self.scrape_configs(),
        }

    def prometheus(
        self,
        rules: str | None = None,
        *,
        args: Iterable[str] = (),
        external_labels: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
        start: bool = True,
    ) -> PrometheusProcess:
        """A Prometheus (owned by the harness: closed with it) scraping this cluster every second,
        evaluating `rules` every second. `config`: merged over the generated one (e.g. alerting)."""
        full = {**self.prometheus_config(external_labels=external_labels), **(config or {})}
        h = self.harness
        process = PrometheusProcess(h.workdir / f"prometheus-{len(h.processes)}", full, rules, list(args))
        h.processes.append(process)
        if start:
            process.start()
        return process

    # -- waiting and reading ---------------------------------------------------------------------

    def wait_scraped(self, prom: PrometheusProcess, timeout: float = 20.0) -> None:
        """Until every target that answers shows the cluster's current generation."""
        want = self.cluster.generation
        name = self.cluster.name or ""
        self.harness.wait_until(
            prom,
            f'min({{__name__=~"ksm_harness_generation|e2e_harness_generation",cluster="{name}"}})'
            f' and on() ksm_harness_generation{{cluster="{name}"}}',
            lambda rows: bool(rows) and float(rows[0]["value"][1]) >= want,
            timeout,
            f"generation {want} scraped from every target",
        )

    @staticmethod
    def alerts(prom: PrometheusProcess, state: str | None = "firing") -> list[dict[str, str]]:
        """ALERTS (in `state`, or every state with None) as label dicts, without `__name__`."""
        selector = f'ALERTS{{alertstate="{state}"}}' if state else "ALERTS"
        rows = prom.query(selector)
        return [{k: v for k, v in row["metric"].items() if k != "__name__"} for row in rows]
