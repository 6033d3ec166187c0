"""A small hand-built cluster and a minimal Alertmanager-like stream writer for engine tests.

The scenario suite (tests/test_scenarios.py) uses the real loaders and the Alertmanager
simulator; the engine's unit and property tests use this smaller world so that each test can
state its topology and its stream in a few lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ground.times import format_time
from router.core.model import Delivery
from topology.fileformat import build_topology_file
from topology.graph import Topology

T0 = datetime(2026, 10, 6, 1, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def small_cluster() -> Topology:
    """3 zones, 6 workers, CoreDNS on two of them, node-exporter everywhere, apps in 3 namespaces."""
    t = Topology()
    dns = t.add("dns/default/cluster-dns")
    t.depends("apiserver/default/kube-apiserver", "etcd/default/etcd")
    for i in range(6):
        node = f"node/default/w{i}"
        zone = f"zone/default/z{i // 2}"
        t.add(node, internal_ip=f"10.0.0.{10 + i}")
        t.index_node_ip("default", f"10.0.0.{10 + i}", node)
        t.depends(node, zone)
        t.depends(f"{node}/kubelet", node)
        t.depends(f"{node}/kubelet", "apiserver/default/kube-apiserver")
        exporter = f"pod/default/monitoring/node-exporter-{i}"
        t.add(exporter, node=node, owner="daemonset/default/monitoring/node-exporter")
        t.depends(exporter, node)
        t.depends("daemonset/default/monitoring/node-exporter", exporter)
        t.depends("service/default/monitoring/node-exporter", exporter, redundant=True)
    for i in (1, 3):
        pod = f"pod/default/kube-system/coredns-7d9f-{i}"
        t.add(pod, node=f"node/default/w{i}", owner="deployment/default/kube-system/coredns")
        t.depends(pod, f"node/default/w{i}")
        t.depends("deployment/default/kube-system/coredns", pod)
        t.depends(dns, pod, redundant=True)
    t.depends("service/default/kube-system/kube-dns", dns)
    apps = [("shop", "checkout"), ("shop", "cart"), ("web", "frontend"), ("db", "orders"), ("pay", "gateway")]
    for a, (namespace, name) in enumerate(apps):
        deployment = f"deployment/default/{namespace}/{name}"
        for r in range(2):
            node_index = (a + r * 3) % 6
            pod = f"pod/default/{namespace}/{name}-5c8d-{r}"
            node = f"node/default/w{node_index}"
            t.add(pod, node=node, owner=deployment)
            t.depends(pod, node)
            t.depends(pod, dns)
            t.depends(deployment, pod)
            t.depends(f"service/default/{namespace}/{name}", pod, redundant=True)
    return t


def call_graph(
    calls: dict[str, list[str]], on_n1: frozenset[str] | set[str] = frozenset(), namespace: str = "shop"
) -> Topology:
    """Services in `namespace` calling one another (`calls`), each running one pod: those in
    `on_n1` on node n1 (10.0.0.1), the others on n2 (10.0.0.2)."""
    document = {
        "kind": "alert-router/topology",
        "nodes": [{"name": "n1", "ip": "10.0.0.1"}, {"name": "n2", "ip": "10.0.0.2"}],
        "pods": [
            {
                "namespace": namespace,
                "name": f"{s}-5c8d-abcde",
                "node": "n1" if s in on_n1 else "n2",
                "owner": f"deployment/{s}",
            }
            for s in calls
        ],
        "services": [
            {"namespace": namespace, "name": s, "pods": [f"{s}-5c8d-abcde"], "calls": callees}
            for s, callees in calls.items()
        ],
    }
    return build_topology_file(document, "<call graph>")


def pods_on(topology: Topology, node: str) -> list[str]:
    return sorted(p for p in topology.dependents(f"node/default/{node}") if p.startswith("pod/"))


@dataclass
class Stream:
    """Writes Alertmanager-shaped deliveries: one group per namespace, re-sends, HA duplicates."""

    lines: list[dict] = field(default_factory=list)

    def deliver(self, minutes: float, alerts: list[dict], replicas: int = 2) -> None:
        groups: dict[str, list[dict]] = {}
        for alert in alerts:
            groups.setdefault(alert["labels"].get("namespace", ""), []).append(alert)
        for namespace, group in sorted(groups.items()):
            status = "firing" if any(a["status"] == "firing" for a in group) else "resolved"
            payload = {
                "version": "4",
                "groupKey": f'{{}}:{{namespace="{namespace}"}}',
                "status": status,
                "receiver": "alert-router",
                "groupLabels": {"namespace": namespace} if namespace else {},
                "commonLabels": {},
                "commonAnnotations": {},
                "externalURL": "http://alertmanager-main-0:9093",
                "truncatedAlerts": 0,
                "alerts": group,
            }
            for replica in range(replicas):
                self.lines.append(
                    {
                        "received_at": format_time(at(minutes) + timedelta(seconds=15 * replica)),
                        "payload": payload,
                    }
                )

    def deliveries(self) -> list[Delivery]:
        ordered = sorted(self.lines, key=lambda line: line["received_at"])
        return [Delivery.model_validate(line) for line in ordered]

    def jsonl(self) -> str:
        ordered = sorted(self.lines, key=lambda line: line["received_at"])
        return "".join(json.dumps(line) + "\n" for line in ordered)


def alert(
    fingerprint: str, started: float, status: str = "firing", ended: float | None = None, **labels: str
) -> dict:
    labels.setdefault("severity", "warning")
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": f"{labels.get('alertname')} test"},
        "startsAt": format_time(at(started)),
        "endsAt": format_time(at(ended)) if ended is not None else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus-k8s-0:9090/graph",
        "fingerprint": fingerprint,
    }


def run(engine, stream: Stream, until: float | None = None):
    """Feed a stream to an engine; returns every notification, including the final drain."""
    out = []
    last = None
    for delivery in stream.deliveries():
        last = delivery.received
        out.extend(engine.ingest(delivery, last))
    if until is not None:
        out.extend(engine.tick(at(until)))
        last = at(until)
    if last is not None:
        out.extend(engine.finish(last))
    return out
