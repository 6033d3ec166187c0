"""The HTTP API's edges against the real service on a loopback port: every error is JSON (404
and 405 included), every refusal is logged once with its reason, and the incident list comes in
pages (`limit`, `cursor`) instead of all at once."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from tests.service_harness import DELIVERIES, alert, now_ms, payload, serving, settings_for, until


def example() -> dict:
    return json.loads((DELIVERIES / "alertmanager-0.33-example.json").read_text())


@pytest.mark.parametrize(
    ("method", "path", "status", "words"),
    [
        ("GET", "/nowhere", 404, "no such path: /nowhere"),
        ("GET", "/api/v1/incidents/inc-000000/nothing", 404, "no such path"),
        ("GET", "/api/v1/alertmanager", 405, "GET is not allowed on /api/v1/alertmanager (allowed: POST)"),
        ("DELETE", "/api/v1/incidents", 405, "DELETE is not allowed"),
    ],
)
async def test_unknown_paths_and_methods_are_answered_in_json(tmp_path, method, path, status, words):
    async with (
        serving(settings_for(tmp_path)) as svc,
        svc.session.request(method, svc.url + path) as response,
    ):
        assert response.status == status
        assert response.content_type == "application/json"
        assert words in (await response.json())["error"]
        if status == 405:
            assert response.headers["Allow"] in ("POST", "GET, HEAD")


async def test_each_refusal_is_logged_once_with_its_reason(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    token = tmp_path / "token"
    token.write_text("tok")
    settings = settings_for(tmp_path, auth={"bearer_token_file": str(token)})
    auth = {"Authorization": "Bearer tok"}
    async with serving(settings) as svc:
        caplog.clear()
        cases = [
            (svc.post("{not json", auth), 400, "malformed JSON"),
            (svc.post(example(), {"Authorization": "Bearer nope"}), 401, "credentials refused"),
            (svc.post(example()), 401, "no credentials"),
            (svc.get("/api/v1/incidents?state=sleeping", auth), 400, "state must be one of"),
            (svc.get("/api/v1/incidents/inc-000000", auth), 404, "no such incident"),
            (svc.get("/nowhere"), 404, "no such path"),
        ]
        for request, status, reason in cases:
            caplog.clear()
            assert (await request)[0] == status
            refusals = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(refusals) == 1, [r.getMessage() for r in refusals]
            assert reason in refusals[0].getMessage() and refusals[0].status == status
        caplog.clear()
        assert (await svc.post(example(), auth))[0] == 200
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def incident_ids(svc, query: str) -> list[str]:
    """Every page of GET /api/v1/incidents, following next_cursor."""
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        url = "/api/v1/incidents?" + query + (f"&cursor={cursor}" if cursor else "")
        status, body = await svc.get(url)
        assert status == 200, body
        ids += [i["id"] for i in body["incidents"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("no end")


async def test_the_incident_list_comes_in_pages(tmp_path):
    settings = settings_for(tmp_path)
    start = now_ms() - timedelta(minutes=1)
    # 120 unrelated pods crash looping: 120 incidents of their own.
    alerts = [
        alert(
            f"{i:016x}", start, {"alertname": "KubePodCrashLooping", "namespace": f"ns{i}", "pod": f"p-{i}"}
        )
        for i in range(120)
    ]
    async with serving(settings) as svc:
        assert (await svc.post(payload(alerts, "many")))[0] == 200
        engine = svc.service.engine
        await until(lambda: len(engine.incidents()) == 120)
        everything = [i["id"] for i in engine.incidents()]
        status, first = await svc.get("/api/v1/incidents")
        assert status == 200 and len(first["incidents"]) == 100 and first["next_cursor"]
        assert [i["id"] for i in first["incidents"]] == everything[:100]
        assert await incident_ids(svc, "limit=7") == everything
        assert await incident_ids(svc, "limit=1000") == everything
        assert await incident_ids(svc, "limit=50&state=open") == [
            i["id"] for i in engine.incidents() if i["state"] == "open"
        ]
        status, last = await svc.get("/api/v1/incidents?limit=20&cursor=" + first["next_cursor"])
        assert [i["id"] for i in last["incidents"]] == everything[100:] and last["next_cursor"] is None
        for query, field in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=ten", "limit"),
            ("cursor=bm9wZQ", "cursor"),
            ("cursor=%%%", "cursor"),
            ("state=asleep", "state"),
        ]:
            status, answer = await svc.get("/api/v1/incidents?" + query)
            assert status == 400 and answer["field"] == field, (query, answer)
