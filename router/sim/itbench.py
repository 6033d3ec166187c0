"""A peer's suite: IBM ITBench's SRE fault scenarios on the OpenTelemetry Astronomy Shop (and
Istio's Bookinfo), turned into Alertmanager streams the engine can be scored on.

ITBench publishes, per scenario, a ground truth (`groundtruth_v1.yaml`): the entity at fault
(often a ConfigMap, a Chaos Mesh object or a NetworkPolicy that raises no alert of its own),
the entities the fault reached (`groups`), how it spread (`propagations`, source -> target), and
the alerts the scenario raises on them (OpenTelemetry span-metric alerts such as
`HighRequestErrorRate` with `service_name` and `namespace`, next to kube-prometheus' own). A
copy of the development half ships in router/sim/data/itbench/ (Apache-2.0, see its NOTICE).

From one scenario this module builds:

1. the application's topology as a user would give it: a Deployment, a ReplicaSet, a pod and a
   Service per component on a small kind-like cluster, and every service call as a `calls`
   edge (what the OpenTelemetry Collector's servicegraph connector reports, messaging
   producer -> consumer included), plus the hand-written edges to the broker and databases;
2. the alerts: each expected alert on its group's component, labelled as its source labels it
   (span metrics: `service_name` + `namespace`; kube-state-metrics: `pod`; node-exporter:
   `instance`), firing in the order the fault spreads (one hop every 20-60 s) after its
   class's own delay (span-metric rules ~2-3 min, `KubePodNotReady` 15 min,
   `KubeContainerWaiting` 1 h), with 0-60 s of evaluation jitter;
3. the noise ITBench's kind clusters show: the Watchdog, `KubeSchedulerDown` and
   `KubeControllerManagerDown` firing for days (kind binds both to localhost, out of
   Prometheus' reach), `CPUThrottlingHigh` (info) on a few pods and the `InfoInhibitor` that
   follows, all through the simulated HA pair of Alertmanagers of router/sim/storm.py.

Scoring (`score_case`): a page is *correct* when its root names a root-cause component of the
scenario: a root-cause group that is a component (a Pod, a Deployment, a Service), anything
ITBench lists as an alias of one, or, for a root cause that is not a component (a ConfigMap, a
NetworkChaos, a Secret), the components it first reached (its propagation targets, through
other non-components). Precision = correct pages / pages; recall = scenarios with a correct
page / scenarios; pages per incident = pages / scenarios. The baseline pages every alert that
is not noise once (what a router without correlation does).

Nothing here is tuned to a scenario: the topology is the application's, the alert timings are
per alert class, and the seed only moves jitter and noise.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ground.errors import InputError
from ground.times import format_time
from router.core.engine import Engine
from router.core.replay import replay
from router.core.settings import EngineSettings
from router.sim.storm import AlertmanagerConfig, AlertSpec, heartbeat_route, simulate, to_jsonl
from rules.ruleset import RuleSet
from topology.fileformat import build_topology_file
from topology.graph import Topology

DATA = Path(__file__).resolve().parent / "data" / "itbench"
GROUNDTRUTH = DATA / "groundtruth-dev.json"
CLUSTER = "kind-itbench"
BASE = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
RECORDING = timedelta(minutes=90)
NODES = ("kind-worker", "kind-worker2", "kind-worker3")

# -- the applications ---------------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    namespace: str
    # Service -> (workloads behind it, services it calls). A workload is a Deployment.
    services: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]

    def workloads(self) -> list[tuple[str, str]]:
        """(workload, its Service), in a stable order."""
        return [(w, s) for s, (ws, _) in sorted(self.services.items()) for w in ws or (s,)]


def _svc(calls: str = "", workloads: str = "") -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(workloads.split()), tuple(calls.split())


# The Astronomy Shop (opentelemetry-demo 1.x/2.x), as its traces show it: who calls whom, and
# messaging producer -> consumer through Kafka (servicegraph reports those as client -> server
# edges too). Kafka, Valkey and PostgreSQL are not instrumented: the edges to them are the
# hand-written part of the topology.
OTEL_DEMO = App(
    "otel-demo",
    {
        "accounting": _svc("kafka postgresql"),
        "ad": _svc("flagd"),
        "cart": _svc("valkey-cart flagd"),
        "checkout": _svc(
            "cart currency email payment product-catalog shipping kafka accounting fraud-detection"
        ),
        "currency": _svc(),
        "email": _svc(),
        "flagd": _svc(),
        "fraud-detection": _svc("kafka flagd"),
        "frontend": _svc("ad cart checkout currency product-catalog recommendation shipping product-reviews"),
        "flagd-ui": _svc(),
        "frontend-proxy": _svc("frontend image-provider flagd flagd-ui grafana jaeger"),
        "grafana": _svc("prometheus jaeger opensearch"),
        "jaeger": _svc(),
        "opensearch": _svc(),
        "otel-collector": _svc("jaeger prometheus opensearch"),
        "prometheus": _svc(),
        "image-provider": _svc(),
        "kafka": _svc(),
        "llm": _svc(),
        "load-generator": _svc("frontend-proxy"),
        "payment": _svc("flagd"),
        "postgresql": _svc(),
        "product-catalog": _svc("flagd"),
        "product-reviews": _svc("product-catalog llm postgresql"),
        "quote": _svc(),
        "recommendation": _svc("product-catalog flagd"),
        "shipping": _svc("quote"),
        "valkey-cart": _svc(),
    },
)
BOOKINFO = App(
    "bookinfo",
    {
        "bookinfo-gateway-istio": _svc("productpage"),
        "productpage": _svc("details reviews", "productpage-v1"),
        "details": _svc("", "details-v1"),
        "reviews": _svc("ratings", "reviews-v1 reviews-v2 reviews-v3"),
        "ratings": _svc("", "ratings-v1"),
    },
)
APPS = {"otel-demo": OTEL_DEMO, "bookinfo": BOOKINFO}


def _workloads(app: App, service: str) -> tuple[str, ...]:
    return app.services[service][0] or (service,)


def _pod_name(workload: str) -> str:
    digest = f"{abs(hash_text(workload)):x}"
    return f"{workload}-{digest[:9]}-{digest[9:14]}"


def hash_text(text: str) -> int:
    """A stable hash (Python's own is salted per process)."""
    value = 1469598103934665603
    for byte in text.encode():
        value = ((value ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return value


# Hand-written edges a user adds for what kube-state-metrics cannot tell: the ConfigMaps the
# workloads mount (the chart's flagd reads its flags from `flagd-config`).
MOUNTS = {"otel-demo": {"flagd": ("configmap", "flagd-config")}}


def app_topology_document(app: App) -> dict[str, Any]:
    """The topology file (docs/topology.md) of one application on the kind-like cluster."""
    nodes = [{"name": n, "zone": "kind", "ip": f"172.18.0.{i + 3}"} for i, n in enumerate(NODES)]
    pods: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    for index, (workload, _service) in enumerate(app.workloads()):
        pods.append(
            {
                "namespace": app.namespace,
                "name": _pod_name(workload),
                "node": NODES[index % len(NODES)],
                "owner": f"deployment/{workload}",
                "ip": f"10.244.{index % len(NODES)}.{10 + index}",
            }
        )
    for service, (_, calls) in sorted(app.services.items()):
        services.append(
            {
                "namespace": app.namespace,
                "name": service,
                "pods": [_pod_name(w) for w in _workloads(app, service)],
                "calls": list(calls),
            }
        )
    mounted = [
        {
            "name": f"deployment/{CLUSTER}/{app.namespace}/{workload}",
            "depends_on": [f"{kind}/{CLUSTER}/{app.namespace}/{name}"],
        }
        for workload, (kind, name) in sorted(MOUNTS.get(app.namespace, {}).items())
    ]
    return {
        "kind": "alert-router/topology",
        "cluster": CLUSTER,
        "nodes": nodes,
        "pods": pods,
        "services": services,
        "entities": mounted,
    }


def app_topology(app: App) -> Topology:
    return build_topology_file(app_topology_document(app), f"<itbench {app.namespace}>")


# -- the ground truth ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    id: int
    application: str
    root_groups: tuple[str, ...]
    groups: dict[str, dict[str, Any]]
    propagations: tuple[tuple[str, str], ...]
    alerts: tuple[tuple[str, str | None], ...]
    aliases: tuple[tuple[str, ...], ...]


def load_scenarios(path: str | Path = GROUNDTRUTH) -> list[Scenario]:
    """The scenarios of a ground-truth file; InputError names the file and what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    out = []
    for index, raw in enumerate(data.get("scenarios", ()) if isinstance(data, dict) else ()):
        try:
            out.append(
                Scenario(
                    id=int(raw["id"]),
                    application=raw["application"],
                    root_groups=tuple(raw["root_cause_groups"]),
                    groups={g["id"]: g for g in raw["groups"]},
                    propagations=tuple((p["source"], p["target"]) for p in raw["propagations"]),
                    alerts=tuple((a["id"], a.get("group_id")) for a in raw["alerts"]),
                    aliases=tuple(tuple(a) for a in raw.get("aliases", ()) if a),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: scenarios[{index}]: missing or malformed field {exc}") from None
    if not out:
        raise InputError(f"{path}: no scenarios (expected an object with a `scenarios` list)")
    return out


_SUFFIXES = ("-service", "-pod", "-deployment", "-endpoint", "-configmap", "-secret", "-pvc", "-pdb")
COMPONENT_KINDS = frozenset({"Pod", "Deployment", "Service", "StatefulSet", "ReplicaSet", "ServiceOperation"})


def _norm(name: str) -> str:
    flat = name.lower().replace("-", "").replace("_", "")
    return flat.removesuffix("service") or flat


# Older names of the Astronomy Shop's components (before 1.12 and 2.0).
_FORMER = {"rediscart": "valkey-cart", "featureflag": "flagd", "otelcol": "otel-collector"}


def component_of(app: App, group_id: str, group: Mapping[str, Any] | None) -> str | None:
    """The application component (a Service or one of its workloads) a ground-truth group is
    about: by its id (`productcatalog-service-1` -> product-catalog), else by its filters."""
    base = re.sub(r"-\d+$", "", group_id)
    for suffix in _SUFFIXES:
        if base.endswith(suffix):
            base = base.removesuffix(suffix)
            break
    names = sorted({*app.services, *(w for w, _ in app.workloads())}, key=lambda n: (-len(n), n))
    wanted = _FORMER.get(_norm(base), _norm(base))
    for name in names:
        if _norm(name) == _norm(wanted):
            return name
    for pattern in (group or {}).get("filter") or ():
        try:
            regex = re.compile(pattern)
        except re.error:
            continue
        found = [n for n in names if regex.fullmatch(n)]
        if len(found) == 1:
            return found[0]
    return None


def _service_of(app: App, component: str) -> str:
    if component in app.services:
        return component
    return next(s for w, s in app.workloads() if w == component)


def _workload_of(app: App, component: str) -> str:
    return _workloads(app, component)[0] if component in app.services else component


def _hops(scenario: Scenario) -> dict[str, int]:
    """Each group's distance from the root cause along the propagations."""
    depth = {g: 0 for g in scenario.root_groups}
    frontier = list(scenario.root_groups)
    for current in frontier:
        for source, target in scenario.propagations:
            if source == current and target not in depth:
                depth[target] = depth[current] + 1
                frontier.append(target)
    return depth


def root_components(scenario: Scenario, app: App) -> set[str]:
    """What a correct page may name: the root-cause components, their aliases, and for a root
    cause that is no component, the components it first reached."""
    out: set[str] = set()
    groups = scenario.groups

    def component(group_id: str) -> str | None:
        return component_of(app, group_id, groups.get(group_id))

    def is_component(group_id: str) -> bool:
        kind = (groups.get(group_id) or {}).get("kind")
        return kind in COMPONENT_KINDS and component(group_id) is not None

    roots: set[str] = set()
    for root in scenario.root_groups:
        if is_component(root):
            roots.add(root)
            continue
        frontier, seen = [root], {root}
        for current in frontier:  # through non-components (a Schedule -> its NetworkChaos)
            for source, target in scenario.propagations:
                if source != current or target in seen:
                    continue
                seen.add(target)
                if is_component(target):
                    roots.add(target)
                else:
                    frontier.append(target)
    for alias in scenario.aliases:
        if roots & set(alias) or set(scenario.root_groups) & set(alias):
            roots |= set(alias)
    for group_id in roots:
        name = component(group_id)
        if name is not None:
            out.add(name)
    return out


# -- synthesis ----------------------------------------------------------------------------------

# How long after the fault reaches its entity each alert class first fires (its rule's `for:`
# and windows): span-metric rules over 1-2 minute rates, kube-prometheus' own `for:`.
_DELAY_MINUTES: tuple[tuple[str, float], ...] = (
    ("KubeContainerWaiting", 60.0),
    ("KubePodNotReady", 15.0),
    ("KubePodCrashLooping", 15.0),
    ("KubeDeploymentReplicasMismatch", 15.0),
    ("CPUThrottlingHigh", 15.0),
    ("Node", 5.0),
    ("No", 3.0),
    ("Kafka", 3.0),
    ("HighKafka", 3.0),
    ("FailedPods", 2.0),
    ("", 2.0),
)
POD_ALERTS = ("Kube", "FailedPods", "CPUThrottling")


def _delay(alertname: str) -> float:
    return next(minutes for prefix, minutes in _DELAY_MINUTES if alertname.startswith(prefix))


@dataclass
class Case:
    """One scenario as a stream, with what scoring needs."""

    scenario: Scenario
    seed: int
    topology_document: dict[str, Any]
    specs: list[AlertSpec]
    noise: list[AlertSpec]
    lines: list[dict]
    roots: set[str]
    entity_component: dict[str, str] = field(default_factory=dict)

    @property
    def stream_text(self) -> str:
        return to_jsonl(self.lines)


def _first_component(scenario: Scenario, app: App) -> str:
    hops = _hops(scenario)
    for group_id in sorted(hops, key=lambda g: (hops[g], g)):
        name = component_of(app, group_id, scenario.groups.get(group_id))
        if name is not None:
            return name
    return sorted(app.services)[0]


def _labels(
    app: App, alertname: str, component: str | None, node_ip: Mapping[str, str], node_name: Mapping[str, str]
) -> dict[str, str]:
    labels = {"alertname": alertname, "severity": "warning", "cluster": CLUSTER, "namespace": app.namespace}
    if component is None:
        return labels
    workload = _workload_of(app, component)
    pod = _pod_name(workload)
    if alertname.startswith("KubeNode"):  # kube-state-metrics on the node the component runs on
        labels = {
            "alertname": alertname,
            "severity": "warning",
            "cluster": CLUSTER,
            "node": node_name[pod],
            "job": "kube-state-metrics",
        }
    elif alertname.startswith(("KubeDeployment", "KubeStatefulSet", "KubeDaemonSet")):
        kind = alertname.removeprefix("Kube").split("Replicas")[0].split("Rollout")[0].split("Generation")[0]
        labels |= {kind.lower(): workload, "job": "kube-state-metrics"}
    elif alertname.startswith(POD_ALERTS):
        labels |= {"pod": pod, "container": workload, "job": "kube-state-metrics"}
        if alertname == "CPUThrottlingHigh":
            labels |= {"severity": "info", "job": "kubelet", "service": "kubelet"}
    elif alertname.startswith("Node"):
        labels = {
            "alertname": alertname,
            "severity": "warning",
            "cluster": CLUSTER,
            "instance": f"{node_ip[pod]}:9100",
            "job": "node-exporter",
        }
    else:
        labels |= {"service_name": _service_of(app, component)}
    return labels


def synthesise(scenario: Scenario, seed: int = 0) -> Case:
    app = APPS[scenario.application]
    rng = random.Random(hash_text(f"{scenario.id}/{seed}"))
    document = app_topology_document(app)
    node_ip = {n["name"]: n["ip"] for n in document["nodes"]}
    pod_node = {p["name"]: node_ip[p["node"]] for p in document["pods"]}
    pod_node_name = {p["name"]: p["node"] for p in document["pods"]}
    start = BASE + timedelta(days=scenario.id, minutes=rng.randrange(0, 600))
    end = start + RECORDING
    hops = _hops(scenario)
    deepest = max(hops.values(), default=0)
    hop_at = {h: 0.0 for h in range(deepest + 2)}
    for h in range(1, deepest + 2):
        hop_at[h] = hop_at[h - 1] + rng.uniform(20, 60)
    fallback = _first_component(scenario, app)
    specs: list[AlertSpec] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    for alertname, group_id in scenario.alerts:
        component = component_of(app, group_id, scenario.groups.get(group_id)) if group_id else None
        kind = (scenario.groups.get(group_id or "") or {}).get("kind")
        if component is None and kind != "Namespace":
            component = fallback
        labels = _labels(app, alertname, component, pod_node, pod_node_name)
        key = tuple(sorted(labels.items()))
        if key in seen:  # the same alert listed under two groups of one entity
            continue
        seen.add(key)
        hop = hops.get(group_id or "", deepest + 1)
        fires = start + timedelta(seconds=_delay(alertname) * 60 + hop_at[hop] + rng.uniform(0, 60))
        summary = f"{alertname} on {labels.get('service_name') or labels.get('pod') or app.namespace}"
        specs.append(AlertSpec(labels, fires, None, {"summary": summary}))
    noise = _noise(rng, app, start, end, specs)
    document["changes"] = _changes(rng, scenario, app, start)
    config = AlertmanagerConfig(replicas=2, routes=(heartbeat_route(timedelta(minutes=1)),))
    lines = simulate(specs + noise, config, until=end)
    topology = build_topology_file(document, "<itbench>")
    return Case(
        scenario,
        seed,
        document,
        specs,
        noise,
        lines,
        root_components(scenario, app),
        _components(app, topology),
    )


# Root causes whose change kube-state-metrics shows (a resource version, a generation, a
# creation time): ConfigMap and Secret edits, Deployment rollouts, new NetworkPolicies and PDBs.
# Chaos Mesh objects, Istio policies and pod-level patches are out of its sight.
_CHANGE_KINDS = {
    "ConfigMap": ("configmap", "edited (resource version {a} -> {b})"),
    "Secret": ("secret", "edited (resource version {a} -> {b})"),
    "Deployment": ("deployment", "rolled out (generation {a} -> {b}, new ReplicaSet)"),
    "NetworkPolicy": ("networkpolicy", "created"),
    "PodDisruptionBudget": ("pdb", "created"),
}


def _object_name(group_id: str, group: Mapping[str, Any] | None) -> str:
    """The Kubernetes name of a ground-truth group: a plain filter if it has one, else its id
    without the instance number."""
    for pattern in (group or {}).get("filter") or ():
        plain = pattern.removesuffix("\\b")
        if re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", plain):
            return plain
    return re.sub(r"-\d+$", "", group_id)


def _changes(rng: random.Random, scenario: Scenario, app: App, start: datetime) -> list[dict[str, str]]:
    """The change that injected the fault (when kube-state-metrics can see it), and an
    unrelated rollout some time before (a change that explains nothing)."""
    out: list[dict[str, str]] = []
    prefix = f"{CLUSTER}/{app.namespace}"
    for root in scenario.root_groups:
        group = scenario.groups.get(root) or {}
        found = _CHANGE_KINDS.get(group.get("kind", ""))
        if found is None:
            continue
        kind, what = found
        component = component_of(app, root, group) if kind == "deployment" else None
        name = _workload_of(app, component) if component else _object_name(root, group)
        version = rng.randint(2, 40)
        at = start - timedelta(seconds=rng.uniform(0, 30))
        out.append(
            {
                "entity": f"{kind}/{prefix}/{name}",
                "at": format_time(at),
                "what": what.format(a=version, b=version + 1),
            }
        )
    calm = sorted({w for w, _ in app.workloads()} - root_components(scenario, app))
    if calm:
        workload = rng.choice(calm)
        at = start - timedelta(minutes=rng.uniform(10, 180))
        version = rng.randint(2, 40)
        out.append(
            {
                "entity": f"deployment/{prefix}/{workload}",
                "at": format_time(at),
                "what": f"rolled out (generation {version} -> {version + 1}, new ReplicaSet)",
            }
        )
    return out


def names_a_root_object(scenario: Scenario, entity: str) -> bool:
    """Whether a page's root is a root cause that is no application component but an object of
    the cluster the ground truth names by kind and name (a Namespace whose spend alerts fire)."""
    parts = entity.split("/")
    if len(parts) != 3:
        return False
    kind, name = parts[0], parts[2]
    for root in scenario.root_groups:
        group = scenario.groups.get(root) or {}
        named = {_norm(n) for n in (group.get("name"), _object_name(root, group)) if n}
        if str(group.get("kind", "")).lower() == kind and _norm(name) in named:
            return True
    return False


def change_matches_root(scenario: Scenario, entity: str) -> bool:
    """Whether a change the page names is on a root cause of the scenario."""
    parts = entity.split("/")
    if len(parts) != 4:
        return False
    kind, name = parts[0], parts[3]
    app = APPS[scenario.application]
    for root in scenario.root_groups:
        group = scenario.groups.get(root)
        if _norm(name) in {_norm(_object_name(root, group)), _norm(re.sub(r"-\d+$", "", root))}:
            return True
        component = component_of(app, root, group)
        if component is not None and kind == "deployment" and name == _workload_of(app, component):
            return True
    return False


def _noise(
    rng: random.Random, app: App, start: datetime, end: datetime, specs: Sequence[AlertSpec]
) -> list[AlertSpec]:
    base = {"cluster": CLUSTER}
    out = [
        AlertSpec(
            base | {"alertname": "Watchdog", "severity": "none", "namespace": "monitoring"},
            start,
            None,
            {"summary": "An alert that should always be firing."},
            start - timedelta(hours=rng.uniform(2, 72)),
        )
    ]
    for job, name in (
        ("kube-scheduler", "KubeSchedulerDown"),
        ("kube-controller-manager", "KubeControllerManagerDown"),
    ):
        out.append(
            AlertSpec(
                base | {"alertname": name, "job": job, "severity": "critical"},
                start,
                None,
                {"summary": f"Target disappeared from Prometheus target discovery ({job})."},
                start - timedelta(hours=rng.uniform(24, 24 * 30)),
            )
        )
    touched = {s.labels.get("pod") for s in specs} | {s.labels.get("service_name") for s in specs}
    calm = [w for w, s in app.workloads() if _pod_name(w) not in touched and s not in touched]
    info: list[AlertSpec] = []
    for workload in rng.sample(calm, min(len(calm), rng.randint(1, 3))):
        labels = base | {
            "alertname": "CPUThrottlingHigh",
            "severity": "info",
            "namespace": app.namespace,
            "pod": _pod_name(workload),
            "container": workload,
            "job": "kubelet",
            "service": "kubelet",
        }
        fires = start + timedelta(minutes=rng.uniform(0, 60))
        info.append(
            AlertSpec(
                labels, fires, fires + timedelta(minutes=rng.uniform(15, 40)), {"summary": "CPU throttling"}
            )
        )
    out += info
    if info:  # InfoInhibitor: while a namespace has info alerts and nothing louder
        first = min(s.fires_at for s in info)
        last = max(s.resolves_at or end for s in info)
        louder = [s.fires_at for s in specs if s.labels.get("severity") not in ("info", "none")]
        until = min([last, *[t for t in louder if t > first]])
        labels = base | {"alertname": "InfoInhibitor", "severity": "none", "namespace": app.namespace}
        out.append(
            AlertSpec(
                labels, first, until if until < end else None, {"summary": "Info-level alert inhibition."}
            )
        )
    return out


def _components(app: App, topology: Topology) -> dict[str, str]:
    """Entity -> the names a page on it stands for (its Service, or its workload and Service)."""
    out: dict[str, str] = {}
    prefix = f"/{CLUSTER}/{app.namespace}/"
    for service in app.services:
        out[f"service{prefix}{service}"] = service
    for workload, _service in app.workloads():
        for kind in ("deployment", "replicaset"):
            out[f"{kind}{prefix}{workload}"] = workload
        out[f"pod{prefix}{_pod_name(workload)}"] = workload
    return {k: v for k, v in out.items() if k in topology}


# -- running and scoring ------------------------------------------------------------------------


@dataclass
class CaseScore:
    scenario: int
    pages: list[tuple[str, bool, str]]  # (root entity, correct, the change named as likely cause)
    baseline_pages: int
    baseline_correct: int

    @property
    def correct(self) -> int:
        return sum(ok for _, ok, _ in self.pages)

    @property
    def recalled(self) -> bool:
        return self.correct > 0


def run_case(case: Case, rules: RuleSet, settings: EngineSettings | None = None) -> list[dict]:
    topology = build_topology_file(case.topology_document, f"<itbench {case.scenario.id}>")
    engine = Engine(topology, rules, settings or EngineSettings())
    lines = enumerate(case.stream_text.splitlines(keepends=True), 1)
    result = replay(engine, lines, f"itbench-{case.scenario.id}")
    return [n.to_dict() for n in result.notifications]


def _names(case: Case, entity: str) -> set[str]:
    app = APPS[case.scenario.application]
    name = case.entity_component.get(entity)
    if name is None:
        return set()
    return {name, _service_of(app, name)} if name not in app.services else {name}


def score_case(case: Case, notifications: Iterable[Mapping[str, Any]]) -> CaseScore:
    pages = []
    for note in notifications:
        if note["action"] != "page":
            continue
        entity = note["root"]["entity"]
        cause = (note.get("likely_cause") or {}).get("entity", "")
        # Right when it names the fault: its root, or as the likely cause a change to a root
        # cause or the component the fault hit first.
        correct = (
            bool((_names(case, entity) | _names(case, cause)) & case.roots)
            or bool(cause and change_matches_root(case.scenario, cause))
            or names_a_root_object(case.scenario, entity)
        )
        pages.append((entity, correct, cause))
    # Baseline: every alert that is not noise pages once.
    baseline_correct = 0
    for spec in case.specs:
        names = {spec.labels.get("service_name")} | {
            v
            for k, v in case.entity_component.items()
            if k.startswith("pod/") and k.endswith("/" + spec.labels.get("pod", "-"))
        }
        # An alert that names nothing but its namespace names the namespace (a spend alert).
        namespace = spec.labels.get("namespace", "")
        only_namespace = namespace and not ({"pod", "service_name", "service", "job"} & spec.labels.keys())
        baseline_correct += bool(names & case.roots) or bool(
            only_namespace and names_a_root_object(case.scenario, f"namespace/-/{namespace}")
        )
    return CaseScore(case.scenario.id, pages, len(case.specs), baseline_correct)


@dataclass
class Figures:
    scenarios: int = 0
    pages: int = 0
    correct: int = 0
    recalled: int = 0
    baseline_pages: int = 0
    baseline_correct: int = 0
    baseline_recalled: int = 0
    skipped: list[int] = field(default_factory=list)  # scenarios of an application not modelled here

    def add(self, score: CaseScore) -> None:
        self.scenarios += 1
        self.pages += len(score.pages)
        self.correct += score.correct
        self.recalled += score.recalled
        self.baseline_pages += score.baseline_pages
        self.baseline_correct += score.baseline_correct
        self.baseline_recalled += score.baseline_correct > 0

    @staticmethod
    def _ratio(a: int, b: int) -> float:
        return a / b if b else 0.0

    def router(self) -> dict[str, float]:
        return {
            "precision": self._ratio(self.correct, self.pages),
            "recall": self._ratio(self.recalled, self.scenarios),
            "pages_per_incident": self._ratio(self.pages, self.scenarios),
        }

    def baseline(self) -> dict[str, float]:
        return {
            "precision": self._ratio(self.baseline_correct, self.baseline_pages),
            "recall": self._ratio(self.baseline_recalled, self.scenarios),
            "pages_per_incident": self._ratio(self.baseline_pages, self.scenarios),
        }


def evaluate(
    scenarios: Iterable[Scenario], seeds: Sequence[int] = (0,), rules: RuleSet | None = None
) -> tuple[Figures, list[CaseScore]]:
    rules = rules or RuleSet.load()
    figures = Figures()
    scores = []
    for scenario in scenarios:
        if scenario.application not in APPS:
            figures.skipped.append(scenario.id)
            continue
        for seed in seeds:
            case = synthesise(scenario, seed)
            score = score_case(case, run_case(case, rules))
            figures.add(score)
            scores.append(score)
    return figures, scores
