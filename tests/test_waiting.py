"""Bounded waits that never lose a cancellation (ground/waiting.py).

The loops of the service wait for an event with a bound and are stopped by cancelling their
task. The cancellation must end the loop even when it comes in the very iteration the event is
set: with Python 3.11's `asyncio.wait_for` it was lost there, and a replica's shutdown waited
for its engine loop until the watchdog ended the process.
"""

from __future__ import annotations

import asyncio

import pytest

from ground.waiting import until_set, within


async def _loop_forever(event: asyncio.Event, rounds: list[int]) -> None:
    """The shape of the engine and outbox loops: wait, work, wait again."""
    while True:
        event.clear()
        await until_set(event, 10)
        rounds.append(1)


@pytest.mark.parametrize("set_first", [True, False])
async def test_a_cancel_that_comes_with_the_event_ends_the_loop(set_first):
    event, rounds = asyncio.Event(), []
    task = asyncio.create_task(_loop_forever(event, rounds))
    await asyncio.sleep(0)  # the loop waits for the event
    if set_first:
        event.set()
        task.cancel()
    else:
        task.cancel()
        event.set()
    with pytest.raises(asyncio.CancelledError):
        await within(task, 5)  # TimeoutError here: the cancellation was lost
    assert task.cancelled()


async def test_the_waits_keep_their_bounds():
    event = asyncio.Event()
    assert await until_set(event, 0.01) is False
    event.set()
    assert await until_set(event, 0.01) is True
    assert await within(asyncio.sleep(0, result="done"), 1) == "done"
    with pytest.raises(TimeoutError):
        await within(asyncio.sleep(5), 0.01)
