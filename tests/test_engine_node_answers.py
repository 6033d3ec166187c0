"""A node that reports on itself is up: it is no sign that its zone is lost.

A zone is lost when its nodes go silent (NotReady, their kubelets unreachable). A full disk,
memory pressure or evictions are the node's own exporter and kubelet answering (rule field
`node_answers`): such a node beside a dead one of the same zone is two node problems, each
paged on its own, not a zone outage.
"""

from __future__ import annotations

import pytest

from router.core.engine import Engine
from rules.ruleset import RuleSet
from tests.world import Stream, alert, run, small_cluster

RULES = RuleSet.load()
# small_cluster's zone z0 holds w0 (10.0.0.10) and w1 (10.0.0.11).
DEAD_W0 = {"alertname": "KubeNodeNotReady", "node": "w0", "namespace": "kube-system"}
SILENT_W1 = {"alertname": "KubeNodeNotReady", "node": "w1", "namespace": "kube-system"}
ANSWERING_W1 = [
    {"alertname": "NodeFilesystemAlmostOutOfSpace", "instance": "10.0.0.11:9100", "namespace": "monitoring"},
    {"alertname": "NodeMemoryHighUtilization", "instance": "10.0.0.11:9100", "namespace": "monitoring"},
    {"alertname": "KubeNodePressure", "node": "w1", "condition": "DiskPressure", "severity": "info"},
]


def _pages(stream: Stream) -> list[str]:
    notes = run(Engine(small_cluster(), RULES), stream, until=120)
    return sorted(n.root_entity for n in notes if n.action == "page")


@pytest.mark.parametrize("labels", ANSWERING_W1, ids=lambda labels: labels["alertname"])
@pytest.mark.parametrize("first", ["dead", "answering"])
def test_a_node_that_answers_beside_a_dead_one_is_no_zone(labels, first):
    assert RULES.classify(labels, small_cluster()).node_answers
    s = Stream()
    dead, answering = alert("dead", 2, **DEAD_W0), alert("answers", 2, **labels)
    s.deliver(3, [dead, answering] if first == "dead" else [answering, dead])
    pages = _pages(s)
    assert "zone/default/z0" not in pages
    assert "node/default/w0" in pages


def test_two_silent_nodes_of_a_zone_are_the_zone():
    s = Stream()
    s.deliver(3, [alert("dead0", 2, **DEAD_W0), alert("dead1", 2, **SILENT_W1)])
    assert _pages(s) == ["zone/default/z0"]
