"""The Alertmanager simulator (router/sim/storm.py) and the failure scenarios built on it (scenarios.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ground.errors import InputError
from ground.times import ZERO_TIME, format_time
from router.core.model import parse_delivery_line
from router.sim import scenarios
from router.sim.storm import (
    AlertmanagerConfig,
    AlertSpec,
    Route,
    fingerprint,
    heartbeat_route,
    simulate,
    to_jsonl,
    write_jsonl,
)
from tests.reference import CATALOGUE

T0 = datetime(2026, 10, 6, 1, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def stamp(minutes: float) -> str:
    return format_time(at(minutes))


def spec(
    name: str, fires: float, resolves: float | None = None, namespace: str | None = "shop", **labels
) -> AlertSpec:
    full = {"alertname": name, "severity": "warning", **labels}
    if namespace is not None:
        full["namespace"] = namespace
    return AlertSpec(
        full, at(fires), at(resolves) if resolves is not None else None, {"summary": f"{name} test"}
    )


def names(line: dict) -> list[tuple[str, str]]:
    return [(a["labels"]["alertname"], a["status"]) for a in line["payload"]["alerts"]]


# --- dispatch timing ---------------------------------------------------------------------------


def test_first_flush_waits_group_wait_then_ticks_on_the_group_interval_grid():
    lines = simulate([spec("A", 0), spec("B", 2)], until=at(20))
    assert [line["received_at"] for line in lines] == [stamp(0.5), stamp(5.5)]
    assert names(lines[0]) == [("A", "firing")]
    # B arrived at 2m but waits for the group's next tick, not for a group_wait of its own.
    assert sorted(names(lines[1])) == [("A", "firing"), ("B", "firing")]


def test_unchanged_group_is_resent_only_when_repeat_interval_elapsed():
    config = AlertmanagerConfig(repeat_interval=timedelta(hours=1))
    lines = simulate([spec("A", 0)], config, until=at(135))
    # Sent at 0:30; the repeat must be strictly older than 1h at a tick: 1:05:30, then 2:10:30.
    assert [line["received_at"] for line in lines] == [stamp(0.5), stamp(65.5), stamp(130.5)]


def test_alert_older_than_group_wait_flushes_a_new_group_at_once():
    old = AlertSpec({"alertname": "A", "severity": "warning"}, at(10), starts_at=at(2))
    lines = simulate([old], until=at(12))
    assert [line["received_at"] for line in lines] == [stamp(10)]
    assert lines[0]["payload"]["alerts"][0]["startsAt"] == stamp(2)


def test_until_bounds_the_flushes():
    assert simulate([spec("A", 0)], until=at(0.4)) == []
    assert len(simulate([spec("A", 0)], until=at(0.5))) == 1


# --- payload contents --------------------------------------------------------------------------


def test_payload_is_a_snapshot_with_alertmanager_fields_and_key_order():
    lines = simulate([spec("A", 0, team="a"), spec("B", 1, team="b")], until=at(6))
    payload = lines[-1]["payload"]
    assert list(payload) == [
        "receiver",
        "status",
        "alerts",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "version",
        "groupKey",
        "truncatedAlerts",
    ]
    assert payload["version"] == "4"
    assert payload["groupKey"] == '{}:{namespace="shop"}'
    assert payload["groupLabels"] == {"namespace": "shop"}
    assert payload["status"] == "firing"
    assert payload["receiver"] == "alert-router"
    assert payload["externalURL"] == "http://alertmanager-main-0:9093"
    assert payload["truncatedAlerts"] == 0
    assert payload["commonLabels"] == {"namespace": "shop", "severity": "warning"}
    assert payload["commonAnnotations"] == {}
    for alert in payload["alerts"]:
        assert list(alert) == [
            "status",
            "labels",
            "annotations",
            "startsAt",
            "endsAt",
            "generatorURL",
            "fingerprint",
        ]
        assert alert["endsAt"] == ZERO_TIME
        assert alert["fingerprint"] == fingerprint(alert["labels"])
        assert alert["generatorURL"].startswith("http://prometheus-k8s-0:9090/graph?g0.expr=")
        assert list(alert["labels"]) == sorted(alert["labels"])  # Go marshals maps sorted


def test_alerts_are_sorted_by_job_then_instance_then_label_set():
    alerts = [
        spec("NoJob", 0),
        spec("Z", 0, job="b", instance="1"),
        spec("Y", 0, job="a", instance="2"),
        spec("X", 0, job="a", instance="1"),
        spec("W", 0, job="a"),
        spec("Long", 0, job="c", instance="1", extra="x"),
        spec("Short", 0, job="c", instance="1"),
    ]
    lines = simulate(alerts, until=at(1))
    assert [name for name, _ in names(lines[0])] == ["X", "Y", "W", "Z", "Short", "Long", "NoJob"]


def test_group_key_without_group_label_and_receiver_quoting():
    config = AlertmanagerConfig(receiver="web.hook", external_url="http://am-1:9093")
    lines = simulate([spec("NodeThing", 0, namespace=None, node="n1")], config, until=at(1))
    payload = lines[0]["payload"]
    assert payload["groupKey"] == "{}:{}"
    assert payload["groupLabels"] == {}
    assert payload["receiver"] == "web\\.hook"  # Alertmanager applies regexp.QuoteMeta
    assert payload["externalURL"] == "http://am-1:9093"


def test_group_by_several_labels_and_by_all_labels():
    config = AlertmanagerConfig(group_by=("namespace", "alertname"))
    lines = simulate([spec("A", 0), spec("B", 0)], config, until=at(1))
    assert sorted(line["payload"]["groupKey"] for line in lines) == [
        '{}:{alertname="A", namespace="shop"}',
        '{}:{alertname="B", namespace="shop"}',
    ]
    lines = simulate([spec("A", 0, pod="p")], AlertmanagerConfig(group_by=("...",)), until=at(1))
    assert lines[0]["payload"]["groupLabels"] == lines[0]["payload"]["alerts"][0]["labels"]


# --- resolved alerts ---------------------------------------------------------------------------


def test_resolved_alert_is_sent_once_with_its_end_time():
    lines = simulate([spec("A", 0, resolves=7), spec("B", 0), spec("C", 12)], until=at(25))
    assert [line["received_at"] for line in lines] == [stamp(0.5), stamp(10.5), stamp(15.5)]
    resolved = [a for a in lines[1]["payload"]["alerts"] if a["status"] == "resolved"]
    assert [(a["labels"]["alertname"], a["endsAt"]) for a in resolved] == [("A", stamp(7))]
    assert lines[1]["payload"]["status"] == "firing"  # B still fires
    assert sorted(names(lines[2])) == [("B", "firing"), ("C", "firing")]


def test_alert_resolved_before_the_first_notification_is_never_sent():
    assert simulate([spec("Blip", 0, resolves=0.2)], until=at(30)) == []
    # The silent flush at 0:30 empties and destroys the group: Later starts a new one.
    lines = simulate([spec("Blip", 0, resolves=0.2), spec("Later", 2)], until=at(30))
    assert [(line["received_at"], names(line)) for line in lines] == [(stamp(2.5), [("Later", "firing")])]


def test_resolved_alert_rides_along_when_its_group_notifies_anyway():
    # Alertmanager sends the whole group when something fires, resolved alerts included.
    lines = simulate([spec("Blip", 0, resolves=0.2), spec("Stays", 0.1)], until=at(30))
    assert len(lines) == 1
    assert names(lines[0]) == [("Blip", "resolved"), ("Stays", "firing")]


def test_alert_fired_and_resolved_between_flushes_of_a_notified_group_arrives_resolved():
    # Alertmanager's dedup stage sees a resolved alert it never logged and notifies it.
    lines = simulate([spec("A", 0), spec("Blip", 1, resolves=2)], until=at(12))
    assert [line["received_at"] for line in lines] == [stamp(0.5), stamp(5.5)]
    assert sorted(names(lines[1])) == [("A", "firing"), ("Blip", "resolved")]


def test_all_resolved_then_the_group_is_gone_and_a_refire_starts_a_new_one():
    lines = simulate([spec("A", 0, resolves=3), spec("A", 21)], until=at(30))
    assert [line["received_at"] for line in lines] == [stamp(0.5), stamp(5.5), stamp(21.5)]
    assert lines[1]["payload"]["status"] == "resolved"
    first, again = lines[0]["payload"]["alerts"][0], lines[2]["payload"]["alerts"][0]
    assert again["fingerprint"] == first["fingerprint"]
    assert (first["startsAt"], again["startsAt"]) == (stamp(0), stamp(21))


def test_refire_within_an_interval_replaces_the_unsent_resolved_alert():
    lines = simulate([spec("A", 0), spec("F", 0, resolves=6), spec("F", 8), spec("C", 9)], until=at(16))
    assert [line["received_at"] for line in lines] == [stamp(0.5), stamp(10.5)]
    flapped = [a for a in lines[1]["payload"]["alerts"] if a["labels"]["alertname"] == "F"]
    assert [(a["status"], a["startsAt"]) for a in flapped] == [("firing", stamp(8))]


def test_send_resolved_false_never_posts_resolved_alerts():
    config = AlertmanagerConfig(send_resolved=False)
    lines = simulate([spec("A", 0, resolves=7), spec("B", 0), spec("C", 12)], config, until=at(25))
    assert [line["received_at"] for line in lines] == [stamp(0.5), stamp(15.5)]
    assert all(a["status"] == "firing" for line in lines for a in line["payload"]["alerts"])


def test_notification_reason_when_enabled():
    config = AlertmanagerConfig(notification_reason=True, repeat_interval=timedelta(minutes=9))
    lines = simulate(
        [spec("A", 0, resolves=12), spec("B", 2), spec("B2", 4, resolves=7)], config, until=at(27)
    )
    reasons = [line["payload"]["notification_reason"] for line in lines]
    assert reasons == [
        "first notification",
        "new alerts added",
        "some alerts resolved",
        "some alerts resolved",
        "repeat interval elapsed",
    ]


# --- HA replicas -------------------------------------------------------------------------------


def test_ha_replicas_deliver_identical_payloads_peer_delay_apart():
    config = AlertmanagerConfig(replicas=3)
    single = simulate([spec("A", 0), spec("B", 2)], until=at(10))
    lines = simulate([spec("A", 0), spec("B", 2)], config, until=at(10))
    assert len(lines) == 3 * len(single)
    for index, flush in enumerate(single):
        copies = lines[3 * index : 3 * index + 3]
        sent = at(0.5 + 5 * index)
        assert [c["received_at"] for c in copies] == [
            format_time(sent + timedelta(seconds=15 * i)) for i in range(3)
        ]
        assert all(json.dumps(c["payload"]) == json.dumps(flush["payload"]) for c in copies)


def test_deduplicating_replicas_repeat_only_while_the_first_delivery_is_in_flight():
    quiet = AlertmanagerConfig(replicas=3, dedup_replicas=True)
    assert [line["received_at"] for line in simulate([spec("A", 0)], quiet, until=at(1))] == [stamp(0.5)]
    slow = AlertmanagerConfig(replicas=3, dedup_replicas=True, delivery_latency=timedelta(seconds=20))
    received = [line["received_at"] for line in simulate([spec("A", 0)], slow, until=at(1))]
    assert received == [format_time(at(0.5) + timedelta(seconds=s)) for s in (20, 35)]


# --- routes and heartbeat ----------------------------------------------------------------------


def test_child_route_has_its_own_group_key_and_timers():
    config = AlertmanagerConfig(routes=(heartbeat_route(timedelta(minutes=1)),))
    lines = simulate([*scenarios.watchdog(at(0), at(3.5), vanished=False), spec("A", 0)], config, until=at(6))
    heartbeats = [line for line in lines if line["payload"]["alerts"][0]["labels"]["alertname"] == "Watchdog"]
    assert {line["payload"]["groupKey"] for line in heartbeats} == {'{}/{alertname="Watchdog"}:{}'}
    assert [line["received_at"] for line in heartbeats] == [stamp(m) for m in (0, 1, 2, 3, 4)]
    assert heartbeats[-1]["payload"]["status"] == "resolved"
    others = [line for line in lines if line not in heartbeats]
    assert [line["payload"]["groupKey"] for line in others] == ['{}:{namespace="shop"}']


def test_route_matchers_must_all_hold():
    route = Route(matchers={"alertname": "A", "team": "x"}, group_wait=timedelta(seconds=5))
    lines = simulate(
        [spec("A", 0), spec("A", 0, namespace="web", team="x")], AlertmanagerConfig(routes=(route,))
    )
    keys = {line["payload"]["groupKey"]: line["received_at"] for line in lines}
    assert keys == {
        '{}:{namespace="shop"}': stamp(0.5),
        '{}/{alertname="A",team="x"}:{namespace="web"}': format_time(at(0) + timedelta(seconds=5)),
    }


# --- fingerprints, validation, output ----------------------------------------------------------


def test_fingerprint_matches_prometheus_common_and_ignores_label_order():
    # prometheus/common model/signature_test.go
    assert (
        int(fingerprint({"name": "garland, briggs", "fear": "love is not enough"}), 16) == 5799056148416392346
    )
    assert fingerprint({}) == f"{14695981039346656037:016x}"
    labels = {"alertname": "KubePodNotReady", "namespace": "shop", "pod": "p-1", "severity": "warning"}
    shuffled = dict(reversed(list(labels.items())))
    assert fingerprint(labels) == fingerprint(shuffled)
    assert len(fingerprint(labels)) == 16 and int(fingerprint(labels), 16) >= 0
    assert fingerprint(labels) != fingerprint({**labels, "pod": "p-2"})


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ([AlertSpec({"alertname": "A"}, T0)], "alerts[0].labels: missing 'severity'"),
        ([AlertSpec({"severity": "x"}, T0)], "alerts[0].labels: missing 'alertname'"),
        ([AlertSpec({"alertname": "A", "severity": "x"}, T0, T0)], "alerts[0].resolves_at"),
        ([AlertSpec({"alertname": "A", "severity": "x"}, datetime(2026, 1, 1))], "alerts[0].fires_at"),
        ([spec("A", 0), spec("B", 0), spec("A", 3)], "alerts[2]: fires while alerts[0]"),
        ([spec("A", 0, resolves=5), spec("A", 4)], "alerts[1]: fires while alerts[0]"),
    ],
)
def test_invalid_timelines_name_the_alert_and_field(alerts, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        simulate(alerts)


def test_output_is_a_recorded_stream_the_router_parses(tmp_path):
    alerts = scenarios.node_down("w1", [("shop", "web-1", "Deployment", "web")], [], T0, at(40))
    lines = simulate(alerts, AlertmanagerConfig(replicas=2))
    text = to_jsonl(lines)
    assert "\\u0026g0.tab=1" in text  # Go's encoder escapes & in the generator URL
    received = []
    for raw in text.splitlines():
        delivery = parse_delivery_line(raw)
        received.append(delivery.received)
        assert delivery.payload.alerts
        assert all("&g0.tab=1" in a.generatorURL for a in delivery.payload.alerts)
    assert received == sorted(received) and len(received) == len(lines)
    path = tmp_path / "storm.jsonl"
    assert write_jsonl(lines, path) == len(text.encode())
    assert path.read_text() == text
    assert to_jsonl(simulate(alerts, AlertmanagerConfig(replicas=2))) == text  # deterministic


# --- scenarios ---------------------------------------------------------------------------------

NODE = "ip-10-0-1-21.eu-west-1.compute.internal"
PODS = [
    ("shop", "checkout-6d8f7b9c5d-x2x9q", "Deployment", "checkout"),
    ("shop", "postgres-0", "StatefulSet", "postgres"),
    ("monitoring", "node-exporter-4xk7d", "DaemonSet", "node-exporter"),
    ("batch", "nightly-29012345-q8z4m", "Job", "nightly-29012345"),
]
DAEMONSETS = [("monitoring", "node-exporter"), ("kube-system", "kube-proxy")]


def by_name(specs: list[AlertSpec]) -> dict[str, list[AlertSpec]]:
    out: dict[str, list[AlertSpec]] = {}
    for s in specs:
        out.setdefault(s.labels["alertname"], []).append(s)
    return out


def test_node_down_follows_the_reference_ordering_with_real_labels():
    specs = scenarios.node_down(NODE, PODS, DAEMONSETS, T0, cluster="prod", cluster_nodes=6)
    alerts = by_name(specs)
    fired = {name: {s.fires_at - T0 for s in group} for name, group in alerts.items()}
    assert fired == {
        "TargetDown": {timedelta(minutes=10, seconds=30)},
        "KubeletInstanceUnreachable": {timedelta(minutes=15, seconds=30)},
        "KubeNodeNotReady": {timedelta(minutes=15, seconds=50)},
        "KubeNodeUnreachable": {timedelta(minutes=15, seconds=50)},
        "KubePodNotReady": {timedelta(minutes=15, seconds=50)},
        "KubeDaemonSetRolloutStuck": {timedelta(minutes=15, seconds=50)},
        "KubeStatefulSetReplicasMismatch": {timedelta(minutes=16, seconds=20)},
    }
    assert {s.labels["job"] for s in alerts["TargetDown"]} == {"node-exporter", "kubelet"}
    assert "node" not in alerts["TargetDown"][0].labels  # TargetDown names a job, never a node
    kubelet = alerts["KubeletInstanceUnreachable"][0].labels
    assert (kubelet["node"], kubelet["instance"], kubelet["job"]) == (NODE, "10.0.1.21:10250", "kubelet")
    node = alerts["KubeNodeNotReady"][0].labels
    assert node["node"] == NODE and node["job"] == "kube-state-metrics"
    assert node["container"] == "kube-rbac-proxy-main" and node["instance"] == scenarios.KSM_INSTANCE
    assert "value" not in alerts["KubeNodeUnreachable"][0].labels  # an empty label does not exist
    assert sorted(s.labels["pod"] for s in alerts["KubePodNotReady"]) == sorted(p[1] for p in PODS[:3])
    assert alerts["KubePodNotReady"][0].labels.keys() == {
        "alertname", "severity", "namespace", "pod", "job", "cluster", "prometheus"
    }  # fmt: skip
    assert {s.labels["daemonset"] for s in alerts["KubeDaemonSetRolloutStuck"]} == {
        "node-exporter",
        "kube-proxy",
    }
    assert alerts["KubeStatefulSetReplicasMismatch"][0].labels["statefulset"] == "postgres"
    for s in specs:
        assert s.labels["cluster"] == "prod" and s.labels["prometheus"] == "monitoring/k8s"
        assert s.labels["severity"] == "warning"
        assert s.annotations["runbook_url"].startswith("https://runbooks.prometheus-operator.dev/")
    description = alerts["KubeNodeNotReady"][0].annotations["description"]
    assert description == f"{NODE} has been unready for more than 15 minutes on cluster prod."
    assert alerts["TargetDown"][0].annotations["description"].startswith("16.67% of the ")


def test_node_down_recovery_resolves_and_early_recovery_skips_unfired_alerts():
    specs = scenarios.node_down(NODE, PODS, DAEMONSETS, T0, at(30))
    assert all(s.resolves_at is not None and s.resolves_at > s.fires_at for s in specs)
    early = scenarios.node_down(NODE, PODS, DAEMONSETS, T0, at(12))
    assert [s.labels["alertname"] for s in early] == ["TargetDown", "TargetDown"]
    assert scenarios.node_down(NODE, PODS, DAEMONSETS, T0, at(5)) == []


def test_node_down_in_a_large_cluster_raises_no_target_down():
    specs = scenarios.node_down(NODE, PODS, DAEMONSETS, T0, cluster_nodes=20)
    assert "TargetDown" not in by_name(specs)
    assert "TargetDown" in by_name(scenarios.node_down(NODE, [], [], T0, cluster_nodes=20, target_down=True))


def test_node_down_through_the_simulator_pages_the_symptom_first():
    specs = scenarios.node_down(NODE, PODS, DAEMONSETS, T0, cluster_nodes=6)
    lines = simulate(specs, AlertmanagerConfig(replicas=2), until=at(30))
    first_seen: dict[str, str] = {}
    for line in lines:
        for alert in line["payload"]["alerts"]:
            first_seen.setdefault(alert["labels"]["alertname"], line["received_at"])
    assert first_seen["TargetDown"] == stamp(11)
    assert first_seen["KubeNodeNotReady"] == format_time(at(15) + timedelta(seconds=50 + 30))
    assert (
        first_seen["TargetDown"] < first_seen["KubeletInstanceUnreachable"] < first_seen["KubeNodeNotReady"]
    )
    assert {line["payload"]["groupKey"] for line in lines} == {
        "{}:{}",
        '{}:{namespace="kube-system"}',
        '{}:{namespace="monitoring"}',
        '{}:{namespace="shop"}',
    }


def test_zone_outage_raises_node_independent_alerts_once():
    nodes = ["ip-10-0-1-21.x", "ip-10-0-1-22.x"]
    pods = {nodes[0]: [PODS[1]], nodes[1]: [("shop", "postgres-1", "StatefulSet", "postgres")]}
    specs = scenarios.zone_outage(nodes, pods, DAEMONSETS, T0, cluster_nodes=6)
    alerts = by_name(specs)
    assert len(alerts["TargetDown"]) == 2
    assert alerts["TargetDown"][0].annotations["description"].startswith("33.33% of the ")
    assert len(alerts["KubeNodeNotReady"]) == 2
    assert len(alerts["KubeDaemonSetRolloutStuck"]) == 2
    assert len(alerts["KubeStatefulSetReplicasMismatch"]) == 1
    assert len({fingerprint(s.labels) for s in specs}) == len(specs)
    simulate(specs)  # a valid timeline: no overlapping duplicates
    assert "TargetDown" not in by_name(scenarios.zone_outage(nodes, pods, [], T0, cluster_nodes=30))


def test_coredns_crash_ordering_and_its_label_less_down_alert():
    clients = {"shop": [("checkout-1", "Deployment", "checkout"), ("orders-0", "StatefulSet", "orders")]}
    specs = scenarios.coredns_crash(["coredns-a-1", "coredns-a-2"], clients, T0, at(40))
    alerts = by_name(specs)
    target, down = alerts["TargetDown"][0], alerts["CoreDNSDown"][0]
    crash = alerts["KubePodCrashLooping"]
    assert target.labels["job"] == "kube-dns" and target.fires_at < down.fires_at < crash[0].fires_at
    assert down.labels == {"alertname": "CoreDNSDown", "severity": "critical", "prometheus": "monitoring/k8s"}
    assert {s.labels["pod"] for s in crash} == {"coredns-a-1", "coredns-a-2"}
    assert crash[0].labels["uid"] == scenarios.pod_uid("kube-system", crash[0].labels["pod"])
    assert crash[0].labels["container"] == "coredns" and crash[0].labels["reason"] == "CrashLoopBackOff"
    assert crash[0].resolves_at - at(40) == timedelta(minutes=5, seconds=30)  # max_over_time lingers
    deployments = {s.labels["deployment"] for s in alerts["KubeDeploymentReplicasMismatch"]}
    assert deployments == {"coredns", "checkout"}
    assert alerts["KubeStatefulSetReplicasMismatch"][0].labels["statefulset"] == "orders"
    client = next(s for s in alerts["KubePodNotReady"] if s.labels["pod"] == "checkout-1")
    assert client.fires_at > crash[0].fires_at
    partial = by_name(scenarios.coredns_crash(["coredns-a-1"], clients, T0, total_pods=2))
    assert "CoreDNSDown" not in partial and "KubePodNotReady" not in partial
    assert "TargetDown" in partial  # 50% of the kube-dns targets


def test_flapping_refires_with_new_starts_at_and_the_same_fingerprint():
    labels = {"alertname": "KubeNodeReadinessFlapping", "node": "w1"}
    specs = scenarios.flapping(labels, T0, timedelta(minutes=20), 3)
    assert [s.labels["severity"] for s in specs] == ["warning"] * 3
    lines = simulate(specs, until=at(60))
    starts = [(a["fingerprint"], a["startsAt"]) for line in lines for a in line["payload"]["alerts"]]
    firing = sorted({start for fp, start in starts})
    assert firing == [stamp(0), stamp(20), stamp(40)]
    assert len({fp for fp, _ in starts}) == 1


def test_transient_and_watchdog_builders():
    exporter = scenarios.node_exporter_labels("w1", "node-exporter-4xk7d")
    (blip,) = scenarios.transient(
        {"alertname": "NodeClockNotSynchronising", **exporter}, T0, timedelta(minutes=3)
    )
    assert (blip.labels["severity"], blip.resolves_at) == ("warning", at(3))
    assert (blip.labels["instance"], blip.labels["pod"], blip.labels["job"]) == (
        "w1",
        "node-exporter-4xk7d",
        "node-exporter",
    )
    assert blip.annotations["description"].startswith("Clock at w1 is not synchronising.")
    with pytest.raises(ValueError, match="severity"):
        scenarios.transient({"alertname": "MyOwnAlert"}, T0, timedelta(minutes=1))
    (dog,) = scenarios.watchdog(T0, at(30), cluster="prod")
    assert dog.labels == {
        "alertname": "Watchdog",
        "severity": "none",
        "prometheus": "monitoring/k8s",
        "cluster": "prod",
    }
    assert dog.resolves_at == at(34)  # vanished: Alertmanager resolves it when its endsAt passes
    assert scenarios.watchdog(T0)[0].resolves_at is None


def test_combine_merges_overlapping_copies_and_keeps_refires():
    a = spec("A", 0, resolves=10)
    merged = scenarios.combine([a], [spec("A", 5, resolves=20)], [spec("A", 30)])
    assert [(s.fires_at, s.resolves_at) for s in merged] == [(at(0), at(20)), (at(30), None)]


def test_catalogue_entries_are_those_of_the_reference_rules():
    rules = json.loads(CATALOGUE.read_text())
    for name, meta in scenarios.CATALOGUE.items():
        assert any(
            (r["severity"], r["summary"], r["description"], r["runbook_url"])
            == (meta.severity, meta.summary, meta.description, meta.runbook_url)
            for r in rules
            if r["alertname"] == name
        ), name
    produced = scenarios.node_down(NODE, PODS, DAEMONSETS, T0, misscheduled=True) + scenarios.coredns_crash(
        ["c-1"], {"shop": [("p", "Deployment", "d")]}, T0
    )
    known = {r["alertname"] for r in rules}
    assert {s.labels["alertname"] for s in produced} <= known
