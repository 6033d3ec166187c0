"""The call graph discovered through a real Prometheus (Debian's binary, tests/promharness.py)
scraping the OpenTelemetry Collector's servicegraph series, Istio's and Linkerd's request
counters next to kube-state-metrics: the edges the traffic shows, resolved onto the Services
kube-state-metrics knows, and gone once the traffic stops for the window."""

from __future__ import annotations

from collections.abc import Iterator

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


def test_servicegraph_istio_and_linkerd_traffic_become_call_edges_between_services(env):
    _, prom, _ = env
    result = discover(prom)
    assert calls(result.topology) == {(FRONTEND, CHECKOUT), (CHECKOUT, ORDERS), (FRONTEND, ORDERS)}
    assert result.stats.calls.edges == {"servicegraph": 1, "istio": 1, "linkerd": 1}
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
        assert calls(result.topology) == {(CHECKOUT, ORDERS), (FRONTEND, ORDERS)}
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
