"""Service-to-service calls discovered from the traffic metrics a Prometheus already has.

Three sources, each one instant query over the recent traffic (`increase(...[window]) > 0`), so
an edge exists while requests flow and ages out `window` after they stop:

- the OpenTelemetry Collector's servicegraph connector:
  `traces_service_graph_request_total{client, server}` (service names as `service.name` gives
  them; with the connector's `dimensions: [k8s.namespace.name]` also
  `client_k8s_namespace_name` / `server_k8s_namespace_name`). Messaging spans pair up as
  producer -> consumer edges;
- Istio: `istio_requests_total{source_workload, source_workload_namespace,
  destination_service_name, destination_service_namespace, destination_workload, ...}`;
- Linkerd: `request_total{direction="outbound", deployment|statefulset|daemonset, namespace,
  dst_service|dst_deployment|dst_statefulset, dst_namespace}`, and `response_total` with the
  same labels (plus `classification`, `status_code`): it is the counter Linkerd's own dashboards
  read, and the one left when a scrape config drops `request_total` to save series.

A call is an edge caller -> callee with `via: calls` between the Services (a workload without a
Service stands for itself): the caller depends on the callee, so a callee's errors explain its
callers' and a caller's breakdown explains its callees' starvation (router/core/reach.py).
Names are resolved against the graph kube-state-metrics built: a Service of that name in the
namespace, else a workload of that name (OpenTelemetry services are usually named after their
Deployment), else, without a namespace, the only Service of that name in the cluster. Names
that resolve to nothing are counted, not guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from topology.graph import Topology
from topology.promql import SeriesSource

WORKLOAD_KINDS = ("deployment", "statefulset", "daemonset")


@dataclass(frozen=True)
class CallSource:
    name: str
    metric: str
    selector: str
    by: tuple[str, ...]


SOURCES = (
    CallSource(
        "servicegraph",
        "traces_service_graph_request_total",
        "",
        ("client", "server", "client_k8s_namespace_name", "server_k8s_namespace_name"),
    ),
    CallSource(
        "istio",
        "istio_requests_total",
        "",
        (
            "source_workload",
            "source_workload_namespace",
            "destination_service_name",
            "destination_service_namespace",
            "destination_workload",
            "destination_workload_namespace",
        ),
    ),
    *(
        CallSource(
            "linkerd",
            metric,
            'direction="outbound"',
            (
                "namespace",
                "deployment",
                "statefulset",
                "daemonset",
                "dst_namespace",
                "dst_service",
                "dst_deployment",
                "dst_statefulset",
            ),
        )
        for metric in ("request_total", "response_total")
    ),
)


@dataclass
class CallStats:
    edges: dict[str, int] = field(default_factory=dict)  # source -> edges added
    series: dict[str, int] = field(default_factory=dict)  # source -> series read
    unresolved: dict[str, int] = field(default_factory=dict)  # source -> calls naming nothing known

    def to_dict(self) -> dict[str, object]:
        return {"edges": dict(self.edges), "series": dict(self.series), "unresolved": dict(self.unresolved)}


def query(source: CallSource, window: str, selector: str = "") -> str:
    matchers = ",".join(m for m in (source.selector, selector) if m)
    by = ", ".join(("cluster", *source.by))
    return f"sum by ({by}) (increase({source.metric}{{{matchers}}}[{window}])) > 0"


def _fronting(topology: Topology, workload: str) -> list[str]:
    """The Services in front of a workload (they depend on it), or the workload itself."""
    services = sorted(d for d in topology.dependents(workload) if d.startswith("service/"))
    return services or [workload]


def resolve(topology: Topology, cluster: str, namespace: str, name: str, *, workload: bool) -> list[str]:
    """Entities a call endpoint names. `workload`: the name is a workload's (Istio, Linkerd),
    not a Service's; a Service name falls back to a workload of that name and vice versa."""
    if not name or name == "unknown":
        return []
    if namespace:
        service = f"service/{cluster}/{namespace}/{name}"
        if not workload and service in topology:
            return [service]
        for kind in WORKLOAD_KINDS:
            candidate = f"{kind}/{cluster}/{namespace}/{name}"
            if candidate in topology:
                return _fronting(topology, candidate)
        return [service] if service in topology else []
    found = topology.named("service", cluster, name)
    if len(found) == 1:
        return found
    for kind in WORKLOAD_KINDS:
        candidates = topology.named(kind, cluster, name)
        if len(candidates) == 1:
            return _fronting(topology, candidates[0])
    return []


def _endpoints(
    source: str, labels: Mapping[str, str], topology: Topology, cluster: str
) -> tuple[list[str], list[str]]:
    get = labels.get
    if source == "servicegraph":
        callers = resolve(
            topology, cluster, get("client_k8s_namespace_name", ""), get("client", ""), workload=False
        )
        callees = resolve(
            topology, cluster, get("server_k8s_namespace_name", ""), get("server", ""), workload=False
        )
    elif source == "istio":
        callers = resolve(
            topology, cluster, get("source_workload_namespace", ""), get("source_workload", ""), workload=True
        )
        callees = resolve(
            topology,
            cluster,
            get("destination_service_namespace", ""),
            get("destination_service_name", ""),
            workload=False,
        ) or resolve(
            topology,
            cluster,
            get("destination_workload_namespace", ""),
            get("destination_workload", ""),
            workload=True,
        )
    else:
        own = get("deployment") or get("statefulset") or get("daemonset") or ""
        callers = resolve(topology, cluster, get("namespace", ""), own, workload=True)
        namespace = get("dst_namespace", "")
        callees = resolve(topology, cluster, namespace, get("dst_service", ""), workload=False) or resolve(
            topology, cluster, namespace, get("dst_deployment") or get("dst_statefulset") or "", workload=True
        )
    return callers, callees


def add_calls(
    topology: Topology,
    series: Iterable[tuple[str, dict[str, str]]],
    default_cluster: str,
    stats: CallStats,
) -> None:
    """Add the call edges that `(source name, labels)` rows describe."""
    for source, labels in series:
        stats.series[source] = stats.series.get(source, 0) + 1
        cluster = labels.get("cluster") or default_cluster
        callers, callees = _endpoints(source, labels, topology, cluster)
        if not callers or not callees:
            stats.unresolved[source] = stats.unresolved.get(source, 0) + 1
            continue
        for caller in callers:
            for callee in callees:
                if caller != callee and not topology.graph.has_edge(caller, callee):
                    topology.depends(caller, callee, via="calls")
                    stats.edges[source] = stats.edges.get(source, 0) + 1


def discover_calls(
    client: SeriesSource,
    topology: Topology,
    *,
    at: float,
    window: str,
    default_cluster: str,
    selector: str = "",
    timeout: float | None = None,
    warnings: list[str] | None = None,
) -> CallStats:
    """Query every call source at `at` and add its edges to `topology` (SourceError propagates)."""
    stats = CallStats()

    def rows() -> Iterable[tuple[str, dict[str, str]]]:
        for source in SOURCES:
            stream = client.stream_query(query(source, window, selector), at=at, timeout=timeout)
            for labels, _ in stream:
                yield source.name, labels
            if warnings is not None:
                warnings.extend(f"{source.metric}: {w}" for w in stream.warnings)

    add_calls(topology, rows(), default_cluster, stats)
    return stats
