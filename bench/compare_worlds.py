"""Compare two `bench_worlds.py --json` runs world by world.

Totals hide a fix that breaks another world: this lists the worlds that now pass and fail, those
still failing differently, and the faults paged later (or earlier) by more than `--slack` seconds.

    .venv/bin/python bench/compare_worlds.py before.json after.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


class BadRun(Exception):
    pass


def load(path: Path) -> dict[int, dict[str, Any]]:
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise BadRun(f"{path}: {error.strerror}") from None
    worlds: dict[int, dict[str, Any]] = {}
    for number, line in enumerate(lines, 1):
        try:
            world = json.loads(line)
            seed = int(world["seed"])
            if not {"violations", "kinds"} <= world.keys():
                raise KeyError("violations, kinds")
        except (ValueError, KeyError, TypeError) as error:
            message = f"not a bench_worlds.py --json line (missing or bad {error})"
            raise BadRun(f"{path}:{number}: {message}") from None
        worlds[seed] = world
    return worlds


def page_shifts(
    before: dict[int, dict[str, Any]], after: dict[int, dict[str, Any]], slack: float
) -> list[tuple[int, str, list[str], float]]:
    """(seed, fault, kinds, minutes later) for every fault paged in both runs whose time to page moved."""
    shifts = []
    for seed in sorted(before.keys() & after.keys()):
        then, now = before[seed].get("to_page", {}), after[seed].get("to_page", {})
        for fault, seconds in then.items():
            moved = now.get(fault)
            if seconds is not None and moved is not None and abs(moved - seconds) > slack:
                shifts.append((seed, fault, before[seed]["kinds"], round((moved - seconds) / 60, 1)))
    return shifts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--slack", type=float, default=30.0, help="seconds a page may move unreported")
    args = parser.parse_args(argv)
    try:
        before, after = load(args.before), load(args.after)
    except BadRun as error:
        print(f"compare_worlds: {error}", file=sys.stderr)
        return 2
    common = sorted(before.keys() & after.keys())
    passing = {seed: not after[seed]["violations"] for seed in common}
    passed = {seed: not before[seed]["violations"] for seed in common}
    fixed = [seed for seed in common if passing[seed] and not passed[seed]]
    broke = [seed for seed in common if passed[seed] and not passing[seed]]
    changed = [
        seed
        for seed in common
        if not passed[seed] and not passing[seed] and before[seed]["violations"] != after[seed]["violations"]
    ]
    print(f"worlds in both runs  {len(common)}")
    print(f"fixed                {fixed}")
    print(f"broke                {broke}")
    for seed in broke:
        print(f"  {seed} {after[seed]['kinds']}: {'; '.join(after[seed]['violations'][:3])}")
    print(f"still failing, changed  {changed}")
    shifts = page_shifts(before, after, args.slack)
    later = sorted((s for s in shifts if s[3] > 0), key=lambda s: -s[3])
    earlier = sorted((s for s in shifts if s[3] < 0), key=lambda s: s[3])
    for name, group in (("paged later", later), ("paged earlier", earlier)):
        print(f"{name:<20} {len(group)}")
        for seed, fault, kinds, minutes in group[:15]:
            print(f"  {seed} {fault} {'+'.join(kinds)}: {minutes:+} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
