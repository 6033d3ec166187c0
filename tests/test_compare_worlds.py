"""bench/compare_worlds.py: two runs of the worlds, compared world by world."""

from __future__ import annotations

import json
from pathlib import Path

from bench import compare_worlds


def _run(path: Path, worlds: list[tuple[int, list[str], dict[str, float]]]) -> Path:
    lines = [
        json.dumps({"seed": seed, "kinds": ["node_down"], "violations": violations, "to_page": to_page})
        for seed, violations, to_page in worlds
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_lists_what_a_change_fixed_broke_and_delayed(tmp_path, capsys):
    before = _run(
        tmp_path / "before.json",
        [(1, ["f1 never paged"], {}), (2, [], {"f1": 600.0}), (3, [], {"f1": 900.0}), (4, [], {"f1": 60.0})],
    )
    after = _run(
        tmp_path / "after.json",
        [
            (1, [], {"f1": 700.0}),
            (2, ["f1: 3/4 symptoms attached"], {"f1": 600.0}),
            (3, [], {"f1": 1080.0}),
            (4, [], {"f1": 75.0}),
        ],
    )
    assert compare_worlds.main([str(before), str(after)]) == 0
    out = capsys.readouterr().out
    assert "fixed                [1]" in out
    assert "broke                [2]" in out and "f1: 3/4 symptoms attached" in out
    assert "paged later          1" in out and "3 f1 node_down: +3.0 min" in out
    assert "paged earlier        0" in out  # 15 s earlier is within the slack


def test_a_line_that_is_not_a_world_is_named_with_its_file_and_line(tmp_path, capsys):
    good = _run(tmp_path / "good.json", [(1, [], {})])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"seed": 1, "kinds": [], "violations": []}) + '\n{"seed": 2}\n')
    assert compare_worlds.main([str(good), str(bad)]) == 2
    assert f"{bad}:2: not a bench_worlds.py --json line" in capsys.readouterr().err
    assert compare_worlds.main([str(good), str(tmp_path / "missing.json")]) == 2
