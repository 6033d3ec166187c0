"""The event log on a real SQLite file: migrations, group commit, atomic batches, idempotent
outputs, inputs back in sequence order, the exported stream, and portable SQL."""

from __future__ import annotations

import asyncio
import inspect
import re
import sqlite3
import threading
from datetime import timedelta

import pytest

from ground.errors import InputError
from router.core.model import WebhookPayload
from router.service import store, writer
from router.service.store import Outputs, Reader, SQLiteBackend, StorageUnavailable


@pytest.fixture
def backend(tmp_path):
    backend = SQLiteBackend(tmp_path / "log.sqlite", timedelta(milliseconds=200))
    conn = backend.connect()
    store.migrate(conn)
    conn.close()
    return backend


def payload() -> WebhookPayload:
    return WebhookPayload.model_validate(
        {"version": "4", "receiver": "r", "groupKey": "g", "status": "firing", "alerts": []}
    )


def line(at: str) -> str:
    return f'{{"received_at":"{at}","payload":{{"version":"4","alerts":[]}}}}'


def test_migrations_are_versioned_and_idempotent(tmp_path):
    backend = SQLiteBackend(tmp_path / "m.sqlite")
    conn = backend.connect()
    assert store.migrate(conn) == store.SCHEMA_VERSION
    assert store.migrate(conn) == store.SCHEMA_VERSION  # second start: nothing to do
    versions = conn.query("SELECT version, name FROM schema_version")
    assert [v for v, _ in versions] == [1, 2]
    assert conn.query("PRAGMA journal_mode")[0][0] == "wal"
    assert conn.query("PRAGMA synchronous")[0][0] == 2  # FULL
    conn.execute("INSERT INTO schema_version (version, name, applied_at) VALUES (99, 'future', 'x')")
    with pytest.raises(InputError, match="newer than this alert-router"):
        store.migrate(conn)
    conn.close()


def test_a_failed_migration_leaves_the_old_version(tmp_path, monkeypatch):
    backend = SQLiteBackend(tmp_path / "m.sqlite")
    conn = backend.connect()
    store.migrate(conn)
    monkeypatch.setattr(
        store, "MIGRATIONS", [*store.MIGRATIONS, (3, "broken", ["CREATE TABLE t2 (a TEXT)", "NOT SQL"])]
    )
    monkeypatch.setattr(store, "SCHEMA_VERSION", 3)
    with pytest.raises(sqlite3.OperationalError):
        store.migrate(conn)
    assert conn.query("SELECT MAX(version) FROM schema_version")[0][0] == 2
    assert not conn.query("SELECT name FROM sqlite_master WHERE name = 't2'")
    conn.close()


def test_inputs_come_back_in_sequence_order_in_chunks(backend):
    conn = backend.connect()
    conn.begin()
    for seq in range(1, 26):
        if seq % 5 == 0:
            store.write_action(
                conn, seq, f"2026-10-06T02:00:{seq:02d}.000Z", "inc-1", "acknowledge", "al", "", "api"
            )
        else:
            at = f"2026-10-06T02:00:{seq:02d}.000Z"
            store.write_delivery(conn, seq, at, "webhook", payload(), line(at))
    conn.commit()
    reader = Reader(conn)
    items = list(reader.inputs(chunk=3))
    assert [i.seq for i in items] == list(range(1, 26))
    assert [i.kind for i in items if i.seq % 5 == 0] == ["action"] * 5
    assert items[4].data == {"incident": "inc-1", "action": "acknowledge", "user": "al", "note": ""}
    assert [i.seq for i in reader.inputs(after=20)] == [21, 22, 23, 24, 25]
    window = list(reader.delivery_lines("2026-10-06T02:00:10.000Z", "2026-10-06T02:00:14.000Z"))
    assert window == [line(f"2026-10-06T02:00:{s}.000Z") for s in (11, 12, 13)]
    assert reader.max_ids()["seq"] == 25
    conn.close()


def outputs(seq: int, keys: list[str], notifiers=("log",)) -> Outputs:
    notes = [
        (k, 100 + i + seq * 10, "inc-1", "page", "2026-10-06T02:00:00.000Z", seq, "c", f'{{"k":"{k}"}}')
        for i, k in enumerate(keys)
    ]
    events = [(seq * 10 + i, seq, "2026-10-06T02:00:00.000Z", "paged", "inc-1", "{}") for i in range(2)]
    return Outputs(
        seq, "2026-10-06T02:00:00.000Z", events, notes, list(notifiers), "2026-10-06T02:00:01.000Z"
    )


def test_outputs_are_idempotent_by_key_and_move_the_checkpoint(backend):
    conn = backend.connect()
    reader = Reader(conn)
    conn.begin()
    store.write_outputs(conn, outputs(1, ["inc-1:0:page"], ("log", "hook")))
    conn.commit()
    conn.begin()  # a rebuild after a crash re-generates the same notification, plus a new one
    store.write_outputs(conn, outputs(2, ["inc-1:0:page", "inc-1:1:update"], ("log", "hook")))
    conn.commit()
    assert reader.notification_keys() == ["inc-1:0:page", "inc-1:1:update"]
    assert reader.checkpoint().input_seq == 2
    pending = reader.pending_outbox()
    assert [(r.key, r.notifier) for r in pending] == [
        ("inc-1:0:page", "hook"),
        ("inc-1:0:page", "log"),
        ("inc-1:1:update", "hook"),
        ("inc-1:1:update", "log"),
    ]
    assert {r.position for r in pending if r.key == "inc-1:0:page"} == {110}  # the original position
    conn.begin()
    store.write_attempt(conn, 1, "inc-1:0:page", "log", 1, "t", 5, None, "sent", "t", "t")
    store.write_attempt(conn, 2, "inc-1:0:page", "hook", 1, "t", 5, "HTTP 503", "pending", "t2", "t")
    conn.commit()
    assert reader.outbox_states()[("inc-1:0:page", "log")] == "sent"
    assert reader.outbox_summary()[0] == 3
    conn.close()


async def test_group_commit_batches_concurrent_writes_into_few_transactions(backend):
    loop = asyncio.get_running_loop()
    w = writer.Writer(backend.connect, loop, max_batch=1000)
    w.start()
    try:
        gate = threading.Event()
        w.submit(lambda conn: gate.wait(2))  # hold the writer busy while the others queue up
        at = "2026-10-06T02:00:00.000Z"
        writes = [
            w.submit(lambda conn, s=seq: store.write_delivery(conn, s, at, "webhook", payload(), line(at)))
            for seq in range(1, 201)
        ]
        gate.set()
        await asyncio.gather(*(x.future for x in writes))
        assert w.batches <= 3
    finally:
        await w.stop()
    conn = backend.connect()
    assert conn.query("SELECT COUNT(*) FROM deliveries")[0][0] == 200
    conn.close()


async def test_a_bad_write_is_isolated_and_a_locked_database_fails_the_batch(backend):
    loop = asyncio.get_running_loop()
    w = writer.Writer(backend.connect, loop, max_batch=1000)
    w.start()
    at = "2026-10-06T02:00:00.000Z"
    try:
        gate = threading.Event()
        w.submit(lambda conn: gate.wait(2))
        good = w.submit(lambda conn: store.write_delivery(conn, 1, at, "webhook", payload(), line(at)))
        bad = w.submit(
            lambda conn: store.write_delivery(conn, 1, at, "webhook", payload(), line(at))
        )  # same seq
        also_good = w.submit(lambda conn: store.write_delivery(conn, 2, at, "webhook", payload(), line(at)))
        gate.set()
        await asyncio.wait({good.future, bad.future, also_good.future})
        assert good.future.exception() is None and also_good.future.exception() is None
        assert isinstance(bad.future.exception(), sqlite3.IntegrityError)

        locker = sqlite3.connect(backend.path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            locked = w.submit(lambda conn: store.write_delivery(conn, 3, at, "webhook", payload(), line(at)))
            with pytest.raises(StorageUnavailable, match="locked"):
                await locked.future
            assert w.last_error_at is not None
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        # a queued write can be withdrawn; one being committed cannot
        gate2 = threading.Event()
        running = w.submit(lambda conn: gate2.wait(2))
        while running.state != "running":
            await asyncio.sleep(0.01)
        queued = w.submit(lambda conn: store.write_delivery(conn, 4, at, "webhook", payload(), line(at)))
        assert w.cancel(queued) and not w.cancel(running)
        gate2.set()
        await running.future
    finally:
        await w.stop()
    conn = backend.connect()
    assert [r[0] for r in conn.query("SELECT seq FROM deliveries ORDER BY seq")] == [1, 2]
    conn.close()


def test_queries_use_portable_sql_only():
    """Plain SQL that PostgreSQL runs too: PRAGMAs stay inside the SQLite backend."""
    source = inspect.getsource(store)
    outside = source.replace(store.__doc__ or "", "")
    for backend_class in (store.SQLiteConnection, store.SQLiteBackend):
        outside = outside.replace(inspect.getsource(backend_class), "")
    outside = "\n".join(line.split("#")[0] for line in outside.splitlines())
    for construct in (
        r"\bPRAGMA\b",
        r"AUTOINCREMENT",
        r"INSERT OR",
        r"REPLACE INTO",
        r"\browid\b",
        r"datetime\(",
        r"strftime\(",
        r"\bGLOB\b",
        r"IFNULL\(",
    ):
        assert not re.search(construct, outside, re.IGNORECASE), construct
    statements = [s for _, _, steps in store.MIGRATIONS for s in steps]
    assert all(not re.search(r"\buser\b", s) for s in statements)  # a reserved word in PostgreSQL
