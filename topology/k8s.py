"""Built-in Kubernetes knowledge: which object depends on which.

Both loaders (kube-state-metrics text and the short form of topology files) declare what they
found through one `ClusterBuilder`, then call `build()`; the edges are made here and nowhere
else. Declaring first and building afterwards matters because several rules need the whole
cluster: a pod depends on its node's CNI agent only if that node runs one, cluster DNS is backed
by the endpoints of `kube-system/kube-dns` when they are known, and so on.

Edges mean "depends on" (`pod -> node`). Group -> member edges (a Service to its endpoint pods,
cluster DNS to the CoreDNS pods, the apiserver to its static pods) are `redundant`.
docs/topology.md lists every rule.
"""

from __future__ import annotations

import gc
import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from topology import entities
from topology.graph import Topology

# Kubernetes `Kind` -> entity kind, for owners, HPA targets and the file format's `owner`.
ENTITY_KIND = {
    "Deployment": "deployment",
    "ReplicaSet": "replicaset",
    "StatefulSet": "statefulset",
    "DaemonSet": "daemonset",
    "Job": "job",
    "CronJob": "cronjob",
    "Node": "node",
}
K8S_KIND = {kind: k8s for k8s, kind in ENTITY_KIND.items()}

# DaemonSets that are a node's infrastructure: every pod on the node uses them.
NODE_COMPONENT_DAEMONSETS = {
    **dict.fromkeys(
        (
            "calico-node",
            "cilium",
            "aws-node",
            "weave-net",
            "kube-flannel-ds",
            "kube-flannel",
            "flannel",
            "canal",
            "antrea-agent",
            "kube-router",
            "kindnet",
            "ovnkube-node",
        ),
        "cni",
    ),
    "kube-proxy": "kube-proxy",
    "node-local-dns": "node-local-dns",
    "nodelocaldns": "node-local-dns",
}
DNS_NAMESPACE = "kube-system"
DNS_SERVICE = "kube-dns"
DNS_DEPLOYMENTS = ("coredns", "kube-dns")
DNS_POD_PREFIXES = ("coredns-", "kube-dns-")
# kubeadm static pods are named <component>-<node>.
CONTROL_PLANE_PODS = {
    "kube-apiserver-": "apiserver",
    "etcd-": "etcd",
    "kube-scheduler-": "scheduler",
    "kube-controller-manager-": "controller-manager",
}
# Workloads that watch the apiserver and fail with it.
APISERVER_CLIENT_DEPLOYMENTS = ("kube-state-metrics",)
APISERVER_CLIENT_STATEFULSET_PREFIXES = ("prometheus-",)

# Zone in a node's providerID: `aws:///eu-west-1a/i-0abc`, `gce://project/us-central1-b/name`.
_PROVIDER_ZONE = {
    "aws": re.compile(r"aws://[^/]*/([a-z]{2}(?:-[a-z]+)+-\d+[a-z])/"),
    "gce": re.compile(r"gce://[^/]+/([a-z]+-[a-z]+\d+-[a-z])/"),
}


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large graph is built: it would rescan the
    millions of (acyclic) containers being created over and over, ~30% of the build time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def zone_from_provider_id(provider_id: str) -> str:
    """The zone a providerID names, or "" (Azure and bare-metal providerIDs name none)."""
    scheme = provider_id.partition(":")[0]
    pattern = _PROVIDER_ZONE.get(scheme)
    if pattern is None:
        return ""
    match = pattern.match(provider_id)
    return match.group(1) if match else ""


@dataclass(slots=True)
class NodeSpec:
    internal_ip: str = ""
    provider_id: str = ""
    zone: str = ""
    region: str = ""
    aliases: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PodSpec:
    node: str = ""
    ip: str = ""
    host_network: bool = False
    # The controlling ownerReference, as a Kubernetes Kind and name (`ReplicaSet`, `rs-name`).
    owner_kind: str = ""
    owner_name: str = ""


# Keys: (cluster, name) for cluster-scoped objects, (cluster, namespace, name) for namespaced ones.
Key2 = tuple[str, str]
Key3 = tuple[str, str, str]


class ClusterBuilder:
    """Collects Kubernetes objects of one or more clusters, then turns them into edges."""

    def __init__(self) -> None:
        self.clusters: dict[str, None] = {}
        self.nodes: dict[Key2, NodeSpec] = {}
        self.pods: dict[Key3, PodSpec] = {}
        self.finished_pods: set[Key3] = set()
        # (cluster, entity kind, namespace, name) of workloads known to exist.
        self.workloads: dict[tuple[str, str, str, str], None] = {}
        # (cluster, entity kind, namespace, name) -> (Kubernetes Kind, name) of its controller.
        self.owners: dict[tuple[str, str, str, str], tuple[str, str]] = {}
        self.hpas: dict[Key3, tuple[str, str]] = {}
        self.services: dict[Key3, None] = {}
        # Service -> ready endpoint pods (namespace, name) / ready endpoint IPs.
        self.endpoint_pods: dict[Key3, dict[tuple[str, str], None]] = defaultdict(dict)
        self.endpoint_nodes: dict[Key3, dict[str, None]] = defaultdict(dict)
        self.endpoint_ips: dict[Key3, dict[str, None]] = defaultdict(dict)
        self.ingresses: dict[Key3, dict[str, None]] = {}
        self.pod_claims: dict[Key3, dict[str, None]] = defaultdict(dict)
        self.claims: dict[Key3, str] = {}
        self.volumes: dict[Key2, None] = {}

    # -- declaring ----------------------------------------------------------------------------

    def add_cluster(self, cluster: str) -> None:
        self.clusters[cluster or entities.DEFAULT_CLUSTER] = None

    def add_node(
        self,
        cluster: str,
        name: str,
        *,
        internal_ip: str = "",
        provider_id: str = "",
        zone: str = "",
        region: str = "",
        aliases: list[str] | None = None,
    ) -> None:
        """A node; fields left empty keep what an earlier declaration said."""
        self.add_cluster(cluster)
        spec = self.nodes.get((cluster, name))
        if spec is None:
            spec = self.nodes[(cluster, name)] = NodeSpec()
        spec.internal_ip = internal_ip or spec.internal_ip
        spec.provider_id = provider_id or spec.provider_id
        spec.zone = zone or spec.zone
        spec.region = region or spec.region
        spec.aliases.extend(aliases or ())

    def set_node_zone(self, cluster: str, name: str, zone: str = "", region: str = "") -> None:
        """Zone/region from node labels; they win over the providerID."""
        self.add_node(cluster, name, zone=zone, region=region)

    def add_pod(
        self,
        cluster: str,
        namespace: str,
        name: str,
        *,
        node: str = "",
        ip: str = "",
        host_network: bool = False,
        owner_kind: str = "",
        owner_name: str = "",
    ) -> None:
        """A pod; `owner_kind` is its controller's Kubernetes Kind (ReplicaSet, Node, ...)."""
        self.add_cluster(cluster)
        self.pods[(cluster, namespace, name)] = PodSpec(node, ip, host_network, owner_kind, owner_name)

    def set_pod_owner(self, cluster: str, namespace: str, name: str, kind: str, owner: str) -> None:
        """The pod's controller from a separate source (kube_pod_owner); kept for `build()`."""
        self.owners[(cluster, "pod", namespace, name)] = (kind, owner)

    def set_pod_finished(self, cluster: str, namespace: str, name: str) -> None:
        """A Succeeded/Failed pod: its IP may already belong to another pod, so it is not indexed."""
        self.finished_pods.add((cluster, namespace, name))

    def add_workload(self, cluster: str, kind: str, namespace: str, name: str) -> None:
        """A workload known to exist (even with no pods); `kind` is an entity kind."""
        self.add_cluster(cluster)
        self.workloads[(cluster, kind, namespace, name)] = None

    def set_owner(
        self, cluster: str, kind: str, namespace: str, name: str, owner_kind: str, owner_name: str
    ) -> None:
        """A workload's controller: ReplicaSet -> Deployment, Job -> CronJob (Kubernetes Kinds)."""
        self.add_workload(cluster, kind, namespace, name)
        self.owners[(cluster, kind, namespace, name)] = (owner_kind, owner_name)

    def add_hpa(self, cluster: str, namespace: str, name: str, target_kind: str, target_name: str) -> None:
        self.add_cluster(cluster)
        self.hpas[(cluster, namespace, name)] = (target_kind, target_name)

    def add_service(self, cluster: str, namespace: str, name: str) -> None:
        self.add_cluster(cluster)
        self.services[(cluster, namespace, name)] = None

    def add_endpoint_pod(
        self, cluster: str, namespace: str, service: str, pod_namespace: str, pod: str
    ) -> None:
        """A ready endpoint of a Service that names its pod."""
        self.add_service(cluster, namespace, service)
        self.endpoint_pods[(cluster, namespace, service)][(pod_namespace or namespace, pod)] = None

    def add_endpoint_node(self, cluster: str, namespace: str, service: str, node: str) -> None:
        """A ready endpoint that targets a Node (the kubelet Service): its kubelet is the member."""
        self.add_service(cluster, namespace, service)
        self.endpoint_nodes[(cluster, namespace, service)][node] = None

    def add_endpoint_ip(self, cluster: str, namespace: str, service: str, ip: str) -> None:
        """A ready endpoint known by its IP only (Endpoints objects): joined to pod IPs in build()."""
        self.add_service(cluster, namespace, service)
        self.endpoint_ips[(cluster, namespace, service)][ip] = None

    def add_ingress(self, cluster: str, namespace: str, name: str, service: str = "") -> None:
        self.add_cluster(cluster)
        backends = self.ingresses.setdefault((cluster, namespace, name), {})
        if service:
            backends[service] = None

    def add_pod_claim(self, cluster: str, namespace: str, pod: str, claim: str) -> None:
        self.pod_claims[(cluster, namespace, pod)][claim] = None

    def add_claim(self, cluster: str, namespace: str, claim: str, volume: str = "") -> None:
        """A PersistentVolumeClaim, bound to `volume` (a PV name) when it is not empty."""
        self.add_cluster(cluster)
        key = (cluster, namespace, claim)
        self.claims[key] = volume or self.claims.get(key, "")
        if volume:
            self.volumes[(cluster, volume)] = None

    def add_volume(self, cluster: str, name: str) -> None:
        self.add_cluster(cluster)
        self.volumes[(cluster, name)] = None

    # -- building -----------------------------------------------------------------------------

    def build(self, topology: Topology | None = None) -> Topology:
        """Create every entity and edge in `topology` (a new one by default) and return it."""
        with paused_gc():
            return _Build(self, topology or Topology()).run()


class _Build:
    """One run of the rules over a builder's declarations."""

    def __init__(self, spec: ClusterBuilder, topology: Topology) -> None:
        self.spec = spec
        self.t = topology
        # pod key -> its controller entity for the `owner` attribute, and workload -> pod edges.
        self.controller: dict[Key3, str] = {}
        # (cluster, node) -> component -> the pods that are that component.
        self.components: dict[Key2, dict[str, list[str]]] = {}
        self.dns_backends: set[Key3] = set()
        self.component_pods: set[Key3] = set()
        # Entities and edges are queued and handed to the Topology in bulk at the end.
        self.queued: list[tuple[str, dict[str, object]]] = []
        self.hard: list[tuple[str, str]] = []
        self.redundant: list[tuple[str, str]] = []
        self.pod_ips: dict[Key2, Key3] = {}
        self.node_ips: dict[Key2, str] = {}  # (cluster, internal IP) -> node name
        self.host_ips: dict[Key3, Key3 | None] = {}

    def run(self) -> Topology:
        for cluster in self.spec.clusters:
            self._control_plane(cluster)
        self._resolve_owners()
        self._index_ips()
        self._find_components()
        self._find_dns_backends()
        self._nodes()
        self._pods()
        self._workloads()
        self._services()
        self._storage()
        self.t.add_many(self.queued)
        self.t.depends_many(self.hard)
        self.t.depends_many(self.redundant, redundant=True)
        return self.t

    def _add(self, name: str, **attrs: object) -> str:
        self.queued.append((name, attrs))
        return name

    def _edge(self, dependent: str, dependency: str, *, redundant: bool = False) -> None:
        (self.redundant if redundant else self.hard).append((dependent, dependency))

    # Control plane: singletons exist in every cluster, also where no static pod is visible.
    def _control_plane(self, cluster: str) -> None:
        apiserver = self._add(entities.singleton("apiserver", cluster))
        etcd = self._add(entities.singleton("etcd", cluster))
        self._edge(apiserver, etcd)
        self._edge(self._add(entities.singleton("scheduler", cluster)), apiserver)
        self._edge(self._add(entities.singleton("controller-manager", cluster)), apiserver)
        self._add(entities.singleton("dns", cluster))

    def _resolve_owners(self) -> None:
        """Pod -> controlling workload entity (ReplicaSet resolved to its Deployment)."""
        owners = self.spec.owners
        for key, pod in self.spec.pods.items():
            cluster, namespace, name = key
            kind, owner = pod.owner_kind, pod.owner_name
            if not kind:
                kind, owner = owners.get((cluster, "pod", namespace, name), ("", ""))
                pod.owner_kind, pod.owner_name = kind, owner
            entity_kind = ENTITY_KIND.get(kind)
            if entity_kind is None or not owner or entity_kind == "node":
                continue
            if entity_kind == "replicaset":
                parent_kind, parent = owners.get((cluster, "replicaset", namespace, owner), ("", ""))
                if parent_kind == "Deployment" and parent:
                    self.controller[key] = entities.entity("deployment", cluster, parent, namespace)
                    continue
            self.controller[key] = entities.entity(entity_kind, cluster, owner, namespace)

    def _find_components(self) -> None:
        for key, pod in self.spec.pods.items():
            if pod.owner_kind != "DaemonSet":
                continue
            component = NODE_COMPONENT_DAEMONSETS.get(pod.owner_name)
            if component is None:
                continue
            self.component_pods.add(key)
            if pod.node:
                cluster, namespace, name = key
                by_component = self.components.setdefault((cluster, pod.node), {})
                pod_entity = entities.entity("pod", cluster, name, namespace)
                by_component.setdefault(component, []).append(pod_entity)

    def _find_dns_backends(self) -> None:
        """CoreDNS pods: the ready endpoints of kube-system/kube-dns, else the coredns pods."""
        by_cluster: dict[str, set[Key3]] = defaultdict(set)
        for (cluster, namespace, service), pods in self.spec.endpoint_pods.items():
            if namespace == DNS_NAMESPACE and service == DNS_SERVICE:
                by_cluster[cluster].update(
                    (cluster, ns, name) for ns, name in pods if (cluster, ns, name) in self.spec.pods
                )
        for (cluster, namespace, service), ips in self.spec.endpoint_ips.items():
            if namespace == DNS_NAMESPACE and service == DNS_SERVICE:
                by_cluster[cluster].update(self._pods_by_ip(cluster, namespace, ips))
        fallback: dict[str, set[Key3]] = defaultdict(set)
        for key in self.spec.pods:
            cluster, namespace, name = key
            if namespace != DNS_NAMESPACE or by_cluster.get(cluster):
                continue
            owner = self.controller.get(key, "")
            if owner.startswith("deployment/"):
                if owner.rsplit("/", 1)[1] in DNS_DEPLOYMENTS:
                    fallback[cluster].add(key)
            elif not owner and name.startswith(DNS_POD_PREFIXES):
                fallback[cluster].add(key)
        for cluster in self.spec.clusters:
            self.dns_backends.update(by_cluster.get(cluster) or fallback.get(cluster) or ())

    def _nodes(self) -> None:
        t = self.t
        for (cluster, name), spec in self.spec.nodes.items():
            node = entities.entity("node", cluster, name)
            attrs: dict[str, str] = {"internal_ip": spec.internal_ip, "provider_id": spec.provider_id}
            zone_name = spec.zone or zone_from_provider_id(spec.provider_id)
            if zone_name:
                zone = entities.entity("zone", cluster, zone_name)
                attrs["zone"] = zone
                self._add(node, **attrs)
                self._edge(node, zone)
                if spec.region:
                    self._edge(zone, entities.entity("region", cluster, spec.region))
            else:
                self._add(node, **attrs)
            t.index_node_ip(cluster, spec.internal_ip, node)
            t.index_node_alias(cluster, name, node)
            for alias in spec.aliases:
                t.index_node_alias(cluster, alias, node)
        # Every node of the pods and components gets a kubelet, even one without kube_node_info.
        nodes = {key: None for key in self.spec.nodes}
        nodes.update(((c, p.node), None) for (c, _, _), p in self.spec.pods.items() if p.node)
        for cluster, name in nodes:
            node = entities.entity("node", cluster, name)
            kubelet = entities.node_component(cluster, name, "kubelet")
            self._edge(kubelet, node)
            # The kubelet reports node status through the apiserver.
            self._edge(kubelet, entities.singleton("apiserver", cluster))
            for component, pods in self.components.get((cluster, name), {}).items():
                part = entities.node_component(cluster, name, component)
                self._edge(part, node)
                for pod in pods:
                    self._edge(part, pod)

    def _pods(self) -> None:
        """Pod -> node, its node's CNI / kube-proxy / node-local DNS, cluster DNS.

        The hot loop of a large cluster: entity names are formatted inline (as in entities.py)
        and edges appended to the queue directly."""
        t = self.t
        spec = self.spec
        hard = self.hard.append
        queue = self.queued.append
        dns_by_cluster = {cluster: entities.singleton("dns", cluster) for cluster in spec.clusters}
        for key, pod in spec.pods.items():
            cluster, namespace, name = key
            entity = f"pod/{cluster}/{namespace}/{name}"
            node = f"node/{cluster}/{pod.node}" if pod.node else ""
            attrs: dict[str, object] = {"node": node, "host_network": pod.host_network, "pod_ip": pod.ip}
            owner = self.controller.get(key)
            if owner:
                attrs["owner"] = owner
            queue((entity, attrs))
            if not pod.host_network and key not in spec.finished_pods:
                t.index_pod_ip(cluster, pod.ip, entity)
            if node:
                hard((entity, node))
            # Mirror pods of static pods are owned by their Node; without owner series, a kubeadm
            # control-plane pod is still recognised by its name `<component>-<node>`.
            prefix = "" if pod.owner_kind else _control_plane_prefix(namespace, name)
            static = pod.owner_kind == "Node" or bool(prefix and name == prefix + pod.node)
            if static:
                self._static_pod(key, pod, entity)
            if static or key in self.component_pods:
                # Static pods and node components run on the node itself, below cluster networking.
                continue
            backend = key in self.dns_backends
            uses_cluster_dns = not pod.host_network and not backend
            components = self.components.get((cluster, pod.node)) if node else None
            if components:
                if "cni" in components and not pod.host_network:
                    hard((entity, f"{node}/cni"))
                if "kube-proxy" in components:
                    hard((entity, f"{node}/kube-proxy"))
                if "node-local-dns" in components and uses_cluster_dns:
                    hard((entity, f"{node}/node-local-dns"))
            if uses_cluster_dns:
                hard((entity, dns_by_cluster[cluster]))
            if backend:
                self._edge(dns_by_cluster[cluster], entity, redundant=True)
            if owner and _watches_apiserver(owner):
                hard((entity, entities.singleton("apiserver", cluster)))

    def _static_pod(self, key: Key3, pod: PodSpec, entity: str) -> None:
        cluster, namespace, name = key
        if pod.owner_name and pod.owner_name != pod.node:
            self._edge(entity, entities.entity("node", cluster, pod.owner_name))
        kind = _control_plane_kind(namespace, name)
        if kind:
            self._edge(entities.singleton(kind, cluster), entity, redundant=True)

    def _workloads(self) -> None:
        for cluster, kind, namespace, name in self.spec.workloads:
            # A ReplicaSet matters through its pods; old, scaled-down ones would only add weight.
            if kind != "replicaset":
                self._add(entities.entity(kind, cluster, name, namespace))
        # Workload -> pods; ReplicaSet pods through their ReplicaSet.
        for key, pod in self.spec.pods.items():
            owner = self.controller.get(key)
            if owner is None:
                continue
            cluster, namespace, name = key
            entity = entities.entity("pod", cluster, name, namespace)
            if pod.owner_kind == "ReplicaSet" and owner.startswith("deployment/"):
                replicaset = entities.entity("replicaset", cluster, pod.owner_name, namespace)
                self._edge(owner, replicaset)
                self._edge(replicaset, entity)
            else:
                self._edge(owner, entity)
        for (cluster, kind, namespace, name), (owner_kind, owner) in self.spec.owners.items():
            parent_kind = ENTITY_KIND.get(owner_kind)
            # ReplicaSet -> Deployment edges come with the pods above.
            if kind != "job" or not owner or parent_kind != "cronjob":
                continue
            self._edge(
                entities.entity(parent_kind, cluster, owner, namespace),
                entities.entity(kind, cluster, name, namespace),
            )
        for (cluster, namespace, name), (target_kind, target) in self.spec.hpas.items():
            hpa = self._add(entities.entity("hpa", cluster, name, namespace))
            target_entity_kind = ENTITY_KIND.get(target_kind)
            if target and target_entity_kind in ("deployment", "statefulset", "replicaset"):
                self._edge(hpa, entities.entity(target_entity_kind, cluster, target, namespace))

    def _services(self) -> None:
        spec = self.spec
        for key in spec.services:
            cluster, namespace, name = key
            service = self._add(entities.entity("service", cluster, name, namespace))
            if namespace == DNS_NAMESPACE and name == DNS_SERVICE:
                # The DNS Service is cluster DNS; its pods are cluster DNS's members.
                self._edge(service, entities.singleton("dns", cluster))
                continue
            members: dict[Key3, None] = {}
            for pod_namespace, pod in spec.endpoint_pods.get(key, ()):
                if (cluster, pod_namespace, pod) in spec.pods:
                    members[(cluster, pod_namespace, pod)] = None
            ips = spec.endpoint_ips.get(key)
            nodes = dict.fromkeys(spec.endpoint_nodes.get(key, ()))
            for ip in ips or ():
                at_ip = self._pod_by_ip(cluster, namespace, ip)
                if at_ip is not None:
                    members[at_ip] = None
                elif node := self.node_ips.get((cluster, ip)):
                    # A node's own address and no pod of the namespace there: the kubelet
                    # Service (Endpoints name IPs only; slices name the Node).
                    nodes[node] = None
            owners: dict[str, None] = {}
            for member in members:
                _, pod_namespace, pod = member
                self._edge(service, entities.entity("pod", cluster, pod, pod_namespace), redundant=True)
                owner = self.controller.get(member)
                if owner and not owner.startswith("replicaset/"):
                    owners[owner] = None
            # A Service fronts its workload: when the workload fails (a bad rollout whose new
            # pods the topology has not seen yet), so does the Service.
            for owner in owners:
                self._edge(service, owner)
            for node in nodes:
                if (cluster, node) in spec.nodes:
                    self._edge(service, entities.node_component(cluster, node, "kubelet"), redundant=True)
        for (cluster, namespace, name), backends in spec.ingresses.items():
            ingress = self._add(entities.entity("ingress", cluster, name, namespace))
            for service in backends:
                self._edge(ingress, entities.entity("service", cluster, service, namespace))

    def _index_ips(self) -> None:
        """Pod IP -> pod, for Endpoints that name IPs only. A host-network pod has its node's IP,
        shared with the node's other host-network pods: such an IP is only taken when exactly one
        host-network pod of the Service's namespace has it."""
        finished = self.spec.finished_pods
        for (cluster, name), node in self.spec.nodes.items():
            if node.internal_ip:
                self.node_ips[(cluster, node.internal_ip)] = name
        for key, pod in self.spec.pods.items():
            if not pod.ip or key in finished:
                continue
            cluster, namespace, _ = key
            if pod.host_network:
                shared = (cluster, namespace, pod.ip)
                self.host_ips[shared] = None if shared in self.host_ips else key
            else:
                self.pod_ips[(cluster, pod.ip)] = key

    def _pods_by_ip(self, cluster: str, namespace: str, ips: dict[str, None]) -> list[Key3]:
        return [key for ip in ips if (key := self._pod_by_ip(cluster, namespace, ip))]

    def _pod_by_ip(self, cluster: str, namespace: str, ip: str) -> Key3 | None:
        return self.pod_ips.get((cluster, ip)) or self.host_ips.get((cluster, namespace, ip))

    def _storage(self) -> None:
        for cluster, name in self.spec.volumes:
            self._add(entities.entity("pv", cluster, name))
        for (cluster, namespace, claim), volume in self.spec.claims.items():
            pvc = self._add(entities.entity("pvc", cluster, claim, namespace))
            if volume:
                self._edge(pvc, entities.entity("pv", cluster, volume))
        for (cluster, namespace, pod), claims in self.spec.pod_claims.items():
            if (cluster, namespace, pod) not in self.spec.pods:
                continue
            entity = entities.entity("pod", cluster, pod, namespace)
            for claim in claims:
                self._edge(entity, entities.entity("pvc", cluster, claim, namespace))


def _control_plane_prefix(namespace: str, name: str) -> str:
    if namespace == "kube-system":
        for prefix in CONTROL_PLANE_PODS:
            if name.startswith(prefix):
                return prefix
    return ""


def _control_plane_kind(namespace: str, name: str) -> str:
    """`kube-system/kube-apiserver-cp-1` -> `apiserver`; "" for other pods."""
    prefix = _control_plane_prefix(namespace, name)
    return CONTROL_PLANE_PODS[prefix] if prefix else ""


def _watches_apiserver(owner: str) -> bool:
    """kube-state-metrics and Prometheus list/watch the apiserver: they fail with it."""
    kind, _, rest = owner.partition("/")
    name = rest.rsplit("/", 1)[-1]
    if kind == "deployment":
        return name in APISERVER_CLIENT_DEPLOYMENTS
    if kind == "statefulset":
        return name.startswith(APISERVER_CLIENT_STATEFULSET_PREFIXES)
    return False
