"""The export tests' world (no tests here): a small cluster built with `Topology` directly and a
node-down storm run through the real engine with the bundled rule pack.

The storm, as it happens on a real cluster (kube-prometheus alert names and labels): worker-1
dies at 01:00; its pods' readiness alerts reach the router before the node's own alert (other
Alertmanager groups), so they open incidents of their own that merge into the node's when
KubeNodeNotReady arrives; the DaemonSets that lost a pod follow. The node pages after its grace,
alice acknowledges, bob silences, the node comes back and everything resolves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ground.times import format_time
from router.core.engine import Engine
from router.core.model import Delivery
from rules.ruleset import RuleSet
from topology.graph import Topology

T0 = datetime(2026, 10, 6, 1, 0, tzinfo=UTC)
NODE = "node/default/worker-1"
CHECKOUT_POD = "pod/default/shop/checkout-6d8f7b9c5d-x2x9q"
NOT_ENDED = "0001-01-01T00:00:00Z"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def cluster() -> Topology:
    """Two workers in one zone; shop's pods and two DaemonSets' pods on both."""
    t = Topology()
    for i, ip in ((1, "10.0.1.21"), (2, "10.0.1.22")):
        node = f"node/default/worker-{i}"
        t.add(node, internal_ip=ip, zone="zone/default/eu-west-1a")
        t.index_node_ip("default", ip, node)
        t.depends(node, "zone/default/eu-west-1a")
        t.depends(f"{node}/kubelet", node)
    pods = {
        1: [
            ("shop", "checkout-6d8f7b9c5d-x2x9q", "deployment", "checkout"),
            ("shop", "cart-5f7c9d8b6-k4m2p", "deployment", "cart"),
            ("monitoring", "node-exporter-7xk2p", "daemonset", "node-exporter"),
            ("kube-system", "kube-proxy-9qv8d", "daemonset", "kube-proxy"),
        ],
        2: [
            ("shop", "checkout-6d8f7b9c5d-r7t5w", "deployment", "checkout"),
            ("monitoring", "node-exporter-b5n4c", "daemonset", "node-exporter"),
            ("kube-system", "kube-proxy-l2w6z", "daemonset", "kube-proxy"),
        ],
    }
    for i, refs in pods.items():
        node = f"node/default/worker-{i}"
        for namespace, name, kind, owner in refs:
            pod = f"pod/default/{namespace}/{name}"
            workload = f"{kind}/default/{namespace}/{owner}"
            t.add(pod, node=node, owner=workload)
            t.depends(pod, node)
            t.depends(workload, pod)
            if kind == "deployment":
                t.depends(f"service/default/{namespace}/{owner}", pod, redundant=True)
    return t


def alert(fp: str, started: float, name: str, ended: float | None = None, **labels: str) -> dict[str, Any]:
    labels = {"alertname": name, "prometheus": "monitoring/k8s", "severity": "warning", **labels}
    return {
        "status": "resolved" if ended is not None else "firing",
        "labels": labels,
        "annotations": {"summary": f"{name} (export test)"},
        "startsAt": format_time(at(started)),
        "endsAt": format_time(at(ended)) if ended is not None else NOT_ENDED,
        "generatorURL": "http://prometheus-k8s-0:9090/graph",
        "fingerprint": fp,
    }


KSM = {"job": "kube-state-metrics", "namespace": "monitoring"}


def storm_alerts(ended: float | None = None) -> dict[str, list[dict[str, Any]]]:
    """The storm's alerts by Alertmanager group; `ended`: all of them resolved then."""
    pods = [
        ("p-checkout", "shop", "checkout-6d8f7b9c5d-x2x9q"),
        ("p-cart", "shop", "cart-5f7c9d8b6-k4m2p"),
        ("p-exporter", "monitoring", "node-exporter-7xk2p"),
    ]
    return {
        "shop": [
            alert(fp, 15.8, "KubePodNotReady", ended, **{**KSM, "namespace": ns, "pod": pod})
            for fp, ns, pod in pods
            if ns == "shop"
        ],
        "monitoring": [
            alert("p-exporter", 15.8, "KubePodNotReady", ended, **{**KSM, "pod": "node-exporter-7xk2p"}),
            alert(
                "ds-exporter",
                16.0,
                "KubeDaemonSetRolloutStuck",
                ended,
                **{**KSM, "daemonset": "node-exporter"},
            ),
        ],
        "kube-system": [
            alert(
                "ds-proxy",
                16.0,
                "KubeDaemonSetRolloutStuck",
                ended,
                **{**KSM, "namespace": "kube-system", "daemonset": "kube-proxy"},
            ),
        ],
        "": [alert("n-worker-1", 15.9, "KubeNodeNotReady", ended, job="kube-state-metrics", node="worker-1")],
    }


def delivery(received: datetime, alerts: list[dict[str, Any]]) -> Delivery:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    payload = {
        "version": "4",
        "groupKey": "{}:{}",
        "status": status,
        "receiver": "alert-router",
        "externalURL": "http://alertmanager-main-0:9093",
        "alerts": alerts,
    }
    return Delivery.model_validate({"received_at": format_time(received), "payload": payload})


@dataclass
class Recorded:
    engine: Engine
    events: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    incident: str  # the node's incident

    def incident_of(self, root: str) -> str:
        return next(i["id"] for i in self.engine.incidents() if i["root"]["entity"] == root)


def node_down_storm(*, resolve: bool = True, acts: bool = True) -> Recorded:
    """Run the storm through the engine; `resolve=False` stops while the node is still down."""
    engine = Engine(cluster(), RuleSet.load())
    firing = storm_alerts()
    steps: list[tuple[float, str, Any]] = [
        (16.3, "deliver", firing["shop"]),
        (16.3, "deliver", firing["monitoring"]),
        (16.4, "deliver", firing[""]),
        (16.5, "deliver", firing["kube-system"]),
        (21.3, "deliver", firing["shop"] + []),  # group_interval re-send: a duplicate
    ]
    if acts:
        steps += [
            (21.5, "act", ("acknowledge", "alice", "looking at worker-1")),
            (24.0, "act", ("silence", "bob", "known: worker-1 power supply")),
        ]
    if resolve:
        ended = storm_alerts(ended=40.0)
        steps += [
            (40.5, "deliver", ended[""]),
            (41.0, "deliver", ended["shop"]),
            (41.0, "deliver", ended["monitoring"]),
            (41.5, "deliver", ended["kube-system"]),
        ]
    notes = []
    events = []
    last = T0
    for minute, what, data in sorted(steps, key=lambda s: s[0]):
        now = at(minute)
        last = now
        if what == "deliver":
            notes += engine.ingest(delivery(now, data), now)
        else:
            action, user, note = data
            incident = next(i["id"] for i in engine.incidents() if i["root"]["entity"] == NODE)
            notes += engine.act(incident, action, user, now, note=note)
        events += engine.drain_events()
    if resolve:
        notes += engine.finish(last)
    else:
        notes += engine.tick(at(30))
    events += engine.drain_events()
    incident = next(i["id"] for i in engine.incidents() if i["root"]["entity"] == NODE)
    return Recorded(engine, [e.to_dict() for e in events], [n.to_dict() for n in notes], incident)
