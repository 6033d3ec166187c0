"""Storage faults and crashes: a locked database and a full disk answer 503 with nothing
half-written; decisions whose write failed are retried; `kill -9` in the middle of a storm and a
restart end with the decisions of an uninterrupted run (no alert lost, no page repeated);
SIGTERM drains."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from collections import Counter
from datetime import timedelta

import aiohttp
import pytest

from ground.times import parse_time
from router.service import store
from tests.service_harness import (
    DELIVERIES,
    WEBHOOK,
    ServeProcess,
    alert,
    config_file,
    now_ms,
    offline,
    payload,
    serving,
    settings_for,
    storm,
    until,
    write_rules,
)


def example() -> dict:
    return json.loads((DELIVERIES / "alertmanager-0.33-example.json").read_text())


def rows(settings, table: str) -> int:
    conn = sqlite3.connect(settings.storage.path)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


async def test_database_locked_answers_503_then_recovers(tmp_path):
    settings = settings_for(tmp_path, storage={"busy_timeout": "300ms"})
    async with serving(settings) as svc:
        assert (await svc.post(example()))[0] == 200
        locker = sqlite3.connect(settings.storage.path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            began = time.monotonic()
            status, answer = await svc.post(example())
            assert status == 503 and "unavailable" in answer["error"]
            assert time.monotonic() - began < 3
            status, ready = await svc.get("/readyz")
            assert status == 503 and "storage" in ready["reason"]
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert (await svc.post(example()))[0] == 200
        assert (await svc.get("/readyz"))[0] == 200
        await until(lambda: svc.service.engine.counters["deliveries"] == 2)
        assert 'alert_router_webhook_requests_total{code="503"} 1.0' in (await svc.get("/metrics"))[1]
    assert rows(settings, "deliveries") == 2  # the refused one is not in the log


async def test_disk_full_at_commit_leaves_nothing_half_written(tmp_path, monkeypatch):
    settings = settings_for(tmp_path)
    real_commit = store.SQLiteConnection.commit
    full = {"on": False}

    def commit(self):
        if full["on"]:
            raise sqlite3.OperationalError("database or disk is full")
        real_commit(self)

    monkeypatch.setattr(store.SQLiteConnection, "commit", commit)
    async with serving(settings) as svc:
        full["on"] = True
        # several deliveries in flight at once: one group commit, all refused together
        answers = await asyncio.gather(*(svc.post(example()) for _ in range(5)))
        assert [status for status, _ in answers] == [503] * 5
        assert all("disk is full" in answer["error"] for _, answer in answers)
        await asyncio.sleep(0.2)
        assert svc.service.engine.counters["deliveries"] == 0  # the engine never saw them
        full["on"] = False
        assert (await svc.post(example()))[0] == 200
        await until(lambda: svc.service.engine.counters["deliveries"] == 1)
    assert rows(settings, "deliveries") == 1
    assert rows(settings, "events") > 0


async def test_a_failing_insert_rolls_back_the_whole_transaction(tmp_path, monkeypatch):
    """The backend's execute raises in the middle of a batch: no row of that batch stays."""
    settings = settings_for(tmp_path)
    real_execute = store.SQLiteConnection.execute
    state = {"calls": 0, "fail_after": None}

    def execute(self, sql, params=()):
        if state["fail_after"] is not None and sql.startswith("INSERT INTO deliveries"):
            state["calls"] += 1
            if state["calls"] > state["fail_after"]:
                raise sqlite3.OperationalError("database or disk is full")
        return real_execute(self, sql, params)

    monkeypatch.setattr(store.SQLiteConnection, "execute", execute)
    async with serving(settings) as svc:
        state["fail_after"] = 2  # the third insert fails, and every later one
        answers = await asyncio.gather(*(svc.post(example()) for _ in range(6)))
        statuses = [status for status, _ in answers]
        # Usually one batch, all refused; on a busy machine a first delivery may commit alone.
        # Either way the batch holding the third insert leaves nothing, its first inserts too.
        assert set(statuses) <= {200, 503} and statuses.count(503) >= 4
        committed = statuses.count(200)
        assert rows(settings, "deliveries") == committed
        state["fail_after"] = None
        assert (await svc.post(example()))[0] == 200
    assert rows(settings, "deliveries") == committed + 1


async def test_decisions_whose_write_failed_are_retried(tmp_path, monkeypatch):
    settings = settings_for(tmp_path)
    real = store.write_outputs
    failures = {"left": 2}

    def flaky(conn, outputs):
        if failures["left"]:
            failures["left"] -= 1
            # an error of this write alone: deliveries committed with it in the batch still commit
            raise RuntimeError("outputs write failed")
        real(conn, outputs)

    monkeypatch.setattr(store, "write_outputs", flaky)
    start = now_ms() - timedelta(minutes=1)
    async with serving(settings) as svc:
        for _, body in storm(start, rounds=1, resolve_at=None):
            assert (await svc.post(body))[0] == 200
        await until(lambda: failures["left"] == 0)
        await until(lambda: rows(settings, "notifications") >= 1, timeout=15)
        await until(lambda: not any(svc.service.dispatcher.pending().values()), timeout=15)
    assert rows(settings, "events") > 0
    conn = sqlite3.connect(settings.storage.path)
    states = {row[0] for row in conn.execute("SELECT state FROM outbox")}
    conn.close()
    assert states == {"sent"}


# ------------------------------------------------------------------ real processes


async def _post_all(
    url: str, bodies: list[dict], concurrency: int = 8, answered: list[int] | None = None
) -> list[int | None]:
    """Post concurrently; None where no answer came (the process died). `answered[0]` counts."""
    results: list[int | None] = [None] * len(bodies)
    answered = answered if answered is not None else [0]
    queue = list(enumerate(bodies))
    timeout = aiohttp.ClientTimeout(total=10)

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            i, body = queue.pop(0)
            try:
                async with session.post(url + WEBHOOK, json=body) as response:
                    results[i] = response.status
                    answered[0] += 1
            except (aiohttp.ClientError, TimeoutError):
                results[i] = None

    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return results


def _read(settings_path) -> tuple[list[str], list[dict], str | None, dict]:
    conn = sqlite3.connect(settings_path)
    try:
        lines = [r[0] for r in conn.execute("SELECT body FROM deliveries ORDER BY seq")]
        notes = [json.loads(r[0]) for r in conn.execute("SELECT body FROM notifications ORDER BY position")]
        clock = conn.execute("SELECT clock FROM checkpoint WHERE id = 1").fetchone()[0]
        states = Counter(r[0] for r in conn.execute("SELECT state FROM outbox"))
        return lines, notes, clock, states
    finally:
        conn.close()


@pytest.mark.slow
async def test_kill_9_mid_storm_then_restart_equals_an_uninterrupted_run(tmp_path):
    data = tmp_path / "data"
    sent = tmp_path / "sent.jsonl"
    config = config_file(tmp_path, data, extra=f"notifiers:\n  log: {{path: {sent}}}\n")
    start = now_ms() - timedelta(minutes=2)
    bodies = [body for _, body in storm(start, rounds=200, resolve_at=None)]
    random.Random(7).shuffle(bodies)  # replicas and groups interleave
    resolved = [body for _, body in storm(start, rounds=1, resolve_at=0)]
    first, second = bodies[:120], bodies[120:]
    # alerts first seen around the kill: each must end in its own page, none twice
    for i in range(30):
        labels = {
            "alertname": "KubePodCrashLooping",
            "namespace": "late",
            "pod": f"job-{i}",
            "severity": "warning",
        }
        second.insert(150 + 10 * i, payload([alert(f"late-{i}", start, labels)], "late"))
    progress = [0]

    proc = ServeProcess(config, tmp_path / "serve-1.log")
    try:
        assert set(await _post_all(proc.url, first)) == {200}
        await asyncio.sleep(2.0)  # past the 1s grace: the page is decided and sent
        in_flight = asyncio.create_task(_post_all(proc.url, second, concurrency=16, answered=progress))
        await until(lambda: progress[0] >= 300, timeout=30, step=0.001)
        proc.kill()  # SIGKILL in the middle of the storm
        answered = await in_flight
    finally:
        if proc.proc.poll() is None:
            proc.kill()
    lost = [body for body, status in zip(second, answered, strict=True) if status != 200]
    assert 0 < len(lost) < len(second), "the kill should land in the middle of the storm"
    before_lines, before_notes, _, _ = _read(data / "alert-router.sqlite")
    assert any(n["action"] == "page" for n in before_notes)

    proc = ServeProcess(config, tmp_path / "serve-2.log")
    try:
        # Alertmanager retries what got no 200, then the storm ends with everything resolved.
        assert set(await _post_all(proc.url, lost)) == {200}
        assert set(await _post_all(proc.url, resolved, concurrency=1)) == {200}
        await asyncio.sleep(3.5)  # resolves and the settle timers
        assert proc.terminate() == 0
    finally:
        if proc.proc.poll() is None:
            proc.kill()

    lines, notes, clock, states = _read(data / "alert-router.sqlite")
    assert lines[: len(before_lines)] == before_lines  # the log only grows
    assert len(lines) == len(before_lines) + len(lost) + len(resolved)
    # every notification once, and exactly those of an uninterrupted run over the same stream
    keys = [f"{n['incident']}:{n['action']}:{n['at']}" for n in notes]
    assert len(keys) == len(set(keys))
    pages = Counter(n["incident"] for n in notes if n["action"] == "page")
    assert pages and max(pages.values()) == 1
    assert {n["action"] for n in notes} >= {"page", "resolve"}
    assert {f"pod/default/late/job-{i}" for i in range(30)} <= {n["root"]["entity"] for n in notes}
    assert offline(lines, write_rules(tmp_path), parse_time(clock)) == notes
    # everything was delivered; a send interrupted by the kill may have gone out twice
    assert states == Counter({"sent": len(notes)})
    delivered = [json.loads(line) for line in sent.read_text().splitlines()]
    assert {json.dumps(n, sort_keys=True) for n in delivered} == {
        json.dumps(n, sort_keys=True) for n in notes
    }


@pytest.mark.slow
async def test_sigterm_finishes_requests_in_flight_and_drains(tmp_path):
    data = tmp_path / "data"
    sent = tmp_path / "sent.jsonl"
    config = config_file(tmp_path, data, extra=f"notifiers:\n  log: {{path: {sent}}}\n")
    start = now_ms() - timedelta(minutes=2)
    bodies = [body for _, body in storm(start, rounds=30, resolve_at=None)]
    proc = ServeProcess(config, tmp_path / "serve.log")
    try:
        assert set(await _post_all(proc.url, bodies[:20])) == {200}
        await asyncio.sleep(1.6)
        in_flight = asyncio.create_task(_post_all(proc.url, bodies[20:], concurrency=16))
        await asyncio.sleep(0.1)
        code = await asyncio.to_thread(proc.terminate)
        answered = await in_flight
    finally:
        if proc.proc.poll() is None:
            proc.kill()
    assert code == 0
    accepted = sum(1 for status in answered if status == 200)
    assert set(answered) <= {200, 503, None}
    lines, notes, _, states = _read(data / "alert-router.sqlite")
    assert len(lines) == 20 + accepted  # every 200 is in the log, nothing else
    assert notes and states == Counter({"sent": len(notes)})  # the outbox was drained
    log = (tmp_path / "serve.log").read_text()
    assert '"msg": "stopped"' in log


async def test_an_input_the_engine_raises_on_is_skipped_live_and_on_rebuild(tmp_path, monkeypatch):
    from router.core.engine import Engine

    settings = settings_for(tmp_path)
    real = Engine.ingest

    def ingest(self, delivery, now):
        if delivery.payload.receiver == "poison":
            raise RuntimeError("engine bug")
        return real(self, delivery, now)

    monkeypatch.setattr(Engine, "ingest", ingest)
    poison = dict(example(), receiver="poison")
    async with serving(settings) as svc:
        assert (await svc.post(poison))[0] == 200  # durable: it arrived, whatever the engine makes of it
        assert (await svc.post(example()))[0] == 200
        await until(lambda: svc.service.engine.counters["deliveries"] == 1)
        assert "alert_router_engine_errors_total 1.0" in (await svc.get("/metrics"))[1]
        assert (await svc.get("/healthz"))[0] == 200
    async with serving(settings) as svc:  # the rebuild skips it the same way
        assert svc.service.engine.counters["deliveries"] == 1
        assert len(svc.service.engine.incidents()) == 1


async def test_a_crashed_engine_loop_turns_healthz_red(tmp_path, monkeypatch):
    settings = settings_for(tmp_path)
    async with serving(settings) as svc:

        def broken(*args, **kwargs):
            raise RuntimeError("bug in the service")

        monkeypatch.setattr(svc.service, "_process_ready", broken)
        assert (await svc.post(example()))[0] == 200
        await until(lambda: svc.service.fatal is not None)
        status, body = await svc.get("/healthz")
        assert status == 503 and "bug in the service" in body["reason"]
        assert (await svc.get("/readyz"))[0] == 503


async def test_commit_timeout_withdraws_the_write_and_answers_503(tmp_path):
    import threading

    settings = settings_for(tmp_path, storage={"commit_timeout": "200ms"})
    async with serving(settings) as svc:
        gate, hanging = threading.Event(), threading.Event()

        def hang(conn):  # a commit that hangs (slow disk)
            hanging.set()
            gate.wait(5)

        stuck = svc.service.writer.submit(hang)
        # The delivery must queue behind the hung commit, not join its batch (a write already
        # being committed is not withdrawn: it lands and answers 200).
        await until(hanging.is_set)
        try:
            began = time.monotonic()
            status, answer = await svc.post(example())
            assert status == 503 and "in time" in answer["error"]
            assert time.monotonic() - began < 4.5  # answered before the stuck commit (5 s) ends
        finally:
            gate.set()
        await stuck.wait()
        assert (await svc.post(example()))[0] == 200
        await until(lambda: svc.service.engine.counters["deliveries"] == 1)
        assert svc.service.backlog() == 0
    assert rows(settings, "deliveries") == 1  # the withdrawn delivery was never written
