"""Bounded waits that never lose a cancellation.

On Python 3.11, `asyncio.wait_for` returns the result when the awaited thing completes in the
same loop iteration as the task waiting on it is cancelled, and the cancellation is gone
(python/cpython#86296, fixed in 3.12 by rewriting it on `asyncio.timeout`). A loop that waits
with it (`while True: ... wait_for(event.wait(), poll)`) and is stopped by cancelling its task
then never stops if the event is set at that moment: a replica's engine loop did, and its
shutdown waited for it until the watchdog ended the process. These waits are built on
`asyncio.timeout`, which hands every cancellation on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """`awaitable`'s result, or TimeoutError after `timeout` seconds (None: no bound)."""
    async with asyncio.timeout(timeout):
        return await awaitable


async def until_set(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for `event` at most `timeout` seconds: whether it was set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
