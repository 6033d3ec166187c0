"""The shutdown bound: a process whose exit hangs ends anyway, says why, and shows the stack."""

from __future__ import annotations

import subprocess
import sys
import time

from router.service import watchdog
from tests.service_harness import ROOT

# A shutdown held two ways: a worker thread in a call that never returns (the interpreter's
# exit waits for it), and an await on the event loop that nothing will ever complete.
HANGS = """
import asyncio, threading, time
from router.service import jsonlog, watchdog
jsonlog.setup()

def stuck_in_a_call_that_never_returns():
    time.sleep(3600)

async def awaiting_what_never_comes():
    await asyncio.Event().wait()

async def shutdown():
    watchdog.Watchdog({timeout}).arm()
    threading.Thread(target=stuck_in_a_call_that_never_returns).start()
    await awaiting_what_never_comes()

asyncio.run(shutdown())
"""

CLEAN = """
import asyncio
from router.service.watchdog import Watchdog

async def shutdown():
    Watchdog(600).arm()

asyncio.run(shutdown())
"""


def run(code: str) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr, time.monotonic() - started


def test_a_shutdown_that_hangs_ends_at_the_bound_with_what_held_it():
    code, stderr, took = run(HANGS.format(timeout=0.5))
    assert code == watchdog.EXIT_OVERRAN
    assert watchdog.MESSAGE in stderr and "runtime.shutdown_timeout" in stderr
    assert "stuck_in_a_call_that_never_returns" in stderr  # the thread
    assert "awaiting_what_never_comes" in stderr  # the task
    assert took < 30


def test_a_clean_exit_is_not_held_by_the_watchdog():
    code, stderr, took = run(CLEAN)
    assert code == 0 and watchdog.MESSAGE not in stderr
    assert took < 30  # the 600 s timer is a daemon: it does not keep the process
