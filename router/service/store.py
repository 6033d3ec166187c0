"""The durable event log: what arrived (inputs), what the engine decided, what was sent.

Inputs are the truth: Alertmanager deliveries (each kept exactly as the recorded-stream line of
`docs/contracts.md`) and human actions, numbered by one sequence `seq` shared by both tables.
The engine state is rebuilt at start by feeding them back in `seq` order. Outputs are the
decision events, the notifications (`key` UNIQUE: the engine's idempotency key) with one outbox
row per notifier, and the result of every outbound attempt. `checkpoint` says up to which input
(and engine clock) the outputs are committed, so a restart writes each output once.

The SQL is plain and portable (it also runs on PostgreSQL): `?` placeholders that a backend may
translate, no SQLite-only syntax outside the SQLite backend's PRAGMAs, explicit ids assigned by
the single writer instead of AUTOINCREMENT. Schema changes are numbered migrations recorded in
`schema_version`.
"""

from __future__ import annotations

import heapq
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from ground.errors import InputError

# ------------------------------------------------------------------------------ migrations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "event log",
        [
            """CREATE TABLE deliveries (
                seq BIGINT PRIMARY KEY,
                received_at TEXT NOT NULL,
                source TEXT NOT NULL,
                receiver TEXT NOT NULL,
                group_key TEXT NOT NULL,
                status TEXT NOT NULL,
                alerts INTEGER NOT NULL,
                body TEXT NOT NULL)""",
            "CREATE INDEX deliveries_received_at ON deliveries (received_at)",
            """CREATE TABLE actions (
                seq BIGINT PRIMARY KEY,
                at TEXT NOT NULL,
                incident TEXT NOT NULL,
                action TEXT NOT NULL,
                actor TEXT NOT NULL,
                note TEXT NOT NULL,
                source TEXT NOT NULL)""",
            """CREATE TABLE events (
                id BIGINT PRIMARY KEY,
                input_seq BIGINT NOT NULL,
                at TEXT NOT NULL,
                kind TEXT NOT NULL,
                incident TEXT,
                body TEXT NOT NULL)""",
            "CREATE INDEX events_incident ON events (incident, id)",
            """CREATE TABLE notifications (
                key TEXT NOT NULL UNIQUE,
                position BIGINT PRIMARY KEY,
                incident TEXT NOT NULL,
                action TEXT NOT NULL,
                at TEXT NOT NULL,
                input_seq BIGINT NOT NULL,
                created_at TEXT NOT NULL,
                body TEXT NOT NULL)""",
            "CREATE INDEX notifications_incident ON notifications (incident, position)",
            """CREATE TABLE outbox (
                key TEXT NOT NULL,
                notifier TEXT NOT NULL,
                position BIGINT NOT NULL,
                incident TEXT NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                next_attempt_at TEXT NOT NULL,
                last_error TEXT,
                updated_at TEXT NOT NULL,
                sent_at TEXT,
                PRIMARY KEY (key, notifier))""",
            "CREATE INDEX outbox_state ON outbox (state, position)",
            """CREATE TABLE outbound (
                id BIGINT PRIMARY KEY,
                key TEXT NOT NULL,
                notifier TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                started_at TEXT NOT NULL,
                duration_ms INTEGER NOT NULL,
                ok INTEGER NOT NULL,
                error TEXT)""",
            "CREATE INDEX outbound_key ON outbound (key)",
            """CREATE TABLE checkpoint (
                id INTEGER PRIMARY KEY,
                input_seq BIGINT NOT NULL,
                clock TEXT,
                updated_at TEXT NOT NULL)""",
            "INSERT INTO checkpoint (id, input_seq, clock, updated_at) VALUES (1, 0, NULL, '')",
        ],
    ),
    (
        2,
        "several replicas: input head, delivery digests, leader lease",
        [
            # Replicas that share the log take the next seq and time from this row, under its
            # row lock: commit order is seq order, and input times never run backwards.
            """CREATE TABLE input_head (
                id INTEGER PRIMARY KEY,
                seq BIGINT NOT NULL,
                at TEXT NOT NULL)""",
            "INSERT INTO input_head (id, seq, at) VALUES (1, (SELECT COALESCE(MAX(s), 0) FROM "
            "(SELECT seq AS s FROM deliveries UNION ALL SELECT seq AS s FROM actions) AS inputs), '')",
            # The body's digest: a retry of the same delivery that reached another replica.
            "ALTER TABLE deliveries ADD COLUMN digest TEXT",
            "CREATE INDEX deliveries_digest ON deliveries (digest)",
            """CREATE TABLE leader_lease (
                id INTEGER PRIMARY KEY,
                holder TEXT NOT NULL,
                epoch BIGINT NOT NULL,
                expires_at TEXT NOT NULL)""",
            "INSERT INTO leader_lease (id, holder, epoch, expires_at) VALUES (1, '', 0, '')",
        ],
    ),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]


class StorageUnavailable(Exception):
    """The database cannot take writes now (locked, disk full, I/O error): answer 5xx, retry."""


class Fenced(Exception):
    """A write of a leader whose lease has passed to another replica: refused, never retried."""


# ------------------------------------------------------------------------------ backend


class Connection(Protocol):
    """The little a store needs from a database connection; one per thread."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


# sqlite3 errors that mean "storage unavailable now" rather than "this write is wrong".
# (Other backends raise StorageUnavailable themselves for their transient errors.)
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (sqlite3.OperationalError, StorageUnavailable)


class SQLiteConnection:
    """sqlite3 in explicit-transaction mode: WAL, synchronous=FULL, a busy timeout."""

    def __init__(self, path: Path, busy_timeout: timedelta, synchronous: str = "FULL") -> None:
        self.path = path
        self._db = sqlite3.connect(
            str(path), timeout=busy_timeout.total_seconds(), isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout.total_seconds() * 1000)}")
        # WAL checkpoints are left to SQLite's automatic ones (every ~1000 pages).

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._db.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    def begin(self) -> None:
        # IMMEDIATE takes the write lock now: a locked database fails here, before any work.
        self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def close(self) -> None:
        self._db.close()


class Backend(Protocol):
    """Where the event log lives: SQLite here, PostgreSQL in router/service/pgstore.py."""

    dialect: str

    def connect(self) -> Connection: ...
    def describe(self) -> str: ...


class SQLiteBackend:
    """Opens connections to one SQLite file; the only place that knows it is SQLite."""

    dialect = "sqlite"

    def describe(self) -> str:
        return str(self.path)

    def __init__(self, path: Path, busy_timeout: timedelta = timedelta(seconds=5), synchronous: str = "FULL"):
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous

    def connect(self) -> SQLiteConnection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return SQLiteConnection(self.path, self.busy_timeout, self.synchronous)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"cannot open the event log {self.path}: {exc}") from None


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class Input:
    """One recorded input in sequence order: a delivery line or a human action."""

    seq: int
    kind: str  # "delivery" | "action"
    at: str
    data: Any  # delivery: the recorded-stream line (str); action: dict


@dataclass(frozen=True)
class Checkpoint:
    input_seq: int
    clock: str | None


@dataclass(frozen=True)
class OutboxRow:
    key: str
    notifier: str
    position: int
    incident: str
    state: str
    attempts: int
    next_attempt_at: str
    body: str


# ------------------------------------------------------------------------------ migrations


def migrate(conn: Connection) -> int:
    """Apply missing migrations in order, each in its own transaction; returns the version."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at TEXT NOT NULL)"
    )
    rows = conn.query("SELECT MAX(version) FROM schema_version")
    current = rows[0][0] or 0
    if current > SCHEMA_VERSION:
        raise InputError(
            f"the event log has schema version {current}, newer than this alert-router ({SCHEMA_VERSION}): "
            "run the newer version or restore a backup"
        )
    for version, name, statements in MIGRATIONS:
        if version <= current:
            continue
        conn.begin()
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, CURRENT_TIMESTAMP)",
                (version, name),
            )
            conn.commit()
        except Exception:
            conn.rollback()
            raise
        current = version
    return current


# ------------------------------------------------------------------------------ writes
# Each takes a connection inside an open transaction (the writer's group commit).


def write_delivery(
    conn: Connection,
    seq: int,
    received_at: str,
    source: str,
    payload: Any,
    line: str,
    digest: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO deliveries "
        "(seq, received_at, source, receiver, group_key, status, alerts, body, digest) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            seq,
            received_at,
            source,
            payload.receiver,
            payload.groupKey,
            payload.status,
            len(payload.alerts),
            line,
            digest,
        ),
    )


def write_action(
    conn: Connection, seq: int, at: str, incident: str, action: str, actor: str, note: str, source: str
) -> None:
    conn.execute(
        "INSERT INTO actions (seq, at, incident, action, actor, note, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, at, incident, action, actor, note, source),
    )


@dataclass
class Outputs:
    """What the engine produced for inputs up to `input_seq` (and timers up to `clock`)."""

    input_seq: int
    clock: str
    events: list[tuple[int, int, str, str, str | None, str]]  # id, input_seq, at, kind, incident, body
    notifications: list[tuple[str, int, str, str, str, int, str, str]]  # key, position, incident, ...
    notifiers: Sequence[str]
    created_at: str
    checkpoint: bool = True  # False: rows written apart, after the checkpoint moved on

    def merge(self, later: Outputs) -> Outputs:
        return Outputs(
            later.input_seq,
            later.clock,
            self.events + later.events,
            self.notifications + later.notifications,
            later.notifiers,
            later.created_at,
        )

    @property
    def rows(self) -> int:
        return len(self.events) + len(self.notifications)

    def apart(self) -> tuple[Outputs, list[Outputs]]:
        """(the checkpoint alone, each row alone without it): to write what can be written when
        one row cannot be, without holding up the rest (ids and positions are kept)."""
        alone = [
            Outputs(self.input_seq, self.clock, [e], [], self.notifiers, self.created_at, False)
            for e in self.events
        ]
        alone += [
            Outputs(self.input_seq, self.clock, [], [n], self.notifiers, self.created_at, False)
            for n in self.notifications
        ]
        return Outputs(self.input_seq, self.clock, [], [], self.notifiers, self.created_at), alone

    def describe(self) -> tuple[str, str | None]:
        """(what, incident) of a one-row Outputs, for a log line."""
        if self.notifications:
            key, _, incident, action = self.notifications[0][:4]
            return f"{action} notification {key}", incident
        if self.events:
            ident, _, _, kind, event_incident, _ = self.events[0]
            return f"{kind} event {ident}", event_incident
        return f"checkpoint at input {self.input_seq}", None


def write_outputs(conn: Connection, outputs: Outputs) -> None:
    if outputs.events:
        conn.executemany(
            "INSERT INTO events (id, input_seq, at, kind, incident, body) VALUES (?, ?, ?, ?, ?, ?)",
            outputs.events,
        )
    for row in outputs.notifications:
        key = row[0]
        # ON CONFLICT: after a crash, the rebuild re-generates notifications already recorded.
        conn.execute(
            "INSERT INTO notifications (key, position, incident, action, at, input_seq, created_at, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            row,
        )
        for notifier in outputs.notifiers:
            # From the stored row: a re-generated notification keeps its original position.
            conn.execute(
                "INSERT INTO outbox (key, notifier, position, incident, state, attempts, next_attempt_at, "
                "last_error, updated_at, sent_at) "
                "SELECT key, ?, position, incident, 'pending', 0, ?, NULL, ?, NULL "
                "FROM notifications WHERE key = ? ON CONFLICT (key, notifier) DO NOTHING",
                (notifier, outputs.created_at, outputs.created_at, key),
            )
    if outputs.checkpoint:
        conn.execute(
            "UPDATE checkpoint SET input_seq = ?, clock = ?, updated_at = ? WHERE id = 1",
            (outputs.input_seq, outputs.clock, outputs.created_at),
        )


def write_attempt(
    conn: Connection,
    outbound_id: int,
    key: str,
    notifier: str,
    attempt: int,
    started_at: str,
    duration_ms: int,
    error: str | None,
    state: str,
    next_attempt_at: str,
    now: str,
) -> None:
    """One send attempt and the outbox row's new state (sent, pending again, failed)."""
    conn.execute(
        "INSERT INTO outbound (id, key, notifier, attempt, started_at, duration_ms, ok, error) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (outbound_id, key, notifier, attempt, started_at, duration_ms, 1 if error is None else 0, error),
    )
    conn.execute(
        "UPDATE outbox SET state = ?, attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ?, "
        "sent_at = ? WHERE key = ? AND notifier = ?",
        (state, attempt, next_attempt_at, error, now, now if state == "sent" else None, key, notifier),
    )


def write_probe(conn: Connection, now: str) -> None:
    """A real write for /readyz: proves the file and the disk take a commit."""
    conn.execute("UPDATE checkpoint SET updated_at = updated_at WHERE id = ?", (1,))


# ------------------------------------------------------------------------------ reads


class Reader:
    """Read queries; each thread uses its own connection (WAL readers never block the writer)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def checkpoint(self) -> Checkpoint:
        row = self.conn.query("SELECT input_seq, clock FROM checkpoint WHERE id = 1")[0]
        return Checkpoint(int(row[0]), row[1])

    def max_ids(self) -> dict[str, int]:
        def one(sql: str) -> int:
            return int(self.conn.query(sql)[0][0] or 0)

        return {
            "seq": max(one("SELECT MAX(seq) FROM deliveries"), one("SELECT MAX(seq) FROM actions")),
            "event": one("SELECT MAX(id) FROM events"),
            "position": one("SELECT MAX(position) FROM notifications"),
            "outbound": one("SELECT MAX(id) FROM outbound"),
        }

    def last_input_time(self) -> str | None:
        rows = [
            self.conn.query("SELECT MAX(received_at) FROM deliveries")[0][0],
            self.conn.query("SELECT MAX(at) FROM actions")[0][0],
            self.checkpoint().clock,
        ]
        found = [r for r in rows if r]
        return max(found) if found else None

    def inputs(self, after: int = 0, chunk: int = 2000) -> Iterator[Input]:
        """Deliveries and actions merged in seq order, read in chunks (bounded memory)."""
        return heapq.merge(self._deliveries(after, chunk), self._actions(after, chunk), key=lambda i: i.seq)

    def _deliveries(self, after: int, chunk: int) -> Iterator[Input]:
        last = after
        while True:
            rows = self.conn.query(
                "SELECT seq, received_at, body FROM deliveries WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, chunk),
            )
            for seq, at, body in rows:
                yield Input(int(seq), "delivery", at, body)
            if len(rows) < chunk:
                return
            last = int(rows[-1][0])

    def _actions(self, after: int, chunk: int) -> Iterator[Input]:
        last = after
        while True:
            rows = self.conn.query(
                "SELECT seq, at, incident, action, actor, note FROM actions "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, chunk),
            )
            for seq, at, incident, action, actor, note in rows:
                data = {"incident": incident, "action": action, "user": actor, "note": note}
                yield Input(int(seq), "action", at, data)
            if len(rows) < chunk:
                return
            last = int(rows[-1][0])

    def delivery_lines(self, since: str | None = None, until: str | None = None) -> Iterator[str]:
        """The recorded stream (`replay` input), optionally limited to [since, until)."""
        last = 0
        while True:
            sql = "SELECT seq, body FROM deliveries WHERE seq > ?"
            params: list[Any] = [last]
            if since:
                sql += " AND received_at >= ?"
                params.append(since)
            if until:
                sql += " AND received_at < ?"
                params.append(until)
            rows = self.conn.query(sql + " ORDER BY seq LIMIT 2000", params)
            for _, body in rows:
                yield body
            if len(rows) < 2000:
                return
            last = int(rows[-1][0])

    def pending_outbox(self) -> list[OutboxRow]:
        rows = self.conn.query(
            "SELECT o.key, o.notifier, o.position, o.incident, o.state, o.attempts, o.next_attempt_at, "
            "n.body FROM outbox o JOIN notifications n ON n.key = o.key "
            "WHERE o.state = 'pending' ORDER BY o.position, o.notifier"
        )
        return [OutboxRow(*row) for row in rows]

    def notifications(self) -> list[dict[str, Any]]:
        rows = self.conn.query("SELECT body FROM notifications ORDER BY position")
        return [json.loads(body) for (body,) in rows]

    def notification_keys(self) -> list[str]:
        return [key for (key,) in self.conn.query("SELECT key FROM notifications ORDER BY position")]

    def outbox_states(self) -> dict[tuple[str, str], str]:
        rows = self.conn.query("SELECT key, notifier, state FROM outbox")
        return {(key, notifier): state for key, notifier, state in rows}

    def events_of(self, incident: str) -> list[dict[str, Any]]:
        rows = self.conn.query("SELECT body FROM events WHERE incident = ? ORDER BY id", (incident,))
        return [json.loads(body) for (body,) in rows]

    def counts(self) -> dict[str, int]:
        out = {}
        for table in ("deliveries", "actions", "events", "notifications", "outbox", "outbound"):
            out[table] = int(self.conn.query(f"SELECT COUNT(*) FROM {table}")[0][0])
        return out

    def outbox_summary(self) -> tuple[int, str | None]:
        """(pending entries, created time of the oldest pending one)."""
        row = self.conn.query(
            "SELECT COUNT(*), MIN(n.created_at) FROM outbox o JOIN notifications n ON n.key = o.key "
            "WHERE o.state = 'pending'"
        )[0]
        return int(row[0]), row[1]
