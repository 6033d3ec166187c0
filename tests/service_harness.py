"""Shared by the service tests: a short-grace rule pack, an Alertmanager-shaped storm on the
small-cluster fixture, an in-process service on a loopback port, and a real `serve` subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from ground.times import ZERO_TIME, format_time
from router.cli.cmd_serve import run
from router.core.engine import Engine
from router.core.model import Delivery, parse_delivery_line
from router.core.settings import EngineSettings
from router.service import watchdog
from router.service.app import Clock, Service
from router.service.config import Settings, load_settings
from rules.ruleset import RuleSet
from topology.load import load_topology

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY = ROOT / "tests" / "fixtures" / "topology" / "small-cluster.prom"
DELIVERIES = ROOT / "tests" / "fixtures" / "deliveries"
WEBHOOK = "/api/v1/alertmanager"

# Graces of seconds, so that pages happen within a test's lifetime.
FAST_RULES = """
defaults:
  grace: {critical: 1s, warning: 2s, info: 2s, none: 2s}
  outlive_root: 2s
rules:
  - name: node-not-ready
    match: ['alertname=~"KubeNodeNotReady|KubeNodeUnreachable"']
    entity: {kind: node, name: "{node}"}
    propagates: true
  - name: pod
    match: ['alertname=~"KubePodNotReady|KubePodCrashLooping"']
    entity: {kind: pod, namespace: "{namespace}", name: "{pod}"}
    propagates: true
"""

NODE1_PODS = [
    ("shop", "checkout-6d8f7b9c5d-x2x9q"),
    ("shop", "edge-proxy-7c9f8d6b5-w4j8n"),
    ("kube-system", "coredns-5d78c9869d-8xk2p"),
    ("monitoring", "prometheus-k8s-0"),
]


def write_rules(directory: Path) -> Path:
    path = directory / "fast-rules.yaml"
    path.write_text(FAST_RULES)
    return path


def config_file(directory: Path, data_dir: Path, extra: str = "") -> Path:
    rules = write_rules(directory)
    path = directory / "alert-router.yaml"
    path.write_text(
        f"""
storage:
  data_dir: {data_dir}
topology:
  files: [{TOPOLOGY}]
rules:
  files: [{rules}]
engine:
  inference: {{grace: 1}}
runtime:
  tick_interval: 0.05s
  drain_timeout: 5s
logging:
  level: warning
{extra}
"""
    )
    return path


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    data = tmp_path / "data"
    return load_settings(config_file(tmp_path, data), overrides)


def alert(fingerprint: str, starts: datetime, labels: dict[str, str], ends: datetime | None = None) -> dict:
    return {
        "status": "resolved" if ends else "firing",
        "labels": labels,
        "annotations": {"summary": f"{labels['alertname']} test"},
        "startsAt": format_time(starts),
        "endsAt": format_time(ends) if ends else ZERO_TIME,
        "generatorURL": "http://prometheus-k8s-0:9090/graph",
        "fingerprint": fingerprint,
    }


def payload(alerts: list[dict], namespace: str) -> dict:
    return {
        "receiver": "alert-router",
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": alerts,
        "groupLabels": {"namespace": namespace},
        "commonLabels": {"namespace": namespace},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager-main-0:9093",
        "version": "4",
        "groupKey": f'{{}}:{{namespace="{namespace}"}}',
        "truncatedAlerts": 0,
    }


def storm(
    start: datetime, rounds: int = 6, resolve_at: int | None = 4, every: float = 10.0
) -> list[tuple[float, dict]]:
    """(seconds after `start`, payload): worker-1 goes NotReady (its node alert, its pods'
    alerts) and an unrelated crash loop on worker-2. Each round re-sends every group
    (group_interval) from both replicas of an HA pair, the second one a second later; at round
    `resolve_at` everything is sent once as resolved."""
    node = {
        "alertname": "KubeNodeNotReady",
        "node": "worker-1",
        "severity": "critical",
        "namespace": "default",
    }
    pods = [
        {"alertname": "KubePodNotReady", "namespace": ns, "pod": pod, "severity": "warning"}
        for ns, pod in NODE1_PODS
    ]
    crash = {
        "alertname": "KubePodCrashLooping",
        "namespace": "batch",
        "pod": "nightly-report-29012345-q8z4m",
        "container": "report",
        "severity": "warning",
    }
    everything = [("node-w1", node), *[(f"pod-{i}", p) for i, p in enumerate(pods)], ("crash-batch", crash)]
    out = []
    for r in range(rounds):
        if resolve_at is not None and r > resolve_at:
            break
        at = r * every
        ended = start + timedelta(seconds=at) if resolve_at is not None and r == resolve_at else None
        groups: dict[str, list[dict]] = {}
        for fp, labels in everything:
            groups.setdefault(labels["namespace"], []).append(alert(fp, start, labels, ended))
        for namespace, alerts in sorted(groups.items()):
            body = payload(alerts, namespace)
            out.append((at, body))
            out.append((at + 1, body))  # the second replica of the HA pair
    return sorted(out, key=lambda item: item[0])


def offline(
    lines: list[str], rules: Path, until: datetime | None = None, actions: list[dict] | None = None
) -> list[dict]:
    """The engine over a recorded stream (and actions), ticked to `until`: what replay decides."""
    engine = Engine(load_topology([TOPOLOGY]), RuleSet.load([rules]), EngineSettings(inference={"grace": 1}))
    items: list[tuple[datetime, int, Any]] = []
    for i, line in enumerate(lines):
        delivery = parse_delivery_line(line)
        items.append((delivery.received, i, delivery))
    out = []
    for at, _, item in sorted(items, key=lambda x: (x[0], x[1])):
        out.extend(engine.ingest(item, at) if isinstance(item, Delivery) else [])
    if until is not None:
        out.extend(engine.tick(until))
    return [n.to_dict() for n in out]


class ManualClock(Clock):
    def __init__(self, start: datetime) -> None:
        self.t = start
        super().__init__(lambda: self.t)

    def set(self, moment: datetime) -> None:
        self.t = moment


@dataclass
class Running:
    url: str
    service: Service
    session: aiohttp.ClientSession

    async def post(self, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        h = {"Content-Type": "application/json", **(headers or {})}
        async with self.session.post(self.url + WEBHOOK, data=data, headers=h) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.session.get(self.url + path, headers=headers or {}) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text


@contextlib.asynccontextmanager
async def serving(settings: Settings, clock: Clock | None = None, **kwargs: Any) -> AsyncIterator[Running]:
    """The real service and HTTP app, in this event loop, on 127.0.0.1 and a free port."""
    settings = settings.model_copy(
        update={"server": settings.server.model_copy(update={"listen": "127.0.0.1:0"})}
    )
    service = Service(settings, clock=clock, **kwargs)
    stop = asyncio.Event()
    bound: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run(settings, stop=stop, service=service, on_listening=lambda h, p: bound.set_result((h, p)))
    )
    done, _ = await asyncio.wait({task, bound}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    host, port = bound.result()
    async with aiohttp.ClientSession() as session:
        try:
            yield Running(f"http://{host}:{port}", service, session)
        finally:
            stop.set()
            await task


async def until(predicate: Any, timeout: float = 10.0, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)


def now_ms() -> datetime:
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


# ---------------------------------------------------------------------------- subprocess


class ServeProcess:
    """`python -m router.cli.main serve` as a real process; the port is read from its log."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.log_path = log_path
        # PYTHONFAULTHANDLER: a process that will not stop is sent SIGABRT (wait()), which prints
        # every thread's stack into its log before it dies.
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "ALERT_ROUTER_LOGGING__LEVEL": "info",
            "PYTHONFAULTHANDLER": "1",
        }
        self.handle = open(log_path, "ab")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "router.cli.main",
                "serve",
                "--config",
                str(config),
                "--listen",
                "127.0.0.1:0",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.handle,
            stderr=self.handle,
        )
        self.url = self._wait_listening()

    def _wait_listening(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"serve exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}"
                )
            lines = self.log_path.read_text().splitlines()
            for line in lines[seen:]:
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("msg") == "listening":
                        return f"http://{record['address']}"
            time.sleep(0.05)
        raise AssertionError("serve did not start listening")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait()

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self, timeout: float = 30.0) -> int:
        try:
            code = self.proc.wait(timeout)
            if code == watchdog.EXIT_OVERRAN:  # the stacks that held the exit, in the test report
                warnings.warn(f"serve: {watchdog.MESSAGE}: {self.log_path.read_text()[-6000:]}", stacklevel=2)
            return code
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # the stacks of the hang, into the log
            self.proc.wait(10)
            raise AssertionError(
                f"serve did not exit within {timeout} s: {self.log_path.read_text()[-6000:]}"
            ) from None
        finally:
            self.handle.close()
