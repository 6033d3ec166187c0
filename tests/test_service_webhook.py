"""The webhook endpoint against a real aiohttp server on a loopback port and a real SQLite file:
Alertmanager's documented payloads, bad input (each refused with the field named and nothing
stored), auth, size limits, slow clients, a 10,000-alert delivery."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import timedelta

import pytest
from pydantic import SecretStr

from router.core.model import parse_delivery_line
from router.service.store import Reader, SQLiteBackend
from router.service.webhook import Authenticator
from tests.service_harness import DELIVERIES, alert, now_ms, payload, serving, settings_for


def stored_lines(settings) -> list[str]:
    conn = SQLiteBackend(settings.storage.path).connect()
    try:
        return list(Reader(conn).delivery_lines())
    finally:
        conn.close()


def example() -> dict:
    return json.loads((DELIVERIES / "alertmanager-0.33-example.json").read_text())


@pytest.mark.parametrize(
    "name", ["alertmanager-0.33-example.json", "alertmanager-0.34-example.json", "watchdog.json"]
)
async def test_documented_payloads_are_recorded_exactly(tmp_path, name):
    settings = settings_for(tmp_path)
    text = (DELIVERIES / name).read_text()
    async with serving(settings) as svc:
        status, body = await svc.post(text)
        assert status == 200, body
        assert body["seq"] == 1
    lines = stored_lines(settings)
    assert len(lines) == 1
    recorded = json.loads(lines[0])
    assert set(recorded) == {"received_at", "payload"}
    assert recorded["payload"] == json.loads(text)  # every field kept, routeLabels included
    assert parse_delivery_line(lines[0]).payload.alerts[0].fingerprint


async def test_unknown_alert_fields_are_kept_and_replayable(tmp_path):
    settings = settings_for(tmp_path)
    body = example()
    body["alerts"][0]["silencedBy"] = ["abc"]
    body["alerts"][0]["x_custom"] = {"nested": [1, 2]}
    body["futureTopLevel"] = "v0.40"
    async with serving(settings) as svc:
        status, _ = await svc.post(json.dumps(body, indent=2))  # multi-line body: stored on one line
        assert status == 200
    [line] = stored_lines(settings)
    assert "\n" not in line
    again = json.loads(line)["payload"]
    assert again["alerts"][0]["x_custom"] == {"nested": [1, 2]}
    assert again["futureTopLevel"] == "v0.40"
    delivery = parse_delivery_line(line)
    assert delivery.payload.alerts[0].model_extra["silencedBy"] == ["abc"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(version="3"), "version"),
        (lambda b: b.pop("alerts"), "alerts"),
        (lambda b: b["alerts"][1].pop("fingerprint"), "alerts.1.fingerprint"),
        (lambda b: b["alerts"][0].pop("startsAt"), "alerts.0.startsAt"),
        (lambda b: b["alerts"][0].update(status="pending"), "alerts.0.status"),
        (lambda b: b["alerts"][0].update(labels={"a": 1}), "alerts.0.labels.a"),
        (lambda b: b["alerts"][0].update(startsAt="0001-01-01T00:00:00Z"), "alerts.0.startsAt"),
        (lambda b: b["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt"),
        (lambda b: b["alerts"][0].update(startsAt="1970-01-01T00:00:00Z"), "alerts.0.startsAt"),
        (lambda b: b["alerts"][0].update(startsAt="2999-01-01T00:00:00Z"), "alerts.0.startsAt"),
        (lambda b: b["alerts"][1].update(endsAt="9999-12-31T23:59:59Z"), "alerts.1.endsAt"),
    ],
)
async def test_payloads_that_will_never_be_valid_get_400_naming_the_field(tmp_path, mutate, field):
    settings = settings_for(tmp_path)
    body = example()
    mutate(body)
    async with serving(settings) as svc:
        status, answer = await svc.post(body)
        assert status == 400
        assert answer["field"] == field, answer
        assert answer["error"].startswith(field)
    assert stored_lines(settings) == []


async def test_malformed_json_wrong_type_and_encoding(tmp_path):
    settings = settings_for(tmp_path)
    async with serving(settings) as svc:
        status, answer = await svc.post('{"version": "4", "alerts": [')
        assert status == 400 and answer["field"] == "(body)" and "malformed JSON" in answer["error"]
        status, answer = await svc.post("[1, 2]")
        assert status == 400 and answer["field"] == "(body)"
        status, answer = await svc.post(b'{"version": "\xff"}')
        assert status == 400 and "UTF-8" in answer["error"]
        async with svc.session.post(
            svc.url + "/api/v1/alertmanager", data="x", headers={"Content-Type": "text/plain"}
        ) as r:
            assert r.status == 415
            assert "application/json" in (await r.json())["error"]
        async with svc.session.post(svc.url + "/api/v1/alertmanager", data=b"{}") as r:
            assert r.status == 415  # no content type at all
        # charset parameter is fine
        status, _ = await svc.post(json.dumps(example()), {"Content-Type": "application/json; charset=utf-8"})
        assert status == 200
    assert len(stored_lines(settings)) == 1


async def test_oversized_body_is_refused_before_it_is_stored(tmp_path):
    settings = settings_for(tmp_path, server={"max_body_bytes": 64 * 1024})
    body = example()
    body["alerts"] = [dict(body["alerts"][0], fingerprint=f"{i:016x}") for i in range(400)]
    text = json.dumps(body)
    assert len(text) > 64 * 1024
    async with serving(settings) as svc:
        status, answer = await svc.post(text)
        assert status == 413 and "limit" in answer["error"]

        # chunked upload without Content-Length: refused while reading
        async def chunks():
            for i in range(0, len(text), 8192):
                yield text[i : i + 8192].encode()

        async with svc.session.post(
            svc.url + "/api/v1/alertmanager", data=chunks(), headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 413
    assert stored_lines(settings) == []


async def test_ten_thousand_alert_delivery(tmp_path):
    settings = settings_for(tmp_path)
    start = now_ms() - timedelta(minutes=5)
    alerts = [
        alert(
            f"{i:016x}", start, {"alertname": "KubePodNotReady", "namespace": f"ns{i % 50}", "pod": f"p-{i}"}
        )
        for i in range(10_000)
    ]
    text = json.dumps(payload(alerts, "many"))
    async with serving(settings) as svc:
        began = time.monotonic()
        status, answer = await svc.post(text)
        elapsed = time.monotonic() - began
        assert status == 200 and answer["alerts"] == 10_000
        await asyncio.sleep(0)
        for _ in range(200):
            if svc.service.engine.counters["alerts_received"] == 10_000:
                break
            await asyncio.sleep(0.05)
        assert svc.service.engine.counters["instances"] == 10_000
    assert elapsed < 10
    [line] = stored_lines(settings)
    assert len(json.loads(line)["payload"]["alerts"]) == 10_000


async def test_duplicates_are_idempotent_and_all_recorded(tmp_path):
    settings = settings_for(tmp_path)
    body = example()
    async with serving(settings) as svc:
        for _ in range(3):  # a retry and the HA replica
            status, _ = await svc.post(body)
            assert status == 200
        await asyncio.sleep(0.2)
        engine = svc.service.engine
        assert engine.counters["deliveries"] == 3
        assert engine.counters["instances"] == 1  # the resolved alert was never seen firing: no instance
        assert len(engine.incidents()) == 1
    assert len(stored_lines(settings)) == 3  # the log keeps what arrived


async def test_slow_client_is_cut_off_without_stalling_others(tmp_path):
    settings = settings_for(tmp_path, server={"read_timeout": "1s"})
    text = json.dumps(example()).encode()
    async with serving(settings) as svc:
        host, port = svc.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /api/v1/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(text)}\r\n\r\n".encode()
            + text[:10]
        )
        await writer.drain()
        # Meanwhile, a normal client is served at once.
        began = time.monotonic()
        status, _ = await svc.post(text)
        assert status == 200 and time.monotonic() - began < 0.5
        head = await asyncio.wait_for(reader.read(200), 5)
        assert head.startswith(b"HTTP/1.1 408")
        writer.close()
    assert len(stored_lines(settings)) == 1  # only the complete delivery


def test_authenticator_accepts_both_alertmanager_forms_and_nothing_else():
    auth = Authenticator(SecretStr("s3cret"), ("am", SecretStr("pw")))
    basic = "Basic " + base64.b64encode(b"am:pw").decode()
    assert auth.check("Bearer s3cret") and auth.check("bearer  s3cret") and auth.check(basic)
    for bad in (
        None,
        "",
        "Bearer s3cre",
        "Bearer",
        "Basic " + base64.b64encode(b"am:pwx").decode(),
        "Basic " + base64.b64encode(b"amx:pw").decode(),
        "Basic !!!",
        "Basic " + base64.b64encode(b"ampw").decode(),
        "Token s3cret",
    ):
        assert not auth.check(bad), bad
    assert Authenticator(None, None).check(None)  # nothing configured: open


async def test_auth_401_does_not_say_what_was_wrong(tmp_path, monkeypatch):
    secret = tmp_path / "token"
    secret.write_text("tok-123\n")
    settings = settings_for(
        tmp_path, auth={"bearer_token_file": str(secret), "basic_auth": {"username": "am", "password": "pw"}}
    )
    body = example()
    async with serving(settings) as svc:
        answers = []
        for header in ("Bearer nope", "Basic " + base64.b64encode(b"am:nope").decode(), None):
            status, answer = await svc.post(body, {"Authorization": header} if header else {})
            answers.append((status, answer))
        assert all(a == (401, {"error": "unauthorized"}) for a in answers)
        assert (await svc.post(body, {"Authorization": "Bearer tok-123"}))[0] == 200
        basic = "Basic " + base64.b64encode(b"am:pw").decode()
        assert (await svc.post(body, {"Authorization": basic}))[0] == 200
        # the API behind the same credentials; health and metrics open
        assert (await svc.get("/api/v1/incidents"))[0] == 401
        assert (await svc.get("/api/v1/incidents", {"Authorization": basic}))[0] == 200
        assert (await svc.get("/healthz"))[0] == 200
        assert (await svc.get("/api/v1/openapi.yaml"))[0] == 200
    assert len(stored_lines(settings)) == 2
