"""Group commit: one writer thread turns every pending write into one transaction.

Callers (on the event loop) `submit()` a write and await its future; the thread takes everything
queued (up to `max_batch`), runs it in one transaction and resolves all the futures at once. One
fsync then covers many deliveries, so throughput holds with `synchronous=FULL`.

A transaction either commits whole or not at all. When the storage is unavailable (locked past
the busy timeout, disk full, I/O error) every write of the batch fails with StorageUnavailable
and nothing of it is in the database. A write that fails for its own reason (a bug, a constraint)
is isolated: the batch is retried one write per transaction so the others still commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from router.service.store import TRANSIENT_ERRORS, Connection, StorageUnavailable

log = logging.getLogger("alert_router.store")

Apply = Callable[[Connection], Any]


class Write:
    """One write: a function run inside the batch's transaction, and its outcome.

    `future` is for whoever waits for the outcome (always through `asyncio.shield`, so that a
    cancelled waiter cannot make a committed write look withdrawn); `settled` is resolved by
    the writer alone, when `state` is final: the engine loop orders itself by it."""

    __slots__ = ("apply", "future", "settled", "state")

    def __init__(self, apply: Apply, loop: asyncio.AbstractEventLoop) -> None:
        self.apply = apply
        self.future: asyncio.Future[Any] = loop.create_future()
        self.settled: asyncio.Future[None] = loop.create_future()
        self.state = "queued"  # queued -> running -> done | failed; queued -> cancelled

    def wait(self) -> asyncio.Future[Any]:
        return asyncio.shield(self.future)

    def _settle(self, state: str, ok: bool, value: Any) -> None:
        self.state = state
        if not self.settled.done():
            self.settled.set_result(None)
        if self.future.done():
            return
        if ok:
            self.future.set_result(value)
        else:
            self.future.set_exception(value)
            self.future.exception()  # retrieved: nobody may be waiting (a client that went away)


class Writer:
    def __init__(
        self, connect: Callable[[], Connection], loop: asyncio.AbstractEventLoop, max_batch: int
    ) -> None:
        self._connect = connect
        self._loop = loop
        self._max_batch = max_batch
        self._queue: deque[Write] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.conn: Connection | None = None
        # Health, read by /readyz and /metrics (plain attributes: written by one thread).
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.batches = 0
        self.on_batch: Callable[[int, float], object] | None = None  # (writes, seconds)

    # ------------------------------------------------------------------ loop side

    def start(self) -> None:
        self.conn = self._connect()
        self._thread = threading.Thread(target=self._run, name="alert-router-writer", daemon=True)
        self._thread.start()

    def submit(self, apply: Apply) -> Write:
        write = Write(apply, self._loop)
        with self._cond:
            if self._stopping:
                write._settle("failed", False, StorageUnavailable("shutting down"))
                return write
            self._queue.append(write)
            self._cond.notify()
        return write

    def cancel(self, write: Write) -> bool:
        """Withdraw a write that has not started; False when it is already being committed."""
        with self._cond:
            if write.state != "queued":
                return False
            write.state = "cancelled"
            with contextlib.suppress(ValueError):
                self._queue.remove(write)
        write._settle("cancelled", False, StorageUnavailable("gave up waiting for the database"))
        return True

    def depth(self) -> int:
        return len(self._queue)

    async def stop(self) -> None:
        """Commit what is queued, then close the connection."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # ---------------------------------------------------------------- thread side

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue and self._stopping:
                    return
                batch: list[Write] = []
                while self._queue and len(batch) < self._max_batch:
                    write = self._queue.popleft()
                    write.state = "running"
                    batch.append(write)
            started = time.monotonic()
            results = self._commit(batch)
            if self.on_batch is not None:
                self.on_batch(len(batch), time.monotonic() - started)
            self._loop.call_soon_threadsafe(_resolve, batch, results)

    def _commit(self, batch: list[Write]) -> list[tuple[bool, Any]]:
        assert self.conn is not None
        try:
            values = self._transaction(batch)
        except TRANSIENT_ERRORS as exc:
            self._failed(exc)
            error = StorageUnavailable(f"storage unavailable: {exc}")
            return [(False, error)] * len(batch)
        except Exception as exc:
            if len(batch) == 1:
                log.error("write failed: %r", exc)
                return [(False, exc)]
            # One bad write must not sink the others: one transaction each.
            return [self._commit([write])[0] for write in batch]
        self.last_ok = time.monotonic()
        self.batches += 1
        return [(True, value) for value in values]

    def _transaction(self, batch: list[Write]) -> list[Any]:
        assert self.conn is not None
        conn = self.conn
        try:
            conn.begin()
            values = [write.apply(conn) for write in batch]
            conn.commit()
            return values
        except BaseException:
            try:
                conn.rollback()
            except Exception as exc:  # the rollback of a failed commit may fail too
                log.warning("rollback failed: %r", exc)
            raise

    def _failed(self, exc: BaseException) -> None:
        self.last_error = str(exc)
        self.last_error_at = time.monotonic()
        log.error("storage unavailable: %s", exc)


def _resolve(batch: list[Write], results: list[tuple[bool, Any]]) -> None:
    for write, (ok, value) in zip(batch, results, strict=True):
        write._settle("done" if ok else "failed", ok, value)
