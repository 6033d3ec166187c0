"""Randomised worlds: a cluster, one or two faults, background noise, the Alertmanager stream that
carries them, and the ground truth to score a correlation engine against (docs/worlds.md).

    world = generate_world(42)
    paths = world.write("/tmp/world-42")   # cluster.prom [topology.yaml] alerts.jsonl truth.json
    # alert-router replay --topology /tmp/world-42/cluster.prom --alerts /tmp/world-42/alerts.jsonl

A world is a pure function of an integer seed (one `random.Random`, no clock, no global random
state): same seed, same bytes. It is built in this order:

1. a random cluster (router/sim/cluster.py), written as a kube-state-metrics dump and, in some
   worlds, a topology file of service-to-service `depends_on` edges;
2. one fault, or two unrelated ones overlapping in time (router/sim/faults.py): node down, zone
   down, node blip, cluster DNS down, bad rollout, full volume, full node disk, etcd quorum loss,
   transient trouble; each with its root entity, whether it must page, and its alerts split
   into alerts on the root and symptoms. Application faults behind a Service
   (`service_fault`: errors its callers see, its own alert only half the time, often started by
   a recorded change the topology file lists) are drawn only when asked for by kind;
3. Prometheus' evaluation jitter: every fire and resolve time moves by 0-60 s, so that a cause
   and its symptoms land in different Alertmanager flushes, in random orders;
4. background noise that must never page: the Watchdog on its own heartbeat route, the
   CPUThrottlingHigh (info) of a few pods, the InfoInhibitor alerts that follow from them
   (computed from every alert of the world, as the rule does), and on managed control planes
   KubeSchedulerDown / KubeControllerManagerDown firing since long before the recording;
5. delivery through router/sim/storm.py's Alertmanager simulator with kube-prometheus routing
   (group_by namespace, group_wait 30s, group_interval 5m, repeat 12h) and an HA pair whose
   replicas both deliver, 15 s apart: the recorded stream of docs/contracts.md. With
   `routing="varied"` the same world is delivered as another team's Alertmanager would deliver
   it: grouping, group_wait, group_interval and the HA setup drawn from what configurations in
   the wild use (`GROUP_BY`, `GROUP_WAITS`, `GROUP_INTERVALS`, `HA_SETUPS`), from a generator
   of its own, so that the faults, the cluster and the alerts stay those of the kube-prometheus
   world of the same seed.

The ground truth (`World.truth()`, truth.json) lists every fault (id, kind, root entity,
must_page, start, heal, summary) with the fingerprints of its alerts and their role, and the
fingerprints of the noise; fingerprints are Alertmanager's (router/storm.fingerprint).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

from ground.times import format_time
from router.sim import faults as wf
from router.sim.cluster import ClusterWorld, build_cluster
from router.sim.faults import DEFAULT_KINDS, KINDS, WEIGHTS, Ctx, Fault, minutes
from router.sim.storm import AlertmanagerConfig, AlertSpec, fingerprint, heartbeat_route, simulate, to_jsonl

BASE = datetime(2026, 10, 5, tzinfo=UTC)
JITTER_MS = 60_000  # Prometheus evaluation (30s) + resend: an alert reaches Alertmanager 0-60 s late
TWO_FAULTS = 0.3  # share of worlds with two unrelated faults at once
HEARTBEATS = (timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=5))
ROUTING = ("kube-prometheus", "varied")
# What `routing="varied"` draws from, each independently. group_by: kube-prometheus' namespace;
# Alertmanager's example configuration (alertname, cluster, service); by alert name; alert name
# per namespace; one group for everything; "..." (no grouping: every alert its own group).
GROUP_BY = (
    ("namespace",),
    ("alertname", "cluster", "service"),
    ("alertname",),
    ("alertname", "namespace"),
    (),
    ("...",),
)
GROUP_WAITS = (timedelta(seconds=10), timedelta(seconds=30), timedelta(minutes=1))
GROUP_INTERVALS = (timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=5))
# (replicas, dedup, delivery latency): a single Alertmanager; an HA pair that both deliver; a
# gossiping trio whose receiver answers slowly (20 s, more than the 15 s a peer waits), so the
# second replica delivers too and the third does not.
HA_SETUPS = ((1, False, 0), (2, False, 0), (3, True, 20))
QUIET_SEVERITIES = ("info", "none")


@dataclass
class World:
    """One generated world; `truth()` and the files of `write()` are what a scorer needs."""

    seed: int
    cluster: ClusterWorld
    faults: list[Fault]
    noise: list[AlertSpec]
    start: datetime
    end: datetime
    heartbeat: timedelta
    lines: list[dict] = field(repr=False)
    alertmanager: AlertmanagerConfig = field(default_factory=AlertmanagerConfig, repr=False)

    @cached_property
    def stream_text(self) -> str:
        return to_jsonl(self.lines)

    @cached_property
    def ksm_text(self) -> str:
        return self.cluster.ksm_text()

    @cached_property
    def topology_yaml(self) -> str | None:
        return self.cluster.topology_yaml([f.change for f in self.faults if f.change])

    def alerts(self) -> list[AlertSpec]:
        return [spec for fault in self.faults for _, spec in fault.alerts()] + list(self.noise)

    def truth(self) -> dict:
        """The ground truth as plain data (truth.json)."""
        c = self.cluster
        return {
            "seed": self.seed,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "cluster": {
                "name": c.name,
                "platform": c.platform,
                "managed": c.managed,
                "zones": {zone: len(nodes) for zone, nodes in c.zones.items()},
                "nodes": len(c.nodes),
                "pods": sum(len(pods) for pods in c.pods_by_node.values()),
                "topology_file": self.topology_yaml is not None,
                "heartbeat": f"{int(self.heartbeat.total_seconds())}s",
            },
            "faults": [
                {
                    "id": fault.id,
                    "kind": fault.kind,
                    "root": fault.root,
                    "must_page": fault.must_page,
                    "start": format_time(fault.start),
                    "heal": format_time(fault.heal) if fault.heal else None,
                    "summary": fault.summary,
                    **({"change": fault.change} if fault.change else {}),
                    "alerts": [_alert_row(spec, role) for role, spec in fault.alerts()],
                }
                for fault in self.faults
            ],
            "noise": [_alert_row(spec, "noise") for spec in self.noise],
            "alertmanager": _routing_row(self.alertmanager),
        }

    @cached_property
    def truth_text(self) -> str:
        return json.dumps(self.truth(), indent=1, ensure_ascii=False) + "\n"

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write the world's files; returns them by role (`cluster`, `topology`, `alerts`, `truth`)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"cluster": out / "cluster.prom", "alerts": out / "alerts.jsonl", "truth": out / "truth.json"}
        paths["cluster"].write_text(self.ksm_text, encoding="utf-8")
        if self.topology_yaml is not None:
            paths["topology"] = out / "topology.yaml"
            paths["topology"].write_text(self.topology_yaml, encoding="utf-8")
        paths["alerts"].write_text(self.stream_text, encoding="utf-8")
        paths["truth"].write_text(self.truth_text, encoding="utf-8")
        return paths

    def topology_paths(self, paths: dict[str, Path]) -> list[Path]:
        return [paths[k] for k in ("cluster", "topology") if k in paths]


def _alert_row(spec: AlertSpec, role: str) -> dict:
    return {
        "fingerprint": fingerprint(spec.labels),
        "alertname": spec.labels["alertname"],
        "role": role,
        "labels": dict(sorted(spec.labels.items())),
        "starts_at": format_time(spec.reported_start),
        "fires_at": format_time(spec.fires_at),
        "resolves_at": format_time(spec.resolves_at) if spec.resolves_at else None,
    }


# --- faults --------------------------------------------------------------------------------------


def _draw_kind(rng: random.Random, kinds: Sequence[str]) -> str:
    weights = [WEIGHTS[k] for k in kinds]
    return rng.choices(list(kinds), weights=weights)[0]


def _unrelated(fault: Fault, others: Iterable[Fault]) -> bool:
    """Two faults of one world share no entity, no alert and no root."""
    return all(
        not (fault.touched & o.touched)
        and not (fault.fingerprints() & o.fingerprints())
        and fault.root != o.root
        for o in others
    )


def _pick_faults(ctx: Ctx, kinds: Sequence[str], start: datetime) -> list[Fault]:
    rng = ctx.rng
    count = 2 if rng.random() < TWO_FAULTS else 1
    first_t0 = start + minutes(ctx.uniform(5, 15))
    faults: list[Fault] = []
    for index in range(count):
        t0 = first_t0
        if faults:  # the second begins while the first is still on: 0-12 minutes later
            first = faults[0]
            window = min(12.0, 0.8 * (first.heal - first.start).total_seconds() / 60) if first.heal else 12.0
            t0 = first_t0 + minutes(ctx.uniform(0, window))
        for _ in range(12):
            fault = wf.BUILDERS[_draw_kind(rng, kinds)](ctx, t0)
            if fault is not None and _unrelated(fault, faults):
                fault.id = f"f{index + 1}"
                faults.append(fault)
                break
    return faults


def _jitter(rng: random.Random, spec: AlertSpec) -> AlertSpec:
    """Prometheus evaluates every 30s and re-sends: fire and resolve reach Alertmanager 0-60 s late."""
    fires = spec.fires_at + timedelta(milliseconds=rng.randrange(JITTER_MS))
    resolves = spec.resolves_at
    if resolves is not None:
        resolves = max(
            resolves + timedelta(milliseconds=rng.randrange(JITTER_MS)), fires + timedelta(seconds=30)
        )
    starts = spec.starts_at if spec.starts_at is not None and spec.starts_at < spec.fires_at else None
    return AlertSpec(spec.labels, fires, resolves, spec.annotations, starts, spec.generator_url)


def _apply_jitter(rng: random.Random, faults: list[Fault]) -> None:
    for fault in faults:
        fault.root_alerts = [_jitter(rng, s) for s in fault.root_alerts]
        fault.symptoms = [_jitter(rng, s) for s in fault.symptoms]


# --- noise ---------------------------------------------------------------------------------------


def _long_ago(ctx: Ctx, start: datetime, low_hours: float, high_hours: float) -> datetime:
    return start - timedelta(seconds=round(ctx.rng.uniform(low_hours, high_hours) * 3600))


def _noise(ctx: Ctx, start: datetime, end: datetime, faults: list[Fault]) -> list[AlertSpec]:
    """Watchdog, CPUThrottlingHigh of a few pods and, on managed control planes, the absent()
    alerts of the scheduler and controller manager, which are never scraped there (reference
    §(c).5; EKS, GKE, AKS)."""
    c = ctx.c
    out: list[AlertSpec] = [
        AlertSpec(
            dict(ctx.base) | {"alertname": "Watchdog", "severity": "none"},
            start,
            None,
            wf.sc.render_annotations("Watchdog", {}),
            _long_ago(ctx, start, 2, 72),
        )
    ]
    if c.managed:
        for job, name in (
            ("kube-scheduler", "KubeSchedulerDown"),
            ("kube-controller-manager", "KubeControllerManagerDown"),
        ):
            labels = {**ctx.base, "alertname": name, "job": job, "severity": "critical"}
            summary = f"Target disappeared from Prometheus target discovery ({job})."
            out.append(
                AlertSpec(labels, start, None, {"summary": summary}, _long_ago(ctx, start, 24, 24 * 30))
            )
    touched = set().union(*(f.touched for f in faults)) if faults else set()
    pods = [
        p
        for w in c.app_workloads("Deployment")
        if f"workload:{w.namespace}/{w.name}" not in touched
        for p in w.pods
    ]
    if not pods:  # a DNS outage touches every workload: throttling is noise all the same
        pods = [p for w in c.app_workloads("Deployment") for p in w.pods]
    for pod in ctx.rng.sample(pods, min(len(pods), ctx.rng.randint(1, 4))):
        labels = {
            **ctx.base,
            "alertname": "CPUThrottlingHigh",
            "severity": "info",
            "namespace": pod.namespace,
            "pod": pod.name,
            "container": pod.container,
            "instance": f"{c.nodes[pod.node].ip}:10250",
            "service": "kubelet",
        }
        annotations = {
            "summary": "Processes experience elevated CPU throttling.",
            "description": f"{ctx.rng.randint(26, 80)}% throttling of CPU in namespace {pod.namespace} "
            f"for container {pod.container} in pod {pod.name}.",
        }
        span = (end - start).total_seconds() / 60
        if ctx.rng.random() < 0.6:  # throttled since before the recording
            resolves = start + minutes(ctx.uniform(10, span)) if ctx.rng.random() < 0.4 else None
            out.append(AlertSpec(labels, start, resolves, annotations, _long_ago(ctx, start, 1, 10)))
        else:
            fires = start + minutes(ctx.uniform(1, max(2, span - 20)))
            resolves = fires + minutes(ctx.uniform(20, 60))
            out.append(AlertSpec(labels, fires, resolves if resolves < end else None, annotations))
    return out


def _intervals(specs: Iterable[AlertSpec], end: datetime) -> list[tuple[datetime, datetime]]:
    """Union of the firing spans of some alerts, sorted."""
    spans = sorted((s.fires_at, s.resolves_at or end) for s in specs)
    merged: list[tuple[datetime, datetime]] = []
    for begin, finish in spans:
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((begin, finish))
    return merged


def _subtract(
    spans: list[tuple[datetime, datetime]], holes: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    out = []
    for begin, finish in spans:
        cursor = begin
        for hole_begin, hole_end in holes:
            if hole_end <= cursor or hole_begin >= finish:
                continue
            if hole_begin > cursor:
                out.append((cursor, hole_begin))
            cursor = max(cursor, hole_end)
        if cursor < finish:
            out.append((cursor, finish))
    return out


def info_inhibitors(ctx: Ctx, specs: Sequence[AlertSpec], start: datetime, end: datetime) -> list[AlertSpec]:
    """InfoInhibitor (severity none) per namespace while an info alert fires there and no
    warning/critical one does: the kube-prometheus rule `group by (namespace) (ALERTS{severity =
    "info"} == 1) unless on (namespace) group by (namespace) (ALERTS{alertname != "InfoInhibitor",
    alertstate = "firing", severity =~ "warning|critical"} == 1)`. Alerts without a namespace
    make one without a namespace label."""
    by_namespace: dict[str, tuple[list[AlertSpec], list[AlertSpec]]] = {}
    for spec in specs:
        namespace = spec.labels.get("namespace", "")
        infos, loud = by_namespace.setdefault(namespace, ([], []))
        severity = spec.labels.get("severity")
        if severity == "info":
            infos.append(spec)
        elif severity in ("warning", "critical"):
            loud.append(spec)
    out: list[AlertSpec] = []
    for namespace, (infos, loud) in sorted(by_namespace.items()):
        if not infos:
            continue
        for begin, finish in _subtract(_intervals(infos, end), _intervals(loud, end)):
            if finish - begin < timedelta(seconds=30):
                continue  # shorter than an evaluation interval: never seen
            labels = {**ctx.base, "alertname": "InfoInhibitor", "severity": "none"}
            if namespace:
                labels["namespace"] = namespace
            earliest = min(s.reported_start for s in infos)
            starts = earliest if begin == start and earliest < start else None
            annotations = {"summary": "Info-level alert inhibition."}
            out.append(AlertSpec(labels, begin, finish if finish < end else None, annotations, starts))
    return out


# --- the world -----------------------------------------------------------------------------------


def generate_world(seed: int, kinds: Sequence[str] | None = None, routing: str = "kube-prometheus") -> World:
    """The world of `seed`; `kinds` restricts the fault kinds drawn (default: all of them);
    `routing` is how Alertmanager delivers it (`ROUTING`).

    A cluster in which none of the requested kinds fits (an etcd loss on a managed control
    plane) is redrawn from the next sub-seed, so that every world has at least one fault.
    """
    allowed = tuple(kinds) if kinds else DEFAULT_KINDS
    unknown = [k for k in allowed if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown fault kinds: {', '.join(unknown)} (known: {', '.join(KINDS)})")
    if routing not in ROUTING:
        raise ValueError(f"unknown routing {routing!r} (known: {', '.join(ROUTING)})")
    for attempt in range(64):  # a cluster with calls between Services is drawn 2 times in 5
        rng = random.Random(f"worlds/{seed}" if attempt == 0 else f"worlds/{seed}/{attempt}")
        world = _build(seed, rng, allowed, routing)
        if world is not None:
            return world
    raise ValueError(f"seed {seed}: no cluster fits the fault kinds {', '.join(allowed)}")


def _build(seed: int, rng: random.Random, kinds: Sequence[str], routing: str) -> World | None:
    cluster = build_cluster(rng)
    ctx = Ctx(cluster, rng)
    start = BASE + timedelta(minutes=rng.randrange(0, 60 * 24 * 90))
    faults = _pick_faults(ctx, kinds, start)
    if not faults:
        return None
    _apply_jitter(rng, faults)
    changes = [t for f in faults for _, s in f.alerts() for t in (s.fires_at, s.resolves_at) if t is not None]
    end = max([*changes, *(f.start + minutes(30) for f in faults)]) + minutes(15)
    noise = _noise(ctx, start, end, faults)
    fault_specs = [s for f in faults for _, s in f.alerts()]
    noise += info_inhibitors(ctx, fault_specs + noise, start, end)
    heartbeat = rng.choice(HEARTBEATS)
    config = AlertmanagerConfig(replicas=2, routes=(heartbeat_route(heartbeat),))
    if routing == "varied":
        _vary_routing(config, random.Random(f"worlds/{seed}/routing"))
    lines = simulate(fault_specs + noise, config, until=end)
    return World(seed, cluster, faults, noise, start, end, heartbeat, lines, config)


def _vary_routing(config: AlertmanagerConfig, rng: random.Random) -> None:
    """Another team's Alertmanager: its own grouping, timings and HA setup (the heartbeat route
    stays: it only carries the Watchdog)."""
    config.group_by = rng.choice(GROUP_BY)
    config.group_wait = rng.choice(GROUP_WAITS)
    config.group_interval = rng.choice(GROUP_INTERVALS)
    config.replicas, config.dedup_replicas, latency = rng.choice(HA_SETUPS)
    config.delivery_latency = timedelta(seconds=latency)


def _routing_row(config: AlertmanagerConfig) -> dict:
    return {
        "group_by": list(config.group_by),
        "group_wait": f"{int(config.group_wait.total_seconds())}s",
        "group_interval": f"{int(config.group_interval.total_seconds())}s",
        "replicas": config.replicas,
        "dedup_replicas": config.dedup_replicas,
        "delivery_latency": f"{int(config.delivery_latency.total_seconds())}s",
    }
