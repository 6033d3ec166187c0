"""Exports compared with golden files (tests/golden/export/).

Two sources of incidents, both run through the real engine and rule pack: the hand-built
node-down storm of tests/test_export_world.py (every format), and the scenario suite
(router/sim/scenarios.py on the 12-node cluster of bench/gen_cluster.py, delivered the way
Alertmanager does by router/sim/storm.py): every incident of each scenario, as Markdown and JSON.

After an intended change of the exports (or of the engine's decisions), regenerate and review
the diff:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_export_golden.py
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from router.core.engine import Engine
from router.core.model import Delivery
from router.export import build, render, render_timeline, summarize
from router.export.jsonexport import timeline_dict
from router.sim import scenarios as sc
from router.sim.gencluster import ClusterInfo
from router.sim.storm import AlertmanagerConfig, AlertSpec, heartbeat_route, simulate
from rules.ruleset import RuleSet
from tests.test_export_world import node_down_storm
from tests.test_scenarios import generated_cluster

GOLDEN = Path(__file__).parent / "golden" / "export"
SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "timeline-schema.json").read_text())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
T0 = datetime(2026, 10, 6, 1, 0, tzinfo=UTC)


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as handle:
            handle.write(actual)
        return
    assert path.is_file(), f"{path} is missing: run with UPDATE_GOLDEN=1 to create it"
    with path.open(encoding="utf-8", newline="") as handle:
        expected = handle.read()
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), f"golden/{name}", "actual", lineterm="", n=1
        )
        shown = "\n".join(list(diff)[:40])
        pytest.fail(f"{name} differs from its golden file (UPDATE_GOLDEN=1 regenerates it):\n{shown}")


# ------------------------------------------------------------------------------ JSON schema


def validate(value: Any, schema: dict[str, Any], where: str = "$") -> None:
    """The subset of JSON Schema docs/timeline-schema.json uses, strictly: a key the export
    writes but the schema does not document is an error too (the documentation must not lag)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        validate(value, SCHEMA["$defs"][name], where)
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                validate(value, option, where)
                break
            except AssertionError as exc:
                errors.append(str(exc))
        else:
            raise AssertionError(f"{where}: matches none of anyOf: {errors}")
    if "const" in schema:
        assert value == schema["const"], f"{where}: {value!r} != {schema['const']!r}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        checks: dict[str, Callable[[Any], bool]] = {
            "object": lambda v: isinstance(v, dict),
            "array": lambda v: isinstance(v, list),
            "string": lambda v: isinstance(v, str),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "boolean": lambda v: isinstance(v, bool),
            "null": lambda v: v is None,
        }
        assert any(checks[t](value) for t in types), f"{where}: {value!r} is not {types}"
    if "pattern" in schema and isinstance(value, str):
        assert re.search(schema["pattern"], value), f"{where}: {value!r} does not match {schema['pattern']}"
    if "minimum" in schema and isinstance(value, int | float):
        assert value >= schema["minimum"], f"{where}: {value} < {schema['minimum']}"
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            assert key in value, f"{where}: missing {key}"
        for key, item in value.items():
            if key in properties:
                validate(item, properties[key], f"{where}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                validate(item, schema["additionalProperties"], f"{where}.{key}")
            elif properties:
                raise AssertionError(f"{where}.{key}: written by the export but not in the schema")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], f"{where}[{i}]")


def test_the_validator_rejects_what_the_schema_forbids():
    good = json.loads(render_timeline(STORM.events, STORM.notifications, STORM.incident, "json")[1])
    validate(good, SCHEMA)
    for mutate in (
        lambda d: d["incident"].pop("state"),
        lambda d: d["incident"].__setitem__("state", "exploded"),
        lambda d: d["figures"].__setitem__("pages_sent", "one"),
        lambda d: d["entries"][0].__setitem__("at", "yesterday"),
        lambda d: d["alerts"][0].__setitem__("undocumented", 1),
    ):
        bad = json.loads(json.dumps(good))
        mutate(bad)
        with pytest.raises(AssertionError):
            validate(bad, SCHEMA)


# ------------------------------------------------------------------------------ hand-built storm

STORM = node_down_storm()


@pytest.mark.parametrize(
    ("name", "fmt", "tz"),
    [
        ("node-down.md", "md", None),
        ("node-down.paris.md", "md", "Europe/Paris"),
        ("node-down.json", "json", None),
        ("node-down.csv", "csv", "Europe/Paris"),
        ("node-down.html", "html", None),
    ],
)
def test_node_down_storm_exports_match_golden(name, fmt, tz):
    content_type, body = render_timeline(STORM.events, STORM.notifications, STORM.incident, fmt, tz)
    assert (
        content_type.split(";")[0]
        == {
            "md": "text/markdown",
            "json": "application/json",
            "csv": "text/csv",
            "html": "text/html",
        }[fmt]
    )
    if fmt == "json":
        validate(json.loads(body), SCHEMA)
    check_golden(name, body)


def test_same_events_same_export_byte_for_byte():
    again = node_down_storm()
    for fmt in ("md", "json", "html", "csv"):
        first = render_timeline(STORM.events, STORM.notifications, STORM.incident, fmt, "Asia/Tokyo")
        assert render_timeline(again.events, again.notifications, again.incident, fmt, "Asia/Tokyo") == first


# ------------------------------------------------------------------------------ scenario suite


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[ClusterInfo, Any]:
    return generated_cluster(Path(tmp_path_factory.mktemp("cluster")))


def minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def _workers(info: ClusterInfo) -> list[str]:
    dns_nodes = {node for _, node in info.coredns_pods}
    return [
        n for zone in info.zones.values() for n in zone if n not in info.control_plane and n not in dns_nodes
    ]


def _node_down(info: ClusterInfo) -> tuple[list[AlertSpec], AlertmanagerConfig, datetime | None]:
    node = _workers(info)[0]
    alerts = sc.node_down(
        node,
        info.pods_by_node[node],
        info.daemonsets,
        T0,
        recover_at=T0 + minutes(40),
        node_ip=info.node_ips[node],
        cluster_nodes=len(info.node_ips),
        ksm_instance=info.ksm_instance,
    )
    return alerts, AlertmanagerConfig(replicas=2), None


def _coredns_crash(info: ClusterInfo) -> tuple[list[AlertSpec], AlertmanagerConfig, datetime | None]:
    clients: dict[str, list[tuple[str, str, str]]] = {}
    for pods in info.pods_by_node.values():
        for namespace, pod, kind, workload in pods:
            if namespace == "shop" and kind in ("Deployment", "StatefulSet"):
                clients.setdefault(namespace, []).append((pod, kind, workload))
    alerts = sc.coredns_crash([pod for pod, _ in info.coredns_pods], clients, T0, recover_at=T0 + minutes(30))
    return alerts, AlertmanagerConfig(replicas=2), None


def _flapping_node(info: ClusterInfo) -> tuple[list[AlertSpec], AlertmanagerConfig, datetime | None]:
    node = _workers(info)[1]
    labels = {"alertname": "KubeNodeNotReady", **sc.ksm_labels(info.ksm_instance)}
    labels.update(node=node, condition="Ready", status="false")
    alerts = sc.flapping(labels, T0, period=minutes(12), count=4, firing_for=minutes(1))
    return alerts, AlertmanagerConfig(replicas=2), T0 + minutes(80)


def _watchdog(info: ClusterInfo) -> tuple[list[AlertSpec], AlertmanagerConfig, datetime | None]:
    alerts = sc.watchdog(T0, until=T0 + minutes(20))
    alerts.append(
        sc.make_alert("PaymentsSLOBurn", {"team": "payments", "severity": "info"}, T0 + minutes(60))
    )
    config = AlertmanagerConfig(replicas=2, routes=(heartbeat_route(minutes(2)),))
    return alerts, config, T0 + minutes(70)


SCENARIOS = {
    "node-down": _node_down,
    "coredns-crash": _coredns_crash,
    "flapping-node": _flapping_node,
    "watchdog-stopped": _watchdog,
}


def run_scenario(topology: Any, alerts: list[AlertSpec], config: AlertmanagerConfig, until: datetime | None):
    engine = Engine(topology, RuleSet.load())
    notes, events, last = [], [], None
    for line in simulate(alerts, config, until=until):
        delivery = Delivery.model_validate(line)
        last = delivery.received
        notes += engine.ingest(delivery, last)
        events += engine.drain_events()
    notes += engine.finish(last)
    events += engine.drain_events()
    return engine, [e.to_dict() for e in events], [n.to_dict() for n in notes]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario_suite_incidents_match_golden(world, scenario):
    info, topology = world
    engine, events, notes = run_scenario(topology, *SCENARIOS[scenario](info))
    ids = [s.id for s in summarize(events, notes)]
    assert sorted(ids) == sorted(i["id"] for i in engine.incidents())
    markdown, timelines = [], []
    for incident in ids:
        timeline = build(events, notes, incident)
        view = engine.incident(incident)
        # Rebuilt from events alone, and still the engine's own account of it.
        assert (timeline.state, timeline.root, timeline.merged_into) == (
            view["state"],
            view["root"]["entity"],
            view["merged_into"],
        )
        current = {a.fingerprint: a.path for a in timeline.alerts if a.detached_at is None}
        if view["state"] != "merged":
            assert current == {a["fingerprint"]: a["path"] for a in view["alerts"]}
        data = timeline_dict(timeline)
        validate(data, SCHEMA)
        timelines.append(data)
        markdown.append(render(timeline, "md")[1])
        render(timeline, "html")  # every incident renders; the browser checks are in test_export_html
    check_golden(f"scenario-{scenario}.md", "\n---\n\n".join(markdown))
    check_golden(f"scenario-{scenario}.json", json.dumps(timelines, indent=1, ensure_ascii=False) + "\n")
