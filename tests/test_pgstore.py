"""The event log on a real PostgreSQL: the same migrations, inputs committed in sequence order
across sessions, retried bodies recorded once, the leader lease and its fencing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from router.core.model import WebhookPayload
from router.service import pgstore, store
from router.service.lease import Lease
from tests.pgharness import database, url_of
from tests.service_harness import ROOT


@pytest.fixture
def backend() -> Iterator[pgstore.PostgresBackend]:
    with database() as name:
        backend = pgstore.PostgresBackend(url_of(name), timedelta(seconds=2))
        conn = backend.connect()
        pgstore.migrate(conn)
        conn.close()
        yield backend


def payload() -> WebhookPayload:
    return WebhookPayload.model_validate(
        {"version": "4", "receiver": "r", "groupKey": "g", "status": "firing", "alerts": []}
    )


def record(conn: store.Connection, body: str, now: str, since: str) -> int:
    """What a replica's webhook write does, in its own transaction."""
    conn.begin()
    try:
        seq = pgstore.record_delivery(conn, body, pgstore.digest(body), now, since, "webhook", payload())
        conn.commit()
        return seq
    except BaseException:
        conn.rollback()
        raise


def test_the_same_migrations_run_once_even_when_replicas_start_together():
    with database() as name:
        backend = pgstore.PostgresBackend(url_of(name))
        results: list[int] = []
        errors: list[BaseException] = []

        def start() -> None:
            conn = backend.connect()
            try:
                results.append(pgstore.migrate(conn))
            except BaseException as exc:
                errors.append(exc)
            finally:
                conn.close()

        threads = [threading.Thread(target=start) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == [] and results == [store.SCHEMA_VERSION] * 3
        conn = backend.connect()
        assert [v for (v,) in conn.query("SELECT version FROM schema_version ORDER BY version")] == [1, 2]
        conn.close()


def test_inputs_commit_in_sequence_order_and_their_times_never_run_backwards(backend):
    first, second = backend.connect(), backend.connect()
    first.begin()
    seq1, _ = pgstore.claim_input(first, "2026-10-06T02:00:05.000Z")
    got: list[tuple[int, str]] = []
    # The second session's claim waits for the first transaction: no later seq can commit first.
    waiter = threading.Thread(target=lambda: got.append(record_claim(second, "2026-10-06T02:00:01.000Z")))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive() and got == []
    first.commit()
    waiter.join(10)
    # The slower replica's clock said 02:00:01: the input keeps the log's time order.
    assert got == [(seq1 + 1, "2026-10-06T02:00:05.000Z")]
    first.close()
    second.close()


def record_claim(conn: store.Connection, now: str) -> tuple[int, str]:
    conn.begin()
    claimed = pgstore.claim_input(conn, now)
    conn.commit()
    return claimed


def test_a_retried_body_is_recorded_once_within_the_window_and_again_after_it(backend):
    a, b = backend.connect(), backend.connect()
    body = '{"version":"4","receiver":"r","groupKey":"g","status":"firing","alerts":[]}'
    seq = record(a, body, "2026-10-06T02:00:00.000Z", "2026-10-06T01:59:00.000Z")
    assert record(b, body, "2026-10-06T02:00:30.000Z", "2026-10-06T01:59:30.000Z") == seq  # a retry
    other = body.replace('"g"', '"h"')
    assert record(b, other, "2026-10-06T02:00:31.000Z", "2026-10-06T01:59:31.000Z") == seq + 1
    later = record(a, body, "2026-10-06T02:02:00.000Z", "2026-10-06T02:01:00.000Z")  # window over
    assert later == seq + 2
    rows = a.query("SELECT seq, received_at, body FROM deliveries ORDER BY seq")
    assert [r[0] for r in rows] == [seq, seq + 1, seq + 2]
    # The recorded-stream line, with the time the log gave it, and the body as received.
    assert rows[0][2] == f'{{"received_at":"2026-10-06T02:00:00.000Z","payload":{body}}}'
    assert store.Reader(a).delivery_lines().__next__() == rows[0][2]
    a.close()
    b.close()


async def test_the_lease_has_one_holder_and_a_deposed_leader_cannot_write(backend):
    one = Lease(backend.connect, timedelta(seconds=2), holder="one")
    two = Lease(backend.connect, timedelta(seconds=2), holder="two")
    assert await one.acquire() and one.epoch == 1 and one.held
    assert not await two.acquire()  # held and not expired
    assert await one.renew() is True
    fence = one.fence()
    conn = backend.connect()
    conn.begin()
    fence(conn)  # still the leader: passes
    conn.rollback()

    await asyncio.sleep(2.1)  # `one` stopped renewing (a crash, a network cut)
    assert not one.held  # it stopped trusting its lease before the database let it go
    assert await two.acquire() and two.epoch == 2
    conn.begin()
    with pytest.raises(store.Fenced, match="epoch 1 is over"):
        fence(conn)  # a late write of the deposed leader
    conn.rollback()
    assert await one.renew() is False and one.epoch == 0
    await two.release()
    assert await one.acquire() and one.epoch == 3  # released: free at once
    conn.close()
    await one.release()


async def test_a_takeover_waits_for_the_old_leaders_write_in_progress(backend):
    one = Lease(backend.connect, timedelta(seconds=1), holder="one")
    two = Lease(backend.connect, timedelta(seconds=1), holder="two")
    assert await one.acquire()
    conn = backend.connect()
    conn.begin()
    one.fence()(conn)  # the old leader's decision write begins while its lease is valid
    conn.execute("UPDATE checkpoint SET input_seq = 7 WHERE id = 1")
    await asyncio.sleep(1.1)
    take = asyncio.create_task(two.acquire())
    await asyncio.sleep(0.3)
    assert not take.done()  # the new leader cannot take over in the middle of that write
    conn.commit()
    assert await take
    # ... and, once it has, reads the log with that write in it.
    reader = store.Reader(backend.connect())
    assert reader.checkpoint().input_seq == 7
    reader.conn.close()
    conn.close()


def test_two_replicas_recording_the_same_body_at_once_record_it_once(backend):
    a, b = backend.connect(), backend.connect()
    body = '{"version":"4","receiver":"r","groupKey":"g","status":"firing","alerts":[]}'
    now, since = "2026-10-06T02:00:00.000Z", "2026-10-06T01:59:00.000Z"
    a.begin()
    first = pgstore.record_delivery(a, body, pgstore.digest(body), now, since, "webhook", payload())
    got: list[int] = []
    other = threading.Thread(target=lambda: got.append(record(b, body, now, since)))
    other.start()
    other.join(0.5)
    assert other.is_alive()  # waits for the head lock: its dedup check must see a's insert
    a.commit()
    other.join(10)
    assert got == [first]
    assert a.query("SELECT COUNT(*) FROM deliveries")[0][0] == 1
    a.close()
    b.close()


def test_log_export_reads_the_shared_log(backend, tmp_path):
    conn = backend.connect()
    bodies = [
        json.dumps({"version": "4", "receiver": "r", "groupKey": f"g{i}", "status": "firing", "alerts": []})
        for i in range(3)
    ]
    for i, body in enumerate(bodies):
        record(conn, body, f"2026-10-06T02:00:0{i}.000Z", "2026-10-06T01:59:00.000Z")
    expected = list(store.Reader(conn).delivery_lines())
    conn.close()
    config = tmp_path / "config.yaml"
    config.write_text(f'storage:\n  url: "{backend.url}"\n')
    out = tmp_path / "exported.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "router.cli.main", "log", "export", "--config", str(config), "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text().splitlines() == expected and len(expected) == 3
    assert json.loads(result.stderr)["deliveries"] == 3
    assert "postgres:postgres@" not in result.stderr  # the URL's password is not shown
