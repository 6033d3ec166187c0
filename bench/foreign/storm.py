"""One storm under construction: its cluster, its faults, and the reservations that keep simultaneous faults
apart, so that no fault's alerts can be explained by another fault."""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from alerts import APP_ALERT_EXPR, AlertMaker, AlertSpec
from clock import DAY, EPOCH, SECOND
from world import Service, WorkloadKey, World

# Storms happen on a day of 2026.
YEAR_START_MS = int((datetime(2026, 1, 1, tzinfo=UTC) - EPOCH).total_seconds() * 1000)


class Conflict(Exception):
    """The storm's draws cannot be realised (no free node, a fault would explain another's alerts, ...);
    the storm is drawn again."""


@dataclass
class Fault:
    """A fault the scorer judges pages against, with the alert conditions it raises."""

    id: str
    kind: str
    root: str  # the entity a correct page names
    accept_roots: list[str]  # every entity a correct page may name
    near_roots: list[str]  # entities that are close to the root but wrong
    must_page: bool
    start: int
    heal: int | None
    specs: list[AlertSpec]
    detail: dict[str, Any]
    # whether it raises application alerts, which other faults must not be able to explain
    emits_app_alerts: bool


@dataclass
class Reservations:
    """What the faults so far have taken; a later fault must not touch any of it."""

    down_nodes: set[str] = field(default_factory=set)
    busy_nodes: set[str] = field(default_factory=set)  # down, or hosting a failing workload
    pods: set[tuple[str, str]] = field(default_factory=set)
    services: set[tuple[str, str]] = field(default_factory=set)
    workloads: set[WorkloadKey] = field(default_factory=set)
    subsystems: set[str] = field(default_factory=set)  # "dns", "etcd"


class Storm:
    """A cluster, its faults with their alert conditions, the noise, and the traps laid for the engine."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.world = World(rng)
        self.alerts = AlertMaker(self.world, rng)
        self.eval_offset = rng.randrange(0, 30 * SECOND)  # where Prometheus' 30 s evaluation grid sits
        self.reserved = Reservations()
        self.faults: list[Fault] = []
        self.noise: list[AlertSpec] = []
        self.traps: list[str] = []
        day = rng.randrange(0, 360)
        self.start = YEAR_START_MS + day * DAY + rng.randrange(0, 24 * 3600) * SECOND + rng.randrange(0, 1000)

    def node_footprint(
        self, node: str
    ) -> tuple[set[tuple[str, str]], set[WorkloadKey], set[tuple[str, str]]]:
        """The pods, workloads and services a node's failure touches."""
        world = self.world
        pods = {(pod.namespace, pod.name) for pod in world.pods_on(node)}
        workloads = {pod.workload for pod in world.pods_on(node)}
        services = {
            (service.namespace, service.name)
            for service in world.services.values()
            if any(world.pods[(service.namespace, name)].node == node for name in service.pods)
            or any(target_node == node for _, target_node in service.ip_targets)
        }
        return pods, workloads, services

    def node_free(self, node: str) -> bool:
        """Whether the node may fail without touching what earlier faults reserved."""
        reserved = self.reserved
        if node in reserved.busy_nodes or node in reserved.down_nodes or "dns" in reserved.subsystems:
            return False
        pods, workloads, services = self.node_footprint(node)
        return not (pods & reserved.pods or workloads & reserved.workloads or services & reserved.services)

    def reserve_node(self, node: str, with_daemonsets: bool = True) -> None:
        """Take a failing node and what it touches; without its DaemonSets (and their services) when the fault
        leaves the node's agents running."""
        reserved = self.reserved
        pods, workloads, services = self.node_footprint(node)
        reserved.down_nodes.add(node)
        reserved.busy_nodes.add(node)
        reserved.pods |= pods
        reserved.workloads |= {key for key in workloads if with_daemonsets or key[0] != "DaemonSet"}
        if with_daemonsets:
            reserved.services |= services
        else:
            per_node = {("kube-system", "kubelet"), ("monitoring", "node-exporter")}
            reserved.services |= services - per_node
        if node in self.world.cp_nodes:
            reserved.subsystems.add("etcd")

    def app_services(self) -> list[Service]:
        """The application services that have pods, in a fixed order."""
        world = self.world
        return [
            service
            for (namespace, _), service in sorted(world.services.items())
            if namespace in world.app_namespaces and service.pods
        ]

    def record_fault(
        self,
        fault_id: str,
        kind: str,
        root: str,
        accept_roots: list[str],
        near_roots: list[str],
        must_page: bool,
        start: int,
        heal: int | None,
        specs: list[AlertSpec],
        detail: dict[str, Any] | None = None,
    ) -> Fault:
        """Add a fault to the storm; whether it raises application alerts is read off its alerts."""
        emits_app_alerts = any(spec.expr == APP_ALERT_EXPR for spec in specs)
        fault = Fault(
            fault_id,
            kind,
            root,
            accept_roots,
            near_roots,
            must_page,
            start,
            heal,
            specs,
            detail or {},
            emits_app_alerts,
        )
        self.faults.append(fault)
        return fault
