"""The outbox dispatcher: sends recorded notifications to every notifier, in order, until they land.

A notification is in the outbox (committed) before any send is attempted; each send attempt and
its outcome is recorded afterwards. A crash between the send and the record means the send is
attempted again after the restart with the same idempotency key, which the notifiers and the
webhook's receivers use to recognise it (at-least-once delivery; never zero).

Order: per notifier, an incident's notifications go out one at a time in the engine's order (a
page before its updates, the resolve last); different incidents go out concurrently, up to
`concurrency` per notifier. A failed send is retried with exponential backoff and jitter; an
error a retry cannot cure (`retryable = False`) or `max_attempts` marks it failed, logged with
the incident id, and lets the incident's next notification through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ground.waiting import until_set
from router.service.config import RetrySettings
from router.service.metrics import Metrics

log = logging.getLogger("alert_router.outbox")

GATE_RECHECK = 0.1  # seconds between looks at a closed gate


class Notifier(Protocol):
    name: str

    async def send(self, notification: dict[str, Any], key: str) -> None: ...
    async def close(self) -> None: ...


@dataclass
class Entry:
    key: str
    notifier: str
    position: int
    incident: str
    body: str
    attempts: int = 0
    due: float = 0.0  # time.monotonic() of the next attempt
    enqueued: float = field(default_factory=time.monotonic)

    @property
    def notification(self) -> dict[str, Any]:
        return json.loads(self.body)


# (entry, attempt number, error or None, new state, seconds until the next attempt, duration)
RecordAttempt = Callable[[Entry, int, str | None, str, float, float], Awaitable[None]]


class Dispatcher:
    def __init__(
        self,
        notifiers: dict[str, Notifier],
        record: RecordAttempt,
        retry: RetrySettings,
        metrics: Metrics,
        rng: random.Random | None = None,
    ) -> None:
        self.notifiers = notifiers
        self._record = record
        self._retry = retry
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._queues: dict[tuple[str, str], deque[Entry]] = {}
        self._busy: set[tuple[str, str]] = set()
        self._in_flight: dict[str, int] = dict.fromkeys(notifiers, 0)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False
        # Whether sends may start now (a replica: while it holds the leader lease); None: always.
        self.gate: Callable[[], bool] | None = None

    # ------------------------------------------------------------------ feeding

    def add(self, entries: list[Entry]) -> None:
        for entry in entries:
            if entry.notifier not in self.notifiers:
                continue  # a notifier removed from the configuration: left pending in the store
            self._queues.setdefault((entry.notifier, entry.incident), deque()).append(entry)
        if entries:
            self._idle.clear()
            self._wake.set()

    def pending(self) -> dict[str, int]:
        out = dict.fromkeys(self.notifiers, 0)
        for (notifier, _), queue in self._queues.items():
            out[notifier] += len(queue)
        return out

    def oldest_age(self) -> float:
        now = time.monotonic()
        ages = [now - queue[0].enqueued for queue in self._queues.values() if queue]
        return max(ages, default=0.0)

    def clear(self) -> None:
        """Forget what is queued and cancel the sends in flight: this replica stopped leading,
        the next leader sends them (same idempotency keys)."""
        for task in list(self._tasks):
            task.cancel()
        self._queues.clear()
        self._busy.clear()
        self._in_flight = dict.fromkeys(self.notifiers, 0)
        self._idle.set()

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="outbox")

    async def drain(self, timeout: float) -> bool:
        """Send what is pending, retries included, for at most `timeout` seconds."""
        await until_set(self._idle, timeout)
        return not self._queues

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for notifier in self.notifiers.values():
            try:
                await notifier.close()
            except Exception as exc:  # closing must not stop the shutdown
                log.warning("closing notifier %s failed: %r", notifier.name, exc)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            wait = self._launch()
            if not self._queues and not self._busy:
                self._idle.set()
            await until_set(self._wake, wait)

    def _launch(self) -> float | None:
        """Start every send that may go now; seconds until the next one that waits, or None."""
        if self.gate is not None and not self.gate():
            return GATE_RECHECK if self._queues else None
        now = time.monotonic()
        wait: float | None = None
        for slot, queue in self._queues.items():
            if slot in self._busy:
                continue
            head = queue[0]
            if head.due > now:
                wait = min(wait, head.due - now) if wait is not None else head.due - now
                continue
            if self._in_flight[head.notifier] >= self._retry.concurrency:
                continue
            self._busy.add(slot)
            self._in_flight[head.notifier] += 1
            task = asyncio.create_task(self._send(slot, head))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return wait

    async def _send(self, slot: tuple[str, str], entry: Entry) -> None:
        notifier = self.notifiers[entry.notifier]
        started = time.monotonic()
        error: str | None = None
        retryable = True
        try:
            notification = entry.notification
            await notifier.send(notification, entry.key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            retryable = bool(getattr(exc, "retryable", True))
        duration = time.monotonic() - started
        entry.attempts += 1
        delay = 0.0
        if error is None:
            state = "sent"
            self._metrics.notifications.labels(entry.notifier, notification.get("action", "?")).inc()
            log.info(
                "sent %s to %s",
                entry.key,
                entry.notifier,
                extra={"incident": entry.incident, "key": entry.key},
            )
        elif not retryable or (self._retry.max_attempts and entry.attempts >= self._retry.max_attempts):
            state = "failed"
            self._metrics.notifier_errors.labels(entry.notifier).inc()
            self._metrics.notifications_failed.labels(entry.notifier).inc()
            log.error(
                "giving up on %s to %s after %d attempt(s): %s",
                entry.key,
                entry.notifier,
                entry.attempts,
                error,
                extra={"incident": entry.incident, "key": entry.key},
            )
        else:
            state = "pending"
            delay = self.backoff(entry.attempts)
            entry.due = time.monotonic() + delay
            self._metrics.notifier_errors.labels(entry.notifier).inc()
            log.warning(
                "send of %s to %s failed (attempt %d), retry in %.1fs: %s",
                entry.key,
                entry.notifier,
                entry.attempts,
                delay,
                error,
                extra={"incident": entry.incident, "key": entry.key},
            )
        try:
            await self._record(entry, entry.attempts, error, state, delay, duration)
        except Exception as exc:  # the send happened; a lost record means a re-send after restart
            log.error(
                "could not record the attempt of %s: %r", entry.key, exc, extra={"incident": entry.incident}
            )
        finally:
            self._busy.discard(slot)
            self._in_flight[entry.notifier] -= 1
            if state != "pending":
                queue = self._queues[slot]
                queue.popleft()
                if not queue:
                    del self._queues[slot]
            self._wake.set()

    def backoff(self, attempts: int) -> float:
        base = self._retry.initial.total_seconds() * self._retry.multiplier ** max(0, attempts - 1)
        capped = min(base, self._retry.maximum.total_seconds())
        return capped * self._rng.uniform(0.5, 1.5)
