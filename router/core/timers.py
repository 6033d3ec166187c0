"""The engine's timers: (due, kind, arguments), fired in due order on the engine's own clock.

A timer due at T fires after every input stamped T: at a tie, information (the resolve that
Alertmanager sends at the end of a group interval) beats a timeout. Ties between timers keep
the order they were set in, so a replay fires them exactly as the live service did.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime
from typing import Any


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, str, tuple[Any, ...]]] = []
        self._seq = 0

    def set(self, due: datetime, kind: str, args: tuple[Any, ...]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, kind, args))

    def next_due(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime, *, inclusive: bool) -> Iterator[tuple[datetime, str, tuple[Any, ...]]]:
        """Timers due before `now` (and at `now` when `inclusive`), one at a time: firing one
        may set another that is due too."""
        heap = self._heap
        while heap and (heap[0][0] < now or (inclusive and heap[0][0] == now)):
            due, _, kind, args = heapq.heappop(heap)
            yield due, kind, args
