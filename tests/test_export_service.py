"""The live service end to end: a storm posted over HTTP to the real service (real SQLite, real
HTTP API, a real log notifier), acknowledged through the API, then exported from its event log
with the CLI while the service keeps running; and the event log of a service that received
nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from router.cli.main import main
from router.export import build
from router.export.store_source import StoreSource
from tests.service_harness import ManualClock, serving, settings_for, storm, until

T0 = datetime(2026, 10, 6, 2, 0, tzinfo=UTC)
NODE = "node/default/worker-1"


async def test_live_service_incident_exports_with_delivery_results(tmp_path, capsys):
    sent = tmp_path / "sent.jsonl"
    settings = settings_for(tmp_path, notifiers={"log": {"path": str(sent)}})
    data_dir = str(settings.storage.data_dir)
    clock = ManualClock(T0)
    async with serving(settings, clock=clock) as svc:
        engine = svc.service.engine
        acked = False
        last = T0
        for offset, body in storm(T0):
            if offset >= 25 and not acked:
                clock.set(T0 + timedelta(seconds=25))
                await until(
                    lambda: any(
                        i["state"] == "paged" and i["root"]["entity"] == NODE for i in engine.incidents()
                    )
                )
                incident = next(i["id"] for i in engine.incidents() if i["root"]["entity"] == NODE)
                url = f"{svc.url}/api/v1/incidents/{incident}/acknowledge"
                async with svc.session.post(url, json={"user": "alice", "note": "on it"}) as response:
                    assert response.status == 200, await response.text()
                acked = True
            last = T0 + timedelta(seconds=offset)
            clock.set(last)
            assert (await svc.post(body))[0] == 200
        clock.set(last + timedelta(hours=1))
        source = StoreSource(settings.storage.path)

        def settled() -> bool:
            recording = source.load(incident)
            t = build(recording.events, recording.notifications, incident, outbox=recording.outbox)
            return t.state == "closed" and bool(t.messages) and all(m.status == "sent" for m in t.messages)

        await until(settled)
        view = engine.incident(incident)
        all_ids = {i["id"] for i in engine.incidents()}
        # Exported from the running service's event log (read-only, next to its writer).
        out = tmp_path / "timeline.json"
        code = await asyncio.to_thread(main, ["export", incident, "--data-dir", data_dir, "-o", str(out)])
        assert code == 0
        html = tmp_path / "timeline.html"
        assert (
            await asyncio.to_thread(main, ["export", incident, "--data-dir", data_dir, "-o", str(html)]) == 0
        )
        assert await asyncio.to_thread(main, ["incidents", "--data-dir", data_dir, "--format", "json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        # The same export through the HTTP API.
        base = f"{svc.url}/api/v1/incidents"
        async with svc.session.get(f"{base}/{incident}/timeline?format=md&tz=Europe/Paris") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/markdown")
            markdown = await response.text()
        async with svc.session.get(f"{base}/{incident}/timeline?format=pdf") as response:
            assert response.status == 400 and (await response.json())["field"] == "format"
        async with svc.session.get(f"{base}/inc-000000/timeline?format=html") as response:
            assert response.status == 404
    assert incident in markdown and "Europe/Paris" in markdown
    data = json.loads(out.read_text())
    assert data["incident"]["state"] == view["state"] == "closed"
    assert data["incident"]["root"]["entity"] == NODE
    assert data["incident"]["acknowledged_by"] == ["alice"]
    assert data["figures"]["alerts_received"] == len(view["alerts"])
    assert data["figures"]["paged_at"] == view["paged_at"]
    assert data["figures"]["resolved_at"] == view["closed_at"]
    delivered = [json.loads(line) for line in sent.read_text().splitlines()]
    ours = data["messages"]
    assert [m["action"] for m in ours] == [n["action"] for n in delivered if n["incident"] == incident]
    assert all(m["deliveries"] == [{**m["deliveries"][0], "notifier": "log", "state": "sent"}] for m in ours)
    assert any(e["kind"] == "acknowledged" and e["actor"] == "alice" for e in data["entries"])
    assert {row["id"] for row in listed} == all_ids and len(all_ids) == 2
    assert "<svg" in html.read_text()


async def test_a_service_that_received_nothing_has_nothing_to_export(tmp_path, capsys):
    settings = settings_for(tmp_path)
    async with serving(settings, clock=ManualClock(T0)):
        pass
    assert settings.storage.path.is_file()
    assert main(["export", "inc-abcdef", "--data-dir", str(settings.storage.data_dir)]) == 2
    err = capsys.readouterr().err
    assert f"no decision events in the event log {settings.storage.path}" in err
