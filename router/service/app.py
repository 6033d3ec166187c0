"""The live service: the engine fed from the durable event log, one input at a time, in order.

Flow of an input (a delivery or a human action):
1. the HTTP handler validates it and `submit_*` gives it its time (a clock in milliseconds that
   never runs backwards) and its sequence number, and queues its write;
2. the writer commits it (group commit); only then does the handler answer 200;
3. the engine loop applies committed inputs strictly in sequence order (`ingest` / `act`), and
   queues the decision events and notifications it returns as one output write, which also moves
   the checkpoint; outputs are written one batch after another, never out of order;
4. once the outputs are committed, the outbox dispatcher sends the notifications.

Timers: when no input is waiting, the engine loop calls `engine.tick(now)` every tick interval.
A tick never runs ahead of an input that already has its time, so the live engine sees exactly
what `replay` of the recorded stream sees: inputs in order, each at its recorded time, timers at
their own due times. That is what makes the rebuild at start exact: the recorded inputs are fed
back, outputs already committed (up to the checkpoint) are dropped, later ones are written
(notifications whose key exists are skipped), and the state is the one before the stop or crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ground.errors import InputError
from ground.jsonio import canonical_json
from ground.times import format_time
from ground.waiting import until_set, within
from router.core.engine import Engine
from router.core.events import Event, Notification
from router.core.model import Delivery, WebhookPayload, parse_delivery_line
from router.service import store, wiring
from router.service.config import Settings
from router.service.metrics import Metrics
from router.service.outbox import Dispatcher, Entry, Notifier
from router.service.writer import Writer
from rules.ruleset import RuleSet
from topology.graph import Topology

if TYPE_CHECKING:  # the adapters are built by router.service.wiring
    from integrations.alertmanager import AlertmanagerClient
    from integrations.slack.interactions import SlackInteractions
    from router.service.prometheus_link import PrometheusLink

log = logging.getLogger("alert_router.service")

ACTIONS = ("acknowledge", "resolve", "silence")


class Clock:
    """The event log's clock: UTC, millisecond precision (what a recorded line keeps), never
    running backwards (the engine's clock does not either)."""

    def __init__(self, source: Callable[[], datetime] | None = None) -> None:
        self._source = source or (lambda: datetime.now(UTC))
        self._last: datetime | None = None

    def peek(self) -> datetime:
        return self._source()

    def now(self) -> datetime:
        t = self._source().astimezone(UTC)
        t = t.replace(microsecond=t.microsecond // 1000 * 1000)
        if self._last is not None and t < self._last:
            t = self._last
        self._last = t
        return t

    def not_before(self, moment: datetime) -> None:
        if self._last is None or moment > self._last:
            self._last = moment


@dataclass(eq=False)
class Pending:
    """An input with its time and sequence number, on its way through the writer to the engine."""

    seq: int
    kind: str  # delivery | action
    at: datetime
    data: Any  # Delivery, or the action's dict
    write: Any = None  # writer.Write
    arrived: float = field(default_factory=time.monotonic)
    applied: asyncio.Future[Any] | None = None  # actions: resolved once the engine applied it


class _Readers:
    """Read queries off the event loop, each thread with its own connection."""

    def __init__(self, backend: store.Backend) -> None:
        self._backend = backend
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="alert-router-read")
        self._conns: list[store.Connection] = []

    def _reader(self) -> store.Reader:
        reader = getattr(self._local, "reader", None)
        if reader is None:
            conn = self._backend.connect()
            self._conns.append(conn)
            reader = self._local.reader = store.Reader(conn)
        return reader

    async def run(self, fn: Callable[[store.Reader], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(self._reader()))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for conn in self._conns:
            conn.close()


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        notifiers: list[Notifier] | None = None,
        topology: Topology | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or Clock()
        self.metrics = Metrics()
        self._extra_notifiers = notifiers
        self._topology = topology
        self.engine: Engine | None = None
        self.writer: Writer | None = None
        self.dispatcher: Dispatcher | None = None
        self.readers: _Readers | None = None
        self.alertmanager: AlertmanagerClient | None = None
        self.slack_interactions: SlackInteractions | None = None
        self.prometheus: PrometheusLink | None = None
        # Several replicas on PostgreSQL (router/service/replica.py) or one on SQLite.
        self.replicated = settings.storage.replicated
        self.leading = not self.replicated  # decides and sends (replicas: while holding the lease)
        self.replica: Any = None
        self._fence: Callable[[store.Connection], None] | None = None
        self._new_engine: Callable[[], Engine] | None = None
        self._backend = self._open_backend()
        self._lock_handle: Any = None
        self._fifo: deque[Pending] = deque()
        self._new_input = asyncio.Event()
        self._engine_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._ids: dict[str, int] = {}
        self._processed_seq = 0
        self._out_pending: store.Outputs | None = None
        self._out_inflight: store.Outputs | None = None
        self._out_idle = asyncio.Event()
        self._out_idle.set()
        self._out_retry: asyncio.TimerHandle | None = None
        self._takeover_rows: list[store.OutboxRow] = []
        self._incident_ids: list[str] = []  # every incident, in the order it appeared
        self._incident_index: dict[str, int] = {}
        self._apart: dict[int, store.Outputs] = {}  # decisions the log refused, retried one by one
        self._apart_error = ""
        self._notifier_names: list[str] = wiring.notifier_names(settings, notifiers)
        self.started = False
        self.stopping = False
        self.fatal: str | None = None
        self.reconciled: dict[str, Any] | None = None

    # ================================================================== lifecycle

    def _open_backend(self) -> store.Backend:
        storage = self.settings.storage
        if not self.replicated:
            return store.SQLiteBackend(storage.path, storage.busy_timeout, storage.synchronous)
        from router.service import pgstore
        from router.service.replica import Replica

        backend = pgstore.backend_for(storage.resolved_url(), storage.busy_timeout)
        self.replica = Replica(self, backend)
        return backend

    async def start(self) -> None:
        if self.replicated:  # the leader lease stands for the data_dir lock
            await self._start()
            return
        self._lock_data_dir()
        try:
            await self._start()
        except BaseException:
            self._unlock_data_dir()
            raise

    async def _start(self) -> None:
        settings = self.settings
        conn = self._backend.connect()
        try:
            version = self.replica.migrate(conn) if self.replica else store.migrate(conn)
            reader = store.Reader(conn)
            self._ids = reader.max_ids()
            topology = self._topology
            if topology is None:
                from topology.load import load_topology

                topology = load_topology(settings.topology.files) if settings.topology.files else Topology()
            rules = RuleSet.load(settings.rules.files or None)
            engine_settings = settings.engine
            if settings.prometheus.url and settings.prometheus.witness:
                witness = engine_settings.witness.model_copy(update={"enabled": True})
                engine_settings = engine_settings.model_copy(update={"witness": witness})
            self._new_engine = lambda: Engine(topology, rules, engine_settings)
            self.engine = self._new_engine()
            started = time.monotonic()
            # A replica follows until it holds the lease: it decides nothing of its own yet.
            rebuilt = self._rebuild(conn, reader, write=self.leading)
            self.engine.drain_checks()  # questions of the past: their answers are in the log
            last = reader.last_input_time()
            pending_rows = reader.pending_outbox() if self.leading else []
        finally:
            conn.close()
        if last:
            self.clock.not_before(_parse(last))
        # The rebuilt state lives as long as the process: keep it out of the collector's scans,
        # so that full collections stay short under load.
        gc.collect()
        gc.freeze()
        log.info(
            "event log ready",
            extra={
                "path": self._backend.describe(),
                "schema_version": version,
                "inputs_replayed": rebuilt,
                "rebuild_seconds": round(time.monotonic() - started, 3),
                "incidents": len(self.engine.incidents()),
                "outbox_pending": len(pending_rows),
            },
        )
        loop = asyncio.get_running_loop()
        self.writer = Writer(self._backend.connect, loop, settings.storage.max_batch)
        self.writer.on_batch = lambda n, _s: loop.call_soon_threadsafe(self.metrics.batch_size.observe, n)
        self.writer.start()
        self.readers = _Readers(self._backend)
        self.dispatcher = Dispatcher(
            wiring.build_notifiers(settings, self._extra_notifiers, self.incident_view),
            self._record_attempt,
            settings.notifiers.retry,
            self.metrics,
        )
        self.dispatcher.add(
            [Entry(r.key, r.notifier, r.position, r.incident, r.body, r.attempts) for r in pending_rows]
        )
        if self.replica is not None:
            # Nothing leaves once the lease may have passed, even before the loop notices.
            self.dispatcher.gate = lambda: self.leading and bool(self.replica.lease.held)
        self.dispatcher.start()
        self.metrics.bind(lambda: self.engine.counters if self.engine else {}, self._gauges)
        self.prometheus = wiring.build_prometheus_link(self, settings, topology)
        if self.prometheus is not None:
            await self.prometheus.start()
        engine_loop = self.replica.run() if self.replica else self._engine_loop()
        self._engine_task = asyncio.create_task(engine_loop, name="engine")
        self._engine_task.add_done_callback(self._engine_stopped)
        self.alertmanager = wiring.build_alertmanager(settings)
        if self.alertmanager is not None and settings.alertmanager.reconcile:
            self._spawn(self._reconcile_loop(settings.alertmanager.reconcile_interval.total_seconds()))
        self.slack_interactions = wiring.build_slack_interactions(
            settings, self.act_from_slack, self.incident_view, self.alertmanager
        )
        self.started = True

    def incident_view(self, incident: str) -> dict[str, Any] | None:
        """Through the service, not a bound method: a replica's takeover replaces the engine."""
        return self.engine.incident(incident) if self.engine is not None else None

    async def stop(self) -> None:
        """After the HTTP server stopped accepting: let the engine catch up, commit its outputs,
        drain the outbox (bounded), close the log."""
        if self.stopping:
            return
        self.stopping = True
        drain = self.settings.runtime.drain_timeout.total_seconds()
        deadline = time.monotonic() + drain
        if self.replica is not None and self.leading:
            # Nothing is sent once the lease may have passed to another replica.
            deadline = min(deadline, self.replica.lease.valid_until)
        if self.prometheus is not None:
            await self.prometheus.stop()
        for task in list(self._background):
            task.cancel()
        engine_alive = self._engine_task is not None and not self._engine_task.done()
        while engine_alive and self._fifo and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._engine_task is not None:
            self._engine_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a crash is logged already
                await self._engine_task
        await until_set(self._out_idle, max(0.1, deadline - time.monotonic()))
        if self._apart:
            log.error("%d decision(s) not recorded at shutdown: %s", len(self._apart), self._apart_error)
        if self.dispatcher is not None:
            drained = await self.dispatcher.drain(max(0.1, deadline - time.monotonic()))
            if not drained:
                log.warning(
                    "outbox not empty at shutdown: the rest goes out after the restart",
                    extra={"pending": self.dispatcher.pending()},
                )
            await self.dispatcher.stop()
        if self.alertmanager is not None:
            await self.alertmanager.close()
        if self.slack_interactions is not None:
            await self.slack_interactions.close()
        if self.replica is not None:
            await self.replica.stop()
        if self.writer is not None:
            await self.writer.stop()
        if self.readers is not None:
            self.readers.close()
        self._unlock_data_dir()
        log.info("stopped", extra={"processed_seq": self._processed_seq})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _lock_data_dir(self) -> None:
        data_dir = self.settings.storage.data_dir
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            handle = open(data_dir / "alert-router.lock", "a+")  # noqa: SIM115 - held while running
        except OSError as exc:
            raise InputError(f"storage.data_dir: cannot use {data_dir}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise InputError(
                f"storage.data_dir: {data_dir} is in use by another alert-router (one writer per event log)"
            ) from None
        self._lock_handle = handle

    def _unlock_data_dir(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    # ================================================================== rebuild

    def _rebuild(self, conn: store.Connection, reader: store.Reader, write: bool = True) -> int:
        """Feed the recorded inputs back; write the outputs of those past the checkpoint (unless
        `write` is False: a replica that follows)."""
        engine = self.engine
        assert engine is not None
        checkpoint = reader.checkpoint()
        done_clock = _parse(checkpoint.clock) if checkpoint.clock else None
        caught_up = done_clock is None
        outputs: list[tuple[int, list[Notification], list[Event]]] = []
        count = 0
        last_at: datetime | None = None
        for item in reader.inputs():
            if not caught_up and item.seq > checkpoint.input_seq:
                assert done_clock is not None
                engine.tick(done_clock)  # timers that fired live after the checkpointed input
                self._drain_events()
                caught_up = True
            at, notes = self._apply_recorded(item)
            last_at = at or last_at
            events = self._drain_events()
            count += 1
            self._processed_seq = item.seq
            if item.seq > checkpoint.input_seq and (notes or events):
                outputs.append((item.seq, notes, events))
        if not caught_up and done_clock is not None:
            engine.tick(done_clock)
            self._drain_events()
        clock = max(filter(None, [last_at, done_clock]), default=None)
        if outputs and clock is not None and write:
            self._write_rebuilt(conn, self._outputs(outputs, clock))
        return count

    async def rebuild_as_leader(self, fence: Callable[[store.Connection], None]) -> int:
        """A replica that took the lease: a new engine from the whole shared log, the outputs past
        the checkpoint written under `fence`; returns the inputs replayed. (On the event loop:
        nothing else may touch the engine meanwhile.)"""
        assert self._new_engine is not None
        self._fence = fence
        conn = self._backend.connect()
        try:
            reader = store.Reader(conn)
            self._ids = reader.max_ids()
            self.engine = self._new_engine()
            self._incident_ids, self._incident_index, self._processed_seq = [], {}, 0
            count = self._rebuild(conn, reader)
            self.engine.drain_checks()
            self._takeover_rows = reader.pending_outbox()
        except BaseException:
            self._fence = None
            raise
        finally:
            conn.close()
        return count

    def on_leading(self) -> None:
        """This replica leads now: send what the log says is pending."""
        rows, self._takeover_rows = self._takeover_rows, []
        if self.dispatcher is not None:
            self.dispatcher.add(
                [Entry(r.key, r.notifier, r.position, r.incident, r.body, r.attempts) for r in rows]
            )

    def stop_leading(self) -> None:
        """The lease is lost: decide and send nothing more; what was queued is the next leader's."""
        self.leading = False
        self._fence = None
        if self.dispatcher is not None:
            self.dispatcher.clear()
        self._out_pending = None
        if self._out_retry is not None:
            self._out_retry.cancel()
            self._out_retry = None
        self._apart.clear()
        if self._out_inflight is None:
            self._out_idle.set()

    def _write_rebuilt(self, conn: store.Connection, outputs: store.Outputs) -> None:
        """The rebuild's outputs in one transaction; if the log refuses a row for its own reason,
        the others are written one by one and that one is dropped (logged), as live: a bad row
        must not keep the service from starting."""
        try:
            _transaction(conn, outputs, self._fence)
            return
        except store.TRANSIENT_ERRORS:
            raise
        except Exception as exc:
            log.error("decisions of the rebuild not recorded: %r; writing them one by one", exc)
        checkpoint, rows = outputs.apart()
        _transaction(conn, checkpoint, self._fence)
        for row in rows:
            try:
                _transaction(conn, row, self._fence)
            except store.TRANSIENT_ERRORS:
                raise
            except Exception as exc:
                what, incident = row.describe()
                self.metrics.decisions_dropped.inc()
                log.error("decision dropped at start: %s: %r", what, exc, extra={"incident": incident})

    def _apply_recorded(self, item: store.Input) -> tuple[datetime | None, list[Notification]]:
        engine = self.engine
        assert engine is not None
        try:
            if item.kind in ("delivery", "parsed"):  # parsed: a replica's own, Delivery already
                delivery = item.data if item.kind == "parsed" else parse_delivery_line(item.data)
                return delivery.received, engine.ingest(delivery, delivery.received)
            at = _parse(item.at)
            return at, _apply_action(engine, item.data, at)
        except Exception as exc:
            # The same input fails the same way live and in every rebuild: skip it, loudly.
            self.metrics.engine_errors.inc()
            log.error("input %d (%s) could not be applied: %r", item.seq, item.kind, exc, exc_info=True)
            return None, []

    # ================================================================== inputs

    def _next(self, name: str) -> int:
        self._ids[name] = self._ids.get(name, 0) + 1
        return self._ids[name]

    def submit_delivery(self, payload: WebhookPayload, body_text: str, source: str = "webhook") -> Pending:
        """Give a validated delivery its time and sequence number and queue its write.
        `body_text` is the payload JSON on one line, stored as received (unknown fields kept)."""
        if self.replica is not None:
            return self.replica.submit_delivery(payload, body_text, source)
        assert self.writer is not None
        at = self.clock.now()
        at_text = format_time(at)
        seq = self._next("seq")
        line = f'{{"received_at":"{at_text}","payload":{body_text}}}'
        delivery = Delivery.model_construct(received_at=at_text, payload=payload)  # both validated
        pending = Pending(seq, "delivery", at, delivery)
        pending.write = self.writer.submit(
            lambda conn: store.write_delivery(conn, seq, at_text, source, payload, line)
        )
        self._enqueue(pending)
        return pending

    def submit_action(self, incident: str, action: str, user: str, note: str, source: str) -> Pending:
        if self.replica is not None:
            return self.replica.submit_action(incident, action, user, note, source)
        assert self.writer is not None
        at = self.clock.now()
        at_text = format_time(at)
        seq = self._next("seq")
        data = {"incident": incident, "action": action, "user": user, "note": note}
        pending = Pending(seq, "action", at, data, applied=asyncio.get_running_loop().create_future())
        pending.write = self.writer.submit(
            lambda conn: store.write_action(conn, seq, at_text, incident, action, user, note, source)
        )
        self._enqueue(pending)
        return pending

    def _enqueue(self, pending: Pending) -> None:
        self._fifo.append(pending)
        self._new_input.set()

    async def act(
        self, incident: str, action: str, user: str, note: str = "", source: str = "api"
    ) -> dict[str, Any]:
        """A human action: recorded durably, then applied. KeyError for an unknown incident."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        assert self.engine is not None
        if self.engine.incident(incident) is None:
            raise KeyError(incident)
        pending = self.submit_action(incident, action, user or "someone", note, source)
        await pending.write.wait()  # StorageUnavailable propagates: nothing was recorded
        assert pending.applied is not None
        await pending.applied
        view = self.engine.incident(incident)
        assert view is not None
        return view

    async def act_from_slack(self, incident: str, action: str, user: str, note: str) -> None:
        await self.act(incident, action, user, note, source="slack")

    # ================================================================== engine loop

    def _engine_stopped(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # A bug outside the engine's own input handling: stop being healthy so that the
            # process is restarted; the restart rebuilds the exact state from the log.
            self.fatal = f"engine loop crashed: {exc!r}"
            log.critical(self.fatal, exc_info=exc)

    async def _engine_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.settings.runtime.tick_interval.total_seconds()
        next_tick = loop.time() + interval
        while True:
            if self._fifo:
                head = self._fifo[0]
                if not head.write.settled.done():
                    await head.write.settled
                    continue
                self._process_ready()
                await asyncio.sleep(0)  # let the answers go out before the next batch
                continue
            wait = next_tick - loop.time()
            if wait <= 0:
                self._tick()
                next_tick = loop.time() + interval
                continue
            self._new_input.clear()
            await until_set(self._new_input, wait)

    def _process_ready(self, limit: int = 1000) -> None:
        engine = self.engine
        assert engine is not None
        produced: list[tuple[int, list[Notification], list[Event]]] = []
        clock: datetime | None = None
        now = time.monotonic()
        count = 0
        while self._fifo and self._fifo[0].write.settled.done() and count < limit:
            pending = self._fifo.popleft()
            count += 1
            if pending.write.state != "done":
                if pending.applied is not None and not pending.applied.done():
                    pending.applied.cancel()
                continue  # not recorded: as if it never arrived (the sender got a 5xx)
            notes = self._apply_live(pending)
            events = self._drain_events()
            self._processed_seq = pending.seq
            clock = pending.at
            self.metrics.decision_seconds.observe(now - pending.arrived)
            if notes or events:
                produced.append((pending.seq, notes, events))
        if produced and clock is not None:
            self._emit(self._outputs(produced, clock))
        self._ask_witness()

    def _drain_events(self) -> list[Event]:
        """The engine's new decision events; notes every incident they name, in the order the
        incidents appear (the API pages through them in that order)."""
        assert self.engine is not None
        events = self.engine.drain_events()
        for event in events:
            incident = event.incident
            if incident is not None and incident not in self._incident_index:
                self._incident_index[incident] = len(self._incident_ids)
                self._incident_ids.append(incident)
        return events

    def incident_page(
        self, state: str | None, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `limit` incident views (of `state`, if given) after incident `after`, oldest
        first, and the id to continue after when there are more. KeyError: unknown `after`."""
        assert self.engine is not None
        start = 0 if after is None else self._incident_index[after] + 1
        page: list[dict[str, Any]] = []
        for incident in self._incident_ids[start:]:
            view = self.engine.incident(incident)
            if view is None or (state is not None and view["state"] != state):
                continue
            if len(page) == limit:
                return page, page[-1]["id"]
            page.append(view)
        return page, None

    def _ask_witness(self) -> None:
        checks = self.engine.drain_checks() if self.engine is not None else []
        if checks and self.prometheus is not None:
            self.prometheus.ask(checks)

    def _apply_live(self, pending: Pending) -> list[Notification]:
        engine = self.engine
        assert engine is not None
        try:
            if pending.kind == "delivery":
                notes = engine.ingest(pending.data, pending.at)
            else:
                notes = _apply_action(engine, pending.data, pending.at)
            if pending.applied is not None and not pending.applied.done():
                pending.applied.set_result(None)
            return notes
        except Exception as exc:
            self.metrics.engine_errors.inc()
            log.error("input %d (%s) could not be applied: %r", pending.seq, pending.kind, exc, exc_info=True)
            if pending.applied is not None and not pending.applied.done():
                pending.applied.set_exception(exc)
                pending.applied.exception()
            return []

    def _tick(self) -> None:
        engine = self.engine
        assert engine is not None
        now = self.clock.now()
        try:
            notes = engine.tick(now)
        except Exception as exc:
            self.metrics.engine_errors.inc()
            log.error("engine tick failed: %r", exc, exc_info=True)
            notes = []
        events = self._drain_events()
        if notes or events:
            self._emit(self._outputs([(self._processed_seq, notes, events)], now))
        self._ask_witness()

    # ================================================================== outputs

    def _outputs(
        self, produced: list[tuple[int, list[Notification], list[Event]]], clock: datetime
    ) -> store.Outputs:
        created = format_time(self.clock.peek())
        events = []
        notifications: list[tuple[str, int, str, str, str, int, str, str]] = []
        for seq, notes, evs in produced:
            for event in evs:
                body = event.to_dict()
                events.append(
                    (self._next("event"), seq, body["at"], event.kind, event.incident, canonical_json(body))
                )
            for note in notes:
                body = note.to_dict()
                notifications.append(
                    (
                        note.key,
                        self._next("position"),
                        note.incident,
                        note.action,
                        body["at"],
                        seq,
                        created,
                        canonical_json(body),
                    )
                )
                log.info(
                    "decided %s: %s",
                    note.action,
                    note.reason,
                    extra={"incident": note.incident, "key": note.key, "severity": note.severity},
                )
        notifiers = list(self._notifier_names)
        return store.Outputs(produced[-1][0], format_time(clock), events, notifications, notifiers, created)

    def _emit(self, outputs: store.Outputs) -> None:
        """Outputs are committed one batch at a time, in order; a failed batch is retried."""
        self._out_pending = outputs if self._out_pending is None else self._out_pending.merge(outputs)
        self._out_idle.clear()
        if self._out_inflight is None and self._out_retry is None:
            self._flush_outputs()

    def _flush_outputs(self) -> None:
        assert self.writer is not None
        self._out_retry = None
        outputs, self._out_pending = self._out_pending, None
        if outputs is None:
            self._out_idle.set()
            return
        self._out_inflight = outputs
        write = self.writer.submit(self._output_write(outputs))
        write.settled.add_done_callback(lambda _: self._outputs_done(write))

    def _output_write(self, outputs: store.Outputs) -> Callable[[store.Connection], None]:
        """The write of decisions; a replica's runs its leadership's fence first."""
        fence, replicated = self._fence, self.replicated

        def apply(conn: store.Connection) -> None:
            if replicated and fence is None:
                raise store.Fenced("not the leader")
            if fence is not None:
                fence(conn)
            store.write_outputs(conn, outputs)

        return apply

    def _outputs_done(self, write: Any) -> None:
        outputs, self._out_inflight = self._out_inflight, None
        assert outputs is not None
        if write.state != "done" and (isinstance(_failure(write), store.Fenced) or not self.leading):
            # Another replica leads: these decisions are its to make again from the log.
            log.warning("decisions not recorded, this replica no longer leads: %s", _failure(write))
            self._out_pending = None
            self._out_idle.set()
            if self.replica is not None and self.leading:
                self.replica.demote(str(_failure(write)))
            return
        if write.state != "done":
            failure = _failure(write)
            self.metrics.storage_errors.inc()
            if isinstance(failure, store.StorageUnavailable) or not outputs.rows:
                # The log takes no write now (/readyz says so): keep the order, retry it all.
                log.error("decisions not recorded yet, retrying in 1s: %r", failure)
                self._out_pending = outputs if self._out_pending is None else outputs.merge(self._out_pending)
                self._out_retry = asyncio.get_running_loop().call_later(1.0, self._flush_outputs)
                return
            # A row the log refuses for its own reason: it must not hold up the decisions that
            # follow. The checkpoint moves on in order; each row is written apart, and retried.
            log.error("decisions not recorded: %r; writing them one by one", failure)
            checkpoint, rows = outputs.apart()
            self._out_pending = (
                checkpoint if self._out_pending is None else checkpoint.merge(self._out_pending)
            )
            for row in rows:
                self._write_apart(row, 1)
        else:
            self._dispatch(outputs)
        if self._out_pending is not None:
            self._flush_outputs()
        else:
            self._out_idle.set()

    def _dispatch(self, outputs: store.Outputs) -> None:
        if self.dispatcher is not None and outputs.notifications and self.leading:
            entries = [
                Entry(row[0], notifier, row[1], row[2], row[7])
                for row in outputs.notifications
                for notifier in outputs.notifiers
            ]
            self.dispatcher.add(entries)

    def _write_apart(self, row: store.Outputs, attempt: int) -> None:
        """One decision written on its own, retried with backoff up to
        `runtime.decision_write_attempts`, then dropped (logged and counted). /readyz fails while
        any is waiting."""
        assert self.writer is not None
        self._apart[id(row)] = row
        write = self.writer.submit(self._output_write(row))
        write.settled.add_done_callback(lambda _: self._apart_done(row, write, attempt))

    def _apart_done(self, row: store.Outputs, write: Any, attempt: int) -> None:
        what, incident = row.describe()
        if write.state == "done":
            del self._apart[id(row)]
            self._dispatch(row)
            log.info("decision recorded after %d attempts: %s", attempt, what, extra={"incident": incident})
            return
        failure = _failure(write)
        if isinstance(failure, store.Fenced) or id(row) not in self._apart:
            self._apart.pop(id(row), None)  # no longer the leader: the next one writes it
            return
        self._apart_error = f"{what}: {failure!r}"
        if isinstance(failure, store.StorageUnavailable) and not self.stopping:
            # The log takes no write at all now: not this row's fault, not an attempt.
            asyncio.get_running_loop().call_later(1.0, self._write_apart, row, attempt)
            return
        if attempt >= self.settings.runtime.decision_write_attempts or self.stopping:
            del self._apart[id(row)]
            self.metrics.decisions_dropped.inc()
            log.error(
                "decision dropped after %d attempts: %s: %r",
                attempt,
                what,
                failure,
                extra={"incident": incident},
            )
            return
        delay = 2.0 ** (attempt - 1)
        asyncio.get_running_loop().call_later(delay, self._write_apart, row, attempt + 1)

    async def _record_attempt(
        self, entry: Entry, attempt: int, error: str | None, state: str, delay: float, duration: float
    ) -> None:
        assert self.writer is not None
        now = self.clock.peek()
        started = format_time(now - timedelta(seconds=duration))
        next_at = format_time(now + timedelta(seconds=delay))
        outbound_id = self._next("outbound")
        fence = self._fence

        def apply(conn: store.Connection) -> None:
            if fence is not None:
                fence(conn)  # a deposed leader's late record would collide with the new one's
            store.write_attempt(
                conn,
                outbound_id,
                entry.key,
                entry.notifier,
                attempt,
                started,
                int(duration * 1000),
                error,
                state,
                next_at,
                format_time(now),
            )

        for attempt_no in range(3):
            write = self.writer.submit(apply)
            try:
                await write.wait()
                return
            except store.StorageUnavailable:
                if attempt_no == 2 or self.stopping:
                    raise
                await asyncio.sleep(1.0)

    # ================================================================== reconcile

    async def _reconcile_loop(self, interval: float) -> None:
        # Without a receiver filter the API lists alerts routed elsewhere too, none of the
        # router's business: reconcile then only resolves what it received and what ended.
        filtered = bool(self.settings.alertmanager.receiver)
        while not self.leading:  # a replica reconciles while it leads
            await asyncio.sleep(1.0)
        await self.reconcile(firing="all" if filtered else "none")
        periodic = "new" if filtered else "none"
        while interval > 0 and not self.stopping:
            await asyncio.sleep(interval)
            if not self.leading:
                continue
            try:
                await self.reconcile(firing=periodic, attempts=1)
            except Exception:  # a failed round must not end the loop: the next one may work
                log.exception("periodic reconcile failed")

    async def reconcile(self, *, firing: str = "all", attempts: int = 5) -> dict[str, Any] | None:
        """Ask Alertmanager what fires now; record the difference as a synthetic delivery. At
        start everything firing is recorded (a restart may have missed anything); periodically
        only what differs from what the router believes (`firing`: see reconcile_payload)."""
        assert self.alertmanager is not None and self.engine is not None
        from router.core.model import parse_webhook

        settings = self.settings.alertmanager
        for attempt in range(attempts):
            # What we believe *before* asking: an alert that arrives meanwhile is not resolved.
            believed = [
                {
                    "fingerprint": a.fingerprint,
                    "startsAt": a.starts_at,
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "generatorURL": a.generator_url,
                }
                for a in self.engine.alerts.values()
                if a.firing
            ]
            snapshot = await self.alertmanager.snapshot(self.clock.peek())
            if not snapshot.answered:
                log.warning(
                    "reconcile: no Alertmanager answered (attempt %d): %s", attempt + 1, snapshot.failed
                )
                if attempt + 1 < attempts:
                    await asyncio.sleep(min(30, 2**attempt))
                continue
            firing_now = {fp for fp, a in self.engine.alerts.items() if a.firing}
            believed = [b for b in believed if b["fingerprint"] in firing_now]
            payload, sent_firing, resolved = snapshot.difference(
                believed, self.clock.peek(), settings.min_uptime, firing=firing
            )
            result = {
                "firing": sent_firing,
                "resolved": resolved,
                "complete": snapshot.complete,
                "failed": snapshot.failed,
            }
            if payload is not None:
                text = canonical_json(payload)
                pending = self.submit_delivery(parse_webhook(payload), text, source="reconcile")
                await pending.write.wait()
                self.metrics.deliveries.labels("reconcile").inc()
                result["seq"] = pending.seq
            # A periodic round that changed nothing is not worth a line at info level.
            quiet = firing != "all" and payload is None
            (log.debug if quiet else log.info)("reconciled with Alertmanager", extra=result)
            self.reconciled = result
            return result
        return None

    # ================================================================== health

    def ready(self) -> tuple[bool, str]:
        if self.fatal:
            return False, self.fatal
        if not self.started or self.stopping:
            return False, "starting" if not self.started else "stopping"
        writer = self.writer
        assert writer is not None
        if writer.last_error_at is not None and (
            writer.last_ok is None or writer.last_ok < writer.last_error_at
        ):
            return False, f"storage unavailable: {writer.last_error}"
        if self.backlog() >= self.settings.runtime.max_backlog:
            return False, f"engine behind by {self.backlog()} inputs"
        if self._apart:
            return False, f"{len(self._apart)} decision(s) not recorded, retrying: {self._apart_error}"
        return True, "ok"

    async def probe_storage(self, timeout: float = 2.0) -> bool:
        """A real commit, when none succeeded in the last 10 s."""
        writer = self.writer
        if writer is None:
            return False
        if writer.last_ok is not None and time.monotonic() - writer.last_ok < 10:
            return True
        write = writer.submit(lambda conn: store.write_probe(conn, ""))
        try:
            await within(write.wait(), timeout)
            return True
        except Exception:
            return False

    def backlog(self) -> int:
        if self.replica is not None:
            return int(self.replica.backlog())
        return len(self._fifo)

    def _gauges(self) -> dict[str, tuple[str, float | dict[str, float]]]:
        dispatcher = self.dispatcher
        return {
            "alert_router_outbox_pending": (
                "Notifications waiting to be sent, by notifier.",
                {k: float(v) for k, v in (dispatcher.pending() if dispatcher else {}).items()},
            ),
            "alert_router_outbox_oldest_age_seconds": (
                "Age of the oldest notification waiting to be sent.",
                dispatcher.oldest_age() if dispatcher else 0.0,
            ),
            "alert_router_event_log_bytes": (
                "Size of the event log (database and WAL).",
                float(_size(self._backend)),
            ),
            "alert_router_event_log_inputs": (
                "Inputs recorded (last sequence number).",
                float(max(self._ids.get("seq", 0), self._processed_seq)),
            ),
            "alert_router_leader": (
                "1 while this replica decides and sends (always, on SQLite).",
                1.0 if self.leading else 0.0,
            ),
            "alert_router_engine_backlog": (
                "Recorded inputs waiting for the engine.",
                float(self.backlog()),
            ),
            "alert_router_writer_queue": (
                "Writes waiting for the next commit.",
                float(self.writer.depth() if self.writer else 0),
            ),
        }


def _transaction(
    conn: store.Connection, outputs: store.Outputs, fence: Callable[[store.Connection], None] | None = None
) -> None:
    conn.begin()
    try:
        if fence is not None:
            fence(conn)
        store.write_outputs(conn, outputs)
        conn.commit()
    except Exception:
        conn.rollback()
        raise


def _failure(write: Any) -> BaseException | str:
    future = write.future
    return future.exception() if future.done() and not future.cancelled() else write.state


def _apply_action(engine: Engine, data: dict[str, Any], at: datetime) -> list[Notification]:
    """A recorded action: a person's (acknowledge, resolve, silence) or the second witness's."""
    if data["action"] == "witness":
        answer = json.loads(data["note"])
        return engine.witness(answer["check"], answer["confirmed"], answer["detail"], at)
    return engine.act(data["incident"], data["action"], data["user"], at, data["note"])


def _parse(text: str) -> datetime:
    from ground.times import parse_time

    value = parse_time(text)
    assert value is not None
    return value


def _size(backend: store.Backend) -> int:
    if not isinstance(backend, store.SQLiteBackend):
        return 0  # a database server's size is its own monitoring's business
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            total += os.stat(str(backend.path) + suffix).st_size
    return total
