"""The whole pipeline on loopback, real programs end to end:

    cluster exporter --scrape 1s--> Prometheus (kube-prometheus rules, `for:` scaled)
        --alerts--> Alertmanager (one, or an HA pair gossiping over loopback)
        --webhook--> alert-router serve --Slack Web API--> Slack stand-in
                                        <--signed button clicks--
                     alert-router --silences (API v2)--> Alertmanager

    with Stack(tmp_path, cluster, replicas=2) as stack:
        stack.cluster.stop_node("worker-3")
        page = stack.wait_for_notification("page", timeout=...)

Every duration of every program is scaled by one factor (tests/e2e/configs.py), so a node
death that takes 16 minutes to page in a real cluster pages here in about 40 seconds, through
the same sequence of alerts. Observations come from where an operator would look: the
router's notification log (the contract's JSON lines), its HTTP API, the Slack stand-in's
recorded calls, Alertmanager's API v2, and the router's event log.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

from tests.e2e.cluster import ClusterExporter, E2ECluster
from tests.e2e.configs import (
    alertmanager_config,
    prometheus_alerting,
    router_config,
    router_rule_pack,
    scaled_seconds,
    time_factor,
)
from tests.e2e.programs import AlertmanagerProcess, RouterProcess, free_port
from tests.e2e.rules import catalogue_rules
from tests.promharness import Harness, HarnessError, PrometheusProcess, render
from tests.slack_standin import TOKEN, SlackStandIn
from tests.test_slack_interactions import SECRET, form, sign

T = TypeVar("T")
PAGES, NOTICES = "C0PAGES01", "C0NOTICE1"
ROUTER_TOKEN = "e2e-alertmanager-token"


class Stack:
    def __init__(
        self,
        workdir: Path,
        cluster: E2ECluster,
        *,
        replicas: int = 1,
        factor: float | None = None,
    ) -> None:
        self.workdir = workdir
        self.cluster = cluster
        self.replicas = replicas
        self.factor = factor if factor is not None else time_factor()
        self.harness = Harness(workdir / "harness")
        self.exporter: ClusterExporter | None = None
        self.slack = SlackStandIn()
        self.alertmanagers: list[AlertmanagerProcess] = []
        self.prometheus: PrometheusProcess | None = None
        self.router: RouterProcess | None = None
        self.data_dir = workdir / "router-data"
        self.token_file = workdir / "router-token"
        self.token_file.write_text(ROUTER_TOKEN + "\n")

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def start(self) -> None:
        exporter = self.exporter = ClusterExporter(self.harness, self.cluster)
        _run(self.harness, self.slack.start())
        router_port = free_port()
        router_url = f"http://127.0.0.1:{router_port}"
        am_config = alertmanager_config(router_url, self.token_file, self.factor)
        cluster_ports = [free_port() for _ in range(self.replicas)] if self.replicas > 1 else []
        for index in range(self.replicas):
            self.alertmanagers.append(
                AlertmanagerProcess(
                    self.workdir / f"alertmanager-{index}",
                    am_config,
                    cluster_port=cluster_ports[index] if cluster_ports else None,
                    peers=[p for j, p in enumerate(cluster_ports) if j != index],
                    # A replica waits peer_timeout x its position before it notifies, unless the
                    # notification log gossiped from the first says it was done. Shorter than the
                    # gossip interval, as over a slow network: every flush arrives twice, the
                    # worst case of the duplicates HA pairs send.
                    peer_timeout="10ms",
                )
            )
        self.prometheus = exporter.prometheus(
            # Range windows scaled too, so that alerts clear as fast as they fire.
            catalogue_rules(self.factor, scale_ranges=True),
            config={"alerting": prometheus_alerting([am.port for am in self.alertmanagers])},
            # Firing alerts are re-sent every second and valid for 4 of them: when Prometheus
            # stops, Alertmanager resolves its alerts (the Watchdog) within seconds.
            args=["--rules.alert.resend-delay=1s", "--rules.alert.for-grace-period=1s"],
        )
        pack = self.workdir / "router-rules.yaml"
        pack.write_text(router_rule_pack(self.factor))
        slack = {
            "bot_token": TOKEN,
            "signing_secret": SECRET,
            "api_url": self.slack.url,
            "default_channel": PAGES,
            "notice_channel": NOTICES,
            "response_url_prefixes": [f"http://127.0.0.1:{self.slack.port}/response/"],
        }
        self.router = RouterProcess(
            self.workdir,
            router_config(
                port=router_port,
                data_dir=self.data_dir,
                rules_file=pack,
                token_file=self.token_file,
                prometheus_url=self.prometheus.url,
                alertmanager_urls=[am.url for am in self.alertmanagers],
                factor=self.factor,
                slack=slack,
            ),
            router_port,
        ).start()
        for am in self.alertmanagers:
            am.start()
        if self.replicas > 1:
            self.wait_until(
                lambda: all(am.peers() == self.replicas for am in self.alertmanagers),
                30,
                "the Alertmanager replicas to see each other",
            )
        self.wait_until(self._router_ready, 60, "the router to be ready (topology from Prometheus)")

    def close(self) -> None:
        if self.router is not None:
            self.router.stop()
        for am in self.alertmanagers:
            am.stop()
        with contextlib.suppress(Exception):  # closing: the harness may already be gone
            _run(self.harness, self.slack.stop())
        self.harness.close()

    def _router_ready(self) -> bool:
        try:
            return requests.get(f"{self.router_url}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    @property
    def router_url(self) -> str:
        assert self.router is not None
        return self.router.url

    # ------------------------------------------------------------------ waiting

    def wait_until(self, predicate: Callable[[], T], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{self.diagnostics()}")
            time.sleep(0.25)

    def seconds(self, real: str) -> float:
        """A real-world duration (`15m`) in this stack's scaled seconds."""
        return scaled_seconds(real, self.factor)

    def diagnostics(self) -> str:
        parts = [f"notifications: {json.dumps(self.notifications(), indent=None)[:4000]}"]
        if self.prometheus is not None:
            try:
                firing = self.prometheus.query('ALERTS{alertstate="firing"}')
                parts.append("firing in Prometheus: " + ", ".join(sorted(_alert_key(r) for r in firing)))
            except (requests.RequestException, HarnessError) as exc:
                parts.append(f"Prometheus: {exc}")
        if self.router is not None:
            parts.append(f"router log:\n{self.router.log_tail(15)}")
        return "\n".join(parts)

    # ------------------------------------------------------------------ observations

    def notifications(self) -> list[dict[str, Any]]:
        path = self.data_dir / "notifications.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def notified(self, action: str, **match: Any) -> list[dict[str, Any]]:
        return [
            n
            for n in self.notifications()
            if n["action"] == action and all(_get(n, key) == value for key, value in match.items())
        ]

    def cluster_text(self) -> str:
        """The cluster as kube-state-metrics text: the topology a replay is given."""
        return render([self.cluster])

    def api(self, path: str) -> Any:
        response = requests.get(
            f"{self.router_url}{path}", headers={"Authorization": f"Bearer {ROUTER_TOKEN}"}, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def export_log(self, path: Path) -> list[dict[str, Any]]:
        """`alert-router log export` of the running router: every delivery it recorded, in the
        replay format (what an operator would do to replay a production hour)."""
        command = ["log", "export", "--data-dir", str(self.data_dir), "-o", str(path)]
        subprocess.run(
            [sys.executable, "-m", "router.cli.main", *command],
            check=True,
            capture_output=True,
            cwd=self.workdir,
            timeout=60,
        )
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def click(self, action_id: str, incident: str) -> requests.Response:
        """A signed Block Kit button click (by alice) on the router's interactions endpoint, as
        Slack sends it."""
        body = form(action_id, incident, f"http://127.0.0.1:{self.slack.port}/response/{incident}")
        return requests.post(
            f"{self.router_url}/api/v1/slack/interactions", data=body, headers=sign(body), timeout=10
        )


def _run(harness: Harness, coro: Any) -> Any:
    """Run a coroutine on the harness' server thread (where the stand-in Slack lives)."""
    return harness._thread.run(coro)


def _get(notification: dict[str, Any], dotted: str) -> Any:
    value: Any = notification
    for part in dotted.split("__"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _alert_key(row: dict[str, Any]) -> str:
    labels = dict(row["metric"])
    name = labels.pop("alertname", "?")
    keep = {k: v for k, v in labels.items() if k in ("node", "pod", "job", "instance", "deployment")}
    return f"{name}{keep}" if keep else name
