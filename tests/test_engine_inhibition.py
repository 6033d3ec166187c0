"""Alertmanager's inhibit rules: what a firing alert mutes says nothing more, not even its resolve.

kube-prometheus routes critical alerts to a sub-route of their own and mutes a warning while the
critical alert of its name and namespace fires. A warning on one Service, muted when the same
alert turns critical on another Service of the namespace, that heals meanwhile is never resolved
in any delivery: it stayed firing here and paged twenty minutes after it healed. The engine reads
kube-prometheus' rules (setting `inhibit_rules`): the muted warning ends when its inhibitor fires.
An Alertmanager that does not apply a rule shows it (it delivers the warning beside the critical)
and is not read with that rule again: for such a sender the rules change no decision.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ground.times import format_time
from router.core.engine import Engine
from router.core.settings import EngineSettings
from rules.ruleset import RuleSet
from tests.world import Stream, alert, at, run, small_cluster

RULES = RuleSet.load()
ERRORS = {"alertname": "HighErrorRate", "namespace": "shop"}
WARNING_ON_CART = dict(ERRORS, service="cart", severity="warning")
CRITICAL_ON_CHECKOUT = dict(ERRORS, service="checkout", severity="critical")
NO_RULES = EngineSettings(inhibit_rules=[])


def _deliver(s: Stream, minutes: float, group_key: str, alerts: list[dict]) -> None:
    """One flush of one Alertmanager group (both HA replicas)."""
    payload = {
        "version": "4",
        "groupKey": group_key,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": "alert-router",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager-main-0:9093",
        "truncatedAlerts": 0,
        "alerts": alerts,
    }
    s.lines.append({"received_at": format_time(at(minutes)), "payload": payload})


WARNINGS = '{}:{alertname="HighErrorRate"}'
CRITICALS = '{}/{severity="critical"}:{alertname="HighErrorRate"}'


def _muted_warning_storm(critical_at: float, critical_heals: float) -> Stream:
    """cart's error-rate warning is delivered at minute 1 and heals at 3, muted by then: the
    critical on checkout, delivered at `critical_at` on its sub-route, mutes it in Alertmanager,
    which drops its resolve. The critical heals at `critical_heals`."""
    s = Stream()
    _deliver(s, 1, WARNINGS, [alert("cart", 0.5, **WARNING_ON_CART)])
    _deliver(s, critical_at, CRITICALS, [alert("checkout", critical_at - 0.2, **CRITICAL_ON_CHECKOUT)])
    resolved = alert(
        "checkout", critical_at - 0.2, status="resolved", ended=critical_heals, **CRITICAL_ON_CHECKOUT
    )
    _deliver(s, critical_heals + 0.5, CRITICALS, [resolved])
    return s


def test_a_warning_muted_by_a_critical_of_its_name_ends_with_no_resolve():
    s = _muted_warning_storm(critical_at=2.5, critical_heals=4)
    engine = Engine(small_cluster(), RULES)
    notes = run(engine, s, until=120)
    assert [n for n in notes if n.action == "page"] == []
    ended = [
        e for e in engine.drain_events() if e.kind == "alert_resolved" and e.data["fingerprint"] == "cart"
    ]
    assert ended and "muted by HighErrorRate" in ended[0].data["reason"]
    assert ended[0].at == at(2.5)
    # Read without the rules, the warning never ends, and pages on its own.
    without = run(Engine(small_cluster(), RULES, NO_RULES), _muted_warning_storm(2.5, 4), until=120)
    assert [n.root_entity for n in without if n.action == "page"] == ["service/default/shop/cart"]


def test_a_sender_that_delivers_the_warning_beside_its_critical_does_not_inhibit():
    """Grouped by namespace, the warning's group flushes with the critical in it: Alertmanager
    did not mute it. The rule is not applied to that sender, and the warning pages as it would
    with no rules at all."""

    def storm() -> Stream:
        s = Stream()
        s.deliver(1, [alert("cart", 0.5, **WARNING_ON_CART)])
        s.deliver(3, [alert("cart", 0.5, **WARNING_ON_CART), alert("checkout", 2.8, **CRITICAL_ON_CHECKOUT)])
        return s

    engine = Engine(small_cluster(), RULES)
    with_rules = run(engine, storm(), until=120)
    assert "inhibit_rule_ignored" in {e.kind for e in engine.drain_events()}
    without = run(Engine(small_cluster(), RULES, NO_RULES), storm(), until=120)
    assert [(n.action, n.root_entity, n.at) for n in with_rules] == [
        (n.action, n.root_entity, n.at) for n in without
    ]
    assert "service/default/shop/cart" in {n.root_entity for n in with_rules if n.action == "page"}


def test_its_own_critical_keeps_a_warning_as_it_was():
    """The warning and the critical of one alert on one Service: the critical says the same and
    more, and the warning is not ended (its incident keeps its age)."""
    s = Stream()
    _deliver(s, 1, WARNINGS, [alert("cart-w", 0.5, **WARNING_ON_CART)])
    _deliver(s, 3, CRITICALS, [alert("cart-c", 2.8, **dict(WARNING_ON_CART, severity="critical"))])
    engine = Engine(small_cluster(), RULES)
    run(engine, s, until=10)
    assert engine.alerts["cart-w"].firing


@settings(max_examples=40, deadline=None)
@given(
    warning_lasts=st.floats(min_value=0.5, max_value=40).map(lambda m: round(m, 1)),
    critical_after=st.floats(min_value=0, max_value=40).map(lambda m: round(m, 1)),
    critical_lasts=st.floats(min_value=0.5, max_value=40).map(lambda m: round(m, 1)),
)
def test_for_a_sender_that_does_not_inhibit_the_rules_change_nothing(
    warning_lasts, critical_after, critical_lasts
):
    """Grouped by namespace with every alert in every flush (no inhibition): whatever the timing,
    the notifications are those of an engine without inhibit rules."""
    warning_ends, critical_starts = 1 + warning_lasts, 1 + critical_after
    critical_ends = critical_starts + critical_lasts

    def state(minutes: float) -> list[dict]:
        shown = []
        if minutes >= 1:
            ended = warning_ends if minutes >= warning_ends else None
            shown.append(alert("cart", 1, "resolved" if ended else "firing", ended, **WARNING_ON_CART))
        if minutes >= critical_starts:
            ended = critical_ends if minutes >= critical_ends else None
            status = "resolved" if ended else "firing"
            shown.append(alert("checkout", critical_starts, status, ended, **CRITICAL_ON_CHECKOUT))
        return shown

    def storm() -> Stream:
        s = Stream()
        flushes = sorted({1.5, critical_starts + 0.5, warning_ends + 0.5, critical_ends + 0.5})
        flushes += [flushes[-1] + 5 * k for k in range(1, 4)]
        for minutes in flushes:
            s.deliver(minutes, state(minutes))
        return s

    def told(settings: EngineSettings | None) -> list[tuple]:
        notes = run(Engine(small_cluster(), RULES, settings), storm(), until=200)
        return [(n.action, n.root_entity, n.at) for n in notes]

    assert told(None) == told(NO_RULES)


def test_a_rule_that_does_not_parse_is_refused_naming_it():
    bad = {"source_matchers": ['severity=~"("'], "target_matchers": ['severity="info"'], "equal": []}
    try:
        EngineSettings(inhibit_rules=[bad])
    except ValidationError as error:
        assert "inhibit_rules.0.source_matchers" in str(error)
        assert 'severity=~"("' in str(error)
    else:
        raise AssertionError("accepted a matcher that does not parse")
