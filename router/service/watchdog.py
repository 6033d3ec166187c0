"""A bound on the whole shutdown: once SIGTERM came, the process is gone within `timeout`.

Every step of a graceful stop has a timeout of its own (requests in flight, the engine's last
commits, the outbox drain, each database statement), but the interpreter's exit also waits for
every worker thread, and a thread stuck where no timeout reaches would keep the process alive
until Kubernetes kills it at the end of terminationGracePeriodSeconds, with nothing said.
The watchdog runs in a daemon thread, so it is the one thing that cannot hang with the rest:
when the bound passes it logs why, writes every thread's stack to stderr (what held the exit),
and ends the process with status 70 (EX_SOFTWARE). What was committed is safe in the event log;
what was not is what a kill -9 would lose, which a restart repairs.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import sys
import threading

from router.service import jsonlog

log = logging.getLogger("alert_router.serve")

EXIT_OVERRAN = 70  # os.EX_SOFTWARE
MESSAGE = "shutdown overran its bound"


class Watchdog:
    """Armed when the shutdown begins; never disarmed, as the exit it bounds comes after."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        """A daemon timer: it cannot itself keep the process alive. Called on the event loop,
        whose tasks' stacks it prints too (an await that never ends leaves no thread blocked)."""
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = threading.Timer(self.timeout, _overran, args=(self.timeout, loop))
            self._timer.name = "alert-router-shutdown-watchdog"
            self._timer.daemon = True
            self._timer.start()


def _overran(timeout: float, loop: asyncio.AbstractEventLoop) -> None:
    log.error(
        "%s (%.0f s, runtime.shutdown_timeout): exiting now; the threads and tasks that held it follow",
        MESSAGE,
        timeout,
    )
    jsonlog.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    with contextlib.suppress(Exception):  # read from another thread, as the process ends anyway
        for task in list(asyncio.all_tasks(loop)):
            print(f"\nTask {task.get_name()} (outermost first):", file=sys.stderr)
            for line in _awaiting(task):
                print(f"  {line}", file=sys.stderr)
    sys.stderr.flush()
    os._exit(EXIT_OVERRAN)  # sys.exit would wait for the very threads that hang


def _awaiting(task: asyncio.Task[object]) -> list[str]:
    """Where a suspended task waits: its coroutine and each one it awaits in turn (a task's own
    stack shows only the outermost frame), down to the future it waits for."""
    lines = []
    awaited: object = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            lines.append(repr(awaited)[:300])  # a future, or a coroutine already finished
            break
        code = frame.f_code
        lines.append(f'File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return lines
