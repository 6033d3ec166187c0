"""Synthetic kube-state-metrics exposition for a cluster of any size, up to Kubernetes' limits.

    python bench/gen_cluster.py --nodes 5000 --pods-per-node 30 --zones 3 -o cluster.prom

The text has the shape of a real KSM v2 `/metrics` dump (kube-prometheus pins v2.19.1): `# HELP`
(with `[STABLE]` for stable metrics) and `# TYPE` per family, families grouped by resource in
KSM's order (resources sorted by name), labels in KSM's print order, `1`/`0` values, no
timestamps. The label allowlist assumed is the one the reference recommends
(`nodes=[topology.kubernetes.io/zone,topology.kubernetes.io/region]`,
`endpointslices=[kubernetes.io/service-name]`).

The cluster: `--nodes` nodes per cluster, the first three of them a kubeadm control plane
(static kube-apiserver, etcd, kube-scheduler and kube-controller-manager pods, host network),
spread over `--zones` zones of one AWS region; kube-proxy, calico-node and node-exporter
DaemonSets on every node; CoreDNS (2 pods, kube-dns Service), kube-state-metrics and the
prometheus-k8s StatefulSet (PVCs), the `kubernetes` and prometheus-operator's `kubelet` Services
(EndpointSlices with targetRef Node); then application namespaces of Deployments (ReplicaSets
with template hashes, some old ones scaled to 0) and StatefulSets (PVCs), each behind a Service
with EndpointSlices of at most 100 endpoints, and one Ingress per namespace. Each worker runs
exactly `--pods-per-node` pods. Everything is derived from `--seed`.

The text is streamed to the output; only a compact object model is held in memory.
`generate()` returns a ClusterInfo (node names per zone, pods per node...) for gen_storm.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import string
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from router.sim.scenarios import pod_uid

PodRef = tuple[str, str, str, str]  # (namespace, pod, workload_kind, workload_name)

REGION = "eu-west-1"
CONTROL_PLANE_NODES = 3
DAEMONSETS = (("kube-system", "kube-proxy"), ("kube-system", "calico-node"), ("monitoring", "node-exporter"))
KSM_VERSIONS = ("2.19.1", "2.20.0")
K8S_VERSION = "v1.31.2"
# Kubernetes' rand.SafeEncodeString alphabet: pod-template hashes and generated name suffixes.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
ENDPOINTS_PER_SLICE = 100  # EndpointSlice controller default --max-endpoints-per-slice
KUBELET_ENDPOINTS_PER_SLICE = 512  # prometheus-operator's kubelet controller

APP_NAMESPACES = (
    "shop", "payments", "checkout", "search", "catalog", "orders", "inventory", "accounts",
    "auth", "notifications", "recommendations", "analytics", "media", "billing", "shipping",
    "reviews", "ads", "messaging", "reporting", "gateway", "pricing", "loyalty", "fraud", "support",
)  # fmt: skip
APP_COMPONENTS = (
    "frontend", "api", "web", "worker", "checkout", "cart", "auth", "search", "indexer", "gateway",
    "scheduler", "notifier", "mailer", "renderer", "importer", "exporter", "sync", "cache-warmer",
    "graphql", "admin", "ledger", "pricing", "profile", "session", "uploader", "thumbnailer",
    "webhooks", "router", "matcher", "recommender", "tracker", "billing", "invoicer", "audit",
)  # fmt: skip
DATASTORES = ("postgres", "redis", "kafka", "zookeeper", "elasticsearch", "rabbitmq", "mysql", "mongodb")
DEPLOYMENT_REPLICAS = (1, 2, 2, 3, 3, 3, 4, 5, 6, 8, 10, 12, 16, 24)
STATEFULSET_REPLICAS = (1, 3, 3, 3, 5)


@dataclass
class ClusterInfo:
    """What a storm generator needs to know about a generated cluster."""

    cluster: str | None  # the `cluster` label on every series, None for a plain single-cluster dump
    region: str
    zones: dict[str, list[str]]  # zone -> node names
    node_ips: dict[str, str]
    control_plane: list[str]
    pods_by_node: dict[str, list[PodRef]]
    daemonsets: list[tuple[str, str]]
    ksm_instance: str  # `<KSM pod IP>:8443`, the instance label of KSM-based alerts
    coredns_pods: list[tuple[str, str]]  # (pod, node)
    objects: dict[str, int] = field(default_factory=dict)  # kind -> count
    series: dict[str, int] = field(default_factory=dict)  # metric family -> series written

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> ClusterInfo:
        raw = dict(raw)
        raw["pods_by_node"] = {n: [tuple(p) for p in pods] for n, pods in raw["pods_by_node"].items()}
        raw["daemonsets"] = [tuple(d) for d in raw["daemonsets"]]
        raw["coredns_pods"] = [tuple(p) for p in raw["coredns_pods"]]
        return cls(**raw)


# --- object model ------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Node:
    name: str
    ip: str
    zone: str
    control_plane: bool
    provider_id: str
    system_uuid: str
    pod_cidr: str
    pod_net: str  # "100.64.5." - pod IPs of this node are pod_net + host number
    pods: list[_Pod] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class _Pod:
    namespace: str
    name: str
    node: _Node
    ip: str
    host_network: bool
    priority: str
    owner_kind: str  # controller kind as KSM prints it (ReplicaSet, StatefulSet, DaemonSet, Node)
    owner_name: str
    workload_kind: str  # top controller (Deployment for ReplicaSet pods)
    workload_name: str
    containers: tuple[tuple[str, str], ...]  # (name, image)
    claim: tuple[str, str] | None = None  # (volume, persistentvolumeclaim)
    hostname: str = ""  # StatefulSet pods behind their headless Service
    key: str = ""  # the printed `namespace="..",pod="..",uid=".."` prefix


@dataclass(slots=True, eq=False)
class _Workload:
    kind: str  # Deployment, StatefulSet, DaemonSet
    namespace: str
    name: str
    replicas: int
    containers: tuple[tuple[str, str], ...]
    priority: str = ""
    host_network: bool = False
    replicaset: str = ""  # current ReplicaSet of a Deployment
    old_replicasets: tuple[str, ...] = ()
    claim_template: str = ""  # StatefulSet volumeClaimTemplate name
    pods: list[_Pod] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class _Service:
    namespace: str
    name: str
    cluster_ip: str
    ports: tuple[tuple[str, str, int], ...]  # (name, protocol, port)
    # endpoints: (address, node, zone, targetref kind, targetref name, hostname)
    endpoints: list[tuple[str, str, str, str, str, str]]
    # Slices written by the apiserver and prometheus-operator set only the Ready condition; the
    # EndpointSlice controller sets Ready, Serving and Terminating.
    ready_only: bool = False
    slices: list[tuple[str, int, int]] = field(default_factory=list)  # (name, start, end)


@dataclass
class _Cluster:
    label: str | None
    zones: list[str]
    nodes: list[_Node]
    workloads: list[_Workload]
    static_pods: list[_Pod]
    services: list[_Service]
    ingresses: list[tuple[str, str, list[tuple[str, str, str]]]]  # (namespace, name, [(path, svc, port)])
    claims: list[tuple[str, str, str]]  # (namespace, claim, volume)
    region: str = REGION  # printed as label_topology_kubernetes_io_region

    def pods(self) -> Iterator[_Pod]:
        for node in self.nodes:
            yield from node.pods


class Names:
    """Random Kubernetes-style names and IDs from one seeded generator, unique where it matters."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def suffix(self, length: int = 5) -> str:
        return "".join(self.rng.choice(NAME_ALPHABET) for _ in range(length))

    def unique(self, prefix: str, length: int = 5) -> str:
        while True:
            name = f"{prefix}-{self.suffix(length)}"
            if name not in self.used:
                self.used.add(name)
                return name

    def template_hash(self) -> str:
        return self.suffix(self.rng.choice((9, 10, 10)))

    def hex(self, digits: int) -> str:
        return f"{self.rng.getrandbits(4 * digits):0{digits}x}"

    def uuid(self) -> str:
        h = self.hex(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


def _zone_names(zones: int) -> list[str]:
    if not 1 <= zones <= 26:
        raise ValueError("--zones must be between 1 and 26")
    return [f"{REGION}{letter}" for letter in string.ascii_lowercase[:zones]]


def _build(
    nodes: int,
    pods_per_node: int,
    zones: int,
    seed: int,
    cluster_index: int,
    label: str | None,
    spread_zones: bool = False,
) -> _Cluster:
    if nodes <= CONTROL_PLANE_NODES:
        raise ValueError(f"--nodes must be more than the {CONTROL_PLANE_NODES} control-plane nodes")
    if not len(DAEMONSETS) + 1 <= pods_per_node <= 250:
        raise ValueError(f"--pods-per-node must be between {len(DAEMONSETS) + 1} and 250")
    rng = random.Random(f"gen_cluster/{seed}/{cluster_index}")
    names = Names(rng)
    zone_names = _zone_names(zones)
    blocks = 256 // zones  # /24 blocks of node IPs per zone
    if (nodes // zones + 1) > blocks * 250:
        raise ValueError("too many nodes per zone for the node IP plan")
    first_net = cluster_index * nodes
    if first_net + nodes > 64 * 256:
        raise ValueError("more than 16384 nodes in total do not fit the pod network plan")

    node_list: list[_Node] = []
    for i in range(nodes):
        z, k = i % zones, i // zones
        ip = f"10.{cluster_index}.{z * blocks + k // 250}.{k % 250 + 4}"
        net = first_net + i
        pod_net = f"100.{64 + net // 256}.{net % 256}."
        uid = f"ec2{rng.getrandbits(116):029x}"
        node_list.append(
            _Node(
                name=f"ip-{ip.replace('.', '-')}.{REGION}.compute.internal",
                ip=ip,
                zone=zone_names[z],
                control_plane=i < CONTROL_PLANE_NODES,
                provider_id=f"aws:///{zone_names[z]}/i-0{rng.getrandbits(64):016x}",
                system_uuid=f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:32]}",
                pod_cidr=f"{pod_net}0/24",
                pod_net=pod_net,
            )
        )
    workers = [n for n in node_list if not n.control_plane]
    cluster = _Cluster(label, zone_names, node_list, [], [], [], [], [])

    def add_pod(workload: _Workload | None, node: _Node, name: str, **extra) -> _Pod:
        host = extra.pop("host_network", workload.host_network if workload else True)
        pod = _Pod(
            namespace=extra.pop("namespace", workload.namespace if workload else "kube-system"),
            name=name,
            node=node,
            ip=node.ip if host else f"{node.pod_net}{len(node.pods) + 2}",
            host_network=host,
            priority=extra.pop("priority", workload.priority if workload else "system-node-critical"),
            owner_kind=extra.pop("owner_kind", ""),
            owner_name=extra.pop("owner_name", ""),
            workload_kind=workload.kind if workload else "Node",
            workload_name=workload.name if workload else node.name,
            containers=extra.pop("containers", workload.containers if workload else ()),
            **extra,
        )
        node.pods.append(pod)
        if workload is not None:
            workload.pods.append(pod)
        return pod

    # Control plane: kubeadm static pods, mirrored with owner Node.
    images = {
        "kube-apiserver": f"registry.k8s.io/kube-apiserver:{K8S_VERSION}",
        "etcd": "registry.k8s.io/etcd:3.5.15-0",
        "kube-scheduler": f"registry.k8s.io/kube-scheduler:{K8S_VERSION}",
        "kube-controller-manager": f"registry.k8s.io/kube-controller-manager:{K8S_VERSION}",
    }
    for node in node_list[:CONTROL_PLANE_NODES]:
        for component, image in images.items():
            pod = add_pod(
                None, node, f"{component}-{node.name}", owner_kind="Node", owner_name=node.name,
                containers=((component, image),),
            )  # fmt: skip
            cluster.static_pods.append(pod)

    # DaemonSets: one pod per node, host network.
    ds_images = {
        "kube-proxy": (("kube-proxy", f"registry.k8s.io/kube-proxy:{K8S_VERSION}"),),
        "calico-node": (("calico-node", "docker.io/calico/node:v3.28.2"),),
        "node-exporter": (
            ("node-exporter", "quay.io/prometheus/node-exporter:v1.12.1"),
            ("kube-rbac-proxy", "quay.io/brancz/kube-rbac-proxy:v0.19.1"),
        ),
    }
    for namespace, name in DAEMONSETS:
        priority = "system-cluster-critical" if name == "node-exporter" else "system-node-critical"
        ds = _Workload("DaemonSet", namespace, name, nodes, ds_images[name], priority, host_network=True)
        cluster.workloads.append(ds)
        for node in node_list:
            add_pod(ds, node, names.unique(name), owner_kind="DaemonSet", owner_name=name)

    # Worker slots left for everything else, in a seeded random order.
    slots = [node for node in workers for _ in range(pods_per_node - len(DAEMONSETS))]
    rng.shuffle(slots)
    by_zone = {z: [n for n in workers if n.zone == z] for z in zone_names}

    def pinned(zone_index: int) -> _Node:
        """A free worker in a given zone (system pods are spread on purpose)."""
        zone = zone_names[zone_index % zones]
        for node in by_zone[zone] or workers:
            if node in slots:
                slots.remove(node)
                return node
        raise ValueError("no free worker slot left for the system pods")

    def deployment(namespace: str, name: str, replicas: int, containers, priority: str = "") -> _Workload:
        old = tuple(f"{name}-{names.template_hash()}" for _ in range(rng.choice((0, 0, 1, 2))))
        rs = f"{name}-{names.template_hash()}"
        return _Workload(
            "Deployment", namespace, name, replicas, containers, priority, replicaset=rs, old_replicasets=old
        )

    def place(workload: _Workload, node: _Node, index: int) -> _Pod:
        if workload.kind == "Deployment":
            pod_name = names.unique(workload.replicaset)
            return add_pod(workload, node, pod_name, owner_kind="ReplicaSet", owner_name=workload.replicaset)
        pod_name = f"{workload.name}-{index}"
        claim = None
        if workload.claim_template:
            claim = (workload.claim_template, f"{workload.claim_template}-{pod_name}")
            cluster.claims.append((workload.namespace, claim[1], f"pvc-{names.uuid()}"))
        return add_pod(
            workload,
            node,
            pod_name,
            owner_kind="StatefulSet",
            owner_name=workload.name,
            claim=claim,
            hostname=pod_name,
        )

    coredns = deployment(
        "kube-system",
        "coredns",
        2,
        (("coredns", "registry.k8s.io/coredns/coredns:v1.11.3"),),
        "system-cluster-critical",
    )
    ksm = deployment(
        "monitoring",
        "kube-state-metrics",
        1,
        (
            ("kube-state-metrics", "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.19.1"),
            ("kube-rbac-proxy-main", "quay.io/brancz/kube-rbac-proxy:v0.19.1"),
            ("kube-rbac-proxy-self", "quay.io/brancz/kube-rbac-proxy:v0.19.1"),
        ),
    )
    prometheus = _Workload(
        "StatefulSet",
        "monitoring",
        "prometheus-k8s",
        2,
        (
            ("prometheus", "quay.io/prometheus/prometheus:v3.13.2"),
            ("config-reloader", "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1"),
        ),
        claim_template="prometheus-k8s-db",
    )
    # CoreDNS in the first two zones, KSM in the last, Prometheus in zones 1 and 2: a storm in
    # zone 0 keeps its alerting pipeline and loses one CoreDNS replica.
    for index, zone in enumerate((0, 1)):
        place(coredns, pinned(zone), index)
    place(ksm, pinned(zones - 1), 0)
    for index in range(2):
        place(prometheus, pinned(index + 1), index)
    cluster.workloads += [coredns, ksm, prometheus]

    # Application namespaces until every slot is used.
    app_workloads: list[_Workload] = []
    namespace_count = max(2, round(len(slots) / 1500))
    namespaces = [
        APP_NAMESPACES[i]
        if i < len(APP_NAMESPACES)
        else f"{APP_NAMESPACES[i % len(APP_NAMESPACES)]}-{i // len(APP_NAMESPACES)}"
        for i in range(namespace_count)
    ]
    taken: dict[str, set[str]] = {ns: set() for ns in namespaces}
    remaining = len(slots)
    turn = 0
    while remaining > 0:
        namespace = namespaces[turn % len(namespaces)]
        turn += 1
        stateful = rng.random() < 0.15
        base = rng.choice(DATASTORES if stateful else APP_COMPONENTS)
        name, n = base, 1
        while name in taken[namespace]:
            n += 1
            name = f"{base}-{n}"
        taken[namespace].add(name)
        replicas = min(remaining, rng.choice(STATEFULSET_REPLICAS if stateful else DEPLOYMENT_REPLICAS))
        image = f"registry.example.com/{namespace}/{base}:1.{rng.randrange(40)}.{rng.randrange(10)}"
        if stateful:
            workload = _Workload(
                "StatefulSet", namespace, name, replicas, ((base, image),), claim_template="data"
            )
        else:
            workload = deployment(namespace, name, replicas, ((base, image),))
        app_workloads.append(workload)
        remaining -= replicas
    if spread_zones:
        # Topology spread constraints over zones: replica i goes to zone (first + i), so every
        # workload with as many replicas as zones has one in each.
        free = {z: [n for n in slots if n.zone == z] for z in zone_names}
        for number, workload in enumerate(app_workloads):
            for index in range(workload.replicas):
                wanted = [zone_names[(number + index + k) % zones] for k in range(zones)]
                target = next(z for z in wanted if free[z])
                place(workload, free[target].pop(), index)
    else:
        for workload in app_workloads:
            for index in range(workload.replicas):
                place(workload, slots.pop(), index)
    cluster.workloads += app_workloads

    # Services and their EndpointSlices.
    def cluster_ips() -> Iterator[str]:
        # The default service CIDR 10.96.0.0/12; .0 and .255 hosts skipped; 10.96.0.1 and .10 taken.
        for i in range(2, 16 * 256 * 254):
            block, host = divmod(i, 254)
            if block or host + 1 not in (1, 10):
                yield f"10.{96 + block // 256}.{block % 256}.{host + 1}"

    service_ips = cluster_ips()
    control_ips = [n.ip for n in node_list[:CONTROL_PLANE_NODES]]

    def pod_endpoints(pods: Iterable[_Pod]) -> list[tuple[str, str, str, str, str, str]]:
        return [(p.ip, p.node.name, p.node.zone, "Pod", p.name, p.hostname) for p in pods]

    def service(
        namespace,
        name,
        cluster_ip,
        ports,
        endpoints,
        *,
        fixed_name="",
        ready_only=False,
        per_slice=ENDPOINTS_PER_SLICE,
    ) -> None:
        svc = _Service(namespace, name, cluster_ip, ports, endpoints, ready_only=ready_only)
        for start in range(0, max(1, len(endpoints)), per_slice):
            slice_name = fixed_name or names.unique(name)
            svc.slices.append((slice_name, start, min(start + per_slice, len(endpoints))))
        cluster.services.append(svc)

    # The apiserver's own slice is named after its Service; prometheus-operator writes the kubelet
    # slices (one endpoint per node, nodes sorted by name, targetRef Node, up to 512 per slice).
    apiservers = [(ip, "", "", "", "", "") for ip in control_ips]
    https = (("https", "TCP", 6443),)
    service("default", "kubernetes", "10.96.0.1", https, apiservers, fixed_name="kubernetes", ready_only=True)
    kubelet_ports = (
        ("https-metrics", "TCP", 10250),
        ("cadvisor", "TCP", 4194),
        ("http-metrics", "TCP", 10255),
    )
    kubelets = [(n.ip, n.name, "", "Node", n.name, "") for n in sorted(node_list, key=lambda n: n.name)]
    service(
        "kube-system",
        "kubelet",
        "None",
        kubelet_ports,
        kubelets,
        ready_only=True,
        per_slice=KUBELET_ENDPOINTS_PER_SLICE,
    )
    service(
        "kube-system", "kube-dns", "10.96.0.10",
        (("dns", "UDP", 53), ("dns-tcp", "TCP", 53), ("metrics", "TCP", 9153)), pod_endpoints(coredns.pods),
    )  # fmt: skip
    exporter = next(w for w in cluster.workloads if w.name == "node-exporter")
    service("monitoring", "node-exporter", "None", (("https", "TCP", 9100),), pod_endpoints(exporter.pods))
    ksm_ports = (("https-main", "TCP", 8443), ("https-self", "TCP", 9443))
    service("monitoring", "kube-state-metrics", "None", ksm_ports, pod_endpoints(ksm.pods))
    prom_ports = (("web", "TCP", 9090), ("reloader-web", "TCP", 8080))
    service("monitoring", "prometheus-k8s", next(service_ips), prom_ports, pod_endpoints(prometheus.pods))
    for workload in app_workloads:
        headless = workload.kind == "StatefulSet"
        ports = (("tcp", "TCP", 5432),) if headless else (("http", "TCP", 8080),)
        cluster_ip = "None" if headless else next(service_ips)
        service(workload.namespace, workload.name, cluster_ip, ports, pod_endpoints(workload.pods))

    # One Ingress per namespace routing to up to three of its Deployments.
    for namespace in namespaces:
        backends = [w.name for w in app_workloads if w.namespace == namespace and w.kind == "Deployment"][:3]
        if backends:
            paths = [
                (path, svc, "8080") for path, svc in zip(("/", "/api", "/static"), backends, strict=False)
            ]
            cluster.ingresses.append((namespace, namespace, paths))

    for pod in cluster.pods():
        pod.key = (
            f'namespace="{pod.namespace}",pod="{pod.name}",uid="{pod_uid(pod.namespace, pod.name, label)}"'
        )
    return cluster


# --- exposition --------------------------------------------------------------------------------

# Each family: (name, stable, help, lines(cluster) -> iterable of "{labels} value" texts), in KSM's
# order: resources sorted by name, then each store's generator order.
_Family = tuple[str, bool, str, Callable[[_Cluster], Iterable[str]]]


def _families(ksm_version: str, node_labels: bool) -> list[_Family]:
    v220 = ksm_version == "2.20.0"

    def ds_status(c: _Cluster) -> Iterator[str]:
        for w in c.workloads:
            if w.kind == "DaemonSet":
                yield f'namespace="{w.namespace}",daemonset="{w.name}"}} {w.replicas}'

    def deployments(c: _Cluster) -> Iterator[str]:
        for w in c.workloads:
            if w.kind == "Deployment":
                yield f'namespace="{w.namespace}",deployment="{w.name}"}} {w.replicas}'

    def statefulsets(c: _Cluster) -> Iterator[str]:
        for w in c.workloads:
            if w.kind == "StatefulSet":
                yield f'namespace="{w.namespace}",statefulset="{w.name}"}} {w.replicas}'

    def slice_info(c: _Cluster) -> Iterator[str]:
        for s in c.services:
            for name, _, _ in s.slices:
                yield f'endpointslice="{name}",namespace="{s.namespace}",addresstype="IPv4"}} 1'

    def slice_endpoints(c: _Cluster) -> Iterator[str]:
        for s in c.services:
            for name, start, end in s.slices:
                head = f'endpointslice="{name}",namespace="{s.namespace}",ready="true",'
                for address, node, zone, kind, target, hostname in s.endpoints[start:end]:
                    if s.ready_only:  # Serving and Terminating unset
                        cond = 'serving="",hostname="",terminating=""'
                    elif v220:  # correct labels
                        cond = f'serving="true",hostname="{hostname}",terminating="false"'
                    else:  # <= v2.19.1: serving overwritten by terminating, hostname/terminating swapped
                        cond = f'serving="false",hostname="",terminating="{hostname}"'
                    target_ns = s.namespace if kind == "Pod" else ""
                    yield (
                        f'{head}{cond},targetref_kind="{kind}",targetref_name="{target}",targetref_namespace="{target_ns}",'
                        f'endpoint_nodename="{node}",endpoint_zone="{zone}",address="{address}"}} 1'
                    )

    def slice_ports(c: _Cluster) -> Iterator[str]:
        for s in c.services:
            for name, _, _ in s.slices:
                for port, protocol, number in s.ports:
                    yield (
                        f'endpointslice="{name}",namespace="{s.namespace}",port_name="{port}",'
                        f'port_protocol="{protocol}",port_number="{number}"}} 1'
                    )

    def slice_labels(c: _Cluster) -> Iterator[str]:
        for s in c.services:
            for name, _, _ in s.slices:
                head = f'endpointslice="{name}",namespace="{s.namespace}"'
                yield f'{head},label_kubernetes_io_service_name="{s.name}"}} 1'

    def ingress_info(c: _Cluster) -> Iterator[str]:
        for namespace, name, _ in c.ingresses:
            yield f'namespace="{namespace}",ingress="{name}",ingressclass="nginx"}} 1'

    def ingress_path(c: _Cluster) -> Iterator[str]:
        for namespace, name, paths in c.ingresses:
            for path, svc, port in paths:
                yield (
                    f'namespace="{namespace}",ingress="{name}",host="{namespace}.example.com",path="{path}",'
                    f'path_type="Prefix",service_name="{svc}",service_port="{port}"}} 1'
                )

    def node_info(c: _Cluster) -> Iterator[str]:
        for n in c.nodes:
            yield (
                f'node="{n.name}",kernel_version="6.8.0-1015-aws",os_image="Ubuntu 24.04.1 LTS",'
                f'container_runtime_version="containerd://1.7.22",kubelet_version="{K8S_VERSION}",'
                f'kubeproxy_version="deprecated",provider_id="{n.provider_id}",pod_cidr="{n.pod_cidr}",'
                f'system_uuid="{n.system_uuid}",internal_ip="{n.ip}"}} 1'
            )

    def node_label_lines(c: _Cluster) -> Iterator[str]:
        for n in c.nodes:
            yield (
                f'node="{n.name}",label_topology_kubernetes_io_region="{c.region}",'
                f'label_topology_kubernetes_io_zone="{n.zone}"}} 1'
            )

    def node_role(c: _Cluster) -> Iterator[str]:
        for n in c.nodes:
            if n.control_plane:
                yield f'node="{n.name}",role="control-plane"}} 1'

    def node_taint(c: _Cluster) -> Iterator[str]:
        for n in c.nodes:
            if n.control_plane:
                taint = 'key="node-role.kubernetes.io/control-plane",value="",effect="NoSchedule"'
                yield f'node="{n.name}",{taint}}} 1'

    def node_unschedulable(c: _Cluster) -> Iterator[str]:
        for n in c.nodes:
            yield f'node="{n.name}"}} 0'

    def node_condition(c: _Cluster) -> Iterator[str]:
        for n in c.nodes:
            for condition in ("NetworkUnavailable", "MemoryPressure", "DiskPressure", "PIDPressure", "Ready"):
                current = "true" if condition == "Ready" else "false"
                for status in ("true", "false", "unknown"):
                    value = 1 if status == current else 0
                    yield f'node="{n.name}",condition="{condition}",status="{status}"}} {value}'

    def claim_info(c: _Cluster) -> Iterator[str]:
        for namespace, claim, volume in c.claims:
            yield (
                f'namespace="{namespace}",persistentvolumeclaim="{claim}",storageclass="gp3",'
                f'volumename="{volume}",volumemode="Filesystem"}} 1'
            )

    def claim_ref(c: _Cluster) -> Iterator[str]:
        for namespace, claim, volume in c.claims:
            yield f'persistentvolume="{volume}",name="{claim}",claim_namespace="{namespace}"}} 1'

    digests: dict[str, str] = {}

    def container_info(c: _Cluster) -> Iterator[str]:
        for p in c.pods():
            for container, image in p.containers:
                digest = digests.get(image)
                if digest is None:
                    digest = digests[image] = hashlib.sha256(image.encode()).hexdigest()
                repo = image.rsplit(":", 1)[0]
                cid = hashlib.sha256(f"{c.label}/{p.namespace}/{p.name}/{container}".encode()).hexdigest()
                yield (
                    f'{p.key},container="{container}",image_spec="{image}",image="{image}",'
                    f'image_id="{repo}@sha256:{digest}",container_id="containerd://{cid}"}} 1'
                )

    def pod_info(c: _Cluster) -> Iterator[str]:
        for p in c.pods():
            yield (
                f'{p.key},host_ip="{p.node.ip}",pod_ip="{p.ip}",node="{p.node.name}",created_by_kind="{p.owner_kind}",'
                f'created_by_name="{p.owner_name}",priority_class="{p.priority}",'
                f'host_network="{"true" if p.host_network else "false"}"}} 1'
            )

    def pod_owner(c: _Cluster) -> Iterator[str]:
        for p in c.pods():
            owner = f'owner_kind="{p.owner_kind}",owner_name="{p.owner_name}"'
            yield f'{p.key},{owner},owner_is_controller="true"}} 1'

    def pod_claims(c: _Cluster) -> Iterator[str]:
        extra = ',ephemeral="false"' if v220 else ""
        for p in c.pods():
            if p.claim:
                yield f'{p.key},volume="{p.claim[0]}",persistentvolumeclaim="{p.claim[1]}"{extra}}} 1'

    def pod_phase(c: _Cluster) -> Iterator[str]:
        for p in c.pods():
            for phase in ("Pending", "Succeeded", "Failed", "Unknown", "Running"):
                yield f'{p.key},phase="{phase}"}} {1 if phase == "Running" else 0}'

    def pod_ready(c: _Cluster) -> Iterator[str]:
        for p in c.pods():
            for condition in ("true", "false", "unknown"):
                yield f'{p.key},condition="{condition}"}} {1 if condition == "true" else 0}'

    def replicasets(value: bool) -> Callable[[_Cluster], Iterator[str]]:
        def lines(c: _Cluster) -> Iterator[str]:
            for w in c.workloads:
                if w.kind != "Deployment":
                    continue
                for rs in (*w.old_replicasets, w.replicaset):
                    head = f'namespace="{w.namespace}",replicaset="{rs}"'
                    if value:
                        yield f"{head}}} {w.replicas if rs == w.replicaset else 0}"
                    else:
                        owner = f'owner_kind="Deployment",owner_name="{w.name}"'
                        yield f'{head},{owner},owner_is_controller="true"}} 1'

        return lines

    def service_info(c: _Cluster) -> Iterator[str]:
        for s in c.services:
            uid = pod_uid(s.namespace, f"service/{s.name}", c.label)
            yield (
                f'namespace="{s.namespace}",service="{s.name}",uid="{uid}",cluster_ip="{s.cluster_ip}",'
                f'external_name="",load_balancer_ip="",external_traffic_policy=""}} 1'
            )

    def service_type(c: _Cluster) -> Iterator[str]:
        for s in c.services:
            uid = pod_uid(s.namespace, f"service/{s.name}", c.label)
            yield f'namespace="{s.namespace}",service="{s.name}",uid="{uid}",type="ClusterIP"}} 1'

    claims_help = (
        "Information about persistentvolumeclaim and ephemeral volumes in a pod."
        if v220
        else "Information about persistentvolumeclaim volumes in a pod."
    )
    families: list[_Family] = [
        ("kube_daemonset_status_current_number_scheduled", True,
         "The number of nodes running at least one daemon pod and are supposed to.", ds_status),
        ("kube_daemonset_status_desired_number_scheduled", True,
         "The number of nodes that should be running the daemon pod.", ds_status),
        ("kube_daemonset_status_number_available", True,
         "The number of nodes that should be running the daemon pod and have one or more of the daemon pod "
         "running and available", ds_status),
        ("kube_daemonset_status_number_ready", True,
         "The number of nodes that should be running the daemon pod and have one or more of the daemon pod "
         "running and ready.", ds_status),
        ("kube_deployment_status_replicas_available", True,
         "The number of available replicas per deployment.", deployments),
        ("kube_deployment_spec_replicas", True,
         "Number of desired pods for a deployment.", deployments),
        ("kube_endpointslice_info", False, "Information about endpointslice.", slice_info),
        ("kube_endpointslice_endpoints", False,
         "Endpoints attached to the endpointslice.", slice_endpoints),
        ("kube_endpointslice_ports", False, "Ports attached to the endpointslice.", slice_ports),
        ("kube_endpointslice_labels", False,
         "Kubernetes labels converted to Prometheus labels.", slice_labels),
        ("kube_ingress_info", True, "Information about ingress.", ingress_info),
        ("kube_ingress_path", True,
         "Ingress host, paths and backend service information.", ingress_path),
        ("kube_node_info", True, "Information about a cluster node.", node_info),
        ("kube_node_labels", True, "Kubernetes labels converted to Prometheus labels.", node_label_lines),
        ("kube_node_role", False, "The role of a cluster node.", node_role),
        ("kube_node_spec_taint", True, "The taint of a cluster node.", node_taint),
        ("kube_node_spec_unschedulable", True, "Whether a node can schedule new pods.", node_unschedulable),
        ("kube_node_status_condition", True, "The condition of a cluster node.", node_condition),
        ("kube_persistentvolumeclaim_info", True,
         "Information about persistent volume claim.", claim_info),
        ("kube_persistentvolume_claim_ref", True,
         "Information about the Persistent Volume Claim Reference.", claim_ref),
        ("kube_pod_container_info", True, "Information about a container in a pod.", container_info),
        ("kube_pod_info", True, "Information about pod.", pod_info),
        ("kube_pod_owner", True, "Information about the Pod's owner.", pod_owner),
        ("kube_pod_spec_volumes_persistentvolumeclaims_info", True, claims_help, pod_claims),
        ("kube_pod_status_phase", True, "The pods current phase.", pod_phase),
        ("kube_pod_status_ready", True, "Describes whether the pod is ready to serve requests.", pod_ready),
        ("kube_replicaset_spec_replicas", True,
         "Number of desired pods for a ReplicaSet.", replicasets(True)),
        ("kube_replicaset_owner", True,
         "Information about the ReplicaSet's owner.", replicasets(False)),
        ("kube_service_info", True, "Information about service.", service_info),
        ("kube_service_spec_type", True, "Type about service.", service_type),
        ("kube_statefulset_status_replicas_ready", True,
         "The number of ready replicas per StatefulSet.", statefulsets),
        ("kube_statefulset_replicas", True, "Number of desired pods for a StatefulSet.", statefulsets),
    ]  # fmt: skip
    if not node_labels:
        families = [f for f in families if f[0] != "kube_node_labels"]
    return families


def _write(
    clusters: list[_Cluster], out: TextIO, ksm_version: str, node_labels: bool
) -> dict[str, dict[str, int]]:
    """Stream every family for every cluster; returns series counts per cluster label and family."""
    if ksm_version not in KSM_VERSIONS:
        raise ValueError(f"--ksm-version must be one of {', '.join(KSM_VERSIONS)}")
    counts: dict[str, dict[str, int]] = {str(c.label): {} for c in clusters}
    buffer: list[str] = []
    for name, stable, help_text, lines in _families(ksm_version, node_labels):
        out.write(f"# HELP {name} {'[STABLE] ' if stable else ''}{help_text}\n# TYPE {name} gauge\n")
        for cluster in clusters:
            # KSM's own output has no cluster label; several clusters in one file get one, last.
            open_ = f"{name}{{"
            tail = f',cluster="{cluster.label}"}}' if cluster.label else "}"
            count = 0
            for text in lines(cluster):
                labels, _, value = text.rpartition("} ")
                buffer.append(f"{open_}{labels}{tail} {value}\n")
                count += 1
                if len(buffer) >= 8192:
                    out.write("".join(buffer))
                    buffer.clear()
            counts[str(cluster.label)][name] = count
        out.write("".join(buffer))
        buffer.clear()
    return counts


def write_exposition(
    clusters: list[_Cluster], out: TextIO, *, ksm_version: str = "2.19.1", node_labels: bool = True
) -> dict[str, dict[str, int]]:
    """Write clusters built elsewhere on this model (router/sim/worlds.py builds random ones) as KSM text.

    The model classes are exported below under public names for that purpose; returns the
    series counts per cluster label and family.
    """
    return _write(clusters, out, ksm_version, node_labels)


# The object model, for generators that build their own clusters and reuse the writer.
Cluster = _Cluster
Node = _Node
Pod = _Pod
Workload = _Workload
Service = _Service


def _info(cluster: _Cluster, series: dict[str, int]) -> ClusterInfo:
    ksm = next(w for w in cluster.workloads if w.name == "kube-state-metrics")
    coredns = next(w for w in cluster.workloads if w.name == "coredns")
    objects: dict[str, int] = {"node": len(cluster.nodes), "pod": sum(len(n.pods) for n in cluster.nodes)}
    for w in cluster.workloads:
        objects[w.kind.lower()] = objects.get(w.kind.lower(), 0) + 1
    objects["service"] = len(cluster.services)
    objects["endpointslice"] = sum(len(s.slices) for s in cluster.services)
    objects["ingress"] = len(cluster.ingresses)
    objects["pvc"] = len(cluster.claims)
    return ClusterInfo(
        cluster=cluster.label,
        region=REGION,
        zones={z: [n.name for n in cluster.nodes if n.zone == z] for z in cluster.zones},
        node_ips={n.name: n.ip for n in cluster.nodes},
        control_plane=[n.name for n in cluster.nodes if n.control_plane],
        pods_by_node={
            n.name: [(p.namespace, p.name, p.workload_kind, p.workload_name) for p in n.pods]
            for n in cluster.nodes
        },
        daemonsets=list(DAEMONSETS),
        ksm_instance=f"{ksm.pods[0].ip}:8443",
        coredns_pods=[(p.name, p.node.name) for p in coredns.pods],
        objects=objects,
        series=series,
    )


def generate_many(
    nodes: int,
    pods_per_node: int,
    zones: int,
    *,
    out: TextIO,
    clusters: int = 1,
    seed: int = 1,
    node_labels: bool = True,
    ksm_version: str = "2.19.1",
    spread_zones: bool = False,
) -> list[ClusterInfo]:
    """Several clusters of `nodes` nodes each in one exposition, told apart by a `cluster` label."""
    if clusters < 1:
        raise ValueError("--clusters must be at least 1")
    labels = [None] if clusters == 1 else [f"cluster-{i + 1}" for i in range(clusters)]
    models = [
        _build(nodes, pods_per_node, zones, seed, i, label, spread_zones) for i, label in enumerate(labels)
    ]
    counts = _write(models, out, ksm_version, node_labels)
    return [_info(model, counts[str(model.label)]) for model in models]


def generate(
    nodes: int,
    pods_per_node: int,
    zones: int,
    *,
    out: TextIO,
    seed: int = 1,
    node_labels: bool = True,
    ksm_version: str = "2.19.1",
    spread_zones: bool = False,
) -> ClusterInfo:
    """One cluster, written to `out` as KSM text; returns what storms need to know about it."""
    return generate_many(
        nodes,
        pods_per_node,
        zones,
        out=out,
        seed=seed,
        node_labels=node_labels,
        ksm_version=ksm_version,
        spread_zones=spread_zones,
    )[0]


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=5000, help="nodes per cluster, control plane included")
    parser.add_argument("--pods-per-node", type=int, default=30, help="pods on every worker node")
    parser.add_argument("--zones", type=int, default=3)
    parser.add_argument("--clusters", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-node-labels", action="store_true", help="omit kube_node_labels (stock KSM)")
    parser.add_argument("--ksm-version", choices=KSM_VERSIONS, default="2.19.1")
    parser.add_argument(
        "--spread-zones", action="store_true", help="spread every workload's replicas over the zones"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_cluster_arguments(parser)
    parser.add_argument("-o", "--out", required=True, help="output file (`-` for stdout)")
    parser.add_argument("--info-out", help="also write the ClusterInfo as JSON (input of gen_storm.py)")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def run(handle: TextIO) -> list[ClusterInfo]:
        return generate_many(
            args.nodes,
            args.pods_per_node,
            args.zones,
            out=handle,
            clusters=args.clusters,
            seed=args.seed,
            node_labels=not args.no_node_labels,
            ksm_version=args.ksm_version,
            spread_zones=args.spread_zones,
        )

    try:
        if args.out == "-":
            infos = run(sys.stdout)
        else:
            with open(args.out, "w", encoding="utf-8") as handle:
                infos = run(handle)
    except (ValueError, OSError) as exc:
        print(f"gen_cluster: {exc}", file=sys.stderr)
        return 2
    if args.info_out:
        with open(args.info_out, "w", encoding="utf-8") as handle:
            json.dump([info.to_json() for info in infos], handle, separators=(",", ":"))
    summary = {
        "clusters": len(infos),
        "nodes": sum(i.objects["node"] for i in infos),
        "pods": sum(i.objects["pod"] for i in infos),
        "series": sum(sum(i.series.values()) for i in infos),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if args.out != "-":
        summary["bytes"] = Path(args.out).stat().st_size
    print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
