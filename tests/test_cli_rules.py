"""`alert-router rules lint` and `rules test` as a user runs them."""

from __future__ import annotations

from pathlib import Path

from router.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests/fixtures/rules"


def test_lint_passes_the_bundled_pack(capsys):
    assert main(["rules", "lint", str(ROOT / "rules/packs/kubernetes.yaml")]) == 0
    assert "clean" in capsys.readouterr().out


def test_lint_names_file_line_rule_and_field(capsys):
    assert main(["rules", "lint", str(FIXTURES / "bad-rules.yaml")]) == 1
    err = capsys.readouterr().err
    assert "bad-rules.yaml:6: rule bad-matcher: match[0]" in err
    assert "rule typo-field: propagate: unknown field" in err


def test_rule_tests_count_passes_and_failures(capsys):
    assert main(["rules", "test", str(FIXTURES / "kubernetes-pack.test.yaml")]) == 0
    assert capsys.readouterr().out.strip().endswith("21 passed, 0 failed")
    assert main(["rules", "test", str(FIXTURES / "failing.test.yaml")]) == 1
