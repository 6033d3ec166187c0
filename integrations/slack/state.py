"""Where each incident's Slack message is, so that a restart updates it instead of posting anew.

Two tables in a SQLite file of their own (plain SQL: no `INSERT OR REPLACE`, no SQLite-only
types, so the schema moves to another database unchanged):

- `slack_messages`: incident -> channel, message `ts`, mode (page/notice) and the message
  state (what the parent message shows, as JSON: symptoms told, who acknowledged, ...).
- `slack_posts`: one row per message we post (`notification key`, `step`). It is written
  *before* `chat.postMessage` (an intent, no `ts`) and completed with the `ts` in the same
  transaction that records the incident's message. A row without `ts` after a failure means
  "maybe posted": the notifier looks the message up in Slack by its metadata before posting
  again (see integrations/slack/notifier.py and docs/slack.md).

Where: a SQLite file of its own by default (a local file, WAL; the notifier makes a handful of
calls per send, each in a worker thread so the event loop never waits on the database). With
several replicas the tables live in the shared PostgreSQL database instead (the wiring passes a
connection to it), so that the replica that takes over edits the message the previous leader
posted rather than posting a second one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS slack_schema (
        version INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS slack_messages (
        incident VARCHAR(64) NOT NULL PRIMARY KEY,
        channel VARCHAR(32) NOT NULL,
        ts VARCHAR(32),
        mode VARCHAR(16) NOT NULL,
        state TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS slack_posts (
        notification_key VARCHAR(128) NOT NULL,
        step VARCHAR(32) NOT NULL,
        incident VARCHAR(64) NOT NULL,
        channel VARCHAR(32) NOT NULL,
        ts VARCHAR(32),
        started_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (notification_key, step)
    )""",
)


@dataclass
class MessageRecord:
    incident: str
    channel: str
    ts: str | None
    mode: str  # "page" or "notice"
    state: dict[str, Any]


@dataclass(frozen=True)
class PostRecord:
    key: str
    step: str
    incident: str
    channel: str
    ts: str | None
    started_at: float


class Database(Protocol):
    """A connection with `?` placeholders and explicit transactions (the event log's own
    connection type satisfies it; so does the SQLite file below)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...  # a cursor: .rowcount
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


class _SQLiteFile:
    """The default: a SQLite file of the notifier's own."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a recorded ts must survive a power cut

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._db.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    def begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        self._db.execute("ROLLBACK")

    def close(self) -> None:
        self._db.close()


class SlackState:
    def __init__(self, where: str | Path | Database) -> None:
        """`where`: a SQLite file's path, or a connection to a shared database."""
        self.where = str(where) if isinstance(where, str | Path) else "the shared database"
        self._lock = threading.Lock()
        self._db: Database = _SQLiteFile(Path(where)) if isinstance(where, str | Path) else where
        for attempt in range(3):
            try:
                self._create_schema()
                break
            except RuntimeError:
                raise
            except Exception:
                # Two replicas creating the tables at once: one of them loses the race on the
                # catalogue; the tables are there the next time round.
                if attempt == 2:
                    raise

    def _create_schema(self) -> None:
        with self._transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)
            rows = db.query("SELECT version FROM slack_schema")
            if not rows:
                db.execute("INSERT INTO slack_schema (version) VALUES (?)", (SCHEMA_VERSION,))
            elif rows[0][0] > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.where}: Slack state schema {rows[0][0]} is newer than this program"
                )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---------------------------------------------------------------- messages

    def message(self, incident: str) -> MessageRecord | None:
        with self._lock:
            rows = self._db.query(
                "SELECT incident, channel, ts, mode, state FROM slack_messages WHERE incident = ?",
                (incident,),
            )
        if not rows:
            return None
        row = rows[0]
        return MessageRecord(row[0], row[1], row[2], row[3], json.loads(row[4]))

    def save_message(self, record: MessageRecord, now: float) -> None:
        with self._transaction() as db:
            self._upsert_message(db, record, now)

    # ------------------------------------------------------------------- posts

    def post(self, key: str, step: str) -> PostRecord | None:
        with self._lock:
            rows = self._db.query(
                "SELECT notification_key, step, incident, channel, ts, started_at FROM slack_posts "
                "WHERE notification_key = ? AND step = ?",
                (key, step),
            )
        return PostRecord(*rows[0]) if rows else None

    def begin_post(self, key: str, step: str, incident: str, channel: str, now: float) -> None:
        """Record the intent to post, before the request leaves."""
        with self._transaction() as db:
            db.execute("DELETE FROM slack_posts WHERE notification_key = ? AND step = ?", (key, step))
            db.execute(
                "INSERT INTO slack_posts (notification_key, step, incident, channel, ts, started_at) "
                "VALUES (?, ?, ?, ?, NULL, ?)",
                (key, step, incident, channel, now),
            )

    def abandon_post(self, key: str, step: str) -> None:
        """The post certainly did not happen (refused connection, Slack said no): forget the intent."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM slack_posts WHERE notification_key = ? AND step = ? AND ts IS NULL", (key, step)
            )

    def finish_post(
        self, key: str, step: str, channel: str, ts: str, message: MessageRecord | None, now: float
    ) -> None:
        """Record a posted message's ts, and the incident's message with it, atomically."""
        with self._transaction() as db:
            db.execute(
                "UPDATE slack_posts SET ts = ?, channel = ? WHERE notification_key = ? AND step = ?",
                (ts, channel, key, step),
            )
            if message is not None:
                self._upsert_message(db, message, now)

    def prune(self, before: float) -> int:
        """Forget post records older than `before` (their notifications are long delivered)."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM slack_posts WHERE started_at < ? AND ts IS NOT NULL", (before,))
            return cursor.rowcount

    # ---------------------------------------------------------------- helpers

    def _upsert_message(self, db: Database, record: MessageRecord, now: float) -> None:
        values = (record.channel, record.ts, record.mode, json.dumps(record.state, sort_keys=True), now)
        cursor = db.execute(
            "UPDATE slack_messages SET channel = ?, ts = ?, mode = ?, state = ?, updated_at = ? "
            "WHERE incident = ?",
            (*values, record.incident),
        )
        if cursor.rowcount == 0:
            db.execute(
                "INSERT INTO slack_messages (channel, ts, mode, state, updated_at, incident) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (*values, record.incident),
            )

    @contextmanager
    def _transaction(self) -> Iterator[Database]:
        """BEGIN ... COMMIT under the lock; ROLLBACK on any error."""
        with self._lock:
            self._db.begin()
            try:
                yield self._db
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()
