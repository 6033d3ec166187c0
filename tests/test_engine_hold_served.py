"""A held symptom whose cause has shown waits to see whether it heals, not for its cause.

An error rate or a latency is held (`hold`) because its cause usually alerts minutes later. Once
it is attached to an incident whose root alert names a failure (one that propagates and is not
itself held: the kubelet evicting pods for memory, info and never paging by itself), the hold
has served: the incident pages when the symptom and its cause have each outlived their grace,
still firing. A memory pressure that slowed two Services for twenty minutes pages, naming the
node; one that heals within those graces stays quiet. A cause that is itself a held class (a
Service's own error rate, explaining its callers') shows nothing yet: its callers wait their hold.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.core.engine import Engine
from rules.ruleset import RuleSet
from tests.world import Stream, alert, at, call_graph, run, small_cluster

RULES = RuleSet.load()
TOPOLOGY = small_cluster()
EVICTING_W0 = {"alertname": "KubeNodeEviction", "node": "w0", "severity": "info"}
# shop/checkout and db/orders each have a pod on w0.
SLOW_CHECKOUT = {
    "alertname": "SlowResponses",
    "namespace": "shop",
    "service": "checkout",
    "severity": "critical",
}
SLOW_ORDERS = {"alertname": "HighRequestLatency", "namespace": "db", "service": "orders"}
EVICTION = RULES.classify(EVICTING_W0, TOPOLOGY)
CHECKOUT = RULES.classify(SLOW_CHECKOUT, TOPOLOGY)
ORDERS = RULES.classify(SLOW_ORDERS, TOPOLOGY)
minutes = st.floats(min_value=0, max_value=6, allow_nan=False).map(lambda m: round(m, 1))


def _pressure(slow_after: float, lasts: float) -> tuple[Stream, float]:
    """w0 evicts from minute 1; its two Services slow `slow_after` later; all of it heals at
    1 + `lasts` (resolves delivered half a minute later). Returns the stream and the heal time."""
    healed = 1 + lasts
    s = Stream()
    s.deliver(1.5, [alert("evict", 1, **EVICTING_W0)])
    slow = 1 + slow_after
    s.deliver(slow + 0.5, [alert("checkout", slow, **SLOW_CHECKOUT), alert("orders", slow, **SLOW_ORDERS)])
    resolved = [
        alert("evict", 1, status="resolved", ended=healed, **EVICTING_W0),
        alert("checkout", slow, status="resolved", ended=healed, **SLOW_CHECKOUT),
        alert("orders", slow, status="resolved", ended=healed, **SLOW_ORDERS),
    ]
    s.deliver(healed + 0.5, resolved)
    return s, healed


def test_the_classes_this_relies_on():
    assert EVICTION.propagates and not EVICTION.hold and EVICTION.urgency == "quiet"
    assert CHECKOUT.hold > CHECKOUT.grace and ORDERS.hold > ORDERS.grace


@settings(max_examples=60, deadline=None)
@given(slow_after=minutes, lasts=st.floats(min_value=6, max_value=40).map(lambda m: round(m, 1)))
def test_a_cause_that_did_not_heal_pages_once_its_symptoms_outlived_their_grace(slow_after, lasts):
    slow_seen = at(1 + slow_after + 0.5)
    s, healed = _pressure(slow_after, lasts)
    notes = run(Engine(TOPOLOGY, RULES), s, until=healed + 60)
    pages = [n for n in notes if n.action == "page"]
    due = max(slow_seen + CHECKOUT.grace, at(1.5) + EVICTION.grace)
    if due < at(healed + 0.5):
        assert [(p.root_entity, p.at) for p in pages] == [("node/default/w0", due)]
        symptoms = {x.entity for x in pages[0].symptoms}
        assert {"service/default/shop/checkout", "service/default/db/orders"} <= symptoms
        assert due < slow_seen + CHECKOUT.hold  # sooner than the hold would have let it
    else:
        assert pages == []  # healed within the graces: quiet, told as a notice
        assert [n.root_entity for n in notes if n.action == "notice"] == ["node/default/w0"]


def test_a_pressure_that_heals_within_the_graces_is_a_notice():
    s, healed = _pressure(slow_after=0.5, lasts=4)
    notes = run(Engine(TOPOLOGY, RULES), s, until=healed + 60)
    assert [n.action for n in notes] == ["notice"]
    assert notes[0].root_entity == "node/default/w0"


@settings(max_examples=30, deadline=None)
@given(evict_after=st.floats(min_value=0, max_value=20).map(lambda m: round(m, 1)))
def test_a_cause_that_shows_after_its_symptoms_serves_their_hold_from_then(evict_after):
    """The Services slow first; the eviction names the node later: the page comes when both
    have outlived their grace, never later than the Services' hold alone would have paged."""
    s = Stream()
    s.deliver(1.5, [alert("checkout", 1, **SLOW_CHECKOUT), alert("orders", 1, **SLOW_ORDERS)])
    evicted = 1 + evict_after
    s.deliver(evicted + 0.5, [alert("evict", evicted, **EVICTING_W0)])
    pages = [n for n in run(Engine(TOPOLOGY, RULES), s, until=90) if n.action == "page"]
    assert [p.root_entity for p in pages] == ["node/default/w0"]
    by_hold = at(1.5) + max(CHECKOUT.hold, ORDERS.hold)
    assert pages[0].at <= by_hold
    if at(evicted + 0.5) + EVICTION.grace < by_hold:
        assert pages[0].at == at(evicted + 0.5) + EVICTION.grace


def test_a_cause_that_is_itself_held_serves_no_hold():
    """api's error rate explains web's, but an error rate names no failure: web waits its hold
    with api, and the one page names api."""
    topology = call_graph({"web": ["api"], "api": []})
    errors = {"alertname": "HighErrorRate", "namespace": "shop", "severity": "critical"}
    held = RULES.classify(dict(errors, service="api"), topology)
    assert held.hold > held.grace
    s = Stream()
    s.deliver(1.5, [alert("api", 1, service="api", **errors)])
    s.deliver(2.5, [alert("web", 2, service="web", **errors)])
    pages = [n for n in run(Engine(topology, RULES), s, until=90) if n.action == "page"]
    assert [(p.root_entity, p.at) for p in pages] == [("service/default/shop/api", at(1.5) + held.hold)]
    assert "service/default/shop/web" in {x.entity for x in pages[0].symptoms}
