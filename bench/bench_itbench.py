"""Score the engine on IBM ITBench's SRE scenarios (router/sim/itbench.py): precision, recall and
pages per incident of (a) this router and (b) the baseline that pages every alert once.

    python bench/bench_itbench.py                        # the shipped development half, seed 0
    python bench/bench_itbench.py --seeds 5 --show 10    # five jitter/noise draws, the worst 10
    python bench/bench_itbench.py --groundtruth other.json --json

`--groundtruth` takes any file in the format of router/sim/data/itbench/groundtruth-dev.json
(ITBench's groundtruth_v1.yaml files converted to JSON), e.g. the held-out half.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from router.sim.itbench import APPS, GROUNDTRUTH, evaluate, load_scenarios  # noqa: E402
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
    args = parser.parse_args(argv)
    scenarios = load_scenarios(args.groundtruth)
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


if __name__ == "__main__":
    sys.exit(main())
