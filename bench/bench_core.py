"""Benchmark of the correlation core: topology load and replay of two zone-outage storms.

For each cluster size (nodes, 30 pods per node, 3 zones) and each storm shape this generates
the kube-state-metrics dump and the storm in which one zone fails and recovers (bench/
gen_cluster.py, gen_storm.py), then, each in a fresh child process so that peak RSS is its own:

- topology load: wall time and peak RSS of `load_topology`;
- replay: alerts per second, counting every alert of every delivery, and the same stream only
  parsed (the baseline measured in the same run: the engine's share is the difference);
- outcome: pages, incidents, and the pages per incident a router without correlation would
  send (one page per distinct alert still firing after its grace).

The shapes:

- `zone`: replicas placed at random; the zone's nodes, their pods, DaemonSets and StatefulSets
  alert as a node death does (router/sim/scenarios.py node_down);
- `spread`: every Deployment spreads its replicas over the zones (topology spread
  constraints), and on top of the `zone` alerts every Deployment with a replica in the zone
  alerts KubeDeploymentReplicasMismatch and its Service's request error rate fires within
  minutes: each of them points at nodes in every zone.

    .venv/bin/python bench/bench_core.py                 # 500, 1000, 2000, 5000 nodes, both shapes
    .venv/bin/python bench/bench_core.py --sizes 500 1000 --shapes spread --workdir /tmp/bench
    .venv/bin/python bench/bench_core.py --calls         # and function calls per alert (slower)

`--calls` replays once more under cProfile and prints Python function calls per alert: the
work per alert, which does not depend on how busy the machine is. It is what "flat in cluster
size" is judged by; the time per alert also grows with the working set (cache misses).

Figures are printed as a table; nothing is asserted (these machines are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


SHAPES = {
    "zone": ([], []),
    "spread": (["--spread-zones"], ["--workloads"]),
}


def _generate(nodes: int, workdir: Path, shape: str) -> tuple[Path, Path]:
    cluster_flags, storm_flags = SHAPES[shape]
    suffix = "" if shape == "zone" else f"-{shape}"
    cluster = workdir / f"cluster-{nodes}{suffix}.prom"
    info = workdir / f"cluster-{nodes}{suffix}.json"
    storm = workdir / f"storm-{nodes}{suffix}.jsonl"
    py = sys.executable
    if not cluster.exists():
        subprocess.run(
            [py, str(ROOT / "bench/gen_cluster.py"), "--nodes", str(nodes), "--pods-per-node", "30",
             "--zones", "3", *cluster_flags, "-o", str(cluster), "--info-out", str(info)],
            check=True, capture_output=True,
        )  # fmt: skip
    if not storm.exists():
        subprocess.run(
            [py, str(ROOT / "bench/gen_storm.py"), "--cluster-info", str(info), "--zone", "0",
             "--recover-after", "30m", "--duration", "45m", "--replicas", "2", *storm_flags,
             "-o", str(storm)],
            check=True, capture_output=True,
        )  # fmt: skip
    return cluster, storm


def _child(mode: str, cluster: str, storm: str) -> dict:
    """Runs in a fresh interpreter: one measurement, JSON on stdout (tuned as the CLI is)."""
    from ground.heap import tune_for_large_heaps
    from router.cli.cmd_replay import read_stream
    from router.core.engine import Engine
    from router.core.model import parse_delivery_line
    from router.core.replay import replay
    from rules.ruleset import RuleSet
    from topology.load import load_topology

    tune_for_large_heaps()
    out: dict = {}
    started = time.perf_counter()
    topology = load_topology([cluster]) if mode != "parse" else None
    out["load_s"] = time.perf_counter() - started
    if mode == "load":
        out["entities"] = len(topology)
        out["edges"] = topology.graph.number_of_edges()
    elif mode == "parse":
        alerts = 0
        started = time.perf_counter()
        for _, line in read_stream(storm):
            alerts += len(parse_delivery_line(line).payload.alerts)
        out["seconds"] = time.perf_counter() - started
        out["alerts"] = alerts
    elif mode == "calls":
        # Work, not time: Python function calls per alert, counted by cProfile (C-level). Flat
        # in cluster size when no step walks what grows with the cluster or the open incidents.
        import cProfile
        import pstats

        engine = Engine(topology, RuleSet.load())
        profile = cProfile.Profile()
        profile.enable()
        replay(engine, read_stream(storm), storm)
        profile.disable()
        out["calls"] = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
        out["alerts"] = engine.counters["alerts_received"]
    else:
        engine = Engine(topology, RuleSet.load())
        started = time.perf_counter()
        result = replay(engine, read_stream(storm), storm)
        out["seconds"] = time.perf_counter() - started
        out["alerts"] = engine.counters["alerts_received"]
        out["distinct"] = engine.counters["instances"]
        out["pages"] = sum(1 for n in result.notifications if n.action == "page")
        out["notices"] = sum(1 for n in result.notifications if n.action == "notice")
        out["notifications"] = len(result.notifications)
        out["incidents_paged"] = len({n.incident for n in result.notifications if n.action == "page"})
        # Without correlation every alert that outlives its own grace pages by itself.
        lasted: dict[str, float] = {}
        for event in result.events:
            if event.kind == "alert_fired":
                lasted[event.data["fingerprint"]] = -event.at.timestamp()
            elif event.kind == "alert_resolved" and event.data["fingerprint"] in lasted:
                lasted[event.data["fingerprint"]] += event.at.timestamp()
        uncorrelated = 0
        for fingerprint, state in engine.alerts.items():
            duration = lasted.get(fingerprint, 0)
            grace = state.cls.grace.total_seconds()
            if state.cls.urgency == "page" and (duration <= 0 or duration >= grace):
                uncorrelated += 1
        out["uncorrelated_pages"] = uncorrelated
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _measure(mode: str, cluster: Path, storm: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(cluster), str(storm)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 5000])
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=["zone", "spread"])
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "alert-router-bench"))
    parser.add_argument(
        "--calls", action="store_true", help="also count function calls per alert (a run under cProfile)"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    header = (
        f"{'storm':>6} {'nodes':>6} {'pods':>7} {'load s':>7} {'load MB':>8} {'alerts':>8} {'replay s':>9} "
        f"{'alerts/s':>9} {'parse-only/s':>12} {'µs/alert':>9} {'replay MB':>9} {'pages':>6} "
        f"{'uncorrelated':>12}" + (f" {'calls/alert':>11}" if args.calls else "")
    )
    print(header)
    for shape in args.shapes:
        for nodes in args.sizes:
            _report(shape, nodes, *_generate(nodes, workdir, shape), calls=args.calls)
    print(
        "\nalerts = every alert of every delivery (HA pair: each delivery twice); "
        "pages = what the router sent; uncorrelated = pages without correlation "
        "(each alert that outlived its own grace)."
        + (
            " calls/alert = Python function calls per alert in the replay (cProfile): the work."
            if args.calls
            else ""
        )
    )
    return 0


def _report(shape: str, nodes: int, cluster: Path, storm: Path, *, calls: bool = False) -> None:
    load = _measure("load", cluster, storm)
    parse = _measure("parse", cluster, storm)
    run = _measure("replay", cluster, storm)
    rate = run["alerts"] / run["seconds"]
    counted = _measure("calls", cluster, storm) if calls else None
    print(
        f"{shape:>6} {nodes:>6} {nodes * 30:>7} {load['load_s']:>7.1f} {load['peak_rss_mb']:>8.0f} "
        f"{run['alerts']:>8} {run['seconds']:>9.2f} {rate:>9.0f} "
        f"{parse['alerts'] / parse['seconds']:>12.0f} {1e6 / rate:>9.1f} {run['peak_rss_mb']:>9.0f} "
        f"{run['pages']:>6} {run['uncorrelated_pages']:>12}"
        + (f" {counted['calls'] / counted['alerts']:>11.0f}" if counted else ""),
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
