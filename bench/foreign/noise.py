"""Alerts that fire in a healthy cluster and must never page: Watchdog, a managed control plane's absent
scheduler and controller manager, CPU throttling, a stale burn-rate alert, overcommit, a full kubelet and a
target that has been down for days."""

from alerts import AlertSpec
from clock import DAY, MINUTE
from storm import Storm


def noise_specs(storm: Storm) -> list[AlertSpec]:
    """The storm's noise; draws after its faults, and avoids what they reserved."""
    world, alerts, rng, reserved = storm.world, storm.alerts, storm.rng, storm.reserved
    t0 = storm.start
    specs = []
    if rng.random() < 0.95:
        specs.append(
            alerts.spec(
                "noise",
                "noise",
                "Watchdog",
                "none",
                {},
                t0 - rng.randrange(2, 90) * DAY,
                None,
                for_seconds=0,
                entity=world.entity("pipeline", "alerting-pipeline"),
            )
        )
    if not world.self_hosted and rng.random() < 0.6:
        storm.traps.append("managed_control_plane_absent_alerts")
        for alertname, job in [
            ("KubeSchedulerDown", "kube-scheduler"),
            ("KubeControllerManagerDown", "kube-controller-manager"),
        ]:
            start = t0 - rng.randrange(1, 30) * DAY
            specs.append(alerts.spec("noise", "noise", alertname, "critical", {"job": job}, start, None))
    quiet_pods = [
        pod
        for key, pod in sorted(world.pods.items())
        if key not in reserved.pods
        and pod.node not in reserved.busy_nodes
        and pod.owner_kind in ("ReplicaSet", "StatefulSet")
    ]
    for pod in rng.sample(quiet_pods, min(len(quiet_pods), rng.choice([0, 1, 2, 3, 4]))):
        start = t0 + rng.randrange(-180, 60) * MINUTE
        end = start + rng.randrange(20, 200) * MINUTE if rng.random() < 0.5 else None
        labels = {
            "namespace": pod.namespace,
            "pod": pod.name,
            "container": pod.containers[0],
            "instance": f"{world.nodes[pod.node].ip}:10250",
            "service": "kubelet",
        }
        entity = world.entity("pod", pod.namespace, pod.name)
        specs.append(
            alerts.spec("noise", "noise", "CPUThrottlingHigh", "info", labels, start, end, entity=entity)
        )
    if "etcd" not in reserved.subsystems and rng.random() < 0.25:
        storm.traps.append("stale_error_budget_burn")
        start = t0 - rng.randrange(60, 300) * MINUTE
        end = t0 + rng.randrange(5, 60) * MINUTE if rng.random() < 0.5 else None
        specs.append(
            alerts.spec(
                "noise",
                "noise",
                "KubeAPIErrorBudgetBurn",
                "warning",
                {},
                start,
                end,
                rule_key="KubeAPIErrorBudgetBurn/warning/3h",
                for_seconds=0,
                entity=world.entity("apiserver", "kube-apiserver"),
            )
        )
    if rng.random() < 0.2:
        for alertname in rng.sample(["KubeCPUOvercommit", "KubeMemoryOvercommit"], rng.choice([1, 2])):
            start = t0 - rng.randrange(60, 2000) * MINUTE
            specs.append(alerts.spec("noise", "noise", alertname, "warning", {}, start, None, for_seconds=0))
    quiet_nodes = [node for node in world.workers if node not in reserved.busy_nodes]
    if quiet_nodes and rng.random() < 0.1:
        node = rng.choice(quiet_nodes)
        specs.append(
            alerts.spec(
                "noise",
                "noise",
                "KubeletTooManyPods",
                "info",
                alerts.kubelet_labels(node, {}),
                t0 - rng.randrange(10, 300) * MINUTE,
                None,
                for_seconds=0,
                entity=world.entity("node", node),
            )
        )
    if rng.random() < 0.15:
        storm.traps.append("permanent_target_down")
        labels = {"job": "blackbox-exporter", "namespace": "monitoring", "service": "blackbox-exporter"}
        start = t0 - rng.randrange(60, 3000) * MINUTE
        specs.append(
            alerts.spec("noise", "noise", "TargetDown", "warning", labels, start, None, for_seconds=0)
        )
    return specs
