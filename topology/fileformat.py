"""The project's own topology file (YAML or JSON), for what kube-state-metrics does not know
(a database, a cloud load balancer, a region) and for hand-written test clusters.

```yaml
kind: alert-router/topology        # marks the format
cluster: prod                      # cluster of the short-form objects below (default: default)
nodes:                             # short form: the same built-in edges as the KSM loader
  - {name: worker-1, zone: eu-west-1a, region: eu-west-1, ip: 10.0.1.21}
pods:
  - {namespace: shop, name: checkout-abc, node: worker-1, owner: deployment/checkout, ip: 10.244.1.17}
services:
  - {namespace: shop, name: checkout, pods: [checkout-abc]}
entities:                          # anything, by full entity name
  - name: service/prod/shop/checkout
    depends_on: [external/prod/orders-db]
    calls: [service/prod/shop/payment]   # call edges (`via: calls`)
changes:                           # changes discovery cannot see, as timed events
  - {entity: configmap/prod/shop/flags, at: 2026-10-05T09:00:00Z, what: feature flag edited}
```

The short-form sections go through the same `ClusterBuilder` as kube-state-metrics data, so a
hand-written cluster gets exactly the edges a real one gets. `entities` are applied afterwards
and may add to objects of the short form. docs/topology.md is the full reference.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ground.errors import InputError
from topology import entities
from topology.graph import Topology
from topology.k8s import K8S_KIND, ClusterBuilder

MARKER = "alert-router/topology"
POD_OWNER_KINDS = ("deployment", "replicaset", "statefulset", "daemonset", "job", "node")

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_entity_name(name: str) -> str:
    parts = name.split("/")
    if len(parts) < 3 or not all(parts):
        raise ValueError(f"{name!r} is not an entity name (<kind>/<cluster>/[<namespace>/]<name>)")
    kind = parts[0]
    if kind in entities.NAMESPACED_KINDS and len(parts) != 4:
        raise ValueError(f"{name!r}: a {kind} is named {kind}/<cluster>/<namespace>/<name>")
    if kind == "node" and len(parts) > 4:
        raise ValueError(
            f"{name!r}: a node is node/<cluster>/<node>, a node part node/<cluster>/<node>/<part>"
        )
    if kind in entities.CLUSTER_KINDS and kind != "node" and len(parts) != 3:
        raise ValueError(f"{name!r}: a {kind} is named {kind}/<cluster>/<name>")
    return name


def _check_object_name(value: str) -> str:
    if not value or "/" in value:
        raise ValueError(f"{value!r} is not a Kubernetes object name (non-empty, no '/')")
    return value


class NodeItem(_Item):
    name: str
    cluster: str | None = None
    zone: str = ""
    region: str = ""
    ip: str = ""
    provider_id: str = ""
    aliases: list[str] = Field(default_factory=list)
    attrs: dict[str, Any] = Field(default_factory=dict)

    _name = field_validator("name")(_check_object_name)


class PodItem(_Item):
    name: str
    namespace: str = "default"
    cluster: str | None = None
    node: str = ""
    owner: str = ""
    ip: str = ""
    host_network: bool = False
    claims: list[str] = Field(default_factory=list)
    attrs: dict[str, Any] = Field(default_factory=dict)

    _names = field_validator("name", "namespace")(_check_object_name)

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        if not value:
            return value
        kind, _, name = value.partition("/")
        if kind not in POD_OWNER_KINDS or not name or "/" in name:
            raise ValueError(f"{value!r}: write <kind>/<name> with kind one of {', '.join(POD_OWNER_KINDS)}")
        return value


class ServiceItem(_Item):
    name: str
    namespace: str = "default"
    cluster: str | None = None
    pods: list[str] = Field(default_factory=list)
    # Services this one calls: `<name>` in the same namespace, or `<namespace>/<name>`.
    calls: list[str] = Field(default_factory=list)
    attrs: dict[str, Any] = Field(default_factory=dict)

    _names = field_validator("name", "namespace")(_check_object_name)

    @field_validator("calls")
    @classmethod
    def _callees(cls, values: list[str]) -> list[str]:
        for value in values:
            namespace, _, name = value.rpartition("/")
            if not name or "/" in namespace:
                raise ValueError(f"{value!r}: write <service> or <namespace>/<service>")
        return values


class EntityItem(_Item):
    name: str
    attrs: dict[str, Any] = Field(default_factory=dict)
    ip: str = ""
    aliases: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    calls: list[str] = Field(default_factory=list)  # call edges (`via: calls`), full entity names
    members: list[str] = Field(default_factory=list)

    _name = field_validator("name")(_check_entity_name)

    @field_validator("depends_on", "calls", "members")
    @classmethod
    def _names(cls, values: list[str]) -> list[str]:
        for value in values:
            _check_entity_name(value)
        return values

    @model_validator(mode="after")
    def _kind_specific(self) -> EntityItem:
        kind = entities.kind_of(self.name)
        if self.ip and kind not in ("node", "pod"):
            raise ValueError(f"ip is only for node and pod entities, not {kind}")
        if self.aliases and kind != "node":
            raise ValueError(f"aliases are only for node entities, not {kind}")
        return self


class ChangeItem(_Item):
    """A change the router cannot discover (a feature flag flipped in a ConfigMap by hand, a
    Secret rotated by a vault sync): when, what, and on which entity."""

    entity: str
    at: datetime
    what: str = Field(min_length=1)

    _entity = field_validator("entity")(_check_entity_name)

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the time zone (RFC 3339, e.g. 2026-10-05T09:00:00Z)")
        return value.astimezone(UTC)


class TopologyFile(_Item):
    kind: Literal["alert-router/topology"]
    cluster: str = entities.DEFAULT_CLUSTER
    nodes: list[NodeItem] = Field(default_factory=list)
    pods: list[PodItem] = Field(default_factory=list)
    services: list[ServiceItem] = Field(default_factory=list)
    entities: list[EntityItem] = Field(default_factory=list)
    changes: list[ChangeItem] = Field(default_factory=list)

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str) -> str:
        if not value or "/" in value:
            raise ValueError(f"{value!r} is not a cluster name (non-empty, no '/')")
        return value


def parse_document(text: str, source: str) -> Any:
    """YAML or JSON text -> data; a syntax error names the file and line."""
    json_error: json.JSONDecodeError | None = None
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            # Maybe YAML flow style (`{kind: alert-router/topology, ...}`): YAML decides.
            json_error = exc
    try:
        return yaml.load(text, Loader=_Loader)  # CSafeLoader/SafeLoader: no object construction
    except yaml.YAMLError as exc:
        if json_error is not None:
            raise InputError(f"{source}:{json_error.lineno}: invalid JSON: {json_error.msg}") from None
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{where}: invalid YAML: {problem}") from None


def is_topology_document(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == MARKER


def load_topology_file(path: str | Path) -> Topology:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"cannot read {source}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
    return build_topology_file(parse_document(text, source), source)


def build_topology_file(data: Any, source: str = "<input>") -> Topology:
    """Validated topology-file data -> Topology; errors read `<file>: <field path>: <problem>`."""
    try:
        document = TopologyFile.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"{source}: {_describe(exc)}") from None
    _check_references(document, source)
    return _build(document)


def _build(document: TopologyFile) -> Topology:
    builder = ClusterBuilder()
    default = document.cluster
    extra_attrs: list[tuple[str, dict[str, Any]]] = []
    calls: list[tuple[str, str]] = []  # (caller, callee) Service pairs
    for node in document.nodes:
        cluster = node.cluster or default
        builder.add_node(
            cluster,
            node.name,
            internal_ip=node.ip,
            provider_id=node.provider_id,
            zone=node.zone,
            region=node.region,
            aliases=node.aliases,
        )
        if node.attrs:
            extra_attrs.append((entities.entity("node", cluster, node.name), node.attrs))
    for pod in document.pods:
        cluster = pod.cluster or default
        owner_kind, _, owner_name = pod.owner.partition("/")
        builder.add_pod(
            cluster,
            pod.namespace,
            pod.name,
            node=pod.node,
            ip=pod.ip,
            host_network=pod.host_network,
            owner_kind=K8S_KIND.get(owner_kind, ""),
            owner_name=owner_name,
        )
        for claim in pod.claims:
            builder.add_pod_claim(cluster, pod.namespace, pod.name, claim)
            builder.add_claim(cluster, pod.namespace, claim)
        if pod.attrs:
            extra_attrs.append((entities.entity("pod", cluster, pod.name, pod.namespace), pod.attrs))
    for service in document.services:
        cluster = service.cluster or default
        builder.add_service(cluster, service.namespace, service.name)
        for member in service.pods:
            builder.add_endpoint_pod(cluster, service.namespace, service.name, service.namespace, member)
        source = entities.entity("service", cluster, service.name, service.namespace)
        for callee in service.calls:
            namespace, _, name = callee.rpartition("/")
            calls.append((source, entities.entity("service", cluster, name, namespace or service.namespace)))
        if service.attrs:
            extra_attrs.append(
                (entities.entity("service", cluster, service.name, service.namespace), service.attrs)
            )
    topology = builder.build() if builder.clusters else Topology()
    for name, attrs in extra_attrs:
        topology.add(name, **attrs)
    for source, callee in calls:
        topology.depends(source, callee, via="calls")
    for item in document.entities:
        _apply_entity(topology, item)
    for change in document.changes:
        topology.record_change(change.entity, change.at, change.what)
    return topology


def _apply_entity(topology: Topology, item: EntityItem) -> None:
    name = topology.add(item.name, **item.attrs)
    kind, cluster, _, _ = entities.split(name)
    if item.ip and kind == "node":
        topology.add(name, internal_ip=item.ip)
        topology.index_node_ip(cluster, item.ip, name)
    elif item.ip and kind == "pod":
        topology.add(name, pod_ip=item.ip)
        topology.index_pod_ip(cluster, item.ip, name)
    for alias in item.aliases:
        topology.index_node_alias(cluster, alias, name)
    for dependency in item.depends_on:
        topology.depends(name, dependency)
    for callee in item.calls:
        topology.depends(name, callee, via="calls")
    for member in item.members:
        topology.depends(name, member, redundant=True)


def _check_references(document: TopologyFile, source: str) -> None:
    """Service members must be pods of this file: a typo would silently drop an edge."""
    pods = {(pod.cluster or document.cluster, pod.namespace, pod.name) for pod in document.pods}
    for index, service in enumerate(document.services):
        cluster = service.cluster or document.cluster
        for position, member in enumerate(service.pods):
            if (cluster, service.namespace, member) not in pods:
                raise InputError(
                    f"{source}: services[{index}].pods[{position}]: no pod {service.namespace}/{member} "
                    f"in cluster {cluster} is declared under pods"
                )
    for index, item in enumerate(document.entities):
        if "kind" in item.attrs:
            raise InputError(
                f"{source}: entities[{index}].attrs.kind: 'kind' is reserved (it comes from the name)"
            )
    for section in ("nodes", "pods", "services"):
        for index, item in enumerate(getattr(document, section)):
            if "kind" in item.attrs:
                raise InputError(f"{source}: {section}[{index}].attrs.kind: 'kind' is reserved")


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    path = ""
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "literal_error" and first["loc"] == ("kind",):
        message = f"must be {MARKER!r}"
    return f"{path or '(document)'}: {message}"
