"""The service's link to Prometheus: a live topology and a second witness (docs/prometheus.md).

- The refresher re-discovers the graph on an interval (and on POST /api/v1/topology/refresh),
  merged with the `--topology` files (databases, load balancers: what lives outside Kubernetes),
  keeps the last good graph when Prometheus is down or a refresh looks partial, and hands every
  accepted graph to the engine (`Engine.set_topology`).
- The engine's questions (`Engine.drain_checks`) are answered against Prometheus off the
  event loop, within `witness_timeout`; each answer is recorded in the event log as an input
  (action `witness`, user `prometheus`) before the engine sees it, so a restart or a replay of
  the log decides the same. An unanswered check changes nothing: the page comes at its grace.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from router.core.events import CheckRequest
from router.service.config import PrometheusSettings
from topology.discovery import DiscoveryResult, PrometheusDiscovery
from topology.graph import Topology
from topology.refresh import RefreshReport, TopologyRefresher

if TYPE_CHECKING:  # built by router.service.wiring; named here for the type checker only
    from integrations.prometheus.client import PrometheusClient
    from integrations.prometheus.witness import Witness

log = logging.getLogger("alert_router.prometheus")


class PrometheusLink:
    def __init__(
        self,
        service: Any,
        settings: PrometheusSettings,
        topology: Topology,
        client: PrometheusClient,
        witness: Witness | None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.client = client
        self._discovery = PrometheusDiscovery(self.client)
        self._static = topology  # from --topology files: what lives outside Kubernetes stays
        self.refresher = TopologyRefresher(
            self._discover,
            interval=settings.refresh_interval.total_seconds(),
            retry_interval=settings.retry_interval.total_seconds(),
            max_drop_share=settings.max_drop_share,
            topology=topology if len(topology) else None,
            registry=service.metrics.registry,
        )
        self.refresher.subscribe(self._swap)
        self.witness = witness

    async def _discover(self) -> DiscoveryResult:
        result = await self._discovery.discover()
        if len(self._static):
            result.topology.merge(self._static)
        return result

    async def start(self) -> None:
        await self.refresher.start()

    async def stop(self) -> None:
        await self.refresher.stop()
        self.client.close()

    async def refresh(self) -> RefreshReport:
        return await self.refresher.refresh(force=True, reason="api")

    def _swap(self, topology: Topology, report: RefreshReport) -> None:
        if self.service.engine is not None:
            self.service.engine.set_topology(topology)
            log.info("topology swapped in", extra={"entities": len(topology)})

    def ask(self, checks: list[CheckRequest]) -> None:
        if self.witness is None:
            return
        for check in checks:
            self.service._spawn(self._answer(check))

    async def _answer(self, check: CheckRequest) -> None:
        assert self.witness is not None
        answer = await self.witness.check(check.kind, check.entity, check.labels)
        note = json.dumps({"check": check.id, "confirmed": answer.confirmed, "detail": answer.detail})
        pending = self.service.submit_action(check.incident, "witness", "prometheus", note, source="witness")
        await pending.write.wait()
