"""Keeps a live topology: refreshes it on an interval and on demand, swaps it atomically, and keeps
the last good graph when a refresh fails or looks like partial data.

    refresher = TopologyRefresher(discovery.discover, interval=300, max_drop_share=0.2,
                                  topology=initial_or_None, registry=service_registry)
    refresher.subscribe(lambda topology, report: engine_swap(topology))   # called on the loop
    await refresher.start()            # first refresh now, then every `interval`
    report = await refresher.refresh(force=False, reason="api")   # POST /api/v1/topology/refresh
    refresher.topology                 # the graph in use (None before the first success)
    refresher.age_seconds              # since the graph in use was built
    refresher.last_report              # RefreshReport of the last attempt (to_dict() for JSON)
    await refresher.stop()

`source` is any coroutine function returning a `topology.discovery.DiscoveryResult`
(`PrometheusDiscovery.discover`); it must not block the loop (discovery runs in a thread). The
diff against the graph in use is computed in a worker thread too.

Refused (the graph in use stays, `result="refused"`):
- more than `max_drop_share` of the nodes or of the pods of any one cluster would disappear, and
  more than `min_drop` of them (so a 3-node test cluster may lose a node);
- a cluster of the graph in use would be left without nodes or without pods (a Thanos store or
  a federated Prometheus missing: partial data);
- a series family that had series now has none (e.g. endpoint slices: every Service would lose
  its members without any node or pod disappearing; families that may empty in a living cluster,
  finished pods, Jobs, HPAs, volumes, are not checked);
- the response carried warnings (Thanos partial response), unless `accept_partial`.
A shrink past the threshold that `confirm_after` consecutive refreshes agree on (same counts
within 5%, no cluster or family emptied) is accepted: a cluster really scaled down.
`refresh(force=True)` accepts whatever discovery returns. Errors (Prometheus unreachable, slow,
answering errors) give `result="error"`; the next interval retries after `retry_interval`.

Metrics (prometheus-client objects in `refresher.metrics`, in the registry passed in):
`alert_router_topology_age_seconds`, `alert_router_topology_last_refresh_ok` (0 while the last
good graph is served in place of a failed or refused refresh),
`alert_router_topology_last_success_timestamp_seconds`, `alert_router_topology_refreshes_total
{result=ok|refused|error}`, `alert_router_topology_changes_total{kind=node|pod,change=added|removed}`,
`alert_router_topology_objects{kind=node|pod}`, `alert_router_topology_refresh_duration_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from topology.discovery import DiscoveryError, DiscoveryResult
from topology.graph import Topology

log = logging.getLogger("alert_router.topology")

Source = Callable[[], Awaitable[DiscoveryResult]]
Subscriber = Callable[[Topology, "RefreshReport"], None]
# cluster -> kind ("node" | "pod") -> entity names
Census = dict[str, dict[str, set[str]]]
KINDS = ("node", "pod")
# Families that do not empty in a living cluster (finished pods, Jobs, HPAs, PVCs may all go).
GUARDED_FAMILIES = frozenset(
    {
        "kube_node_info",
        "kube_node_labels",
        "kube_pod_info",
        "kube_pod_owner",
        "kube_replicaset_owner",
        "kube_service_info",
        "kube_endpointslice_endpoints",
        "kube_endpointslice_labels",
        "kube_endpoint_address",
    }
)


@dataclass
class RefreshReport:
    result: str  # "ok" | "refused" | "error"
    reason: str = ""  # why refused / the error; for "ok" what forced or confirmed it, if anything
    reason_kind: str = ""  # "drop" | "emptied" | "family" | "partial" | "error" | "" (ok)
    at: float = 0.0  # Unix time the attempt finished
    seconds: float = 0.0
    nodes_added: int = 0
    nodes_removed: int = 0
    pods_added: int = 0
    pods_removed: int = 0
    nodes: int = 0  # in the candidate graph
    pods: int = 0
    entities: int = 0
    edges: int = 0
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        return out


class RefreshMetrics:
    """The refresher's metrics, created in `registry` (the service's, or a private one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.age = Gauge(
            "alert_router_topology_age_seconds",
            "Seconds since the topology in use was discovered (or loaded).",
            registry=r,
        )
        self.last_ok = Gauge(
            "alert_router_topology_last_refresh_ok",
            "1 if the last refresh produced the topology in use; 0 if it failed or was refused "
            "and the last good topology is kept.",
            registry=r,
        )
        self.last_success = Gauge(
            "alert_router_topology_last_success_timestamp_seconds",
            "Unix time of the last refresh that swapped a new topology in.",
            registry=r,
        )
        self.refreshes = Counter(
            "alert_router_topology_refreshes",
            "Topology refresh attempts by result (ok, refused, error).",
            ["result"],
            registry=r,
        )
        self.changes = Counter(
            "alert_router_topology_changes",
            "Nodes and pods added to or removed from the topology by accepted refreshes.",
            ["kind", "change"],
            registry=r,
        )
        self.objects = Gauge(
            "alert_router_topology_objects", "Nodes and pods in the topology in use.", ["kind"], registry=r
        )
        self.duration = Gauge(
            "alert_router_topology_refresh_duration_seconds",
            "Duration of the last refresh attempt (discovery, diff and checks).",
            registry=r,
        )
        for result in ("ok", "refused", "error"):
            self.refreshes.labels(result)
        for kind in KINDS:
            self.objects.labels(kind)
            for change in ("added", "removed"):
                self.changes.labels(kind, change)


class TopologyRefresher:
    def __init__(
        self,
        source: Source,
        *,
        interval: float = 300.0,
        retry_interval: float = 30.0,
        max_drop_share: float = 0.2,
        min_drop: int = 1,
        confirm_after: int = 3,
        accept_partial: bool = False,
        topology: Topology | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 <= max_drop_share <= 1:
            raise ValueError("max_drop_share must be between 0 and 1")
        self.source = source
        self.interval = interval
        self.retry_interval = min(retry_interval, interval)
        self.max_drop_share = max_drop_share
        self.min_drop = min_drop
        self.confirm_after = confirm_after
        self.accept_partial = accept_partial
        self.clock = clock
        self.metrics = RefreshMetrics(registry)
        self._topology = topology
        self._built_at = clock()
        self._census: Census = _census(topology) if topology is not None else {}
        self._families: dict[str, int] = {}
        self._subscribers: list[Subscriber] = []
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Task[RefreshReport] | None = None
        self._task: asyncio.Task[None] | None = None
        # Refusals for a shrink: (streak, per-cluster counts of the last refused candidate).
        self._shrink_streak = 0
        self._shrink_counts: dict[tuple[str, str], int] = {}
        self.last_report: RefreshReport | None = None
        self.metrics.age.set_function(lambda: max(0.0, self.clock() - self._built_at))
        self.metrics.last_ok.set(1 if topology is not None else 0)
        self._set_objects()

    # -- reading -------------------------------------------------------------------------------

    @property
    def topology(self) -> Topology | None:
        """The graph in use; a new one replaces it in one assignment (readers keep theirs)."""
        return self._topology

    @property
    def age_seconds(self) -> float:
        return max(0.0, self.clock() - self._built_at)

    def subscribe(self, callback: Subscriber) -> None:
        """`callback(topology, report)` on the loop after every swap (e.g. hand it to the engine)."""
        self._subscribers.append(callback)

    # -- refreshing ------------------------------------------------------------------------------

    async def refresh(self, *, force: bool = False, reason: str = "manual") -> RefreshReport:
        """One refresh. A request while one runs waits for it and gets its report (unless forced:
        then a new one runs after it)."""
        inflight = self._inflight
        if inflight is not None and not inflight.done():
            report = await asyncio.shield(inflight)
            if not force:
                return report
        async with self._lock:
            task = asyncio.ensure_future(self._refresh(force, reason))
            self._inflight = task
            return await asyncio.shield(task)

    async def start(self) -> None:
        """Refresh now, then every `interval` (`retry_interval` after a failure), in a task."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="topology-refresh")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        inflight = self._inflight
        if inflight is not None and not inflight.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await inflight

    async def _run(self) -> None:
        while True:
            report = await self.refresh(reason="interval")
            delay = self.interval if report.result == "ok" else self.retry_interval
            await asyncio.sleep(delay)

    async def _refresh(self, force: bool, reason: str) -> RefreshReport:
        started = time.perf_counter()
        # The graph describes the cluster as it was when the queries went out.
        queried_at = self.clock()
        try:
            result = await self.source()
        except (DiscoveryError, OSError) as exc:
            report = RefreshReport("error", str(exc), "error")
        except Exception as exc:  # a bug must not kill the refresh loop; it is logged with its trace
            log.exception("topology refresh crashed")
            report = RefreshReport("error", f"{type(exc).__name__}: {exc}", "error")
        else:
            census = await asyncio.to_thread(_census, result.topology)
            report = self._judge(result, census, force)
            if report.result == "ok":
                self._swap(result, census, queried_at)
        report.at = self.clock()
        report.seconds = time.perf_counter() - started
        self._record(report, reason, force)
        if report.result == "ok":
            for callback in list(self._subscribers):
                try:
                    callback(result.topology, report)
                except Exception:
                    log.exception("topology subscriber failed")
        return report

    # -- judging -----------------------------------------------------------------------------------

    def _judge(self, result: DiscoveryResult, census: Census, force: bool) -> RefreshReport:
        old = self._census
        report = RefreshReport("ok", warnings=list(result.warnings), stats=result.stats.to_dict())
        report.entities = len(result.topology)
        report.edges = result.topology.graph.number_of_edges()
        for cluster in set(old) | set(census):
            before, after = old.get(cluster, {}), census.get(cluster, {})
            for kind in KINDS:
                was, now = before.get(kind, set()), after.get(kind, set())
                added, removed = len(now - was), len(was - now)
                setattr(report, f"{kind}s_added", getattr(report, f"{kind}s_added") + added)
                setattr(report, f"{kind}s_removed", getattr(report, f"{kind}s_removed") + removed)
        report.nodes = sum(len(c.get("node", ())) for c in census.values())
        report.pods = sum(len(c.get("pod", ())) for c in census.values())
        if force:
            report.reason = "forced"
            return report
        problem, kind = self._problem(result, census)
        if not problem:
            self._shrink_streak = 0
            return report
        if kind == "drop" and self._confirmed_shrink(census):
            report.reason = f"shrink confirmed by {self.confirm_after} consecutive refreshes ({problem})"
            return report
        if kind != "drop":
            self._shrink_streak = 0
        report.result, report.reason, report.reason_kind = "refused", problem, kind
        return report

    def _problem(self, result: DiscoveryResult, census: Census) -> tuple[str, str]:
        if result.warnings and not self.accept_partial:
            return f"partial response: {'; '.join(result.warnings)[:500]}", "partial"
        emptied = [
            f"{family} ({count} series before)"
            for family, count in sorted(self._families.items())
            if family in GUARDED_FAMILIES and count > self.min_drop and not result.stats.series.get(family)
        ]
        if emptied:
            return f"series families now empty: {', '.join(emptied)}", "family"
        drops: list[str] = []
        for cluster, kinds in sorted(self._census.items()):
            for kind in KINDS:
                was = kinds.get(kind, set())
                now = census.get(cluster, {}).get(kind, set())
                if was and not now:
                    return f"cluster {cluster} would have no {kind}s (had {len(was)})", "emptied"
                removed = len(was - now)
                if was and removed > self.min_drop and removed > self.max_drop_share * len(was):
                    drops.append(
                        f"{removed} of {len(was)} {kind}s of cluster {cluster} would be removed "
                        f"({removed / len(was):.0%} > {self.max_drop_share:.0%})"
                    )
        return ("; ".join(drops), "drop") if drops else ("", "")

    def _confirmed_shrink(self, census: Census) -> bool:
        counts = {(c, k): len(kinds.get(k, ())) for c, kinds in census.items() for k in KINDS}
        agrees = self._shrink_streak > 0 and set(counts) == set(self._shrink_counts)
        agrees = agrees and all(
            abs(n - self._shrink_counts[key]) <= max(1, 0.05 * n) for key, n in counts.items()
        )
        self._shrink_streak = self._shrink_streak + 1 if agrees else 1
        self._shrink_counts = counts
        if self.confirm_after > 0 and self._shrink_streak >= self.confirm_after:
            self._shrink_streak = 0
            return True
        return False

    # -- swapping and reporting ---------------------------------------------------------------------

    def _swap(self, result: DiscoveryResult, census: Census, queried_at: float) -> None:
        self._topology = result.topology
        self._census = census
        self._families = dict(result.stats.series)
        self._built_at = queried_at

    def _record(self, report: RefreshReport, reason: str, force: bool) -> None:
        self.last_report = report
        m = self.metrics
        m.refreshes.labels(report.result).inc()
        m.duration.set(report.seconds)
        fields = {
            "trigger": reason,
            "force": force,
            "result": report.result,
            "seconds": round(report.seconds, 3),
            "nodes": report.nodes,
            "pods": report.pods,
            "nodes_added": report.nodes_added,
            "nodes_removed": report.nodes_removed,
            "pods_added": report.pods_added,
            "pods_removed": report.pods_removed,
        }
        if report.result == "ok":
            m.last_ok.set(1)
            m.last_success.set(report.at)
            for kind in KINDS:
                m.changes.labels(kind, "added").inc(getattr(report, f"{kind}s_added"))
                m.changes.labels(kind, "removed").inc(getattr(report, f"{kind}s_removed"))
            self._set_objects()
            log.info(
                "topology refreshed", extra=fields | {"note": report.reason} if report.reason else fields
            )
        else:
            m.last_ok.set(0)
            log.warning(
                "topology refresh %s; keeping the last good topology (age %.0fs): %s",
                report.result,
                self.age_seconds,
                report.reason,
                extra=fields,
            )

    def _set_objects(self) -> None:
        for kind in KINDS:
            self.metrics.objects.labels(kind).set(sum(len(c.get(kind, ())) for c in self._census.values()))


def _census(topology: Topology) -> Census:
    """Node and pod entity names per cluster (node components are not nodes)."""
    out: Census = {}
    for name, kind in topology.graph.nodes(data="kind"):
        if kind == "node" or kind == "pod":
            cluster = name.split("/", 2)[1]
            out.setdefault(cluster, {}).setdefault(kind, set()).add(name)
    return out
