"""The call graph and the changes discovered through a real Prometheus (Debian's binary,
tests/promharness.py) scraping the OpenTelemetry Collector's servicegraph series, Istio's and
Linkerd's request counters and kube-state-metrics: the edges the traffic shows, resolved onto the
Services kube-state-metrics knows, gone once the traffic stops for the window; ConfigMap edits,
rollouts and new NetworkPolicies as timed changes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from integrations.prometheus.client import PrometheusClient
from tests.promharness import Harness, HarnessError, PrometheusProcess, TestCluster, Traffic
from topology.discovery import PrometheusDiscovery
from topology.graph import is_call

WINDOW = "6s"


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[Harness, PrometheusProcess, TestCluster]]:
    with Harness() as harness:
        cluster = TestCluster("c1")
        harness.ksm.clusters["c1"] = cluster
        harness.ksm.traffic = [
            Traffic(
                "traces_service_graph_request_total",
                {
                    "cluster": "c1",
                    "client": "frontend",
                    "server": "checkout",
                    "client_k8s_namespace_name": "web",
                    "server_k8s_namespace_name": "shop",
                    "connection_type": "",
                },
            ),
            Traffic(
                "istio_requests_total",
                {
                    "cluster": "c1",
                    "reporter": "destination",
                    "source_workload": "checkout",
                    "source_workload_namespace": "shop",
                    "destination_service_name": "orders",
                    "destination_service_namespace": "db",
                    "destination_workload": "orders",
                    "destination_workload_namespace": "db",
                    "response_code": "200",
                },
            ),
            Traffic(  # from outside the mesh: names no caller, so no edge
                "istio_requests_total",
                {
                    "cluster": "c1",
                    "reporter": "destination",
                    "source_workload": "unknown",
                    "source_workload_namespace": "unknown",
                    "destination_service_name": "frontend",
                    "destination_service_namespace": "web",
                    "response_code": "200",
                },
            ),
            Traffic(
                "request_total",
                {
                    "cluster": "c1",
                    "direction": "outbound",
                    "namespace": "web",
                    "deployment": "frontend",
                    "dst_namespace": "db",
                    "dst_deployment": "orders",
                    "dst_service": "orders",
                },
            ),
            Traffic(  # the callee's own proxy: inbound traffic says nothing about whom it calls
                "request_total",
                {"cluster": "c1", "direction": "inbound", "namespace": "db", "deployment": "orders"},
            ),
            Traffic(  # a mesh whose scrape keeps only Linkerd's response counter
                "response_total",
                {
                    "cluster": "c1",
                    "direction": "outbound",
                    "namespace": "shop",
                    "deployment": "checkout",
                    "dst_namespace": "shop",
                    "dst_service": "postgres",
                    "classification": "success",
                    "status_code": "200",
                },
            ),
        ]
        rollout = cluster.pods_of("shop", "checkout")[0].owner_name
        now = time.time()
        harness.ksm.traffic += [
            Traffic(
                "kube_configmap_metadata_resource_version",
                {"cluster": "c1", "namespace": "shop", "configmap": "flags"},
                False,
                100,
            ),
            Traffic(
                "kube_networkpolicy_created",
                {"cluster": "c1", "namespace": "web", "networkpolicy": "deny-all"},
                False,
                now - 60,
            ),
            Traffic(
                "kube_networkpolicy_created",
                {"cluster": "c1", "namespace": "web", "networkpolicy": "old"},
                False,
                now - 7200,
            ),
            Traffic(
                "kube_replicaset_created",
                {"cluster": "c1", "namespace": "shop", "replicaset": rollout},
                False,
                now - 120,
            ),
        ]
        try:
            prom = harness.prometheus()
        except HarnessError as exc:
            pytest.fail(str(exc))
        harness.wait_scraped(prom, cluster)
        harness.wait_until(
            prom,
            f"increase(traces_service_graph_request_total[{WINDOW}]) > 0",
            lambda rows: bool(rows),
            what="servicegraph traffic in Prometheus",
        )
        yield harness, prom, cluster


def discover(prom: PrometheusProcess):
    client = PrometheusClient(prom.url, timeout=10, retries=0)
    return PrometheusDiscovery(client, call_window=WINDOW).discover_sync()


def calls(topology) -> set[tuple[str, str]]:
    return {(a, b) for a, b, data in topology.graph.edges(data=True) if data.get("via") == "calls"}


FRONTEND, CHECKOUT, ORDERS = "service/c1/web/frontend", "service/c1/shop/checkout", "service/c1/db/orders"
POSTGRES = "service/c1/shop/postgres"


def test_servicegraph_istio_and_linkerd_traffic_become_call_edges_between_services(env):
    _, prom, _ = env
    result = discover(prom)
    assert calls(result.topology) == {
        (FRONTEND, CHECKOUT),
        (CHECKOUT, ORDERS),
        (FRONTEND, ORDERS),
        (CHECKOUT, POSTGRES),  # from Linkerd's response_total alone
    }
    assert result.stats.calls.edges == {"servicegraph": 1, "istio": 1, "linkerd": 2}
    assert result.stats.calls.unresolved == {"istio": 1}  # the ingress traffic from `unknown`
    topology = result.topology
    assert topology.callers(ORDERS) == [CHECKOUT, FRONTEND]
    assert is_call(FRONTEND, CHECKOUT, topology.graph.edges[FRONTEND, CHECKOUT])
    # The rest of the graph is the kube-state-metrics one: the Services still lead to their pods.
    assert topology.redundant_members(CHECKOUT)


def test_an_edge_ages_out_when_its_traffic_stops(env):
    harness, prom, _ = env
    servicegraph = harness.ksm.traffic[0]
    servicegraph.flowing = False
    try:
        harness.wait_until(
            prom,
            f"increase(traces_service_graph_request_total[{WINDOW}]) > 0",
            lambda rows: not rows,
            timeout=30,
            what="the servicegraph counter to stop growing for the window",
        )
        result = discover(prom)
        assert (FRONTEND, CHECKOUT) not in calls(result.topology)
        assert calls(result.topology) == {(CHECKOUT, ORDERS), (FRONTEND, ORDERS), (CHECKOUT, POSTGRES)}
    finally:
        servicegraph.flowing = True
    harness.wait_until(
        prom,
        f"increase(traces_service_graph_request_total[{WINDOW}]) > 0",
        lambda rows: bool(rows),
        timeout=30,
        what="servicegraph traffic again",
    )
    assert (FRONTEND, CHECKOUT) in calls(discover(prom).topology)


def test_no_call_graph_when_asked_for_none(env):
    _, prom, _ = env
    client = PrometheusClient(prom.url, timeout=10, retries=0)
    result = PrometheusDiscovery(client, call_window=None).discover_sync()
    assert not calls(result.topology)
    assert result.stats.calls.edges == {}


def changes(topology) -> dict[str, list]:
    out: dict[str, list] = {}
    for change in topology.changes:
        out.setdefault(change.entity, []).append(change)
    return out


def test_rollouts_and_new_network_policies_are_recorded_as_changes(env):
    _, prom, _ = env
    found = changes(discover(prom).topology)
    [rollout] = found["deployment/c1/shop/checkout"]  # the new ReplicaSet, named on its Deployment
    assert rollout.what.startswith("rolled out: new ReplicaSet checkout-")
    [policy] = found["networkpolicy/c1/web/deny-all"]
    assert policy.what == "created"
    assert abs((datetime.now(UTC) - policy.at).total_seconds() - 60) < 30
    assert "networkpolicy/c1/web/old" not in found  # created before the window
    assert "configmap/c1/shop/flags" not in found  # not edited yet


def test_a_configmap_edit_is_recorded_when_its_resource_version_moves(env):
    harness, prom, _ = env
    [flags] = [t for t in harness.ksm.traffic if t.labels.get("configmap") == "flags"]
    edited = datetime.now(UTC)
    flags.value = 101
    deadline = time.monotonic() + 40
    found: dict[str, list] = {}
    while time.monotonic() < deadline and "configmap/c1/shop/flags" not in found:
        time.sleep(1)  # the change shows at the next 15 s step of the subquery
        found = changes(discover(prom).topology)
    [edit] = found["configmap/c1/shop/flags"]
    assert edit.what == "edited (new resource version)"
    assert abs((edit.at - edited).total_seconds()) < 75  # to within the 1m of changes() and a step
