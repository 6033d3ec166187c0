"""The real Alertmanager mutes a warning as it heals: its resolve never comes.

Alertmanager's inhibition (critical mutes warning of the same name and namespace, as
kube-prometheus configures it) drops a muted alert from its group's notifications, resolved or
not. Here the real binary shows it: the warning's resolve is never sent, the warning is simply
absent from the group's later flushes. The stream it delivered, replayed through the engine,
ends the warning where it left its group, so it is never paged as "still firing". With critical
alerts on a sub-route of their own (kube-prometheus' routing) the warning's group never flushes
again: a muted symptom is not heard of since, and the engine's copy of the inhibit rules ends it
where it would otherwise be judged afresh as still firing, after its cause healed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from ground.times import format_time
from router.core.engine import Engine
from router.core.model import Delivery
from router.core.settings import EngineSettings
from rules.ruleset import RuleSet
from tests.e2e.programs import AlertmanagerProcess
from tests.promharness import free_port
from tests.world import small_cluster

pytestmark = pytest.mark.e2e

CHECKOUT = "service/default/shop/checkout"


class Capture:
    """A webhook receiver on a loopback port: every delivery, with when it came."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received = format_time(datetime.now(UTC))
                capture.lines.append({"received_at": received, "payload": json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def carrying(self, service: str, status: str) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines
            for a in line["payload"]["alerts"]
            if a["labels"].get("service") == service and a["status"] == status
        ]


@pytest.fixture
def capture() -> Iterator[Capture]:
    receiver = Capture()
    yield receiver
    receiver.server.shutdown()


def config(url: str) -> str:
    return f"""
route:
  receiver: router
  group_by: [namespace]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: router
    webhook_configs:
      - url: {url}
        send_resolved: true
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [namespace, alertname]
"""


def post(am: AlertmanagerProcess, labels: dict[str, str], ends: datetime) -> None:
    alert = {"labels": labels, "startsAt": format_time(STARTED), "endsAt": format_time(ends)}
    requests.post(f"{am.url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()


def wait_for(what: str, check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.2)


def mute_as_it_heals(
    am: AlertmanagerProcess, capture: Capture, later: datetime, also_heals: dict[str, str] | None = None
) -> None:
    """The warning fires; the critical alert that mutes it fires; the warning heals while muted
    (with `also_heals`); two group intervals later the critical alert heals too."""
    post(am, WARNING, later)
    wait_for("flush of the warning", lambda: capture.carrying("checkout", "firing"))
    post(am, CRITICAL, later)  # mutes the warning from its group's next flush on
    wait_for("flush of the critical alert", lambda: capture.carrying("cart", "firing"))
    post(am, WARNING, datetime.now(UTC))  # the warning heals while muted
    if also_heals:
        post(am, also_heals, datetime.now(UTC))
    time.sleep(5)  # two group intervals
    post(am, CRITICAL, datetime.now(UTC))
    wait_for("the critical alert's resolve", lambda: capture.carrying("cart", "resolved"))
    time.sleep(5)


STARTED = datetime.now(UTC).replace(microsecond=0)
WARNING = {"alertname": "HighErrorRate", "namespace": "shop", "service": "checkout", "severity": "warning"}
CRITICAL = {"alertname": "HighErrorRate", "namespace": "shop", "service": "cart", "severity": "critical"}
NOISE = {"alertname": "CPUThrottlingHigh", "namespace": "shop", "pod": "cart-5c8d-1", "severity": "info"}


def test_a_warning_muted_as_it_heals_gets_no_resolve_and_is_not_paged(tmp_path: Path, capture: Capture):
    am = AlertmanagerProcess(tmp_path / "am", config(capture.url)).start()
    try:
        later = datetime.now(UTC) + timedelta(hours=1)
        post(am, NOISE, later)
        wait_for("a first flush", lambda: capture.lines)
        # The warning's flush re-sends the noise: Alertmanager sends snapshots.
        mute_as_it_heals(am, capture, later)
    finally:
        am.stop()

    # Alertmanager's side: the warning's resolve never came, and later flushes left it out.
    assert capture.carrying("checkout", "resolved") == []
    with_it = capture.carrying("checkout", "firing")
    last_with_it = max(i for i, line in enumerate(capture.lines) if line in with_it)
    assert any(
        line["payload"]["groupKey"] == capture.lines[last_with_it]["payload"]["groupKey"]
        for line in capture.lines[last_with_it + 1 :]
    ), "no later flush of the warning's group"

    # The router's side: the stream replayed; the warning ended where it left its group.
    deliveries = [Delivery.model_validate(line) for line in capture.lines]
    seconds = EngineSettings(departed_after=timedelta(seconds=1))  # the flushes are seconds apart here
    paged, engine = replay(deliveries, seconds)
    assert engine.counters["departed"] == 1
    assert CHECKOUT not in paged
    # Waiting for a resolve that never comes would page it as still firing.
    waiting, _ = replay(deliveries, EngineSettings(departed_after=timedelta(days=1), inhibit_rules=[]))
    assert CHECKOUT in waiting


def sub_route_config(url: str) -> str:
    """kube-prometheus' shape: critical alerts on a sub-route of their own, so a warning and the
    critical that mutes it are in different groups."""
    return f"""
route:
  receiver: router
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: ['severity="critical"']
      receiver: router
      group_by: [alertname]
receivers:
  - name: router
    webhook_configs:
      - url: {url}
        send_resolved: true
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity=~"warning|info"']
    equal: [namespace, alertname]
"""


DNS_DOWN = {"alertname": "CoreDNSDown", "namespace": "kube-system", "severity": "critical"}


def test_a_muted_symptom_on_its_own_group_is_not_paged_after_its_cause(tmp_path: Path, capture: Capture):
    """checkout's warning is a symptom of cluster DNS. The same alert turns critical on cart, on
    the critical sub-route: Alertmanager mutes the warning, which heals while muted. Its group
    holds only the warning and never flushes again, so no snapshot shows it gone; it outlived
    DNS and was judged afresh as still firing. Read with the inhibit rules it was muted, not
    heard of since: it ends there instead."""
    am = AlertmanagerProcess(tmp_path / "am", sub_route_config(capture.url)).start()
    try:
        later = datetime.now(UTC) + timedelta(hours=1)
        post(am, DNS_DOWN, later)
        wait_for("flush of CoreDNSDown", lambda: capture.lines)
        mute_as_it_heals(am, capture, later, also_heals=DNS_DOWN)
    finally:
        am.stop()

    assert capture.carrying("checkout", "resolved") == []
    warning_group = {line["payload"]["groupKey"] for line in capture.carrying("checkout", "firing")}
    assert len(warning_group) == 1 and not warning_group & {
        line["payload"]["groupKey"] for line in capture.carrying("cart", "firing")
    }, "the warning and the critical alert share a group"
    deliveries = [Delivery.model_validate(line) for line in capture.lines]
    seconds = timedelta(seconds=1)
    paged, engine = replay(deliveries, EngineSettings(departed_after=seconds))
    assert CHECKOUT not in paged
    assert engine.counters["departed"] == 1
    # Snapshots alone cannot tell: the warning's group never flushed again.
    waiting, _ = replay(deliveries, EngineSettings(departed_after=seconds, inhibit_rules=[]))
    assert CHECKOUT in waiting


def replay(deliveries: list[Delivery], settings: EngineSettings) -> tuple[set[str], Engine]:
    engine = Engine(small_cluster(), RuleSet.load(), settings)
    notes = []
    for delivery in deliveries:
        notes.extend(engine.ingest(delivery, delivery.received))
    notes.extend(engine.finish(deliveries[-1].received))
    return {n.root_entity for n in notes if n.action == "page"}, engine
