"""One digest of the notifications `replay` gives for generated worlds 0..N-1.

A refactoring of the engine must leave it as it is: run it on the commit before and the commit
after (tests/test_decisions_digest.py holds 300 worlds in the suite; this takes any number).

    .venv/bin/python bench/world_digest.py --worlds 1000
"""

from __future__ import annotations

import argparse
import hashlib

from ground.jsonio import canonical_json
from router.sim.score import replay_world
from router.sim.worlds import generate_world
from rules.ruleset import RuleSet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=1000, help="worlds 0..N-1")
    args = parser.parse_args()
    rules = RuleSet.load()
    digest = hashlib.sha256()
    count = 0
    for seed in range(args.worlds):
        notifications, _ = replay_world(generate_world(seed), rules)
        count += len(notifications)
        digest.update("\n".join(canonical_json(n) for n in notifications).encode() + b"\n--\n")
    print(f"{digest.hexdigest()[:16]}  {count} notifications over {args.worlds} worlds")


if __name__ == "__main__":
    main()
