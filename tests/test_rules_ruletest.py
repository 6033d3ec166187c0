"""`rules test`: cases pass and fail with counts, failures name file, line, test and field."""

from __future__ import annotations

import sys
import types
from pathlib import Path

from rules.ruletest import run_rule_tests
from topology.graph import Topology

FIXTURES = Path(__file__).parent / "fixtures" / "rules"


def test_bundled_pack_cases_pass():
    passed, failed, messages = run_rule_tests([FIXTURES / "kubernetes-pack.test.yaml"])
    assert (passed, failed, messages) == (21, 0, [])


def test_failures_are_counted_and_explained():
    path = FIXTURES / "failing.test.yaml"
    passed, failed, messages = run_rule_tests([path])
    assert (passed, failed) == (2, 2)
    assert messages == [
        f"{path}:6: test 'wrong entity on purpose': entity: expected 'node/default/worker-2', got "
        "'node/default/worker-1'; propagates: expected false, got true "
        "(classified by rule node-not-ready: label node)",
        f"{path}:12: test 'label value must be a string': labels.node: label values are strings; quote 42",
    ]


def test_counts_add_up_over_several_files():
    passed, failed, _ = run_rule_tests(
        [FIXTURES / "kubernetes-pack.test.yaml", FIXTURES / "failing.test.yaml"]
    )
    assert (passed, failed) == (23, 2)


def test_a_broken_file_is_one_failure_with_its_line(tmp_path):
    broken = tmp_path / "broken.test.yaml"
    broken.write_text("tests:\n  - name: x\n    labels: {alertname: A\n")
    passed, failed, messages = run_rule_tests([broken, tmp_path / "missing.test.yaml"])
    assert (passed, failed) == (0, 2)
    assert messages[0].startswith(f"{broken}:4: not valid YAML")
    assert messages[1].startswith(f"{tmp_path / 'missing.test.yaml'}: cannot read test file")


def test_malformed_cases_fail_with_the_field(tmp_path):
    path = tmp_path / "cases.test.yaml"
    path.write_text(
        """tests:
  - name: unknown expectation
    labels: {alertname: Watchdog}
    expect: {rules: watchdog}
  - name: bad duration
    labels: {alertname: Watchdog}
    expect: {grace: soon}
  - name: typo in case
    label: {alertname: Watchdog}
    expect: {rule: watchdog}
  - name: how is a phrase
    labels: {alertname: Watchdog}
    expect: {how: "pipeline singleton", grace: 7m, outlive_root: 10m}
"""
    )
    passed, failed, messages = run_rule_tests([path])
    assert (passed, failed) == (1, 3)
    assert "cases.test.yaml:2: test 'unknown expectation': expect.rules: unknown field" in messages[0]
    assert "cases.test.yaml:5: test 'bad duration': expect.grace: invalid duration 'soon'" in messages[1]
    assert "cases.test.yaml:8: test 'typo in case': unknown key 'label'" in messages[2]


def test_rule_files_are_relative_to_the_test_file(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "mine.yaml").write_text(
        "rules:\n  - name: mine\n    match: ['alertname=\"A\"']\n    entity: {kind: node, name: '{node}'}\n"
    )
    (tmp_path / "tests").mkdir()
    test = tmp_path / "tests" / "mine.test.yaml"
    test.write_text(
        """rule_files: [../rules/mine.yaml]
tests:
  - name: mine maps A
    labels: {alertname: A, node: n1}
    expect: {rule: mine, entity: node/default/n1}
  - name: the bundled pack is not loaded
    labels: {alertname: KubeNodeNotReady, node: n1}
    expect: {rule: null, entity: node/default/n1}
"""
    )
    assert run_rule_tests([test]) == (2, 0, [])
    missing = tmp_path / "tests" / "missing.test.yaml"
    missing.write_text(
        "rule_files: [nope.yaml]\ntests:\n  - {name: x, labels: {alertname: A}, expect: {rule: null}}\n"
    )
    passed, failed, messages = run_rule_tests([missing])
    assert (passed, failed) == (0, 1)
    assert messages[0].startswith(f"{missing}:1: rule_files: ")
    assert "nope.yaml: cannot read rule file" in messages[0]


def test_topology_files_go_through_the_topology_loader(tmp_path, monkeypatch):
    seen: list[list[str]] = []

    def load_topology(paths):
        seen.append(paths)
        topology = Topology()
        node = topology.add("node/default/worker-1")
        topology.index_node_ip("default", "10.0.1.21", node)
        return topology

    monkeypatch.setitem(sys.modules, "topology.load", types.SimpleNamespace(load_topology=load_topology))
    test = tmp_path / "with-topology.test.yaml"
    test.write_text(
        """topology: [cluster.prom]
entities:
  - {name: node/default/worker-2, internal_ip: 10.0.1.22}
tests:
  - name: from the loaded topology
    labels: {alertname: NodeSystemSaturation, instance: "10.0.1.21:9100"}
    expect: {entity: node/default/worker-1}
  - name: from the inline entities
    labels: {alertname: NodeSystemSaturation, instance: "10.0.1.22:9100"}
    expect: {entity: node/default/worker-2}
"""
    )
    assert run_rule_tests([test]) == (2, 0, [])
    assert seen == [[str(tmp_path / "cluster.prom")]]


def test_inline_entity_errors_name_the_entry(tmp_path):
    test = tmp_path / "bad-entities.test.yaml"
    test.write_text(
        "entities:\n  - {name: node/default/a}\n  - {name: nonsense}\n"
        "tests:\n  - {name: x, labels: {alertname: A}, expect: {rule: null}}\n"
    )
    passed, failed, messages = run_rule_tests([test])
    assert (passed, failed) == (0, 1)
    assert messages[0].startswith(f"{test}:3: entities[1]: not an entity name")
