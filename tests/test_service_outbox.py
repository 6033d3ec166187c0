"""The outbox: notifications reach an outbound webhook signed, in order per incident, retried
with backoff until they land, given up only on errors a retry cannot cure, and still delivered
after a restart when the receiver was down."""

from __future__ import annotations

import json
import logging
import random
import socket
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from integrations.notifiers import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, LogNotifier, sign, verify
from router.service.config import RetrySettings
from router.service.metrics import Metrics
from router.service.outbox import Dispatcher
from tests.service_harness import ManualClock, serving, settings_for, storm, until

T0 = datetime(2026, 10, 6, 2, 0, tzinfo=UTC)
SECRET = "hook-secret"


class Receiver:
    """A webhook receiver on a loopback port that fails on demand."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.fail_first = 0  # answer 503 to this many requests
        self.refuse_action: str | None = None  # answer 400 to notifications of this action

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        record = {"headers": dict(request.headers), "body": body, "json": json.loads(body)}
        self.requests.append(record)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503, text="busy")
        if self.refuse_action and record["json"]["action"] == self.refuse_action:
            return web.Response(status=400, text="schema mismatch")
        return web.Response(status=204)


async def start_receiver(receiver: Receiver, port: int = 0) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{bound}/hook"


def hook_settings(tmp_path, url: str, **retry):
    return settings_for(
        tmp_path,
        notifiers={
            "webhooks": [{"name": "hook", "url": url, "secret": SECRET, "timeout": "2s"}],
            "retry": {"initial": "50ms", "maximum": "200ms", **retry},
        },
    )


def outbox(settings) -> tuple[list[tuple], list[tuple]]:
    conn = sqlite3.connect(settings.storage.path)
    try:
        rows = conn.execute(
            "SELECT o.key, o.notifier, o.state, o.attempts, o.last_error FROM outbox o ORDER BY o.position"
        ).fetchall()
        attempts = conn.execute("SELECT key, attempt, ok, error FROM outbound ORDER BY id").fetchall()
        return rows, attempts
    finally:
        conn.close()


async def run_storm(svc, clock: ManualClock) -> None:
    for offset, body in storm(T0):
        clock.set(T0 + timedelta(seconds=offset))
        assert (await svc.post(body))[0] == 200
    clock.set(T0 + timedelta(hours=1))
    await until(lambda: svc.service.engine.next_deadline() is None)


async def test_webhook_notifications_are_signed_ordered_and_retried(tmp_path):
    receiver = Receiver()
    receiver.fail_first = 3
    runner, url = await start_receiver(receiver)
    settings = hook_settings(tmp_path, url)
    clock = ManualClock(T0)
    try:
        async with serving(settings, clock=clock) as svc:
            assert list(svc.service.dispatcher.notifiers) == [
                "hook"
            ]  # no log notifier when one is configured
            await run_storm(svc, clock)
            await until(lambda: not any(svc.service.dispatcher.pending().values()), timeout=15)
            metrics = (await svc.get("/metrics"))[1]
    finally:
        await runner.cleanup()
    rows, attempts = outbox(settings)
    assert rows and {r[2] for r in rows} == {"sent"}
    assert sum(1 for a in attempts if not a[2]) == 3  # the three 503s, recorded
    assert all("HTTP 503" in a[3] for a in attempts if not a[2])
    assert 'alert_router_notifier_errors_total{notifier="hook"} 3.0' in metrics

    now = datetime.now(UTC).timestamp()
    for request in receiver.requests:
        headers = request["headers"]
        assert verify(
            SECRET.encode(), headers[TIMESTAMP_HEADER], request["body"], headers[SIGNATURE_HEADER], now
        )
        assert not verify(
            b"wrong", headers[TIMESTAMP_HEADER], request["body"], headers[SIGNATURE_HEADER], now
        )
        note = request["json"]
        assert headers[KEY_HEADER].startswith(note["incident"] + ":")
    # retries carry the same key; per incident, keys arrive in the engine's order
    delivered = [r["headers"][KEY_HEADER] for r in receiver.requests]
    final = list(dict.fromkeys(delivered))
    assert sorted(final) == sorted(r[0] for r in rows)  # each notification reached it
    by_incident: dict[str, list[str]] = {}
    for key in final:
        by_incident.setdefault(key.split(":")[0], []).append(key)
    for incident, keys in by_incident.items():
        expected = [r[0] for r in rows if r[0].startswith(incident + ":")]
        assert keys == expected
        assert keys[0].endswith(":page") and keys[-1].endswith(":resolve")


async def test_a_refused_notification_fails_once_and_the_incident_goes_on(tmp_path, caplog):
    receiver = Receiver()
    receiver.refuse_action = "page"
    runner, url = await start_receiver(receiver)
    settings = hook_settings(tmp_path, url)
    clock = ManualClock(T0)
    caplog.set_level(logging.ERROR, "alert_router.outbox")
    try:
        async with serving(settings, clock=clock) as svc:
            await run_storm(svc, clock)
            await until(lambda: not any(svc.service.dispatcher.pending().values()), timeout=15)
            metrics = (await svc.get("/metrics"))[1]
    finally:
        await runner.cleanup()
    rows, _ = outbox(settings)
    pages = [r for r in rows if r[0].endswith(":page")]
    assert pages and all(r[2] == "failed" and r[3] == 1 and "HTTP 400" in r[4] for r in pages)
    assert all(r[2] == "sent" for r in rows if r[0].endswith(":resolve"))
    assert sum(1 for r in receiver.requests if r["json"]["action"] == "page") == len(pages)  # no retry
    assert 'alert_router_notifications_failed_total{notifier="hook"}' in metrics
    giving_up = [r for r in caplog.records if "giving up" in r.getMessage()]
    assert giving_up and all(getattr(r, "incident", None) for r in giving_up)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_receiver_down_notifications_survive_a_restart(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    settings = hook_settings(tmp_path, url, maximum="1s")
    settings = settings.model_copy(
        update={"runtime": settings.runtime.model_copy(update={"drain_timeout": timedelta(seconds=0.3)})}
    )
    clock = ManualClock(T0)
    async with serving(settings, clock=clock) as svc:
        await run_storm(svc, clock)
        await until(lambda: svc.service._out_pending is None and svc.service._out_inflight is None)
        pending = sum(svc.service.dispatcher.pending().values())
    assert pending > 0
    rows, attempts = outbox(settings)
    assert {r[2] for r in rows} == {"pending"} and attempts and not any(a[2] for a in attempts)

    receiver = Receiver()
    runner, _ = await start_receiver(receiver, port)
    try:
        async with serving(settings, clock=clock) as svc:
            await until(lambda: not any(svc.service.dispatcher.pending().values()), timeout=15)
    finally:
        await runner.cleanup()
    rows, _ = outbox(settings)
    assert {r[2] for r in rows} == {"sent"}
    assert sorted({r["headers"][KEY_HEADER] for r in receiver.requests}) == sorted(r[0] for r in rows)


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    retry = RetrySettings(initial="1s", maximum="60s", multiplier=2)
    dispatcher = Dispatcher({}, None, retry, Metrics(), rng=random.Random(1))  # type: ignore[arg-type]
    for attempt, base in [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (20, 60)]:
        values = [dispatcher.backoff(attempt) for _ in range(200)]
        assert min(values) >= base * 0.5 and max(values) <= base * 1.5
        assert max(values) - min(values) > base * 0.5  # jittered, not fixed


def test_signature_is_hex_hmac_of_timestamp_dot_body():
    import hashlib
    import hmac

    body = b'{"action":"page"}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(b"k", "1700000000", body) == expected
    assert verify(b"k", "1700000000", body, expected, now=1700000100)
    assert not verify(b"k", "1700000000", body, expected, now=1700009999)  # stale: replay refused


@pytest.mark.parametrize("with_file", [False, True])
async def test_log_notifier_writes_one_json_line_each(tmp_path, caplog, with_file):
    path = tmp_path / "out.jsonl" if with_file else None
    notifier = LogNotifier(path)
    caplog.set_level(logging.INFO, "alert_router.notify")
    note = {
        "at": "2026-10-06T02:00:00.000Z",
        "action": "page",
        "incident": "inc-abc123",
        "severity": "critical",
        "root": {"entity": "node/default/w1", "alert": None},
        "symptoms": [],
        "reason": "node down",
    }
    await notifier.send(note, "inc-abc123:0:page")
    await notifier.close()
    [record] = caplog.records
    assert (
        record.incident == "inc-abc123" and record.key == "inc-abc123:0:page" and record.notification == note
    )
    if path:
        assert [json.loads(line) for line in path.read_text().splitlines()] == [note]
