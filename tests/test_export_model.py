"""The timeline builder against the real engine: what it rebuilds from the decision events alone
must agree with the engine's own view of the incident (state, root, alerts, paths, times)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ground.times import parse_time
from router.core.engine import Engine
from router.export import TimelineNotFound, TimelineRequestError, build, render_timeline, summarize
from router.export.model import entry_text
from rules.ruleset import RuleSet
from tests.test_export_world import NODE, alert, at, cluster, delivery, node_down_storm, storm_alerts


@pytest.fixture(scope="module")
def storm():
    return node_down_storm()


def test_figures_agree_with_the_engine(storm):
    view = storm.engine.incident(storm.incident)
    t = build(storm.events, storm.notifications, storm.incident)
    f = t.figures
    assert t.state == view["state"] == "closed"
    assert t.root == view["root"]["entity"] == NODE
    assert t.root_alert is not None and t.root_alert.alertname == view["root"]["alert"]["alertname"]
    assert f.impact_start == min(parse_time(a["starts_at"]) for a in view["alerts"])
    assert f.detected_at == min(parse_time(a["first_seen"]) for a in view["alerts"])
    assert f.paged_at == parse_time(view["paged_at"])
    assert f.resolved_at == parse_time(view["closed_at"]) == t.closed_at
    assert (f.acknowledged_at, f.acknowledged_by) == (at(21.5), "alice")
    assert t.acknowledged_by == ["alice"] and t.silenced_by == ["bob"]
    assert f.alerts_received == len(view["alerts"]) == 6
    assert f.pages_sent == 1
    assert f.messages_sent == {"page": 1, "update": 2, "resolve": 1}
    assert f.time_to_detect == (f.detected_at - f.impact_start).total_seconds() == 30
    assert f.time_to_page == (f.paged_at - f.impact_start).total_seconds()
    assert f.time_to_acknowledge == (at(21.5) - f.paged_at).total_seconds()
    assert f.impact_end == at(40)  # every endsAt of the storm
    assert t.severity == view["severity"]


def test_paths_and_roles_are_the_engines(storm):
    view = storm.engine.incident(storm.incident)
    t = build(storm.events, storm.notifications, storm.incident)
    ours = {a.fingerprint: a for a in t.alerts}
    assert set(ours) == {a["fingerprint"] for a in view["alerts"]}
    for item in view["alerts"]:
        assert ours[item["fingerprint"]].path == item["path"], item["fingerprint"]
        assert ours[item["fingerprint"]].role == ("root" if item["entity"] == NODE else "symptom")
    # The pods' own incidents merged in: their alerts came with them, their paths were bridged.
    merged = sorted(i["id"] for i in storm.engine.incidents() if i["merged_into"] == storm.incident)
    assert sorted(t.merged_in) == merged and len(merged) == 2
    assert ours["p-checkout"].incident in merged
    assert ours["ds-exporter"].path == [
        "daemonset/default/monitoring/node-exporter",
        "pod/default/monitoring/node-exporter-7xk2p",
        NODE,
    ]


def test_entries_cover_every_event_of_the_family_once(storm):
    t = build(storm.events, storm.notifications, storm.incident)
    family = {storm.incident, *t.merged_in}
    expected = [e for e in storm.events if e["incident"] in family]
    fired = [e for e in storm.events if e["kind"] == "alert_fired"]  # the storm has only its own alerts
    assert len(t.entries) == len(expected) + len(fired)
    assert [e.at for e in t.entries] == sorted(e.at for e in t.entries)
    kinds = [e.kind for e in t.entries]
    assert kinds.count("alert_fired") == kinds.count("alert_resolved") == 6
    human = [(e.kind, e.actor) for e in t.entries if e.category == "human"]
    assert human == [("acknowledged", "alice"), ("silenced", "bob")]
    # alert_fired records no incident; the entry names the one the alert joined.
    assert all(e.incident in family for e in t.entries if e.kind == "alert_fired")
    messages = [(m.action, m.key, m.status) for m in t.messages]
    assert messages == [
        ("page", f"{storm.incident}:0:page", "replay"),
        ("update", f"{storm.incident}:1:update", "replay"),
        ("update", f"{storm.incident}:2:update", "replay"),
        ("resolve", f"{storm.incident}:3:resolve", "replay"),
    ]
    assert t.messages[0].symptoms == len(storm.notifications[0]["symptoms"]) == 5


def test_lanes_put_the_root_first_then_by_distance(storm):
    t = build(storm.events, storm.notifications, storm.incident)
    lanes = t.entities()
    assert lanes[0] == NODE
    assert set(lanes) == {a.entity for a in t.alerts}
    # Pods (one hop from the node) come before the DaemonSets (two hops).
    assert max(lanes.index(e) for e in lanes if e.startswith("pod/")) < min(
        lanes.index(e) for e in lanes if e.startswith("daemonset/")
    )
    nodes, edges = t.graph()
    assert ("pod/default/monitoring/node-exporter-7xk2p", NODE) in edges
    assert "pod/default/kube-system/kube-proxy-9qv8d" in nodes  # on a path, no alert of its own


def test_states_from_events_match_the_engine_for_every_incident(storm):
    summaries = {s.id: s for s in summarize(storm.events, storm.notifications)}
    for view in storm.engine.incidents():
        s = summaries[view["id"]]
        assert s.state == view["state"], view["id"]
        assert s.root == view["root"]["entity"]
        assert s.merged_into == view["merged_into"]
    node = summaries[storm.incident]
    assert (node.alerts, node.pages) == (6, 1)
    assert "pod/default/shop/cart-5f7c9d8b6-k4m2p" in node.entities  # from a merged-in incident


def test_an_open_incident_exports_marked_provisional():
    open_storm = node_down_storm(resolve=False)
    t = build(open_storm.events, open_storm.notifications, open_storm.incident)
    assert t.open and t.state == "paged" == open_storm.engine.incident(open_storm.incident)["state"]
    assert t.figures.resolved_at is None and t.figures.impact_end is None and t.closed_at is None
    _, md = render_timeline(open_storm.events, open_storm.notifications, open_storm.incident, "md")
    assert "> **Still open** (state paged" in md
    assert "| End of impact | still firing |" in md
    _, html = render_timeline(open_storm.events, open_storm.notifications, open_storm.incident, "html")
    assert 'class="badge badge-open">still open<' in html


def test_a_merged_incident_points_at_where_it_went(storm):
    merged = next(i for i in storm.engine.incidents() if i["merged_into"])
    t = build(storm.events, storm.notifications, merged["id"])
    assert (t.state, t.merged_into, t.survivor) == ("merged", storm.incident, storm.incident)
    assert not t.open and t.figures.resolved_at is None
    _, md = render_timeline(storm.events, storm.notifications, merged["id"], "md")
    assert f"> **Merged** into incident {storm.incident}" in md


def test_detached_symptom_leaves_the_impact_window():
    """The node recovers but a DaemonSet alert keeps firing: after its hold it detaches and is
    judged afresh; for the node's incident it stopped counting when it detached."""
    engine = Engine(cluster(), RuleSet.load())
    firing = storm_alerts()
    ended = storm_alerts(ended=30)
    steps = [(16.4, firing[""]), (16.5, firing["kube-system"]), (30.5, ended[""])]
    for minute, alerts in steps:
        engine.ingest(delivery(at(minute), alerts), at(minute))
    engine.finish(at(30.5))
    events = [e.to_dict() for e in engine.drain_events()]
    incident = next(i["id"] for i in engine.incidents() if i["root"]["entity"] == NODE)
    t = build(events, [], incident)
    daemonset = next(a for a in t.alerts if a.fingerprint == "ds-proxy")
    assert daemonset.detached_at is not None and daemonset.ended is None
    assert daemonset.fingerprint not in {a["fingerprint"] for a in engine.incident(incident)["alerts"]}
    assert t.figures.impact_end == daemonset.detached_at > at(30)
    assert any(e.kind == "symptom_detached" for e in t.entries)
    _, md = render_timeline(events, [], incident, "md")
    assert "detached " in md and "still firing" in md


def test_service_results_come_from_the_outbox_and_the_attempts(storm):
    page, ack = f"{storm.incident}:0:page", f"{storm.incident}:1:update"
    outbox = [
        {
            "key": page,
            "notifier": "slack",
            "state": "sent",
            "attempts": 2,
            "last_error": None,
            "sent_at": "x",
        },
        {"key": page, "notifier": "webhook", "state": "failed", "attempts": 5, "last_error": "HTTP 500"},
        {"key": ack, "notifier": "slack", "state": "pending", "attempts": 1, "last_error": "timeout"},
    ]
    attempts = [{"key": page, "notifier": "slack", "attempt": 1, "ok": 0, "error": "HTTP 429"}]
    t = build(storm.events, storm.notifications, storm.incident, outbox=outbox, attempts=attempts)
    by_key = {m.key: m for m in t.messages}
    assert by_key[page].status == "failed"
    assert by_key[page].result == "sent to slack (2 attempts); failed to webhook (5 attempts): HTTP 500"
    assert by_key[ack].status == "pending"
    assert by_key[f"{storm.incident}:3:resolve"].status == "unsent"  # the service had no notifier


def test_unknown_incident_empty_recording_and_bad_requests(storm):
    with pytest.raises(TimelineNotFound, match=r"no incident inc-000000 in the event log \(3 incidents"):
        render_timeline(storm.events, storm.notifications, "inc-000000", "md")
    with pytest.raises(TimelineNotFound, match="nothing has been recorded yet"):
        render_timeline([], [], storm.incident, "md")
    with pytest.raises(TimelineRequestError, match="format: 'pdf' is not one of md, json, html, csv"):
        render_timeline(storm.events, storm.notifications, storm.incident, "pdf")
    with pytest.raises(TimelineRequestError, match="unknown time zone 'Mars/Olympus'"):
        render_timeline(storm.events, storm.notifications, storm.incident, "md", tz="Mars/Olympus")


def test_unknown_event_kinds_still_read_as_a_sentence():
    assert entry_text({"kind": "quantum_decision", "reason": "it felt right"}) == (
        "quantum decision: it felt right"
    )
    assert entry_text({"kind": "acknowledged", "user": "carol", "note": ""}) == "acknowledged by carol"
    assert "→ node worker-1" in entry_text(
        {
            "kind": "symptom_attached",
            "alertname": "X",
            "entity": "pod/default/a/b",
            "path": ["pod/default/a/b", NODE],
        }
    )


def test_times_in_another_zone_are_the_same_moments(storm):
    _, utc = render_timeline(storm.events, storm.notifications, storm.incident, "csv")
    _, paris = render_timeline(storm.events, storm.notifications, storm.incident, "csv", tz="Europe/Paris")
    utc_rows = [line.split(",")[0] for line in utc.splitlines()[1:]]
    paris_rows = [line.split(",")[:2] for line in paris.splitlines()[1:]]
    assert [row[0] for row in paris_rows] == utc_rows
    for at_utc, local in paris_rows:
        assert parse_time(local) == parse_time(at_utc)
        assert local.endswith("+02:00")  # CEST in October
    assert timedelta(0) < build(storm.events, [], storm.incident).figures.impact_end - at(0)


def test_a_paged_incident_that_finds_its_cause_keeps_its_identity():
    """A pod pages on its own; the node's alert arrives later: the paged incident survives with
    its root re-attributed to the node, and the node's own incident lives on inside it."""
    engine = Engine(cluster(), RuleSet.load())
    labels = {"job": "kube-state-metrics", "namespace": "shop", "pod": "checkout-6d8f7b9c5d-r7t5w"}
    pod = alert("p-w2", 0, "KubePodNotReady", **labels)
    node = alert("n-w2", 17.5, "KubeNodeNotReady", job="kube-state-metrics", node="worker-2")
    engine.ingest(delivery(at(0.5), [pod]), at(0.5))
    engine.tick(at(17))  # past the pod's 15m grace: it pages
    engine.ingest(delivery(at(18), [node]), at(18))
    events = [e.to_dict() for e in engine.drain_events()]
    paged = next(i for i in engine.incidents() if i["state"] == "paged")
    cause = next(i for i in engine.incidents() if i["state"] == "merged")
    t = build(events, [], paged["id"])
    assert t.root == paged["root"]["entity"] == "node/default/worker-2"
    assert t.merged_in == [cause["id"]]
    assert {a.fingerprint: a.path for a in t.alerts} == {a["fingerprint"]: a["path"] for a in paged["alerts"]}
    assert {a.fingerprint: a.role for a in t.alerts} == {"p-w2": "symptom", "n-w2": "root"}
    assert any("re-attributed" in e.text for e in t.evidence)
    adopted = build(events, [], cause["id"])
    assert (adopted.state, adopted.merged_into, adopted.survivor) == ("merged", paged["id"], paged["id"])
    states = {s.id: (s.state, s.merged_into) for s in summarize(events)}
    assert states == {i["id"]: (i["state"], i["merged_into"]) for i in engine.incidents()}


def test_the_markdown_evidence_is_in_time_order_with_times(storm):
    """The root's alert arrived after the pods' incidents inferred and merged into it: the
    evidence says so in that order, each reason with its time."""
    _, text = render_timeline(storm.events, storm.notifications, storm.incident, "md")
    section = text.split("## Root cause and evidence", 1)[1].split("\n## ", 1)[0]
    bullets = [line for line in section.splitlines() if line.startswith("- ")]
    assert len(bullets) >= 3
    times = []
    for line in bullets:
        assert line.startswith("- **") and " UTC** " in line, line
        times.append(line[4:].split(" UTC**", 1)[0])
    assert times == sorted(times)
    assert any("fired on" in line for line in bullets) and any("paged:" in line for line in bullets)
    t = build(storm.events, storm.notifications, storm.incident)
    assert [e.at for e in t.evidence] == sorted(e.at for e in t.evidence)


def test_a_likely_cause_reads_as_the_change_and_its_time():
    change = {
        "kind": "likely_cause",
        "cause": "change",
        "entity": "configmap/default/shop/flags",
        "changed_at": "2026-10-06T00:58:00.000Z",
        "change": "edited (new resource version)",
    }
    assert entry_text(change) == (
        "likely cause: edited (new resource version) on configmap shop/flags at 2026-10-06T00:58:00.000Z"
    )
    silent = change | {
        "cause": "unreachable",
        "entity": "service/default/shop/email",
        "change": "no requests",
    }
    assert (
        entry_text(silent)
        == "likely cause: service shop/email unreachable since 2026-10-06T00:58:00.000Z (no requests)"
    )
    lead = change | {
        "cause": "callee",
        "entity": "service/default/shop/email",
        "change": "the only callee of service shop/checkout",
    }
    assert entry_text(lead) == (
        "likely cause: service shop/email, the only callee of service shop/checkout"
        " (since 2026-10-06T00:58:00.000Z)"
    )
