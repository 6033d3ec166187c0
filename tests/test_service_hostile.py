"""Hostile and odd input against the real service (aiohttp on loopback, SQLite): what the webhook
accepts, the rebuild after a restart reads back the same way; what cannot be stored or parsed
safely is refused with 400 naming the problem, never a 500 (Alertmanager retries a 5xx for
ever); a decision the event log keeps refusing flips /readyz and holds up nothing else."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest

from ground.jsonio import loads
from router.core.model import parse_delivery_line, parse_webhook
from router.service import store
from router.service.store import Reader, SQLiteBackend
from tests.service_harness import DELIVERIES, alert, now_ms, payload, serving, settings_for, storm, until


def example() -> dict:
    return json.loads((DELIVERIES / "alertmanager-0.33-example.json").read_text())


def stored_lines(settings) -> list[str]:
    conn = SQLiteBackend(settings.storage.path).connect()
    try:
        return list(Reader(conn).delivery_lines())
    finally:
        conn.close()


def count(settings, table: str) -> int:
    conn = sqlite3.connect(settings.storage.path)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def with_surrogate(where: str) -> str:
    """The example with a lone surrogate escape (\\ud800) in a label value, an annotation or a
    label name: valid for Python's json module, not Unicode text."""
    body = example()
    first = body["alerts"][0]
    if where == "label":
        first["labels"]["team"] = "\ud800"
    elif where == "annotation":
        first["annotations"]["summary"] = "disk \ud800 full"
    else:
        first["labels"]["\ud800"] = "x"
    text = json.dumps(body)
    assert "\\ud800" in text
    return text


@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("label", "alerts.0.labels.team"),
        ("annotation", "alerts.0.annotations.summary"),
        ("label name", "alerts.0.labels"),
    ],
)
async def test_a_lone_surrogate_is_refused_with_400_naming_the_field(tmp_path, where, field):
    settings = settings_for(tmp_path)
    async with serving(settings) as svc:
        status, answer = await svc.post(with_surrogate(where))
        assert status == 400, answer
        assert answer["field"] == field
        assert answer["error"].startswith(f"{field}: a lone UTF-16 surrogate (\\ud800)")
        # The next delivery is recorded and decided on as usual.
        assert (await svc.post(example()))[0] == 200
        await until(lambda: count(settings, "events") > 0)
        assert (await svc.get("/readyz"))[0] == 200
    assert len(stored_lines(settings)) == 1


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('"nested": ' + deep(100_000), "nested deeper than 200 levels"),
        ('"big": ' + "7" * 5000, "an integer of more than 4300 digits"),
        ('"x": NaN', "malformed JSON"),
        ('"x": Infinity', "malformed JSON"),
    ],
)
async def test_bodies_pythons_json_mishandles_get_400_at_the_webhook(tmp_path, extra, problem):
    settings = settings_for(tmp_path)
    text = json.dumps(example())
    text = text[:-1] + ", " + extra + "}"
    async with serving(settings) as svc:
        status, answer = await svc.post(text)
        assert status == 400, answer
        assert answer["field"] == "(body)" and problem in answer["error"]
    assert stored_lines(settings) == []


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ('{"user": "\\ud800", "note": "x"}', "user", "a lone UTF-16 surrogate (\\ud800)"),
        ('{"user": "alice", "note": "\\udfff"}', "note", "a lone UTF-16 surrogate (\\udfff)"),
        ('{"user": "alice", "note": ' + deep(10_000) + "}", "(body)", "nested deeper than 200 levels"),
        ('{"user": "alice", "n": ' + "1" * 5000 + "}", "(body)", "an integer of more than 4300 digits"),
    ],
)
async def test_hostile_action_bodies_get_400_at_the_api(tmp_path, body, field, problem):
    settings = settings_for(tmp_path)
    async with serving(settings) as svc:
        assert (await svc.post(example()))[0] == 200
        await until(lambda: bool(svc.service.engine.incidents()))
        incident = svc.service.engine.incidents()[0]["id"]
        async with svc.session.post(
            f"{svc.url}/api/v1/incidents/{incident}/acknowledge",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        ) as response:
            answer = await response.json()
            assert response.status == 400, answer
        assert answer["field"] == field and problem in answer["error"]
        assert not svc.service.engine.incident(incident)["acknowledged_by"]
    assert count(settings, "actions") == 0


async def test_what_the_webhook_accepts_the_rebuild_reads_back_the_same(tmp_path):
    """Odd but acceptable bodies are stored and rebuilt identically; refused ones leave nothing."""
    settings = settings_for(tmp_path)
    base = json.dumps(example(), indent=1)  # line breaks: stored on one line
    odd = [
        base.replace('"summary": "', '"summary": "\u2028 raw line separator \x85 and NEL ', 1),
        base.replace('"summary": "', '"summary": "\\ud83d\\ude00 a surrogate pair ', 1),
        base[:-1] + ', "big": ' + "9" * 4000 + ', "huge": 1e400, "deep": ' + deep(150) + "}",
        base.replace("\n", "\r\n"),
        with_surrogate("annotation"),
        with_surrogate("label"),
    ]
    accepted = []
    async with serving(settings) as svc:
        for text in odd:
            status, answer = await svc.post(text)
            assert status in (200, 400), answer
            if status == 200:
                accepted.append(text)
        await until(lambda: svc.service.engine.counters["deliveries"] == len(accepted))
    assert len(accepted) == 4
    lines = stored_lines(settings)
    assert all("\n" not in line and "\r" not in line and "\u2028" not in line for line in lines)
    for text, line in zip(accepted, lines, strict=True):
        assert parse_delivery_line(line).payload == parse_webhook(loads(text))
    async with serving(settings) as svc:  # the rebuild: every accepted delivery, nothing skipped
        assert svc.service.engine.counters["deliveries"] == len(accepted)
        assert "alert_router_engine_errors_total 0.0" in (await svc.get("/metrics"))[1]


async def test_a_decision_the_log_keeps_refusing_flips_readyz_and_holds_up_nothing_else(
    tmp_path, monkeypatch
):
    settings = settings_for(tmp_path, runtime={"decision_write_attempts": 3})
    real = store.write_outputs
    refused: list[str] = []

    def refuse_poison(conn, outputs):
        # A row this database will never take (as SQLite never takes a lone surrogate).
        rows = [e[5] for e in outputs.events] + [n[7] for n in outputs.notifications]
        if any("Poison" in row for row in rows):
            refused.append(outputs.events[0][3] if outputs.events else "notification")
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        real(conn, outputs)

    monkeypatch.setattr(store, "write_outputs", refuse_poison)
    start = now_ms() - timedelta(minutes=1)
    labels = {"alertname": "Poison", "namespace": "batch", "pod": "p", "severity": "info"}
    poison = alert("poison", start, labels)
    async with serving(settings) as svc:
        assert (await svc.post(payload([poison], "batch")))[0] == 200
        await until(lambda: len(refused) >= 2)  # the batch, then its rows one by one
        status, ready = await svc.get("/readyz")
        assert status == 503 and "not recorded" in ready["reason"], ready
        # Unrelated deliveries after it are decided, recorded and paged meanwhile.
        for _, body in storm(start, rounds=1, resolve_at=None):
            assert (await svc.post(body))[0] == 200
        await until(lambda: count(settings, "notifications") >= 1, timeout=15)
        await until(lambda: not any(svc.service.dispatcher.pending().values()), timeout=15)
        # Given up after its attempts (1s, 2s apart): dropped, counted, ready again.
        await until(lambda: svc.service.ready()[0], timeout=15)
        assert (await svc.get("/readyz"))[0] == 200
        assert "alert_router_decisions_dropped_total" in (metrics := (await svc.get("/metrics"))[1])
        assert "alert_router_decisions_dropped_total 0.0" not in metrics
    conn = sqlite3.connect(settings.storage.path)
    try:
        pages = [json.loads(b) for (b,) in conn.execute("SELECT body FROM notifications")]
        states = {s for (s,) in conn.execute("SELECT state FROM outbox")}
        poisoned = conn.execute("SELECT COUNT(*) FROM events WHERE body LIKE '%Poison%'").fetchone()[0]
        checkpoint = conn.execute("SELECT input_seq FROM checkpoint").fetchone()[0]
        last_seq = conn.execute("SELECT MAX(seq) FROM deliveries").fetchone()[0]
    finally:
        conn.close()
    assert any(p["action"] == "page" and "worker-1" in p["root"]["entity"] for p in pages)
    assert states == {"sent"}
    assert poisoned == 0
    assert checkpoint == last_seq  # the checkpoint moved on past the refused rows
