"""The scenario suite: real failures of a real-looking cluster, end to end through the engine.

The cluster is a kube-state-metrics dump (bench/gen_cluster.py: 12 nodes in 3 zones, 3 of them
control plane, CoreDNS, calico, kube-proxy, node-exporter, apps with Deployments and
StatefulSets with volumes) loaded by the real loader. Each storm is built from the real alert
names and labels of the kube-prometheus catalogue with the timings of real failures
(router/sim/scenarios.py), and delivered the way Alertmanager does it (router/sim/storm.py): grouped by
namespace, group_wait 30s, group_interval 5m, re-sent, and duplicated by an HA pair 15 s apart.
Each test asserts the pages (count, root, time), the symptoms attached and the quiet ones.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from router.core.engine import Engine
from router.core.model import Delivery
from router.sim import scenarios as sc
from router.sim.gencluster import ClusterInfo, generate
from router.sim.storm import AlertmanagerConfig, AlertSpec, heartbeat_route, simulate
from rules.ruleset import RuleSet
from topology.graph import Topology
from topology.load import load_topology

T0 = datetime(2026, 10, 6, 1, 0, tzinfo=UTC)
RULES = RuleSet.load()
HA = AlertmanagerConfig(replicas=2)


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def generated_cluster(directory: Path) -> tuple[ClusterInfo, Topology]:
    """The suite's cluster (12 nodes, 3 zones), written as KSM text and read by the real loader."""
    buffer = io.StringIO()
    info = generate(12, 6, 3, out=buffer)
    path = directory / "cluster.prom"
    path.write_text(buffer.getvalue())
    return info, load_topology([path])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> tuple[ClusterInfo, Topology]:
    return generated_cluster(Path(tmp_path_factory.mktemp("cluster")))


def run(topology: Topology, alerts: list[AlertSpec], config: AlertmanagerConfig = HA, until=None):
    """Simulate Alertmanager, replay through the engine; returns (engine, notifications)."""
    lines = simulate(alerts, config, until=until)
    engine = Engine(topology, RULES)
    notes = []
    last = None
    for line in lines:
        delivery = Delivery.model_validate(line)
        last = delivery.received
        notes += engine.ingest(delivery, last)
    notes += engine.finish(last)
    return engine, notes


def pages(notes):
    return [n for n in notes if n.action == "page"]


def workers(info: ClusterInfo) -> list[str]:
    """Worker nodes that run no CoreDNS pod, nearest first."""
    dns_nodes = {node for _, node in info.coredns_pods}
    return [
        n for zone in info.zones.values() for n in zone if n not in info.control_plane and n not in dns_nodes
    ]


def node_entity(node: str) -> str:
    return f"node/default/{node}"


def down(info: ClusterInfo, node: str, recover_after: float | None = None) -> list[AlertSpec]:
    return sc.node_down(
        node,
        info.pods_by_node[node],
        info.daemonsets,
        T0,
        recover_at=T0 + minutes(recover_after) if recover_after else None,
        node_ip=info.node_ips[node],
        cluster_nodes=len(info.node_ips),
        ksm_instance=info.ksm_instance,
    )


def test_node_down_pages_once_for_the_node_with_every_symptom_and_the_path(cluster):
    info, topology = cluster
    node = workers(info)[0]
    engine, notes = run(topology, down(info, node, recover_after=40))
    [page] = pages(notes)
    assert page.root_entity == node_entity(node)
    assert page.root_alert.alertname in ("KubeNodeNotReady", "KubeNodeUnreachable")
    # KubeNodeNotReady fires ~15m50s after the node dies, Alertmanager waits group_wait 30s,
    # the rule's grace is 2m: paged at about 18m20s, never before the cause fired.
    assert T0 + minutes(17) < page.at <= T0 + minutes(19)
    symptom_names = {s.alertname for s in page.symptoms}
    assert {"KubePodNotReady", "KubeletInstanceUnreachable"} <= symptom_names
    kubelet = next(s for s in page.symptoms if s.alertname == "KubeletInstanceUnreachable")
    assert kubelet.path == (f"{node_entity(node)}/kubelet", node_entity(node))
    pods_on_node = {p for ns, p, kind, _ in info.pods_by_node[node] if kind not in ("Job", "CronJob")}
    attached_pods = {s.entity.rsplit("/", 1)[1] for s in page.symptoms if s.alertname == "KubePodNotReady"}
    attached_pods |= {
        s.entity.rsplit("/", 1)[1]
        for n in notes
        if n.action == "update"
        for s in n.symptoms
        if s.alertname == "KubePodNotReady"
    }
    assert attached_pods == pods_on_node
    assert [n.action for n in notes if n.incident == page.incident][-1] == "resolve"
    assert not [n for n in notes if n.action == "notice"]
    assert engine.counters["duplicates"] > 0  # the HA pair and the re-sends were absorbed


def test_kubelet_down_on_one_node_pages_the_kubelet(cluster):
    info, topology = cluster
    node = workers(info)[1]
    labels = sc.kubelet_labels(node, info.node_ips[node])
    alerts = [sc.make_alert("KubeletInstanceUnreachable", labels, T0 + minutes(15.5))]
    _, notes = run(topology, alerts, until=T0 + minutes(40))
    [page] = pages(notes)
    assert page.root_entity == f"{node_entity(node)}/kubelet"


def test_coredns_crash_pages_cluster_dns_with_clients_as_symptoms(cluster):
    info, topology = cluster
    clients: dict[str, list[tuple[str, str, str]]] = {}
    for pods in info.pods_by_node.values():
        for namespace, pod, kind, name in pods:
            if namespace not in ("kube-system", "monitoring") and kind == "Deployment":
                clients.setdefault(namespace, []).append((pod, kind, name))
    alerts = sc.coredns_crash([pod for pod, _ in info.coredns_pods], clients, T0, recover_at=T0 + minutes(40))
    engine, notes = run(topology, alerts)
    [page] = pages(notes)
    assert page.root_entity == "dns/default/cluster-dns"
    told = {s.alertname for n in notes if n.incident == page.incident for s in n.symptoms}
    assert {"KubePodCrashLooping", "KubePodNotReady", "KubeDeploymentReplicasMismatch"} <= told
    on_dns = {
        a["alertname"] for a in engine.incident(page.incident)["alerts"] if a["entity"] == page.root_entity
    }
    assert on_dns == {"TargetDown", "CoreDNSDown"}  # TargetDown{job="kube-dns"} names DNS itself
    # DNS is named before the slow CoreDNSDown (for: 15m) would have paged on its own.
    assert page.at <= T0 + minutes(19)


def test_apiserver_down_pages_the_apiserver_once(cluster):
    info, topology = cluster
    alerts: list[AlertSpec] = []
    for node in info.control_plane:
        labels = {
            "job": "apiserver",
            "instance": f"{info.node_ips[node]}:6443",
            "namespace": "default",
            "service": "kubernetes",
            "endpoint": "https",
        }
        alerts.append(sc.make_alert("KubeAPIInstanceUnreachable", labels, T0 + minutes(15.5)))
    alerts.append(
        sc.make_alert(
            "TargetDown",
            {"job": "apiserver", "namespace": "default", "service": "kubernetes"},
            T0 + minutes(10.5),
        )
    )
    alerts.append(
        sc.make_alert(
            "KubeAPIErrorBudgetBurn", {"long": "1h", "short": "5m", "severity": "critical"}, T0 + minutes(3)
        )
    )
    alerts.append(sc.make_alert("KubeStateMetricsListErrors", {"severity": "critical"}, T0 + minutes(15.5)))
    _, notes = run(topology, alerts, until=T0 + minutes(60))
    [page] = pages(notes)
    assert page.root_entity == "apiserver/default/kube-apiserver"
    assert page.severity == "critical"


def test_etcd_quorum_loss_pages_etcd_with_the_apiserver_as_symptom(cluster):
    info, topology = cluster
    alerts: list[AlertSpec] = []
    for node in info.control_plane[:2]:
        labels = {"job": "etcd", "instance": f"{info.node_ips[node]}:2379"}
        alerts.append(sc.make_alert("etcdNoLeader", {**labels, "severity": "critical"}, T0 + minutes(1)))
    alerts.append(
        sc.make_alert("etcdInsufficientMembers", {"job": "etcd", "severity": "critical"}, T0 + minutes(3))
    )
    alerts.append(
        sc.make_alert(
            "KubeAPIErrorBudgetBurn", {"long": "1h", "short": "5m", "severity": "critical"}, T0 + minutes(2.5)
        )
    )
    _, notes = run(topology, alerts, until=T0 + minutes(60))
    [page] = pages(notes)
    assert page.root_entity == "etcd/default/etcd"
    burn = [
        s
        for n in notes
        if n.incident == page.incident
        for s in n.symptoms
        if s.alertname == "KubeAPIErrorBudgetBurn"
    ]
    assert burn and burn[0].path == ("apiserver/default/kube-apiserver", "etcd/default/etcd")


def test_node_disk_full_names_the_disk_not_the_pods(cluster):
    info, topology = cluster
    node = workers(info)[2]
    exporter = next(p for ns, p, _, name in info.pods_by_node[node] if name == "node-exporter")
    fs = {
        **sc.node_exporter_labels(node, exporter),
        "mountpoint": "/var/lib/containerd",
        "device": "/dev/nvme0n1p1",
        "fstype": "ext4",
    }
    alerts = [sc.make_alert("NodeFilesystemAlmostOutOfSpace", {**fs, "severity": "critical"}, T0)]
    alerts.append(
        sc.make_alert(
            "KubeNodePressure",
            {
                **sc.ksm_labels(info.ksm_instance),
                "node": node,
                "condition": "DiskPressure",
                "status": "true",
                "severity": "info",
            },
            T0 + minutes(10),
        )
    )
    apps = [(ns, p) for ns, p, kind, _ in info.pods_by_node[node] if kind == "Deployment"]
    for namespace, pod in apps:
        alerts.append(
            sc.make_alert("KubePodNotReady", {"namespace": namespace, "pod": pod}, T0 + minutes(15))
        )
    _, notes = run(topology, alerts, until=T0 + minutes(60))
    [page] = pages(notes)
    assert page.root_entity == node_entity(node)
    assert page.root_alert.alertname == "NodeFilesystemAlmostOutOfSpace"
    assert page.at <= T0 + minutes(3)  # critical: 2m grace from the first delivery
    later = {s.entity for n in notes if n.incident == page.incident for s in n.symptoms}
    assert {f"pod/default/{ns}/{p}" for ns, p in apps} <= later


def test_cni_agent_failing_on_one_node_is_the_root_of_that_node_only(cluster):
    info, topology = cluster
    node = workers(info)[3]
    calico = next(p for ns, p, _, name in info.pods_by_node[node] if name == "calico-node")
    alerts = [
        sc.make_alert(
            "KubePodCrashLooping",
            {"namespace": "kube-system", "pod": calico, "container": "calico-node"},
            T0 + minutes(15),
        )
    ]
    apps = [(ns, p) for ns, p, kind, _ in info.pods_by_node[node] if kind in ("Deployment", "StatefulSet")]
    for namespace, pod in apps:
        alerts.append(
            sc.make_alert("KubePodNotReady", {"namespace": namespace, "pod": pod}, T0 + minutes(15.2))
        )
    _, notes = run(topology, alerts, until=T0 + minutes(60))
    [page] = pages(notes)
    assert page.root_entity == f"pod/default/kube-system/{calico}"
    paths = [s.path for n in notes if n.incident == page.incident for s in n.symptoms]
    assert (
        f"pod/default/{apps[0][0]}/{apps[0][1]}",
        f"{node_entity(node)}/cni",
        f"pod/default/kube-system/{calico}",
    ) in paths


def test_zone_outage_pages_the_zone_once(cluster):
    info, topology = cluster
    zone, nodes = next(iter(info.zones.items()))
    alerts = sc.zone_outage(
        nodes,
        info.pods_by_node,
        info.daemonsets,
        T0,
        recover_at=T0 + minutes(45),
        node_ips=info.node_ips,
        cluster_nodes=len(info.node_ips),
        ksm_instance=info.ksm_instance,
    )
    _, notes = run(topology, alerts)
    [page] = pages(notes)
    assert page.root_entity == f"zone/default/{zone}"
    assert page.root_alert is None  # inferred: no alert names a zone
    told = {s.entity for n in notes if n.incident == page.incident for s in n.symptoms}
    assert {node_entity(n) for n in nodes} <= told
    assert T0 + minutes(16) <= page.at <= T0 + minutes(19)


def test_pvc_full_pages_the_volume_claim(cluster):
    info, topology = cluster
    namespace, pod, _, sts = next(
        ref
        for pods in info.pods_by_node.values()
        for ref in pods
        if ref[2] == "StatefulSet" and ref[0] != "monitoring"
    )
    pvc = next(d for d, _ in topology.dependencies(f"pod/default/{namespace}/{pod}") if d.startswith("pvc/"))
    claim = pvc.rsplit("/", 1)[1]
    kubelet = sc.kubelet_labels("n", "10.0.0.1")
    alerts = [
        sc.make_alert(
            "KubePersistentVolumeFillingUp",
            {**kubelet, "namespace": namespace, "persistentvolumeclaim": claim, "severity": "critical"},
            T0 + minutes(1),
        ),
        sc.make_alert(
            "KubePodCrashLooping", {"namespace": namespace, "pod": pod, "container": "db"}, T0 + minutes(6)
        ),
        sc.make_alert(
            "KubeStatefulSetReplicasMismatch",
            {**sc.ksm_labels(), "namespace": namespace, "statefulset": sts},
            T0 + minutes(8),
        ),
    ]
    _, notes = run(topology, alerts, until=T0 + minutes(60))
    [page] = pages(notes)
    assert page.root_entity == pvc
    told = {s.alertname for n in notes if n.incident == page.incident for s in n.symptoms}
    assert {"KubePodCrashLooping", "KubeStatefulSetReplicasMismatch"} <= told


def test_transient_alert_that_heals_is_a_notice_not_a_page(cluster):
    info, topology = cluster
    namespace, pod, *_ = next(ref for ref in info.pods_by_node[workers(info)[0]] if ref[2] == "Deployment")
    alerts = sc.transient(
        {"alertname": "KubePodCrashLooping", "namespace": namespace, "pod": pod, "container": "app"},
        T0,
        minutes(3),
    )
    _, notes = run(topology, alerts, until=T0 + minutes(40))
    assert [n.action for n in notes] == ["notice"]
    assert "recovered by itself" in notes[0].reason


def test_flapping_node_pages_as_flapping(cluster):
    info, topology = cluster
    node = workers(info)[0]
    labels = {
        "alertname": "KubeNodeNotReady",
        **sc.ksm_labels(info.ksm_instance),
        "node": node,
        "condition": "Ready",
        "status": "false",
    }
    alerts = sc.flapping(labels, T0, period=minutes(12), count=4, firing_for=minutes(1))
    _, notes = run(topology, alerts, until=T0 + minutes(80))
    # Alertmanager reports each 1-minute flap as resolved only at the next group interval, so
    # the first flap already outlives the 2m grace: one page, then the same incident reopens.
    [page] = pages(notes)
    assert {n.incident for n in notes} == {page.incident}
    assert any("flapping" in n.reason for n in notes if n.action == "update")
    assert sum(1 for n in notes if n.action == "update" and "reopened" in n.reason) >= 2


def test_unmapped_alert_stands_on_its_own(cluster):
    _, topology = cluster
    alerts = [sc.make_alert("PaymentsSLOBurn", {"team": "payments", "severity": "critical"}, T0)]
    _, notes = run(topology, alerts, until=T0 + minutes(30))
    [page] = pages(notes)
    assert page.root_entity.startswith("alert/default/PaymentsSLOBurn-")
    assert page.root_alert.alertname == "PaymentsSLOBurn"


def test_watchdog_stopping_pages_alerting_pipeline_down(cluster):
    _, topology = cluster
    config = AlertmanagerConfig(replicas=2, routes=[heartbeat_route(minutes(2))])
    alerts = sc.watchdog(T0, until=T0 + minutes(20))
    # Something else keeps the recording going after the Watchdog went silent.
    alerts.append(
        sc.make_alert("PaymentsSLOBurn", {"team": "payments", "severity": "info"}, T0 + minutes(60))
    )
    _, notes = run(topology, alerts, config)
    [page] = pages(notes)
    assert page.root_entity == "pipeline/default/alerting-pipeline"
    assert T0 + minutes(20) < page.at <= T0 + minutes(40)


def test_two_independent_faults_page_separately(cluster):
    info, topology = cluster
    node = workers(info)[0]
    other = workers(info)[-1]
    namespace, pod, *_ = next(ref for ref in info.pods_by_node[other] if ref[2] == "Deployment")
    crash = sc.make_alert(
        "KubePodCrashLooping", {"namespace": namespace, "pod": pod, "container": "app"}, T0 + minutes(10)
    )
    _, notes = run(topology, [*down(info, node), crash], until=T0 + minutes(60))
    roots = sorted(p.root_entity for p in pages(notes))
    assert roots == sorted([node_entity(node), f"pod/default/{namespace}/{pod}"])


def test_root_recovers_while_a_symptom_persists(cluster):
    info, topology = cluster
    node = workers(info)[0]
    alerts = down(info, node, recover_after=25)
    namespace, pod, *_ = next(ref for ref in info.pods_by_node[node] if ref[2] == "Deployment")
    # This pod stays broken after its node came back (a bad restart).
    stuck = [a for a in alerts if a.labels.get("pod") == pod and a.labels["alertname"] == "KubePodNotReady"]
    alerts = [a for a in alerts if a not in stuck]
    alerts.append(sc.make_alert("KubePodNotReady", {"namespace": namespace, "pod": pod}, stuck[0].fires_at))
    _, notes = run(topology, alerts, until=T0 + minutes(90))
    first, second = pages(notes)
    assert first.root_entity == node_entity(node)
    assert second.root_entity == f"pod/default/{namespace}/{pod}"
    # Attached for its 10m outlive time after the node recovered, then judged afresh with its
    # own 15m grace (arriving on the next group flush, up to 5m later).
    assert T0 + minutes(25 + 10 + 15) <= second.at <= T0 + minutes(25 + 10 + 15 + 6)
    assert any(n.action == "resolve" and n.incident == first.incident for n in notes)
