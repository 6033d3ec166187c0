"""The cluster dependency graph.

A `Topology` wraps a networkx `DiGraph` whose nodes are entity names (see `topology.entities`)
and whose edges mean "depends on": `pod -> node` reads "the pod depends on the node".

Edges carry `redundant` and, for some, `via`. A redundant edge links a group to one of several
interchangeable members (a Service to its endpoint pods, cluster DNS to the CoreDNS pods): one
member failing does not take the group down. The engine crosses such an edge only from the
alerting entity itself, or when every member of the group is failing.

Everything the engine looks up is indexed (entity name, node by IP, pod by IP, node by
instance) so that mapping an alert never scans the graph.

`via: calls` marks a service-to-service call (`a -> b`: a calls b). Failures travel up such an
edge like any other (b's errors reach a), and starvation travels down it (a broken caller leaves
b without requests): see `callers` and `calls`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any

import networkx as nx

from topology import entities
from topology.changes import Change, ChangeLog


class Topology:
    def __init__(self) -> None:
        self.graph: nx.DiGraph = nx.DiGraph()
        # (cluster, ip) -> node entity; (cluster, ip) -> pod entity.
        self._node_by_ip: dict[tuple[str, str], str] = {}
        self._pod_by_ip: dict[tuple[str, str], str] = {}
        # (cluster, alias) -> node entity, for instance labels that name a node differently
        # (a hostname, a provider id).
        self._node_alias: dict[tuple[str, str], str] = {}
        # (kind, cluster, bare name) -> entities, built on first use (see `named`).
        self._by_bare_name: dict[tuple[str, str, str], list[str]] | None = None
        # Rollouts and configuration changes the sources saw, as timed events.
        self.changes = ChangeLog()

    # -- building -------------------------------------------------------------------------

    def add(self, name: str, **attrs: Any) -> str:
        """Add (or update) an entity by its full name; the kind comes from the name."""
        self._by_bare_name = None
        if name in self.graph:
            if attrs:
                self.graph.nodes[name].update(attrs)
        else:
            self.graph.add_node(name, kind=entities.kind_of(name), **attrs)
        return name

    def add_entity(
        self, kind: str, cluster: str, name: str, namespace: str | None = None, **attrs: Any
    ) -> str:
        return self.add(entities.entity(kind, cluster, name, namespace), **attrs)

    def depends(
        self, dependent: str, dependency: str, *, redundant: bool = False, via: str | None = None
    ) -> None:
        """Record that `dependent` depends on `dependency` (both are created if missing).
        `via` says what kind of dependency it is when that matters: `calls` for a service that
        calls another (traffic flows both ways along it: errors up, starvation down)."""
        if dependent == dependency:
            return
        self._by_bare_name = None
        self.add(dependent)
        self.add(dependency)
        if via is None:
            self.graph.add_edge(dependent, dependency, redundant=redundant)
        else:
            self.graph.add_edge(dependent, dependency, redundant=redundant, via=via)

    def add_many(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Bulk `add` (loaders of large clusters): the same result, one networkx call."""
        self._by_bare_name = None
        nodes = self.graph.nodes
        fresh: list[tuple[str, dict[str, Any]]] = []
        for name, attrs in items:
            if name in nodes:
                nodes[name].update(attrs)
            else:
                fresh.append((name, {"kind": entities.kind_of(name), **attrs}))
        self.graph.add_nodes_from(fresh)

    def depends_many(self, edges: Iterable[tuple[str, str]], *, redundant: bool = False) -> None:
        """Bulk `depends` (loaders of large clusters): the same result, one networkx call."""
        self._by_bare_name = None
        graph = self.graph
        known = graph.number_of_nodes()
        graph.add_edges_from(((a, b) for a, b in edges if a != b), redundant=redundant)
        # networkx appends the nodes it had to create, in order: give them their kind.
        for name in islice(graph.nodes, known, None):
            graph.nodes[name]["kind"] = entities.kind_of(name)

    def index_node_ip(self, cluster: str, ip: str, node: str) -> None:
        if ip:
            self._node_by_ip[(cluster, ip)] = node

    def index_pod_ip(self, cluster: str, ip: str, pod: str) -> None:
        if ip:
            self._pod_by_ip[(cluster, ip)] = pod

    def index_node_alias(self, cluster: str, alias: str, node: str) -> None:
        if alias:
            self._node_alias[(cluster, alias)] = node

    def merge(self, other: Topology) -> None:
        """Union of both graphs; attributes of `other` win where both define one."""
        for name, attrs in other.graph.nodes(data=True):
            self.add(name, **{k: v for k, v in attrs.items() if k != "kind"})
        for a, b, data in other.graph.edges(data=True):
            self.graph.add_edge(a, b, **data)
        self._node_by_ip.update(other._node_by_ip)
        self._pod_by_ip.update(other._pod_by_ip)
        self._node_alias.update(other._node_alias)
        self.changes.extend(other.changes)
        self._by_bare_name = None

    def record_change(self, entity: str, at: datetime, what: str) -> None:
        """A change of `entity` at `at` (a timezone-aware datetime); the entity need not be in
        the graph (a ConfigMap nothing is known to mount still names a change in its namespace)."""
        self.changes.record(Change(at, entity, what))

    # -- looking up -------------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return name in self.graph

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def attrs(self, name: str) -> dict[str, Any]:
        return self.graph.nodes[name] if name in self.graph else {}

    def kind(self, name: str) -> str:
        return entities.kind_of(name)

    def node_by_ip(self, cluster: str, ip: str) -> str | None:
        return self._node_by_ip.get((cluster, ip))

    def pod_by_ip(self, cluster: str, ip: str) -> str | None:
        return self._pod_by_ip.get((cluster, ip))

    def node_by_instance(self, cluster: str, instance: str) -> str | None:
        """`instance` label -> node: a node name, an alias, an IP, or IP:port."""
        if not instance:
            return None
        direct = entities.entity("node", cluster, instance)
        if direct in self.graph:
            return direct
        alias = self._node_alias.get((cluster, instance))
        if alias:
            return alias
        host = host_of(instance)
        return self._node_by_ip.get((cluster, host)) or self._node_alias.get((cluster, host))

    def has_nodes(self) -> bool:
        """Whether the topology knows any node (a real cluster, not an empty or partial file)."""
        return bool(self._node_alias or self._node_by_ip)

    def named(self, kind: str, cluster: str, name: str) -> list[str]:
        """Entities of `kind` in `cluster` whose own name is `name`, in any namespace (sorted).

        For labels that name an object without its namespace (`service_name="checkout"`)."""
        if self._by_bare_name is None:
            index: dict[tuple[str, str, str], list[str]] = {}
            for entity in sorted(self.graph):
                parts = entity.split("/")
                if len(parts) in (3, 4):
                    index.setdefault((parts[0], parts[1], parts[-1]), []).append(entity)
            self._by_bare_name = index
        return self._by_bare_name.get((kind, cluster, name), [])

    def zone_of(self, node: str) -> str | None:
        """The zone a node runs in: its `zone` attribute, or the zone it depends on."""
        attrs = self.attrs(node)
        if zone := attrs.get("zone"):
            return str(zone)
        if node in self.graph:
            return next((dep for dep in self.graph.succ[node] if entities.kind_of(dep) == "zone"), None)
        return None

    def dependencies(self, name: str) -> Iterator[tuple[str, bool]]:
        """Direct dependencies of an entity, with whether the edge is redundant."""
        if name not in self.graph:
            return iter(())
        return ((dep, data.get("redundant", False)) for dep, data in self.graph.succ[name].items())

    def dependents(self, name: str) -> Iterable[str]:
        return self.graph.pred[name] if name in self.graph else ()

    def calls(self, name: str) -> list[str]:
        """The services `name` calls (its `via: calls` dependencies), sorted."""
        if name not in self.graph:
            return []
        return sorted(dep for dep, data in self.graph.succ[name].items() if is_call(name, dep, data))

    def callers(self, name: str) -> list[str]:
        """The services that call `name`, sorted."""
        if name not in self.graph:
            return []
        return sorted(src for src, data in self.graph.pred[name].items() if is_call(src, name, data))

    def redundant_members(self, name: str) -> list[str]:
        """Members of a group entity (targets of its redundant edges)."""
        if name not in self.graph:
            return []
        return [dep for dep, data in self.graph.succ[name].items() if data.get("redundant")]

    def clusters(self) -> set[str]:
        """The clusters the topology's entities belong to (one walk over the graph)."""
        return {name.split("/", 2)[1] for name in self.graph if name.count("/") >= 2}

    def renamed_cluster(self, old: str, new: str) -> Topology:
        """A copy in which cluster `old` is called `new`: entity names, the attributes that
        name entities (a pod's node and owner, a node's zone), the IP and alias indexes and the
        recorded changes. For a dump taken without the `cluster` label its alerts carry."""

        def rename(value: Any) -> Any:
            if isinstance(value, str) and value.count("/") >= 2:
                kind, cluster, rest = value.split("/", 2)
                if cluster == old and (kind in entities.CLUSTER_KINDS or kind in entities.NAMESPACED_KINDS):
                    return f"{kind}/{new}/{rest}"
            return value

        renamed = Topology()
        renamed.graph.add_nodes_from(
            (rename(name), {key: rename(value) for key, value in attrs.items()})
            for name, attrs in self.graph.nodes(data=True)
        )
        renamed.graph.add_edges_from(
            (rename(a), rename(b), data) for a, b, data in self.graph.edges(data=True)
        )
        for source, target in (
            (self._node_by_ip, renamed._node_by_ip),
            (self._pod_by_ip, renamed._pod_by_ip),
            (self._node_alias, renamed._node_alias),
        ):
            for (cluster, key), entity in source.items():
                target[(new if cluster == old else cluster, key)] = rename(entity)
        for change in self.changes:
            renamed.record_change(rename(change.entity), change.at, change.what)
        return renamed

    def summary(self) -> dict[str, int]:
        counts = Counter(data.get("kind", "?") for _, data in self.graph.nodes(data=True))
        summary = dict(sorted(counts.items()))
        summary["edges"] = self.graph.number_of_edges()
        return summary


def host_of(instance: str) -> str:
    """`10.0.1.21:10250` -> `10.0.1.21`; `[fd00::1]:9100` -> `fd00::1`; a bare host stays."""
    if instance.startswith("["):
        return instance[1:].split("]", 1)[0]
    if instance.count(":") == 1:
        return instance.split(":", 1)[0]
    return instance


def is_call(dependent: str, dependency: str, data: dict[str, Any]) -> bool:
    """A call edge: marked `via: calls`, or a hand-written edge between two Services (a topology
    file that says `service/a depends_on service/b` describes a call)."""
    if data.get("via") == "calls":
        return True
    return (
        not data.get("redundant")
        and "via" not in data
        and dependent.startswith("service/")
        and dependency.startswith("service/")
    )
