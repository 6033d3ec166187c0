"""Replay: run the engine over a recorded stream on the stream's own clock.

The clock is each line's `received_at`; timers fire when that clock passes them; after the last
line the clock runs on until nothing is pending (at most `drain_limit`, one hour by default).
Same input, same output, byte for byte: nothing here reads the wall clock or a file (the lines
come in as an iterator; `alert-router replay` reads them: router/cli/cmd_replay.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from ground.errors import InputError
from router.core.engine import Engine
from router.core.events import Event, Notification
from router.core.model import Delivery, parse_delivery_line


@dataclass
class ReplayResult:
    notifications: list[Notification] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    lines: int = 0
    deliveries: int = 0
    skipped: list[str] = field(default_factory=list)
    engine: Engine | None = None

    def summary(self) -> dict[str, object]:
        counters = dict(self.engine.counters) if self.engine else {}
        actions: dict[str, int] = {}
        for n in self.notifications:
            actions[n.action] = actions.get(n.action, 0) + 1
        return {
            "lines": self.lines,
            "deliveries": self.deliveries,
            "skipped_lines": len(self.skipped),
            "alerts_received": counters.get("alerts_received", 0),
            "alert_instances": counters.get("instances", 0),
            "duplicates": counters.get("duplicates", 0),
            "incidents": len(self.engine.incidents()) if self.engine else 0,
            "notifications": len(self.notifications),
            **{f"{action}s": count for action, count in sorted(actions.items())},
        }


def replay(
    engine: Engine,
    stream: Iterator[tuple[int, str]],
    source: str,
    on_skip: TextIO | None = None,
) -> ReplayResult:
    result = ReplayResult(engine=engine)
    clock: datetime | None = None
    for number, line in stream:
        result.lines += 1
        if not line.strip():
            continue
        try:
            delivery: Delivery = parse_delivery_line(line)
        except InputError as exc:
            message = f"{source}:{number}: {exc}"
            result.skipped.append(message)
            if on_skip is not None:
                print(message, file=on_skip)
            continue
        received = delivery.received
        # The clock never runs backwards: a line recorded slightly out of order is taken now.
        clock = received if clock is None or received > clock else clock
        result.deliveries += 1
        result.notifications.extend(engine.ingest(delivery, clock))
        result.events.extend(engine.drain_events())
    if clock is not None:
        result.notifications.extend(engine.finish(clock))
        result.events.extend(engine.drain_events())
    return result
