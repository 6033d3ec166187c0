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
        """A daemon timer: it cannot itself keep the process alive."""
        if self._timer is None:
            self._timer = threading.Timer(self.timeout, _overran, args=(self.timeout,))
            self._timer.name = "alert-router-shutdown-watchdog"
            self._timer.daemon = True
            self._timer.start()


def _overran(timeout: float) -> None:
    log.error(
        "%s (%.0f s, runtime.shutdown_timeout): exiting now; the threads that held it follow",
        MESSAGE,
        timeout,
    )
    jsonlog.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(EXIT_OVERRAN)  # sys.exit would wait for the very threads that hang
