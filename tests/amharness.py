"""A real Alertmanager (Debian's `prometheus-alertmanager`) on a loopback port, for tests.

Started with its own storage directory and a minimal configuration, cluster gossip off; waits
until `/-/ready` answers; stopped at the end. A missing binary fails the test with a message
that says how to install it (scripts/install-externals.sh), it never skips.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CONFIG = """\
route:
  receiver: blackhole
receivers:
  - name: blackhole
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def binary() -> str:
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not found:
        pytest.fail(
            "Alertmanager is not installed: run scripts/install-externals.sh "
            "(Debian's prometheus-alertmanager)"
        )
    return found


@contextmanager
def running_alertmanager(workdir: Path) -> Iterator[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    config.write_text(CONFIG)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            binary(),
            f"--config.file={config}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"Alertmanager did not start: {(workdir / 'alertmanager.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
