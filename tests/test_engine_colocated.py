"""Applications failing together on a node they share wait for that node's own alert.

A node whose disk fills slows the applications on it half an hour before
`NodeFilesystemAlmostOutOfSpace` (`for: 30m`) fires, often with no prediction firing and the
kubelet's pressure alerts (info) inhibited. Two Services in two namespaces slow at once, with an
endpoint on one node, is too common by chance to blame the node (inference wants three), but it
is reason to wait: their held latency waits `foreshadow_wait` past its due. For any timing: a
node alert arriving within that wait takes both as symptoms and one page names the node; none
arriving, each Service pages at the wait's end (nothing is hidden). Services that share no node
wait no longer than before.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.core.engine import Engine
from router.core.settings import EngineSettings
from rules.ruleset import RuleSet
from tests.world import Stream, alert, at, run, small_cluster

RULES = RuleSet.load()
HOLD = RULES.classify(
    {"alertname": "LatencyHigh", "namespace": "shop", "service": "checkout"}, small_cluster()
).hold
WAIT = EngineSettings().foreshadow_wait
# In small_cluster, shop/checkout and db/orders both run on w0 and w3; shop/cart runs on w1 and
# w4, web/frontend on w2 and w5: no node in common with checkout.
SHARING = ("shop", "checkout"), ("db", "orders")
APART = ("shop", "checkout"), ("web", "frontend")


def _storm(
    services, latency_at: float, second_after: float, full_after: float | None, alertname: str = "LatencyHigh"
) -> Stream:
    s = Stream()
    for i, (namespace, service) in enumerate(services):
        started = latency_at + i * second_after
        s.deliver(
            started + 0.5,
            [alert(f"lat-{service}", started, alertname=alertname, namespace=namespace, service=service)],
        )
    if full_after is not None:
        disk = {"instance": "10.0.0.10:9100", "job": "node-exporter", "namespace": "monitoring"}  # w0
        full = latency_at + full_after
        s.deliver(full + 0.5, [alert("full", full, alertname="NodeFilesystemAlmostOutOfSpace", **disk)])
    return s


def _pages(notes) -> list:
    return [n for n in notes if n.action == "page"]


minutes = st.floats(min_value=1, max_value=40, allow_nan=False).map(lambda m: round(m, 1))
apart = st.floats(min_value=0, max_value=4).map(lambda m: round(m, 1))
hold_minutes = HOLD.total_seconds() / 60
wait_minutes = WAIT.total_seconds() / 60


@settings(max_examples=40, deadline=None)
@given(
    latency_at=minutes,
    second_after=apart,
    full_after=st.floats(min_value=0, max_value=60).map(lambda m: round(m, 1)),
)
def test_a_node_two_slow_services_share_takes_them_when_its_alert_comes(latency_at, second_after, full_after):
    notes = run(
        Engine(small_cluster(), RULES),
        _storm(SHARING, latency_at, second_after, full_after),
        until=latency_at + 150,
    )
    pages = _pages(notes)
    first_due = hold_minutes + 0.5  # delivered half a minute after it fired
    if full_after + 0.5 < first_due + wait_minutes:
        # The node's alert came while the latency waited: one page, on the node.
        assert [p.root_entity for p in pages] == ["node/default/w0"]
        symptoms = {s.entity for s in pages[0].symptoms}
        assert {"service/default/shop/checkout", "service/default/db/orders"} <= symptoms
    else:
        # It did not come in time: each Service paged on its own when its wait ran out.
        assert pages[0].root_entity == "service/default/shop/checkout"
        assert pages[0].at == at(latency_at + first_due) + WAIT


@settings(max_examples=20, deadline=None)
@given(latency_at=minutes, second_after=apart)
def test_services_that_share_no_node_wait_no_longer(latency_at, second_after):
    # Errors: a Service that is only slow waits on its own (tests/test_engine_slow_alone.py).
    storm = _storm(APART, latency_at, second_after, None, alertname="HighErrorRate")
    notes = run(Engine(small_cluster(), RULES), storm, until=latency_at + 150)
    pages = _pages(notes)
    assert [p.root_entity for p in pages] == ["service/default/shop/checkout", "service/default/web/frontend"]
    assert pages[0].at == at(latency_at + 0.5) + HOLD
    assert pages[1].at == at(latency_at + second_after + 0.5) + HOLD


@settings(max_examples=20, deadline=None)
@given(latency_at=minutes, second_after=apart)
def test_two_slow_services_on_one_node_are_never_hidden(latency_at, second_after):
    """No node alert ever comes: both Services still page, only later."""
    notes = run(
        Engine(small_cluster(), RULES),
        _storm(SHARING, latency_at, second_after, None),
        until=latency_at + 150,
    )
    assert sorted(p.root_entity for p in _pages(notes)) == [
        "service/default/db/orders",
        "service/default/shop/checkout",
    ]
