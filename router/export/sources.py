"""Where timelines come from: "give me the events and notifications".

A `Source` loads a `Recording`: the decision events (Event.to_dict() rows, oldest first), the
notifications, and, from the service only, what became of each outbound message. Two sources:
a replay's files here (`--events`, `--notifications`), the service's event log in
store_source.py. The timeline builder never knows which one it got."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ground.errors import InputError
from ground.times import parse_time


@dataclass
class Recording:
    events: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    # Rows of the service's outbox and outbound tables; None for a replay (nothing was sent).
    outbox: list[dict[str, Any]] | None = None
    attempts: list[dict[str, Any]] | None = None
    origin: str = "the recording"


class Source(Protocol):
    origin: str

    def load(self, incident: str | None = None) -> Recording:
        """Everything recorded; with `incident`, a source may return only what that incident's
        timeline needs (its family's events, the alert_fired events of its alerts)."""
        ...


def read_jsonl(path: Path, required: tuple[str, ...], what: str, hint: str = "") -> list[dict[str, Any]]:
    """JSON objects, one a line; InputError naming FILE:LINE:field on the first bad line."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    rows: list[dict[str, Any]] = []
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{number}: a line must be a JSON object ({what})")
            for name in required:
                if name not in row:
                    raise InputError(f"{path}:{number}: {name}: missing: not {what}{hint}")
            try:
                at = parse_time(str(row["at"]))
            except ValueError:
                at = None
            if at is None:
                raise InputError(f"{path}:{number}: at: {row['at']!r} is not an RFC 3339 time")
            rows.append(row)
    return rows


class FileSource:
    """A replay's output: `alert-router replay ... --out N.jsonl --events E.jsonl`."""

    def __init__(self, events: str | Path, notifications: str | Path | None = None) -> None:
        self.events_path = Path(events)
        self.notifications_path = Path(notifications) if notifications else None
        self.origin = str(self.events_path)

    def load(self, incident: str | None = None) -> Recording:
        events = read_jsonl(
            self.events_path,
            ("at", "kind", "incident"),
            "a decision event",
            " (is it the notifications file? give it with --notifications)",
        )
        notifications: list[dict[str, Any]] = []
        if self.notifications_path is not None:
            notifications = read_jsonl(
                self.notifications_path,
                ("at", "action", "incident"),
                "a notification",
                " (is it the events file? give it with --events)",
            )
        return Recording(events, notifications, origin=self.origin)
