"""The real programs of the end-to-end suite, as child processes on loopback ports.

- `AlertmanagerProcess`: Debian's `prometheus-alertmanager`, alone or as one replica of an HA
  pair clustered over loopback (memberlist gossip of silences and the notification log).
- `RouterProcess`: `alert-router serve` with a generated configuration, on a port chosen here
  so that Alertmanager's configuration can name it before the router starts.

Both keep their log in their working directory; `log_tail()` goes into assertion messages so a
failing end-to-end test says what the program said.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from tests.promharness import HarnessError, free_port

ROOT = Path(__file__).resolve().parents[2]


def alertmanager_binary() -> str:
    """Debian's binary, or a loud failure that says how to get it (CI=true too)."""
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found:
        return found
    raise HarnessError(
        "prometheus-alertmanager is missing: the end-to-end tests need Debian's "
        "`prometheus-alertmanager` package (bash scripts/install-externals.sh)"
    )


def _wait_ready(url: str, process: subprocess.Popen[bytes], what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise HarnessError(f"{what} exited with {process.returncode}: {_tail(log)}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise HarnessError(f"{what} not ready after {timeout:g}s: {_tail(log)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


class AlertmanagerProcess:
    """One Alertmanager. `cluster_port` and `peers` make it a replica of a gossip cluster;
    without them clustering is off (`--cluster.listen-address=`)."""

    def __init__(
        self,
        workdir: Path,
        config: str,
        *,
        cluster_port: int | None = None,
        peers: list[int] = (),  # type: ignore[assignment]
        peer_timeout: str = "15s",
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "alertmanager.yml").write_text(config)
        self.log = workdir / "alertmanager.log"
        cluster = (
            [
                f"--cluster.listen-address=127.0.0.1:{cluster_port}",
                f"--cluster.advertise-address=127.0.0.1:{cluster_port}",
                *(f"--cluster.peer=127.0.0.1:{peer}" for peer in peers),
                f"--cluster.peer-timeout={peer_timeout}",
                "--cluster.settle-timeout=2s",  # default 1m: notifications wait for it at start
                "--cluster.gossip-interval=100ms",
                "--cluster.pushpull-interval=2s",
            ]
            if cluster_port
            else ["--cluster.listen-address="]
        )
        self.command = [
            alertmanager_binary(),
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            "--log.level=info",
            *cluster,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> AlertmanagerProcess:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        _wait_ready(f"{self.url}/-/ready", self.process, "alertmanager", self.log, timeout)
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        _stop(process)

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log, lines)

    def api(self, path: str) -> Any:
        response = requests.get(f"{self.url}/api/v2/{path}", timeout=5)
        response.raise_for_status()
        return response.json()

    def peers(self) -> int:
        return len(self.api("status")["cluster"].get("peers") or [])


class RouterProcess:
    """`alert-router serve --config FILE` (the installed package's module, as the image runs it)."""

    def __init__(self, workdir: Path, config: str, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.config = workdir / "alert-router.yaml"
        self.config.write_text(config)
        self.log = workdir / "alert-router.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> RouterProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "router.cli.main", "serve", "--config", str(self.config)],
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_ready(f"{self.url}/healthz", self.process, "alert-router", self.log, timeout)
        return self

    def stop(self) -> int | None:
        process, self.process = self.process, None
        _stop(process, timeout=30)
        return process.returncode if process else None

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log, lines)


__all__ = ["AlertmanagerProcess", "RouterProcess", "alertmanager_binary", "free_port"]
