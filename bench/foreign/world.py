"""A randomised Kubernetes cluster: nodes in zones, system and application workloads, pods, services, claims.

Written from the formats in shared/contracts.md and the KSM facts in
shared/reference/kube-state-metrics-and-alerts.md only, so it shares no assumption with the router.
Every draw comes from the storm's random generator, in a fixed order: the same seed gives the same cluster.
"""

import math
import random
from dataclasses import dataclass, field

# The characters Kubernetes uses in generated name suffixes (no vowels, no look-alike digits).
HASH_CHARS = "bcdfghjklmnpqrstvwxz2456789"
LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
BASE36_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"

# Names the model draws from, each list in a fixed order (the draws depend on it).
APP_NAMESPACES = [
    "shop",
    "payments",
    "checkout",
    "search",
    "ads",
    "identity",
    "media",
    "billing",
    "ml-serving",
    "data",
    "booking",
    "crm",
    "notifications",
    "ledger",
    "catalog",
    "growth",
]
APP_DEPLOYMENTS = [
    "api",
    "web",
    "frontend",
    "cart",
    "orders",
    "inventory",
    "gateway",
    "auth",
    "worker",
    "notifier",
    "recommender",
    "pricing",
    "session",
    "profile",
    "search-api",
    "indexer",
    "renderer",
    "ingest",
    "scheduler-svc",
    "webhooks",
    "graphql",
    "thumbnailer",
    "fraud-check",
    "ledger-writer",
    "email-sender",
    "feature-flags",
    "quotes",
    "tracking",
]
APP_STATEFULSETS = [
    "postgres",
    "redis",
    "kafka",
    "zookeeper",
    "elasticsearch",
    "mongodb",
    "rabbitmq",
    "cassandra",
    "minio",
    "clickhouse",
    "nats",
]
CLUSTER_NAMES = [
    "prod-eu1",
    "prod-us-east",
    "prd-payments",
    "gke-prod-1",
    "aks-shared-weu",
    "k8s-dc2",
    "production",
    "live-apac",
    "prod-blue",
    "ops-main",
]

# (kind, namespace, name); control-plane static pods point at ("Node", "", <node>), which is no workload.
WorkloadKey = tuple[str, str, str]


def replicaset_hash(rng: random.Random) -> str:
    """The pod-template hash of a ReplicaSet name (or a StatefulSet revision)."""
    return "".join(rng.choice(HASH_CHARS) for _ in range(rng.choice([9, 10, 10])))


def pod_suffix(rng: random.Random) -> str:
    """The five random characters after a generated pod name."""
    return "".join(rng.choice(HASH_CHARS) for _ in range(5))


def uid(rng: random.Random) -> str:
    """A version-4-shaped UID."""
    digits = f"{rng.getrandbits(128):032x}"
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{digits[16:20]}-{digits[20:32]}"


def base36(number: int) -> str:
    """How AKS numbers the instances of a scale set."""
    digits = ""
    while True:
        number, remainder = divmod(number, 36)
        digits = BASE36_DIGITS[remainder] + digits
        if number == 0:
            return digits


@dataclass
class Node:
    """A node; `index` places its pod CIDR."""

    name: str
    zone: str
    ip: str
    role: str  # "worker" or "control-plane"
    provider_id: str
    index: int  # order of creation; places the node's pod CIDR
    pods: list[tuple[str, str]] = field(default_factory=list)  # (namespace, name)


@dataclass
class Pod:
    """A pod; `workload` is its workload's key, `claims` the PVCs it mounts."""

    namespace: str
    name: str
    uid: str
    node: str
    ip: str
    host_network: bool
    owner_kind: str  # ReplicaSet, StatefulSet, DaemonSet or Node
    owner_name: str
    workload: WorkloadKey
    containers: list[str]
    claims: list[str] = field(default_factory=list)


@dataclass
class Workload:
    """A Deployment, StatefulSet or DaemonSet and its pods."""

    kind: str  # Deployment, StatefulSet or DaemonSet
    namespace: str
    name: str
    container: str
    replicas: int = 0  # desired replicas; a DaemonSet has one pod per node instead
    pods: list[str] = field(default_factory=list)
    service: str | None = None
    replicasets: list[str] = field(default_factory=list)  # a Deployment's, oldest first
    replicaset_pods: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Service:
    """A Service: the pods behind it, or addresses that are no pods (`ip_targets`)."""

    namespace: str
    name: str
    uid: str
    pods: list[str]
    port: int
    port_name: str
    cluster_ip: str
    endpointslice: str
    # endpoints that are no pods: (address, node name or None), e.g. the kubelets or the etcd members
    ip_targets: list[tuple[str, str | None]] = field(default_factory=list)


@dataclass
class Claim:
    """A PersistentVolumeClaim of a StatefulSet pod."""

    namespace: str
    name: str
    volume_name: str  # the bound PersistentVolume
    storage_class: str
    pod: str
    volume: str  # the pod's volume that mounts it


class World:
    """One cluster: nodes, zones, workloads, pods, services and claims, plus how its KSM dump is taken."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        # the `cluster` label on alerts (and federated series), absent in 45% of storms
        self.cluster: str | None = None if rng.random() < 0.45 else rng.choice(CLUSTER_NAMES)
        self.entity_cluster = self.cluster or "default"
        self.flavour = rng.choice(["aws", "aws", "gcp", "azure", "onprem"])
        self.nodes: dict[str, Node] = {}
        self.pods: dict[tuple[str, str], Pod] = {}
        self.workloads: dict[WorkloadKey, Workload] = {}
        self.services: dict[tuple[str, str], Service] = {}
        self.claims: dict[tuple[str, str], Claim] = {}
        self._last_node_ip = 0
        self._last_pod_ip: dict[str, int] = {}
        self._gke_node_groups: dict[tuple[str, str], str] = {}
        self._aks_instances = 0
        self._aks_id: str | None = None
        self._onprem_worker_name: str | None = None
        self.ksm_version = rng.choice(["2.13", "2.17", "2.19", "2.19", "2.20"])
        # every version's choice is drawn, whichever version was picked
        self.endpoints_mode = {
            "2.13": "endpoints",
            "2.17": rng.choice(["endpoints", "both"]),
            "2.19": rng.choice(["slices", "slices", "both"]),
            "2.20": rng.choice(["slices", "both"]),
        }[self.ksm_version]
        self.slice_labels = rng.random() > 0.12  # a stock install has no label allowlist
        self.kube_proxy_scraped = rng.random() < 0.3
        # How the dump was taken: straight from KSM (no cluster label) or through Prometheus /federate
        # (external labels, cluster among them, on every series; sorted labels; timestamps).
        self.dump = "federate" if (self.cluster and rng.random() < 0.7) else "ksm"
        self.etcd_job = ""
        self._build()

    # ------------------------------------------------------------------ nodes
    def _build(self) -> None:
        """Zones and nodes in the cloud's naming, then the system and application workloads."""
        rng = self.rng
        zone_count = rng.choices([1, 2, 3, 4], weights=[18, 22, 45, 15])[0]
        worker_count = round(math.exp(rng.uniform(math.log(4), math.log(60))))
        worker_count = max(4, min(60, worker_count))
        zone_count = min(zone_count, worker_count)
        if self.flavour == "aws":
            self.region = rng.choice(["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"])
            self.zones = [self.region + letter for letter in "abcd"[:zone_count]]
            self.self_hosted = rng.random() < 0.35  # kops rather than EKS
        elif self.flavour == "gcp":
            self.region = rng.choice(["europe-west1", "us-central1", "asia-northeast1"])
            self.zones = [self.region + "-" + letter for letter in "bcdf"[:zone_count]]
            self.self_hosted = False
        elif self.flavour == "azure":
            self.region = rng.choice(["westeurope", "eastus2", "northeurope"])
            self.zones = [f"{self.region}-{i + 1}" for i in range(zone_count)]
            self.self_hosted = False
        else:
            self.region = rng.choice(["dc1", "fra2", "ams3"])
            racks = ["rack-a", "rack-b", "rack-c", "rack-d"][:zone_count]
            self.zones = [f"{self.region}-{rack}" for rack in racks]
            self.self_hosted = True
        self.zone_label_region = rng.random() < 0.7
        # every zone gets a worker, the rest go to zones with skewed weights
        weights = [rng.uniform(0.6, 1.4) for _ in self.zones]
        worker_zones = list(self.zones)
        while len(worker_zones) < worker_count:
            worker_zones.append(rng.choices(self.zones, weights=weights)[0])
        rng.shuffle(worker_zones)
        self.cp_nodes: list[str] = []
        if self.self_hosted:
            cp_count = rng.choices([1, 3, 5], weights=[10, 75, 15])[0]
            for i in range(cp_count):
                self.cp_nodes.append(self._new_node(self.zones[i % len(self.zones)], "control-plane", i))
        self.workers = [self._new_node(zone, "worker", i) for i, zone in enumerate(worker_zones)]
        self._build_system()
        self._build_apps()

    def _next_node_ip(self, prefix: str) -> str:
        """Node addresses rise with small random gaps, as a DHCP or VPC allocator hands them out."""
        self._last_node_ip += self.rng.randrange(0, 3) + 1
        k = self._last_node_ip
        return f"{prefix}.{(k // 250) % 250}.{k % 250 + 2}"

    def _new_node(self, zone: str, role: str, index_in_role: int) -> str:
        """A node named and identified the way its cloud names it."""
        rng = self.rng
        if self.flavour == "aws":
            ip = self._next_node_ip(f"10.{self.zones.index(zone) * 16 + rng.randrange(0, 4)}")
            domain = "ec2.internal" if self.region == "us-east-1" else self.region + ".compute.internal"
            name = f"ip-{ip.replace('.', '-')}.{domain}"
            provider_id = f"aws:///{zone}/i-0{rng.getrandbits(64):016x}"
        elif self.flavour == "gcp":
            ip = self._next_node_ip("10.128")
            pool = "default-pool" if role == "worker" and rng.random() < 0.7 else "pool-highmem"
            group_id = f"{rng.getrandbits(32):08x}"  # drawn for every node, used by a group's first
            group = self._gke_node_groups.setdefault((pool, zone), group_id)
            suffix = "".join(rng.choice(LOWER_ALNUM) for _ in range(4))
            name = f"gke-{(self.cluster or 'cluster-1')[:20]}-{pool}-{group}-{suffix}"
            provider_id = f"gce://proj-{rng.randrange(1000, 9999)}/{zone}/{name}"
        elif self.flavour == "azure":
            ip = self._next_node_ip("10.224")
            if self._aks_id is None:
                self._aks_id = f"{rng.randrange(10**7, 10**8):08d}"
            self._aks_instances += 1
            pool = "system" if role != "worker" else "nodepool1"
            name = f"aks-{pool}-{self._aks_id}-vmss{base36(self._aks_instances).rjust(6, '0')}"
            provider_id = (
                f"azure:///subscriptions/{uid(rng)}/resourceGroups/mc_rg/providers/Microsoft.Compute"
                f"/virtualMachineScaleSets/aks-{pool}-vmss/virtualMachines/{self._aks_instances}"
            )
        else:
            ip = self._next_node_ip("192.168")
            if role == "worker":
                if self._onprem_worker_name is None:
                    self._onprem_worker_name = rng.choice(
                        ["k8s-worker-{:02d}", "worker-{:02d}", "node{:02d}." + self.region + ".example.net"]
                    )
                name = self._onprem_worker_name.format(index_in_role + 1)
            else:
                name = f"k8s-cp-{index_in_role + 1:02d}"
            provider_id = ""
        if name in self.nodes:
            name = f"{name}-{len(self.nodes)}"
        self.nodes[name] = Node(name, zone, ip, role, provider_id, index=len(self.nodes))
        return name

    def pod_ip(self, node: str) -> str:
        """The next address in the node's pod CIDR."""
        index = self.nodes[node].index
        host = self._last_pod_ip.get(node, 1) + 1
        self._last_pod_ip[node] = host
        return f"10.{100 + index // 250}.{index % 250}.{host}"

    # -------------------------------------------------------------- workloads
    def _add_pod(
        self,
        namespace: str,
        name: str,
        node: str,
        owner_kind: str,
        owner_name: str,
        workload: WorkloadKey,
        containers: list[str],
        host_network: bool = False,
    ) -> Pod:
        """A pod on `node`; host-network pods take the node's address, others the next in its pod CIDR."""
        ip = self.nodes[node].ip if host_network else self.pod_ip(node)
        pod = Pod(
            namespace,
            name,
            uid(self.rng),
            node,
            ip,
            host_network,
            owner_kind,
            owner_name,
            workload,
            containers,
        )
        self.pods[(namespace, name)] = pod
        self.nodes[node].pods.append((namespace, name))
        return pod

    def add_daemonset(self, namespace: str, name: str, container: str, host_network: bool = True) -> Workload:
        """A DaemonSet with a pod on every node, control plane included."""
        key = ("DaemonSet", namespace, name)
        workload = Workload("DaemonSet", namespace, name, container)
        self.workloads[key] = workload
        for node in self.cp_nodes + self.workers:
            pod_name = f"{name}-{pod_suffix(self.rng)}"
            self._add_pod(namespace, pod_name, node, "DaemonSet", name, key, [container], host_network)
            workload.pods.append(pod_name)
        return workload

    def place(self, count: int, pool: list[str] | None = None) -> list[str]:
        """Nodes for `count` pods: distinct nodes while there are enough."""
        candidates = list(pool or self.workers)
        if count <= len(candidates):
            return self.rng.sample(candidates, count)
        return [self.rng.choice(candidates) for _ in range(count)]

    def add_deployment(
        self,
        namespace: str,
        name: str,
        replicas: int,
        container: str | None = None,
        nodes: list[str] | None = None,
        service_name: str | None = None,
    ) -> Workload:
        """A Deployment with one ReplicaSet, its pods, and a Service in front of them."""
        rng = self.rng
        key = ("Deployment", namespace, name)
        replicaset = f"{name}-{replicaset_hash(rng)}"
        workload = Workload(
            "Deployment",
            namespace,
            name,
            container or name,
            replicas,
            replicasets=[replicaset],
            replicaset_pods={replicaset: []},
        )
        self.workloads[key] = workload
        for node in nodes or self.place(replicas):
            pod_name = f"{replicaset}-{pod_suffix(rng)}"
            self._add_pod(namespace, pod_name, node, "ReplicaSet", replicaset, key, [workload.container])
            workload.pods.append(pod_name)
            workload.replicaset_pods[replicaset].append(pod_name)
        port = rng.choice([8080, 80, 9090, 3000, 8443])
        self.add_service(namespace, service_name or name, workload.pods, port=port)
        workload.service = service_name or name
        return workload

    def add_new_replicaset(self, workload: Workload, pod_count: int, nodes: list[str]) -> str:
        """A rollout: a new ReplicaSet of the Deployment with `pod_count` pods on the given nodes."""
        replicaset = f"{workload.name}-{replicaset_hash(self.rng)}"
        workload.replicasets.append(replicaset)
        workload.replicaset_pods[replicaset] = []
        key = ("Deployment", workload.namespace, workload.name)
        for node in nodes[:pod_count]:
            pod_name = f"{replicaset}-{pod_suffix(self.rng)}"
            self._add_pod(
                workload.namespace, pod_name, node, "ReplicaSet", replicaset, key, [workload.container]
            )
            workload.replicaset_pods[replicaset].append(pod_name)
        return replicaset

    def add_statefulset(
        self,
        namespace: str,
        name: str,
        replicas: int,
        claim: str | None = "data",
        container: str | None = None,
    ) -> Workload:
        """A StatefulSet whose pods each claim a volume of the cloud's default storage class, and its
        Service."""
        rng = self.rng
        key = ("StatefulSet", namespace, name)
        workload = Workload("StatefulSet", namespace, name, container or name, replicas)
        self.workloads[key] = workload
        storage_class = {"aws": "gp3", "gcp": "standard-rwo", "azure": "managed-csi", "onprem": "ceph-rbd"}[
            self.flavour
        ]
        for i, node in enumerate(self.place(replicas)):
            pod_name = f"{name}-{i}"
            pod = self._add_pod(namespace, pod_name, node, "StatefulSet", name, key, [workload.container])
            workload.pods.append(pod_name)
            if claim:
                claim_name = f"{claim}-{pod_name}"
                volume_name = "pvc-" + uid(rng)
                self.claims[(namespace, claim_name)] = Claim(
                    namespace, claim_name, volume_name, storage_class, pod_name, claim
                )
                pod.claims.append(claim_name)
        port = rng.choice([5432, 6379, 9092, 9200, 27017, 5672, 4222])
        self.add_service(namespace, name, workload.pods, port=port)
        workload.service = name
        return workload

    def add_service(
        self,
        namespace: str,
        name: str,
        pods: list[str],
        port: int,
        cluster_ip: str | None = None,
        port_name: str | None = None,
    ) -> Service:
        """A Service with a cluster IP from the cloud's service range unless one is given."""
        rng = self.rng
        service_uid = uid(rng)
        port_name = port_name or rng.choice(["http", "web", "tcp", "grpc", ""])
        if not cluster_ip:
            first_octet = 96 if self.flavour != "aws" else 100
            cluster_ip = f"10.{first_octet}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"
        service = Service(
            namespace, name, service_uid, list(pods), port, port_name, cluster_ip, f"{name}-{pod_suffix(rng)}"
        )
        self.services[(namespace, name)] = service
        return service

    def _build_system(self) -> None:
        """DaemonSets, CoreDNS, the monitoring stack, the kubelet and API server services, the control
        plane."""
        rng = self.rng
        kube_proxy_replaced = rng.random() < 0.2  # Cilium's kube-proxy replacement
        if not kube_proxy_replaced:
            self.add_daemonset("kube-system", "kube-proxy", "kube-proxy")
        cni_choices = {
            "aws": [("kube-system", "aws-node", "aws-node")],
            "gcp": [("kube-system", "anetd", "cilium-agent"), ("kube-system", "calico-node", "calico-node")],
            "azure": [
                ("kube-system", "azure-cns", "cns-container"),
                ("kube-system", "cilium", "cilium-agent"),
            ],
            "onprem": [
                ("calico-system", "calico-node", "calico-node"),
                ("kube-system", "cilium", "cilium-agent"),
                ("kube-flannel", "kube-flannel-ds", "kube-flannel"),
            ],
        }[self.flavour]
        if kube_proxy_replaced:
            cni_choices = [("kube-system", "cilium", "cilium-agent")]
        self.add_daemonset(*rng.choice(cni_choices))
        node_exporter = self.add_daemonset("monitoring", "node-exporter", "node-exporter")
        self.add_service("monitoring", "node-exporter", node_exporter.pods, port=9100, port_name="https")
        node_exporter.service = "node-exporter"
        if rng.random() < 0.3:
            self.add_daemonset("kube-system", "node-local-dns", "node-cache")
        if self.flavour == "aws" and rng.random() < 0.5:
            self.add_daemonset("kube-system", "ebs-csi-node", "ebs-plugin", host_network=False)
        self._build_coredns()
        self.add_deployment("kube-system", "metrics-server", 1)
        ksm = self.add_deployment("monitoring", "kube-state-metrics", 1)
        self.ksm_instance = f"{self.pods[('monitoring', ksm.pods[0])].ip}:8443"
        self.add_deployment("monitoring", "prometheus-operator", 1)
        self.add_deployment("monitoring", "grafana", 1)
        self.add_statefulset(
            "monitoring", "prometheus-k8s", 2, claim="prometheus-k8s-db", container="prometheus"
        )
        self.add_statefulset(
            "monitoring", "alertmanager-main", rng.choice([2, 3]), claim=None, container="alertmanager"
        )
        # the kubelet service's endpoints are the nodes themselves
        kubelet = self.add_service(
            "kube-system", "kubelet", [], port=10250, port_name="https-metrics", cluster_ip="None"
        )
        kubelet.ip_targets = [(self.nodes[node].ip, node) for node in self.cp_nodes + self.workers]
        api_cluster_ip = "10.96.0.1" if self.flavour != "aws" else "172.20.0.1"
        if self.self_hosted:
            for node in self.cp_nodes:
                for component in ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]:
                    self._add_pod(
                        "kube-system",
                        f"{component}-{node}",
                        node,
                        "Node",
                        node,
                        ("Node", "", node),
                        [component],
                        True,
                    )
            self.etcd_job = rng.choice(["etcd", "etcd", "kube-etcd"])
            etcd = self.add_service(
                "kube-system", self.etcd_job, [], port=2379, port_name="metrics", cluster_ip="None"
            )
            etcd.ip_targets = [(self.nodes[node].ip, None) for node in self.cp_nodes]
            api = self.add_service(
                "default", "kubernetes", [], port=6443, port_name="https", cluster_ip=api_cluster_ip
            )
            api.ip_targets = [(self.nodes[node].ip, None) for node in self.cp_nodes]
        else:
            api = self.add_service(
                "default", "kubernetes", [], port=443, port_name="https", cluster_ip=api_cluster_ip
            )
            endpoint = f"10.{rng.randrange(0, 250)}.{rng.randrange(0, 250)}.{rng.randrange(2, 250)}"
            api.ip_targets = [(endpoint, None)]

    def _build_coredns(self) -> None:
        """CoreDNS behind kube-system/kube-dns, scraped as job kube-dns or coredns."""
        rng = self.rng
        replicas = 2 if len(self.workers) < 20 else rng.choice([3, 4])
        pool = self.workers + (self.cp_nodes if self.flavour == "onprem" else [])
        nodes = self.place(replicas, pool)
        self.coredns = self.add_deployment(
            "kube-system", "coredns", replicas, container="coredns", nodes=nodes, service_name="kube-dns"
        )
        kube_dns = self.services[("kube-system", "kube-dns")]
        kube_dns.cluster_ip = "172.20.0.10" if self.flavour == "aws" else "10.96.0.10"
        kube_dns.port, kube_dns.port_name = 53, "dns"
        self.dns_job = rng.choice(["kube-dns", "kube-dns", "coredns"])

    def _build_apps(self) -> None:
        """Application namespaces, each with Deployments and sometimes StatefulSets."""
        rng = self.rng
        namespace_count = min(len(APP_NAMESPACES), 2 + len(self.workers) // 8 + rng.randrange(0, 3))
        self.app_namespaces = rng.sample(APP_NAMESPACES, namespace_count)
        # which label names an application alert's service, chosen per namespace (per team)
        self.app_label_style: dict[str, str] = {}
        for namespace in self.app_namespaces:
            self.app_label_style[namespace] = rng.choice(["service", "service", "service_name", "job"])
            for name in rng.sample(APP_DEPLOYMENTS, rng.randrange(2, 7)):
                replicas = rng.choices([1, 2, 3, 4, 6], weights=[15, 30, 30, 15, 10])[0]
                self.add_deployment(namespace, name, replicas)
            statefulset_count = rng.choices([0, 1, 2], weights=[35, 45, 20])[0]
            for name in rng.sample(APP_STATEFULSETS, statefulset_count):
                replicas = rng.choice([1, 3, 3])
                claim = rng.choice(["data", "data", "storage", "datadir"])
                self.add_statefulset(namespace, name, replicas, claim=claim)

    # ------------------------------------------------------------------ queries
    def pods_on(self, node: str) -> list[Pod]:
        return [self.pods[key] for key in self.nodes[node].pods]

    def workload_of(self, pod: Pod) -> Workload | None:
        return self.workloads.get(pod.workload)

    def entity(self, kind: str, *parts: str) -> str:
        """The truth's name for an entity: `<kind>/<cluster>/<parts...>`."""
        return "/".join([kind, self.entity_cluster, *parts])
