"""Score the engine on IBM ITBench's SRE scenarios (router/sim/itbench.py): precision, recall and
pages per incident of (a) this router and (b) the baseline that pages every alert once.

    python bench/bench_itbench.py                        # the shipped development half, seed 0
    python bench/bench_itbench.py --seeds 5 --show 10    # five jitter/noise draws, the worst 10
    python bench/bench_itbench.py --groundtruth other.json --json
    python bench/bench_itbench.py --dump 3 --out /tmp/itbench-3   # one scenario's files
    # alert-router replay --topology /tmp/itbench-3/topology.yaml --alerts /tmp/itbench-3/alerts.jsonl

`--groundtruth` takes any file in the format of router/sim/data/itbench/groundtruth-dev.json
(ITBench's groundtruth_v1.yaml files converted to JSON), e.g. the held-out half.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from ground.errors import InputError  # noqa: E402
from router.sim.itbench import APPS, GROUNDTRUTH, Scenario, evaluate, load_scenarios, synthesise  # noqa: E402
from rules.ruleset import RuleSet  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--groundtruth", default=str(GROUNDTRUTH), help="ground truth JSON (default: shipped)"
    )
    parser.add_argument("--seeds", type=int, default=1, help="jitter and noise draws per scenario")
    parser.add_argument("--rules", action="append", help="rule file(s) instead of the bundled pack")
    parser.add_argument("--show", type=int, default=0, help="list the pages of N scenarios that went wrong")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument(
        "--dump", type=int, metavar="ID", help="write one scenario's files (with --out) and stop"
    )
    parser.add_argument("--out", help="directory for --dump: topology.yaml, alerts.jsonl, truth.json")
    args = parser.parse_args(argv)
    try:
        scenarios = load_scenarios(args.groundtruth)
    except InputError as exc:
        print(f"bench_itbench: {exc}", file=sys.stderr)
        return 2
    if args.dump is not None:
        return _dump(scenarios, args.dump, args.out, parser)
    figures, scores = evaluate(scenarios, range(args.seeds), RuleSet.load(args.rules or None))
    router, baseline = figures.router(), figures.baseline()
    if args.json:
        print(
            json.dumps(
                {
                    "cases": figures.scenarios,
                    "router": router,
                    "baseline": baseline,
                    "skipped": figures.skipped,
                },
                sort_keys=True,
            )
        )
        return 0
    print(
        f"{figures.scenarios} cases ({len(scenarios) - len(figures.skipped)} scenarios x {args.seeds} seeds)"
    )
    if figures.skipped:
        known = ", ".join(sorted(APPS))
        print(f"skipped (application not modelled; known: {known}): {figures.skipped}")
    print(f"{'':24} {'router':>8} {'page every alert':>17}")
    for key, label in (
        ("precision", "precision"),
        ("recall", "recall"),
        ("pages_per_incident", "pages per incident"),
    ):
        print(f"{label:24} {router[key]:8.2f} {baseline[key]:17.2f}")
    wrong = [s for s in scores if not s.recalled or s.correct < len(s.pages)]
    for score in wrong[: args.show]:
        pages = ", ".join(
            f"{root}{'' if ok else ' (wrong)'}{' <- ' + cause if cause else ''}"
            for root, ok, cause in score.pages
        )
        print(f"  scenario {score.scenario}: {pages or 'no page'}")
    return 0


def _dump(
    scenarios: list[Scenario], scenario_id: int, out: str | None, parser: argparse.ArgumentParser
) -> int:
    found = [s for s in scenarios if s.id == scenario_id]
    if not out or not found:
        parser.error("--dump needs --out DIR and the id of a scenario of the ground truth")
    case = synthesise(found[0], 0)
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "topology.yaml").write_text(yaml.safe_dump(case.topology_document, sort_keys=False))
    (directory / "alerts.jsonl").write_text(case.stream_text)
    truth = {
        "scenario": scenario_id,
        "root_components": sorted(case.roots),
        "root_groups": list(found[0].root_groups),
    }
    (directory / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(f"wrote {directory}/topology.yaml, alerts.jsonl ({len(case.lines)} deliveries), truth.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
