"""Prometheus metrics of the service (`GET /metrics`), in a registry of its own.

Counters of what the engine decided (duplicates, suppressed symptoms, pages, ...) come from the
engine's own counters, minus their values after the start-up rebuild: a restart does not count
history twice. Gauges (outbox depth and age, event-log size, backlog) are read at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

# `*_created` series double the output and nobody queries them.
disable_created_metrics()

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# engine counter -> (metric name, help)
ENGINE_COUNTERS = {
    "alerts_received": ("alert_router_engine_alerts", "Alerts the engine has seen in deliveries."),
    "duplicates": ("alert_router_duplicate_alerts", "Alerts already known (re-sends, HA replicas)."),
    "stale": ("alert_router_stale_alerts", "Firing re-sends of alert instances already resolved."),
    "departed": (
        "alert_router_departed_alerts",
        "Firing alerts taken as ended without a resolve (absent from their group's snapshot, "
        "or muted by an inhibit rule and not heard of since).",
    ),
    "instances": ("alert_router_alert_instances", "New alert instances (fingerprint, startsAt)."),
    "symptoms": ("alert_router_suppressed_symptoms", "Alerts attached to a root cause as its symptoms."),
    "pages": ("alert_router_pages", "Page notifications decided."),
    "notices": ("alert_router_notices", "Notice notifications decided."),
    "updates": ("alert_router_updates", "Update notifications decided."),
    "resolves": ("alert_router_resolves", "Resolve notifications decided."),
}


class _EngineCounters(Collector):
    def __init__(self, read: Callable[[], Mapping[str, int]]) -> None:
        self._read = read
        self.baseline: dict[str, int] = {}

    def collect(self) -> Iterator[CounterMetricFamily]:
        values = self._read()
        for key, (name, text) in ENGINE_COUNTERS.items():
            family = CounterMetricFamily(name, text)
            family.add_metric([], max(0, values.get(key, 0) - self.baseline.get(key, 0)))
            yield family


class _Gauges(Collector):
    def __init__(self, read: Callable[[], Mapping[str, tuple[str, float | dict[str, float]]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, (text, value) in self._read().items():
            if isinstance(value, dict):
                family = GaugeMetricFamily(name, text, labels=["notifier"])
                for label, number in sorted(value.items()):
                    family.add_metric([label], number)
            else:
                family = GaugeMetricFamily(name, text, value=value)
            yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "alert_router_webhook_requests", "Webhook requests by HTTP status.", ["code"], registry=r
        )
        self.deliveries = Counter(
            "alert_router_deliveries", "Deliveries durably recorded, by source.", ["source"], registry=r
        )
        self.alerts = Counter("alert_router_alerts", "Alerts in recorded deliveries.", registry=r)
        self.commit_seconds = Histogram(
            "alert_router_commit_latency_seconds",
            "From a delivery's arrival to its durable commit.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.decision_seconds = Histogram(
            "alert_router_decision_latency_seconds",
            "From an input's arrival to the engine's decisions on it.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.batch_size = Histogram(
            "alert_router_commit_batch_writes",
            "Writes grouped in one transaction (group commit).",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
            registry=r,
        )
        self.storage_errors = Counter(
            "alert_router_storage_errors", "Transactions that failed (locked, disk full, I/O).", registry=r
        )
        self.decisions_dropped = Counter(
            "alert_router_decisions_dropped",
            "Decision events and notifications the event log kept refusing, given up on (logged).",
            registry=r,
        )
        self.engine_errors = Counter(
            "alert_router_engine_errors", "Inputs the engine raised on (logged with a traceback).", registry=r
        )
        self.notifications = Counter(
            "alert_router_notifications_sent",
            "Notifications delivered, by notifier and action.",
            ["notifier", "action"],
            registry=r,
        )
        self.notifier_errors = Counter(
            "alert_router_notifier_errors", "Failed send attempts, by notifier.", ["notifier"], registry=r
        )
        self.notifications_failed = Counter(
            "alert_router_notifications_failed",
            "Notifications given up on (an error a retry cannot cure, or max_attempts).",
            ["notifier"],
            registry=r,
        )
        self.connections = Gauge("alert_router_http_connections", "Open HTTP connections.", registry=r)
        self.connections_refused = Counter(
            "alert_router_http_connections_refused",
            "Connections answered 503 and closed: server.max_connections were open.",
            registry=r,
        )
        self.engine = _EngineCounters(lambda: {})
        self.gauges = _Gauges(lambda: {})
        r.register(self.engine)
        r.register(self.gauges)

    def bind(
        self,
        engine_counters: Callable[[], Mapping[str, int]],
        gauges: Callable[[], Mapping[str, tuple[str, float | dict[str, float]]]],
    ) -> None:
        self.engine._read = engine_counters
        self.engine.baseline = dict(engine_counters())
        self.gauges._read = gauges

    def render(self) -> bytes:
        return generate_latest(self.registry)
