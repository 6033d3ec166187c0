"""The event log on PostgreSQL: the backend (psycopg 3), and the writes only a shared log needs.

Same schema and migrations as SQLite (store.MIGRATIONS); the store's `?` placeholders are
translated here. What differs when several replicas write one log:

- an input's `seq` and time come from the `input_head` row, taken under its row lock inside the
  input's own transaction: the lock is held to the commit, so inputs commit in `seq` order and a
  reader that sees `seq` N sees every input before it (no gap a slower transaction fills later),
  and input times never run backwards whatever the replicas' clocks say;
- a delivery whose body was recorded within `dedup_window` (Alertmanager retrying on another
  replica) is not recorded again: the same lock makes the check and the insert one step;
- connection trouble (server restart, network cut, a terminated session) is StorageUnavailable:
  the writer answers 503 and the connection is opened again on the next use.

psycopg is imported here only, so SQLite installs do not need it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import psycopg

from ground.errors import InputError
from router.service import store

# Application-wide advisory lock key: migrations run one replica at a time.
MIGRATION_LOCK = 0x616C7274  # "alrt"


def _translate(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresConnection:
    """One libpq session in autocommit mode with explicit BEGIN/COMMIT; reopened after a failure."""

    def __init__(self, url: str, busy_timeout: timedelta) -> None:
        self._url = url
        self._busy_ms = max(100, int(busy_timeout.total_seconds() * 1000))
        self._db: psycopg.Connection[Any] | None = None
        self.head_locked = False  # this transaction holds the input head's row lock
        self._open()

    def _open(self) -> psycopg.Connection[Any]:
        if self._db is not None and not self._db.closed and not self._db.broken:
            return self._db
        self._drop()
        try:
            self._db = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=max(2, self._busy_ms // 1000),
                # A held row lock or a stuck statement fails (-> 503) instead of hanging; dead
                # peers are noticed by TCP keepalives and the user timeout, not in minutes.
                options=f"-c lock_timeout={self._busy_ms} -c statement_timeout={self._busy_ms * 6}",
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=2,
                tcp_user_timeout=max(5000, self._busy_ms),
            )
        except psycopg.Error as exc:
            raise store.StorageUnavailable(f"cannot connect to PostgreSQL: {_short(exc)}") from None
        return self._db

    def _drop(self) -> None:
        if self._db is not None:
            with contextlib.suppress(psycopg.Error):
                self._db.close()
            self._db = None

    def _run(self, sql: str, params: Sequence[Any]) -> psycopg.Cursor[Any]:
        db = self._open()
        try:
            if params:
                return db.execute(_translate(sql), tuple(params))
            return db.execute(sql)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            # Lost session, server shutting down, lock or statement timeout: not this write's fault.
            if db.broken or db.closed:
                self._drop()
            raise store.StorageUnavailable(_short(exc)) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._run(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        db = self._open()
        try:
            with db.cursor() as cur:
                cur.executemany(_translate(sql), [tuple(r) for r in rows])
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if db.broken or db.closed:
                self._drop()
            raise store.StorageUnavailable(_short(exc)) from None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(sql, params).fetchall()

    def begin(self) -> None:
        self.head_locked = False
        self._run("BEGIN", ())

    def begin_snapshot(self) -> None:
        """A read-only transaction whose queries all see one snapshot."""
        self._run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", ())

    def commit(self) -> None:
        self._run("COMMIT", ())

    def rollback(self) -> None:
        db = self._db
        if db is None or db.closed or db.broken:
            self._drop()
            return
        try:
            db.execute("ROLLBACK")
        except psycopg.Error:
            self._drop()

    def close(self) -> None:
        self._drop()


class PostgresBackend:
    """Opens sessions to one PostgreSQL database; the only place that knows it is PostgreSQL."""

    dialect = "postgres"

    def __init__(self, url: str, busy_timeout: timedelta = timedelta(seconds=5)) -> None:
        self.url = url
        self.busy_timeout = busy_timeout

    def connect(self) -> PostgresConnection:
        return PostgresConnection(self.url, self.busy_timeout)

    def describe(self) -> str:
        """The URL without its password, for a log line."""
        info = psycopg.conninfo.conninfo_to_dict(self.url)
        return f"postgresql://{info.get('user', '')}@{info.get('host', '')}:{info.get('port', 5432)}/" + str(
            info.get("dbname", "")
        )


def migrate(conn: PostgresConnection) -> int:
    """store.migrate under a session advisory lock: replicas starting together migrate once."""
    conn.execute("SELECT pg_advisory_lock(?)", (MIGRATION_LOCK,))
    try:
        return store.migrate(conn)
    finally:
        conn.execute("SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK,))


def digest(body_text: str) -> str:
    return hashlib.sha256(body_text.encode("utf-8")).hexdigest()


def claim_input(conn: store.Connection, now_text: str) -> tuple[int, str]:
    """The next seq and the input's time (never before the previous input's), under the head
    row's lock until the commit. Inside the input's transaction."""
    row = conn.query(
        "UPDATE input_head SET seq = seq + 1, at = GREATEST(at, ?) WHERE id = 1 RETURNING seq, at",
        (now_text,),
    )[0]
    return int(row[0]), str(row[1])


def lock_head(conn: store.Connection) -> None:
    """Take the input head's row lock now (once per transaction: the writer's batch keeps it)."""
    if getattr(conn, "head_locked", False):
        return
    conn.query("SELECT at FROM input_head WHERE id = 1 FOR UPDATE")
    if isinstance(conn, PostgresConnection):
        conn.head_locked = True


# The dedup check, the claim of seq and time and the insert in one round trip. Run after
# lock_head: the statement's snapshot then sees every delivery committed before the lock.
RECORD_DELIVERY = """
WITH dup AS (
    SELECT seq FROM deliveries WHERE digest = ? AND received_at >= ? ORDER BY seq LIMIT 1
), head AS (
    UPDATE input_head SET seq = seq + 1, at = GREATEST(at, ?)
    WHERE id = 1 AND NOT EXISTS (SELECT 1 FROM dup) RETURNING seq, at
), ins AS (
    INSERT INTO deliveries (seq, received_at, source, receiver, group_key, status, alerts, body, digest)
    SELECT head.seq, head.at, ?, ?, ?, ?, ?, '{"received_at":"' || head.at || '","payload":' || ? || '}', ?
    FROM head RETURNING seq
)
SELECT seq FROM dup UNION ALL SELECT seq FROM ins
"""


def record_delivery(
    conn: store.Connection,
    body_text: str,
    body_digest: str,
    now_text: str,
    since_text: str,
    source: str,
    payload: Any,
) -> int:
    """A delivery into the shared log, unless the same body was recorded since `since_text`;
    returns its seq (or the earlier one's). Inside the writer's transaction."""
    lock_head(conn)
    row = conn.query(
        RECORD_DELIVERY,
        (
            body_digest,
            since_text,
            now_text,
            source,
            payload.receiver,
            payload.groupKey,
            payload.status,
            len(payload.alerts),
            body_text,
            body_digest,
        ),
    )[0]
    return int(row[0])


def backend_for(url: str | None, busy_timeout: timedelta) -> PostgresBackend:
    if not url:
        raise InputError("storage.url: empty (a PostgreSQL URL, or unset for SQLite)")
    return PostgresBackend(url, busy_timeout)


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
