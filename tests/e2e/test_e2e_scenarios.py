"""Real failures through the real pipeline: the fake cluster breaks, the real Prometheus fires
the real kube-prometheus rules, the real Alertmanager (an HA pair where it matters) delivers to
`alert-router serve`, which pages in the Slack stand-in. Every duration is scaled by the same
factor (tests/e2e/configs.py), so each scenario runs in about a minute.

What is asserted is what on-call would see: one page per real cause with its symptoms attached
(never paged on their own), nothing paged for what healed by itself (a quiet notice instead),
everything resolved at the end, one Slack message per incident with the symptoms in its thread,
and that the duplicates of a second Alertmanager replica changed no decision.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ground.times import parse_time
from tests.e2e.cluster import E2ECluster
from tests.e2e.stack import NOTICES, PAGES, Stack

pytestmark = pytest.mark.e2e

LOOPING = "KubePodCrashLooping"
NODE = "worker-5"  # runs postgres-0 and deployment pods: a node whose death has symptoms


def pages(stack: Stack) -> list[dict[str, Any]]:
    return stack.notified("page")


def incident(stack: Stack, incident_id: str) -> dict[str, Any]:
    return stack.api(f"/api/v1/incidents/{incident_id}")


def symptom_names(detail: dict[str, Any]) -> set[str]:
    return {s["alertname"] for s in detail.get("symptoms", [])}


def alert_names(detail: dict[str, Any]) -> set[str]:
    """Every alert name of an incident: its own alerts and its symptoms'."""
    return symptom_names(detail) | {a["alertname"] for a in detail.get("alerts", [])}


def watchdog_delivered(stack: Stack, workdir: Path) -> bool:
    stream = stack.export_log(workdir / "so-far.jsonl")
    return any(
        a["labels"].get("alertname") == "Watchdog" for line in stream for a in line["payload"]["alerts"]
    )


def firing(stack: Stack, alertname: str) -> list[dict[str, Any]]:
    """The alert's firing series in Prometheus."""
    assert stack.prometheus is not None
    return stack.prometheus.query(f'ALERTS{{alertname="{alertname}", alertstate="firing"}}')


def router_heard(stack: Stack, alertname: str) -> bool:
    """Whether an alert of that name reached the router (an incident holds it)."""
    listed = stack.api("/api/v1/incidents?limit=1000")["incidents"]
    return any(a["alertname"] == alertname for i in listed for a in i.get("alerts", []))


def wait_resolved(stack: Stack, incident_id: str, within: str) -> None:
    """Until the incident's `resolve` notification, at most `within` (real time, scaled)."""
    resolved = lambda: stack.notified("resolve", incident=incident_id)  # noqa: E731
    stack.wait_until(resolved, stack.seconds(within), f"{incident_id} to be resolved")


def top_level(stack: Stack, channel: str) -> list[Any]:
    return [
        c
        for c in stack.slack.calls
        if c.method == "chat.postMessage"
        and c.ok
        and c.args.get("channel") == channel
        and not c.args.get("thread_ts")
    ]


def replay(stack: Stack, stream: list[dict[str, Any]], workdir: Path, name: str) -> list[dict[str, Any]]:
    """`alert-router replay` of a recorded stream against the cluster's topology, with the rule
    pack and engine settings the live router ran with."""
    alerts = workdir / f"{name}.jsonl"
    alerts.write_text("".join(json.dumps(line) + "\n" for line in stream))
    out = workdir / f"{name}-notifications.jsonl"
    topology = workdir / "topology.prom"
    if not topology.exists():
        topology.write_text(stack.cluster_text())
    arguments = ["--topology", str(topology), "--alerts", str(alerts), "--out", str(out)]
    arguments += ["--rules", str(stack.workdir / "router-rules.yaml"), "--config", str(stack.router.config)]
    subprocess.run(
        [sys.executable, "-m", "router.cli.main", "replay", *arguments],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def test_node_down_pages_once_with_its_symptoms_across_an_ha_pair(tmp_path):
    with Stack(tmp_path, E2ECluster(None), replicas=2) as stack:
        stack.cluster.stop_node(NODE)
        page = stack.wait_until(lambda: pages(stack), stack.seconds("30m"), "the node's page")[0]
        assert page["root"]["entity"] == f"node/default/{NODE}", page
        stack.wait_until(
            lambda: {"KubePodNotReady", "TargetDown"} <= symptom_names(incident(stack, page["incident"])),
            stack.seconds("10m"),
            "the node's symptoms to be attached",
        )
        detail = incident(stack, page["incident"])
        assert all(s["path"][-1] == f"node/default/{NODE}" for s in detail["symptoms"]), detail["symptoms"]

        # Slack: one message for the incident, its symptoms in the thread.
        stack.wait_until(lambda: top_level(stack, PAGES), 20, "the Slack page")
        message = top_level(stack, PAGES)[0]

        # The Silence button creates the silences in Alertmanager, gossiped to both replicas, and
        # the message says who silenced it.
        assert stack.click("incident_silence_1h", page["incident"]).status_code == 200
        stack.wait_until(
            lambda: all(_active_silences(am) for am in stack.alertmanagers),
            20,
            "the silence on both replicas",
        )
        for am in stack.alertmanagers:
            created = _active_silences(am)
            assert {s["createdBy"] for s in created} == {"alice"}, created
        stack.wait_until(
            lambda: any(
                c.method == "chat.update"
                and c.args["ts"] == message.body["ts"]
                and "silenced by" in json.dumps(c.args)
                for c in stack.slack.calls
            ),
            20,
            "the Slack message to say it is silenced",
        )

        # The node stays down a while (as it would until someone power-cycles it), then returns.
        time.sleep(stack.seconds("10m"))
        stack.cluster.start_node(NODE)
        wait_resolved(stack, page["incident"], "15m")

        # One page, for the real cause; nothing else paged.
        assert [p["incident"] for p in pages(stack)] == [page["incident"]], pages(stack)
        assert len(top_level(stack, PAGES)) == 1
        threads = [c for c in stack.slack.calls if c.method == "chat.postMessage" and c.args.get("thread_ts")]
        assert threads and all(c.args["thread_ts"] == message.body["ts"] for c in threads)

        # Both replicas delivered, many times the same thing; the duplicates changed nothing:
        # a replay of the stream without them decides exactly what a replay of it all decides.
        stream = stack.export_log(tmp_path / "log.jsonl")
        by_replica = Counter(line["payload"]["externalURL"] for line in stream)
        assert set(by_replica) == {am.url for am in stack.alertmanagers}, by_replica
        unique = without_duplicates(stream, stack.seconds("1m"))
        assert len(stream) - len(unique) >= 3, by_replica
        everything = replay(stack, stream, tmp_path, "all")
        assert replay(stack, unique, tmp_path, "unique") == everything
        assert [n["incident"] for n in everything if n["action"] == "page"] == [page["incident"]]


def without_duplicates(stream: list[dict[str, Any]], window: float) -> list[dict[str, Any]]:
    """The stream less every delivery that another replica made of the same group, with the same
    alerts in the same states, at most `window` seconds before (a re-send later is no duplicate:
    the heartbeat relies on them)."""
    last: dict[tuple[str, frozenset[tuple[str, ...]]], tuple[str, datetime]] = {}
    unique = []
    for line in stream:
        payload, at = line["payload"], parse_time(line["received_at"])
        states = frozenset(
            (a["fingerprint"], a["status"], a["startsAt"], a["endsAt"]) for a in payload["alerts"]
        )
        key = (payload["groupKey"], states)
        previous = last.get(key)
        if (
            previous
            and previous[0] != payload["externalURL"]
            and (at - previous[1]).total_seconds() <= window
        ):
            continue
        last[key] = (payload["externalURL"], at)
        unique.append(line)
    return unique


def _active_silences(am: Any) -> list[dict[str, Any]]:
    return [s for s in am.api("silences") if s["status"]["state"] == "active"]


def test_coredns_crash_pages_once_for_cluster_dns_across_a_router_restart(tmp_path):
    with Stack(tmp_path, E2ECluster(None)) as stack:
        crashed = stack.cluster.crash_coredns()
        page = stack.wait_until(lambda: pages(stack), stack.seconds("30m"), "the DNS page")[0]
        assert page["root"]["entity"] == "dns/default/cluster-dns", page
        # Every CoreDNS alert joins that incident: the pods crash-looping, the Deployment short
        # of replicas, the scrape targets down.
        wanted = {LOOPING, "KubeDeploymentReplicasMismatch", "TargetDown"}
        stack.wait_until(
            lambda: wanted <= alert_names(incident(stack, page["incident"])),
            stack.seconds("10m"),
            "the CoreDNS alerts to join the incident",
        )
        detail = incident(stack, page["incident"])
        looping = {
            s["entity"].rsplit("/", 1)[-1]
            for s in detail["symptoms"]
            if s["alertname"] == "KubePodCrashLooping"
        }
        assert looping == set(crashed), detail["symptoms"]

        # The router dies mid-incident (kill -9) and comes back: Alertmanager's deliveries meanwhile
        # are retried or reconciled, nothing pages twice, the same Slack message is updated.
        assert stack.router is not None
        stack.router.kill()
        time.sleep(stack.seconds("2m"))
        stack.router.start()
        stack.cluster.heal_coredns()
        wait_resolved(stack, page["incident"], "20m")
        assert [p["incident"] for p in pages(stack)] == [page["incident"]], pages(stack)
        [message] = top_level(stack, PAGES)

        def updates() -> list[Any]:
            return [c for c in stack.slack.calls if c.method == "chat.update" and c.ok]

        # The resolve is decided before the outbox sends its Slack update: wait for it to land.
        stack.wait_until(
            lambda: updates() and "resolved" in json.dumps(updates()[-1].args).lower(),
            stack.seconds("2m"),
            "the resolve's update of the page",
        )
        assert {c.args["ts"] for c in updates()} == {message.body["ts"]}


def test_a_node_that_blips_and_heals_is_a_notice_not_a_page(tmp_path):
    with Stack(tmp_path, E2ECluster(None)) as stack:
        stack.cluster.stop_node(NODE)
        # Back as soon as its scrape targets' TargetDown (10m) reached the router: the node's
        # own alerts (15m) never will. (Waiting only for Prometheus to fire it races
        # Alertmanager, which drops an alert that resolves before its group's first flush.)
        stack.wait_until(lambda: router_heard(stack, "TargetDown"), stack.seconds("30m"), "TargetDown")
        stack.cluster.start_node(NODE)
        notices = stack.wait_until(lambda: stack.notified("notice"), stack.seconds("20m"), "the notice")
        assert all("recovered" in n["reason"] or "resolved" in n["reason"] for n in notices), notices
        # Past every grace period: still no page, and Slack only heard of it in the notice channel.
        time.sleep(stack.seconds("10m"))
        assert pages(stack) == [], pages(stack)
        assert top_level(stack, PAGES) == []
        assert top_level(stack, NOTICES)


def test_watchdog_stopping_pages_the_pipeline_and_its_return_resolves_it(tmp_path):
    with Stack(tmp_path, E2ECluster(None)) as stack:
        stack.wait_until(lambda: watchdog_delivered(stack, tmp_path), stack.seconds("5m"), "the Watchdog")
        assert stack.prometheus is not None
        stack.prometheus.stop()  # the alerting pipeline breaks: nothing evaluates any rule
        page = stack.wait_until(lambda: pages(stack), stack.seconds("20m"), "the pipeline page")[0]
        assert page["root"]["entity"] == "pipeline/default/alerting-pipeline", page
        stack.prometheus.start()
        wait_resolved(stack, page["incident"], "10m")
        assert [p["incident"] for p in pages(stack)] == [page["incident"]], pages(stack)


def test_a_full_disk_pages_once_on_its_node(tmp_path):
    with Stack(tmp_path, E2ECluster(None)) as stack:
        stack.cluster.fill_disk("worker-2")
        page = stack.wait_until(lambda: pages(stack), stack.seconds("40m"), "the disk page")[0]
        assert page["root"]["entity"] == "node/default/worker-2", page
        assert page["root"]["alert"]["alertname"] == "NodeFilesystemAlmostOutOfSpace", page
        assert page["root"]["alert"]["labels"]["mountpoint"] == "/", page
        stack.cluster.free_disk("worker-2")
        wait_resolved(stack, page["incident"], "15m")
        assert [p["incident"] for p in pages(stack)] == [page["incident"]], pages(stack)
        assert len(top_level(stack, PAGES)) == 1
