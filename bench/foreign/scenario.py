"""One storm from its seed: which faults happen and when, the noise around them, the alerts Prometheus fires
and what Alertmanager delivers during the recording."""

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import node_faults
import service_faults
from alertmanager import Alertmanager, Payload
from clock import HOUR, MINUTE, SECOND
from noise import noise_specs
from rule_evaluation import AlertInstance, evaluate, info_inhibitors
from storm import Conflict, Fault, Storm

# The main fault's kind and its weight; "quiet" storms have only faults that must not page.
KINDS = [
    ("node_down", 18),
    ("zone_down", 10),
    ("coredns_crash", 8),
    ("dns_upstream", 5),
    ("etcd_quorum", 7),
    ("bad_rollout", 12),
    ("pvc_full", 9),
    ("node_disk", 6),
    ("node_memory", 5),
    ("shared_node_rollouts", 6),
    ("quiet", 8),
]
# A second, unrelated fault is drawn from these.
SECOND_KINDS = [(kind, weight) for kind, weight in KINDS if kind not in ("quiet", "shared_node_rollouts")]
ATTEMPTS = 40

FaultModel = Callable[[Storm, str, int], Fault]
FAULT_MODELS: dict[str, FaultModel] = {
    "node_down": node_faults.node_down,
    "zone_down": node_faults.zone_down,
    "coredns_crash": service_faults.coredns,
    "dns_upstream": partial(service_faults.coredns, upstream=True),
    "etcd_quorum": service_faults.etcd_quorum,
    "bad_rollout": service_faults.bad_rollout,
    "pvc_full": service_faults.pvc_full,
    "node_disk": partial(node_faults.node_pressure, resource="disk"),
    "node_memory": partial(node_faults.node_pressure, resource="memory"),
    "node_blip": node_faults.node_blip,
    "crashloop_brief": service_faults.crashloop_brief,
}


@dataclass
class Recording:
    """A built storm and what the webhook received from `start` to `end` (ms)."""

    storm: Storm
    alertmanager: Alertmanager
    alerts: list[AlertInstance]
    deliveries: list[tuple[int, Payload]]
    start: int
    end: int


def add_fault(storm: Storm, kind: str, fault_id: str, t0: int) -> list[Fault]:
    """Faults of one kind; "shared_node_rollouts" is two bad rollouts whose crashing pods share a healthy
    node."""
    if kind != "shared_node_rollouts":
        return [FAULT_MODELS[kind](storm, fault_id, t0)]
    rng = storm.rng
    shared = rng.choice([node for node in storm.world.workers if node not in storm.reserved.down_nodes])
    first = service_faults.bad_rollout(storm, fault_id, t0, on_node=shared)
    second_t0 = t0 + rng.randrange(0, 12) * MINUTE
    second_workload = service_faults.pick_deployment(storm)
    second = service_faults.bad_rollout(
        storm, fault_id + "b", second_t0, workload=second_workload, on_node=shared
    )
    storm.traps.append("healthy_node_hosts_two_failing_workloads")
    first.detail["shared_node"] = shared
    second.detail["shared_node"] = shared
    return [first, second]


def build_storm(seed: str) -> Recording:
    """The storm of `seed`, redrawn (from `<seed>#<attempt>`) until its draws can be realised."""
    for attempt in range(ATTEMPTS):
        rng = random.Random(f"{seed}#{attempt}")
        try:
            return _build(rng)
        except Conflict:
            continue
    raise RuntimeError(f"could not build storm {seed}")


def _build(rng: random.Random) -> Recording:
    """One attempt: a main fault (or none), maybe an unrelated second one, maybe harmless ones, then noise;
    raises Conflict when the draws cannot be realised."""
    storm = Storm(rng)
    t0 = storm.start
    kind = rng.choices([kind for kind, _ in KINDS], weights=[weight for _, weight in KINDS])[0]
    main_t0 = t0 + rng.randrange(8, 26) * MINUTE
    number = 1
    if kind != "quiet":
        add_fault(storm, kind, f"f{number}", main_t0)
        number += 1
        if rng.random() < 0.3:
            second_kind = rng.choices(
                [kind for kind, _ in SECOND_KINDS], weights=[weight for _, weight in SECOND_KINDS]
            )[0]
            try:
                add_fault(storm, second_kind, f"f{number}", main_t0 + rng.randrange(-5, 16) * MINUTE)
                number += 1
                storm.traps.append("two_unrelated_faults")
            except Conflict:
                pass
    if kind == "quiet" or rng.random() < 0.45:
        for _ in range(1 if kind != "quiet" else rng.choice([1, 2])):
            harmless_kind = rng.choice(["node_blip", "crashloop_brief"])
            try:
                add_fault(storm, harmless_kind, f"f{number}", t0 + rng.randrange(4, 40) * MINUTE)
                number += 1
            except Conflict:
                if kind == "quiet":
                    raise
    # the recording runs until 45 min after the last fault starts or 20-35 min after the last heal, whichever
    # is later, and 2.5 h at most
    ends = [fault.start + 45 * MINUTE for fault in storm.faults]
    ends += [fault.heal + rng.randrange(20, 35) * MINUTE for fault in storm.faults if fault.heal]
    recording_end = min(max(ends), t0 + 150 * MINUTE)
    storm.noise = noise_specs(storm)
    specs = [spec for fault in storm.faults for spec in fault.specs] + storm.noise
    alerts = evaluate(specs, storm.eval_offset, rng)
    alerts += info_inhibitors(alerts, storm.world.cluster)
    for alert in alerts:
        # long-standing alerts: Alertmanager has known them for hours; its clock starts 4-5 h before the
        # recording
        if alert.arrives_at < t0 - 4 * HOUR:
            alert.arrives_at = t0 - 4 * HOUR - rng.randrange(0, 3600) * SECOND
    for fault in storm.faults:
        # a must-page fault has to produce an alert before the recording ends
        if fault.must_page and not any(
            alert.owner == fault.id and alert.arrives_at < recording_end - 5 * MINUTE for alert in alerts
        ):
            raise Conflict("silent fault")
    alertmanager = Alertmanager(rng)
    deliveries = alertmanager.run(alerts, t0, recording_end)
    if not deliveries:
        raise Conflict("nothing delivered")
    return Recording(storm, alertmanager, alerts, deliveries, t0, recording_end)
