"""`rules lint`: the bundled pack is clean; broken and dubious files are reported as
`file:line: rule NAME: message`, every problem at once."""

from __future__ import annotations

import json
from pathlib import Path

from rules.lint import lint_files
from rules.ruleset import BUNDLED_PACK
from tests.reference import CATALOGUE

FIXTURES = Path(__file__).parent / "fixtures" / "rules"


def test_bundled_pack_is_clean():
    assert lint_files([BUNDLED_PACK]) == []


def test_bundled_pack_covers_every_catalogue_rule_with_its_severity_and_static_labels():
    assert lint_files([BUNDLED_PACK], catalogue=CATALOGUE) == []


def test_broken_file_reports_every_problem_with_file_line_rule_and_field():
    bad = FIXTURES / "bad-rules.yaml"
    problems = lint_files([bad])
    expected = [
        (3, None, "defaults.grace.critcal"),
        (6, "rule bad-matcher", "invalid regex in matcher 'alertname=~\"KubeNode(NotReady\"'"),
        (9, "rule unterminated", "unterminated quoted string at position 10"),
        (13, "rule component-on-pod", "entity.component: only kind node has components"),
        (17, "rule typo-field", "propagate: unknown field"),
        (21, "rule bad-duration", "grace: invalid duration '10 minutes'"),
        (24, "rule bad-template", "entity.name: template '{job_name'"),
        (25, "rule typo-field", "name: rule name 'typo-field' is used twice"),
        (32, "rule kind-typo", "entity.kind: unknown kind 'deploymnet'"),
    ]
    assert len(problems) == len(expected), "\n".join(problems)
    for problem, (line, rule, fragment) in zip(problems, expected, strict=True):
        assert problem.startswith(f"{bad}:{line}: "), problem
        if rule:
            assert f": {rule}: " in problem, problem
        assert fragment in problem, problem


def test_lint_finds_dead_rules_and_unmapped_contradictions_in_a_loadable_file():
    path = FIXTURES / "lint-only.yaml"
    problems = lint_files([path])
    assert problems == [
        f"{path}:6: rule node-down-again: match: never used: earlier rule node-down ({path}:3) "
        "has identical matchers",
        f"{path}:9: rule node-not-ready-critical: match: never used: earlier rule node-down ({path}:3) "
        "matches everything it matches",
        f"{path}:15: rule pods-critical: match: never used: earlier rule pods ({path}:12) "
        "matches everything it matches",
        f"{path}:19: unmapped: KubeNodeUnreachable is listed unmapped but rule node-down ({path}:3) "
        "maps it; remove one",
        f"{path}:21: unmapped: Watchdog listed twice (also {path}:20)",
    ]


def test_narrower_rules_after_broader_ones_are_fine_the_other_way_round(tmp_path):
    path = tmp_path / "ordered.yaml"
    path.write_text(
        """
rules:
  - name: critical-first
    match: ['alertname="A"', 'severity="critical"']
  - name: a
    match: ['alertname=~"A|B"']
  - name: not-dns
    match: ['alertname="T"', 'job!~"kube-dns|coredns"']
  - name: dns-target-after-negative
    match: ['alertname="T"', 'job="kube-dns"']
  - name: other-target
    match: ['alertname="T"', 'job="node-exporter"']
"""
    )
    problems = lint_files([path])
    # job="kube-dns" is excluded by the earlier !~, so it is reachable; node-exporter is not.
    assert len(problems) == 1
    assert "rule other-target: match: never used: earlier rule not-dns" in problems[0]


def test_rule_names_across_files_must_be_unique(tmp_path):
    first = tmp_path / "first.yaml"
    second = tmp_path / "second.yaml"
    first.write_text("rules:\n  - name: same\n    match: ['alertname=\"A\"']\n")
    second.write_text(
        "rules:\n  - name: other\n    match: ['alertname=\"B\"']\n"
        "  - name: same\n    match: ['alertname=\"C\"']\n"
    )
    assert lint_files([first, second]) == [
        f"{second}:4: rule same: name: also defined at {first}:2; "
        "classifications report rules by name, rename one"
    ]


def test_coverage_against_a_catalogue(tmp_path):
    catalogue = tmp_path / "alerts.json"
    catalogue.write_text(
        json.dumps(
            [
                {"alertname": "A", "severity": "critical", "static_labels": None},
                {"alertname": "A", "severity": "warning", "static_labels": None},
                {"alertname": "B", "severity": "warning", "static_labels": {"long": "1h"}},
                {"alertname": "C", "severity": "info", "static_labels": None},
            ]
        )
    )
    pack = tmp_path / "pack.yaml"
    pack.write_text(
        """
rules:
  - name: a-critical
    match: ['alertname="A"', 'severity="critical"']
  - name: b
    match: ['alertname="B"', 'long="1h"']
unmapped:
  - {alertname: C, reason: "an inhibition helper"}
"""
    )
    problems = lint_files([pack], catalogue=catalogue)
    assert problems == [
        f"{pack}: catalogue alert A (severity warning) is neither mapped by a rule nor listed unmapped"
    ]


def test_the_bundled_pack_minus_a_rule_is_reported(tmp_path):
    text = BUNDLED_PACK.read_text()
    start = text.index("  - name: kubelet-down")
    end = text.index("  # ---- nodes (node-exporter)")
    copy = tmp_path / "kubernetes.yaml"
    copy.write_text(text[:start] + text[end:])
    assert lint_files([copy], catalogue=CATALOGUE) == [
        f"{copy}: catalogue alert KubeletDown (severity critical) "
        "is neither mapped by a rule nor listed unmapped"
    ]


def test_unreadable_and_invalid_yaml_files(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - name: x\n    match: [unclosed\n")
    problems = lint_files([tmp_path / "missing.yaml", broken])
    assert problems[0].startswith(f"{tmp_path / 'missing.yaml'}: cannot read rule file")
    assert problems[1].startswith(f"{broken}:4: not valid YAML")
