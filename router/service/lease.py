"""The leader lease: one row (holder, epoch, expires_at) in the shared database.

A replica takes the lease when it is free or expired, which bumps the epoch; the holder renews it
every quarter of the TTL. Expiry is judged by the database's clock, so replicas' clocks do not
matter. The holder believes it leads only until `valid_until`: the monotonic time before its last
successful renewal was sent, plus 80% of the TTL; it stops deciding and sending then, before the
lease can expire in the database and be taken by another replica.

Fencing: every output write of a leader first reads the lease row FOR SHARE in its own
transaction (`fence`) and is refused (store.Fenced) unless the holder and epoch are still its
own; a takeover's UPDATE waits for such a transaction to end, so a deposed leader's late write
can never land after the new leader has read the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ground.waiting import within
from router.service import store

log = logging.getLogger("alert_router.lease")

MARGIN = 0.8  # share of the TTL the holder trusts its last renewal for


def holder_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Lease:
    def __init__(self, connect: Callable[[], store.Connection], ttl: timedelta, holder: str | None = None):
        self._connect = connect
        self.ttl = ttl.total_seconds()
        self.holder = holder or holder_name()
        self.epoch = 0
        self.valid_until = 0.0  # time.monotonic()
        self._conn: store.Connection | None = None

    @property
    def held(self) -> bool:
        return self.epoch > 0 and time.monotonic() < self.valid_until

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self._conn is None:
            self._conn = self._connect()
        try:
            return self._conn.query(sql, params)
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a broken session may fail as well
                conn.close()

    async def _call(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]] | None:
        """The statement in a thread, bounded by a third of the TTL; None when the database did
        not answer (a hung session is abandoned, the next call opens another)."""
        try:
            return await within(asyncio.to_thread(self._run, sql, params), self.ttl / 3)
        except (TimeoutError, store.StorageUnavailable) as exc:
            if isinstance(exc, TimeoutError):
                self._conn = None
            log.warning("lease: database unavailable: %s", exc or "timeout")
            return None

    async def acquire(self) -> bool:
        """Take the lease if it is free or expired. True: this replica holds it (new epoch)."""
        sent = time.monotonic()
        rows = await self._call(
            "UPDATE leader_lease SET holder = ?, epoch = epoch + 1, "
            "expires_at = (clock_timestamp() + make_interval(secs => ?))::text "
            "WHERE id = 1 AND (holder = '' OR expires_at = '' "
            "OR expires_at::timestamptz < clock_timestamp()) "
            "RETURNING epoch",
            (self.holder, self.ttl),
        )
        if not rows:
            return False
        self.epoch = int(rows[0][0])
        self.valid_until = sent + self.ttl * MARGIN
        return True

    async def renew(self) -> bool | None:
        """True renewed, False lost (another replica took it), None the database did not answer."""
        sent = time.monotonic()
        rows = await self._call(
            "UPDATE leader_lease SET expires_at = (clock_timestamp() + make_interval(secs => ?))::text "
            "WHERE id = 1 AND holder = ? AND epoch = ? RETURNING epoch",
            (self.ttl, self.holder, self.epoch),
        )
        if rows is None:
            return None
        if not rows:
            self.epoch = 0
            self.valid_until = 0.0
            return False
        self.valid_until = sent + self.ttl * MARGIN
        return True

    async def release(self) -> None:
        """At a clean stop: free the lease now, so that another replica takes over at once."""
        if self.epoch:
            await self._call(
                "UPDATE leader_lease SET holder = '', expires_at = '' "
                "WHERE id = 1 AND holder = ? AND epoch = ? RETURNING epoch",
                (self.holder, self.epoch),
            )
        self.epoch = 0
        self.valid_until = 0.0
        self._abandon()

    def fence(self) -> Callable[[store.Connection], None]:
        """The check each output write of this leadership runs first, in its transaction."""
        holder, epoch = self.holder, self.epoch

        def check(conn: store.Connection) -> None:
            row = conn.query("SELECT holder, epoch FROM leader_lease WHERE id = 1 FOR SHARE")[0]
            if (row[0], int(row[1])) != (holder, epoch):
                raise store.Fenced(
                    f"lease epoch {epoch} is over (now {row[1]}, held by {row[0] or 'nobody'})"
                )

        return check
