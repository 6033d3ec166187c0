"""The bundled pack on real alerts: label sets as kube-prometheus sends them
(tests/fixtures/reference/kubernetes-alerts.json: labels_on_alert + other_labels_carried), against a
topology built directly with Topology.add/depends/index_node_ip."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rules.ruleset import RuleSet
from topology.graph import Topology

RULES = RuleSet.load()


def cluster() -> Topology:
    """A small kube-prometheus cluster: 2 workers + 1 control-plane node, shop apps, monitoring."""
    t = Topology()
    for name, ip, zone in (
        ("worker-1", "10.0.1.21", "a"),
        ("worker-2", "10.0.1.22", "b"),
        ("cp-1", "10.0.0.11", "a"),
    ):
        node = t.add(f"node/default/{name}", internal_ip=ip)
        t.index_node_ip("default", ip, node)
        t.depends(node, f"zone/default/eu-west-1{zone}")
        t.depends(f"{node}/kubelet", node)
    t.index_node_alias("default", "ip-10-0-1-22.eu-west-1.compute.internal", "node/default/worker-2")

    def pod(namespace: str, name: str, node: str, owner: str | None, ip: str = "") -> str:
        entity = t.add(f"pod/default/{namespace}/{name}", node=f"node/default/{node}")
        if owner:
            t.add(entity, owner=owner)
            t.depends(owner, entity)
        t.depends(entity, f"node/default/{node}")
        t.index_pod_ip("default", ip, entity)
        return entity

    # Deployment -> ReplicaSet (the ReplicaSet depends on nothing), pods owned by the Deployment.
    t.depends("deployment/default/shop/checkout", "replicaset/default/shop/checkout-6d8f7b9c5d")
    pod("shop", "checkout-6d8f7b9c5d-x2x9q", "worker-1", "deployment/default/shop/checkout", "10.244.1.17")
    # A loader that records the ReplicaSet as owner: the workload is still the Deployment.
    t.depends("deployment/default/shop/cart", "replicaset/default/shop/cart-5f7d9c8b6")
    pod("shop", "cart-5f7d9c8b6-k2j4h", "worker-2", "replicaset/default/shop/cart-5f7d9c8b6")
    pod("shop", "postgres-0", "worker-2", "statefulset/default/shop/postgres")
    t.depends("pod/default/shop/postgres-0", "pvc/default/shop/data-postgres-0")
    pod("batch", "nightly-report-29012345-q8z4m", "worker-1", "job/default/batch/nightly-report-29012345")
    for i, node in enumerate(("worker-1", "worker-2", "cp-1")):
        exporter = pod(
            "monitoring",
            f"node-exporter-{'4xk7d9zq2mp8w3v'[i * 5 : i * 5 + 5]}",
            node,
            "daemonset/default/monitoring/node-exporter",
        )
        t.depends("service/default/monitoring/node-exporter", exporter, redundant=True)
    for i in range(2):
        p = pod(
            "monitoring",
            f"prometheus-k8s-{i}",
            f"worker-{i + 1}",
            "statefulset/default/monitoring/prometheus-k8s",
        )
        t.depends("service/default/monitoring/prometheus-k8s", p, redundant=True)
        a = pod(
            "monitoring",
            f"alertmanager-main-{i}",
            f"worker-{i + 1}",
            "statefulset/default/monitoring/alertmanager-main",
        )
        t.depends("service/default/monitoring/alertmanager-main", a, redundant=True)
    pod(
        "monitoring",
        "prometheus-operator-7c9d8f6b5-abcde",
        "worker-1",
        "deployment/default/monitoring/prometheus-operator",
    )
    for i, node in enumerate(("worker-1", "worker-2")):
        dns_pod = pod(
            "kube-system",
            f"coredns-7d9f8b6c5-{'ab12c'[i]}x9q{i}",
            node,
            "deployment/default/kube-system/coredns",
        )
        t.depends("dns/default/cluster-dns", dns_pod, redundant=True)
    t.depends("service/default/kube-system/kube-dns", "dns/default/cluster-dns")
    pod("kube-system", "kube-scheduler-cp-1", "cp-1", None)  # static pod: no controller
    t.depends(
        "scheduler/default/kube-scheduler", "pod/default/kube-system/kube-scheduler-cp-1", redundant=True
    )
    t.depends("apiserver/default/kube-apiserver", "etcd/default/etcd")
    return t


TOPOLOGY = cluster()


def classify(**labels: str):
    labels.setdefault("severity", "warning")
    return RULES.classify(labels, TOPOLOGY)


NODE_EXPORTER_TARGET = {
    "job": "node-exporter",
    "namespace": "monitoring",
    "pod": "node-exporter-4xk7d",
    "service": "node-exporter",
    "endpoint": "https",
    "container": "kube-rbac-proxy",
}


# -- nodes ------------------------------------------------------------------------------------


def test_node_exporter_alert_maps_to_the_node_not_the_exporter_pod():
    c = classify(
        alertname="NodeFilesystemAlmostOutOfSpace",
        severity="critical",
        instance="worker-1",
        device="/dev/nvme0n1p1",
        mountpoint="/",
        fstype="ext4",
        **NODE_EXPORTER_TARGET,
    )
    assert c.entity == "node/default/worker-1"
    assert (c.rule, c.propagates, c.urgency, c.grace) == (
        "node-filesystem-full",
        True,
        "page",
        timedelta(minutes=2),
    )
    assert "instance" in c.how and "pod" not in c.how


def test_node_exporter_instance_as_ip_port_or_alias_resolves_through_the_topology():
    by_ip = classify(
        alertname="NodeMemoryMajorPagesFaults", instance="10.0.1.22:9100", **NODE_EXPORTER_TARGET
    )
    assert by_ip.entity == "node/default/worker-2"
    by_alias = classify(
        alertname="NodeClockNotSynchronising", instance="ip-10-0-1-22.eu-west-1.compute.internal"
    )
    assert by_alias.entity == "node/default/worker-2"


def test_unknown_node_exporter_address_never_falls_back_to_the_exporter_pod():
    c = classify(
        alertname="NodeDiskIOSaturation", instance="10.9.9.9:9100", device="sda", **NODE_EXPORTER_TARGET
    )
    assert c.rule == "node-saturated"
    assert c.entity is None
    assert "no entity" in c.how


def test_node_name_not_in_topology_is_still_a_node():
    c = classify(alertname="NodeRAIDDegraded", severity="critical", instance="worker-9", device="md0")
    assert c.entity == "node/default/worker-9"
    assert "taken as node name" in c.how
    assert classify(alertname="KubeNodeNotReady", node="worker-9").entity == "node/default/worker-9"


def test_node_not_ready_propagates_with_a_short_grace():
    c = classify(
        alertname="KubeNodeNotReady",
        node="worker-1",
        job="kube-state-metrics",
        instance="10.244.2.5:8443",
        condition="Ready",
        status="true",
        container="kube-rbac-proxy-main",
    )
    assert (c.entity, c.propagates, c.grace) == ("node/default/worker-1", True, timedelta(minutes=2))


def test_systemd_unit_decides_whether_a_failed_service_propagates():
    kubelet = classify(
        alertname="NodeSystemdServiceFailed", instance="worker-2", name="kubelet.service", state="failed"
    )
    other = classify(
        alertname="NodeSystemdServiceFailed", instance="worker-2", name="motd-news.service", state="failed"
    )
    assert (kubelet.rule, kubelet.propagates, kubelet.urgency) == (
        "node-runtime-service-failed",
        True,
        "page",
    )
    assert (other.rule, other.propagates, other.urgency) == ("node-service-failed", False, "notice")
    assert kubelet.entity == other.entity == "node/default/worker-2"


# -- kubelet ------------------------------------------------------------------------------------


def test_kubelet_alert_maps_to_the_kubelet_component_by_node_label():
    c = classify(
        alertname="KubeletInstanceUnreachable",
        node="worker-1",
        instance="10.0.1.21:10250",
        job="kubelet",
        metrics_path="/metrics",
        namespace="kube-system",
        service="kubelet",
        endpoint="https-metrics",
    )
    assert c.entity == "node/default/worker-1/kubelet"
    assert c.propagates


def test_kubelet_alert_without_node_label_maps_via_the_node_ip_of_instance():
    c = classify(alertname="KubeletPlegDurationHigh", instance="10.0.0.11:10250", quantile="0.99")
    assert c.entity == "node/default/cp-1/kubelet"
    assert "via node-by-instance" in c.how


def test_kubelet_down_is_cluster_wide():
    c = classify(alertname="KubeletDown", severity="critical")
    assert (c.entity, c.propagates, c.urgency) == ("cluster/default/cluster", True, "page")


def test_kubelet_certificate_expiry_pages_only_when_critical():
    soon = classify(alertname="KubeletServerCertificateExpiration", severity="critical", node="worker-1")
    later = classify(alertname="KubeletServerCertificateExpiration", node="worker-1")
    assert (soon.urgency, later.urgency) == ("page", "notice")
    assert soon.entity == later.entity == "node/default/worker-1/kubelet"


# -- absent() alerts and singletons --------------------------------------------------------------


@pytest.mark.parametrize(
    ("alertname", "labels", "entity"),
    [
        ("CoreDNSDown", {}, "dns/default/cluster-dns"),
        ("KubeAPIDown", {"job": "apiserver"}, "apiserver/default/kube-apiserver"),
        ("KubeSchedulerDown", {"job": "kube-scheduler"}, "scheduler/default/kube-scheduler"),
        (
            "KubeControllerManagerDown",
            {"job": "kube-controller-manager"},
            "controller-manager/default/kube-controller-manager",
        ),
        ("KubeProxyDown", {"job": "kube-proxy"}, "daemonset/default/kube-system/kube-proxy"),
        ("etcdInsufficientMembers", {"job": "etcd"}, "etcd/default/etcd"),
        ("WeaveNetIPAMSplitBrain", {}, "daemonset/default/kube-system/weave-net"),
    ],
)
def test_alerts_with_almost_no_labels_still_name_their_entity(alertname, labels, entity):
    c = classify(alertname=alertname, severity="critical", **labels)
    assert c.entity == entity
    assert c.urgency == "page"


def test_coredns_alerts_propagate_except_a_single_flaky_upstream():
    assert classify(alertname="CoreDNSErrorsHigh", severity="critical", job="kube-dns").propagates
    assert classify(alertname="CoreDNSForwardHealthcheckBrokenCount", job="coredns").propagates
    flaky = classify(alertname="CoreDNSForwardHealthcheckFailureCount", job="kube-dns", to="1.1.1.1:53")
    assert flaky.entity == "dns/default/cluster-dns" and not flaky.propagates


def test_etcd_severity_decides_propagation_of_the_same_alert():
    critical = classify(
        alertname="etcdHighFsyncDurations", severity="critical", job="etcd", instance="10.0.0.11:2379"
    )
    warning = classify(alertname="etcdHighFsyncDurations", job="etcd", instance="10.0.0.11:2379")
    assert critical.propagates and not warning.propagates
    assert critical.entity == warning.entity == "etcd/default/etcd"


def test_api_error_budget_burn_outlives_its_root_for_its_window():
    # They may keep firing for their long window after the cause recovered.
    windows = {("1h", "5m"): 65, ("6h", "30m"): 365, ("1d", "2h"): 1440, ("3d", "6h"): 4320}
    for (long, short), minutes in windows.items():
        severity = "critical" if long in ("1h", "6h") else "warning"
        c = classify(alertname="KubeAPIErrorBudgetBurn", severity=severity, long=long, short=short)
        assert c.entity == "apiserver/default/kube-apiserver"
        assert c.outlive_root == timedelta(minutes=minutes), long
        assert c.propagates is (severity == "critical")


def test_control_plane_instance_alert_names_the_static_pod_when_it_has_one():
    with_pod = classify(
        alertname="KubeSchedulerInstanceUnreachable",
        job="kube-scheduler",
        instance="10.0.0.11:10259",
        pod="kube-scheduler-cp-1",
        namespace="kube-system",
    )
    assert (with_pod.entity, with_pod.propagates) == ("pod/default/kube-system/kube-scheduler-cp-1", True)
    without = classify(
        alertname="KubeSchedulerInstanceUnreachable", job="kube-scheduler", instance="10.0.0.11:10259"
    )
    assert (without.entity, without.propagates) == ("scheduler/default/kube-scheduler", False)


# -- pods and workloads ----------------------------------------------------------------------


def test_pod_alert_maps_to_a_known_pod():
    c = classify(
        alertname="KubePodCrashLooping",
        namespace="shop",
        pod="checkout-6d8f7b9c5d-x2x9q",
        container="checkout",
        uid="0f6a3c2e",
        reason="CrashLoopBackOff",
        job="kube-state-metrics",
        instance="10.244.2.5:8443",
    )
    assert c.entity == "pod/default/shop/checkout-6d8f7b9c5d-x2x9q"
    assert (c.propagates, c.outlive_root) == (True, timedelta(minutes=15))


@pytest.mark.parametrize(
    ("pod", "entity"),
    [
        # same ReplicaSet, new pod: ReplicaSet known, its Deployment found through dependents
        ("checkout-6d8f7b9c5d-q7w2z", "deployment/default/shop/checkout"),
        # a rollout after the refresh: the ReplicaSet is new too, the Deployment is known
        ("checkout-5b6c7d8f9-zz9kq", "deployment/default/shop/checkout"),
        ("postgres-3", "statefulset/default/shop/postgres"),
        ("node-exporter-zz2k9", "daemonset/default/monitoring/node-exporter"),
        ("nightly-report-29012345-pp4x2", "job/default/batch/nightly-report-29012345"),
        ("stray-pod", "pod/default/shop/stray-pod"),  # nothing matches: keep the pod
    ],
)
def test_pod_born_after_the_topology_refresh_maps_to_its_workload(pod, entity):
    namespace = entity.split("/")[2]
    c = classify(alertname="KubePodNotReady", namespace=namespace, pod=pod, job="kube-state-metrics")
    assert c.entity == entity
    expected_note = (
        "pod not in topology; workload found by name"
        if entity.split("/")[0] != "pod"
        else "pod not in topology"
    )
    assert expected_note in c.how


def test_workload_of_pod_climbs_from_a_replicaset_owner_to_the_deployment():
    c = classify(alertname="PrometheusNotIngestingSamples", namespace="shop", pod="cart-5f7d9c8b6-k2j4h")
    assert c.entity == "deployment/default/shop/cart"


def test_prometheus_and_alertmanager_alerts_name_their_statefulset():
    prom = classify(
        alertname="PrometheusBadConfig",
        severity="critical",
        namespace="monitoring",
        pod="prometheus-k8s-1",
        job="prometheus-k8s",
        instance="10.244.2.9:9090",
        service="prometheus-k8s",
        container="prometheus",
    )
    assert (prom.entity, prom.propagates, prom.urgency) == (
        "statefulset/default/monitoring/prometheus-k8s",
        False,
        "page",
    )
    am = classify(
        alertname="AlertmanagerFailedReload",
        severity="critical",
        namespace="monitoring",
        pod="alertmanager-main-0",
    )
    assert am.entity == "statefulset/default/monitoring/alertmanager-main"
    cluster_level = classify(
        alertname="AlertmanagerClusterDown",
        severity="critical",
        namespace="monitoring",
        service="alertmanager-main",
    )
    assert cluster_level.entity == "service/default/monitoring/alertmanager-main"


def test_operator_alerts_without_a_pod_name_the_operator_deployment():
    with_pod = classify(
        alertname="PrometheusOperatorSyncFailed",
        namespace="monitoring",
        controller="prometheus",
        pod="prometheus-operator-7c9d8f6b5-abcde",
        status="failed",
    )
    without = classify(
        alertname="PrometheusOperatorListErrors", namespace="monitoring", controller="prometheus"
    )
    assert with_pod.entity == without.entity == "deployment/default/monitoring/prometheus-operator"


def test_kube_job_alerts_use_job_name_not_the_scrape_job():
    c = classify(
        alertname="KubeJobFailed",
        namespace="batch",
        job_name="nightly-report-29012345",
        job="kube-state-metrics",
        condition="true",
    )
    assert c.entity == "job/default/batch/nightly-report-29012345"


def test_pvc_alert_ignores_the_kubelet_target_labels_it_carries():
    c = classify(
        alertname="KubePersistentVolumeFillingUp",
        severity="critical",
        namespace="shop",
        persistentvolumeclaim="data-postgres-0",
        node="worker-2",
        instance="10.0.1.22:10250",
        job="kubelet",
        metrics_path="/metrics",
        service="kubelet",
        endpoint="https-metrics",
    )
    assert (c.entity, c.propagates, c.urgency) == ("pvc/default/shop/data-postgres-0", True, "page")
    warning = classify(
        alertname="KubePersistentVolumeFillingUp", namespace="shop", persistentvolumeclaim="data-postgres-0"
    )
    assert (warning.propagates, warning.urgency) == (False, "notice")


# -- targets, CNI, heartbeat ----------------------------------------------------------------------


def test_target_down_is_a_patient_non_propagating_signal():
    c = classify(alertname="TargetDown", job="node-exporter", namespace="monitoring", service="node-exporter")
    assert c.entity == "service/default/monitoring/node-exporter"
    assert (c.propagates, c.hold) == (False, timedelta(minutes=15))  # waits for its cause


@pytest.mark.parametrize(
    ("job", "namespace", "service", "entity"),
    [
        ("kube-dns", "kube-system", "kube-dns", "dns/default/cluster-dns"),
        ("coredns", "kube-system", "prometheus-stack-coredns", "dns/default/cluster-dns"),
        ("etcd", "kube-system", "etcd", "etcd/default/etcd"),
        ("kube-etcd", "kube-system", "prometheus-stack-kube-etcd", "etcd/default/etcd"),
        ("apiserver", "default", "kubernetes", "apiserver/default/kube-apiserver"),
        ("kube-proxy", "kube-system", "", "service/default/kube-system/kube-proxy"),  # PodMonitor: no service
    ],
)
def test_target_down_job_aliases(job, namespace, service, entity):
    labels = {"job": job, "namespace": namespace}
    if service:
        labels["service"] = service
    assert classify(alertname="TargetDown", **labels).entity == entity


def test_cni_alerts_on_one_node_name_its_cni_component():
    weave = classify(
        alertname="WeaveNetIPAMUnreachable",
        severity="critical",
        job="weave-net",
        instance="10.0.1.21:6782",
        namespace="kube-system",
        pod="weave-net-7xk2p",
    )
    assert (weave.entity, weave.propagates) == ("node/default/worker-1/cni", True)
    aws = classify(alertname="AwsVpcCniWarmIPsLow", severity="critical", instance="10.0.1.22:61678")
    assert (aws.entity, aws.propagates) == ("node/default/worker-2/cni", False)


def test_watchdog_is_a_quiet_heartbeat():
    c = classify(alertname="Watchdog", severity="none", prometheus="monitoring/k8s")
    assert (c.entity, c.heartbeat, c.urgency, c.propagates) == (
        "pipeline/default/alerting-pipeline",
        True,
        "quiet",
        False,
    )


def test_cluster_label_names_the_cluster():
    assert (
        classify(alertname="KubeNodeNotReady", node="worker-1", cluster="prod").entity == "node/prod/worker-1"
    )
    assert (
        classify(alertname="CoreDNSLatencyHigh", job="kube-dns", cluster="prod").entity
        == "dns/prod/cluster-dns"
    )


# -- no rule -------------------------------------------------------------------------------------


def test_unknown_alert_is_never_hidden():
    c = RULES.classify({"alertname": "CheckoutQueueStuck", "team": "payments"}, TOPOLOGY)
    assert (c.rule, c.entity, c.propagates) == (None, None, False)
    assert (c.severity, c.urgency, c.grace) == ("warning", "page", timedelta(minutes=7))
    assert c.outlive_root == timedelta(minutes=10)


@pytest.mark.parametrize(
    ("severity", "normalised", "urgency", "grace"),
    [
        ("critical", "critical", "page", 2),
        ("CRITICAL", "critical", "page", 2),
        ("info", "info", "quiet", 5),
        ("none", "none", "quiet", 5),
        ("p1", "warning", "page", 7),
        ("", "warning", "page", 7),
    ],
)
def test_unknown_alert_policy_by_severity(severity, normalised, urgency, grace):
    c = RULES.classify({"alertname": "MyAlert", "severity": severity}, TOPOLOGY)
    assert (c.severity, c.urgency, c.grace) == (normalised, urgency, timedelta(minutes=grace))


@pytest.mark.parametrize(
    ("labels", "entity"),
    [
        (
            {"namespace": "shop", "pod": "checkout-6d8f7b9c5d-x2x9q", "service": "checkout"},
            "pod/default/shop/checkout-6d8f7b9c5d-x2x9q",
        ),
        ({"namespace": "shop", "deployment": "checkout"}, "deployment/default/shop/checkout"),
        ({"namespace": "shop", "statefulset": "postgres"}, "statefulset/default/shop/postgres"),
        (
            {"namespace": "monitoring", "daemonset": "node-exporter"},
            "daemonset/default/monitoring/node-exporter",
        ),
        (
            {"namespace": "batch", "job_name": "nightly-report-29012345", "job": "kube-state-metrics"},
            "job/default/batch/nightly-report-29012345",
        ),
        # Application telemetry names a Service: the Service, else the workload of that name
        # (OpenTelemetry names services after their Deployment), else the Service named anyway.
        ({"namespace": "shop", "service": "checkout"}, "deployment/default/shop/checkout"),
        ({"namespace": "shop", "service": "basket"}, "service/default/shop/basket"),
        (
            {"namespace": "monitoring", "service_name": "prometheus-k8s"},
            "service/default/monitoring/prometheus-k8s",
        ),
        ({"service_name": "alertmanager-main"}, "service/default/monitoring/alertmanager-main"),
        ({"app_kubernetes_io_name": "node-exporter"}, "service/default/monitoring/node-exporter"),
        ({"job": "monitoring/prometheus-k8s"}, "service/default/monitoring/prometheus-k8s"),
        # A scrape job is no Service; what is left is the namespace the alert concerns.
        ({"namespace": "shop", "job": "my-batch-exporter"}, "namespace/default/shop"),
        ({"node": "worker-2"}, "node/default/worker-2"),
        ({"instance": "10.0.1.21:9100"}, "node/default/worker-1"),
        ({"instance": "10.244.9.9:8080"}, None),  # a pod address: not a node, and no guess
        # A namespace alone (a spend or quota alert): the namespace, so that its alerts meet in
        # one incident on it.
        ({"namespace": "shop"}, "namespace/default/shop"),
    ],
)
def test_unknown_alert_entity_from_clearly_identifying_labels(labels, entity):
    c = RULES.classify({"alertname": "CustomAlert", **labels}, TOPOLOGY)
    assert c.entity == entity
    assert c.how.startswith("no rule")


def test_alerts_naming_only_their_namespace_meet_on_it():
    spend = classify(alertname="CPUSpend", namespace="shop", severity="warning")
    memory = classify(alertname="MemorySpend", namespace="shop", severity="warning")
    assert spend.entity == memory.entity == "namespace/default/shop"
    assert not spend.propagates  # a namespace alert explains nothing beneath it
    other = RULES.classify({"alertname": "CPUSpend", "namespace": "web", "cluster": "eu"}, TOPOLOGY)
    assert other.entity == "namespace/eu/web"


def test_info_inhibitor_is_unmapped_and_quiet():
    c = classify(alertname="InfoInhibitor", severity="none", namespace="shop")
    assert (c.rule, c.entity, c.urgency) == (None, None, "quiet")
    assert c.how.startswith("unmapped")
    assert "InfoInhibitor" in RULES.unmapped
