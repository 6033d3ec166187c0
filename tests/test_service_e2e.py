"""End to end: an Alertmanager-shaped storm posted over HTTP to the real service (real SQLite,
real aiohttp server) decides exactly what `alert-router replay` decides on the service's own
exported log; a restart rebuilds the same state and sends nothing twice; the incident API."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from router.service.store import Reader, SQLiteBackend
from tests.service_harness import (
    ROOT,
    TOPOLOGY,
    ManualClock,
    serving,
    settings_for,
    storm,
    until,
    write_rules,
)

T0 = datetime(2026, 10, 6, 2, 0, tzinfo=UTC)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def reader_of(settings) -> tuple[Reader, object]:
    conn = SQLiteBackend(settings.storage.path).connect()
    return Reader(conn), conn


async def post_storm(svc, clock: ManualClock) -> datetime:
    last = T0
    for offset, body in storm(T0):
        last = T0 + timedelta(seconds=offset)
        clock.set(last)
        status, answer = await svc.post(body)
        assert status == 200, answer
    return last


async def settle(svc, clock: ManualClock, moment: datetime) -> None:
    """Move the clock, then wait until the engine ticked past every timer and the outbox drained."""
    clock.set(moment)
    engine = svc.service.engine
    await until(lambda: engine.next_deadline() is None or engine.next_deadline() > moment)
    await until(lambda: svc.service._out_inflight is None and svc.service._out_pending is None)
    await until(lambda: not any(svc.service.dispatcher.pending().values()))


async def test_storm_over_http_equals_replay_of_the_recorded_log(tmp_path):
    sent_file = tmp_path / "sent.jsonl"
    settings = settings_for(tmp_path, notifiers={"log": {"path": str(sent_file)}})
    clock = ManualClock(T0)
    async with serving(settings, clock=clock) as svc:
        last = await post_storm(svc, clock)
        await settle(svc, clock, last + timedelta(hours=1))
        incidents = svc.service.engine.incidents()
    reader, conn = reader_of(settings)
    live = reader.notifications()
    states = reader.outbox_states()
    lines = list(reader.delivery_lines())
    conn.close()

    # what the service decided
    pages = [n for n in live if n["action"] == "page"]
    assert any(p["root"]["entity"] == "node/default/worker-1" and len(p["symptoms"]) == 4 for p in pages), (
        pages
    )
    assert len({p["incident"] for p in pages}) == len(pages)  # at most one page per incident
    assert {n["action"] for n in live} >= {"page", "resolve"}
    assert set(states.values()) == {"sent"}
    assert [json.loads(line) for line in sent_file.read_text().splitlines()] == live
    assert len(incidents) == 2

    # replay of the service's own log, through the CLI
    exported = tmp_path / "exported.jsonl"
    result = cli("log", "export", "--data-dir", str(settings.storage.data_dir), "-o", str(exported))
    assert result.returncode == 0, result.stderr
    assert exported.read_text().splitlines() == lines and len(lines) == len(storm(T0))
    out = tmp_path / "replayed.jsonl"
    result = cli(
        "replay",
        "--topology",
        str(TOPOLOGY),
        "--alerts",
        str(exported),
        "--rules",
        str(write_rules(tmp_path)),
        "--config",
        str(tmp_path / "alert-router.yaml"),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    replayed = [json.loads(line) for line in out.read_text().splitlines()]
    assert replayed == live


async def test_restart_rebuilds_the_same_state_and_sends_nothing_again(tmp_path):
    sent_file = tmp_path / "sent.jsonl"
    settings = settings_for(tmp_path, notifiers={"log": {"path": str(sent_file)}})
    clock = ManualClock(T0)
    offsets = storm(T0)
    half = len(offsets) // 2
    async with serving(settings, clock=clock) as svc:
        for offset, body in offsets[:half]:
            clock.set(T0 + timedelta(seconds=offset))
            assert (await svc.post(body))[0] == 200
        await settle(svc, clock, T0 + timedelta(seconds=offsets[half - 1][0] + 5))
        before = svc.service.engine.incidents()
        sent_before = sent_file.read_text().splitlines()
    assert sent_before  # the page went out before the restart
    async with serving(settings, clock=clock) as svc:
        assert svc.service.engine.incidents() == before
        assert svc.service.engine.counters["deliveries"] == half
        for offset, body in offsets[half:]:
            clock.set(T0 + timedelta(seconds=offset))
            assert (await svc.post(body))[0] == 200
        await settle(svc, clock, T0 + timedelta(hours=1, minutes=1))
    reader, conn = reader_of(settings)
    live = reader.notifications()
    lines = list(reader.delivery_lines())
    conn.close()
    sent = sent_file.read_text().splitlines()
    assert sent[: len(sent_before)] == sent_before
    assert [json.loads(line) for line in sent] == live  # each notification sent exactly once

    # same decisions as one uninterrupted run over the same stream
    from tests.service_harness import offline

    assert offline(lines, write_rules(tmp_path), T0 + timedelta(hours=1, minutes=1)) == live


async def test_incident_api_acknowledge_resolve_and_timeline(tmp_path):
    settings = settings_for(tmp_path)
    clock = ManualClock(T0)
    async with serving(settings, clock=clock) as svc:
        for offset, body in storm(T0, rounds=2, resolve_at=None):
            clock.set(T0 + timedelta(seconds=offset))
            assert (await svc.post(body))[0] == 200
        await settle(svc, clock, T0 + timedelta(seconds=30))

        status, listing = await svc.get("/api/v1/incidents?state=paged")
        assert status == 200
        node = next(i for i in listing["incidents"] if i["root"]["entity"] == "node/default/worker-1")
        assert len(node["symptoms"]) == 4
        assert (await svc.get("/api/v1/incidents?state=bogus"))[0] == 400
        status, one = await svc.get(f"/api/v1/incidents/{node['id']}")
        assert status == 200 and one["id"] == node["id"] and one["alerts"]
        assert (await svc.get("/api/v1/incidents/inc-000000"))[0] == 404

        url = f"{svc.url}/api/v1/incidents/{node['id']}"
        async with svc.session.post(url + "/acknowledge", json={"user": "alice", "note": "on it"}) as r:
            assert r.status == 200
            assert (await r.json())["acknowledged_by"] == "alice"
        async with svc.session.post(url + "/acknowledge", json={"note": "no user"}) as r:
            assert r.status == 400 and (await r.json())["field"] == "user"
        async with svc.session.post(
            svc.url + "/api/v1/incidents/inc-000000/resolve", json={"user": "bob"}
        ) as r:
            assert r.status == 404
        clock.set(T0 + timedelta(seconds=40))
        async with svc.session.post(url + "/resolve", json={"user": "bob"}) as r:
            assert r.status == 200
            assert (await r.json())["state"] == "closed"
        await settle(svc, clock, T0 + timedelta(seconds=41))

        status, timeline = await svc.get(f"/api/v1/incidents/{node['id']}/timeline")
        assert status == 200
        kinds = [e["kind"] for e in timeline]
        assert kinds[0] == "incident_opened"
        assert {"symptom_attached", "paged", "acknowledged", "human_resolved"} <= set(kinds)
        assert all(e["incident"] == node["id"] for e in timeline)

        status, topo = await svc.get("/api/v1/topology")
        assert status == 200 and topo["kinds"]["node"] == 3
        status, ready = await svc.get("/readyz")
        assert status == 200 and ready["status"] == "ready"
        status, text = await svc.get("/metrics")
        assert status == 200
        metrics = _metrics(text)
        assert metrics['alert_router_deliveries_total{source="webhook"}'] == len(
            storm(T0, rounds=2, resolve_at=None)
        )
        assert metrics["alert_router_pages_total"] >= 1
        assert metrics["alert_router_suppressed_symptoms_total"] == 4
        assert metrics["alert_router_duplicate_alerts_total"] > 0
        assert metrics["alert_router_event_log_bytes"] > 0
        assert (
            "alert_router_outbox_pending" in text and "alert_router_decision_latency_seconds_bucket" in text
        )
        status, spec = await svc.get("/api/v1/openapi.yaml")
        assert status == 200 and "/api/v1/alertmanager" in spec

    # the human actions are inputs of the log: a restart replays them
    async with serving(settings, clock=clock) as svc:
        view = svc.service.engine.incident(node["id"])
        assert view["state"] == "closed" and view["acknowledged_by"] == "alice"


def _metrics(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_log_export_errors_name_the_problem(tmp_path: Path):
    result = cli("log", "export", "--data-dir", str(tmp_path / "nothing"))
    assert result.returncode == 2 and "no event log" in result.stderr
    result = cli("log", "export", "--data-dir", str(tmp_path), "--since", "yesterday")
    assert result.returncode == 2
