"""The service's event log (router/service/store.py) as a timeline source, read-only.

Reads the SQLite file directly with `mode=ro` (WAL readers never block the running service's
writer), only the tables it needs, and only if they exist. It relies on the columns of store
migration 1: events(id, at, kind, incident, body), notifications(key, position, incident, body),
outbox(key, notifier, incident, state, attempts, last_error, sent_at) and
outbound(key, notifier, attempt, started_at, ok, error)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ground.errors import InputError
from router.export.model import empty, not_found
from router.export.sources import Recording

CHUNK = 500  # bound on `IN (?, ...)` lists (old SQLite builds allow 999 parameters)


class StoreSource:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.origin = f"the event log {self.path}"

    def _connect(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise InputError(
                f"no event log at {self.path} (use --data-dir DIR, or --events FILE of a replay)"
            )
        try:
            conn = sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?mode=ro", uri=True, timeout=5)
            conn.execute("PRAGMA query_only = ON")
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error as exc:
            raise InputError(f"cannot read the event log {self.path}: {exc}") from None
        if "events" not in tables:
            conn.close()
            raise InputError(
                f"{self.path} has no events table: not an alert-router event log, or never started"
            )
        self._tables = tables
        return conn

    def load(self, incident: str | None = None) -> Recording:
        conn = self._connect()
        try:
            if incident is None:
                events = _bodies(conn.execute("SELECT id, body FROM events ORDER BY id"))
                family: list[str] | None = None
            else:
                events, family = self._family_events(conn, incident)
            notifications = self._notifications(conn, family)
            keys = [n["key"] for n in notifications]
            outbox = self._outbox(conn, keys)
            attempts = self._attempts(conn, keys)
        except sqlite3.Error as exc:
            raise InputError(f"cannot read the event log {self.path}: {exc}") from None
        finally:
            conn.close()
        return Recording(events, notifications, outbox, attempts, self.origin)

    def _family_events(
        self, conn: sqlite3.Connection, incident: str
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The incident's events, those of every incident merged into it, and the alert events
        of their alerts (alert_fired carries no incident)."""
        rows: dict[int, dict[str, Any]] = {}
        family, todo = [incident], [incident]
        while todo:
            current = todo.pop()
            for ident, body in conn.execute(
                "SELECT id, body FROM events WHERE incident = ? ORDER BY id", (current,)
            ):
                event = json.loads(body)
                rows[int(ident)] = event
                merged = event.get("incident_merged") if event.get("kind") == "absorbed" else None
                if event.get("kind") == "root_reattributed":
                    merged = event.get("absorbed")
                if merged and merged not in family:
                    family.append(str(merged))
                    todo.append(str(merged))
        if not rows:
            if conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None:
                raise empty(self.origin)
            known = conn.execute("SELECT COUNT(DISTINCT incident) FROM events WHERE incident IS NOT NULL")
            raise not_found(incident, self.origin, int(known.fetchone()[0]))
        fingerprints = sorted(
            {
                str(e["fingerprint"])
                for e in rows.values()
                if e.get("kind") in ("root_alert", "symptom_attached") and e.get("fingerprint")
            }
        )
        for ident, body in self._alert_rows(conn, fingerprints):
            rows.setdefault(ident, json.loads(body))
        for ident, body in self._adoption(conn, incident):
            rows.setdefault(ident, json.loads(body))
        return [rows[i] for i in sorted(rows)], family

    def _alert_rows(self, conn: sqlite3.Connection, fingerprints: Sequence[str]) -> Iterable[tuple[int, str]]:
        sql = "SELECT id, body FROM events WHERE kind IN ('alert_fired', 'alert_resolved')"
        try:
            for chunk in _chunks(fingerprints):
                marks = ", ".join("?" for _ in chunk)
                query = f"{sql} AND json_extract(body, '$.fingerprint') IN ({marks})"
                yield from ((int(i), b) for i, b in conn.execute(query, chunk))
        except sqlite3.OperationalError:  # an SQLite without JSON functions: filter here
            wanted = set(fingerprints)
            for ident, body in conn.execute(sql):
                if json.loads(body).get("fingerprint") in wanted:
                    yield int(ident), body

    def _adoption(self, conn: sqlite3.Connection, incident: str) -> Iterable[tuple[int, str]]:
        """The `root_reattributed` event of a paged incident that adopted this one as its cause:
        recorded under the other incident, it is how this one ended."""
        sql = "SELECT id, body FROM events WHERE kind = 'root_reattributed'"
        try:
            rows = conn.execute(f"{sql} AND json_extract(body, '$.absorbed') = ?", (incident,)).fetchall()
        except sqlite3.OperationalError:  # no JSON functions
            rows = [r for r in conn.execute(sql) if json.loads(r[1]).get("absorbed") == incident]
        return [(int(i), b) for i, b in rows]

    def _notifications(self, conn: sqlite3.Connection, family: list[str] | None) -> list[dict[str, Any]]:
        if "notifications" not in self._tables:
            return []
        if family is None:
            rows = list(conn.execute("SELECT key, body FROM notifications ORDER BY position"))
        else:
            rows = []
            for chunk in _chunks(family):
                marks = ", ".join("?" for _ in chunk)
                rows += conn.execute(
                    f"SELECT key, body, position FROM notifications WHERE incident IN ({marks})", chunk
                ).fetchall()
            rows = [(k, b) for k, b, _ in sorted(rows, key=lambda r: r[2])]
        return [{**json.loads(body), "key": key} for key, body in rows]

    def _outbox(self, conn: sqlite3.Connection, keys: list[str]) -> list[dict[str, Any]]:
        if "outbox" not in self._tables:
            return []
        columns = ("key", "notifier", "state", "attempts", "last_error", "sent_at")
        return self._by_keys(conn, "outbox", columns, keys)

    def _attempts(self, conn: sqlite3.Connection, keys: list[str]) -> list[dict[str, Any]]:
        if "outbound" not in self._tables:
            return []
        columns = ("key", "notifier", "attempt", "started_at", "ok", "error")
        return self._by_keys(conn, "outbound", columns, keys)

    @staticmethod
    def _by_keys(
        conn: sqlite3.Connection, table: str, columns: Sequence[str], keys: list[str]
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for chunk in _chunks(keys):
            marks = ", ".join("?" for _ in chunk)
            query = f"SELECT {', '.join(columns)} FROM {table} WHERE key IN ({marks}) ORDER BY key"
            out += [dict(zip(columns, row, strict=True)) for row in conn.execute(query, chunk)]
        return out


def _bodies(rows: Iterable[tuple[int, str]]) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in rows]


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])
