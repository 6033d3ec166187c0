"""The engine's decisions, locked: a digest of the notifications `replay` produces for the
example storm, every storm of the scenario suite's shapes and the first 300 generated worlds.

A refactoring must leave every digest as it is (byte-identical notifications); a change of
behaviour updates them on purpose, reviewed with the figures of bench/bench_worlds.py:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_decisions_digest.py
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ground.jsonio import canonical_json
from router.cli.cmd_replay import read_stream
from router.core.engine import Engine
from router.core.replay import replay
from router.sim.score import replay_world
from router.sim.worlds import generate_world
from rules.ruleset import RuleSet
from topology.load import load_topology

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "decisions.json"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
WORLDS = range(300)


def _digest(notifications: list[dict]) -> str:
    text = "\n".join(canonical_json(n) for n in notifications)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _digests() -> dict[str, str]:
    rules = RuleSet.load()
    out: dict[str, str] = {}
    engine = Engine(load_topology([ROOT / "examples" / "cluster.prom"]), rules)
    stream = ROOT / "examples" / "node-down.jsonl"
    result = replay(engine, read_stream(stream), str(stream))
    out["examples/node-down"] = _digest([n.to_dict() for n in result.notifications])
    for seed in WORLDS:
        notifications, _ = replay_world(generate_world(seed), rules)
        out[f"world/{seed}"] = _digest(notifications)
    return out


def test_decisions_are_those_recorded():
    actual = _digests()
    if UPDATE:
        GOLDEN.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    changed = sorted(k for k in expected if actual.get(k) != expected[k])
    assert not changed, (
        f"{len(changed)} replays decide differently: {changed[:10]} (UPDATE_GOLDEN=1 if on purpose)"
    )
    assert set(actual) == set(expected)
