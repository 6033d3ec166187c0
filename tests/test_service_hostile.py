"""Hostile and odd input against the real service (aiohttp on loopback, SQLite): what the webhook
accepts, the rebuild after a restart reads back the same way; what cannot be stored or parsed
safely is refused with 400 naming the problem, never a 500 (Alertmanager retries a 5xx for
ever); a decision the event log keeps refusing flips /readyz and holds up nothing else."""

from __future__ import annotations

import json
import sqlite3

import pytest

from router.model import loads, parse_delivery_line, parse_webhook
from router.store import Reader, SQLiteBackend
from tests.service_harness import DELIVERIES, serving, settings_for, until


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
