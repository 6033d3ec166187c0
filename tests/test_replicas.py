"""Several replicas on one real PostgreSQL: real `alert-router serve` processes, a real webhook
receiver on loopback. Whatever happens to the leader (kill -9 mid-storm, its network to the
database cut, every database session terminated as a server restart does), the notifications are
those one uninterrupted engine decides on the shared log (same keys, same bodies), each delivered
once, and a delivery retried on another replica is recorded once."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web

from ground.times import parse_time
from router.core.engine import Engine
from router.core.model import parse_delivery_line
from router.core.settings import EngineSettings
from router.service import pgstore, store
from rules.ruleset import RuleSet
from tests.pgharness import PrivateServer, Proxy, database, terminate_sessions, url_of
from tests.service_harness import TOPOLOGY, ServeProcess, storm, write_rules
from topology.load import load_topology

LEASE_TTL = 2.0
WEBHOOK = "/api/v1/alertmanager"


class Receiver:
    """The notifications' webhook target: every request it got, by idempotency key."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> Receiver:
        async def hook(request: web.Request) -> web.Response:
            self.got.append((request.headers["X-Alert-Router-Key"], await request.json()))
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/hook", hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def replica_config(directory: Path, name: str, db_url: str, hook: str) -> Path:
    rules = write_rules(directory)
    path = directory / f"{name}.yaml"
    path.write_text(
        f"""
storage:
  data_dir: {directory / name}
  url: "{db_url}"
  lease_ttl: {LEASE_TTL}s
  busy_timeout: 1s
topology:
  files: [{TOPOLOGY}]
rules:
  files: [{rules}]
engine:
  inference: {{grace: 1}}
runtime:
  tick_interval: 0.05s
  drain_timeout: 2s
notifiers:
  webhooks:
    - {{name: hook, url: "{hook}", timeout: 2s}}
  retry: {{initial: 0.2s, maximum: 1s}}
logging:
  level: info
"""
    )
    return path


class Cluster:
    def __init__(self, tmp: Path, db_url: str, hook: str, urls: list[str]) -> None:
        """`db_url`: the shared database as the test reaches it; `urls`: as each replica does."""
        self.tmp, self.db_url, self.hook = tmp, db_url, hook
        self.procs = [
            ServeProcess(replica_config(tmp, f"r{i}", url, hook), tmp / f"r{i}.log")
            for i, url in enumerate(urls)
        ]
        self.down: set[int] = set()
        self.posted: list[str] = []
        self._next = 0

    def leader(self) -> int | None:
        holder = self.query("SELECT holder FROM leader_lease")[0][0]
        for i, proc in enumerate(self.procs):
            if holder and f"-{proc.proc.pid}-" in holder and i not in self.down:
                return i
        return None

    async def wait_leader(self, timeout: float = 15.0, not_: int | None = None) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            i = self.leader()
            if i is not None and i != not_ and await self._leading(i):
                return i
            await asyncio.sleep(0.05)
        raise AssertionError(f"no replica took the lease: {self.logs()}")

    async def _leading(self, i: int) -> bool:
        async with aiohttp.ClientSession() as s, s.get(self.procs[i].url + "/metrics") as r:
            return "alert_router_leader 1.0" in await r.text()

    async def post(self, body: dict[str, Any], prefer: int | None = None) -> int:
        """As Alertmanager: a 5xx or no answer is retried, here on the next replica."""
        data = json.dumps(body)
        self.posted.append(data)
        for attempt in range(200):
            i = prefer if prefer is not None and attempt == 0 else self._next % len(self.procs)
            self._next += 1
            if i in self.down:
                continue
            try:
                async with (
                    aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s,
                    s.post(
                        self.procs[i].url + WEBHOOK, data=data, headers={"Content-Type": "application/json"}
                    ) as r,
                ):
                    if r.status == 200:
                        return i
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.05)
        raise AssertionError("no replica recorded the delivery")

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return conn.execute(sql).fetchall()  # type: ignore[arg-type]

    def kill(self, i: int) -> None:
        self.procs[i].kill()
        self.down.add(i)

    def logs(self) -> str:
        return "\n".join(f"--- r{i}\n{p.log_path.read_text()[-3000:]}" for i, p in enumerate(self.procs))

    def stop(self) -> None:
        for i, proc in enumerate(self.procs):
            if i not in self.down:
                proc.terminate()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def post_storm(cluster: Cluster, start: datetime, during: Any = None) -> None:
    """The storm of tests/service_harness.py on a 2 s group interval, in real time; each HA pair
    delivery goes to one replica and its twin (the same body) to another. `during(k)` runs after
    the k-th delivery."""
    for k, (offset, body) in enumerate(storm(start, every=2.0)):
        wait = (start + timedelta(seconds=offset) - datetime.now(UTC)).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        await cluster.post(body)
        if during is not None:
            await during(k)


async def views_agree(cluster: Cluster, timeout: float = 10.0) -> None:
    """Every replica still up shows the same incidents in the same states: followers follow the
    log with their own engine (what the API of any replica behind the Service answers)."""
    deadline = time.monotonic() + timeout
    while True:
        views = []
        async with aiohttp.ClientSession() as s:
            for i, proc in enumerate(cluster.procs):
                if i in cluster.down:
                    continue
                async with s.get(proc.url + "/api/v1/incidents?limit=100") as r:
                    body = await r.json()
                views.append(sorted((inc["id"], inc["state"]) for inc in body["incidents"]))
        if views[0] and all(v == views[0] for v in views):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"replicas disagree: {views}")
        await asyncio.sleep(0.1)


def uninterrupted(cluster: Cluster, rules: Path, until: datetime) -> dict[str, dict]:
    """What one engine that never stopped decides on the shared log's inputs (deliveries and
    actions, in seq order, each at its recorded time), ticked to `until`: by key."""
    conn = pgstore.PostgresBackend(cluster.db_url).connect()
    try:
        items = list(store.Reader(conn).inputs())
    finally:
        conn.close()
    engine = Engine(load_topology([TOPOLOGY]), RuleSet.load([rules]), EngineSettings(inference={"grace": 1}))
    out = []
    for item in items:
        if item.kind == "delivery":
            delivery = parse_delivery_line(item.data)
            out.extend(engine.ingest(delivery, delivery.received))
        else:
            at = parse_time(item.at)
            assert at is not None
            data = item.data
            out.extend(engine.act(data["incident"], data["action"], data["user"], at, data["note"]))
    out.extend(engine.tick(until))
    return {n.key: n.to_dict() for n in out}


def live_of(cluster: Cluster) -> dict[str, dict]:
    rows = cluster.query("SELECT key, body FROM notifications ORDER BY position")
    return {key: json.loads(body) for key, body in rows}


async def settled(
    cluster: Cluster, rules: Path, receiver: Receiver, timeout: float = 30.0
) -> dict[str, dict]:
    """Wait until the shared log's notifications are those an uninterrupted engine decides on the
    shared log's inputs, and every one reached the receiver; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        expected = uninterrupted(cluster, rules, until=datetime.now(UTC) - timedelta(seconds=0.5))
        live = live_of(cluster)
        unsent = cluster.query("SELECT COUNT(*) FROM outbox WHERE state <> 'sent'")[0][0]
        received = {k for k, _ in receiver.got}
        if expected and set(expected) == set(live) and not unsent and set(expected) <= received:
            return expected
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not settled: expected {sorted(expected)}, live {list(live)}, unsent {unsent}, "
                f"received {sorted(received)}\n{cluster.logs()}"
            )
        await asyncio.sleep(0.2)


def check(cluster: Cluster, expected: dict[str, dict], receiver: Receiver, *, lost_records: int = 1) -> None:
    live = live_of(cluster)
    # The decisions of one uninterrupted engine over the same inputs: same keys, same bodies.
    assert live == expected
    assert {n["action"] for n in live.values()} >= {"page", "resolve"}
    # Delivered: every one, none twice, and what arrived is what was decided.
    counts = Counter(k for k, _ in receiver.got)
    assert set(counts) == set(expected)
    # None twice, but for the one window at-least-once delivery cannot close: a leader that sent
    # a notification and lost its database (or its life) before recording the send. The next
    # leader sends it again, same key and body (receivers dedupe on X-Alert-Router-Key). Such a
    # duplicate is one arrival more than the log's recorded sends, at most once per lost leader;
    # two recorded sends of one key would be a real double send.
    recorded = dict(cluster.query("SELECT key, COUNT(*) FROM outbound WHERE ok = 1 GROUP BY key"))
    unrecorded = {k: c - recorded.get(k, 0) for k, c in counts.items() if c > 1}
    assert all(extra == 1 for extra in unrecorded.values()), (unrecorded, recorded)
    assert len(unrecorded) <= lost_records, unrecorded
    for key, body in receiver.got:
        assert body == expected[key]
    # A delivery, its HA twin and the group's re-sends within the dedup window (the same body,
    # to whichever replica): one input. The storm has 50 deliveries of 10 different bodies.
    assert len(cluster.posted) == 50 and len(set(cluster.posted)) == 10
    assert cluster.query("SELECT COUNT(*) FROM deliveries")[0][0] == 10


@pytest.mark.parametrize("kill_after", [4, 15], ids=["pages-pending", "resolves-pending"])
async def test_kill_9_of_the_leader_mid_storm_loses_no_page_and_sends_none_twice(
    tmp_path, receiver, kill_after
):
    rules = write_rules(tmp_path)
    with database() as db:
        cluster = Cluster(tmp_path, url_of(db), receiver.url, [url_of(db)] * 3)
        try:
            first = await cluster.wait_leader()
            takeover: list[asyncio.Task[float]] = []

            async def timed() -> float:
                killed = time.monotonic()
                await cluster.wait_leader(not_=first)
                return time.monotonic() - killed

            async def during(k: int) -> None:
                # 4: every alert recorded, no grace over yet: the new leader pages. 15: both
                # pages out, the resolves to come. (Not at the moment a page goes out: a kill
                # between a send and its record repeats that send, with the same idempotency
                # key: at-least-once, docs/deploy.md.)
                if k == kill_after and not takeover:
                    cluster.kill(first)
                    takeover.append(asyncio.create_task(timed()))

            await post_storm(cluster, datetime.now(UTC) + timedelta(seconds=0.5), during)
            took = await takeover[0]
            # The lease expires after its TTL; the next renewal round takes it and rebuilds.
            assert took < LEASE_TTL * 2 + 1, took
            expected = await settled(cluster, rules, receiver)
            check(cluster, expected, receiver)
            await views_agree(cluster)
            epoch = cluster.query("SELECT epoch FROM leader_lease")[0][0]
            assert epoch >= 2
        finally:
            cluster.stop()


async def test_a_leader_cut_off_from_the_database_hands_over_and_comes_back_as_follower(tmp_path, receiver):
    rules = write_rules(tmp_path)
    with database() as db:
        proxies = [Proxy().start() for _ in range(2)]
        try:
            cluster = Cluster(tmp_path, url_of(db), receiver.url, [url_of(db, port=p.port) for p in proxies])
            try:
                first = await cluster.wait_leader()
                handover: list[asyncio.Task[int]] = []

                async def cut_until_handed_over() -> int:
                    proxies[first].cut()
                    second = await cluster.wait_leader(not_=first)
                    await asyncio.sleep(0.5)
                    proxies[first].restore()  # the old leader reaches the database again
                    return second

                async def during(k: int) -> None:
                    if k == 6 and not handover:  # mid-storm, its first page pending
                        handover.append(asyncio.create_task(cut_until_handed_over()))

                await post_storm(cluster, datetime.now(UTC) + timedelta(seconds=0.5), during)
                second = await handover[0]
                assert second != first
                expected = await settled(cluster, rules, receiver)
                check(cluster, expected, receiver)
                # The old leader follows again: it took the rest of the log into its own engine.
                await views_agree(cluster)
                async with aiohttp.ClientSession() as s, s.get(cluster.procs[first].url + "/metrics") as r:
                    text = await r.text()
                assert "alert_router_leader 0.0" in text
                log = cluster.procs[first].log_path.read_text()
                assert "stopped leading" in log
            finally:
                cluster.stop()
        finally:
            for p in proxies:
                p.close()


async def test_a_database_crash_and_restart_mid_storm_loses_nothing(tmp_path, receiver):
    """The database server itself crashes (`pg_ctl stop -m immediate`) mid-storm and comes back
    2 s later, recovering from its WAL: a server of the test's own, so that nothing else on the
    machine notices. Webhooks meanwhile get 503 and are retried, as Alertmanager does."""
    rules = write_rules(tmp_path)
    server = PrivateServer()
    try:
        db_url = server.create_database("alert_router")
        cluster = Cluster(tmp_path, db_url, receiver.url, [db_url] * 2)
        try:
            await cluster.wait_leader()
            restarted: list[asyncio.Task[None]] = []

            async def crash_and_restart() -> None:
                await asyncio.to_thread(server.crash)
                await asyncio.sleep(2.0)
                await asyncio.to_thread(server.start)

            async def during(k: int) -> None:
                if k == 6 and not restarted:  # the first page pending
                    restarted.append(asyncio.create_task(crash_and_restart()))

            await post_storm(cluster, datetime.now(UTC) + timedelta(seconds=0.5), during)
            await restarted[0]
            await cluster.wait_leader()
            expected = await settled(cluster, rules, receiver)
            check(cluster, expected, receiver)
            logs = cluster.logs()
            assert "storage unavailable" in logs  # the crash was seen, not slept through
        finally:
            cluster.stop()
    finally:
        server.close()


async def test_every_database_session_terminated_mid_storm_loses_nothing(tmp_path, receiver):
    """pg_terminate_backend of every session: what a server restart does to the replicas (the
    server itself stays up: restarting the machine's shared server would disturb other tests)."""
    rules = write_rules(tmp_path)
    with database() as db:
        cluster = Cluster(tmp_path, url_of(db), receiver.url, [url_of(db)] * 2)
        try:
            await cluster.wait_leader()
            terminated: list[int] = []

            async def during(k: int) -> None:
                if k in (5, 9, 13):
                    terminated.append(terminate_sessions(db))

            await post_storm(cluster, datetime.now(UTC) + timedelta(seconds=0.5), during)
            assert all(n > 0 for n in terminated), terminated
            await cluster.wait_leader()
            expected = await settled(cluster, rules, receiver)
            check(cluster, expected, receiver, lost_records=3)
        finally:
            cluster.stop()


async def test_a_drained_leader_hands_over_at_once_and_exits_cleanly(tmp_path, receiver):
    """SIGTERM (a node drain, a rolling update): the leader drains its outbox, releases the
    lease and exits 0; the other replica takes over before the lease would have expired."""
    rules = write_rules(tmp_path)
    with database() as db:
        cluster = Cluster(tmp_path, url_of(db), receiver.url, [url_of(db)] * 2)
        try:
            first = await cluster.wait_leader()
            handover: list[asyncio.Task[float]] = []

            async def timed() -> float:
                began = time.monotonic()
                code = await asyncio.to_thread(cluster.procs[first].terminate)
                assert code == 0, cluster.logs()
                await cluster.wait_leader(not_=first)
                return time.monotonic() - began

            async def during(k: int) -> None:
                if k == 15 and not handover:
                    cluster.down.add(first)
                    handover.append(asyncio.create_task(timed()))

            await post_storm(cluster, datetime.now(UTC) + timedelta(seconds=0.5), during)
            took = await handover[0]
            assert took < LEASE_TTL, took
            assert "released the leader lease" in cluster.procs[first].log_path.read_text()
            expected = await settled(cluster, rules, receiver)
            check(cluster, expected, receiver, lost_records=0)
        finally:
            cluster.stop()


async def test_an_acknowledgement_posted_to_a_follower_is_the_leaders_to_announce(tmp_path, receiver):
    """Actions, like webhooks, go to any replica: the follower records it in the shared log and
    answers once its own engine applied it; the leader decides and sends what follows."""
    rules = write_rules(tmp_path)
    with database() as db:
        cluster = Cluster(tmp_path, url_of(db), receiver.url, [url_of(db)] * 2)
        try:
            leader = await cluster.wait_leader()
            follower = 1 - leader
            acked: list[dict] = []

            async def during(k: int) -> None:
                if k == 12 and not acked:  # the node's page is out
                    async with aiohttp.ClientSession() as s:
                        async with s.get(cluster.procs[follower].url + "/api/v1/incidents") as r:
                            incidents = (await r.json())["incidents"]
                        (node,) = [i for i in incidents if i["root"]["entity"] == "node/default/worker-1"]
                        url = f"{cluster.procs[follower].url}/api/v1/incidents/{node['id']}/acknowledge"
                        async with s.post(url, json={"user": "alice", "note": "on it"}) as r:
                            assert r.status == 200, await r.text()
                            acked.append(await r.json())

            await post_storm(cluster, datetime.now(UTC) + timedelta(seconds=0.5), during)
            assert acked and acked[0]["acknowledged_by"] == "alice"
            assert cluster.query("SELECT actor, action FROM actions") == [("alice", "acknowledge")]
            expected = await settled(cluster, rules, receiver)
            check(cluster, expected, receiver, lost_records=0)
            assert any(n["action"] == "update" and "alice" in n["reason"] for n in expected.values())
            await views_agree(cluster)
        finally:
            cluster.stop()
