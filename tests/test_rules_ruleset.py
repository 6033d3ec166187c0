"""RuleSet mechanics: load order, first match wins, the alertname index, defaults, entity
alternatives and look-ups, and load errors that name file, line, rule and field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ground.errors import InputError
from router.core.settings import EngineSettings
from rules.ruleset import BUNDLED_PACK, RuleSet
from topology.graph import Topology

EMPTY = Topology()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_without_paths_is_the_bundled_pack():
    rules = RuleSet.load()
    assert [str(f.path) for f in rules.files] == [str(BUNDLED_PACK)]
    assert RuleSet.load([]).rules[0].name == rules.rules[0].name
    assert "InfoInhibitor" in rules.unmapped


def test_earlier_files_win(tmp_path):
    mine = write(
        tmp_path,
        "mine.yaml",
        """
defaults: {grace: {warning: 7m}}
rules:
  - name: my-node-rule
    match: ['alertname="KubeNodeNotReady"', 'node=~"gpu-.*"']
    entity: {kind: node, name: "{node}"}
    propagates: false
    grace: 30m
""",
    )
    rules = RuleSet.load([mine, BUNDLED_PACK])
    gpu = rules.classify({"alertname": "KubeNodeNotReady", "node": "gpu-1"}, EMPTY)
    assert (gpu.rule, gpu.propagates, gpu.grace) == ("my-node-rule", False, timedelta(minutes=30))
    cpu = rules.classify({"alertname": "KubeNodeNotReady", "node": "cpu-1"}, EMPTY)
    assert cpu.rule == "node-not-ready"
    # Pack defaults merge key by key, earlier file first: warning from mine, critical from the pack.
    unknown = rules.classify({"alertname": "X"}, EMPTY)
    assert unknown.grace == timedelta(minutes=7)
    assert rules.classify({"alertname": "X", "severity": "critical"}, EMPTY).grace == timedelta(minutes=2)


RULES_IN_ORDER = """
rules:
  - name: named-a
    match: ['alertname="A"', 'team="x"']
    entity: {kind: node, name: "{node}"}
  - name: generic
    match: ['team=~"x|y"']
    entity: {kind: node, name: "{node}"}
  - name: named-a-or-b
    match: ['alertname=~"A|B"']
    entity: {kind: node, name: "{node}"}
  - name: by-regex
    match: ['alertname=~"C.*"']
    entity: {kind: node, name: "{node}"}
"""


def test_first_match_wins_across_indexed_and_generic_rules():
    rules = RuleSet.from_yaml(RULES_IN_ORDER)
    assert rules.classify({"alertname": "A", "team": "x"}, EMPTY).rule == "named-a"
    assert (
        rules.classify({"alertname": "A", "team": "y"}, EMPTY).rule == "generic"
    )  # generic sits before named-a-or-b
    assert rules.classify({"alertname": "A"}, EMPTY).rule == "named-a-or-b"
    assert rules.classify({"alertname": "B", "team": "y"}, EMPTY).rule == "generic"
    assert rules.classify({"alertname": "Cxyz"}, EMPTY).rule == "by-regex"
    assert rules.classify({"alertname": "D"}, EMPTY).rule is None


def test_the_index_only_offers_rules_that_can_match():
    rules = RuleSet.from_yaml(RULES_IN_ORDER)
    assert [r.name for r in rules.candidates("A")] == ["named-a", "generic", "named-a-or-b", "by-regex"]
    assert [r.name for r in rules.candidates("B")] == ["generic", "named-a-or-b", "by-regex"]
    assert [r.name for r in rules.candidates("Zzz")] == ["generic", "by-regex"]


def test_entity_alternatives_are_tried_in_order_and_empty_labels_fail_them():
    rules = RuleSet.from_yaml(
        """
rules:
  - name: target
    match: ['alertname="TargetDown"']
    entity:
      - {kind: service, namespace: "{namespace}", name: "{service}"}
      - {kind: service, namespace: "{namespace}", name: "{job}-{endpoint}"}
"""
    )
    assert rules.classify({"alertname": "TargetDown", "namespace": "n", "service": "s"}, EMPTY).entity == (
        "service/default/n/s"
    )
    second = rules.classify(
        {"alertname": "TargetDown", "namespace": "n", "service": "", "job": "j", "endpoint": "m"}, EMPTY
    )
    assert second.entity == "service/default/n/j-m"
    none = rules.classify({"alertname": "TargetDown", "namespace": "n", "job": "j"}, EMPTY)
    assert none.entity is None and none.rule == "target"
    assert "no entity" in none.how


def test_rule_policy_and_defaults_by_severity():
    rules = RuleSet.from_yaml(
        """
defaults: {grace: {critical: 1m}, outlive_root: 20m}
rules:
  - name: plain
    match: ['alertname="P"']
  - name: tuned
    match: ['alertname="T"']
    grace: 9m
    outlive_root: 1h
    urgency: notice
    propagates: false
"""
    )
    plain_critical = rules.classify({"alertname": "P", "severity": "critical"}, EMPTY)
    assert (plain_critical.grace, plain_critical.outlive_root) == (
        timedelta(minutes=1),
        timedelta(minutes=20),
    )
    assert plain_critical.propagates is True  # the schema's default for a rule
    assert plain_critical.entity is None
    assert rules.classify({"alertname": "P"}, EMPTY).grace == timedelta(minutes=7)  # built-in warning
    assert rules.classify({"alertname": "P", "severity": "info"}, EMPTY).urgency == "quiet"
    tuned = rules.classify({"alertname": "T", "severity": "info"}, EMPTY)
    assert (tuned.grace, tuned.outlive_root, tuned.urgency) == (
        timedelta(minutes=9),
        timedelta(hours=1),
        "notice",
    )


def test_classify_caches_nothing_about_the_topology():
    rules = RuleSet.load()
    topology = Topology()
    labels = {"alertname": "NodeSystemSaturation", "instance": "10.0.1.21:9100"}
    assert rules.classify(labels, topology).entity is None
    node = topology.add("node/default/worker-1")
    topology.index_node_ip("default", "10.0.1.21", node)
    assert rules.classify(labels, topology).entity == "node/default/worker-1"


def test_pod_by_ip_lookup():
    rules = RuleSet.from_yaml(
        """
rules:
  - name: by-address
    match: ['alertname="AppDown"']
    entity:
      - {kind: pod, name: "{instance}", via: pod-by-ip}
      - {kind: service, name: "{service}"}
"""
    )
    topology = Topology()
    pod = topology.add("pod/default/shop/checkout-1")
    topology.index_pod_ip("default", "10.244.1.17", pod)
    found = rules.classify(
        {"alertname": "AppDown", "instance": "10.244.1.17:8080", "namespace": "shop"}, topology
    )
    assert found.entity == pod
    fallback = rules.classify(
        {"alertname": "AppDown", "instance": "10.244.9.9:8080", "namespace": "shop", "service": "checkout"},
        topology,
    )
    assert fallback.entity == "service/default/shop/checkout"


def test_literal_namespace_and_literal_text_in_templates():
    rules = RuleSet.from_yaml(
        """
rules:
  - name: fixed
    match: ['alertname="F"']
    entity: {kind: daemonset, namespace: kube-system, name: "{cni}-agent"}
"""
    )
    assert (
        rules.classify({"alertname": "F", "cni": "calico"}, EMPTY).entity
        == "daemonset/default/kube-system/calico-agent"
    )
    assert rules.classify({"alertname": "F"}, EMPTY).entity is None


# -- load errors ------------------------------------------------------------------------------


# A valid rule head; each case appends one broken line (line 4).
HEAD = "rules:\n  - name: r\n    match: ['a=\"1\"']\n"


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (
            "rules:\n  - name: r\n    match: ['alertname=~\"(\"']\n",
            ["bad.yaml:3", "rule r", "match[0]", "invalid regex"],
        ),
        (
            HEAD + "    entity: {kind: pod, name: '{pod}', via: node-by-instance}\n",
            ["bad.yaml:4", "rule r", "entity.via", "kind must be node"],
        ),
        (
            HEAD + "    entity: {kind: deployment}\n",
            ["bad.yaml:4", "rule r", "entity.name", "needs a name"],
        ),
        (
            HEAD + "    entity: {kind: node, name: '{node}', namespace: x}\n",
            ["bad.yaml:4", "entity.namespace", "cluster-scoped"],
        ),
        (
            HEAD + "    entity: {kind: node, name: '{node!r}'}\n",
            ["bad.yaml:4", "entity.name", "no format spec"],
        ),
        ("rules:\n  - name: r\n    match: []\n", ["bad.yaml:3", "rule r", "match", "at least 1"]),
        ("rules:\n  - match: ['a=\"1\"']\n", ["bad.yaml:2", "rule #1", "name: Field required"]),
        (HEAD + "    urgency: loud\n", ["bad.yaml:4", "urgency"]),
        (
            HEAD + "    entity: {kind: node, name: '{node}', nmae: x}\n",
            ["bad.yaml:4", "entity.nmae: unknown field"],
        ),
        ("rule:\n  - name: r\n", ["bad.yaml:1", "unknown top-level key 'rule'"]),
        (
            HEAD + "    match: ['b=\"2\"']\n",
            ["bad.yaml:4", "'match' appears twice"],
        ),
        ("rules:\n  - name: r\n    match: ['a=\"1\"'\n", ["bad.yaml:", "not valid YAML"]),
        ("unmapped:\n  - {alertname: X, reason: ok}\n", ["bad.yaml:2", "unmapped[0].reason"]),
        ("- just a list\n", ["bad.yaml:1", "must be a mapping"]),
    ],
)
def test_load_errors_name_file_line_rule_and_field(tmp_path, body, fragments):
    path = write(tmp_path, "bad.yaml", body)
    with pytest.raises(InputError) as info:
        RuleSet.load([path])
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message


def test_a_missing_rule_file_is_named(tmp_path):
    with pytest.raises(InputError, match=r"nope\.yaml: cannot read rule file"):
        RuleSet.load([tmp_path / "nope.yaml"])


def test_every_problem_of_a_file_is_reported_at_once():
    fixture = Path(__file__).parent / "fixtures" / "rules" / "bad-rules.yaml"
    with pytest.raises(InputError) as info:
        RuleSet.load([fixture])
    lines = str(info.value).splitlines()
    assert len(lines) == 9
    assert all(line.startswith(f"{fixture}:") for line in lines)


def test_the_former_name_escalate_after_still_sets_the_grace(tmp_path):
    # Rule files written before `escalate_after` became `grace` keep loading with the same meaning.
    old = write(
        tmp_path,
        "old.yaml",
        """
defaults: {escalate_after: {warning: 9m}}
rules:
  - name: old-spelling
    match: ['alertname="Old"']
    escalate_after: 11m
""",
    )
    rules = RuleSet.load([old])
    assert rules.classify({"alertname": "Old"}, EMPTY).grace == timedelta(minutes=11)
    assert rules.classify({"alertname": "Other", "severity": "warning"}, EMPTY).grace == timedelta(minutes=9)
    assert EngineSettings.model_validate(
        {"inference": {"escalate_after": "4m"}}
    ).inference.grace == timedelta(minutes=4)
