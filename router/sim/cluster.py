"""Random Kubernetes clusters for the world generator (router/sim/worlds.py).

A cluster here is what the fault timelines need to know (nodes, zones, pods and the workloads
and Services they belong to) together with the object model of router/sim/gencluster.py, whose
writer prints it as a kube-state-metrics v2 `/metrics` dump that the real loader
(`topology.load.load_topology`) reads. Some clusters also get a topology file in the project's
own format (docs/topology.md) declaring service-to-service `depends_on` edges that no
kube-state-metrics series can show (an API calling its database).

What varies from seed to seed, because real clusters vary that way:
- the platform: AWS, GCE, Azure or bare metal (node names, provider IDs, zone names), with a
  self-hosted kubeadm control plane (3 control-plane nodes with static pods; etcd, scheduler and
  controller-manager scraped through kube-prometheus' kubeadm discovery Services and the
  static-etcd addon) or a managed one (no control-plane node or pod visible);
- 2-4 zones, 5-57 workers, an optional `cluster` external label;
- the CNI agent (calico-node, cilium, aws-node, weave-net, antrea-agent), with or without
  kube-proxy (Cilium can replace it) and NodeLocal DNSCache;
- 3-10 application namespaces of Deployments (1-8 replicas) and StatefulSet datastores with
  PVCs, each behind a Service of its name, placed randomly, spread over zones (topology spread
  constraints), all in one zone, or packed several to a node;
- how each namespace's own application alerts name their Service (`service`, OpenTelemetry's
  `service_name`, `job="<namespace>/<service>"` or `job="<service>"`), and whether its Services
  are scraped by a ServiceMonitor (so that TargetDown can fire for them).

Monitoring stays alive through every fault the worlds inject: faults never take down the node
(or zone) running kube-state-metrics, whose loss would freeze every KSM-based alert and make a
different storm. Everything is drawn from the caller's `random.Random`: same seed, same cluster.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field

import yaml

from router.sim import gencluster as gc
from router.sim.scenarios import PodRef, pod_uid

K8S_VERSION = gc.K8S_VERSION
NAME_ALPHABET = gc.NAME_ALPHABET

# Platform -> (region, zones) choices; zone names as each provider spells them.
REGIONS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "aws": (
        ("eu-west-1", ("eu-west-1a", "eu-west-1b", "eu-west-1c")),
        ("us-east-1", ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d")),
    ),
    "gce": (
        ("us-central1", ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f")),
        ("europe-west4", ("europe-west4-a", "europe-west4-b", "europe-west4-c")),
    ),
    "azure": (("westeurope", ("westeurope-1", "westeurope-2", "westeurope-3")),),
    "metal": (("dc1", ("dc1-room-a", "dc1-room-b", "dc1-room-c", "dc1-room-d")),),
}
WORKER_COUNTS = (5, 6, 6, 8, 8, 10, 10, 12, 14, 16, 20, 24, 30, 40, 57)
# CNI agents the topology builder recognises as a node's network component (docs/topology.md).
CNI_AGENTS = ("calico-node", "calico-node", "cilium", "aws-node", "weave-net", "antrea-agent")
CLUSTER_LABELS = ("prod-eu-1", "prod-us", "staging", "k8s-main")
# How a namespace's own (RED / OpenTelemetry) alerts identify a Service.
ALERT_STYLES = ("service", "service_name", "job_ns", "job_bare")
# Placement of a workload's replicas: random nodes, spread over zones by a topology spread
# constraint, all in one zone, or packed several to a node.
PLACEMENTS = ("random", "random", "zone-spread", "zone-spread", "one-zone", "packed")
DEPLOYMENT_REPLICAS = (1, 1, 2, 2, 2, 3, 3, 3, 4, 5, 6, 8)
DATASTORE_REPLICAS = {
    "postgres": (1, 3),
    "mysql": (1, 3),
    "redis": (1, 3),
    "mongodb": (1, 3),
    "kafka": (3,),
    "zookeeper": (3,),
    "elasticsearch": (3,),
    "rabbitmq": (1, 3),
}
DATASTORE_PORTS = {
    "postgres": 5432,
    "mysql": 3306,
    "redis": 6379,
    "mongodb": 27017,
    "kafka": 9092,
    "zookeeper": 2181,
    "elasticsearch": 9200,
    "rabbitmq": 5672,
}
CONTROL_PLANE_COMPONENTS = {
    "kube-apiserver": f"registry.k8s.io/kube-apiserver:{K8S_VERSION}",
    "etcd": "registry.k8s.io/etcd:3.5.15-0",
    "kube-scheduler": f"registry.k8s.io/kube-scheduler:{K8S_VERSION}",
    "kube-controller-manager": f"registry.k8s.io/kube-controller-manager:{K8S_VERSION}",
}
DAEMONSET_IMAGES = {
    "kube-proxy": (("kube-proxy", f"registry.k8s.io/kube-proxy:{K8S_VERSION}"),),
    "calico-node": (("calico-node", "docker.io/calico/node:v3.28.2"),),
    "cilium": (("cilium-agent", "quay.io/cilium/cilium:v1.16.3"),),
    "aws-node": (("aws-node", "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon-k8s-cni:v1.18.5"),),
    "weave-net": (("weave", "weaveworks/weave-kube:2.8.1"), ("weave-npc", "weaveworks/weave-npc:2.8.1")),
    "antrea-agent": (("antrea-agent", "antrea/antrea-agent-ubuntu:v2.1.0"),),
    "node-local-dns": (("node-cache", "registry.k8s.io/dns/k8s-dns-node-cache:1.23.1"),),
    "node-exporter": (
        ("node-exporter", "quay.io/prometheus/node-exporter:v1.12.1"),
        ("kube-rbac-proxy", "quay.io/brancz/kube-rbac-proxy:v0.19.1"),
    ),
}


@dataclass(frozen=True)
class NodeInfo:
    name: str
    ip: str
    zone: str
    control_plane: bool


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    node: str
    ip: str
    workload_kind: str  # Deployment, StatefulSet, DaemonSet, Node (static pod)
    workload: str
    container: str  # the main container (what CPUThrottlingHigh or KubePodCrashLooping names)
    claim: str = ""  # the PVC it mounts, if any

    @property
    def ref(self) -> PodRef:
        """The `(namespace, pod, workload_kind, workload_name)` of router/sim/scenarios.py."""
        return (self.namespace, self.name, self.workload_kind, self.workload)


@dataclass
class WorkloadInfo:
    kind: str  # Deployment, StatefulSet, DaemonSet
    namespace: str
    name: str
    replicas: int
    placement: str = "random"
    replicaset: str = ""  # current ReplicaSet of a Deployment
    datastore: str = ""  # postgres, redis... for StatefulSet datastores
    pods: list[PodInfo] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass
class ServiceInfo:
    namespace: str
    name: str
    pods: list[PodInfo]
    workload: WorkloadInfo | None = None
    alert_style: str = "service"
    scraped: bool = False  # a ServiceMonitor scrapes it: TargetDown{job=<name>} can fire

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass
class ClusterWorld:
    """One random cluster: what faults need, plus the object model its KSM dump is printed from."""

    label: str | None  # the `cluster` external label every alert and series carries, if any
    platform: str
    managed: bool
    region: str
    zones: dict[str, list[str]]  # zone -> node names
    nodes: dict[str, NodeInfo]
    pods_by_node: dict[str, list[PodInfo]]
    workloads: list[WorkloadInfo]
    services: dict[tuple[str, str], ServiceInfo]
    daemonsets: list[tuple[str, str]]
    cni: str
    coredns: WorkloadInfo
    ksm_instance: str
    ksm_node: str
    app_namespaces: list[str]
    # service -> the Services it calls; declared in the topology file (empty: no file).
    depends_on: dict[tuple[str, str], list[tuple[str, str]]]
    model: gc.Cluster

    @property
    def name(self) -> str:
        """The cluster part of entity names: the `cluster` label, else `default`."""
        return self.label or "default"

    def entity(self, kind: str, name: str, namespace: str | None = None) -> str:
        if namespace is None:
            return f"{kind}/{self.name}/{name}"
        return f"{kind}/{self.name}/{namespace}/{name}"

    def service_entity(self, key: tuple[str, str]) -> str:
        return self.entity("service", key[1], key[0])

    @property
    def workers(self) -> list[str]:
        return [n.name for n in self.nodes.values() if not n.control_plane]

    @property
    def control_plane(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.control_plane]

    def app_services(self) -> list[ServiceInfo]:
        return [s for s in self.services.values() if s.namespace in self.app_namespaces]

    def app_workloads(self, kind: str | None = None) -> list[WorkloadInfo]:
        return [
            w
            for w in self.workloads
            if w.namespace in self.app_namespaces and (kind is None or w.kind == kind)
        ]

    def dependents(self, key: tuple[str, str]) -> list[ServiceInfo]:
        """Services that call `key`, directly or through others (a broken database breaks the
        API that calls it and the frontend that calls the API), in a stable order."""
        found: dict[tuple[str, str], None] = {}
        frontier = [key]
        while frontier:
            current = frontier.pop(0)
            for dependent, targets in self.depends_on.items():
                if current in targets and dependent not in found and dependent != key:
                    found[dependent] = None
                    frontier.append(dependent)
        return [self.services[k] for k in found]

    def ksm_text(self) -> str:
        out = io.StringIO()
        gc.write_exposition([self.model], out)
        return out.getvalue()

    def topology_yaml(self, changes: list[dict[str, str]] | None = None) -> str | None:
        """The project's topology file with the service-to-service edges and the recorded
        `changes`, or None without any edge."""
        if not self.depends_on:
            return None
        entities = [
            {
                "name": self.service_entity(dependent),
                "depends_on": [self.service_entity(target) for target in targets],
            }
            for dependent, targets in self.depends_on.items()
        ]
        document: dict = {"kind": "alert-router/topology", "cluster": self.name, "entities": entities}
        if changes:
            document["changes"] = changes
        header = "# Calls between Services that kube-state-metrics cannot see (world generator).\n"
        return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


class _Builder:
    """Builds one ClusterWorld; each step is a method so that the order of draws is explicit."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.names = gc.Names(rng)
        self.platform = rng.choice(("aws", "aws", "gce", "azure", "metal"))
        self.managed = self.platform != "metal" and rng.random() < 0.5
        self.region, zone_names = rng.choice(REGIONS[self.platform])
        self.zone_names = list(zone_names[: rng.randint(2, min(4, len(zone_names)))])
        self.label = rng.choice(CLUSTER_LABELS) if rng.random() < 0.25 else None
        self.model = gc.Cluster(self.label, self.zone_names, [], [], [], [], [], [], region=self.region)
        self.nodes: list[gc.Node] = []
        self.pod_info: dict[int, PodInfo] = {}  # id(model pod) -> info
        self.workloads: list[WorkloadInfo] = []
        self.services: dict[tuple[str, str], ServiceInfo] = {}
        self.service_ips = (f"10.96.{i // 250}.{i % 250 + 2}" for i in range(11, 64000))

    # --- nodes ---------------------------------------------------------------------------------

    def node_name(self, index: int, ip: str, control_plane: bool) -> str:
        if self.platform == "aws":
            return f"ip-{ip.replace('.', '-')}.{self.region}.compute.internal"
        if self.platform == "gce":
            pool = "system-pool" if control_plane else "default-pool"
            return f"gke-{self.label or 'main'}-{pool}-{self.names.hex(8)}-{self.names.suffix(4)}"
        if self.platform == "azure":
            return f"aks-nodepool1-{self.rng.randrange(10**7, 10**8)}-vmss{index:06d}"
        return f"k8s-cp-{index + 1}" if control_plane else f"k8s-worker-{index + 1:02d}"

    def provider_id(self, name: str, zone: str) -> str:
        if self.platform == "aws":
            return f"aws:///{zone}/i-0{self.names.hex(16)}"
        if self.platform == "gce":
            return f"gce://acme-{self.label or 'main'}/{zone}/{name}"
        if self.platform == "azure":
            return (
                f"azure:///subscriptions/{self.names.uuid()}/resourceGroups/mc_aks_{self.region}/providers/"
                f"Microsoft.Compute/virtualMachineScaleSets/{name.rsplit('-', 1)[0]}/virtualMachines/0"
            )
        return ""

    def add_nodes(self) -> None:
        workers = self.rng.choice(WORKER_COUNTS)
        control = 0 if self.managed else 3
        subnet = {"aws": "10.0", "gce": "10.128", "azure": "10.224", "metal": "192.168"}[self.platform]
        for index in range(control + workers):
            control_plane = index < control
            z = index % len(self.zone_names) if control_plane else self.rng.randrange(len(self.zone_names))
            if not control_plane and index - control < len(self.zone_names):
                z = index - control  # every zone gets at least one worker
            zone = self.zone_names[z]
            ip = f"{subnet}.{16 * z + index // 250}.{index % 250 + 4}"
            name = self.node_name(index if control_plane else index - control, ip, control_plane)
            uid = self.names.hex(32)
            pod_net = f"10.{244 + index // 256}.{index % 256}."
            self.nodes.append(
                gc.Node(
                    name=name,
                    ip=ip,
                    zone=zone,
                    control_plane=control_plane,
                    provider_id=self.provider_id(name, zone),
                    system_uuid=f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:32]}",
                    pod_cidr=f"{pod_net}0/24",
                    pod_net=pod_net,
                )
            )
        self.model.nodes = self.nodes

    @property
    def workers(self) -> list[gc.Node]:
        return [n for n in self.nodes if not n.control_plane]

    def in_zone(self, zone: str) -> list[gc.Node]:
        return [n for n in self.workers if n.zone == zone]

    # --- pods ----------------------------------------------------------------------------------

    def add_pod(
        self, workload: gc.Workload | None, node: gc.Node, name: str, *, owner: tuple[str, str], **extra
    ) -> gc.Pod:
        host = extra.pop("host_network", workload.host_network if workload else True)
        namespace = extra.pop("namespace", workload.namespace if workload else "kube-system")
        containers = extra.pop("containers", workload.containers if workload else ())
        pod = gc.Pod(
            namespace=namespace,
            name=name,
            node=node,
            ip=node.ip if host else f"{node.pod_net}{len(node.pods) + 2}",
            host_network=host,
            priority=extra.pop("priority", workload.priority if workload else "system-node-critical"),
            owner_kind=owner[0],
            owner_name=owner[1],
            workload_kind=workload.kind if workload else "Node",
            workload_name=workload.name if workload else node.name,
            containers=containers,
            key=f'namespace="{namespace}",pod="{name}",uid="{pod_uid(namespace, name, self.label)}"',
            **extra,
        )
        node.pods.append(pod)
        if workload is not None:
            workload.pods.append(pod)
        self.pod_info[id(pod)] = PodInfo(
            namespace=namespace,
            name=name,
            node=node.name,
            ip=pod.ip,
            workload_kind=pod.workload_kind,
            workload=pod.workload_name,
            container=containers[0][0] if containers else name,
            claim=pod.claim[1] if pod.claim else "",
        )
        return pod

    def add_static_pods(self) -> None:
        for node in self.nodes:
            if not node.control_plane:
                continue
            for component, image in CONTROL_PLANE_COMPONENTS.items():
                pod = self.add_pod(
                    None,
                    node,
                    f"{component}-{node.name}",
                    owner=("Node", node.name),
                    containers=((component, image),),
                )
                self.model.static_pods.append(pod)

    def add_daemonsets(self) -> list[tuple[str, str]]:
        self.cni = self.rng.choice(
            CNI_AGENTS if self.platform == "aws" else [c for c in CNI_AGENTS if c != "aws-node"]
        )
        names = [self.cni, "node-exporter"]
        if not (self.cni == "cilium" and self.rng.random() < 0.5):  # Cilium may replace kube-proxy
            names.insert(0, "kube-proxy")
        if self.rng.random() < 0.2:
            names.append("node-local-dns")
        daemonsets = []
        for name in names:
            namespace = "monitoring" if name == "node-exporter" else "kube-system"
            priority = "system-cluster-critical" if name == "node-exporter" else "system-node-critical"
            ds = gc.Workload(
                "DaemonSet",
                namespace,
                name,
                len(self.nodes),
                DAEMONSET_IMAGES[name],
                priority,
                host_network=True,
            )
            self.model.workloads.append(ds)
            info = WorkloadInfo("DaemonSet", namespace, name, len(self.nodes))
            for node in self.nodes:
                pod = self.add_pod(ds, node, self.names.unique(name), owner=("DaemonSet", name))
                info.pods.append(self.pod_info[id(pod)])
            self.workloads.append(info)
            daemonsets.append((namespace, name))
        return daemonsets

    def placement_nodes(self, replicas: int, placement: str) -> list[gc.Node]:
        """Nodes for each replica, following a placement policy."""
        workers = self.workers
        if placement == "zone-spread":
            zones = list(self.zone_names)
            self.rng.shuffle(zones)
            out = []
            for i in range(replicas):
                candidates = [n for n in self.in_zone(zones[i % len(zones)]) if n not in out] or self.in_zone(
                    zones[i % len(zones)]
                )
                out.append(self.rng.choice(candidates))
            return out
        if placement == "one-zone":
            pool = self.in_zone(self.rng.choice(self.zone_names))
            return [self.rng.choice(pool) for _ in range(replicas)]
        if placement == "packed":
            pool = self.rng.sample(workers, min(len(workers), self.rng.choice((1, 2))))
            return [self.rng.choice(pool) for _ in range(replicas)]
        return [self.rng.choice(workers) for _ in range(replicas)]

    def deployment(
        self, namespace: str, name: str, replicas: int, containers, nodes: list[gc.Node], priority: str = ""
    ) -> WorkloadInfo:
        rs = f"{name}-{self.names.template_hash()}"
        old = tuple(f"{name}-{self.names.template_hash()}" for _ in range(self.rng.choice((0, 1, 1, 2))))
        workload = gc.Workload(
            "Deployment", namespace, name, replicas, containers, priority, replicaset=rs, old_replicasets=old
        )
        self.model.workloads.append(workload)
        info = WorkloadInfo("Deployment", namespace, name, replicas, replicaset=rs)
        for node in nodes:
            pod = self.add_pod(workload, node, self.names.unique(rs), owner=("ReplicaSet", rs))
            info.pods.append(self.pod_info[id(pod)])
        self.workloads.append(info)
        return info

    def statefulset(
        self, namespace: str, name: str, replicas: int, containers, nodes: list[gc.Node], claim_template: str
    ) -> WorkloadInfo:
        workload = gc.Workload(
            "StatefulSet", namespace, name, replicas, containers, claim_template=claim_template
        )
        self.model.workloads.append(workload)
        info = WorkloadInfo("StatefulSet", namespace, name, replicas)
        for index, node in enumerate(nodes):
            pod_name = f"{name}-{index}"
            claim = None
            if claim_template:
                claim = (claim_template, f"{claim_template}-{pod_name}")
                self.model.claims.append((namespace, claim[1], f"pvc-{self.names.uuid()}"))
            pod = self.add_pod(
                workload, node, pod_name, owner=("StatefulSet", name), claim=claim, hostname=pod_name
            )
            info.pods.append(self.pod_info[id(pod)])
        self.workloads.append(info)
        return info

    def add_system_workloads(self) -> tuple[WorkloadInfo, WorkloadInfo]:
        """CoreDNS in two zones, kube-state-metrics, Prometheus and Alertmanager pairs over zones."""
        zones = list(self.zone_names)
        self.rng.shuffle(zones)
        coredns_nodes = [self.rng.choice(self.in_zone(zones[i % len(zones)])) for i in range(2)]
        coredns = self.deployment(
            "kube-system",
            "coredns",
            2,
            (("coredns", "registry.k8s.io/coredns/coredns:v1.11.3"),),
            coredns_nodes,
            "system-cluster-critical",
        )
        ksm = self.deployment(
            "monitoring",
            "kube-state-metrics",
            1,
            (
                ("kube-state-metrics", "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.19.1"),
                ("kube-rbac-proxy-main", "quay.io/brancz/kube-rbac-proxy:v0.19.1"),
                ("kube-rbac-proxy-self", "quay.io/brancz/kube-rbac-proxy:v0.19.1"),
            ),
            [self.rng.choice(self.workers)],
        )
        self.statefulset(
            "monitoring",
            "prometheus-k8s",
            2,
            (
                ("prometheus", "quay.io/prometheus/prometheus:v3.13.2"),
                ("config-reloader", "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1"),
            ),
            self.placement_nodes(2, "zone-spread"),
            "prometheus-k8s-db",
        )
        self.statefulset(
            "monitoring",
            "alertmanager-main",
            2,
            (("alertmanager", "quay.io/prometheus/alertmanager:v0.33.1"),),
            self.placement_nodes(2, "zone-spread"),
            "",
        )
        return coredns, ksm

    def add_apps(self) -> list[str]:
        namespaces = self.rng.sample(gc.APP_NAMESPACES, self.rng.randint(3, 10))
        for namespace in namespaces:
            components = self.rng.sample(gc.APP_COMPONENTS, self.rng.randint(1, 4))
            stores = self.rng.sample(gc.DATASTORES, 1) if self.rng.random() < 0.55 else []
            for store in stores:
                replicas = self.rng.choice(DATASTORE_REPLICAS[store])
                placement = "zone-spread" if replicas > 1 and self.rng.random() < 0.7 else "random"
                image = f"docker.io/library/{store}:latest"
                info = self.statefulset(
                    namespace,
                    store,
                    replicas,
                    ((store, image),),
                    self.placement_nodes(replicas, placement),
                    "data",
                )
                info.placement, info.datastore = placement, store
            for component in components:
                replicas = self.rng.choice(DEPLOYMENT_REPLICAS)
                placement = self.rng.choice(PLACEMENTS)
                version = f"1.{self.rng.randrange(40)}.{self.rng.randrange(10)}"
                image = f"registry.example.com/{namespace}/{component}:{version}"
                info = self.deployment(
                    namespace,
                    component,
                    replicas,
                    ((component, image),),
                    self.placement_nodes(replicas, placement),
                )
                info.placement = placement
        return namespaces

    # --- services ------------------------------------------------------------------------------

    def service(
        self,
        namespace: str,
        name: str,
        ports: tuple[tuple[str, str, int], ...],
        endpoints: list[tuple[str, str, str, str, str, str]],
        *,
        cluster_ip: str | None = None,
        ready_only: bool = False,
        fixed_slice: str = "",
    ) -> gc.Service:
        svc = gc.Service(
            namespace, name, cluster_ip or next(self.service_ips), ports, endpoints, ready_only=ready_only
        )
        svc.slices.append((fixed_slice or self.names.unique(name), 0, len(endpoints)))
        self.model.services.append(svc)
        return svc

    def pod_endpoints(self, pods: list[gc.Pod]) -> list[tuple[str, str, str, str, str, str]]:
        return [(p.ip, p.node.name, p.node.zone, "Pod", p.name, p.hostname) for p in pods]

    def model_workload(self, namespace: str, name: str) -> gc.Workload:
        return next(w for w in self.model.workloads if w.namespace == namespace and w.name == name)

    def add_services(self, app_namespaces: list[str]) -> None:
        control = [n for n in self.nodes if n.control_plane]
        if control:
            api = [(n.ip, "", "", "", "", "") for n in control]
        else:  # a managed API endpoint: addresses outside the cluster's nodes, no targetRef
            api = [
                (f"172.16.{self.rng.randrange(256)}.{self.rng.randrange(2, 250)}", "", "", "", "", "")
                for _ in range(2)
            ]
        self.service(
            "default",
            "kubernetes",
            (("https", "TCP", 6443),),
            api,
            cluster_ip="10.96.0.1",
            ready_only=True,
            fixed_slice="kubernetes",
        )
        kubelets = [(n.ip, n.name, "", "Node", n.name, "") for n in sorted(self.nodes, key=lambda n: n.name)]
        kubelet_ports = (
            ("https-metrics", "TCP", 10250),
            ("cadvisor", "TCP", 4194),
            ("http-metrics", "TCP", 10255),
        )
        self.service("kube-system", "kubelet", kubelet_ports, kubelets, cluster_ip="None", ready_only=True)
        if control:
            # kube-prometheus' kubeadm platform and static-etcd addon: discovery Services.
            etcd = [(n.ip, "", "", "", "", "") for n in control]
            self.service(
                "kube-system", "etcd", (("metrics", "TCP", 2379),), etcd, cluster_ip="None", ready_only=True
            )
            statics = self.model.static_pods
            for component, port in (("kube-scheduler", 10259), ("kube-controller-manager", 10257)):
                pods = [p for p in statics if p.name.startswith(f"{component}-")]
                self.service(
                    "kube-system",
                    f"{component}-prometheus-discovery",
                    (("https-metrics", "TCP", port),),
                    self.pod_endpoints(pods),
                    cluster_ip="None",
                )
        dns_ports = (("dns", "UDP", 53), ("dns-tcp", "TCP", 53), ("metrics", "TCP", 9153))
        coredns = self.model_workload("kube-system", "coredns")
        self.service(
            "kube-system", "kube-dns", dns_ports, self.pod_endpoints(coredns.pods), cluster_ip="10.96.0.10"
        )
        system = (
            ("monitoring", "node-exporter", (("https", "TCP", 9100),), "None"),
            (
                "monitoring",
                "kube-state-metrics",
                (("https-main", "TCP", 8443), ("https-self", "TCP", 9443)),
                "None",
            ),
            ("monitoring", "prometheus-k8s", (("web", "TCP", 9090), ("reloader-web", "TCP", 8080)), None),
            ("monitoring", "alertmanager-main", (("web", "TCP", 9093), ("reloader-web", "TCP", 8080)), None),
        )
        for namespace, name, ports, cluster_ip in system:
            pods = self.model_workload(namespace, name).pods
            self.service(namespace, name, ports, self.pod_endpoints(pods), cluster_ip=cluster_ip)
            self.record_service(namespace, name, pods, "service", scraped=True)
        for namespace in app_namespaces:
            style = self.rng.choice(ALERT_STYLES)
            scraped = self.rng.random() < 0.6
            for workload in [w for w in self.model.workloads if w.namespace == namespace]:
                stateful = workload.kind == "StatefulSet"
                port = DATASTORE_PORTS.get(workload.name, 5432) if stateful else 8080
                ports = (("tcp", "TCP", port),) if stateful else (("http", "TCP", 8080),)
                self.service(
                    namespace,
                    workload.name,
                    ports,
                    self.pod_endpoints(workload.pods),
                    cluster_ip="None" if stateful else None,
                )
                self.record_service(namespace, workload.name, workload.pods, style, scraped=scraped)
            backends = [
                w.name for w in self.model.workloads if w.namespace == namespace and w.kind == "Deployment"
            ]
            if backends and self.rng.random() < 0.6:
                paths = [(path, svc, "8080") for path, svc in zip(("/", "/api"), backends, strict=False)]
                self.model.ingresses.append((namespace, namespace, paths))

    def record_service(
        self, namespace: str, name: str, pods: list[gc.Pod], style: str, *, scraped: bool
    ) -> None:
        workload = next((w for w in self.workloads if w.namespace == namespace and w.name == name), None)
        self.services[(namespace, name)] = ServiceInfo(
            namespace, name, [self.pod_info[id(p)] for p in pods], workload, style, scraped
        )

    def add_dependencies(self, app_namespaces: list[str]) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """Service-to-service calls for the topology file: a DAG (datastores are called, never call)."""
        if self.rng.random() >= 0.45:
            return {}
        apps = [s for s in self.services.values() if s.namespace in app_namespaces]
        stores = [s for s in apps if s.workload is not None and s.workload.datastore]
        callers = [s for s in apps if s.workload is not None and not s.workload.datastore]
        self.rng.shuffle(callers)
        order = {s.key: i for i, s in enumerate(callers)}
        edges: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for caller in callers:
            if self.rng.random() < 0.4:
                continue
            # Mostly within a namespace (a team's API and its database), sometimes across.
            earlier = [s for s in callers if order[s.key] < order[caller.key]]
            targets = [s.key for s in stores if s.namespace == caller.namespace]
            targets += [s.key for s in earlier if s.namespace == caller.namespace]
            targets += [s.key for s in earlier if s.namespace != caller.namespace and self.rng.random() < 0.1]
            targets += [s.key for s in stores if s.namespace != caller.namespace and self.rng.random() < 0.1]
            if targets:
                chosen = self.rng.sample(targets, min(len(targets), self.rng.choice((1, 1, 2))))
                edges[caller.key] = sorted(chosen)
        return dict(sorted(edges.items()))

    def build(self) -> ClusterWorld:
        self.add_nodes()
        self.add_static_pods()
        daemonsets = self.add_daemonsets()
        coredns, ksm = self.add_system_workloads()
        app_namespaces = self.add_apps()
        self.add_services(app_namespaces)
        depends_on = self.add_dependencies(app_namespaces)
        pods_by_node = {n.name: [self.pod_info[id(p)] for p in n.pods] for n in self.nodes}
        ksm_pod = ksm.pods[0]
        return ClusterWorld(
            label=self.label,
            platform=self.platform,
            managed=self.managed,
            region=self.region,
            zones={z: [n.name for n in self.nodes if n.zone == z] for z in self.zone_names},
            nodes={n.name: NodeInfo(n.name, n.ip, n.zone, n.control_plane) for n in self.nodes},
            pods_by_node=pods_by_node,
            workloads=self.workloads,
            services=self.services,
            daemonsets=daemonsets,
            cni=self.cni,
            coredns=coredns,
            ksm_instance=f"{ksm_pod.ip}:8443",
            ksm_node=ksm_pod.node,
            app_namespaces=app_namespaces,
            depends_on=depends_on,
            model=self.model,
        )


def build_cluster(rng: random.Random) -> ClusterWorld:
    """A random cluster drawn from `rng` (see the module docstring for what varies)."""
    return _Builder(rng).build()
