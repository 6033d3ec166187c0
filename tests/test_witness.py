"""The second witness against a real Prometheus: node Ready conditions from kube-state-metrics,
`up` of CoreDNS / apiserver / etcd targets the test turns on and off, `ALERTS` from a rule file;
timeouts and errors through a proxy. Last, the engine with and without the witness on the DNS
and node scenarios: the page comes minutes earlier when Prometheus confirms the inferred root.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from integrations.prometheus.client import PrometheusClient
from integrations.prometheus.witness import Witness, WitnessAnswer
from router.core.engine import Engine
from router.core.settings import EngineSettings
from rules.ruleset import RuleSet
from tests.promharness import Harness, HarnessError, PrometheusProcess, Target, TestCluster
from tests.world import Stream, alert, at
from topology.discovery import PrometheusDiscovery

RULES_YAML = """
groups:
  - name: harness
    interval: 1s
    rules:
      - alert: KubeNodeNotReady
        expr: kube_node_status_condition{job="kube-state-metrics",condition="Ready",status="true"} == 0
        labels: {severity: warning}
"""
TARGETS = [
    Target("kube-dns", "coredns-a", "w"),
    Target("kube-dns", "coredns-b", "w"),
    Target("coredns", "coredns-c", "w2"),  # kube-prometheus-stack's job name, another cluster
    Target("apiserver", "apiserver-0", "w"),
    Target("apiserver", "apiserver-1", "w"),
    Target("etcd", "etcd-0", "w"),
    Target("kube-etcd", "etcd-1", "w"),
]


class Env:
    def __init__(self, harness: Harness, prom: PrometheusProcess, cluster: TestCluster) -> None:
        self.harness, self.prom, self.cluster = harness, prom, cluster
        self.witness = Witness(PrometheusClient(prom.url, retries=0), timeout=5.0)

    def targets(self, job_regex: str, cluster: str, up: int) -> None:
        """Until Prometheus sees `up` targets of these jobs up in this cluster."""
        query = f'sum(up{{job=~"{job_regex}",cluster="{cluster}"}})'
        self.harness.wait_until(
            self.prom, query, lambda rows: bool(rows) and float(rows[0]["value"][1]) == up
        )

    def down(self, *names: str) -> None:
        self.harness.ksm.down.update(names)

    def up(self, *names: str) -> None:
        self.harness.ksm.down.difference_update(names)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    with Harness() as harness:
        cluster = TestCluster("w")
        harness.ksm.clusters["w"] = cluster
        try:
            prom = harness.prometheus(targets=TARGETS, rules=RULES_YAML)
        except HarnessError as exc:
            pytest.fail(str(exc))
        harness.wait_scraped(prom, cluster)
        env = Env(harness, prom, cluster)
        env.targets("kube-dns|coredns|apiserver|.*etcd.*", "w", 6)
        yield env


# -- node_not_ready ---------------------------------------------------------------------------------


async def test_node_not_ready_follows_the_ready_condition(env: Env):
    ready = await env.witness.check("node_not_ready", "node/w/worker-4", {})
    assert ready == WitnessAnswer(False, "node worker-4 is Ready according to kube-state-metrics")
    env.cluster.set_ready("worker-4", False)
    try:
        env.harness.wait_scraped(env.prom, env.cluster)
        not_ready = await env.witness.check("node_not_ready", "node/w/worker-4", {})
        assert not_ready == WitnessAnswer(True, "node worker-4 is not Ready according to kube-state-metrics")
        # Another cluster's node of the same name is not this one.
        other = await env.witness.check("node_not_ready", "node/elsewhere/worker-4", {})
        assert other.confirmed is None and "no Ready condition for node worker-4" in other.detail
    finally:
        env.cluster.set_ready("worker-4", True)
        env.harness.wait_scraped(env.prom, env.cluster)
    assert (await env.witness.check("node_not_ready", "node/w/worker-4", {})).confirmed is False
    unknown = await env.witness.check("node_not_ready", "node/w/worker-99", {})
    assert unknown.confirmed is None


# -- alert_firing -----------------------------------------------------------------------------------


async def test_alert_firing_reads_ALERTS_and_tolerates_external_labels(env: Env):
    labels = {
        "alertname": "KubeNodeNotReady",
        "severity": "warning",
        "node": "worker-5",
        "condition": "Ready",
        "status": "true",
        "job": "kube-state-metrics",
        # External labels Alertmanager's copy carries and ALERTS in Prometheus does not:
        "prometheus": "monitoring/k8s",
        "cluster": "w",
    }
    before = await env.witness.check("alert_firing", "node/w/worker-5", labels)
    assert before == WitnessAnswer(
        False, "KubeNodeNotReady is not firing in Prometheus any more (no ALERTS series)"
    )
    env.cluster.set_ready("worker-5", False)
    try:
        env.harness.wait_until(env.prom, 'ALERTS{alertstate="firing",node="worker-5"}', bool, what="firing")
        firing = await env.witness.check("alert_firing", "node/w/worker-5", labels)
        assert firing == WitnessAnswer(True, "KubeNodeNotReady is still firing in Prometheus (1 series)")
        # The same alert of another cluster is not this one.
        other = await env.witness.check("alert_firing", "node/x/worker-5", labels | {"cluster": "x"})
        assert other.confirmed is False
        # Another node's alert is not this one.
        worker1 = await env.witness.check("alert_firing", "node/w/worker-1", labels | {"node": "worker-1"})
        assert worker1.confirmed is False
    finally:
        env.cluster.set_ready("worker-5", True)
        env.harness.wait_scraped(env.prom, env.cluster)
    env.harness.wait_until(env.prom, 'ALERTS{node="worker-5"}', lambda rows: not rows, what="resolved")
    assert (await env.witness.check("alert_firing", "node/w/worker-5", labels)).confirmed is False


async def test_alert_firing_without_an_alertname_cannot_tell(env: Env):
    answer = await env.witness.check("alert_firing", "node/w/worker-5", {"node": "worker-5"})
    assert answer.confirmed is None and "no alertname" in answer.detail


# -- dns_down, apiserver_down, etcd_down --------------------------------------------------------------


async def test_dns_down_only_when_every_coredns_target_of_the_cluster_is_down(env: Env):
    check = env.witness.check
    assert await check("dns_down", "dns/w/cluster-dns", {}) == WitnessAnswer(
        False, '2 of 2 CoreDNS targets are up (up{job=~"kube-dns|coredns"})'
    )
    env.down("coredns-a")
    try:
        env.targets("kube-dns", "w", 1)
        assert (await check("dns_down", "dns/w/cluster-dns", {})).detail.startswith("1 of 2 CoreDNS targets")
        env.down("coredns-b")
        env.targets("kube-dns", "w", 0)
        down = await check("dns_down", "dns/w/cluster-dns", {})
        assert down == WitnessAnswer(True, 'all 2 CoreDNS targets are down (up{job=~"kube-dns|coredns"})')
        # The other cluster's CoreDNS (job "coredns") is unaffected.
        assert (await check("dns_down", "dns/w2/cluster-dns", {})).confirmed is False
    finally:
        env.up("coredns-a", "coredns-b")
        env.targets("kube-dns", "w", 2)
    # A cluster Prometheus scrapes no CoreDNS of: cannot tell, not "down".
    unknown = await check("dns_down", "dns/w3/cluster-dns", {})
    assert unknown.confirmed is None and "scrapes no CoreDNS target" in unknown.detail


async def test_apiserver_and_etcd_down(env: Env):
    check = env.witness.check
    assert (await check("apiserver_down", "apiserver/w/kube-apiserver", {})).confirmed is False
    assert (await check("etcd_down", "etcd/w/etcd", {})).detail.startswith("2 of 2 etcd targets are up")
    env.down("apiserver-0", "apiserver-1", "etcd-0")
    try:
        env.targets("apiserver", "w", 0)
        env.targets(".*etcd.*", "w", 1)
        api = await check("apiserver_down", "apiserver/w/kube-apiserver", {})
        assert api == WitnessAnswer(True, 'all 2 apiserver targets are down (up{job=~"apiserver"})')
        etcd = await check("etcd_down", "etcd/w/etcd", {})
        assert etcd.confirmed is False and etcd.detail.startswith("1 of 2 etcd targets are up")
        env.down("etcd-1")
        env.targets(".*etcd.*", "w", 0)
        assert (await check("etcd_down", "etcd/w/etcd", {})).confirmed is True
    finally:
        env.up("apiserver-0", "apiserver-1", "etcd-0", "etcd-1")
        env.targets("apiserver|.*etcd.*", "w", 4)


# -- Prometheus slow, failing, unreachable -------------------------------------------------------------


async def test_a_slow_prometheus_answers_none_within_the_timeout(env: Env):
    proxy = env.harness.proxy(env.prom.url)
    proxy.mode, proxy.delay = "delay", 5.0
    witness = Witness(PrometheusClient(proxy.url, retries=0), timeout=10.0)
    started = time.monotonic()
    answer = await witness.check("dns_down", "dns/w/cluster-dns", {}, timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert answer.confirmed is None and "did not answer within 0.5s" in answer.detail


async def test_prometheus_errors_and_absence_answer_none(env: Env):
    proxy = env.harness.proxy(env.prom.url)
    proxy.mode = "error"
    failing = await Witness(PrometheusClient(proxy.url, retries=0)).check(
        "node_not_ready", "node/w/worker-1", {}
    )
    assert failing.confirmed is None and "HTTP Status Code 500" in failing.detail
    gone = Witness(PrometheusClient("http://127.0.0.1:9", retries=0), timeout=2.0)
    answer = await gone.check("apiserver_down", "apiserver/w/kube-apiserver", {})
    assert answer.confirmed is None and "could not answer" in answer.detail
    unknown = await env.witness.check("zone_down", "zone/w/eu-west-1a", {})
    assert unknown.confirmed is None and "unknown witness check 'zone_down'" in unknown.detail


# -- before and after: the engine with the witness -----------------------------------------------------


def _page_time(topology, stream: Stream, witness: Witness | None, env: Env, answer_at: float):
    """Run the stream; when the engine asks, ask Prometheus and feed the answer back at `answer_at`
    minutes (as the service does, as an input). Returns (page time, check kinds, answers)."""
    settings = EngineSettings(witness={"enabled": witness is not None})
    engine = Engine(topology, RuleSet.load(), settings)
    notes, asked, answers = [], [], []
    for delivery in stream.deliveries():
        notes += engine.ingest(delivery, delivery.received)
    if witness is not None:
        import asyncio

        for check in engine.drain_checks():
            asked.append((check.kind, check.entity))
            answer = asyncio.run(witness.check(check.kind, check.entity, check.labels))
            answers.append(answer)
            notes += engine.witness(check.id, answer.confirmed, answer.detail, at(answer_at))
    notes += engine.tick(at(20))
    notes += engine.finish(at(20))
    pages = [n for n in notes if n.action == "page"]
    return pages, asked, answers


def _pod_alerts(env: Env, pods: list[tuple[str, str]]) -> Stream:
    stream = Stream()
    alerts = [
        alert(f"fp-{name}", 0, alertname="KubePodNotReady", namespace=ns, pod=name, cluster="w")
        for ns, name in pods
    ]
    stream.deliver(0, alerts, replicas=1)
    return stream


def test_witness_pages_the_dns_scenario_minutes_earlier(env: Env):
    topology = PrometheusDiscovery(env.witness.client, clusters=["w"]).discover_sync().topology
    cluster = env.cluster
    # Three workloads, three namespaces, three nodes: what they share is cluster DNS.
    chosen = [cluster.pods_of("shop", "checkout")[0], cluster.pods_of("web", "frontend")[0]]
    chosen.append(cluster.pods_of("db", "orders")[0])
    assert len({p.node for p in chosen}) == 3
    stream = _pod_alerts(env, [(p.namespace, p.name) for p in chosen])
    before, _, _ = _page_time(topology, stream, None, env, 0.5)
    env.down("coredns-a", "coredns-b")
    try:
        env.targets("kube-dns", "w", 0)
        after, asked, answers = _page_time(topology, stream, env.witness, env, 0.5)
    finally:
        env.up("coredns-a", "coredns-b")
        env.targets("kube-dns", "w", 2)
    assert asked == [("dns_down", "dns/w/cluster-dns")] and answers[0].confirmed is True
    assert [p.root_entity for p in before] == [p.root_entity for p in after] == ["dns/w/cluster-dns"]
    assert before[0].at == at(3) and after[0].at == at(0.5)  # 3 min -> 30 s


def test_witness_pages_the_node_scenario_minutes_earlier_and_not_when_refuted(env: Env):
    topology = PrometheusDiscovery(env.witness.client, clusters=["w"]).discover_sync().topology
    cluster = env.cluster
    # Two workloads failing on one node, nothing elsewhere: the node is the inferred root.
    on_node = [p for p in cluster.pods_on("worker-2") if p.owner_kind == "ReplicaSet"]
    assert len({p.owner_name for p in on_node}) >= 2
    stream = _pod_alerts(env, [(p.namespace, p.name) for p in on_node])
    before, _, _ = _page_time(topology, stream, None, env, 0.5)
    # Prometheus sees the node Ready: the witness refutes, the page keeps its normal grace.
    refuted, asked, answers = _page_time(topology, stream, env.witness, env, 0.5)
    assert asked == [("node_not_ready", "node/w/worker-2")] and answers[0].confirmed is False
    env.cluster.set_ready("worker-2", False)
    try:
        env.harness.wait_scraped(env.prom, env.cluster)
        after, _, answers = _page_time(topology, stream, env.witness, env, 0.5)
    finally:
        env.cluster.set_ready("worker-2", True)
        env.harness.wait_scraped(env.prom, env.cluster)
    assert answers[0].confirmed is True
    assert [p.root_entity for p in before] == [p.root_entity for p in after] == ["node/w/worker-2"]
    # Unconfirmed, the pods' own alerts give the node's own alerts `zone_settle` (5m) to show
    # (docs/engine.md); confirmed by the witness, it pages at once.
    assert before[0].at == refuted[0].at == at(5) and after[0].at == at(0.5)
