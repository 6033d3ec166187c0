"""Topology discovery from a real Prometheus, and the refresher that keeps it live.

A Prometheus (tests/promharness.py) scrapes kube-state-metrics text of test clusters every
second; each test owns its own cluster (its own `cluster` label), so the tests share one
Prometheus and still cannot see each other's changes.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from integrations.prometheus.client import PrometheusClient, PrometheusError, _VectorDecoder
from rules.ruleset import RuleSet
from tests.promharness import Harness, HarnessError, PrometheusProcess, TestCluster, render
from topology.discovery import DiscoveryError, PrometheusDiscovery
from topology.ksm import load_ksm_text
from topology.refresh import TopologyRefresher


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[Harness, PrometheusProcess]]:
    with Harness() as harness:
        try:
            prom = harness.prometheus(external_labels={"cluster": "home"})
        except HarnessError as exc:
            pytest.fail(str(exc))
        yield harness, prom


def serve(env: tuple[Harness, PrometheusProcess], name: str | None, **kw: object) -> TestCluster:
    harness, prom = env
    cluster = TestCluster(name, **kw)  # type: ignore[arg-type]
    harness.ksm.clusters[str(name)] = cluster
    harness.wait_scraped(prom, cluster)
    return cluster


def discovery(url: str, *clusters: str, timeout: float = 10.0) -> PrometheusDiscovery:
    return PrometheusDiscovery(PrometheusClient(url, timeout=timeout, retries=0), clusters=list(clusters))


def metric(refresher: TopologyRefresher, name: str, **labels: str) -> float | None:
    return refresher.metrics.registry.get_sample_value(name, labels)


def refresher_for(source, **kw: object) -> TopologyRefresher:
    return TopologyRefresher(source, registry=CollectorRegistry(), **kw)  # type: ignore[arg-type]


def edges(topology) -> set[tuple[str, str, bool]]:
    return set(topology.graph.edges(data="redundant"))


# -- the streaming decoder, without Prometheus ----------------------------------------------------


BODY = (
    '{"status":"success","data":{"resultType":"vector","result":['
    '{"metric":{"__name__":"kube_pod_info","namespace":"shop","pod":"a\\"b\\\\c","node":"wörker-1"},'
    '"value":[1759716000.123,"1"]},'
    '{"metric":{"__name__":"kube_pod_info","namespace":"shop","pod":"x]y}","node":""},"value":[1,"0"]}'
    ']},"warnings":["store eu-1 unavailable"]}'
).encode()


def decode(body: bytes, size: int) -> tuple[list[object], list[str]]:
    decoder = _VectorDecoder("q")
    out: list[object] = []
    for start in range(0, len(body), size):
        out += list(decoder.feed(body[start : start + size]))
    out += list(decoder.finish())
    return out, decoder.warnings


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 100000])
def test_decoder_yields_every_element_whatever_the_chunking(size: int):
    elements, warnings = decode(BODY, size)
    assert elements == json.loads(BODY)["data"]["result"]
    assert warnings == ["store eu-1 unavailable"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (BODY[: len(BODY) // 2], "truncated response"),
        (BODY[:-1], "malformed JSON in the end of the response"),
        (
            b'{"status":"error","errorType":"bad_data","error":"parse error at char 3"}',
            "bad_data: parse error",
        ),
        (b'{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}', "result type 'scalar'"),
        (b"<html>502 Bad Gateway</html>", "malformed JSON in the response"),
    ],
)
def test_decoder_rejects_broken_answers(body: bytes, message: str):
    with pytest.raises(PrometheusError, match=message):
        decode(body, 5)


def test_selector_typos_are_reported_before_any_query():
    client = PrometheusClient("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="selector: 'job=kube-state-metrics' is not a label matcher"):
        PrometheusDiscovery(client, selector="job=kube-state-metrics")
    ok = PrometheusDiscovery(client, selector='{job="kube-state-metrics"}', clusters=["a.b", "c"])
    assert ok.query_of("kube_pod_status_phase") == (
        'kube_pod_status_phase{job="kube-state-metrics",cluster=~"a\\\\.b|c",phase=~"Succeeded|Failed"} == 1'
    )


# -- discovery through a real Prometheus ------------------------------------------------------------


def test_discovered_graph_equals_the_text_loader_on_the_same_cluster(env):
    cluster = serve(env, "same")
    result = discovery(env[1].url, "same").discover_sync()
    loaded = load_ksm_text(render([cluster]))
    assert set(result.topology.graph.nodes) == set(loaded.graph.nodes)
    assert edges(result.topology) == edges(loaded)
    assert result.topology.summary()["pod"] == len(cluster.pods) == 19
    assert result.stats.series["kube_pod_info"] == 19
    assert result.stats.clusters == ["same"] and result.warnings == []
    # Indexes too: the node of an IP, the pod of an IP.
    pod = cluster.pods_of("shop", "checkout")[0]
    assert result.topology.pod_by_ip("same", pod.ip) == f"pod/same/shop/{pod.name}"
    assert result.topology.node_by_instance("same", "10.0.0.12:9100") == "node/same/worker-2"
    assert "service/same/shop/checkout" in result.topology.dependents(f"pod/same/shop/{pod.name}")


def test_several_clusters_through_one_prometheus_and_a_cluster_filter(env):
    serve(env, "multi-a", nodes=3)
    serve(env, "multi-b", nodes=4)
    both = discovery(env[1].url, "multi-a", "multi-b").discover_sync()
    assert both.stats.clusters == ["multi-a", "multi-b"]
    assert "node/multi-a/worker-2" in both.topology and "node/multi-b/worker-3" in both.topology
    assert "node/multi-a/worker-3" not in both.topology
    # Each cluster has its own control plane and DNS.
    assert "dns/multi-b/cluster-dns" in both.topology and "apiserver/multi-a/kube-apiserver" in both.topology
    only_b = discovery(env[1].url, "multi-b").discover_sync()
    assert only_b.stats.clusters == ["multi-b"]
    assert not any(name.split("/")[1] == "multi-a" for name in only_b.topology.graph.nodes)


def test_series_without_cluster_label_take_the_prometheus_external_cluster_label(env):
    cluster = serve(env, None, nodes=2)
    client = PrometheusClient(env[1].url, retries=0)
    result = PrometheusDiscovery(client, selector='cluster=""').discover_sync()
    assert result.stats.clusters == ["home"]  # Prometheus' `global.external_labels.cluster`
    assert "node/home/worker-1" in result.topology
    assert result.topology.summary()["pod"] == len(cluster.pods)
    named = PrometheusDiscovery(client, selector='cluster=""', default_cluster="prod").discover_sync()
    assert "node/prod/worker-1" in named.topology


def test_a_cluster_prometheus_knows_nothing_about_is_an_error(env):
    with pytest.raises(
        DiscoveryError, match="no kube_node_info nor kube_pod_info series for clusters nowhere"
    ):
        discovery(env[1].url, "nowhere").discover_sync()


def test_a_pod_born_after_the_last_refresh_maps_through_its_workload(env):
    harness, prom = env
    cluster = serve(env, "born")
    topology = discovery(prom.url, "born").discover_sync().topology
    [template] = cluster.pods_of("web", "frontend")[:1]
    newborn = template.name[:-5] + "zzzzz"
    cluster.add_pod("web", newborn, "worker-1", "ReplicaSet", template.owner_name)
    labels = {"alertname": "KubePodCrashLooping", "namespace": "web", "pod": newborn, "cluster": "born"}
    rules = RuleSet.load()
    stale = rules.classify(labels, topology)
    assert stale.entity == "deployment/born/web/frontend" and "workload found by name" in stale.how
    harness.wait_scraped(prom, cluster)
    topology = discovery(prom.url, "born").discover_sync().topology
    fresh = rules.classify(labels, topology)
    assert fresh.entity == f"pod/born/web/{newborn}" and "not in topology" not in fresh.how
    assert topology.attrs(fresh.entity)["owner"] == "deployment/born/web/frontend"


# -- the refresher ----------------------------------------------------------------------------------


async def test_refresh_follows_a_removed_node_and_moved_pods(env):
    harness, prom = env
    cluster = serve(env, "moves", nodes=8)
    refresher = refresher_for(discovery(prom.url, "moves").discover)
    first = await refresher.refresh()
    assert first.result == "ok" and (first.nodes, first.pods) == (8, len(cluster.pods))
    assert (first.nodes_added, first.pods_added) == (8, len(cluster.pods))
    old_topology = refresher.topology

    victims = [p.name for p in cluster.pods_on("worker-3") if p.owner_kind != "DaemonSet"]
    recreated = cluster.remove_node("worker-3")
    moved = cluster.move_pod("shop", "postgres-0", "worker-5", new_name="postgres-0")
    harness.wait_scraped(prom, cluster)
    report = await refresher.refresh(reason="test")
    assert report.result == "ok", report.reason
    assert (report.nodes_added, report.nodes_removed) == (0, 1)
    # The DaemonSet pod is gone; the others are new pods elsewhere.
    assert report.pods_removed == len(victims) + 1 and report.pods_added == len(recreated)
    topology = refresher.topology
    assert topology is not old_topology  # swapped, not mutated: readers of the old one are safe
    assert "node/moves/worker-3" not in topology and "node/moves/worker-3" in old_topology
    assert dict(topology.dependencies(f"pod/moves/shop/{moved}"))["node/moves/worker-5"] is False
    assert topology.attrs("pod/moves/shop/postgres-0")["node"] == "node/moves/worker-5"
    for name in recreated:
        assert (
            topology.attrs(f"pod/moves/{_namespace(cluster, name)}/{name}")["node"] != "node/moves/worker-3"
        )
    assert metric(refresher, "alert_router_topology_changes_total", kind="node", change="removed") == 1
    assert metric(refresher, "alert_router_topology_refreshes_total", result="ok") == 2
    assert metric(refresher, "alert_router_topology_objects", kind="node") == 7
    assert metric(refresher, "alert_router_topology_last_refresh_ok") == 1
    assert metric(refresher, "alert_router_topology_age_seconds") < 30


def _namespace(cluster: TestCluster, pod: str) -> str:
    return next(ns for ns, name in cluster.pods if name == pod)


async def test_partial_data_is_refused_and_the_last_good_graph_stays(env):
    harness, prom = env
    cluster = serve(env, "partial", nodes=6)
    refresher = refresher_for(discovery(prom.url, "partial").discover)
    assert (await refresher.refresh()).result == "ok"
    good = refresher.topology
    cluster.truncate_pods(keep=9)
    harness.wait_scraped(prom, cluster)
    report = await refresher.refresh()
    assert report.result == "refused" and report.reason_kind == "drop"
    assert "pods of cluster partial would be removed" in report.reason and "> 20%" in report.reason
    assert refresher.topology is good
    assert metric(refresher, "alert_router_topology_last_refresh_ok") == 0
    assert metric(refresher, "alert_router_topology_refreshes_total", result="refused") == 1
    assert metric(refresher, "alert_router_topology_objects", kind="pod") == 19
    # An operator who knows the cluster shrank forces it.
    forced = await refresher.refresh(force=True)
    assert forced.result == "ok" and forced.reason == "forced" and refresher.topology is not good
    assert metric(refresher, "alert_router_topology_objects", kind="pod") == 9


async def test_a_real_shrink_is_accepted_when_consecutive_refreshes_agree(env):
    harness, prom = env
    cluster = serve(env, "shrink", nodes=6)
    refresher = refresher_for(discovery(prom.url, "shrink").discover, confirm_after=3)
    await refresher.refresh()
    for node in ("worker-1", "worker-2"):
        cluster.remove_node(node)
    harness.wait_scraped(prom, cluster)
    results = [(await refresher.refresh()).result for _ in range(3)]
    assert results == ["refused", "refused", "ok"]
    assert "shrink confirmed by 3 consecutive refreshes" in refresher.last_report.reason
    assert "node/shrink/worker-1" not in refresher.topology


async def test_a_cluster_vanishing_from_a_federated_view_is_refused(env):
    harness, prom = env
    serve(env, "fed-a", nodes=3)
    serve(env, "fed-b", nodes=3)
    refresher = refresher_for(discovery(prom.url, "fed-a", "fed-b").discover, confirm_after=2)
    await refresher.refresh()
    del harness.ksm.clusters["fed-b"]
    harness.wait_until(prom, 'kube_node_info{cluster="fed-b"}', lambda rows: not rows, what="fed-b gone")
    for _ in range(3):  # never confirmed: a whole cluster does not scale to nothing
        report = await refresher.refresh()
        assert report.result == "refused" and report.reason_kind == "emptied"
        assert "cluster fed-b would have no nodes (had 3)" in report.reason
    assert "node/fed-b/worker-0" in refresher.topology


async def test_prometheus_answering_errors_slowly_or_truncated_keeps_the_last_good_graph(env):
    harness, prom = env
    serve(env, "faults", nodes=3)
    proxy = harness.proxy(prom.url)
    refresher = refresher_for(discovery(proxy.url, "faults", timeout=1.0).discover)
    assert (await refresher.refresh()).result == "ok"
    good = refresher.topology
    expectations = {
        "error": "HTTP 500 (internal: proxy says no)",
        "delay": "timed out",
        "truncate": "truncated",
    }
    for count, (mode, message) in enumerate(expectations.items(), 1):
        proxy.mode, proxy.delay = mode, 3.0
        started = time.monotonic()
        report = await refresher.refresh()
        assert report.result == "error" and message in report.reason, (mode, report.reason)
        assert time.monotonic() - started < 2.9  # the timeout, not the proxy, decides
        assert refresher.topology is good
        assert metric(refresher, "alert_router_topology_last_refresh_ok") == 0
        assert metric(refresher, "alert_router_topology_refreshes_total", result="error") == count
    proxy.mode = "pass"
    assert (await refresher.refresh()).result == "ok"
    assert metric(refresher, "alert_router_topology_last_refresh_ok") == 1


async def test_prometheus_stopped_keeps_the_last_good_graph_and_the_age_grows(env):
    harness, _ = env
    cluster = serve(env, "stopped", nodes=3)
    own = harness.prometheus()  # its own Prometheus: this test stops it
    harness.wait_scraped(own, cluster)
    clock = [1000.0]
    refresher = refresher_for(discovery(own.url, "stopped", timeout=2.0).discover, clock=lambda: clock[0])
    assert (await refresher.refresh()).result == "ok"
    good = refresher.topology
    own.stop()
    clock[0] += 600
    report = await refresher.refresh()
    assert report.result == "error" and "cannot connect" in report.reason
    assert refresher.topology is good and "node/stopped/worker-2" in good
    assert metric(refresher, "alert_router_topology_last_refresh_ok") == 0
    assert metric(refresher, "alert_router_topology_age_seconds") >= 600


async def test_partial_responses_with_warnings_are_refused_unless_accepted(env):
    harness, prom = env
    serve(env, "warned", nodes=3)
    proxy = harness.proxy(prom.url)
    refresher = refresher_for(discovery(proxy.url, "warned").discover)
    await refresher.refresh()
    good = refresher.topology
    proxy.warnings = ["receive eu-1: context deadline exceeded"]
    report = await refresher.refresh()
    assert report.result == "refused" and report.reason_kind == "partial"
    assert "receive eu-1: context deadline exceeded" in report.reason and refresher.topology is good
    lenient = refresher_for(discovery(proxy.url, "warned").discover, accept_partial=True)
    assert (await lenient.refresh()).result == "ok"


async def test_interval_refreshes_and_concurrent_requests_share_one_discovery(env):
    _, prom = env
    serve(env, "loop", nodes=3)
    calls = []
    real = discovery(prom.url, "loop")

    async def counted():
        calls.append(time.monotonic())
        await asyncio.sleep(0.2)
        return await real.discover()

    refresher = refresher_for(counted, interval=0.5)
    swaps = []
    refresher.subscribe(lambda topology, report: swaps.append((len(topology), report.result)))
    reports = await asyncio.gather(refresher.refresh(), refresher.refresh(), refresher.refresh())
    assert len(calls) == 1 and all(r is reports[0] for r in reports)
    await refresher.start()
    await asyncio.sleep(1.0)
    await refresher.stop()
    assert 2 <= len(calls) <= 4
    assert all(result == "ok" for _, result in swaps) and len(swaps) == len(calls)


async def test_the_event_loop_keeps_running_while_discovery_works(env):
    _, prom = env
    serve(env, "lag", nodes=6)
    refresher = refresher_for(discovery(prom.url, "lag").discover)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await refresher.refresh()
    task.cancel()
    assert ticks >= 3  # the loop ran during the refresh: discovery is in a worker thread


# -- the command line ---------------------------------------------------------------------------------


def test_cli_build_writes_a_topology_file_that_loads_back_to_the_same_graph(env, tmp_path, capsys):
    from router.cli.main import main
    from topology.load import detect_format, load_topology

    cluster = serve(env, "cli")
    out = tmp_path / "cluster.json"
    assert main(["topology", "build", "--prometheus", env[1].url, "--cluster", "cli", "-o", str(out)]) == 0
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert summary["entities"] > 0 and summary["out"] == str(out)
    discovered = discovery(env[1].url, "cli").discover_sync().topology
    assert detect_format(out) == "topology" and json.loads(out.read_text())["kind"] == "alert-router/topology"
    loaded = load_topology([out])
    assert set(loaded.graph.nodes) == set(discovered.graph.nodes)
    assert edges(loaded) == edges(discovered)
    for name, attrs in discovered.graph.nodes(data=True):
        assert loaded.attrs(name) == attrs, name
    pod = cluster.pods_of("db", "orders")[0]
    assert loaded.pod_by_ip("cli", pod.ip) == f"pod/cli/db/{pod.name}"
    assert loaded.node_by_instance("cli", "10.0.0.13:10250") == "node/cli/worker-3"
    assert loaded.node_by_instance("cli", "worker-3:9100") == "node/cli/worker-3"
    # Host-network pods share their node's IP: not in the pod index, as in the discovered graph.
    proxy = cluster.pods_of("kube-system", "kube-proxy")[0]
    assert loaded.pod_by_ip("cli", proxy.ip) is discovered.pod_by_ip("cli", proxy.ip) is None


def test_cli_build_reports_an_unreachable_prometheus(tmp_path, capsys):
    from router.cli.main import main

    out = tmp_path / "c.json"
    assert (
        main(["topology", "build", "--prometheus", "http://127.0.0.1:9", "-o", str(out), "--timeout", "2"])
        == 1
    )
    assert "cannot connect" in capsys.readouterr().err and not out.exists()
    assert main(["topology", "build", "--prometheus", "http://x", "-o", str(out), "--selector", "job"]) == 2
    assert "--selector" in capsys.readouterr().err


def test_cli_show_counts_one_entity_and_why_an_alert_maps(env, tmp_path, capsys):
    from router.cli.cmd_topology import write_topology_file
    from router.cli.main import main

    cluster = serve(env, "show")
    path = tmp_path / "show.json"
    write_topology_file(discovery(env[1].url, "show").discover_sync().topology, str(path))
    pod = cluster.pods_of("shop", "checkout")[0]
    assert main(["topology", "show", str(path), "--entity", f"pod/show/shop/{pod.name}"]) == 0
    text = capsys.readouterr().out
    assert "clusters: show" in text and re.search(rf"^  pod +{len(cluster.pods)}$", text, re.M)
    assert f"-> node/show/{pod.node}\n" in text and "-> dns/show/cluster-dns" in text
    assert "<- replicaset/show/shop/" in text and "<- service/show/shop/checkout" in text
    labels = {"alertname": "KubePodNotReady", "namespace": "shop", "pod": pod.name, "cluster": "show"}
    assert main(["topology", "show", str(path), "--why", json.dumps(labels), "--json"]) == 0
    why = json.loads(capsys.readouterr().out)["why"]
    assert why["entity"] == f"pod/show/shop/{pod.name}" and why["in_topology"] is True
    assert why["rule"] and why["how"].startswith(f"rule {why['rule']}")
    assert f"-> node/show/{pod.node}" in why["depends_on"]
    assert main(["topology", "show", str(path), "--entity", "pod/show/shop/nope"]) == 2
    assert "not in the topology" in capsys.readouterr().err
    assert main(["topology", "show", str(path), "--why", "{not json"]) == 2
    assert "--why: not JSON" in capsys.readouterr().err


def test_cli_export_draws_one_neighbourhood_and_writes_a_loadable_part(env, tmp_path, capsys):
    from router.cli.cmd_topology import write_topology_file
    from router.cli.main import main
    from topology.load import load_topology

    serve(env, "export")
    path = tmp_path / "export.json"
    write_topology_file(discovery(env[1].url, "export").discover_sync().topology, str(path))
    node = "node/export/worker-2"
    assert main(["topology", "export", str(path), "--format", "dot", "--around", node, "--depth", "1"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith("digraph topology {") and dot.rstrip().endswith("}")
    assert f'"{node}" [label="node\\nworker-2", fillcolor="lightblue", penwidth=3, color=red];' in dot
    assert f'"{node}" -> "zone/export/eu-west-1a";' in dot
    assert '"node/export/worker-2/kube-proxy" -> "node/export/worker-2";' in dot
    assert "node/export/worker-3" not in dot  # two edges away
    part = tmp_path / "part.json"
    args = [
        "topology",
        "export",
        str(path),
        "--format",
        "json",
        "--around",
        node,
        "--depth",
        "2",
        "-o",
        str(part),
    ]
    assert main(args) == 0
    loaded = load_topology([part])
    assert node in loaded and "zone/export/eu-west-1a" in dict(loaded.dependencies(node))
    assert len(loaded) < len(load_topology([path]))
    assert main([*args[:-2], "--max-entities", "5", "-o", str(part)]) == 0
    assert "cut at 5 entities" in capsys.readouterr().err and len(load_topology([part])) == 5
