"""Every member of cluster DNS failing for one reason they share is that reason's symptom.

CoreDNS's replicas often sit in one zone. When that zone is lost, every CoreDNS pod fails
with its node, and `CoreDNSDown` (no labels, `for: 15m`) arrives after the zone is known: it is
the zone's symptom, not a second root. Every member failing on its own (each CoreDNS pod
crash-looping on a healthy node) or for different reasons is cluster DNS down, its own root.
"""

from __future__ import annotations

import pytest

from router.core.engine import Engine
from rules.ruleset import RuleSet
from tests.world import Stream, alert, run
from topology.graph import Topology

RULES = RuleSet.load()


def _cluster() -> Topology:
    """Zones z0 (a0, a1: both CoreDNS replicas) and z1 (b0, b1), an application on each node."""
    t = Topology()
    dns = t.add("dns/default/cluster-dns")
    for i, name in enumerate(["a0", "a1", "b0", "b1"]):
        node = f"node/default/{name}"
        t.add(node, internal_ip=f"10.0.0.{10 + i}")
        t.index_node_ip("default", f"10.0.0.{10 + i}", node)
        t.depends(node, f"zone/default/z{i // 2}")
        t.depends(f"{node}/kubelet", node)
        pod = f"pod/default/shop/web-5c8d-{i}"
        t.add(pod, node=node, owner="deployment/default/shop/web")
        t.depends(pod, node)
        t.depends(pod, dns)
        t.depends("deployment/default/shop/web", pod)
        t.depends("service/default/shop/web", pod, redundant=True)
    for i, name in enumerate(["a0", "a1"]):
        pod = f"pod/default/kube-system/coredns-7d9f-{i}"
        t.add(pod, node=f"node/default/{name}", owner="deployment/default/kube-system/coredns")
        t.depends(pod, f"node/default/{name}")
        t.depends("deployment/default/kube-system/coredns", pod)
        t.depends(dns, pod, redundant=True)
    return t


def _pages(stream: Stream) -> list[str]:
    notes = run(Engine(_cluster(), RULES), stream, until=90)
    return [n.root_entity for n in notes if n.action == "page"]


@pytest.mark.parametrize("coredns_after", [0.5, 5, 12])
def test_coredns_down_with_the_zone_that_held_it_is_the_zones_symptom(coredns_after):
    s = Stream()
    s.deliver(
        2,
        [
            alert("nr-a0", 1, alertname="KubeNodeNotReady", node="a0"),
            alert("nr-a1", 1, alertname="KubeNodeNotReady", node="a1"),
            alert("dns-0", 1, alertname="KubePodNotReady", namespace="kube-system", pod="coredns-7d9f-0"),
            alert("dns-1", 1, alertname="KubePodNotReady", namespace="kube-system", pod="coredns-7d9f-1"),
        ],
    )
    s.deliver(
        2 + coredns_after,
        [alert("coredns-down", 1 + coredns_after, alertname="CoreDNSDown", severity="critical")],
    )
    assert _pages(s) == ["zone/default/z0"]


def test_coredns_pods_failing_on_healthy_nodes_are_cluster_dns_down():
    s = Stream()
    s.deliver(
        2,
        [
            alert(
                f"crash-{i}",
                1,
                alertname="KubePodCrashLooping",
                namespace="kube-system",
                pod=f"coredns-7d9f-{i}",
            )
            for i in range(2)
        ],
    )
    s.deliver(4, [alert("coredns-down", 3, alertname="CoreDNSDown", severity="critical")])
    assert _pages(s) == ["dns/default/cluster-dns"]
