"""Storms shaped by someone else: bench/foreign is a generator written from the public references
only (the kube-prometheus catalogue, kube-state-metrics' series, Alertmanager's behaviour), without
reading the engine, its rules or our own worlds, and a scorer that sees the engine only through
`alert-router replay`. Its storms carry what ours do not: raw dumps beside alerts with a `cluster`
label, Endpoints by IP, a target down for days, single-replica rollouts stuck behind one pod, two
rollouts whose pods share a healthy node, other groupings and inhibitions; and single storms that
found a class (each fixed, each held here).

The floors are issue G's targets where the storms can decide them (precision 0.95, at most 1.1
pages per incident, nothing healed or noise paged, 90% of symptoms attached), recall with a
margin for what this range holds that the engine cannot tell yet (a full disk whose only early
sign is one service's latency: docs/worlds.md; 0.992 on this range). A run of 100 storms from
seed 11 takes about 40 seconds; FOREIGN_STORMS changes the count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FOREIGN = Path(__file__).resolve().parents[1] / "bench" / "foreign"
SEED = 11
COUNT = int(os.environ.get("FOREIGN_STORMS", "100"))


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(FOREIGN / script), *args], capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stderr[-2000:]}"
    return done.stdout


def test_storms_nobody_here_wrote_meet_the_floors(tmp_path: Path):
    storms = tmp_path / "storms"
    _run("generate.py", "--count", str(COUNT), "--seed", str(SEED), "--out", str(storms))
    report = tmp_path / "score.json"
    printed = _run("score.py", str(storms), "--jobs", "2", "--json", str(report), "--show-failures", "20")
    summary = json.loads(report.read_text())["summary"]
    assert summary["storms"] == COUNT
    assert summary["replay_errors"] == 0 and summary["storms_with_stderr_problems"] == 0, printed
    assert summary["precision"] >= 0.95, printed
    assert summary["recall"] >= 0.98, printed
    assert summary["pages_per_real_incident"] <= 1.1, printed
    assert summary["healed_or_noise_paged"] == 0, printed
    assert summary["symptoms_attached"] >= 0.90, printed


def test_a_burn_rate_still_firing_when_the_recording_ends_pages_nothing_after_it(tmp_path: Path):
    """Storm 9 of seed 8: etcd lost its leader and healed 29 minutes before the recording ended,
    its `KubeAPIErrorBudgetBurn` (1h window) still firing then. The replay runs the clock on, but
    no resolve can come after the end: the burn rate must not outlive its root there and page on
    the apiserver 46 minutes after the last delivery (it did)."""
    storms = tmp_path / "storms"
    _run("generate.py", "--count", "10", "--seed", "8", "--out", str(storms))
    storm = storms / "s8-0009"
    truth = json.loads((storm / "truth.json").read_text())
    assert truth["faults"][0]["kind"] == "etcd_quorum"
    pages = _pages(storm, tmp_path / "notifications.jsonl")
    assert any(p["root"]["entity"] == "etcd/default/etcd" for p in pages)
    assert not [p for p in pages if p["root"]["entity"].startswith("apiserver/")], pages


def test_two_bad_rollouts_on_one_healthy_node_page_as_rollouts(tmp_path: Path):
    """Storm 70 of seed 10: two Deployments roll out a new ReplicaSet whose one pod each the
    scheduler put on the same healthy node; `KubePodNotReady` of both arrives before either
    crash-loops. They paged as that node (two workloads failing there alone); each Deployment
    must page, and no node."""
    storms = tmp_path / "storms"
    _run("generate.py", "--count", "71", "--seed", "10", "--out", str(storms))
    storm = storms / "s10-0070"
    truth = json.loads((storm / "truth.json").read_text())
    rollouts = {f["root"] for f in truth["faults"] if f["kind"] == "bad_rollout"}
    assert len(rollouts) == 2
    paged = {p["root"]["entity"] for p in _pages(storm, tmp_path / "notifications.jsonl")}
    assert rollouts <= paged
    assert not [entity for entity in paged if entity.startswith("node/")]


def test_a_warning_inhibited_as_it_healed_is_not_paged(tmp_path: Path):
    """Storm 164 of seed 2: a node blip raises error rates; `notifications/notifier`'s warning
    is muted by `cassandra`'s critical alert of the same name and namespace, and heals while
    muted. Alertmanager never sends its resolve: it is absent from its group's next flush. It
    paged "still firing after 25m"; it has left its group and must page nothing."""
    storms = tmp_path / "storms"
    _run("generate.py", "--count", "165", "--seed", "2", "--out", str(storms))
    storm = storms / "s2-0164"
    paged = {p["root"]["entity"] for p in _pages(storm, tmp_path / "notifications.jsonl")}
    assert "service/default/notifications/notifier" not in paged
    assert not [entity for entity in paged if entity.startswith("service/")], paged


def test_two_slow_services_on_a_full_disk_wait_for_its_node(tmp_path: Path):
    """Storm 54 of seed 13: a node's disk fills; two Services in two namespaces with an
    endpoint there slow down 27 minutes before `NodeFilesystemAlmostOutOfSpace` (`for: 30m`)
    arrives, with no prediction and the kubelet's pressure alerts inhibited. Each Service
    paged at its hold's end; they must wait for the node, which pages with them as symptoms."""
    storms = tmp_path / "storms"
    _run("generate.py", "--count", "55", "--seed", "13", "--out", str(storms))
    storm = storms / "s13-0054"
    truth = json.loads((storm / "truth.json").read_text())
    [fault] = truth["faults"]
    assert fault["kind"] == "node_disk"
    pages = _pages(storm, tmp_path / "notifications.jsonl")
    assert [p["root"]["entity"] for p in pages] == [fault["root"]]
    symptoms = {s["entity"] for s in pages[0]["symptoms"]}
    assert {"service/live-apac/ledger/auth", "service/live-apac/crm/indexer"} <= symptoms


def _storm(tmp_path: Path, seed: int, index: int) -> tuple[Path, dict]:
    storms = tmp_path / "storms"
    _run("generate.py", "--count", str(index + 1), "--seed", str(seed), "--out", str(storms))
    storm = storms / f"s{seed}-{index:04d}"
    return storm, json.loads((storm / "truth.json").read_text())


def test_one_slow_service_on_a_full_disk_waits_for_its_node(tmp_path: Path):
    """Storm 140 of seed 17: a node's disk fills; one Service with an endpoint there slows
    down, alone, 27 minutes before `NodeFilesystemAlmostOutOfSpace` arrives (no prediction
    delivered, the kubelet's pressure alerts inhibited). It paged at its hold's end, a few
    minutes before the node; a Service only slow, with nothing failing beside it, waits for it."""
    storm, truth = _storm(tmp_path, 17, 140)
    [fault] = truth["faults"]
    assert fault["kind"] == "node_disk"
    pages = _pages(storm, tmp_path / "notifications.jsonl")
    assert [p["root"]["entity"] for p in pages] == [fault["root"]]
    assert "service/default/data/webhooks" in {s["entity"] for s in pages[0]["symptoms"]}


def test_a_full_disk_beside_a_dead_node_of_its_zone_is_no_zone(tmp_path: Path):
    """Storm 122 of seed 17: in a zone of four nodes one node's disk fills (its kubelet reports
    the pressure) and another dies. Two of four failing made the zone; a node reporting on
    itself is up. Each node pages."""
    storm, truth = _storm(tmp_path, 17, 122)
    roots = {f["root"] for f in truth["faults"]}
    paged = {p["root"]["entity"] for p in _pages(storm, tmp_path / "notifications.jsonl")}
    assert roots <= paged
    assert not [entity for entity in paged if entity.startswith("zone/")], paged


def test_coredns_down_with_the_zone_that_held_it_pages_once(tmp_path: Path):
    """Storm 43 of seed 10: a zone that held both CoreDNS replicas is lost; `CoreDNSDown`
    arrives after the zone paged and opened a second page on cluster DNS. Every CoreDNS pod
    fails with the zone: CoreDNSDown is its symptom."""
    storm, truth = _storm(tmp_path, 10, 43)
    [fault] = [f for f in truth["faults"] if f["must_page"]]
    assert fault["kind"] == "zone_down"
    pages = _pages(storm, tmp_path / "notifications.jsonl")
    assert [p["root"]["entity"] for p in pages] == [fault["root"]]


def test_a_node_reported_down_before_it_says_so_is_not_read_as_dns(tmp_path: Path):
    """Storm 132 of seed 16: a node of six dies beside two bad rollouts; five Services fail
    over four namespaces before the node's own alerts, and cluster DNS was inferred and paged
    although the kubelets' `TargetDown` already counted one node down. DNS waits for it: the
    node and both rollouts page, DNS does not."""
    storm, truth = _storm(tmp_path, 16, 132)
    roots = {f["root"] for f in truth["faults"] if f["must_page"]}
    paged = {p["root"]["entity"] for p in _pages(storm, tmp_path / "notifications.jsonl")}
    assert paged == roots


def test_a_memory_pressure_that_slowed_services_for_twenty_minutes_pages(tmp_path: Path):
    """Storm 53 of seed 2: a node runs short of memory for twenty minutes; the kubelet evicts
    (info) and five Services with pods there slow down within four minutes, two of them
    critical. Their latency waited out its 25-minute hold for a cause that had already shown,
    and the pressure healed first: a notice. Once the cause shows, a held symptom waits only to
    see whether it heals: one page, on the node, while it still slows them."""
    storm, truth = _storm(tmp_path, 2, 53)
    [fault] = truth["faults"]
    assert fault["kind"] == "node_memory"
    pages = _pages(storm, tmp_path / "notifications.jsonl")
    assert [p["root"]["entity"] for p in pages] == [fault["root"]]
    assert pages[0]["at"] < fault["heal"]


def test_a_replica_short_on_a_node_of_a_lost_zone_is_not_its_workload(tmp_path: Path):
    """Storm 11 of seed 22: a zone of two nodes is lost. Before the nodes' own alerts, a
    StatefulSet with its one failing replica on one of them reports it short, while four other
    applications fail on that node: one replica and its workload's own alert made the
    StatefulSet a root, paged half a second before the zone was found. The node under it is the
    likelier cause: one page, on the zone."""
    storm, truth = _storm(tmp_path, 22, 11)
    [fault] = truth["faults"]
    assert fault["kind"] == "zone_down"
    pages = _pages(storm, tmp_path / "notifications.jsonl")
    assert [p["root"]["entity"] for p in pages] == [fault["root"]]


def test_three_bad_rollouts_in_two_namespaces_are_no_dns_outage(tmp_path: Path):
    """Storm 19 of seed 15: three Deployments in two namespaces roll out new pods that crash,
    on three nodes, within three minutes: cluster DNS's own pattern, and it was inferred and
    paged. Their serving pods resolve names through DNS as well: a rollout gone bad points at no
    DNS. Each rollout pages, DNS does not."""
    storm, truth = _storm(tmp_path, 15, 19)
    roots = {f["root"] for f in truth["faults"] if f["must_page"]}
    assert {f["kind"] for f in truth["faults"]} == {"bad_rollout"}
    paged = [p["root"]["entity"] for p in _pages(storm, tmp_path / "notifications.jsonl")]
    assert sorted(paged) == sorted(roots)


def test_a_warning_muted_by_its_critical_on_another_service_is_not_paged(tmp_path: Path):
    """Storm 191 of seed 14: a bad rollout's Service fires its error-rate warning; three minutes
    later the same alert turns critical on another Service of the namespace (a dead node's), on
    kube-prometheus' critical sub-route. Alertmanager mutes the warning, which heals while muted:
    no delivery ever resolves it. It outlived the rollout's incident and paged on its own, half
    an hour after it healed. Read with Alertmanager's inhibit rules it was muted, and without
    news of it since it is not judged afresh: the node and the rollout page, nothing else."""
    storm, truth = _storm(tmp_path, 14, 191)
    roots = {f["root"] for f in truth["faults"] if f["must_page"]}
    paged = [p["root"]["entity"] for p in _pages(storm, tmp_path / "notifications.jsonl")]
    assert sorted(paged) == sorted(roots)


def test_a_full_disk_muted_by_another_nodes_critical_one_is_still_paged(tmp_path: Path):
    """Storm 134 of seed 20: two nodes' disks fill. kube-prometheus' node-exporter alerts carry
    `namespace="monitoring"`, so the first node's `NodeFilesystemAlmostOutOfSpace` critical
    mutes the second's warning, nine seconds before it was due. Nothing will say whether it
    healed (it did not): a muted root stays what it was, and both nodes page."""
    storm, truth = _storm(tmp_path, 20, 134)
    roots = {f["root"] for f in truth["faults"] if f["must_page"]}
    assert len(roots) == 2 and {f["kind"] for f in truth["faults"]} == {"node_disk"}
    paged = [p["root"]["entity"] for p in _pages(storm, tmp_path / "notifications.jsonl")]
    assert sorted(paged) == sorted(roots)


def _pages(storm: Path, out: Path) -> list[dict]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "router.cli.main",
            "replay",
            "--topology",
            str(storm / "cluster.prom"),
            "--alerts",
            str(storm / "alerts.jsonl"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [n for line in out.read_text().splitlines() if (n := json.loads(line))["action"] == "page"]
