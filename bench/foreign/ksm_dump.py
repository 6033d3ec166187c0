"""The kube-state-metrics text dump of a World (cluster.prom), printed as the dump's source prints it.

A raw KSM dump keeps KSM's label order and its HELP/TYPE lines; a Prometheus /federate dump sorts the labels,
adds the external and target labels, types every family `untyped` and stamps each sample. The version quirks
are the ones the KSM reference describes: v2.13 prints no endpoint port labels, v2.17 and v2.19 have the
endpoint-slice `serving`/`terminating` bug, v2.20 adds `ephemeral`.
"""

from world import Service, World, replicaset_hash, uid

# the first federation timestamp a dump may carry (2026-01-01T00:00:00Z)
FEDERATE_EPOCH_MS = 1767225600000
KERNEL_VERSIONS = {
    "aws": "6.1.109-118.189.amzn2023.x86_64",
    "gcp": "6.1.100+",
    "azure": "5.15.0-1071-azure",
    "onprem": "6.8.0-45-generic",
}
OS_IMAGES = {
    "aws": "Amazon Linux 2023.5.20240916",
    "gcp": "Container-Optimized OS from Google",
    "azure": "Ubuntu 22.04.4 LTS",
    "onprem": "Ubuntu 24.04.1 LTS",
}
Labels = list[tuple[str, str]]


def _escape(value: object) -> str:
    """A label value escaped as the text exposition format requires."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


class MetricFamilies:
    """The dump's metric families in the order they first appear, each with its samples."""

    def __init__(self, world: World, federate_timestamp: int) -> None:
        self.world = world
        self.federate_timestamp = federate_timestamp
        self.families: dict[str, tuple[str, list[str]]] = {}  # name -> (help text, sample lines)

    def add(self, name: str, help_text: str, labels: Labels, value: int = 1, stable: bool = True) -> None:
        """One sample; the family's HELP is the one given with its first sample."""
        if name not in self.families:
            self.families[name] = (("[STABLE] " if stable else "") + help_text, [])
        self.families[name][1].append(self._sample(name, labels, value))

    def _sample(self, name: str, labels: Labels, value: int) -> str:
        """KSM's own label order, or /federate's sorted labels with target labels and a timestamp."""
        world = self.world
        if world.dump != "federate":
            pairs = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
            return f"{name}{{{pairs}}} {value}"
        merged: dict[str, object] = dict(labels)
        merged.update(
            {
                "cluster": world.cluster,
                "job": "kube-state-metrics",
                "instance": world.ksm_instance,
                "prometheus": "monitoring/k8s",
            }
        )
        if "container" not in merged:
            merged["container"] = "kube-rbac-proxy-main"
        pairs = ",".join(f'{key}="{_escape(merged[key])}"' for key in sorted(merged))
        return f"{name}{{{pairs}}} {value} {self.federate_timestamp}"

    def text(self) -> str:
        """The families with HELP and TYPE gauge, or (federated) TYPE untyped only."""
        lines = []
        for name, (help_text, samples) in self.families.items():
            if self.world.dump == "federate":
                lines.append(f"# TYPE {name} untyped")
            else:
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} gauge")
            lines.extend(samples)
        return "\n".join(lines) + "\n"


def ksm_dump(world: World) -> str:
    """cluster.prom for the world. Draws from the world's random generator (node UIDs, revisions)."""
    families = MetricFamilies(world, FEDERATE_EPOCH_MS + world.rng.randrange(0, 10**9))
    _node_series(world, families)
    _pod_series(world, families)
    _workload_series(world, families)
    _service_series(world, families)
    _claim_series(world, families)
    return families.text()


def _node_series(world: World, families: MetricFamilies) -> None:
    """Node info, labels (role, region, zone), schedulability and control-plane role."""
    kubelet_version = world.rng.choice(["v1.29.8", "v1.30.4", "v1.31.2", "v1.32.1"])
    for name in world.cp_nodes + world.workers:
        node = world.nodes[name]
        pod_cidr = f"10.{100 + node.index // 250}.{node.index % 250}.0/24"
        info = [
            ("node", name),
            ("kernel_version", KERNEL_VERSIONS[world.flavour]),
            ("os_image", OS_IMAGES[world.flavour]),
            ("container_runtime_version", "containerd://1.7.22"),
            ("kubelet_version", kubelet_version),
            ("kubeproxy_version", "deprecated"),
            ("provider_id", node.provider_id),
            ("pod_cidr", pod_cidr),
            ("system_uuid", uid(world.rng)),
            ("internal_ip", node.ip),
        ]
        families.add("kube_node_info", "Information about a cluster node.", info)
        labels = [("node", name)]
        if node.role == "control-plane":
            labels.append(("label_node_role_kubernetes_io_control_plane", ""))
        if world.zone_label_region:
            labels.append(("label_topology_kubernetes_io_region", world.region))
        labels.append(("label_topology_kubernetes_io_zone", node.zone))
        families.add("kube_node_labels", "Kubernetes labels converted to Prometheus labels.", labels)
        families.add(
            "kube_node_spec_unschedulable", "Whether a node can schedule new pods.", [("node", name)], 0
        )
        if node.role == "control-plane":
            families.add(
                "kube_node_role",
                "The role of a cluster node.",
                [("node", name), ("role", "control-plane")],
                stable=False,
            )


def _pod_series(world: World, families: MetricFamilies) -> None:
    """Pod info and owners, and the claims each pod mounts."""
    for pod in world.pods.values():
        priority_class = "system-node-critical" if pod.owner_kind in ("Node", "DaemonSet") else ""
        info = [
            ("namespace", pod.namespace),
            ("pod", pod.name),
            ("uid", pod.uid),
            ("host_ip", world.nodes[pod.node].ip),
            ("pod_ip", pod.ip),
            ("node", pod.node),
            ("created_by_kind", pod.owner_kind),
            ("created_by_name", pod.owner_name),
            ("priority_class", priority_class),
            ("host_network", "true" if pod.host_network else "false"),
        ]
        families.add("kube_pod_info", "Information about pod.", info)
        owner = [
            ("namespace", pod.namespace),
            ("pod", pod.name),
            ("uid", pod.uid),
            ("owner_kind", pod.owner_kind),
            ("owner_name", pod.owner_name),
            ("owner_is_controller", "true"),
        ]
        families.add("kube_pod_owner", "Information about the Pod's owner.", owner)
        for claim_name in pod.claims:
            claim = world.claims[(pod.namespace, claim_name)]
            labels = [
                ("namespace", pod.namespace),
                ("pod", pod.name),
                ("uid", pod.uid),
                ("volume", claim.volume),
                ("persistentvolumeclaim", claim_name),
            ]
            if world.ksm_version == "2.20":
                labels.append(("ephemeral", "false"))
            families.add(
                "kube_pod_spec_volumes_persistentvolumeclaims_info",
                "Information about persistentvolumeclaim volumes in a pod.",
                labels,
            )


def _workload_series(world: World, families: MetricFamilies) -> None:
    """ReplicaSets and their owners, Deployment, StatefulSet and DaemonSet sizes."""
    for (kind, namespace, name), workload in world.workloads.items():
        if kind == "Deployment":
            for replicaset in workload.replicasets:
                owner = [
                    ("namespace", namespace),
                    ("replicaset", replicaset),
                    ("owner_kind", "Deployment"),
                    ("owner_name", name),
                    ("owner_is_controller", "true"),
                ]
                families.add("kube_replicaset_owner", "Information about the ReplicaSet's owner.", owner)
                families.add(
                    "kube_replicaset_spec_replicas",
                    "Number of desired pods for a ReplicaSet.",
                    [("namespace", namespace), ("replicaset", replicaset)],
                    len(workload.replicaset_pods[replicaset]),
                )
            deployment = [("namespace", namespace), ("deployment", name)]
            families.add(
                "kube_deployment_spec_replicas",
                "Number of desired pods for a deployment.",
                deployment,
                workload.replicas,
            )
            families.add(
                "kube_deployment_metadata_generation",
                "Sequence number representing a specific generation of the desired state.",
                deployment,
                len(workload.replicasets) + 2,
            )
        elif kind == "StatefulSet":
            families.add(
                "kube_statefulset_replicas",
                "Number of desired pods for a StatefulSet.",
                [("namespace", namespace), ("statefulset", name)],
                workload.replicas,
            )
            revision = f"{name}-{replicaset_hash(world.rng)}"
            families.add(
                "kube_statefulset_status_current_revision",
                "Indicates the version of the StatefulSet used to generate Pods in the sequence "
                "[0,currentReplicas).",
                [("namespace", namespace), ("statefulset", name), ("revision", revision)],
            )
        elif kind == "DaemonSet":
            families.add(
                "kube_daemonset_status_desired_number_scheduled",
                "The number of nodes that should be running the daemon pod.",
                [("namespace", namespace), ("daemonset", name)],
                len(workload.pods),
            )


def _service_series(world: World, families: MetricFamilies) -> None:
    """Services and their endpoints, as Endpoints, as EndpointSlices or both, per the world's KSM."""
    for (namespace, name), service in world.services.items():
        info = [
            ("namespace", namespace),
            ("service", name),
            ("uid", service.uid),
            ("cluster_ip", service.cluster_ip),
            ("external_name", ""),
            ("load_balancer_ip", ""),
            ("external_traffic_policy", ""),
        ]
        families.add("kube_service_info", "Information about service.", info)
        # (address, target kind, target name, node)
        addresses: list[tuple[str, str, str, str]] = []
        for pod_name in service.pods:
            pod = world.pods[(namespace, pod_name)]
            addresses.append((pod.ip, "Pod", pod_name, pod.node))
        for ip, node in service.ip_targets:
            addresses.append((ip, "Node" if node else "", node or "", node or ""))
        if world.endpoints_mode in ("endpoints", "both"):
            for ip, _, _, _ in addresses:
                labels = [("namespace", namespace), ("endpoint", name)]
                if world.ksm_version != "2.13":
                    labels += [
                        ("port_protocol", "TCP"),
                        ("port_number", str(service.port)),
                        ("port_name", service.port_name),
                    ]
                labels += [("ip", ip), ("ready", "true")]
                families.add(
                    "kube_endpoint_address",
                    "Information about Endpoint available and non available addresses.",
                    labels,
                )
        if world.endpoints_mode in ("slices", "both") and addresses:
            _endpointslice_series(world, families, service, addresses)


def _endpointslice_series(
    world: World, families: MetricFamilies, service: Service, addresses: list[tuple[str, str, str, str]]
) -> None:
    """The service's EndpointSlice: its info, its service-name label (unless KSM drops labels) and its
    endpoints with their conditions, target, node and zone."""
    namespace, slice_name = service.namespace, service.endpointslice
    families.add(
        "kube_endpointslice_info",
        "Information about endpointslice.",
        [("endpointslice", slice_name), ("namespace", namespace), ("addresstype", "IPv4")],
        stable=False,
    )
    if world.slice_labels:
        families.add(
            "kube_endpointslice_labels",
            "Kubernetes labels converted to Prometheus labels.",
            [
                ("endpointslice", slice_name),
                ("namespace", namespace),
                ("label_kubernetes_io_service_name", service.name),
            ],
            stable=False,
        )
    for ip, target_kind, target_name, node in addresses:
        zone = world.nodes[node].zone if node else ""
        is_statefulset_pod = (
            target_kind == "Pod"
            and target_name
            and target_name[-1].isdigit()
            and "-" in target_name
            and world.pods[(namespace, target_name)].owner_kind == "StatefulSet"
        )
        hostname = target_name if is_statefulset_pod else ""
        if world.ksm_version in ("2.17", "2.19"):
            # the serving/terminating bug of these versions
            flags = [("ready", "true"), ("serving", "false"), ("hostname", ""), ("terminating", hostname)]
        else:
            flags = [("ready", "true"), ("serving", "true"), ("hostname", hostname), ("terminating", "false")]
        target = [
            ("targetref_kind", target_kind),
            ("targetref_name", target_name),
            ("targetref_namespace", namespace if target_kind == "Pod" else ""),
            ("endpoint_nodename", node),
            ("endpoint_zone", zone),
            ("address", ip),
        ]
        families.add(
            "kube_endpointslice_endpoints",
            "Endpoints attached to the endpointslice.",
            [("endpointslice", slice_name), ("namespace", namespace), *flags, *target],
            stable=False,
        )


def _claim_series(world: World, families: MetricFamilies) -> None:
    """Each claim and the volume bound to it."""
    for (namespace, name), claim in world.claims.items():
        families.add(
            "kube_persistentvolumeclaim_info",
            "Information about persistent volume claim.",
            [
                ("namespace", namespace),
                ("persistentvolumeclaim", name),
                ("storageclass", claim.storage_class),
                ("volumename", claim.volume_name),
                ("volumemode", "Filesystem"),
            ],
        )
        families.add(
            "kube_persistentvolume_claim_ref",
            "Information about the Persistent Volume Claim Reference.",
            [("persistentvolume", claim.volume_name), ("name", name), ("claim_namespace", namespace)],
        )
