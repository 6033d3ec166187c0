"""Topology discovered from the kube-state-metrics series a Prometheus already scrapes.

    client = PrometheusClient("http://prometheus:9090")
    discovery = PrometheusDiscovery(client, clusters=None, default_cluster=None, selector="")
    result = await discovery.discover()          # worker thread; raises DiscoveryError
    result.topology, result.stats, result.warnings
    result = discovery.discover_sync()           # the same, blocking (CLI, benchmark)

One instant query per series family that the kube-state-metrics loader reads
(`topology.ksm.WANTED`), all evaluated at the same instant so that they describe one moment of
the cluster. Each result is decoded while it downloads (`PrometheusClient.stream_query`) and
handed, element by element, to the same `ClusterBuilder` the KSM text loader fills
(`topology.ksm.collect`): a series is `(family, labels, value)` exactly as a text line would be,
so a discovered graph and a loaded dump of the same cluster are identical.

Several clusters: through Thanos or a federating Prometheus every series carries a `cluster`
label and objects land in that cluster. `clusters=[...]` restricts discovery to some of them.
Series without a `cluster` label belong to `default_cluster`; left as None, it is this
Prometheus' own `cluster` external label when it has one (alerts it sends carry that label, the
series it answers queries with do not), else `default`.

A family that errors makes the whole discovery fail (DiscoveryError): half a graph is worse than
the last good one. An empty family is normal (kube_endpoint_address is off by default since
KSM v2.18), but no node and no pod at all means kube-state-metrics is not scraped (or down):
that is an error too. Warnings (Thanos partial responses) are returned, not raised; the
refresher refuses a graph built from a partial response.

Service-to-service calls come through the same connection, in the same refresh
(topology/callgraph.py): the servicegraph connector's, Istio's and Linkerd's request counters
over the last `call_window` (an edge ages out that long after its traffic stops). No traffic
metrics at all is normal (no mesh, no tracing): the graph simply has no call edges. So do the
rollouts and configuration changes of the last `change_window` (topology/changefeed.py), as
timed events the engine names as an incident's likely cause.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from topology import callgraph, changefeed, entities, ksm
from topology.graph import Topology
from topology.k8s import ClusterBuilder, paused_gc
from topology.promql import SeriesSource, SourceError, promql_string
from topology.promtext import Series

# Server-side filters: what `ksm.collect` would drop anyway is not transferred.
FAMILY_FILTERS = {
    "kube_pod_status_phase": ('phase=~"Succeeded|Failed"', " == 1"),
    "kube_pod_owner": ('owner_is_controller="true"', ""),
}
# Without any series of these, kube-state-metrics is not there: nothing to build from.
ESSENTIAL = ("kube_node_info", "kube_pod_info")
_MATCHER = re.compile(r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*\Z')


class DiscoveryError(Exception):
    """Discovery could not produce a graph (Prometheus failing, no kube-state-metrics data)."""


@dataclass
class DiscoveryStats:
    series: dict[str, int] = field(default_factory=dict)  # family -> series read
    # family -> (Prometheus evaluating, download + decoding) seconds
    family_seconds: dict[str, tuple[float, float]] = field(default_factory=dict)
    bytes: int = 0  # JSON received
    wait_seconds: float = 0.0  # request sent -> first byte: Prometheus evaluating the queries
    read_seconds: float = 0.0  # downloading and decoding the JSON
    collect_seconds: float = 0.0  # declaring objects to the builder (ksm.collect)
    build_seconds: float = 0.0  # making the edges and the networkx graph
    total_seconds: float = 0.0
    clusters: list[str] = field(default_factory=list)
    calls: callgraph.CallStats = field(default_factory=callgraph.CallStats)
    changes: changefeed.ChangeStats = field(default_factory=changefeed.ChangeStats)

    @property
    def prometheus_seconds(self) -> float:
        return self.wait_seconds + self.read_seconds

    def to_dict(self) -> dict[str, object]:
        return {
            "series": dict(self.series),
            "family_seconds": {k: [round(w, 3), round(r, 3)] for k, (w, r) in self.family_seconds.items()},
            "bytes": self.bytes,
            "wait_seconds": round(self.wait_seconds, 3),
            "read_seconds": round(self.read_seconds, 3),
            "collect_seconds": round(self.collect_seconds, 3),
            "build_seconds": round(self.build_seconds, 3),
            "total_seconds": round(self.total_seconds, 3),
            "clusters": list(self.clusters),
            "calls": self.calls.to_dict(),
            "changes": self.changes.to_dict(),
        }


@dataclass
class DiscoveryResult:
    topology: Topology
    stats: DiscoveryStats
    warnings: list[str] = field(default_factory=list)
    at: float = 0.0  # evaluation time of the queries (Unix seconds)


class PrometheusDiscovery:
    def __init__(
        self,
        client: SeriesSource,
        *,
        clusters: Sequence[str] | None = None,
        default_cluster: str | None = None,
        selector: str = "",
        timeout: float | None = None,
        families: Iterable[str] | None = None,
        call_window: str | None = "1h",
        change_window: str | None = "1h",
    ) -> None:
        """`selector`: extra label matchers for every query, e.g. `job="kube-state-metrics"`
        (comma-separated, without braces). `timeout`: per family query (default: the client's).
        `call_window`: how much recent traffic makes a call edge (a PromQL duration); None:
        no call graph. `change_window`: how far back rollouts and configuration changes are
        recorded; None: none."""
        self.client = client
        self.clusters = [c for c in (clusters or ()) if c]
        self.default_cluster = default_cluster
        self.selector = _check_selector(selector)
        self.timeout = timeout
        self.families = sorted(families or ksm.WANTED)
        self.call_window = call_window
        self.change_window = change_window
        if change_window:
            changefeed.query(changefeed.FAMILIES[-1], change_window)  # ValueError naming the field

    def queries(self) -> dict[str, str]:
        """family -> PromQL instant query."""
        return {family: self.query_of(family) for family in self.families}

    def query_of(self, family: str) -> str:
        matchers = [m for m in (self.selector,) if m]
        if self.clusters:
            alternatives = "|".join(re.escape(c) for c in self.clusters)
            matchers.append(f"cluster=~{promql_string(alternatives)}")
        where, compare = FAMILY_FILTERS.get(family, ("", ""))
        if where:
            matchers.append(where)
        return f"{family}{{{','.join(matchers)}}}{compare}" if matchers else f"{family}{compare}"

    async def discover(self) -> DiscoveryResult:
        """Query and build in a worker thread; the event loop only awaits."""
        return await asyncio.to_thread(self.discover_sync)

    def discover_sync(self) -> DiscoveryResult:
        started = time.perf_counter()
        stats = DiscoveryStats()
        default = self.default_cluster
        if default is None:
            default = self.client.external_labels_sync(timeout=self.timeout).get("cluster") or (
                entities.DEFAULT_CLUSTER
            )
            stats.wait_seconds = time.perf_counter() - started
        at = time.time()
        warnings: list[str] = []
        builder = ClusterBuilder()
        try:
            with paused_gc():
                ksm.collect(self._series(at, default, stats, warnings), builder)
                collected = time.perf_counter()
                missing = [family for family in ESSENTIAL if not stats.series.get(family)]
                if len(missing) == len(ESSENTIAL):
                    raise DiscoveryError(
                        "Prometheus has no kube_node_info nor kube_pod_info series"
                        + (f" for clusters {', '.join(self.clusters)}" if self.clusters else "")
                        + ": is kube-state-metrics scraped (and up)?"
                    )
                topology = builder.build()
                if self.call_window:
                    stats.calls = self._calls(topology, at, default, warnings)
                if self.change_window:
                    stats.changes = changefeed.discover_changes(
                        self.client,
                        topology,
                        at=at,
                        window=self.change_window,
                        default_cluster=default,
                        selector=self._cluster_matcher(),
                        timeout=self.timeout,
                        warnings=warnings,
                    )
        except SourceError as exc:
            raise DiscoveryError(str(exc)) from None
        finished = time.perf_counter()
        stats.build_seconds = finished - collected
        stats.total_seconds = finished - started
        stats.collect_seconds = collected - started - stats.prometheus_seconds
        stats.clusters = sorted(builder.clusters)
        return DiscoveryResult(topology, stats, warnings, at)

    def _cluster_matcher(self) -> str:
        if not self.clusters:
            return ""
        return f"cluster=~{promql_string('|'.join(re.escape(c) for c in self.clusters))}"

    def _calls(self, topology: Topology, at: float, default: str, warnings: list[str]) -> callgraph.CallStats:
        cluster = self._cluster_matcher()
        return callgraph.discover_calls(
            self.client,
            topology,
            at=at,
            window=self.call_window or "1h",
            default_cluster=default,
            selector=cluster,
            timeout=self.timeout,
            warnings=warnings,
        )

    def _series(
        self, at: float, default: str, stats: DiscoveryStats, warnings: list[str]
    ) -> Iterator[Series]:
        """Every family's series in the loader's shape `(name, labels, value, line)`."""
        for family in self.families:
            query = self.query_of(family)
            stream = self.client.stream_query(query, at=at, timeout=self.timeout)
            for labels, value in stream:
                if not labels.get("cluster"):
                    labels["cluster"] = default
                yield family, labels, value, 0
            stats.series[family] = stream.series
            stats.family_seconds[family] = (stream.wait_seconds, stream.read_seconds)
            stats.bytes += stream.bytes
            stats.wait_seconds += stream.wait_seconds
            stats.read_seconds += stream.read_seconds
            warnings.extend(f"{family}: {w}" for w in stream.warnings)


def _check_selector(selector: str) -> str:
    """Validate `a="x",b=~"y"` so that a typo fails here, naming itself, not as a PromQL error."""
    text = selector.strip().strip("{}").strip()
    if not text:
        return ""
    for part in _split_matchers(text):
        if not _MATCHER.match(part):
            raise ValueError(
                f'selector: {part.strip()!r} is not a label matcher like job="kube-state-metrics"'
            )
    return text


def _split_matchers(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]
