"""The fake cluster exporter under the real Prometheus and the real kube-prometheus rules.

One Prometheus (Debian's /usr/bin/prometheus) scrapes an E2ECluster every second and evaluates
the whole reference catalogue with every `for:` (and range window) scaled by FACTOR. The
timeline runs once per module: healthy -> three independent breaks at once on different nodes
(stop worker-5, crash CoreDNS on worker-0/1, fill worker-2's root disk) -> heal. The tests
read what it recorded. The expected label sets come from router/sim/scenarios.py (what a real
cluster's alerts carry), plus the differences the model documents (tests/e2e/cluster.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from router.sim import scenarios
from tests.e2e.cluster import ClusterExporter, E2ECluster
from tests.e2e.rules import (
    DROPPED_GROUPS,
    CatalogueError,
    catalogue_path,
    catalogue_rules,
    load_catalogue,
    scale_duration,
    scale_ranges_in,
)
from tests.promharness import Harness, HarnessError, _uid, render

FACTOR = 1 / 90  # 10m -> 7s, 15m -> 10s, 30m -> 20s, 1h -> 40s
STOPPED, FILLED = "worker-5", "worker-2"
PROMTOOL = os.environ.get("PROMTOOL_BINARY", "/usr/bin/promtool")
T0 = datetime(2025, 1, 1, tzinfo=UTC)  # any instant: scenarios' times are not compared

Key = frozenset[tuple[str, str]]


def key(labels: dict[str, str]) -> Key:
    return frozenset((k, v) for k, v in labels.items() if k != "alertstate")


def show(keys: set[Key]) -> str:
    return "\n".join(sorted(json.dumps(dict(sorted(k))) for k in keys))


def promtool_binary() -> str:
    if os.access(PROMTOOL, os.X_OK):
        return PROMTOOL
    raise HarnessError(
        f"{PROMTOOL} is missing: install Debian's `prometheus` package (bash scripts/install-externals.sh); "
        "PROMTOOL_BINARY=/path overrides the location"
    )


# ---------------------------------------------------------------------------- rules.py, no server


def test_scale_duration() -> None:
    assert scale_duration("15m", 1 / 30) == "30s"
    assert scale_duration("15m", 1 / 60) == "15s"
    assert scale_duration("1h30m", 1 / 60) == "1m30s"
    assert scale_duration("1h", 1) == "1h"
    assert scale_duration("500ms", 1) == "1s"  # whole seconds, at least 1s
    assert scale_duration("30s", 1 / 90) == "1s"
    assert scale_duration("10m", 1 / 90) == "7s"  # 6.67 rounds to 7
    assert scale_duration("0s", 1 / 90) == "0s"
    assert scale_duration("1d", 1 / 60) == "24m"
    with pytest.raises(ValueError):
        scale_duration("15 minutes", 1)
    assert scale_ranges_in('rate(x[5m]) and y[15m:1m] and z=~"v[0-9]*"', 1 / 60) == (
        'rate(x[5s]) and y[15s:1s] and z=~"v[0-9]*"'
    )


def test_catalogue_rules_keep_everything_but_for() -> None:
    catalogue = load_catalogue()
    document = yaml.safe_load(catalogue_rules(FACTOR))
    rules = [(group["name"], rule) for group in document["groups"] for rule in group["rules"]]
    expected = [r for r in catalogue if r["group"] not in DROPPED_GROUPS]
    assert len(rules) == len(expected) == 175
    assert [g["name"] for g in document["groups"]] == list(dict.fromkeys(r["group"] for r in expected))
    for (group, rule), source in zip(rules, expected, strict=True):
        assert (group, rule["alert"], rule["expr"]) == (
            source["group"],
            source["alertname"],
            source["expr"].strip(),
        )
        assert rule["labels"] == {"severity": source["severity"], **(source["static_labels"] or {})}
        if source["for"] in (None, "0s"):
            assert "for" not in rule
        else:
            assert rule["for"] == scale_duration(source["for"], FACTOR)
        for annotation in ("summary", "description", "runbook_url"):
            assert rule.get("annotations", {}).get(annotation) == (source[annotation] or None)
    by_name = {rule["alert"]: rule for _, rule in rules}
    assert by_name["KubeNodeNotReady"]["for"] == "10s"
    assert by_name["TargetDown"]["for"] == "7s"
    assert "for" not in by_name["Watchdog"]
    assert "KubeProxyDown" not in by_name
    picked = yaml.safe_load(catalogue_rules(1 / 30, ["KubeProxyDown", "NodeFilesystemAlmostOutOfSpace"]))
    assert [
        (r["alert"], r["for"], r["labels"]["severity"]) for g in picked["groups"] for r in g["rules"]
    ] == [
        ("NodeFilesystemAlmostOutOfSpace", "1m", "warning"),
        ("NodeFilesystemAlmostOutOfSpace", "1m", "critical"),
        ("KubeProxyDown", "30s", "critical"),
    ]
    with pytest.raises(CatalogueError, match="NoSuchAlert"):
        catalogue_rules(1, ["NoSuchAlert"])


def test_missing_catalogue_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("E2E_ALERT_CATALOGUE", str(tmp_path / "nope.json"))
    with pytest.raises(CatalogueError, match=r"expected .*nope\.json"):
        catalogue_rules(1)
    monkeypatch.delenv("E2E_ALERT_CATALOGUE")
    assert catalogue_path().name == "kubernetes-alerts.json"


@pytest.mark.parametrize("scale_ranges", [False, True])
def test_promtool_accepts_the_rule_file(tmp_path: Path, scale_ranges: bool) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(catalogue_rules(FACTOR, scale_ranges=scale_ranges))
    result = subprocess.run(
        [promtool_binary(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 175 rules found" in result.stdout


# ---------------------------------------------------------------------------- cluster.py, no server


def test_ksm_text_shows_breaks_as_ksm_prints_them() -> None:
    cluster = E2ECluster(None)
    lines = set(cluster_text(cluster).splitlines())
    assert 'kube_node_status_condition{node="worker-5",condition="Ready",status="true"} 1' in lines
    assert not any(line.startswith("kube_node_spec_taint") for line in lines)
    generation = cluster.generation
    cluster.stop_node(STOPPED)
    coredns = cluster.crash_coredns()
    assert cluster.generation == generation + 3
    lines = set(cluster_text(cluster).splitlines())
    assert 'kube_node_status_condition{node="worker-5",condition="Ready",status="unknown"} 1' in lines
    assert (
        'kube_node_spec_taint{node="worker-5",key="node.kubernetes.io/unreachable",value="",'
        'effect="NoSchedule"} 1' in lines
    )
    postgres = cluster.pods[("shop", "postgres-0")]
    uid = _uid(None, postgres)
    assert (
        f'kube_pod_status_ready{{namespace="shop",pod="postgres-0",uid="{uid}",condition="false"}} 1' in lines
    )
    assert 'kube_statefulset_status_replicas_ready{namespace="shop",statefulset="postgres"} 0' in lines
    assert 'kube_daemonset_status_number_available{namespace="kube-system",daemonset="kube-proxy"} 5' in lines
    assert (
        'kube_deployment_status_replicas_available{namespace="kube-system",deployment="coredns"} 0' in lines
    )
    pod = cluster.pods[("kube-system", coredns[0])]
    assert (
        f'kube_pod_container_status_waiting_reason{{namespace="kube-system",pod="{pod.name}",'
        f'uid="{_uid(None, pod)}",container="coredns",reason="CrashLoopBackOff"}} 1'
    ) in lines
    assert not cluster.target_up("kube-dns", pod.name)
    assert not cluster.target_up("kubelet", STOPPED) and cluster.target_up("kubelet", "worker-4")
    cluster.fill_disk(FILLED)
    text = cluster.node_exporter_text(FILLED)
    assert (
        'node_filesystem_avail_bytes{device="/dev/nvme0n1p1",fstype="ext4",mountpoint="/"} 1073741824' in text
    )
    cluster.start_node(STOPPED)
    cluster.heal_coredns()
    cluster.free_disk(FILLED)
    lines = set(cluster_text(cluster).splitlines())
    assert not any(
        line.startswith(("kube_node_spec_taint", "kube_pod_container_status_waiting_reason"))
        for line in lines
    )
    assert 'kube_node_status_condition{node="worker-5",condition="Ready",status="true"} 1' in lines


def cluster_text(cluster: E2ECluster) -> str:
    return render([cluster])


def test_named_cluster_labels_every_target() -> None:
    with Harness() as h:
        exporter = ClusterExporter(h, E2ECluster("c1"))
        targets = exporter.targets()
        configs = {c["job_name"]: c for c in exporter.scrape_configs()}
    assert set(configs) == {
        "kube-state-metrics", "node-exporter", "kubelet", "kube-dns",
        "apiserver", "kube-scheduler", "kube-controller-manager",
    }  # fmt: skip
    assert configs["kube-state-metrics"]["honor_labels"] and configs["kubelet"]["honor_labels"]
    assert all(c["scrape_interval"] == "1s" for c in configs.values())
    assert all(g["labels"]["cluster"] == "c1" for groups in targets.values() for g in groups)
    assert len(targets["node-exporter"]) == len(targets["kubelet"]) == 6
    assert len(targets["kube-dns"]) == 2
    assert all(c["http_sd_configs"][0]["refresh_interval"] == "1s" for c in configs.values())
    static = {c["job_name"]: c["static_configs"] for c in exporter.scrape_configs(dynamic=False)}
    assert static == targets


# ---------------------------------------------------------------------------- the real Prometheus


@dataclass
class Timeline:
    cluster: E2ECluster
    up: list[dict[str, str]] = field(default_factory=list)
    healthy: list[dict[str, str]] = field(default_factory=list)  # ALERTS in any state
    first_firing: dict[Key, float] = field(default_factory=dict)  # seconds after the breaks
    fired: set[Key] = field(default_factory=set)  # firing once everything expected fired
    pending_then: set[Key] = field(default_factory=set)
    restarts: list[float] = field(default_factory=list)
    watchdog_missing: list[str] = field(default_factory=list)
    healed_after: float | None = None
    after_heal: list[dict[str, str]] = field(default_factory=list)
    exporter_pod: dict[str, str] = field(default_factory=dict)
    coredns: list[str] = field(default_factory=list)
    log: str = ""


def expected_stop_node(cluster: E2ECluster) -> set[Key]:
    node = cluster.nodes[STOPPED]
    pods = cluster.pods_on(STOPPED)
    refs = [(p.namespace, p.name, workload_kind(p), workload(cluster, p)) for p in pods]
    specs = scenarios.node_down(
        STOPPED,
        refs,
        list(cluster.daemonsets),
        T0,
        node_ip=node.ip,
        cluster_nodes=len(cluster.nodes),
        external_labels={},
    )
    keys = {key(s.labels) for s in specs}
    # No eviction in the model: Deployments with a pod there stay short (see cluster.py).
    for namespace, name in sorted({(r[0], r[3]) for r in refs if r[2] == "Deployment"}):
        keys.add(ksm_alert("KubeDeploymentReplicasMismatch", namespace=namespace, deployment=name))
    return keys


def expected_crash_coredns(cluster: E2ECluster) -> set[Key]:
    pods = [p.name for p in cluster.coredns_pods()]
    specs = scenarios.coredns_crash(pods, {}, T0, total_pods=len(pods), external_labels={})
    keys = set()
    for spec in specs:
        labels = dict(spec.labels)
        if "uid" in labels:  # scenarios derive their own UIDs; take the served one
            labels["uid"] = _uid(cluster.name, cluster.pods[("kube-system", labels["pod"])])
        keys.add(key(labels))
    # Crash-looping pods are not ready either (scenarios.coredns_crash leaves this out).
    for pod in pods:
        keys.add(key({"alertname": "KubePodNotReady", "severity": "warning", "namespace": "kube-system",
                      "pod": pod, "job": "kube-state-metrics"}))  # fmt: skip
    return keys


def expected_fill_disk(cluster: E2ECluster) -> set[Key]:
    target = scenarios.node_exporter_labels(FILLED, cluster.node_exporter_pod(FILLED))
    fs = {"device": "/dev/nvme0n1p1", "fstype": "ext4", "mountpoint": "/"}
    return {
        key({"alertname": name, "severity": severity, **target, **fs})
        for name in ("NodeFilesystemAlmostOutOfSpace", "NodeFilesystemSpaceFillingUp")
        for severity in ("warning", "critical")
    }


def ksm_alert(alertname: str, **labels: str) -> Key:
    return key({"alertname": alertname, "severity": "warning", **scenarios.ksm_labels(), **labels})


def workload_kind(pod: Any) -> str:
    return "Deployment" if pod.owner_kind == "ReplicaSet" else pod.owner_kind


def workload(cluster: E2ECluster, pod: Any) -> str:
    if pod.owner_kind == "ReplicaSet":
        return cluster.replicasets[(pod.namespace, pod.owner_name)]
    return pod.owner_name


WATCHDOG = key({"alertname": "Watchdog", "severity": "none"})


@pytest.fixture(scope="module")
def timeline() -> Iterator[Timeline]:
    cluster = E2ECluster(None)
    record = Timeline(cluster)
    expected = expected_stop_node(cluster) | expected_crash_coredns(cluster) | expected_fill_disk(cluster)
    expected.add(WATCHDOG)
    with Harness() as h:
        exporter = ClusterExporter(h, cluster)
        prom = exporter.prometheus(rules=catalogue_rules(FACTOR, scale_ranges=True))
        exporter.wait_scraped(prom)
        time.sleep(3)  # a few evaluations: anything inherent would be pending by now
        record.up = [row["metric"] for row in prom.query("up")]
        assert all(row["value"][1] == "1" for row in prom.query("up")), prom.query("up == 0")
        record.healthy = exporter.alerts(prom, None)

        cluster.stop_node(STOPPED)
        record.coredns = cluster.crash_coredns()
        cluster.fill_disk(FILLED)
        t0 = time.monotonic()
        deadline = t0 + 75
        while time.monotonic() < deadline:
            now = time.monotonic() - t0
            try:
                firing = {key(a) for a in exporter.alerts(prom)}
            except Exception:  # a query racing the TSDB: try again
                time.sleep(0.25)
                continue
            if WATCHDOG not in firing:
                record.watchdog_missing.append(f"{now:.1f}s")
            for k in firing:
                record.first_firing.setdefault(k, now)
            restarts = prom.query('sum(kube_pod_container_status_restarts_total{namespace="kube-system",'
                                  'container="coredns"})')  # fmt: skip
            if restarts:
                record.restarts.append(float(restarts[0]["value"][1]))
            if expected <= firing:
                time.sleep(2)  # anything else about to fire would show now
                record.fired = {key(a) for a in exporter.alerts(prom)}
                record.pending_then = {key(a) for a in exporter.alerts(prom, "pending")}
                break
            time.sleep(0.25)
        else:
            record.fired = {key(a) for a in exporter.alerts(prom)}

        cluster.start_node(STOPPED)
        cluster.heal_coredns()
        cluster.free_disk(FILLED)
        t1 = time.monotonic()
        while time.monotonic() < t1 + 30:
            alerts = exporter.alerts(prom, None)
            if {key(a) for a in alerts} == {WATCHDOG}:
                record.healed_after = time.monotonic() - t1
                break
            time.sleep(0.25)
        time.sleep(2)
        record.after_heal = exporter.alerts(prom, None)
        prom.stop()
        record.log = prom.log.read_text(errors="replace")
    yield record


def test_targets_carry_kube_prometheus_labels(timeline: Timeline) -> None:
    cluster = timeline.cluster
    by_job: dict[str, list[dict[str, str]]] = {}
    for labels in timeline.up:
        by_job.setdefault(labels["job"], []).append({k: v for k, v in labels.items() if k != "__name__"})
    kubelets = {labels["node"]: labels for labels in by_job["kubelet"]}
    assert kubelets["worker-3"] == scenarios.kubelet_labels("worker-3", cluster.nodes["worker-3"].ip)
    exporters = {labels["instance"]: labels for labels in by_job["node-exporter"]}
    assert exporters["worker-3"] == scenarios.node_exporter_labels(
        "worker-3", cluster.node_exporter_pod("worker-3")
    )
    assert by_job["kube-state-metrics"] == [scenarios.ksm_labels()]
    dns = {labels["pod"]: labels for labels in by_job["kube-dns"]}
    assert set(dns) == {p.name for p in cluster.coredns_pods()}
    assert {(k, v) for k, v in next(iter(dns.values())).items() if k != "pod" and k != "instance"} == {
        ("job", "kube-dns"), ("namespace", "kube-system"), ("service", "kube-dns"),
        ("endpoint", "metrics"), ("container", "coredns"),
    }  # fmt: skip
    assert {labels["job"] for labels in timeline.up} == {
        "kube-state-metrics", "node-exporter", "kubelet", "kube-dns",
        "apiserver", "kube-scheduler", "kube-controller-manager",
    }  # fmt: skip
    assert len(by_job["kubelet"]) == len(by_job["node-exporter"]) == 6


def test_healthy_cluster_fires_watchdog_only(timeline: Timeline) -> None:
    # Nothing is even pending: the absent() "Down" alerts see their jobs, no target is down.
    assert [(a["alertname"], a["alertstate"]) for a in timeline.healthy] == [("Watchdog", "firing")]


def test_every_rule_evaluates(timeline: Timeline) -> None:
    # A rule whose evaluation fails (e.g. many-to-many matching on our series) would never fire.
    assert "Evaluating rule failed" not in timeline.log, timeline.log[-3000:]


def test_stop_node_raises_what_a_real_node_death_raises(timeline: Timeline) -> None:
    check_fired(timeline, expected_stop_node(timeline.cluster))
    seen = timeline.first_firing
    node_ready = seen[ksm_alert("KubeNodeNotReady", node=STOPPED, condition="Ready", status="true")]
    target_down = seen[key({"alertname": "TargetDown", "severity": "warning", "job": "kubelet",
                            "namespace": "kube-system", "service": "kubelet"})]  # fmt: skip
    assert 7 <= target_down < node_ready  # 10m x FACTOR, before the 15m alerts
    assert 10 <= node_ready <= 20


def test_crash_coredns_raises_what_a_real_crash_loop_raises(timeline: Timeline) -> None:
    check_fired(timeline, expected_crash_coredns(timeline.cluster))
    down = timeline.first_firing[key({"alertname": "CoreDNSDown", "severity": "critical"})]
    assert 10 <= down <= 20  # CoreDNSDown: no label but severity
    assert timeline.restarts and timeline.restarts[-1] > timeline.restarts[0]  # restarts rising


def test_fill_disk_raises_filesystem_alerts(timeline: Timeline) -> None:
    check_fired(timeline, expected_fill_disk(timeline.cluster))
    times: dict[str, float] = {}
    for k, t in timeline.first_firing.items():
        if dict(k).get("instance") == FILLED:
            times[dict(k)["alertname"]] = min(t, times.get(dict(k)["alertname"], t))
    assert 20 <= times["NodeFilesystemAlmostOutOfSpace"] <= 30  # 30m x FACTOR
    assert 40 <= times["NodeFilesystemSpaceFillingUp"] <= 50  # 1h x FACTOR


def test_breaks_fire_nothing_else(timeline: Timeline) -> None:
    cluster = timeline.cluster
    expected = expected_stop_node(cluster) | expected_crash_coredns(cluster) | expected_fill_disk(cluster)
    expected.add(WATCHDOG)
    assert timeline.fired == expected, (
        f"unexpected:\n{show(timeline.fired - expected)}\nmissing:\n{show(expected - timeline.fired)}"
    )
    assert not timeline.pending_then, show(timeline.pending_then)


def test_watchdog_always_fires(timeline: Timeline) -> None:
    assert not timeline.watchdog_missing
    assert any(a["alertname"] == "Watchdog" for a in timeline.after_heal)


def test_heal_resolves_everything_but_watchdog(timeline: Timeline) -> None:
    assert timeline.healed_after is not None, timeline.after_heal
    assert timeline.healed_after < 15  # KubePodCrashLooping's 5m window, scaled: ~4s
    assert [(a["alertname"], a["alertstate"]) for a in timeline.after_heal] == [("Watchdog", "firing")]


def check_fired(timeline: Timeline, expected: set[Key]) -> None:
    missing = expected - timeline.fired
    assert not missing, f"never fired:\n{show(missing)}\nfiring:\n{show(timeline.fired)}"
