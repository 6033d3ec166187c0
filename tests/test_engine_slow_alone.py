"""A Service that is only slow, with nothing failing beside it, waits for its node to say why.

A node whose disk fills slows the IO of what runs there half an hour before
`NodeFilesystemAlmostOutOfSpace` (`for: 30m`) fires, often with no prediction firing and the
kubelet's pressure alerts (info) inhibited; one slow Service does not say which of its nodes
that is. Its latency (rule field `slowness`) waits `slow_alone_wait` past its hold. For any
timing: the node's alert arriving within that wait takes the Service and one page names the
node; none arriving, the Service pages at the wait's end (never hidden). Errors on the Service,
or a caller failing with it, page at the hold as before.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.core.engine import Engine
from router.core.settings import EngineSettings
from rules.ruleset import RuleSet
from tests.world import Stream, alert, at, call_graph, run, small_cluster
from topology.changes import Change

RULES = RuleSet.load()
SLOW = {"alertname": "HighRequestLatency", "namespace": "shop", "service": "checkout"}
HOLD = RULES.classify(SLOW, small_cluster()).hold
WAIT = EngineSettings().slow_alone_wait
DISK_ON_W0 = {  # shop/checkout runs on w0 and w3
    "alertname": "NodeFilesystemAlmostOutOfSpace",
    "instance": "10.0.0.10:9100",
    "job": "node-exporter",
    "namespace": "monitoring",
}
minutes = st.floats(min_value=1, max_value=40, allow_nan=False).map(lambda m: round(m, 1))


def _pages(notes) -> list:
    return [n for n in notes if n.action == "page"]


def test_latency_alone_is_slowness_and_errors_are_not():
    topology = small_cluster()
    assert RULES.classify(SLOW, topology).slowness
    errors = dict(SLOW, alertname="HighErrorRate")
    assert not RULES.classify(errors, topology).slowness
    assert RULES.classify(errors, topology).hold == HOLD


@settings(max_examples=40, deadline=None)
@given(slow_at=minutes, full_after=st.floats(min_value=0, max_value=60).map(lambda m: round(m, 1)))
def test_the_node_takes_a_slow_service_when_its_alert_comes_in_time(slow_at, full_after):
    s = Stream()
    s.deliver(slow_at + 0.5, [alert("slow", slow_at, **SLOW)])
    full = slow_at + full_after
    s.deliver(full + 0.5, [alert("full", full, **DISK_ON_W0)])
    pages = _pages(run(Engine(small_cluster(), RULES), s, until=slow_at + 150))
    waits_until = at(slow_at + 0.5) + HOLD + WAIT
    if at(full + 0.5) < waits_until:
        assert [p.root_entity for p in pages] == ["node/default/w0"]
        assert "service/default/shop/checkout" in {x.entity for x in pages[0].symptoms}
    else:
        assert pages[0].root_entity == "service/default/shop/checkout"
        assert pages[0].at == waits_until


@settings(max_examples=20, deadline=None)
@given(slow_at=minutes)
def test_a_slow_service_is_never_hidden(slow_at):
    s = Stream()
    s.deliver(slow_at + 0.5, [alert("slow", slow_at, **SLOW)])
    pages = _pages(run(Engine(small_cluster(), RULES), s, until=slow_at + 150))
    assert [(p.root_entity, p.at) for p in pages] == [
        ("service/default/shop/checkout", at(slow_at + 0.5) + HOLD + WAIT)
    ]


@settings(max_examples=20, deadline=None)
@given(slow_at=minutes, errors_after=st.floats(min_value=0, max_value=10).map(lambda m: round(m, 1)))
def test_a_slow_service_that_also_fails_pages_at_its_hold(slow_at, errors_after):
    s = Stream()
    s.deliver(slow_at + 0.5, [alert("slow", slow_at, **SLOW)])
    errors_at = slow_at + errors_after
    s.deliver(errors_at + 0.5, [alert("errors", errors_at, **dict(SLOW, alertname="HighErrorRate"))])
    pages = _pages(run(Engine(small_cluster(), RULES), s, until=slow_at + 150))
    assert [(p.root_entity, p.at) for p in pages] == [
        ("service/default/shop/checkout", at(slow_at + 0.5) + HOLD)
    ]


@settings(max_examples=20, deadline=None)
@given(slow_at=minutes, caller_after=st.floats(min_value=0, max_value=10).map(lambda m: round(m, 1)))
def test_a_slow_service_whose_caller_fails_pages_at_its_hold(slow_at, caller_after):
    """Its callers failing with it: the slowness is the Service's own, and it spreads."""
    topology = call_graph({"web": ["api"], "api": []})
    s = Stream()
    s.deliver(
        slow_at + 0.5, [alert("slow", slow_at, alertname="LatencyP99High", namespace="shop", service="api")]
    )
    caller_at = slow_at + caller_after
    s.deliver(
        caller_at + 0.5, [alert("web", caller_at, alertname="HighErrorRate", namespace="shop", service="web")]
    )
    pages = _pages(run(Engine(topology, RULES), s, until=slow_at + 150))
    assert [(p.root_entity, p.at) for p in pages] == [("service/default/shop/api", at(slow_at + 0.5) + HOLD)]
    assert "service/default/shop/web" in {x.entity for x in pages[0].symptoms}


@settings(max_examples=20, deadline=None)
@given(slow_at=minutes, changed_before=st.floats(min_value=0, max_value=20).map(lambda m: round(m, 1)))
def test_a_slow_service_whose_callee_just_changed_pages_at_its_hold(slow_at, changed_before):
    """A rollout beneath it says why already: nothing to wait for."""
    topology = call_graph({"web": ["api"], "api": []})
    topology.changes.record(Change(at(slow_at - changed_before), "deployment/default/shop/api", "rolled out"))
    s = Stream()
    s.deliver(
        slow_at + 0.5, [alert("slow", slow_at, alertname="LatencyP99High", namespace="shop", service="web")]
    )
    pages = _pages(run(Engine(topology, RULES), s, until=slow_at + 150))
    assert [(p.root_entity, p.at) for p in pages] == [("service/default/shop/web", at(slow_at + 0.5) + HOLD)]
    assert "likely cause: rolled out on deployment shop/api" in pages[0].reason
