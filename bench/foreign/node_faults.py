"""Faults of nodes: a node down, a zone down, a brief network blip, disk or memory pressure.

Each takes the storm, the fault's id and its start (ms), reserves what it touches, and records the fault
with the alert conditions it raises.
"""

from alerts import AlertSpec
from clock import MINUTE, SECOND
from storm import Conflict, Fault, Storm


def _later(moment: int | None, delay: int) -> int | None:
    """`delay` after `moment`, or never when `moment` is never."""
    return moment + delay if moment is not None else None


def node_down_specs(
    storm: Storm,
    fault_id: str,
    node: str,
    t0: int,
    heal: int | None,
    root_role: str = "root",
    app_alerts: bool = True,
    target_down: bool = True,
) -> list[AlertSpec]:
    """The alerts of a dead node: its own, its kubelet's, its pods', its DaemonSets' and StatefulSets', and
    on a control-plane node etcd's and the API server's."""
    world, alerts, rng = storm.world, storm.alerts, storm.rng
    out = []
    not_ready_at = t0 + 50 * SECOND
    ksm_heal = _later(heal, 20 * SECOND)  # KSM sees the node back a little after the scrapes succeed
    scrape_heal = _later(heal, 10 * SECOND)
    entity = world.entity("node", node)
    out.append(
        alerts.spec(
            fault_id,
            root_role,
            "KubeNodeNotReady",
            "warning",
            alerts.ksm_labels({"node": node, "condition": "Ready", "status": "unknown"}),
            not_ready_at,
            ksm_heal,
            entity=entity,
        )
    )
    taint = {"node": node, "key": "node.kubernetes.io/unreachable", "value": "", "effect": "NoSchedule"}
    out.append(
        alerts.spec(
            fault_id,
            root_role,
            "KubeNodeUnreachable",
            "warning",
            alerts.ksm_labels(taint),
            not_ready_at + 5 * SECOND,
            ksm_heal,
            entity=entity,
        )
    )
    out.append(
        alerts.spec(
            fault_id,
            "symptom",
            "KubeletInstanceUnreachable",
            "warning",
            alerts.kubelet_labels(node, {}),
            t0,
            scrape_heal,
            entity=entity + "/kubelet",
        )
    )
    kube_proxies = [pod for pod in world.pods_on(node) if pod.owner_name == "kube-proxy"]
    if world.kube_proxy_scraped and kube_proxies:
        labels = {
            "job": "kube-proxy",
            "instance": node,
            "pod": kube_proxies[0].name,
            "namespace": "kube-system",
        }
        out.append(
            alerts.spec(
                fault_id,
                "symptom",
                "KubeProxyInstanceUnreachable",
                "warning",
                labels,
                t0,
                scrape_heal,
                entity=entity + "/kube-proxy",
            )
        )
    for pod in world.pods_on(node):
        out.append(
            alerts.spec(
                fault_id,
                "symptom",
                "KubePodNotReady",
                "warning",
                {"namespace": pod.namespace, "pod": pod.name, "job": "kube-state-metrics"},
                not_ready_at + rng.randrange(0, 25) * SECOND,
                ksm_heal,
                entity=world.entity("pod", pod.namespace, pod.name),
            )
        )
        workload = world.workload_of(pod)
        if workload and workload.kind == "DaemonSet":
            daemonset = world.entity("daemonset", pod.namespace, workload.name)
            labels = alerts.ksm_labels({"namespace": pod.namespace, "daemonset": workload.name})
            out.append(
                alerts.spec(
                    fault_id,
                    "symptom",
                    "KubeDaemonSetRolloutStuck",
                    "warning",
                    labels,
                    not_ready_at,
                    ksm_heal,
                    entity=daemonset,
                )
            )
            if workload.name in ("ebs-csi-node", "node-local-dns"):
                labels = alerts.ksm_labels({"namespace": pod.namespace, "daemonset": workload.name})
                out.append(
                    alerts.spec(
                        fault_id,
                        "symptom",
                        "KubeDaemonSetMisScheduled",
                        "warning",
                        labels,
                        not_ready_at,
                        ksm_heal,
                        entity=daemonset,
                    )
                )
        if workload and workload.kind == "StatefulSet":
            out.append(
                alerts.spec(
                    fault_id,
                    "symptom",
                    "KubeStatefulSetReplicasMismatch",
                    "warning",
                    alerts.ksm_labels({"namespace": pod.namespace, "statefulset": workload.name}),
                    not_ready_at + 30 * SECOND,
                    ksm_heal,
                    entity=world.entity("statefulset", pod.namespace, workload.name),
                )
            )
    if node in world.cp_nodes:
        storm.traps.append("control_plane_node_down")
        if len(world.cp_nodes) > 1:
            out += _control_plane_member_down(storm, fault_id, node, t0, scrape_heal)
    if target_down:
        if 1.0 / len(world.nodes) > 0.1:
            out += node_target_down(storm, fault_id, t0, scrape_heal)
        out += statefulset_target_down(storm, fault_id, [node], t0, scrape_heal)
    if app_alerts:
        out += node_app_alerts(storm, fault_id, [node], t0, heal)
    return out


def _control_plane_member_down(
    storm: Storm, fault_id: str, node: str, t0: int, scrape_heal: int | None
) -> list[AlertSpec]:
    """A lost etcd member and API server instance of a control plane that keeps its quorum."""
    world, alerts = storm.world, storm.alerts
    etcd_job = world.etcd_job
    etcd = world.entity("etcd", "etcd")
    etcd_labels = {"job": etcd_job, "namespace": "kube-system", "service": etcd_job}
    api_labels = {
        "job": "apiserver",
        "instance": f"{world.nodes[node].ip}:6443",
        "namespace": "default",
        "service": "kubernetes",
        "endpoint": "https",
    }
    return [
        alerts.spec(fault_id, "symptom", "TargetDown", "warning", etcd_labels, t0, scrape_heal, entity=etcd),
        alerts.spec(
            fault_id, "symptom", "etcdMembersDown", "warning", etcd_labels, t0, scrape_heal, entity=etcd
        ),
        alerts.spec(
            fault_id,
            "symptom",
            "KubeAPIInstanceUnreachable",
            "warning",
            api_labels,
            t0,
            scrape_heal,
            entity=world.entity("apiserver", "kube-apiserver"),
        ),
    ]


def node_target_down(storm: Storm, fault_id: str, t0: int, scrape_heal: int | None) -> list[AlertSpec]:
    """TargetDown of node-exporter and the kubelet, whose rule fires once more than 10% of their targets are
    down."""
    world, alerts = storm.world, storm.alerts
    return [
        alerts.spec(
            fault_id,
            "symptom",
            "TargetDown",
            "warning",
            {"job": "node-exporter", "namespace": "monitoring", "service": "node-exporter"},
            t0,
            scrape_heal,
            entity=world.entity("daemonset", "monitoring", "node-exporter"),
        ),
        alerts.spec(
            fault_id,
            "symptom",
            "TargetDown",
            "warning",
            {"job": "kubelet", "namespace": "kube-system", "service": "kubelet"},
            t0 + 2 * SECOND,
            scrape_heal,
            entity=world.entity("service", "kube-system", "kubelet"),
        ),
    ]


def statefulset_target_down(
    storm: Storm, fault_id: str, nodes: list[str], t0: int, scrape_heal: int | None
) -> list[AlertSpec]:
    """TargetDown of application StatefulSets (scraped as their own jobs) that lose >10% of their pods."""
    world, alerts = storm.world, storm.alerts
    out = []
    for service in storm.app_services():
        if ("StatefulSet", service.namespace, service.name) not in world.workloads:
            continue
        down = sum(1 for name in service.pods if world.pods[(service.namespace, name)].node in nodes)
        if down and down / len(service.pods) > 0.1 and storm.rng.random() < 0.6:
            labels = {"job": service.name, "namespace": service.namespace, "service": service.name}
            out.append(
                alerts.spec(
                    fault_id,
                    "symptom",
                    "TargetDown",
                    "warning",
                    labels,
                    t0,
                    scrape_heal,
                    entity=world.entity("service", service.namespace, service.name),
                )
            )
    return out


def node_app_alerts(
    storm: Storm, fault_id: str, nodes: list[str], t0: int, heal: int | None
) -> list[AlertSpec]:
    """Application alerts of services with pods on dead nodes: errors while a StatefulSet's pod is gone or all
    of a Deployment's pods are; otherwise sometimes a brief latency alert while traffic moves."""
    world, alerts, rng = storm.world, storm.alerts, storm.rng
    out = []
    for service in storm.app_services():
        on_dead_node = [world.pods[(service.namespace, name)].node in nodes for name in service.pods]
        if not any(on_dead_node):
            continue
        is_statefulset = ("StatefulSet", service.namespace, service.name) in world.workloads
        if is_statefulset or all(on_dead_node):
            end: int | None
            if is_statefulset and heal:
                end = heal + rng.randrange(30, 150) * SECOND
            else:
                end = None if is_statefulset else t0 + rng.randrange(330, 480) * SECOND
            out.append(alerts.app_alert(fault_id, service, t0 + rng.randrange(0, 90) * SECOND, end))
        elif rng.random() < 0.35:
            start = t0 + rng.randrange(0, 30) * SECOND
            end = t0 + rng.randrange(170, 300) * SECOND
            out.append(alerts.app_alert(fault_id, service, start, end, latency=True, for_seconds=60))
    return out


def node_down(storm: Storm, fault_id: str, t0: int) -> Fault:
    """A worker (sometimes a control-plane node) goes down; it heals in half of the storms."""
    world, rng = storm.world, storm.rng
    candidates = [node for node in world.workers if storm.node_free(node)]
    if world.cp_nodes and rng.random() < 0.15:
        candidates = [
            node
            for node in world.cp_nodes
            if storm.node_free(node) and "etcd" not in storm.reserved.subsystems
        ] or candidates
    if not candidates:
        raise Conflict("no node")
    node = rng.choice(candidates)
    heal = t0 + rng.randrange(22, 60) * MINUTE if rng.random() < 0.5 else None
    storm.reserve_node(node)
    specs = node_down_specs(storm, fault_id, node, t0, heal)
    entity = world.entity("node", node)
    zone = world.nodes[node].zone
    near = [world.entity("node", node, part) for part in ("kubelet", "cni", "kube-proxy", "node-local-dns")]
    near.append(world.entity("zone", zone))
    detail = {"node": node, "zone": zone, "pods": len(world.pods_on(node))}
    return storm.record_fault(
        fault_id, "node_down", entity, [entity], near, True, t0, heal, specs, detail=detail
    )


def zone_down(storm: Storm, fault_id: str, t0: int) -> Fault:
    """Every node of one zone goes down; the root is the zone, which raises no alert of its own."""
    world, alerts, rng = storm.world, storm.alerts, storm.rng
    if len(world.zones) < 2:
        raise Conflict("one zone")
    candidates = []
    for zone in world.zones:
        nodes = [node for node in world.nodes if world.nodes[node].zone == zone]
        workers = [node for node in nodes if node in world.workers]
        cp_nodes = [node for node in nodes if node in world.cp_nodes]
        keeps_quorum = 2 * len(cp_nodes) < max(1, len(world.cp_nodes))
        if (
            len(workers) >= 2
            and len(workers) < len(world.workers)
            and keeps_quorum
            and all(storm.node_free(node) for node in nodes)
            and (not cp_nodes or "etcd" not in storm.reserved.subsystems)
        ):
            candidates.append((zone, nodes))
    if not candidates:
        raise Conflict("no zone")
    zone, nodes = rng.choice(candidates)
    heal = t0 + rng.randrange(25, 60) * MINUTE if rng.random() < 0.5 else None
    for node in nodes:
        storm.reserve_node(node)
    scrape_heal = _later(heal, 10 * SECOND)
    specs = []
    for node in nodes:
        node_t0 = t0 + rng.randrange(0, 20) * SECOND
        specs += node_down_specs(
            storm, fault_id, node, node_t0, heal, root_role="symptom", app_alerts=False, target_down=False
        )
    if len(nodes) / len(world.nodes) > 0.1:
        specs += node_target_down(storm, fault_id, t0, scrape_heal)
    specs += statefulset_target_down(storm, fault_id, nodes, t0, scrape_heal)
    coredns_in_zone = [world.pods[("kube-system", pod)].node in nodes for pod in world.coredns.pods]
    if all(coredns_in_zone):
        storm.traps.append("zone_takes_all_coredns")
        dns = world.entity("dns", "cluster-dns")
        specs.append(
            alerts.spec(fault_id, "symptom", "CoreDNSDown", "critical", {}, t0, scrape_heal, entity=dns)
        )
        labels = {"job": world.dns_job, "namespace": "kube-system", "service": "kube-dns"}
        specs.append(
            alerts.spec(fault_id, "symptom", "TargetDown", "warning", labels, t0, scrape_heal, entity=dns)
        )
    specs += node_app_alerts(storm, fault_id, nodes, t0, heal)
    near = [world.entity("node", node) for node in nodes]
    entity = world.entity("zone", zone)
    detail = {"zone": zone, "nodes": len(nodes), "cluster_nodes": len(world.nodes)}
    return storm.record_fault(
        fault_id, "zone_down", entity, [entity], near, True, t0, heal, specs, detail=detail
    )


def node_blip(storm: Storm, fault_id: str, t0: int) -> Fault:
    """A node's network drops for 1-3 minutes: short application alerts and interface flapping; must not
    page."""
    world, alerts, rng = storm.world, storm.alerts, storm.rng
    candidates = [node for node in world.workers if storm.node_free(node)]
    if not candidates:
        raise Conflict("no node")
    node = rng.choice(candidates)
    duration = rng.randrange(60, 181) * SECOND
    storm.reserve_node(node)
    specs = []
    for service in storm.app_services():
        has_pod_there = any(world.pods[(service.namespace, name)].node == node for name in service.pods)
        if has_pod_there and rng.random() < 0.7:
            start = t0 + rng.randrange(0, 30) * SECOND
            end = t0 + duration + rng.randrange(30, 100) * SECOND
            specs.append(alerts.app_alert(fault_id, service, start, end, for_seconds=60))
    entity = world.entity("node", node)
    if not specs or rng.random() < 0.5:
        labels = alerts.node_exporter_labels(node, {"device": rng.choice(["eth0", "ens5", "enp1s0"])})
        specs.append(
            alerts.spec(
                fault_id,
                "root",
                "NodeNetworkInterfaceFlapping",
                "warning",
                labels,
                t0,
                t0 + duration + 150 * SECOND,
                entity=entity,
            )
        )
    detail = {"node": node, "seconds": duration // SECOND}
    return storm.record_fault(
        fault_id, "node_blip", entity, [entity], [], False, t0, t0 + duration, specs, detail=detail
    )


def node_pressure(storm: Storm, fault_id: str, t0: int, resource: str) -> Fault:
    """A node under disk or memory pressure: evictions, the pressure condition and the node-exporter alert;
    for memory also OOM crash loops; latency alerts of services with pods there."""
    world, alerts, rng = storm.world, storm.alerts, storm.rng
    candidates = [node for node in world.workers if storm.node_free(node)]
    if not candidates:
        raise Conflict("no node")
    node = rng.choice(candidates)
    storm.reserve_node(node, with_daemonsets=False)
    entity = world.entity("node", node)
    kubelet_instance = f"{world.nodes[node].ip}:10250"
    specs = []
    if resource == "disk":
        heal = t0 + rng.randrange(40, 70) * MINUTE if rng.random() < 0.4 else None
        signal = rng.choice(["nodefs.available", "nodefs.available", "imagefs.available"])
        mountpoint, device = rng.choice(
            [
                ("/", "/dev/nvme0n1p1"),
                ("/", "/dev/sda1"),
                ("/var/lib/containerd", "/dev/nvme1n1"),
                ("/var/lib/kubelet", "/dev/sdb"),
            ]
        )
        filesystem = {"device": device, "mountpoint": mountpoint, "fstype": rng.choice(["ext4", "xfs"])}
        eviction = {"node": node, "eviction_signal": signal, "instance": kubelet_instance}
        specs.append(
            alerts.spec(
                fault_id,
                "root",
                "KubeNodeEviction",
                "info",
                eviction,
                t0 + 30 * SECOND,
                t0 + rng.randrange(15, 25) * MINUTE,
                entity=entity,
            )
        )
        condition = alerts.ksm_labels({"node": node, "condition": "DiskPressure", "status": "true"})
        specs.append(
            alerts.spec(fault_id, "root", "KubeNodePressure", "info", condition, t0, heal, entity=entity)
        )
        specs.append(
            alerts.spec(
                fault_id,
                "root",
                "NodeFilesystemAlmostOutOfSpace",
                "warning",
                alerts.node_exporter_labels(node, filesystem),
                t0 + rng.randrange(0, 120) * SECOND,
                heal,
                entity=entity,
            )
        )
        if rng.random() < 0.6:
            specs.append(
                alerts.spec(
                    fault_id,
                    "root",
                    "NodeFilesystemAlmostOutOfSpace",
                    "critical",
                    alerts.node_exporter_labels(node, filesystem),
                    t0 + rng.randrange(120, 600) * SECOND,
                    heal,
                    entity=entity,
                )
            )
        if rng.random() < 0.6:
            specs.append(
                alerts.spec(
                    fault_id,
                    "root",
                    "NodeFilesystemSpaceFillingUp",
                    "warning",
                    alerts.node_exporter_labels(node, filesystem),
                    t0 - rng.randrange(70, 200) * MINUTE,
                    heal,
                    entity=entity,
                )
            )
        storm.traps.append("node_exporter_pod_label")
    else:
        heal = t0 + rng.randrange(20, 45) * MINUTE if rng.random() < 0.6 else None
        eviction = {"node": node, "eviction_signal": "memory.available", "instance": kubelet_instance}
        specs.append(
            alerts.spec(
                fault_id,
                "root",
                "KubeNodeEviction",
                "info",
                eviction,
                t0 + 20 * SECOND,
                t0 + rng.randrange(10, 20) * MINUTE,
                entity=entity,
            )
        )
        condition = alerts.ksm_labels({"node": node, "condition": "MemoryPressure", "status": "true"})
        specs.append(
            alerts.spec(fault_id, "root", "KubeNodePressure", "info", condition, t0, heal, entity=entity)
        )
        specs.append(
            alerts.spec(
                fault_id,
                "root",
                "NodeMemoryHighUtilization",
                "warning",
                alerts.node_exporter_labels(node, {}),
                t0 - rng.randrange(0, 5) * MINUTE,
                heal,
                entity=entity,
            )
        )
        app_pods = [
            pod
            for pod in world.pods_on(node)
            if pod.namespace in world.app_namespaces and pod.owner_kind == "ReplicaSet"
        ]
        for pod in rng.sample(app_pods, min(len(app_pods), rng.choice([1, 2]))):
            labels = {
                "namespace": pod.namespace,
                "pod": pod.name,
                "container": pod.containers[0],
                "uid": pod.uid,
                "reason": "CrashLoopBackOff",
            }
            specs.append(
                alerts.spec(
                    fault_id,
                    "symptom",
                    "KubePodCrashLooping",
                    "warning",
                    alerts.ksm_labels(labels, own_container=True),
                    t0 + rng.randrange(60, 180) * SECOND,
                    heal,
                    entity=world.entity("pod", pod.namespace, pod.name),
                )
            )
    for service in storm.app_services():
        has_pod_there = any(world.pods[(service.namespace, name)].node == node for name in service.pods)
        if has_pod_there and rng.random() < 0.5:
            start = t0 + rng.randrange(30, 150) * SECOND
            end = (heal + rng.randrange(60, 120) * SECOND) if heal else None
            specs.append(alerts.app_alert(fault_id, service, start, end, latency=True))
    near = [world.entity("node", node, part) for part in ("kubelet", "cni", "kube-proxy")]
    kind = "node_" + resource
    return storm.record_fault(
        fault_id, kind, entity, [entity], near, True, t0, heal, specs, detail={"node": node}
    )
