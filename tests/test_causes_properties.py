"""Properties of the leads a page names when no change does (router/core/causes.py), over random
call graphs, placements and failures (hypothesis):

- a resident lead is a failing entity running on the saturated node, and every other workload
  there in trouble is a victim of a failing callee;
- two workloads on the node in trouble of their own name no lead;
- what fails elsewhere, and is called by nothing on the node, does not change the lead;
- the callee lead is the one service the root calls that no healthy caller also calls, and
  none when several are left.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from router.core.causes import busy_resident, suspect_callee
from tests.world import call_graph
from topology.graph import Topology

NS = "shop"
NODE = "node/default/n1"
DIRECTIONS = st.sampled_from([{"dependencies"}, {"dependents"}, {"dependencies", "dependents"}])


def entity(service: str) -> str:
    return f"service/default/{NS}/{service}"


@st.composite
def worlds(draw) -> tuple[Topology, dict[str, set[str]], set[str]]:
    """A topology of services (one pod each, on n1 or n2) calling later ones, the failing
    entities with their alerts' directions, and the services on n1."""
    names = [f"s{i}" for i in range(draw(st.integers(2, 8)))]
    on_n1 = {s for s in names if draw(st.booleans())}
    calls = {s: [t for t in names[i + 1 :] if draw(st.booleans())] for i, s in enumerate(names)}
    topology = call_graph(calls, on_n1)
    failing = {entity(s): draw(DIRECTIONS) for s in names if draw(st.booleans())}
    return topology, failing, on_n1


def in_trouble_of_its_own(topology: Topology, failing: dict[str, set[str]], name: str) -> bool:
    victim = failing[name] == {"dependencies"} and any(c in failing for c in topology.calls(name))
    return not victim


@given(worlds())
def test_a_resident_lead_is_the_one_workload_on_the_node_in_trouble_of_its_own(world):
    topology, failing, on_n1 = world
    lead = busy_resident(topology, NODE, failing)
    own = sorted(
        entity(s)
        for s in on_n1
        if entity(s) in failing and in_trouble_of_its_own(topology, failing, entity(s))
    )
    if len(own) == 1:
        assert lead == own[0]
    else:
        assert lead is None


@given(worlds(), st.sets(st.integers(0, 7), max_size=4))
def test_failures_nothing_on_the_node_calls_do_not_move_the_lead(world, extra):
    topology, failing, on_n1 = world
    called_from_n1 = {c for s in on_n1 for c in topology.calls(entity(s))}
    more = dict(failing)
    for i in extra:
        name = entity(f"s{i}")
        if name in topology and f"s{i}" not in on_n1 and name not in called_from_n1:
            more[name] = {"dependents"}
    assert busy_resident(topology, NODE, more) == busy_resident(topology, NODE, failing)


@given(worlds())
def test_the_callee_lead_is_the_one_callee_no_healthy_caller_clears(world):
    topology, failing, _ = world
    for name in (n for n in topology.graph.nodes if n.startswith("service/")):
        lead = suspect_callee(topology, name, failing)
        uncleared = [
            callee
            for callee in topology.calls(name)
            if not any(caller != name and caller not in failing for caller in topology.callers(callee))
        ]
        assert lead == (uncleared[0] if len(uncleared) == 1 else None), (name, uncleared)
