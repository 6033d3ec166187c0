"""A peer's suite: IBM ITBench's SRE scenarios (development half, router/sim/data/itbench) as
Alertmanager streams, replayed through the engine and scored (router/sim/itbench.py).

The floors follow from the invariants, not from a run: a page should name the fault (a
root-cause component, or the change that caused it), one fault should page about once (no more
than 1.5 pages per fault), and correlation must beat paging every alert by far.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import bench_itbench
from router.sim import itbench
from rules.ruleset import RuleSet
from topology.graph import is_call

SCENARIOS = itbench.load_scenarios()


@pytest.fixture(scope="module")
def figures():
    result, scores = itbench.evaluate(SCENARIOS, seeds=(0, 1), rules=RuleSet.load())
    return result, scores


def test_the_shipped_copy_is_the_development_half_with_its_licence():
    data = json.loads(itbench.GROUNDTRUTH.read_text())
    notice = (itbench.DATA / "NOTICE").read_text()
    assert data["license"] == "Apache-2.0" and data["commit"] in notice and "Apache License" in notice
    ids = [s.id for s in SCENARIOS]
    assert len(ids) >= 30 and all(i % 2 == 1 for i in ids)  # the even ids are held out


def test_router_meets_the_floors_and_beats_paging_every_alert(figures):
    result, _ = figures
    router, baseline = result.router(), result.baseline()
    assert result.scenarios == 2 * len(SCENARIOS)
    assert result.pages <= 1.5 * result.scenarios
    assert router["pages_per_incident"] <= 1.5
    assert router["precision"] >= 0.80
    assert router["recall"] >= 0.95
    assert router["precision"] >= 2.5 * baseline["precision"]
    assert baseline["pages_per_incident"] >= 4 * router["pages_per_incident"]


def test_a_visible_change_at_the_root_is_named_by_the_page(figures):
    """Where the fault is a change the topology source sees (a ConfigMap edit, a rollout), the
    page names it: the invariant that makes a page name a root-cause group."""
    _, scores = figures
    visible = {
        s.id
        for s in SCENARIOS
        if any(
            (s.groups.get(r) or {}).get("kind") in ("ConfigMap", "Secret", "Deployment")
            for r in s.root_groups
        )
    }
    named = [score for score in scores if score.scenario in visible]
    assert len(named) >= 10
    hits = sum(
        any(
            cause and itbench.change_matches_root(_scenario(score.scenario), cause)
            for _, _, cause in score.pages
        )
        for score in named
    )
    assert hits >= 0.8 * len(named)


def _scenario(scenario_id: int) -> itbench.Scenario:
    return next(s for s in SCENARIOS if s.id == scenario_id)


def test_synthesis_follows_the_propagation_and_is_reproducible():
    scenario = _scenario(13)  # flagd-config -> payment -> checkout -> frontend -> frontend-proxy
    case = itbench.synthesise(scenario, seed=3)
    again = itbench.synthesise(scenario, seed=3)
    assert case.stream_text == again.stream_text
    fired = {(s.labels["alertname"], s.labels.get("service_name")): s.fires_at for s in case.specs}
    errors = [
        fired[("HighRequestErrorRate", name)]
        for name in ("payment", "checkout", "frontend", "frontend-proxy")
    ]
    assert errors == sorted(errors)  # one hop after another
    assert {s.labels["namespace"] for s in case.specs} == {"otel-demo"}
    noise = {s.labels["alertname"] for s in case.noise}
    assert {"Watchdog", "KubeSchedulerDown", "KubeControllerManagerDown", "CPUThrottlingHigh"} <= noise
    delivered = {a["fingerprint"] for line in case.lines for a in line["payload"]["alerts"]}
    assert len(delivered) == len(case.specs) + len(case.noise)
    assert case.roots == {"payment"}  # the ConfigMap is no component: what it reached first


def test_a_root_cause_that_is_a_namespace_is_named_by_a_page_on_it(figures):
    # Scenario 37: only the namespace's CPUSpend and MemorySpend fire; the ground truth's root is
    # the Namespace otel-demo. Both alerts meet on it: one page, and it names the root.
    [scenario] = [s for s in SCENARIOS if s.id == 37]
    assert itbench.names_a_root_object(scenario, "namespace/kind-itbench/otel-demo")
    assert not itbench.names_a_root_object(scenario, "namespace/kind-itbench/default")
    _, scores = figures
    for score in (s for s in scores if s.scenario == 37):
        assert score.pages == [("namespace/kind-itbench/otel-demo", True, "")]


def test_the_application_topology_has_its_calls_as_call_edges():
    topology = itbench.app_topology(itbench.OTEL_DEMO)
    prefix = f"service/{itbench.CLUSTER}/otel-demo/"
    assert topology.calls(prefix + "checkout") == sorted(
        prefix + s
        for s in (
            "accounting",
            "cart",
            "currency",
            "email",
            "fraud-detection",
            "kafka",
            "payment",
            "product-catalog",
            "shipping",
        )
    )
    assert prefix + "frontend" in topology.callers(prefix + "checkout")
    data = topology.graph.edges[prefix + "checkout", prefix + "payment"]
    assert is_call(prefix + "checkout", prefix + "payment", data)
    own = f"deployment/{itbench.CLUSTER}/otel-demo/checkout"
    assert own in topology.graph.succ[prefix + "checkout"]
    assert not is_call(prefix + "checkout", own, topology.graph.edges[prefix + "checkout", own])


def test_ground_truth_groups_map_onto_components():
    app = itbench.OTEL_DEMO
    assert itbench.component_of(app, "productcatalog-service-1", None) == "product-catalog"
    assert itbench.component_of(app, "recommendationservice-pod-1", None) == "recommendation"
    assert itbench.component_of(app, "frontendproxy-service-1", None) == "frontend-proxy"
    assert itbench.component_of(app, "flagd-config-1", {"filter": ["flagd-config\\b"]}) is None
    assert itbench.component_of(itbench.BOOKINFO, "reviews-v3-deployment-1", None) == "reviews-v3"


def test_a_topology_file_giving_calls_as_depends_on_works_the_same(monkeypatch, figures):
    """What a new user writes first: every service call as a `depends_on` between Services."""
    written = itbench.app_topology_document

    def as_depends_on(app: itbench.App) -> dict:
        document = written(app)
        for service in document["services"]:
            callees = service.pop("calls")
            if callees:
                name = f"service/{itbench.CLUSTER}/{service['namespace']}/{service['name']}"
                prefix = f"service/{itbench.CLUSTER}/{service['namespace']}/"
                document["entities"].append({"name": name, "depends_on": [prefix + c for c in callees]})
        return document

    monkeypatch.setattr(itbench, "app_topology_document", as_depends_on)
    result, _ = itbench.evaluate(SCENARIOS, seeds=(0, 1), rules=RuleSet.load())
    assert result.router() == figures[0].router()


def test_bench_dumps_a_scenario_that_alert_router_replay_pages_once(tmp_path, capsys):
    out = tmp_path / "itbench-7"
    assert bench_itbench.main(["--dump", "7", "--out", str(out)]) == 0
    truth = json.loads((out / "truth.json").read_text())
    assert truth["root_components"] == ["payment"]
    files = ["--topology", str(out / "topology.yaml"), "--alerts", str(out / "alerts.jsonl")]
    run = subprocess.run(
        [sys.executable, "-m", "router.cli.main", "replay", *files, "--out", str(tmp_path / "notes.jsonl")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    notes = [json.loads(line) for line in (tmp_path / "notes.jsonl").read_text().splitlines()]
    [page] = [n for n in notes if n["action"] == "page"]
    assert page["root"]["entity"] == f"service/{itbench.CLUSTER}/otel-demo/payment"
    assert page["likely_cause"]["entity"] == f"configmap/{itbench.CLUSTER}/otel-demo/flagd-config"


def test_bench_reports_a_bad_ground_truth_file_by_name(tmp_path, capsys):
    broken = tmp_path / "gt.json"
    broken.write_text('{"scenarios": [{"id": 1}]}')
    assert bench_itbench.main(["--groundtruth", str(broken)]) == 2
    assert (
        capsys.readouterr().err
        == f"bench_itbench: {broken}: scenarios[0]: missing or malformed field 'application'\n"
    )
    assert bench_itbench.main(["--groundtruth", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: cannot read" in capsys.readouterr().err
