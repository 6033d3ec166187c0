"""Rule sets: which rule an alert falls under, the entity it concerns, and the policy for it.

`RuleSet.load(paths)` reads rule files (see `rules.schema` and docs/rules.md); `classify(labels,
topology)` is what the engine calls once per new alert instance. Rules are tried in file order,
first match wins; rules with a literal `alertname` matcher are indexed so that an alert is only
tested against the rules that can match its name (plus the rules that do not name one).

Nothing that depends on the topology is cached here: the topology changes under us, and the
engine caches each alert's classification itself.
"""

from __future__ import annotations

import ipaddress
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ground.errors import InputError
from rules.matchers import Matcher, parse_matchers
from rules.schema import EntitySpec, PackDefaults, Rule, RuleFile, UnmappedAlert
from topology import entities
from topology.graph import Topology, host_of

BUNDLED_PACK = Path(__file__).resolve().parent / "packs" / "kubernetes.yaml"

SEVERITIES = ("critical", "warning", "info", "none")
QUIET_SEVERITIES = frozenset({"info", "none"})
BUILTIN_GRACE: dict[str, timedelta] = {
    "critical": timedelta(minutes=2),
    "warning": timedelta(minutes=7),
    "info": timedelta(minutes=5),
    "none": timedelta(minutes=5),
}
BUILTIN_OUTLIVE_ROOT = timedelta(minutes=10)

SINGLETON_KINDS = frozenset(
    {"dns", "apiserver", "etcd", "scheduler", "controller-manager", "pipeline", "cluster"}
)
WORKLOAD_KINDS = frozenset({"deployment", "statefulset", "daemonset", "replicaset", "job", "cronjob"})
KNOWN_KINDS = entities.NAMESPACED_KINDS | entities.CLUSTER_KINDS
TOP_LEVEL_KEYS = ("defaults", "rules", "unmapped")

_SEVERITY = {s: s for s in SEVERITIES}
# Alertmanager passes UTF-8 label names through (OpenTelemetry's `service.name`, Kubernetes'
# `app.kubernetes.io/name`): templates may name them.
_LABEL_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "_./-")


@dataclass(frozen=True, slots=True)
class Classification:
    rule: str | None  # rule name; None when no rule matched
    entity: str | None  # entity name, None when nothing identifies one
    propagates: bool  # does a failure of this alert's entity explain alerts on its dependents?
    grace: timedelta  # grace before paging (from the rule, else pack defaults by severity)
    hold: timedelta  # while unexplained, how long to wait for a cause before it may page as a root
    outlive_root: timedelta  # how long it may stay attached as a symptom after its root recovered
    urgency: str  # "page" | "notice" | "quiet"
    heartbeat: bool  # Watchdog-style always-firing alert
    severity: str  # normalised lower-case severity label ("warning" if missing/unknown)
    how: str  # one short phrase: why this entity (e.g. "rule node-not-ready: label node")
    # "dependents": a failing caller explains it (starvation), not a failing dependency.
    explained_by: str = "dependencies"
    node_running: bool = False  # its pod's node is at work: no evidence the node failed
    contention: bool = False  # its entity's load comes from what runs there (a saturated node)
    node_share: bool = False  # its description gives the share of the cluster's nodes down
    bypasses_dns: bool = False  # a failed scrape: what it shows failing is not cluster DNS's doing
    foreshadows: bool = False  # warns that its entity is heading for a failure (a filling disk)
    node_answers: bool = False  # the node reporting on itself (a full disk): it is up and reachable
    slowness: bool = False  # its entity is slow, not failing (latency): alone, it waits for a node's cause


def normalise_severity(value: str | None) -> str:
    """Lower-case severity; missing or unknown severities count as warning (never hidden)."""
    if not value:
        return "warning"
    found = _SEVERITY.get(value)
    if found is None:
        found = _SEVERITY.get(value.strip().lower(), "warning")
    return found


def default_urgency(severity: str) -> str:
    return "quiet" if severity in QUIET_SEVERITIES else "page"


# -- problems with file, line and rule ------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    rule: str | None  # "rule <name>" / "rule #3", or None for file-level problems
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.rule}: {self.message}" if self.rule else f"{where}: {self.message}"


def yaml_line(root: yaml.Node | None, loc: Sequence[object]) -> int | None:
    """1-based line of the YAML node at `loc` (keys and list indices), or of its deepest parent."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            # The last key of that name: YAML keeps the last of duplicate keys.
            found = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)]
            if not found:
                return line
            key, node = found[-1]
            line = key.start_mark.line + 1  # a key's line, even when its value is a block below it
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _pydantic_problems(error: ValidationError, prefix: tuple[object, ...], shown: str, add: Any) -> None:
    """One problem per pydantic error; `shown` prefixes the field path (e.g. `defaults.`)."""
    for err in error.errors():
        loc = [
            p for p in err["loc"] if p != "[key]" and not (isinstance(p, str) and p.startswith("function-"))
        ]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        field_path = shown + ".".join(str(p) for p in loc)
        add((*prefix, *loc), f"{field_path or '(rule)'}: {message}")


# -- reading rule files -----------------------------------------------------------------------


@dataclass
class SourceFile:
    """One rule file, validated, with its YAML node tree kept for line numbers."""

    path: Path
    model: RuleFile
    root: yaml.Node | None
    matchers: list[list[Matcher]]  # per rule, in order
    specs: list[list[_Spec]]  # per rule, compiled entity alternatives

    def line_of(self, *loc: object) -> int | None:
        return yaml_line(self.root, loc)

    def rule_line(self, index: int) -> int | None:
        return yaml_line(self.root, ("rules", index))


def check_file(path: str | Path) -> tuple[SourceFile | None, list[Problem]]:
    """Read and validate one rule file; every problem found, not only the first."""
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [Problem(shown, None, None, f"cannot read rule file: {exc.strerror or exc}")]
    return check_text(text, shown, path)


def check_text(text: str, shown: str, path: Path | None = None) -> tuple[SourceFile | None, list[Problem]]:
    problems: list[Problem] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(shown, line, None, f"not valid YAML: {reason}")]

    def rule_label(index: int) -> str:
        raw = rules_raw[index] if 0 <= index < len(rules_raw) else None
        name = raw.get("name") if isinstance(raw, dict) else None
        return f"rule {name}" if isinstance(name, str) and name else f"rule #{index + 1}"

    def add(loc: tuple[object, ...], message: str) -> None:
        rule = rule_label(loc[1]) if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) else None
        problems.append(Problem(shown, yaml_line(root, loc), rule, message))

    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, [
            Problem(shown, 1, None, "a rule file must be a mapping with rules:, defaults:, unmapped:")
        ]
    rules_raw: list[Any] = data["rules"] if isinstance(data.get("rules"), list) else []
    _duplicate_keys(root, add)
    for key in data:
        # `x-...` keys hold YAML anchors shared by rules (as in docker-compose files).
        if key not in TOP_LEVEL_KEYS and not (isinstance(key, str) and key.startswith("x-")):
            add((key,), f"unknown top-level key {key!r} (expected {', '.join(TOP_LEVEL_KEYS)})")

    defaults = PackDefaults()
    try:
        defaults = PackDefaults.model_validate(data.get("defaults") or {})
    except ValidationError as exc:
        _pydantic_problems(exc, ("defaults",), "defaults.", add)

    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        add(("rules",), "rules: must be a list of rules")
        raw_rules = []
    rules: list[Rule] = []
    matchers: list[list[Matcher]] = []
    specs: list[list[_Spec]] = []
    seen_names: dict[str, int] = {}
    for index, raw in enumerate(raw_rules):
        loc = ("rules", index)
        if not isinstance(raw, dict):
            add(loc, "a rule must be a mapping with name:, match: and entity:")
            continue
        name = raw.get("name")
        if isinstance(name, str) and name in seen_names:
            add(
                (*loc, "name"),
                f"name: rule name {name!r} is used twice (first by rule #{seen_names[name] + 1})",
            )
        if isinstance(name, str):
            seen_names.setdefault(name, index)
        rule_specs, spec_ok = _check_entity(raw.get("entity"), loc, add)
        try:
            rule = Rule.model_validate({k: v for k, v in raw.items() if k != "entity"})
        except ValidationError as exc:
            _pydantic_problems(exc, loc, "", add)
            continue
        rule_matchers: list[Matcher] = []
        for m_index, text_matcher in enumerate(rule.match):
            try:
                rule_matchers.extend(parse_matchers(text_matcher))
            except ValueError as exc:
                add((*loc, "match", m_index), f"match[{m_index}]: {exc}")
        compiled: list[_Spec] = []
        # Only when every alternative validated do list positions match the YAML's.
        for s_index, spec in enumerate(rule_specs if spec_ok else []):
            try:
                compiled.append(_Spec.compile(spec, f"rule {rule.name}"))
            except ValueError as exc:
                field, _, message = str(exc).partition(": ")
                spec_loc = (
                    (*loc, "entity", s_index) if isinstance(raw.get("entity"), list) else (*loc, "entity")
                )
                add((*spec_loc, field), f"entity.{field}: {message}")
                spec_ok = False
        if not spec_ok:
            continue
        rules.append(rule.model_copy(update={"entity": rule_specs or None}))
        matchers.append(rule_matchers)
        specs.append(compiled)

    unmapped: list[UnmappedAlert] = []
    raw_unmapped = data.get("unmapped") or []
    if not isinstance(raw_unmapped, list):
        add(("unmapped",), "unmapped: must be a list of {alertname, reason}")
        raw_unmapped = []
    for index, raw in enumerate(raw_unmapped):
        try:
            unmapped.append(UnmappedAlert.model_validate(raw))
        except ValidationError as exc:
            _pydantic_problems(exc, ("unmapped", index), f"unmapped[{index}].", add)

    if problems:
        return None, problems
    model = RuleFile.model_construct(defaults=defaults, rules=rules, unmapped=unmapped)
    return SourceFile(path or Path(shown), model, root, matchers, specs), []


def _check_entity(raw: object, loc: tuple[object, ...], add: Any) -> tuple[list[EntitySpec], bool]:
    """Validate `entity:` (one spec, a list of alternatives, or null) with precise locations."""
    if raw is None:
        return [], True
    items = raw if isinstance(raw, list) else [raw]
    specs: list[EntitySpec] = []
    ok = True
    for index, item in enumerate(items):
        spec_loc = (*loc, "entity", index) if isinstance(raw, list) else (*loc, "entity")
        if not isinstance(item, dict):
            add(spec_loc, "entity: must be a mapping such as {kind: node, name: '{node}'} or a list of them")
            ok = False
            continue
        try:
            specs.append(EntitySpec.model_validate(item))
        except ValidationError as exc:
            ok = False
            for err in exc.errors():
                message = err["msg"].removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    message = "unknown field"
                field = ".".join(str(p) for p in err["loc"])
                add((*spec_loc, *err["loc"]), f"entity.{field}: {message}")
    return specs, ok


def _duplicate_keys(root: yaml.Node | None, add: Any, loc: tuple[object, ...] = ()) -> None:
    """YAML silently keeps the last of two equal keys; a rule file with one is almost surely wrong."""
    if isinstance(root, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    add((*loc, key.value), f"key {key.value!r} appears twice in the same mapping")
                seen.add(key.value)
                _duplicate_keys(value, add, (*loc, key.value))
    elif isinstance(root, yaml.SequenceNode):
        for index, item in enumerate(root.value):
            _duplicate_keys(item, add, (*loc, index))


def read_rule_file(path: str | Path) -> SourceFile:
    """A validated rule file, or InputError listing every problem with file, line and rule."""
    source, problems = check_file(path)
    if source is None:
        raise InputError("\n".join(str(p) for p in problems))
    return source


# -- entity specs -----------------------------------------------------------------------------


class _Template:
    """`{label}` placeholders over alert labels; a missing or empty label fails the render."""

    __slots__ = ("constant", "label", "labels", "parts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"template {text!r}: {exc}") from None
        for literal, field, spec, conversion in parsed:
            if field is not None:
                if not field or not set(field) <= _LABEL_NAME_CHARS or field[0].isdigit():
                    raise ValueError(f"template {text!r}: {{{field}}} is not a label name")
                if spec or conversion:
                    raise ValueError(
                        f"template {text!r}: no format spec or conversion allowed in {{{field}}}"
                    )
            parts.append((literal, field))
        self.parts = tuple(parts)
        self.labels = tuple(field for _, field in parts if field is not None)
        only_label = len(parts) == 1 and parts[0][0] == "" and parts[0][1] is not None
        self.label = parts[0][1] if only_label else None
        self.constant = text.replace("{{", "{").replace("}}", "}") if not self.labels else None

    def render(self, labels: Mapping[str, str]) -> str | None:
        if self.label is not None:
            return labels.get(self.label) or None
        if self.constant is not None:
            return self.constant or None
        out: list[str] = []
        for literal, field in self.parts:
            out.append(literal)
            if field is not None:
                value = labels.get(field)
                if not value:
                    return None
                out.append(value)
        return "".join(out)


class _Spec:
    """A compiled EntitySpec: renders an entity name from labels, with topology look-ups."""

    __slots__ = (
        "component",
        "how",
        "how_found",
        "how_kept",
        "how_plain",
        "kind",
        "name",
        "namespace",
        "namespaced",
        "plain_fallback",
        "singleton",
        "via",
    )
    component: str | None
    how: str
    how_found: str
    how_kept: str
    how_plain: str
    kind: str
    name: _Template | None
    namespace: _Template | None
    namespaced: bool
    plain_fallback: bool
    singleton: str | None
    via: str

    @classmethod
    def compile(cls, spec: EntitySpec, prefix: str, *, plain_fallback: bool = True) -> _Spec:
        """ValueError messages start with the offending field name (`field: message`)."""
        self = cls()
        kind = spec.kind
        if kind not in KNOWN_KINDS:
            raise ValueError(f"kind: unknown kind {kind!r} (known: {', '.join(sorted(KNOWN_KINDS))})")
        self.kind = kind
        self.via = spec.via
        self.component = spec.component
        self.namespaced = kind in entities.NAMESPACED_KINDS
        self.plain_fallback = plain_fallback
        self.name = _field_template("name", spec.name)
        namespace = spec.namespace
        if namespace is not None and not self.namespaced:
            raise ValueError(f"namespace: kind {kind!r} is cluster-scoped and takes no namespace")
        if self.namespaced and namespace is None:
            namespace = "{namespace}"  # namespaced objects live in the alert's namespace
        self.namespace = _field_template("namespace", namespace)
        self.singleton = None
        if self.name is None:
            if kind not in SINGLETON_KINDS:
                raise ValueError(
                    f"name: kind {kind!r} needs a name"
                    f" (only {', '.join(sorted(SINGLETON_KINDS))} are singletons)"
                )
            self.singleton = entities.singleton(kind, "{cluster}").split("/", 2)[2]
        if spec.component is not None:
            if kind != "node":
                raise ValueError(f"component: only kind node has components, not {kind!r}")
            if not spec.component or "/" in spec.component:
                raise ValueError(f"component: {spec.component!r} is not a component name")
        if self.via == "node-by-instance" and kind != "node":
            raise ValueError(f"via: node-by-instance resolves a node, so kind must be node, not {kind!r}")
        if self.via in ("workload-of-pod", "pod-by-ip") and kind != "pod":
            raise ValueError(f"via: {self.via} starts from a pod, so kind must be pod, not {kind!r}")
        if self.via == "service-by-name" and kind != "service":
            raise ValueError(f"via: service-by-name finds a Service, so kind must be service, not {kind!r}")
        if self.via != "none" and self.name is None:
            raise ValueError(f"name: via {self.via} needs a name template to look up")

        used = list(
            dict.fromkeys(
                [*(self.namespace.labels if self.namespace else ()), *(self.name.labels if self.name else ())]
            )
        )
        if used:
            described = ("label " if len(used) == 1 else "labels ") + "+".join(used)
        else:
            described = f"fixed {kind} {'/'.join(t for t in (spec.namespace, spec.name) if t)}"
        if self.singleton is not None:
            described = f"{kind} singleton"
        if self.via == "node-by-instance":
            described += " via node-by-instance"
        elif self.via == "workload-of-pod":
            described += " -> workload of pod"
        elif self.via == "pod-by-ip":
            described += " via pod-by-ip"
        elif self.via == "service-by-name":
            described += " via service-by-name"
        if self.component:
            described += f", component {self.component}"
        self.how = f"{prefix}: {described}"
        self.how_plain = f"{prefix}: {described} (not in topology; label taken as node name)"
        self.how_found = f"{prefix}: {described} (pod not in topology; workload found by name)"
        self.how_kept = f"{prefix}: {described} ({kind} not in topology)"
        return self

    def resolve(self, labels: Mapping[str, str], cluster: str, topology: Topology) -> tuple[str, str] | None:
        if self.singleton is not None:
            return f"{self.kind}/{cluster}/{self.singleton}", self.how
        name = self.name.render(labels)  # type: ignore[union-attr]
        if name is None:
            return None
        namespace = None
        if self.namespace is not None:
            namespace = self.namespace.render(labels)
            if namespace is None and self.via != "service-by-name":
                return None
        via = self.via
        if via == "service-by-name":
            return _service_by_name(topology, cluster, namespace, name, self)
        if via == "none":
            if self.kind == "pod":
                return _pod_or_workload(topology, cluster, namespace or "", name, self)
            if self.component is not None:
                return f"node/{cluster}/{name}/{self.component}", self.how
            if namespace is not None:
                return f"{self.kind}/{cluster}/{namespace}/{name}", self.how
            return f"{self.kind}/{cluster}/{name}", self.how
        if via == "node-by-instance":
            node = topology.node_by_instance(cluster, name)
            how = self.how
            if node is None:
                if not (self.plain_fallback and _is_plain_name(name)):
                    return None
                node, how = f"node/{cluster}/{name}", self.how_plain
            return (f"{node}/{self.component}" if self.component else node), how
        if via == "workload-of-pod":
            pod = f"pod/{cluster}/{namespace}/{name}"
            if pod in topology:
                return _owner_workload(topology, pod) or pod, self.how
            workload = _workload_by_name(topology, cluster, namespace or "", name)
            if workload is not None:
                return workload, self.how_found
            return pod, self.how_kept
        # pod-by-ip
        found = topology.pod_by_ip(cluster, host_of(name))
        return (found, self.how) if found is not None else None


def _service_by_name(
    topology: Topology, cluster: str, namespace: str | None, name: str, spec: _Spec
) -> tuple[str, str] | None:
    """An application's Service from the name its telemetry gives it (`service`,
    `service_name`, `job`): `<namespace>/<name>` or a bare name. The Service of that name in
    the namespace, else a workload of that name (OpenTelemetry names services after their
    Deployment), else the only Service of that name in the cluster. A Service the topology does
    not know is still named when its namespace is, so that its alerts group together."""
    if "/" in name:
        namespace, _, name = name.rpartition("/")
    if not name:
        return None
    if namespace:
        for kind in ("service", "deployment", "statefulset", "daemonset"):
            candidate = f"{kind}/{cluster}/{namespace}/{name}"
            if candidate in topology:
                return candidate, spec.how
    else:
        found = topology.named("service", cluster, name)
        if len(found) == 1:
            return found[0], spec.how
        return None
    if not spec.plain_fallback:
        return None
    return f"service/{cluster}/{namespace}/{name}", spec.how_kept


def _unobserved(topology: Topology, entity: str) -> bool:
    """A group entity (the scheduler) the topology has but knows no member of, in a topology
    that does know the cluster's nodes: a component run out of sight (a managed control plane)."""
    return topology.has_nodes() and entity in topology and not topology.redundant_members(entity)


def _field_template(field: str, text: str | None) -> _Template | None:
    if text is None:
        return None
    try:
        return _Template(text)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


def _pod_or_workload(
    topology: Topology, cluster: str, namespace: str, name: str, spec: _Spec
) -> tuple[str, str]:
    pod = f"pod/{cluster}/{namespace}/{name}"
    if pod in topology:
        return pod, spec.how
    # Born after the last topology refresh: its workload (by name) is the next best thing.
    workload = _workload_by_name(topology, cluster, namespace, name)
    if workload is not None:
        return workload, spec.how_found
    return pod, spec.how_kept


def _owner_workload(topology: Topology, pod: str) -> str | None:
    owner = topology.attrs(pod).get("owner")
    if not isinstance(owner, str) or entities.kind_of(owner) not in WORKLOAD_KINDS:
        return None  # bare or static pod: it is its own workload
    if owner.startswith("replicaset/"):
        return _deployment_of(topology, owner) or owner
    return owner


def _deployment_of(topology: Topology, replicaset: str) -> str | None:
    """ReplicaSets depend on nothing; their Deployment depends on them."""
    owners = [d for d in topology.dependents(replicaset) if d.startswith("deployment/")]
    return min(owners) if owners else None


def _workload_by_name(topology: Topology, cluster: str, namespace: str, pod: str) -> str | None:
    """Guess a pod's controller from Kubernetes' naming: `<deploy>-<rs hash>-<5>`, `<sts>-<n>`,
    `<ds>-<5>`, `<job>-<5>`, `<cronjob>-<schedule time>-<5>`; only names that exist count."""
    prefix = f"/{cluster}/{namespace}/"
    base, _, suffix = pod.rpartition("-")
    if not base or not suffix:
        return None
    # Controllers named exactly by the pod name minus its last part first: strongest evidence.
    kinds = ("statefulset",) if suffix.isdigit() else ("replicaset", "daemonset", "job")
    for kind in kinds:
        candidate = f"{kind}{prefix}{base}"
        if candidate in topology:
            return (_deployment_of(topology, candidate) or candidate) if kind == "replicaset" else candidate
    # `<deploy>-<rs hash>-<5>` whose ReplicaSet is as new as the pod (a rollout after the
    # refresh), or `<cronjob>-<time>-<5>` of a Job created after it.
    owner_base, _, middle = base.rpartition("-")
    if owner_base and middle:
        for kind in ("deployment", "cronjob"):
            candidate = f"{kind}{prefix}{owner_base}"
            if candidate in topology:
                return candidate
    return None


def _is_plain_name(value: str) -> bool:
    """A node name, not an address: no port, not an IP."""
    if ":" in value or "/" in value or value.startswith("["):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return True
    return False


# -- compiled rules ---------------------------------------------------------------------------


class CompiledRule:
    """A rule ready for the hot path: matcher tests, entity alternatives, policy per severity."""

    __slots__ = (
        "alertnames",
        "heartbeat",
        "hold",
        "how_none",
        "index",
        "line",
        "matchers",
        "model",
        "name",
        "outlive_root",
        "policy",
        "propagates",
        "source",
        "specs",
        "tests",
        "unobserved",
    )

    def __init__(
        self,
        model: Rule,
        matchers: list[Matcher],
        specs: list[_Spec],
        index: int,
        source: str,
        line: int | None,
        escalate: Mapping[str, timedelta],
        outlive_root: timedelta,
    ) -> None:
        self.model = model
        self.name = model.name
        self.index = index
        self.source = source
        self.line = line
        self.matchers = tuple(matchers)
        self.specs = tuple(specs)
        self.propagates = model.propagates
        self.heartbeat = model.heartbeat
        self.hold = model.hold or timedelta(0)
        self.unobserved = model.unobserved_urgency
        self.outlive_root = model.outlive_root or outlive_root
        self.policy = {
            severity: (model.grace or escalate[severity], model.urgency or default_urgency(severity))
            for severity in SEVERITIES
        }
        self.how_none = f"rule {model.name}: no entity" + (
            " (labels missing for every entity alternative)" if specs else ""
        )
        # Index on the first literal alertname matcher; the other matchers stay as tests.
        index_matcher = next((m for m in matchers if m.name == "alertname" and m.literals is not None), None)
        self.alertnames = index_matcher.literals if index_matcher is not None else None
        self.tests = tuple((m.name, m.test) for m in matchers if m is not index_matcher)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def accepts_alertname(self, alertname: str) -> bool | None:
        """Whether the rule's alertname matchers accept `alertname`; None if it names none."""
        named = [m for m in self.matchers if m.name == "alertname"]
        if not named:
            return None
        return all(m.test(alertname) for m in named)

    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


class RuleSet:
    """Rules of one or more files, in order; first match wins."""

    def __init__(self, files: Sequence[SourceFile] = ()) -> None:
        self.files = list(files)
        escalate: dict[str, timedelta] = {}
        outlive: timedelta | None = None
        self.unmapped: dict[str, str] = {}
        for source in self.files:  # earlier files win, key by key
            for severity, grace in source.model.defaults.grace.items():
                escalate.setdefault(severity, grace)
            if outlive is None:
                outlive = source.model.defaults.outlive_root
            for item in source.model.unmapped:
                self.unmapped.setdefault(item.alertname, item.reason)
        self.grace = {s: escalate.get(s, BUILTIN_GRACE[s]) for s in SEVERITIES}
        self.outlive_root = outlive or BUILTIN_OUTLIVE_ROOT
        self._default_policy = {s: (self.grace[s], default_urgency(s)) for s in SEVERITIES}

        self.rules: list[CompiledRule] = []
        for source in self.files:
            for i, model in enumerate(source.model.rules):
                self.rules.append(
                    CompiledRule(
                        model,
                        source.matchers[i],
                        source.specs[i],
                        len(self.rules),
                        str(source.path),
                        source.rule_line(i),
                        self.grace,
                        self.outlive_root,
                    )
                )
        generic = [r for r in self.rules if r.alertnames is None]
        indexed: dict[str, list[CompiledRule]] = {}
        for rule in self.rules:
            for name in rule.alertnames or ():
                indexed.setdefault(name, []).append(rule)
        self._generic: tuple[CompiledRule, ...] = tuple(generic)
        self._candidates: dict[str, tuple[CompiledRule, ...]] = {
            name: tuple(sorted([*rules, *generic], key=lambda r: r.index)) for name, rules in indexed.items()
        }
        self._fallback = {
            prefix: [_Spec.compile(spec, prefix, plain_fallback=keep) for spec, keep in specs]
            for prefix, specs in (
                ("no rule", (*_GENERIC_SPECS, _NAMESPACE_SPEC)),
                ("unmapped", _GENERIC_SPECS),
            )
        }

    # -- loading --------------------------------------------------------------------------

    @classmethod
    def load(cls, paths: Iterable[str | Path] | None = None) -> RuleSet:
        """Rule files in order (earlier files win); None or empty -> the bundled Kubernetes pack."""
        chosen = list(paths) if paths else [BUNDLED_PACK]
        return cls([read_rule_file(p) for p in chosen])

    @classmethod
    def from_yaml(cls, text: str, source: str = "<rules>") -> RuleSet:
        """A rule set from YAML text (tests, embedded configuration)."""
        parsed, problems = check_text(text, source)
        if parsed is None:
            raise InputError("\n".join(str(p) for p in problems))
        return cls([parsed])

    # -- the hot path -----------------------------------------------------------------------

    def candidates(self, alertname: str) -> tuple[CompiledRule, ...]:
        """The rules that may match an alert of this name, in rule order."""
        return self._candidates.get(alertname, self._generic)

    def classify(self, labels: Mapping[str, str], topology: Topology) -> Classification:
        severity = normalise_severity(labels.get("severity"))
        for rule in self._candidates.get(labels.get("alertname", ""), self._generic):
            for label, test in rule.tests:
                if not test(labels.get(label, "")):
                    break
            else:
                return self._by_rule(rule, labels, topology, severity)
        return self._by_default(labels, topology, severity)

    def _by_rule(
        self, rule: CompiledRule, labels: Mapping[str, str], topology: Topology, severity: str
    ) -> Classification:
        cluster = labels.get("cluster") or entities.DEFAULT_CLUSTER
        entity: str | None = None
        how = rule.how_none
        for spec in rule.specs:
            found = spec.resolve(labels, cluster, topology)
            if found is not None:
                entity, how = found
                break
        grace, urgency = rule.policy[severity]
        propagates = rule.propagates
        if rule.unobserved is not None and entity is not None and _unobserved(topology, entity):
            urgency, propagates = rule.unobserved, False
            how += " (no member of it is in the topology: not observable here)"
        return Classification(
            rule.name,
            entity,
            propagates,
            grace,
            rule.hold,
            rule.outlive_root,
            urgency,
            rule.heartbeat,
            severity,
            how,
            rule.model.explained_by,
            rule.model.node_running,
            rule.model.contention,
            rule.model.node_share,
            rule.model.bypasses_dns,
            rule.model.foreshadows,
            rule.model.node_answers,
            rule.model.slowness,
        )

    def _by_default(self, labels: Mapping[str, str], topology: Topology, severity: str) -> Classification:
        """No rule: the entity the labels clearly name, no propagation, policy by severity."""
        cluster = labels.get("cluster") or entities.DEFAULT_CLUSTER
        prefix = "unmapped" if labels.get("alertname", "") in self.unmapped else "no rule"
        entity: str | None = None
        how = f"{prefix}: no label identifies an entity"
        for spec in self._fallback[prefix]:
            found = spec.resolve(labels, cluster, topology)
            if found is not None:
                entity, how = found
                break
        grace, urgency = self._default_policy[severity]
        return Classification(
            None,
            entity,
            False,
            grace,
            timedelta(0),
            self.outlive_root,
            urgency,
            False,
            severity,
            how,
        )


# Labels that clearly name one object, most specific first (used when no rule matches), each
# with whether a name the topology does not know is still taken. `instance` counts only when
# the topology knows it as a node: exporters' own pods must not win. Application telemetry names
# its Service (`service`, OpenTelemetry's `service_name`, the `app.kubernetes.io/name` label);
# `job` names a scrape job, so it counts only when a Service or workload of that name exists.
_GENERIC_SPECS = (
    (EntitySpec(kind="pod", name="{pod}"), False),
    (EntitySpec(kind="deployment", name="{deployment}"), False),
    (EntitySpec(kind="statefulset", name="{statefulset}"), False),
    (EntitySpec(kind="daemonset", name="{daemonset}"), False),
    (EntitySpec(kind="job", name="{job_name}"), False),
    (EntitySpec(kind="pvc", name="{persistentvolumeclaim}"), False),
    (EntitySpec(kind="service", name="{service}", via="service-by-name"), True),
    (EntitySpec(kind="service", name="{service_name}", via="service-by-name"), True),
    (EntitySpec(kind="service", name="{service.name}", via="service-by-name"), True),
    (EntitySpec(kind="service", name="{app_kubernetes_io_name}", via="service-by-name"), True),
    (EntitySpec(kind="service", name="{app.kubernetes.io/name}", via="service-by-name"), True),
    (EntitySpec(kind="node", name="{node}"), False),
    (EntitySpec(kind="node", name="{instance}", via="node-by-instance"), False),
    (EntitySpec(kind="pv", name="{persistentvolume}"), False),
    (EntitySpec(kind="service", name="{job}", via="service-by-name"), False),
)
# Last of all, an alert with no rule that names nothing but its namespace concerns the namespace
# (a cost or quota alert: CPUSpend, MemorySpend): its alerts meet in one incident on it rather
# than each standing alone. Not for the pack's `unmapped` alerts (InfoInhibitor carries a
# namespace and concerns nothing).
_NAMESPACE_SPEC = (EntitySpec(kind="namespace", name="{namespace}"), True)
