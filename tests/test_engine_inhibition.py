"""Alertmanager's inhibit rules: what a firing alert mutes says nothing more, not even its resolve.

kube-prometheus routes critical alerts to a sub-route of their own and mutes a warning while the
critical alert of its name and namespace fires. A Service's error-rate warning, a symptom of a
cause, muted when the same alert turns critical on another Service of the namespace, that heals
meanwhile is never resolved in any delivery: it stayed firing here, outlived its cause and paged
on its own. The engine reads kube-prometheus' rules (setting `inhibit_rules`): a muted alert
stays what it was (a root is never hidden), but without news of it since it is not judged afresh
on its own: it ends there. An Alertmanager that does not apply a rule shows it (it delivers the
warning beside the critical) and is not read with that rule again: for such a sender the rules
change no decision.
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


DNS_DOWN = {"alertname": "CoreDNSDown", "namespace": "kube-system", "severity": "critical"}
DNS_GROUP = '{}/{severity="critical"}:{alertname="CoreDNSDown"}'


def _muted_symptom_storm() -> Stream:
    """Cluster DNS fails at minute 1 and heals at 4; cart's error-rate warning is its symptom.
    At 2.5 the same alert turns critical on checkout, on the critical sub-route: Alertmanager
    mutes cart's warning, which heals while muted (no delivery resolves it); checkout's heals
    at 5."""
    s = Stream()
    _deliver(s, 1.2, DNS_GROUP, [alert("dns", 1, **DNS_DOWN)])
    _deliver(s, 1.5, WARNINGS, [alert("cart", 1.3, **WARNING_ON_CART)])
    _deliver(s, 2.5, CRITICALS, [alert("checkout", 2.3, **CRITICAL_ON_CHECKOUT)])
    _deliver(s, 4.5, DNS_GROUP, [alert("dns", 1, status="resolved", ended=4, **DNS_DOWN)])
    resolved = alert("checkout", 2.3, status="resolved", ended=5, **CRITICAL_ON_CHECKOUT)
    _deliver(s, 5.5, CRITICALS, [resolved])
    return s


def test_a_muted_symptom_that_outlives_its_cause_is_not_judged_afresh():
    """Without the rules cart's warning stays firing for ever: it outlives DNS, is judged afresh
    as an alert of its own and pages, long after it healed. Muted, it was not heard of since:
    it ends where it would be judged afresh."""
    engine = Engine(small_cluster(), RULES)
    notes = run(engine, _muted_symptom_storm(), until=120)
    assert [n.root_entity for n in notes if n.action == "page"] == ["dns/default/cluster-dns"]
    events = engine.drain_events()
    muted = [e.at for e in events if e.kind == "alert_muted" and e.data["fingerprint"] == "cart"]
    assert muted == [at(2.5)]
    ended = [e for e in events if e.kind == "alert_resolved" and e.data["fingerprint"] == "cart"]
    assert len(ended) == 1 and "taken as ended" in ended[0].data["reason"]
    without = run(Engine(small_cluster(), RULES, NO_RULES), _muted_symptom_storm(), until=120)
    assert "service/default/shop/cart" in {n.root_entity for n in without if n.action == "page"}


def test_a_muted_root_is_never_hidden():
    """cart's warning stands on its own when the critical on checkout mutes it: whether it heals
    no one will say, so it stays as it was and pages as it would with no rules (a full disk
    muted by another node's critical one did not heal)."""

    def storm() -> Stream:
        s = Stream()
        _deliver(s, 1, WARNINGS, [alert("cart", 0.5, **WARNING_ON_CART)])
        _deliver(s, 2.5, CRITICALS, [alert("checkout", 2.3, **CRITICAL_ON_CHECKOUT)])
        return s

    with_rules = run(Engine(small_cluster(), RULES), storm(), until=120)
    without = run(Engine(small_cluster(), RULES, NO_RULES), storm(), until=120)
    assert "service/default/shop/cart" in {n.root_entity for n in with_rules if n.action == "page"}
    assert [(n.action, n.root_entity, n.at) for n in with_rules] == [
        (n.action, n.root_entity, n.at) for n in without
    ]


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
    more, and the warning is not muted (never ended in its stead; its incident keeps its age)."""
    s = Stream()
    _deliver(s, 1, WARNINGS, [alert("cart-w", 0.5, **WARNING_ON_CART)])
    _deliver(s, 3, CRITICALS, [alert("cart-c", 2.8, **dict(WARNING_ON_CART, severity="critical"))])
    engine = Engine(small_cluster(), RULES)
    run(engine, s, until=10)
    assert engine.alerts["cart-w"].firing and not engine.alerts["cart-w"].muted
    assert "alert_muted" not in {e.kind for e in engine.drain_events()}


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
