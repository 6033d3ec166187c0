"""Properties of the shared-node rule over generated clusters (hypothesis).

Spread applications (Services with endpoints on several nodes) point at no node alone; when
enough of the failing ones share one node beyond chance, that node is blamed (a disk filling
under nine Services' endpoints). The rule is statistical, so what it must never do matters
most, for any cluster: name a node that another node ties with, name one on fewer than
`min_workloads_shared_node` applications or on no more of them than chance would put there, or
name a node that one more failing application there would take back.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.core.inference import Evidence, _Facts, _shared_node, _underlies, infer
from router.core.reach import Reach
from router.core.settings import InferenceSettings
from topology.graph import Topology

SETTINGS = InferenceSettings()


@st.composite
def clusters(draw) -> tuple[Topology, dict[str, set[str]], list[str]]:
    """A cluster of 3-12 nodes and 4-30 applications, each a Deployment behind its Service with
    1-4 replicas on distinct nodes; and which applications fail (by their Service's alert)."""
    nodes = [f"node/c/n{i}" for i in range(draw(st.integers(3, 12)))]
    t = Topology()
    for i, node in enumerate(nodes):
        t.add(node)
        t.depends(node, f"zone/c/z{i % 3}")
    placement: dict[str, set[str]] = {}
    for a in range(draw(st.integers(4, 30))):
        service = f"service/c/ns{a % 4}/app{a}"
        deployment = f"deployment/c/ns{a % 4}/app{a}"
        replicas = draw(st.integers(1, min(4, len(nodes))))
        where = draw(st.lists(st.sampled_from(nodes), min_size=replicas, max_size=replicas, unique=True))
        for r, node in enumerate(where):
            pod = f"pod/c/ns{a % 4}/app{a}-{r}"
            t.add(pod, node=node, owner=deployment)
            t.depends(pod, node)
            t.depends(deployment, pod)
            t.depends(service, pod, redundant=True)
        placement[service] = set(where)
    failing = draw(st.lists(st.sampled_from(sorted(placement)), min_size=1, unique=True))
    return t, placement, failing


def _shared(t: Topology, failing: list[str]) -> tuple[str, int, int] | None:
    facts = _Facts(t, Reach(t), lambda entity: False)
    evidence = [Evidence(f"inc-{s}", s) for s in failing]
    return _shared_node(evidence, facts, SETTINGS, lambda entity: False)


def _there(placement: dict[str, set[str]], failing: list[str], node: str) -> int:
    return sum(node in placement[s] for s in failing)


@settings(max_examples=300, deadline=None)
@given(clusters())
def test_a_shared_node_is_the_only_one_so_shared_and_beyond_chance(cluster):
    t, placement, failing = cluster
    found = _shared(t, failing)
    if found is None:
        return
    node, there, count = found
    assert there == _there(placement, failing, node) >= SETTINGS.min_workloads_shared_node
    assert count == len(failing)
    others = {n for where in placement.values() for n in where} - {node}
    assert all(_there(placement, failing, other) < there for other in others)
    chance = sum(node in where for where in placement.values()) / len(placement)
    assert _underlies(there, count, chance, standing=True)


@settings(max_examples=300, deadline=None)
@given(clusters())
def test_one_more_failing_application_on_the_node_keeps_it(cluster):
    t, placement, failing = cluster
    found = _shared(t, failing)
    if found is None:
        return
    node = found[0]
    more = [s for s in sorted(placement) if s not in failing and placement[s] == {node}]
    if more:
        assert _shared(t, [*failing, more[0]]) is not None
        assert _shared(t, [*failing, more[0]])[0] == node


@settings(max_examples=200, deadline=None)
@given(clusters())
def test_applications_on_every_node_point_at_none(cluster):
    t, placement, failing = cluster
    everywhere = {n for where in placement.values() for n in where}
    if all(placement[s] == everywhere for s in failing) and len(everywhere) > 1:
        assert _shared(t, failing) is None


def test_callers_of_one_service_blame_it_not_the_node_they_share():
    """Five services in four namespaces, each with an endpoint on n0, all call `db`: the callee
    they share explains them (structure beats co-location), and n0 is not named."""
    t = Topology()
    for i in range(4):
        t.add(f"node/c/n{i}")
    t.add("pod/c/data/db-0", node="node/c/n3", owner="statefulset/c/data/db")
    t.depends("pod/c/data/db-0", "node/c/n3")
    t.depends("service/c/data/db", "pod/c/data/db-0", redundant=True)
    failing = []
    for a in range(5):
        service = f"service/c/ns{a % 4}/app{a}"
        for r, node in enumerate(("n0", f"n{1 + a % 2}")):
            pod = f"pod/c/ns{a % 4}/app{a}-{r}"
            t.add(pod, node=f"node/c/{node}", owner=f"deployment/c/ns{a % 4}/app{a}")
            t.depends(pod, f"node/c/{node}")
            t.depends(service, pod, redundant=True)
        t.depends(service, "service/c/data/db", via="calls")
        failing.append(service)
    assert _shared(t, failing) is not None  # on co-location alone n0 would be the one
    found = infer([Evidence(f"inc-{s}", s) for s in failing], t, Reach(t), lambda e: False, SETTINGS)
    assert [f.entity for f in found] == ["service/c/data/db"]
