"""Several replicas on one PostgreSQL event log: every replica records inputs, one leads.

Every replica answers webhooks and actions: the input is committed to the shared log (its seq and
time taken under the input head's lock, a retried body deduplicated) before the 200. Every
replica tails the log in seq order and applies each input to its own engine, so its API views
are current. One replica holds the leader lease: only its decisions are written (fenced by its
epoch) and only it runs the outbox. A follower that takes the lease rebuilds its engine from the
log (as a restart does: outputs past the checkpoint are written, notifications already recorded
are skipped by their idempotency key), then loads the pending outbox and goes on tailing. A
leader that cannot renew the lease in time stops deciding and sending and goes back to following.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from ground.times import format_time
from ground.waiting import until_set, within
from router.core.model import Delivery, WebhookPayload
from router.service import pgstore, store
from router.service.lease import Lease

if TYPE_CHECKING:
    from router.service.app import Pending, Service

log = logging.getLogger("alert_router.replica")

POLL = 0.05  # seconds between looks at the shared log for other replicas' inputs
BATCH = 1000  # inputs read and applied at once


class Replica:
    def __init__(self, service: Service, backend: pgstore.PostgresBackend) -> None:
        self.service = service
        self.backend = backend
        storage = service.settings.storage
        self.lease = Lease(backend.connect, storage.lease_ttl)
        self.dedup_window = storage.dedup_window
        self._tail: pgstore.PostgresConnection | None = None
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._wake = asyncio.Event()
        self._promoted = False  # the lease is held and the engine was rebuilt for it
        self.takeovers = 0
        self._head = 0  # the last seq recorded, as of the last look at the log
        # This replica's own deliveries, parsed already: applied without parsing the line again.
        self._parsed: dict[int, WebhookPayload] = {}

    def migrate(self, conn: store.Connection) -> int:
        assert isinstance(conn, pgstore.PostgresConnection)
        return pgstore.migrate(conn)

    # ------------------------------------------------------------------ inputs

    def submit_delivery(self, payload: WebhookPayload, body_text: str, source: str) -> Pending:
        from router.service.app import Pending

        svc = self.service
        assert svc.writer is not None
        at = svc.clock.now()
        now_text = format_time(at)
        since = format_time(at - self.dedup_window)
        body_digest = pgstore.digest(body_text)
        delivery = Delivery.model_construct(received_at=now_text, payload=payload)
        pending = Pending(0, "delivery", at, delivery)

        def apply(conn: store.Connection) -> int:
            seq = pgstore.record_delivery(conn, body_text, body_digest, now_text, since, source, payload)
            pending.seq = seq
            return seq

        pending.write = svc.writer.submit(apply)
        pending.write.future.add_done_callback(lambda f: self._recorded_delivery(payload, f))
        return pending

    def _recorded_delivery(self, payload: WebhookPayload, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            seq = int(future.result())
            if seq > self.service._processed_seq:
                self._parsed[seq] = payload
        self._wake.set()

    def submit_action(self, incident: str, action: str, user: str, note: str, source: str) -> Pending:
        from router.service.app import Pending

        svc = self.service
        assert svc.writer is not None
        at = svc.clock.now()
        now_text = format_time(at)
        data = {"incident": incident, "action": action, "user": user, "note": note}
        loop = asyncio.get_running_loop()
        pending = Pending(0, "action", at, data, applied=loop.create_future())

        def apply(conn: store.Connection) -> int:
            pgstore.lock_head(conn)
            seq, at_text = pgstore.claim_input(conn, now_text)
            store.write_action(conn, seq, at_text, incident, action, user, note, source)
            pending.seq = seq
            return seq

        pending.write = svc.writer.submit(apply)
        pending.write.future.add_done_callback(lambda f: self._recorded_action(pending, f))
        return pending

    def _recorded_action(self, pending: Pending, future: asyncio.Future[Any]) -> None:
        assert pending.applied is not None
        if future.cancelled() or future.exception() is not None:
            pending.applied.cancel()
            return
        if self.service._processed_seq >= pending.seq:
            pending.applied.set_result(None)
        else:
            self._waiters[pending.seq] = pending.applied
        self._wake.set()

    def backlog(self) -> int:
        """Inputs recorded (by any replica) that this replica's engine has not applied yet."""
        return max(0, self._head - self.service._processed_seq)

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """The engine task of a replica: lease, tail, apply, tick; forever."""
        svc = self.service
        loop = asyncio.get_running_loop()
        interval = svc.settings.runtime.tick_interval.total_seconds()
        next_lease = 0.0
        next_tick = loop.time() + interval
        while True:
            if loop.time() >= next_lease:
                await self._lease_step()
                next_lease = loop.time() + self.lease.ttl / 4
            if svc.leading and not self.lease.held:
                self.demote("the lease was not renewed in time")
            items = await self._read(svc._processed_seq)
            if items is None:  # the database is away: try again shortly
                await asyncio.sleep(POLL * 4)
                continue
            if items:
                self._apply(items)
                await asyncio.sleep(0)
                continue
            if loop.time() >= next_tick:
                self._tick()
                next_tick = loop.time() + interval
            self._wake.clear()
            await until_set(self._wake, POLL)

    async def _lease_step(self) -> None:
        if self.lease.epoch:
            renewed = await self.lease.renew()
            if renewed is False:
                self.demote("another replica holds the lease")
                return
            if renewed and not self._promoted:
                await self._promote()
            return
        if await self.lease.acquire():
            log.info("took the leader lease", extra={"holder": self.lease.holder, "epoch": self.lease.epoch})
            await self._promote()

    async def _read(self, after: int) -> list[store.Input] | None:
        def read() -> list[store.Input]:
            if self._tail is None:
                self._tail = self.backend.connect()
            conn = self._tail
            # One snapshot for both tables, so that the merged order has no holes.
            conn.begin_snapshot()
            try:
                self._head = int(conn.query("SELECT seq FROM input_head WHERE id = 1")[0][0])
                return list(islice(store.Reader(conn).inputs(after, BATCH), BATCH))
            finally:
                conn.rollback()

        try:
            return await within(asyncio.to_thread(read), self.lease.ttl / 2)
        except (TimeoutError, store.StorageUnavailable) as exc:
            if isinstance(exc, TimeoutError):
                self._tail = None
            self.service.metrics.storage_errors.inc()
            log.warning("cannot read the event log: %s", exc or "timeout")
            return None

    def _apply(self, items: list[store.Input]) -> None:
        svc = self.service
        leading = svc.leading
        produced: list[tuple[int, list[Any], list[Any]]] = []
        clock: datetime | None = None
        for item in items:
            payload = self._parsed.pop(item.seq, None) if item.kind == "delivery" else None
            if payload is not None:
                # The line is `{"received_at": item.at, "payload": <the body this replica parsed>}`.
                item = store.Input(
                    item.seq,
                    "parsed",
                    item.at,
                    Delivery.model_construct(received_at=item.at, payload=payload),
                )
            at, notes = svc._apply_recorded(item)
            events = svc._drain_events()
            svc._processed_seq = item.seq
            clock = at or clock
            waiter = self._waiters.pop(item.seq, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if leading and (notes or events):
                produced.append((item.seq, notes, events))
        if produced and clock is not None:
            svc._emit(svc._outputs(produced, clock))
        if leading:
            svc._ask_witness()
        elif svc.engine is not None:
            svc.engine.drain_checks()  # the leader asks

    def _tick(self) -> None:
        svc = self.service
        if svc.leading:
            svc._tick()
            return
        assert svc.engine is not None
        with contextlib.suppress(Exception):  # a follower's views only; the leader logs failures
            svc.engine.tick(svc.clock.now())
        svc._drain_events()
        svc.engine.drain_checks()

    # ------------------------------------------------------------------ roles

    async def _promote(self) -> None:
        """Rebuild the engine from the shared log as this lease's leader, then lead."""
        svc = self.service
        started = time.monotonic()
        fence = self.lease.fence()
        try:
            rebuilt = await svc.rebuild_as_leader(fence)
        except (store.StorageUnavailable, store.Fenced) as exc:
            log.warning("could not take over yet: %s", exc)
            return
        if not self.lease.held:
            return
        self._promoted = True
        self.takeovers += 1
        for seq in [s for s in self._parsed if s <= svc._processed_seq]:
            del self._parsed[seq]  # the rebuild applied them
        for seq in [s for s in self._waiters if s <= svc._processed_seq]:
            waiter = self._waiters.pop(seq)
            if not waiter.done():
                waiter.set_result(None)
        svc.leading = True
        log.info(
            "leading",
            extra={
                "holder": self.lease.holder,
                "epoch": self.lease.epoch,
                "inputs_replayed": rebuilt,
                "takeover_seconds": round(time.monotonic() - started, 3),
            },
        )
        svc.on_leading()

    def demote(self, why: str) -> None:
        svc = self.service
        if svc.leading or self._promoted:
            log.warning("stopped leading: %s", why, extra={"holder": self.lease.holder})
        svc.leading = False
        self._promoted = False
        self.lease.epoch = 0
        self.lease.valid_until = 0.0
        svc.stop_leading()

    async def stop(self) -> None:
        if svc_leading := self.service.leading:
            self.service.leading = False
        await self.lease.release()
        if svc_leading:
            log.info("released the leader lease")
        if self._tail is not None:
            self._tail.close()
            self._tail = None
