"""The shutdown bound: a process whose exit hangs ends anyway, says why, and shows the stack."""

from __future__ import annotations

import subprocess
import sys
import time

from router.service import watchdog
from tests.service_harness import ROOT

# A shutdown that finished its own steps, left with a worker thread that never returns (as a
# database call beyond every timeout would): the interpreter's exit waits for it.
HANGS_AT_EXIT = """
import threading, time
from router.service import jsonlog, watchdog
jsonlog.setup()

def stuck_in_a_call_that_never_returns():
    time.sleep(3600)

threading.Thread(target=stuck_in_a_call_that_never_returns).start()
watchdog.Watchdog({timeout}).arm()
"""


def run(code: str) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr, time.monotonic() - started


def test_an_exit_that_hangs_ends_at_the_bound_with_the_stack_that_held_it():
    code, stderr, took = run(HANGS_AT_EXIT.format(timeout=0.5))
    assert code == watchdog.EXIT_OVERRAN
    assert watchdog.MESSAGE in stderr and "runtime.shutdown_timeout" in stderr
    assert "stuck_in_a_call_that_never_returns" in stderr  # the thread that held the exit
    assert took < 30


def test_a_clean_exit_is_not_held_by_the_watchdog():
    code, stderr, took = run("from router.service.watchdog import Watchdog\nWatchdog(600).arm()")
    assert code == 0 and watchdog.MESSAGE not in stderr
    assert took < 30  # the 600 s timer is a daemon: it does not keep the process
