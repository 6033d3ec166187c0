"""Score the correlation engine over many randomised worlds (router/sim/worlds.py, docs/worlds.md).

    python bench/bench_worlds.py --worlds 500 --seed 0 --show-failures 5
    python bench/bench_worlds.py --worlds 200 --kinds dns_down bad_rollout
    python bench/bench_worlds.py --worlds 1000 --routing varied   # other teams' Alertmanagers
    python bench/bench_worlds.py --dump 42 --out /tmp/world-42     # the files of one world

Each world (seed S, S+1, ...) is generated, written as a kube-state-metrics dump (and a topology
file when it has service dependencies) plus a recorded Alertmanager stream, replayed through the
engine exactly as `alert-router replay` does with the bundled rule pack (or `--rules`), and
scored against its ground truth (router/sim/score.py). Prints the figures over all worlds, per
fault kind, and a diagnosis of the `--show-failures` worst worlds. Worlds run in `--jobs`
processes (default: one per CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from router.cli.cmd_replay import load_engine_settings  # noqa: E402
from router.core.settings import EngineSettings  # noqa: E402
from router.sim.faults import KINDS  # noqa: E402
from router.sim.score import WorldScore, aggregate, diagnose, format_figures, run_world  # noqa: E402
from router.sim.worlds import ROUTING, generate_world  # noqa: E402
from rules.ruleset import RuleSet  # noqa: E402

_RULES: RuleSet | None = None
_SETTINGS: EngineSettings | None = None
_TIMEOUT: float | None = None


def _init(rule_paths: list[str] | None, config: str | None, timeout: float | None) -> None:
    """Per worker process: load the rule set and the engine settings once."""
    global _RULES, _SETTINGS, _TIMEOUT
    _RULES = RuleSet.load(rule_paths or None)
    _SETTINGS = load_engine_settings(config)
    _TIMEOUT = timeout


def _run(job: tuple[int, tuple[str, ...] | None, str]) -> WorldScore:
    seed, kinds, routing = job
    assert _RULES is not None
    return run_world(seed, _RULES, kinds, _SETTINGS, timeout=_TIMEOUT, routing=routing)


def run_many(
    seeds: range,
    kinds: tuple[str, ...] | None,
    jobs: int,
    rules: list[str] | None,
    config: str | None,
    timeout: float | None = None,
    routing: str = "kube-prometheus",
) -> list[WorldScore]:
    work = [(seed, kinds, routing) for seed in seeds]
    if jobs <= 1:
        _init(rules, config, timeout)
        return [_run(job) for job in work]
    initargs = (rules, config, timeout)
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init, initargs=initargs) as pool:
        return list(pool.map(_run, work, chunksize=max(1, len(work) // (jobs * 8))))


def dump(seed: int, kinds: tuple[str, ...] | None, out: str, routing: str = "kube-prometheus") -> int:
    world = generate_world(seed, kinds, routing)
    paths = world.write(out)
    topology = " ".join(f"--topology {world_path}" for world_path in world.topology_paths(paths))
    print(f"world {seed}: {', '.join(f'{f.id} {f.kind} -> {f.root}' for f in world.faults)}")
    for role, path in paths.items():
        print(f"  {role:<9} {path}")
    print(f"replay: .venv/bin/alert-router replay {topology} --alerts {paths['alerts']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worlds", type=int, default=100, help="how many worlds (seeds S..S+N-1)")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, help="draw only these fault kinds")
    parser.add_argument(
        "--routing",
        choices=ROUTING,
        default="kube-prometheus",
        help="how Alertmanager delivers the worlds: kube-prometheus' routing, or each world's own "
        "grouping, timings and HA setup (docs/worlds.md)",
    )
    parser.add_argument(
        "--show-failures", type=int, default=3, metavar="K", help="diagnose the K worst worlds"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--rules", action="append", help="rule files (default: the bundled pack)")
    parser.add_argument("--config", help="service configuration whose engine: section tunes the engine")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds one replay may take before it counts as failed"
    )
    parser.add_argument("--json", help="write one JSON line per world (figures and violations) here")
    parser.add_argument("--dump", type=int, metavar="SEED", help="write the files of one world and exit")
    parser.add_argument("--out", default="world", help="directory for --dump")
    args = parser.parse_args(argv)
    kinds = tuple(args.kinds) if args.kinds else None
    if args.dump is not None:
        return dump(args.dump, kinds, args.out, args.routing)
    started = time.perf_counter()
    seeds = range(args.seed, args.seed + args.worlds)
    results = run_many(seeds, kinds, args.jobs, args.rules, args.config, args.timeout or None, args.routing)
    wall = time.perf_counter() - started
    overall, by_kind = aggregate(results)
    print(format_figures(overall, by_kind))
    stages = {k: sum(r.seconds.get(k, 0.0) for r in results) for k in ("generate", "load", "replay")}
    per_world = ", ".join(f"{k} {1000 * v / max(1, len(results)):.1f} ms" for k, v in stages.items())
    print(f"\n{len(results)} worlds in {wall:.1f} s on {args.jobs} process(es); per world: {per_world}")
    worst = sorted((r for r in results if r.violations()), key=lambda r: (-r.badness, r.seed))
    for result in worst[: args.show_failures]:
        print()
        print(diagnose(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            for r in results:
                row = {
                    "seed": r.seed,
                    "kinds": [f.kind for f in r.faults],
                    "must_page": r.must_page,
                    "pages": len(r.pages),
                    "correct_pages": r.correct_pages,
                    "paged_faults": r.paged_faults,
                    "quiet_paged": r.quiet_paged,
                    "symptoms": r.symptoms,
                    "attached": r.attached,
                    "verdicts": [p.verdict for p in r.pages],
                    "to_page": {f.id: f.to_page for f in r.faults if f.must_page},
                    "violations": r.violations(),
                    "seconds": {k: round(v, 4) for k, v in r.seconds.items()},
                }
                handle.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
