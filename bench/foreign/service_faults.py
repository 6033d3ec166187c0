"""Faults of cluster services and workloads: CoreDNS crashing or its upstream failing, etcd losing quorum,
a bad rollout, a full volume, and a pod that crash-loops briefly.

Each takes the storm, the fault's id and its start (ms), reserves what it touches, and records the fault
with the alert conditions it raises.
"""

import math

from alerts import AlertSpec
from clock import MINUTE, SECOND
from storm import Conflict, Fault, Storm
from world import Workload


def _crash_loop_labels(namespace: str, pod: str, container: str, pod_uid: str) -> dict[str, str]:
    return {
        "namespace": namespace,
        "pod": pod,
        "container": container,
        "uid": pod_uid,
        "reason": "CrashLoopBackOff",
    }


def _pod_not_ready_labels(namespace: str, pod: str) -> dict[str, str]:
    return {"namespace": namespace, "pod": pod, "job": "kube-state-metrics"}


def coredns(storm: Storm, fault_id: str, t0: int, upstream: bool = False) -> Fault:
    """CoreDNS crash-loops (or, with `upstream`, its upstream resolver fails) and applications in several
    namespaces raise errors. Never combined with a fault that raises application alerts."""
    world, alerts, rng, reserved = storm.world, storm.alerts, storm.rng, storm.reserved
    coredns_deployment = world.coredns
    if (
        "dns" in reserved.subsystems
        or any(fault.emits_app_alerts for fault in storm.faults)
        or ("Deployment", "kube-system", "coredns") in reserved.workloads
        or any(
            world.pods[("kube-system", pod)].node in reserved.busy_nodes for pod in coredns_deployment.pods
        )
    ):
        raise Conflict("dns")
    reserved.subsystems.add("dns")
    reserved.workloads.add(("Deployment", "kube-system", "coredns"))
    reserved.services.add(("kube-system", "kube-dns"))
    for pod in coredns_deployment.pods:
        reserved.pods.add(("kube-system", pod))
        reserved.busy_nodes.add(world.pods[("kube-system", pod)].node)
    dns = world.entity("dns", "cluster-dns")
    specs: list[AlertSpec] = []
    if upstream:
        heal = t0 + rng.randrange(18, 45) * MINUTE if rng.random() < 0.6 else None
        specs += _upstream_failing(storm, fault_id, t0, heal)
        kind = "dns_upstream"
    else:
        heal = t0 + rng.randrange(20, 45) * MINUTE if rng.random() < 0.7 else None
        specs += _coredns_crashing(storm, fault_id, t0, heal)
        kind = "coredns_crash"
    services = [
        service
        for service in storm.app_services()
        if (service.namespace, service.name) not in reserved.services
    ]
    for service in rng.sample(services, min(len(services), rng.randrange(2, 7))):
        reserved.services.add((service.namespace, service.name))
        start = t0 + rng.randrange(20, 200) * SECOND
        end = (heal + rng.randrange(30, 150) * SECOND) if heal else None
        specs.append(alerts.app_alert(fault_id, service, start, end))
    accept = [
        dns,
        world.entity("deployment", "kube-system", "coredns"),
        world.entity("service", "kube-system", "kube-dns"),
    ]
    near = [world.entity("pod", "kube-system", pod) for pod in coredns_deployment.pods]
    near += [world.entity("replicaset", "kube-system", rs) for rs in coredns_deployment.replicasets]
    detail = {"coredns_pods": len(coredns_deployment.pods)}
    fault = storm.record_fault(fault_id, kind, dns, accept, near, True, t0, heal, specs, detail=detail)
    fault.emits_app_alerts = False  # its application alerts are its own; the flag guards only *other* faults
    return fault


def _upstream_failing(storm: Storm, fault_id: str, t0: int, heal: int | None) -> list[AlertSpec]:
    """CoreDNS answers SERVFAIL for forwarded queries: its error-rate alerts, at one severity."""
    world, alerts, rng = storm.world, storm.alerts, storm.rng
    dns = world.entity("dns", "cluster-dns")
    labels = {
        "job": world.dns_job,
        "namespace": "kube-system",
        "service": "kube-dns",
        "endpoint": "metrics",
        "container": "coredns",
    }
    upstream = rng.choice(["10.0.0.2:53", "169.254.169.253:53", "8.8.8.8:53", "192.168.0.53:53"])
    severity = rng.choice(["warning", "critical"])
    forward = dict(labels, to=upstream)
    return [
        alerts.spec(fault_id, "root", "CoreDNSForwardErrorsHigh", severity, forward, t0, heal, entity=dns),
        alerts.spec(
            fault_id,
            "root",
            "CoreDNSErrorsHigh",
            severity,
            labels,
            t0 + rng.randrange(0, 60) * SECOND,
            heal,
            entity=dns,
        ),
    ]


def _coredns_crashing(storm: Storm, fault_id: str, t0: int, heal: int | None) -> list[AlertSpec]:
    """CoreDNS gone: CoreDNSDown (which carries no labels), its TargetDown and replica mismatch, and its
    crash-looping, unready pods."""
    world, alerts, rng = storm.world, storm.alerts, storm.rng
    dns = world.entity("dns", "cluster-dns")
    scrape_heal = heal + 30 * SECOND if heal else None
    target = {"job": world.dns_job, "namespace": "kube-system", "service": "kube-dns"}
    replicas = alerts.ksm_labels({"namespace": "kube-system", "deployment": "coredns"})
    specs = [
        alerts.spec(
            fault_id, "root", "CoreDNSDown", "critical", {}, t0 + 30 * SECOND, scrape_heal, entity=dns
        ),
        alerts.spec(
            fault_id, "root", "TargetDown", "warning", target, t0 + 30 * SECOND, scrape_heal, entity=dns
        ),
        alerts.spec(
            fault_id,
            "root",
            "KubeDeploymentReplicasMismatch",
            "warning",
            replicas,
            t0 + 60 * SECOND,
            scrape_heal,
            entity=world.entity("deployment", "kube-system", "coredns"),
        ),
    ]
    for pod_name in world.coredns.pods:
        pod = world.pods[("kube-system", pod_name)]
        entity = world.entity("pod", "kube-system", pod_name)
        crash_loop = _crash_loop_labels("kube-system", pod_name, "coredns", pod.uid)
        specs.append(
            alerts.spec(
                fault_id,
                "symptom",
                "KubePodCrashLooping",
                "warning",
                alerts.ksm_labels(crash_loop, own_container=True),
                t0 + rng.randrange(40, 100) * SECOND,
                scrape_heal,
                entity=entity,
            )
        )
        specs.append(
            alerts.spec(
                fault_id,
                "symptom",
                "KubePodNotReady",
                "warning",
                _pod_not_ready_labels("kube-system", pod_name),
                t0 + rng.randrange(10, 40) * SECOND,
                scrape_heal,
                entity=entity,
            )
        )
    return specs


def etcd_quorum(storm: Storm, fault_id: str, t0: int) -> Fault:
    """A self-hosted etcd loses a majority of its members; the API server burns error budget, and its
    burn-rate alerts outlive the heal."""
    world, alerts, rng, reserved = storm.world, storm.alerts, storm.rng, storm.reserved
    if (
        not world.self_hosted
        or len(world.cp_nodes) < 3
        or "etcd" in reserved.subsystems
        or any(node in reserved.down_nodes for node in world.cp_nodes)
    ):
        raise Conflict("etcd")
    reserved.subsystems.add("etcd")
    reserved.busy_nodes |= set(world.cp_nodes)
    heal = t0 + rng.randrange(7, 30) * MINUTE if rng.random() < 0.8 else None
    etcd_job = world.etcd_job
    lost = len(world.cp_nodes) // 2 + 1
    members = list(world.cp_nodes)
    rng.shuffle(members)
    survivors = members[lost:]
    etcd = world.entity("etcd", "etcd")
    api = world.entity("apiserver", "kube-apiserver")
    specs = []
    base = {"job": etcd_job, "namespace": "kube-system", "service": etcd_job, "endpoint": "metrics"}
    for node in survivors:
        labels = dict(base, instance=f"{world.nodes[node].ip}:2379")
        if etcd_job == "kube-etcd":
            labels["pod"] = f"etcd-{node}"
        specs.append(
            alerts.spec(
                fault_id, "root", "etcdNoLeader", "critical", labels, t0 + 10 * SECOND, heal, entity=etcd
            )
        )
        for method in rng.sample(["Range", "Txn", "Put", "LeaseGrant"], rng.choice([1, 2])):
            specs.append(
                alerts.spec(
                    fault_id,
                    "root",
                    "etcdHighNumberOfFailedGRPCRequests",
                    "critical",
                    dict(labels, grpc_method=method, grpc_service="etcdserverpb.KV"),
                    t0 + 30 * SECOND,
                    heal,
                    entity=etcd,
                )
            )
    target = {"job": etcd_job, "namespace": "kube-system", "service": etcd_job}
    specs += [
        alerts.spec(
            fault_id, "root", "etcdInsufficientMembers", "critical", base, t0 + 30 * SECOND, heal, entity=etcd
        ),
        alerts.spec(fault_id, "root", "etcdMembersDown", "warning", base, t0, heal, entity=etcd),
        alerts.spec(fault_id, "root", "TargetDown", "warning", target, t0, heal, entity=etcd),
    ]
    burn_end = (heal + rng.randrange(20, 55) * MINUTE) if heal else None
    specs.append(
        alerts.spec(
            fault_id,
            "symptom",
            "KubeAPIErrorBudgetBurn",
            "critical",
            {},
            t0 + 60 * SECOND,
            burn_end,
            rule_key="KubeAPIErrorBudgetBurn/critical/2m",
            for_seconds=120,
            entity=api,
        )
    )
    if rng.random() < 0.5:
        specs.append(
            alerts.spec(
                fault_id,
                "symptom",
                "KubeAPIErrorBudgetBurn",
                "critical",
                {},
                t0 + 90 * SECOND,
                (heal + rng.randrange(30, 70) * MINUTE) if heal else None,
                rule_key="KubeAPIErrorBudgetBurn/critical/15m",
                for_seconds=900,
                entity=api,
            )
        )
    specs.append(
        alerts.spec(
            fault_id,
            "symptom",
            "KubeAPITerminatedRequests",
            "warning",
            {},
            t0 + 30 * SECOND,
            (heal + rng.randrange(1, 5) * MINUTE) if heal else None,
            entity=api,
        )
    )
    specs.append(
        alerts.spec(
            fault_id,
            "symptom",
            "KubeStateMetricsListErrors",
            "critical",
            {},
            t0 + 30 * SECOND,
            heal,
            entity=world.entity("deployment", "monitoring", "kube-state-metrics"),
        )
    )
    if heal:
        storm.traps.append("burn_rate_lags_after_heal")
    near = [world.entity("pod", "kube-system", f"etcd-{node}") for node in world.cp_nodes]
    near += [api] + [world.entity("node", node) for node in world.cp_nodes]
    detail = {"members": len(world.cp_nodes), "lost": lost}
    return storm.record_fault(
        fault_id, "etcd_quorum", etcd, [etcd], near, True, t0, heal, specs, detail=detail
    )


def pick_deployment(storm: Storm, min_replicas: int = 1) -> Workload:
    """An application Deployment that no earlier fault touches."""
    world, reserved = storm.world, storm.reserved
    candidates = [
        workload
        for key, workload in sorted(world.workloads.items())
        if key[0] == "Deployment"
        and workload.namespace in world.app_namespaces
        and key not in reserved.workloads
        and workload.replicas >= min_replicas
        and not any(
            world.pods[(workload.namespace, pod)].node in reserved.down_nodes for pod in workload.pods
        )
        and (workload.service is None or (workload.namespace, workload.service) not in reserved.services)
    ]
    if not candidates:
        raise Conflict("no deployment")
    return storm.rng.choice(candidates)


def bad_rollout(
    storm: Storm, fault_id: str, t0: int, workload: Workload | None = None, on_node: str | None = None
) -> Fault:
    """A Deployment rolls out a ReplicaSet whose pods crash-loop; the rollout gets stuck. With `on_node`, the
    first new pod lands on that (healthy) node."""
    world, alerts, rng, reserved = storm.world, storm.alerts, storm.rng, storm.reserved
    if "dns" in reserved.subsystems:
        raise Conflict("dns")
    workload = workload or pick_deployment(storm)
    namespace = workload.namespace
    surge = max(1, math.ceil(0.25 * workload.replicas))
    unavailable = math.floor(0.25 * workload.replicas)
    pool = [node for node in world.workers if node not in reserved.down_nodes]
    nodes = world.place(surge, pool)
    if on_node:
        nodes[0] = on_node
    replicaset = world.add_new_replicaset(workload, surge, nodes)
    new_pods = workload.replicaset_pods[replicaset]
    reserved.workloads.add(("Deployment", namespace, workload.name))
    for pod_name in workload.pods + new_pods:
        reserved.pods.add((namespace, pod_name))
    if workload.service:
        reserved.services.add((namespace, workload.service))
    reserved.busy_nodes |= set(nodes)
    heal = t0 + rng.randrange(28, 50) * MINUTE if rng.random() < 0.5 else None
    entity = world.entity("deployment", namespace, workload.name)
    specs = []
    for pod_name in new_pods:
        pod = world.pods[(namespace, pod_name)]
        pod_entity = world.entity("pod", namespace, pod_name)
        crash_loop = _crash_loop_labels(namespace, pod_name, workload.container, pod.uid)
        specs.append(
            alerts.spec(
                fault_id,
                "symptom",
                "KubePodCrashLooping",
                "warning",
                alerts.ksm_labels(crash_loop, own_container=True),
                t0 + rng.randrange(40, 120) * SECOND,
                heal,
                entity=pod_entity,
            )
        )
        specs.append(
            alerts.spec(
                fault_id,
                "symptom",
                "KubePodNotReady",
                "warning",
                _pod_not_ready_labels(namespace, pod_name),
                t0 + 10 * SECOND,
                heal,
                entity=pod_entity,
            )
        )
    progressing = {
        "namespace": namespace,
        "deployment": workload.name,
        "condition": "Progressing",
        "status": "false",
        "reason": "ProgressDeadlineExceeded",
    }
    specs.append(
        alerts.spec(
            fault_id,
            "root",
            "KubeDeploymentRolloutStuck",
            "warning",
            alerts.ksm_labels(progressing),
            t0 + 600 * SECOND,
            heal,
            entity=entity,
        )
    )
    if unavailable >= 1:
        replicas = alerts.ksm_labels({"namespace": namespace, "deployment": workload.name})
        specs.append(
            alerts.spec(
                fault_id,
                "root",
                "KubeDeploymentReplicasMismatch",
                "warning",
                replicas,
                t0 + 600 * SECOND,
                heal,
                entity=entity,
            )
        )
    if workload.service and rng.random() < 0.6:
        service = world.services[(namespace, workload.service)]
        start = t0 + rng.randrange(30, 150) * SECOND
        end = (heal + 60 * SECOND) if heal and rng.random() < 0.5 else t0 + rng.randrange(8, 20) * MINUTE
        specs.append(alerts.app_alert(fault_id, service, start, end))
    near = [world.entity("replicaset", namespace, rs) for rs in workload.replicasets]
    near += [world.entity("pod", namespace, pod) for pod in new_pods]
    if workload.service:
        near.append(world.entity("service", namespace, workload.service))
    detail = {
        "deployment": f"{namespace}/{workload.name}",
        "new_rs": replicaset,
        "new_pods": len(new_pods),
        "nodes": nodes,
    }
    return storm.record_fault(
        fault_id, "bad_rollout", entity, [entity], near, True, t0, heal, specs, detail=detail
    )


def pvc_full(storm: Storm, fault_id: str, t0: int) -> Fault:
    """A StatefulSet's volume fills up; the kubelet's alert carries the mounting `node`; the database pod
    crash-loops."""
    world, alerts, rng, reserved = storm.world, storm.alerts, storm.rng, storm.reserved
    candidates = [
        claim
        for _, claim in sorted(world.claims.items())
        if ("StatefulSet", claim.namespace, claim.pod.rsplit("-", 1)[0]) not in reserved.workloads
        and world.pods[(claim.namespace, claim.pod)].node not in reserved.down_nodes
    ]
    if "dns" in reserved.subsystems:
        candidates = [claim for claim in candidates if claim.namespace == "monitoring"]
    if not candidates:
        raise Conflict("no pvc")
    claim = rng.choice(candidates)
    namespace = claim.namespace
    pod = world.pods[(namespace, claim.pod)]
    workload = world.workload_of(pod)
    assert workload is not None  # a claim's pod belongs to its StatefulSet
    node = pod.node
    reserved.workloads.add(pod.workload)
    reserved.pods |= {(namespace, name) for name in workload.pods}
    if workload.service:
        reserved.services.add((namespace, workload.service))
    reserved.busy_nodes.add(node)
    heal = t0 + rng.randrange(20, 50) * MINUTE if rng.random() < 0.4 else None
    entity = world.entity("pvc", namespace, claim.name)
    volume = {"namespace": namespace, "persistentvolumeclaim": claim.name}
    specs = [
        alerts.spec(
            fault_id,
            "root",
            "KubePersistentVolumeFillingUp",
            "critical",
            alerts.kubelet_labels(node, volume),
            t0,
            heal,
            entity=entity,
        )
    ]
    if rng.random() < 0.5:
        specs.append(
            alerts.spec(
                fault_id,
                "root",
                "KubePersistentVolumeFillingUp",
                "warning",
                alerts.kubelet_labels(node, volume),
                t0 - rng.randrange(70, 200) * MINUTE,
                heal,
                entity=entity,
            )
        )
    pod_entity = world.entity("pod", namespace, pod.name)
    if namespace != "monitoring" or rng.random() < 0.5:
        crash_loop = _crash_loop_labels(namespace, pod.name, workload.container, pod.uid)
        specs.append(
            alerts.spec(
                fault_id,
                "symptom",
                "KubePodCrashLooping",
                "warning",
                alerts.ksm_labels(crash_loop, own_container=True),
                t0 + rng.randrange(60, 180) * SECOND,
                heal,
                entity=pod_entity,
            )
        )
        specs.append(
            alerts.spec(
                fault_id,
                "symptom",
                "KubePodNotReady",
                "warning",
                _pod_not_ready_labels(namespace, pod.name),
                t0 + 60 * SECOND,
                heal,
                entity=pod_entity,
            )
        )
        specs.append(
            alerts.spec(
                fault_id,
                "symptom",
                "KubeStatefulSetReplicasMismatch",
                "warning",
                alerts.ksm_labels({"namespace": namespace, "statefulset": workload.name}),
                t0 + 70 * SECOND,
                heal,
                entity=world.entity("statefulset", namespace, workload.name),
            )
        )
    if namespace in world.app_namespaces and workload.service:
        service = world.services[(namespace, workload.service)]
        start = t0 + rng.randrange(20, 120) * SECOND
        specs.append(alerts.app_alert(fault_id, service, start, (heal + 60 * SECOND) if heal else None))
    storm.traps.append("pvc_alert_carries_node")
    near = [
        world.entity("pv", claim.volume_name),
        pod_entity,
        world.entity("statefulset", namespace, workload.name),
    ]
    detail = {"pvc": f"{namespace}/{claim.name}", "node": node}
    return storm.record_fault(
        fault_id, "pvc_full", entity, [entity], near, True, t0, heal, specs, detail=detail
    )


def crashloop_brief(storm: Storm, fault_id: str, t0: int) -> Fault:
    """One pod of a Deployment crash-loops for a few minutes past the rule's 15 min `for`, then recovers; must
    not page."""
    world, alerts, rng, reserved = storm.world, storm.alerts, storm.rng, storm.reserved
    workload = pick_deployment(storm, min_replicas=2)
    namespace = workload.namespace
    pods = [name for name in workload.pods if world.pods[(namespace, name)].node not in reserved.down_nodes]
    pod_name = rng.choice(pods)
    pod = world.pods[(namespace, pod_name)]
    reserved.workloads.add(("Deployment", namespace, workload.name))
    reserved.pods |= {(namespace, name) for name in workload.pods}
    if workload.service:
        reserved.services.add((namespace, workload.service))
    reserved.busy_nodes.add(pod.node)
    duration = 17 * MINUTE + rng.randrange(0, 150) * SECOND
    pod_entity = world.entity("pod", namespace, pod_name)
    crash_loop = _crash_loop_labels(namespace, pod_name, workload.container, pod.uid)
    specs = [
        alerts.spec(
            fault_id,
            "root",
            "KubePodCrashLooping",
            "warning",
            alerts.ksm_labels(crash_loop, own_container=True),
            t0 + 40 * SECOND,
            t0 + duration,
            entity=pod_entity,
        )
    ]
    if rng.random() < 0.5:
        specs.append(
            alerts.spec(
                fault_id,
                "root",
                "KubePodNotReady",
                "warning",
                _pod_not_ready_labels(namespace, pod_name),
                t0 + 20 * SECOND,
                t0 + duration + 10 * SECOND,
                entity=pod_entity,
            )
        )
    accept = [pod_entity, world.entity("deployment", namespace, workload.name)]
    detail = {"pod": f"{namespace}/{pod_name}"}
    return storm.record_fault(
        fault_id, "crashloop_brief", pod_entity, accept, [], False, t0, t0 + duration, specs, detail=detail
    )
