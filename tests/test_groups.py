"""Alerts that leave their Alertmanager group without a resolve (router/core/groups.py).

Alertmanager sends each group whole; a muted alert is simply absent, and one muted as it heals
never gets its resolve. The engine takes such an alert as ended, but only from a sender that has
shown it sends snapshots, and never because an HA replica's copy lags the other's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ground.times import format_time
from router.core.engine import Engine
from router.core.groups import RECONCILE_GROUP_KEY, GroupSnapshots
from router.core.model import WebhookPayload
from router.core.settings import EngineSettings
from rules.ruleset import RuleSet
from tests.world import Stream, alert, at, run, small_cluster

RULES = RuleSet.load()
MINUTE = timedelta(minutes=1)
T0 = datetime(2026, 1, 1)


def snapshot(
    fingerprints: dict[str, str], key: str = '{}:{namespace="shop"}', **extra: object
) -> WebhookPayload:
    """A group's webhook: fingerprint -> status."""
    alerts = [
        {"status": status, "labels": {"alertname": fp}, "startsAt": "2026-01-01T00:00:00Z", "fingerprint": fp}
        for fp, status in fingerprints.items()
    ]
    body = {
        "version": "4",
        "groupKey": key,
        "receiver": "r",
        "externalURL": "http://am:9093",
        "alerts": alerts,
    }
    return WebhookPayload.model_validate({**body, **extra})


def test_an_alert_absent_from_a_later_snapshot_has_left_once_the_sender_re_sent():
    groups = GroupSnapshots(MINUTE)
    assert list(groups.left(snapshot({"a": "firing", "b": "firing"}), T0)) == []
    # The next flush re-sends a and b with a change: the sender sends snapshots.
    assert list(groups.left(snapshot({"a": "firing", "b": "firing", "c": "firing"}), T0 + 5 * MINUTE)) == []
    # b is muted now: absent, neither firing nor resolved.
    assert list(groups.left(snapshot({"a": "firing", "c": "resolved"}), T0 + 10 * MINUTE)) == ["b"]
    # c's resolve came: it is not "left" again.
    assert list(groups.left(snapshot({"a": "firing"}), T0 + 15 * MINUTE)) == []


def test_a_feed_of_changes_never_makes_an_alert_leave():
    """A sender that posts only what changed never re-sends an alert: nothing it leaves out has
    left. (An HA replica's copy of the same flush, seconds later, proves nothing either.)"""
    groups = GroupSnapshots(MINUTE)
    assert list(groups.left(snapshot({"a": "firing"}), T0)) == []
    assert list(groups.left(snapshot({"a": "firing"}), T0 + timedelta(seconds=15))) == []  # the replica
    assert list(groups.left(snapshot({"b": "firing"}), T0 + 5 * MINUTE)) == []
    assert list(groups.left(snapshot({"c": "firing"}), T0 + 10 * MINUTE)) == []


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["g1", "g2"]),
            st.booleans(),  # re-send alerts already sent, or send new ones
            st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=3, unique=True),
        ),
        max_size=16,
    )
)
def test_no_departure_from_a_feed_that_never_sends_the_old_with_the_new(batches):
    """A feed of changes, or of alerts re-sent on their own phases (each delivery all new or
    all re-sends, as a hand-made stream sends them), in any groups and order: nothing leaves."""
    groups = GroupSnapshots(MINUTE)
    sent: dict[str, set[str]] = {"g1": set(), "g2": set()}
    now = T0
    for group, resend, fingerprints in batches:
        chosen = {fp for fp in fingerprints if (fp in sent[group]) == resend}
        sent[group].update(chosen)
        now += 5 * MINUTE
        assert list(groups.left(snapshot(dict.fromkeys(sorted(chosen), "firing"), key=group), now)) == []


def test_incomplete_snapshots_and_reconciliations_say_nothing_of_departures():
    groups = GroupSnapshots(MINUTE)
    groups.left(snapshot({"a": "firing", "b": "firing"}), T0)
    groups.left(snapshot({"a": "firing", "b": "firing", "c": "firing"}), T0 + 5 * MINUTE)
    assert list(groups.left(snapshot({"a": "firing"}, truncatedAlerts=2), T0 + 10 * MINUTE)) == []
    assert list(groups.left(snapshot({}, key=RECONCILE_GROUP_KEY), T0 + 11 * MINUTE)) == []
    assert list(groups.left(snapshot({"a": "firing"}), T0 + 15 * MINUTE)) == ["b", "c"]


def am_stream(flushes: list[tuple[float, list[dict]]]) -> Stream:
    """Deliveries as Alertmanager makes them for one group (namespace shop): each flush the
    whole group, from both replicas of an HA pair."""
    s = Stream()
    for minutes, alerts in flushes:
        s.deliver(minutes, alerts)
    return s


def errors(fp: str, service: str, minutes: float, severity: str) -> dict:
    return alert(fp, minutes, alertname="HighErrorRate", namespace="shop", service=service, severity=severity)


def resolved(firing: dict, minutes: float) -> dict:
    return {**firing, "status": "resolved", "endsAt": format_time(at(minutes))}


def pages_for(
    flushes: list[tuple[float, list[dict]]], settings: EngineSettings | None = None
) -> tuple[set[str], Engine]:
    engine = Engine(small_cluster(), RULES, settings or EngineSettings())
    notes = run(engine, am_stream(flushes), until=120)
    return {n.root_entity for n in notes if n.action == "page"}, engine


CHECKOUT = "service/default/shop/checkout"
# Info-level noise in the same group: keeps it alive, re-sent with every flush.
THROTTLED = alert(
    "cpu", 0, alertname="CPUThrottlingHigh", namespace="shop", pod="cart-5c8d-1", severity="info"
)
SLOW = alert("cpu2", 5, alertname="CPUThrottlingHigh", namespace="shop", pod="cart-5c8d-0", severity="info")


def test_a_warning_muted_as_it_heals_is_not_paged_as_still_firing():
    """checkout's errors (warning) fire; cart's (critical, same name and namespace) then
    inhibit them, and checkout heals while muted: Alertmanager never sends its resolve, and it
    is absent from every later flush. It healed within its hold: never a page."""
    checkout, cart = errors("checkout", "checkout", 0, "warning"), errors("cart", "cart", 1, "critical")
    flushes = [
        (0, [checkout, THROTTLED]),
        (1, [checkout, THROTTLED, cart]),
        (6, [THROTTLED, cart]),  # checkout muted by cart's critical errors, and healed meanwhile
        (8, [THROTTLED, resolved(cart, 8)]),
        *((8 + 5 * k, [THROTTLED]) for k in range(1, 20)),
    ]
    paged, engine = pages_for(flushes)
    assert engine.counters["departed"] == 1
    assert CHECKOUT not in paged
    # Had the router waited for a resolve that never comes, checkout would page as still firing.
    waiting, _ = pages_for(flushes, EngineSettings(departed_after=timedelta(days=1)))
    assert CHECKOUT in waiting


def test_a_muted_alert_that_comes_back_firing_is_judged_again():
    """checkout's errors are muted (absent), then notified again, still firing: that is the
    alert back (not a stale re-send of a resolved one), and it pages past its hold."""
    checkout = errors("checkout", "checkout", 0, "critical")
    flushes = [
        (0, [checkout, THROTTLED]),
        (5, [checkout, THROTTLED, SLOW]),  # SLOW joins the group: the whole group is sent
        (10, [THROTTLED, SLOW]),  # checkout muted by a silence: absent
        *((15 + 5 * k, [checkout, THROTTLED, SLOW]) for k in range(20)),
    ]
    paged, engine = pages_for(flushes)
    assert engine.counters["departed"] == 1
    assert CHECKOUT in paged


def test_a_paged_root_that_people_silence_stays_open():
    """checkout's errors paged; on-call silences them in Alertmanager, so they are absent from
    every later flush. A silence is no resolve: the incident is not resolved behind their back."""
    checkout = errors("checkout", "checkout", 0, "critical")
    flushes = [
        *((5 * k, [checkout, THROTTLED]) for k in range(7)),  # pages at 25m
        *((35 + 5 * k, [THROTTLED]) for k in range(10)),  # silenced
    ]
    engine = Engine(small_cluster(), RULES)
    notes = run(engine, am_stream(flushes), until=120)
    paged = [n for n in notes if n.action == "page" and n.root_entity == CHECKOUT]
    assert paged and not [n for n in notes if n.action == "resolve" and n.incident == paged[0].incident]
    assert engine.counters["departed"] == 0


def test_an_alert_muted_before_its_sender_was_known_is_found_to_have_left_later():
    """b is muted at the group's second flush, before this sender has re-sent anything: that
    absence proves nothing yet, but b is kept; once the sender is known (another group's flush
    brought a new alert beside an old one), b's absence from the next flush of its group is a departure."""
    groups = GroupSnapshots(MINUTE)
    assert list(groups.left(snapshot({"a": "firing", "b": "firing"}), T0)) == []
    assert list(groups.left(snapshot({"c": "firing"}), T0 + MINUTE)) == []  # b muted, a healed unseen
    groups.left(snapshot({"x": "firing"}, key="other"), T0)
    groups.left(snapshot({"x": "firing", "y": "firing"}, key="other"), T0 + 5 * MINUTE)  # old with new
    assert list(groups.left(snapshot({"c": "resolved"}), T0 + 6 * MINUTE)) == ["a", "b"]


def test_a_warning_muted_by_its_own_critical_still_counts():
    """w0's disk: the warning fires, then the critical alert of the same name mutes it (the
    kube-prometheus inhibit rule). The warning is muted, not ended: the node pages when the
    warning is due, as it did before the critical came (the prediction beside it is a notice)."""
    disk = {"instance": "10.0.0.10:9100", "job": "node-exporter", "namespace": "monitoring"}
    warning = alert("full-w", 0, alertname="NodeFilesystemAlmostOutOfSpace", **disk)
    critical = alert(
        "full-c", 5.1, alertname="NodeFilesystemAlmostOutOfSpace", **{**disk, "severity": "critical"}
    )
    predicted = alert("fill", 0, alertname="NodeFilesystemSpaceFillingUp", **disk)
    flushes = [(0, [warning, predicted]), (5.1, [critical, predicted])]
    engine = Engine(small_cluster(), RULES)
    notes = run(engine, am_stream(flushes), until=60)
    assert engine.counters["departed"] == 0
    assert [n.root_entity for n in notes if n.action == "page"] == ["node/default/w0"]
