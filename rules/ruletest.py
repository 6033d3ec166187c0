"""`alert-router rules test`: unit tests for rule files, in the spirit of `promtool test rules`.

A test file (YAML) names the rule files, optionally a topology, and cases: alert labels in,
expected classification out. See docs/rules.md for the format:

    rule_files: [../packs/kubernetes.yaml]     # relative to this file; default: the bundled pack
    topology: [cluster.prom]                   # optional, read by topology.load.load_topology
    entities:                                  # optional inline topology, merged with the files
      - {name: node/default/worker-1, internal_ip: 10.0.1.21}
    tests:
      - name: node-exporter alert maps to the node, not the exporter pod
        labels: {alertname: NodeFilesystemAlmostOutOfSpace, instance: worker-1, pod: node-exporter-abc}
        expect: {rule: node-filesystem-full, entity: node/default/worker-1, propagates: true}

A file that cannot be read or has a malformed case counts as a failure with a message naming the
file and line; the other files and cases still run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from ground.errors import InputError
from ground.times import format_duration, parse_duration
from rules.ruleset import Classification, RuleSet, yaml_line
from topology import entities
from topology.graph import Topology

TOP_LEVEL_KEYS = ("rule_files", "topology", "entities", "tests")
CASE_KEYS = ("name", "labels", "expect")
EXPECT_KEYS = (
    "rule",
    "entity",
    "propagates",
    "grace",
    "hold",
    "outlive_root",
    "urgency",
    "heartbeat",
    "severity",
    "how",
)
# Older spellings still accepted in `expect` (the rule schema accepts them too).
DEPRECATED_EXPECT_KEYS = {"escalate_after": "grace"}
ENTITY_KEYS = ("name", "depends_on", "members", "internal_ip", "pod_ip", "aliases")


class _Broken(Exception):
    """A test file that cannot run at all (message names file and line)."""


def run_rule_tests(paths: Iterable[str | Path]) -> tuple[int, int, list[str]]:
    """Run every case of every test file: (passed, failed, failure messages)."""
    passed = failed = 0
    messages: list[str] = []
    for path in paths:
        file_passed, file_failed, file_messages = run_test_file(Path(path))
        passed += file_passed
        failed += file_failed
        messages.extend(file_messages)
    return passed, failed, messages


def run_test_file(path: Path) -> tuple[int, int, list[str]]:
    try:
        root, data = _read(path)
        rules = _rules(path, root, data)
        topology = _topology(path, root, data)
        cases = data.get("tests")
        if not isinstance(cases, list) or not cases:
            raise _Broken(f"{path}:{yaml_line(root, ('tests',))}: tests: expected a non-empty list of cases")
    except _Broken as exc:
        return 0, 1, [str(exc)]
    passed = failed = 0
    messages: list[str] = []
    for index, case in enumerate(cases):
        line = yaml_line(root, ("tests", index))
        problem = _run_case(case, rules, topology)
        if problem is None:
            passed += 1
        else:
            failed += 1
            name = case.get("name") if isinstance(case, dict) else None
            label = f"test {name!r}" if isinstance(name, str) else f"test #{index + 1}"
            messages.append(f"{path}:{line}: {label}: {problem}")
    return passed, failed, messages


def _read(path: Path) -> tuple[yaml.Node | None, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _Broken(f"{path}: cannot read test file: {exc.strerror or exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise _Broken(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise _Broken(f"{path}:1: a rule test file must be a mapping with tests:")
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            line = yaml_line(root, (key,))
            raise _Broken(
                f"{path}:{line}: unknown top-level key {key!r} (expected {', '.join(TOP_LEVEL_KEYS)})"
            )
    return root, data


def _paths(path: Path, root: yaml.Node | None, data: dict[str, Any], key: str) -> list[Path]:
    raw = data.get(key)
    if raw is None:
        return []
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise _Broken(f"{path}:{yaml_line(root, (key,))}: {key}: expected a list of file paths")
    return [path.parent / item for item in items]


def _rules(path: Path, root: yaml.Node | None, data: dict[str, Any]) -> RuleSet:
    files = _paths(path, root, data, "rule_files")
    try:
        return RuleSet.load(files or None)
    except InputError as exc:
        line = yaml_line(root, ("rule_files",)) if files else None
        where = f"{path}:{line}" if line else str(path)
        raise _Broken(f"{where}: rule_files: {exc}") from None


def _topology(path: Path, root: yaml.Node | None, data: dict[str, Any]) -> Topology:
    files = _paths(path, root, data, "topology")
    topology = Topology()
    if files:
        try:
            from topology.load import load_topology  # written separately; only needed here
        except ImportError as exc:
            raise _Broken(f"{path}: topology: cannot load topology files ({exc})") from None
        try:
            topology = load_topology([str(f) for f in files])
        except (InputError, OSError, ValueError) as exc:
            raise _Broken(f"{path}:{yaml_line(root, ('topology',))}: topology: {exc}") from None
    raw = data.get("entities")
    if raw is not None:
        if not isinstance(raw, list):
            raise _Broken(f"{path}:{yaml_line(root, ('entities',))}: entities: expected a list")
        inline = Topology()
        for index, item in enumerate(raw):
            try:
                _add_entity(inline, item)
            except ValueError as exc:
                raise _Broken(
                    f"{path}:{yaml_line(root, ('entities', index))}: entities[{index}]: {exc}"
                ) from None
        topology.merge(inline)
    return topology


def _add_entity(topology: Topology, item: object) -> None:
    """One inline entity: name, depends_on, members (redundant), internal_ip/pod_ip/aliases
    (indexed for look-ups); any other key is an attribute (e.g. owner, node)."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ValueError("expected a mapping with name: <entity name>")
    name = item["name"]
    try:
        _, cluster, _, _ = entities.split(name)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    attrs = {k: v for k, v in item.items() if k not in ENTITY_KEYS}
    topology.add(name, **attrs)
    for key, redundant in (("depends_on", False), ("members", True)):
        targets = item.get(key) or []
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise ValueError(f"{key}: expected a list of entity names")
        for target in targets:
            topology.depends(name, target, redundant=redundant)
    if item.get("internal_ip"):
        topology.index_node_ip(cluster, str(item["internal_ip"]), name)
    if item.get("pod_ip"):
        topology.index_pod_ip(cluster, str(item["pod_ip"]), name)
    aliases = item.get("aliases") or []
    if not isinstance(aliases, list):
        raise ValueError("aliases: expected a list")
    for alias in aliases:
        topology.index_node_alias(cluster, str(alias), name)


def _run_case(case: object, rules: RuleSet, topology: Topology) -> str | None:
    """None when the case passes, else what is wrong with it."""
    if not isinstance(case, dict):
        return "a case must be a mapping with name:, labels: and expect:"
    unknown = [k for k in case if k not in CASE_KEYS]
    if unknown:
        return f"unknown key {unknown[0]!r} (expected {', '.join(CASE_KEYS)})"
    labels = case.get("labels")
    if not isinstance(labels, dict):
        return "labels: expected a mapping of label names to values"
    for key, value in labels.items():
        if not isinstance(value, str):
            return f"labels.{key}: label values are strings; quote {value!r}"
    expect = case.get("expect")
    if not isinstance(expect, dict) or not expect:
        return "expect: expected a mapping of classification fields (rule, entity, propagates, ...)"
    expect = {DEPRECATED_EXPECT_KEYS.get(str(key), key): value for key, value in expect.items()}
    for key in expect:
        if key not in EXPECT_KEYS:
            return f"expect.{key}: unknown field (expected one of {', '.join(EXPECT_KEYS)})"
    try:
        wanted = {key: _expected(key, value) for key, value in expect.items()}
    except ValueError as exc:
        return str(exc)
    got = rules.classify({str(k): v for k, v in labels.items()}, topology)
    mismatches = [_compare(key, value, got) for key, value in wanted.items()]
    found = [m for m in mismatches if m is not None]
    if not found:
        return None
    return "; ".join(found) + f" (classified by {got.how})"


def _expected(key: str, value: object) -> object:
    if key in ("grace", "hold", "outlive_root"):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError(f"expect.{key}: expected a duration such as 5m")
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"expect.{key}: {exc}") from None
    if key in ("propagates", "heartbeat"):
        if not isinstance(value, bool):
            raise ValueError(f"expect.{key}: expected true or false")
        return value
    if key in ("rule", "entity"):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"expect.{key}: expected a string or null")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expect.{key}: expected a string")
    return value


def _compare(key: str, expected: object, got: Classification) -> str | None:
    actual = getattr(got, key)
    if key == "how":
        # `how` is prose: the expectation is a phrase it must contain.
        return None if str(expected) in actual else f"how: expected to contain {expected!r}, got {actual!r}"
    if actual == expected:
        return None
    if isinstance(actual, timedelta) and isinstance(expected, timedelta):
        return f"{key}: expected {format_duration(expected)}, got {format_duration(actual)}"
    return f"{key}: expected {_show(expected)}, got {_show(actual)}"


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
