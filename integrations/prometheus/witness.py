"""Prometheus as a second witness: before a root candidate pages, ask Prometheus what it sees.

    witness = Witness(client, timeout=5.0)
    answer = await witness.check(kind, entity, labels, timeout=None)   # -> WitnessAnswer
    answer.confirmed   # True: the suspicion holds; False: Prometheus says otherwise;
                       # None: it cannot tell (timeout, error, no data)
    answer.detail      # one line for the event log and the page

`kind`, `entity` and `labels` are those of the engine's `CheckRequest` (router/core/events.py):

- `alert_firing`: confirmed when `ALERTS{alertstate="firing", alertname=..., <alert labels>}` has
  a series, refuted when it has none.
- `node_not_ready`: `kube_node_status_condition{condition="Ready",status="true",node=...}` is 0:
  confirmed; 1: refuted; no series for the node: None.
- `dns_down`: every `up{job=~"kube-dns|coredns"}` target is 0: confirmed; one is 1: refuted;
  no such target: None.
- `apiserver_down`, `etcd_down`: the same with `up{job="apiserver"}`, `up{job=~".*etcd.*"}`.
- any error or timeout: None.

No target at all answers None, not "down": a Prometheus that does not scrape CoreDNS or etcd
(managed control planes) would otherwise confirm every DNS or etcd suspicion.

Clusters: the cluster is the entity's (`node/<cluster>/<node>`, `dns/<cluster>/cluster-dns`). A
series counts for it when its `cluster` label equals it or when it has no `cluster` label (a
single-cluster Prometheus does not store its own external labels on its series). For
`alert_firing` the same holds for every label of the alert: Alertmanager's copy carries the
external labels (`cluster`, `prometheus`, ...) that `ALERTS` in Prometheus lacks, so those are
matched client-side (equal or absent), the others in the query.

Every check is one instant query in a worker thread, bounded by `timeout`; a check never raises.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from ground.waiting import within
from integrations.prometheus.client import PrometheusClient, PrometheusError, Sample
from topology import entities
from topology.promql import matchers, promql_string

KINDS = ("alert_firing", "node_not_ready", "dns_down", "apiserver_down", "etcd_down")
# Labels Alertmanager's alerts may carry that Prometheus' ALERTS series do not: external labels
# of common setups (prometheus-operator, Thanos, Cortex/Mimir), matched only client-side.
EXTERNAL_LABELS = frozenset(
    {"cluster", "prometheus", "prometheus_replica", "replica", "receive", "tenant_id"}
)


@dataclass(frozen=True)
class WitnessAnswer:
    confirmed: bool | None
    detail: str


class Witness:
    def __init__(
        self,
        client: PrometheusClient,
        *,
        timeout: float = 5.0,
        dns_jobs: str = "kube-dns|coredns",
        apiserver_job: str = "apiserver",  # regular expressions (PromQL anchors them)
        etcd_jobs: str = ".*etcd.*",
        external_labels: frozenset[str] | set[str] = EXTERNAL_LABELS,
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.targets = {
            "dns_down": ("CoreDNS", {"job": dns_jobs}),
            "apiserver_down": ("apiserver", {"job": apiserver_job}),
            "etcd_down": ("etcd", {"job": etcd_jobs}),
        }
        self.external_labels = frozenset(external_labels)

    async def check(
        self, kind: str, entity: str, labels: Mapping[str, str], *, timeout: float | None = None
    ) -> WitnessAnswer:
        limit = self.timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            return await within(self._check(kind, entity, dict(labels), limit), limit)
        except TimeoutError:
            return WitnessAnswer(None, f"Prometheus did not answer within {limit:g}s")
        except PrometheusError as exc:
            spent = time.monotonic() - started
            if spent >= limit:
                # The query's own timeout is our limit too: whichever of the two fires first,
                # the answer is the same.
                return WitnessAnswer(None, f"Prometheus did not answer within {limit:g}s ({exc})")
            # A requests timeout shorter than ours also lands here.
            return WitnessAnswer(None, f"Prometheus could not answer ({spent:.1f}s): {exc}")
        except ValueError as exc:
            return WitnessAnswer(None, str(exc))

    async def _check(self, kind: str, entity: str, labels: dict[str, str], timeout: float) -> WitnessAnswer:
        cluster = _cluster_of(entity, labels)
        if kind == "alert_firing":
            return await self._alert_firing(labels, cluster, timeout)
        if kind == "node_not_ready":
            return await self._node_not_ready(entity, labels, cluster, timeout)
        if kind in self.targets:
            return await self._targets_down(kind, cluster, timeout)
        raise ValueError(f"unknown witness check {kind!r} (known: {', '.join(KINDS)})")

    async def _alert_firing(self, labels: dict[str, str], cluster: str, timeout: float) -> WitnessAnswer:
        alertname = labels.get("alertname")
        if not alertname:
            raise ValueError("alert_firing needs the alert's labels (no alertname)")
        server = {k: v for k, v in labels.items() if k not in self.external_labels}
        server.update(alertstate="firing", alertname=alertname)
        query = "ALERTS" + matchers(server)
        rows = await self.client.query(query, timeout=timeout)
        client_side = {k: v for k, v in labels.items() if k in self.external_labels}
        firing = [row for row in rows if _agrees(row.labels, client_side)]
        if firing:
            return WitnessAnswer(True, f"{alertname} is still firing in Prometheus ({len(firing)} series)")
        return WitnessAnswer(False, f"{alertname} is not firing in Prometheus any more (no ALERTS series)")

    async def _node_not_ready(
        self, entity: str, labels: dict[str, str], cluster: str, timeout: float
    ) -> WitnessAnswer:
        node = _node_of(entity) or labels.get("node", "")
        if not node:
            raise ValueError(f"node_not_ready: no node in entity {entity!r} nor in the labels")
        query = 'kube_node_status_condition{condition="Ready",status="true",node=' + promql_string(node) + "}"
        rows = _in_cluster(await self.client.query(query, timeout=timeout), cluster)
        if not rows:
            return WitnessAnswer(None, f"Prometheus has no Ready condition for node {node}")
        if any(row.value == 1 for row in rows):
            return WitnessAnswer(False, f"node {node} is Ready according to kube-state-metrics")
        return WitnessAnswer(True, f"node {node} is not Ready according to kube-state-metrics")

    async def _targets_down(self, kind: str, cluster: str, timeout: float) -> WitnessAnswer:
        what, regex = self.targets[kind]
        query = "up" + matchers({}, regex=regex)
        rows = _in_cluster(await self.client.query(query, timeout=timeout), cluster)
        if not rows:
            return WitnessAnswer(None, f"Prometheus scrapes no {what} target ({query})")
        up = sum(1 for row in rows if row.value == 1)
        if up == 0:
            return WitnessAnswer(True, f"all {len(rows)} {what} targets are down ({query})")
        return WitnessAnswer(False, f"{up} of {len(rows)} {what} targets are up ({query})")


def _cluster_of(entity: str, labels: Mapping[str, str]) -> str:
    try:
        return entities.split(entity)[1]
    except ValueError:
        return entities.cluster_of(labels)


def _node_of(entity: str) -> str:
    parts = entity.split("/")
    return parts[2] if len(parts) >= 3 and parts[0] == "node" else ""


def _in_cluster(rows: list[Sample], cluster: str) -> list[Sample]:
    """Series of this cluster: `cluster` label equal, or absent (the Prometheus' own cluster)."""
    return [row for row in rows if row.labels.get("cluster", cluster) == cluster]


def _agrees(series: Mapping[str, str], expected: Mapping[str, str]) -> bool:
    return all(series.get(k, v) == v for k, v in expected.items())
