"""`alert-router topology`: build the graph from Prometheus, look inside it, draw a part of it.

    alert-router topology build --prometheus URL -o cluster.json [--cluster NAME ...]
                                [--default-cluster NAME] [--selector MATCHERS] [--timeout S]
                                [--header 'Name: value' ...] [--insecure]
    alert-router topology show FILE [FILE ...] [--entity E] [--why ALERT_LABELS_JSON]
                                [--rules FILE ...] [--depth N] [--json]
    alert-router topology export FILE [FILE ...] --format dot|json [--around ENTITY] [--depth N]
                                [--max-entities N] [-o OUT]

FILE is anything `replay --topology` reads (a kube-state-metrics dump, a topology file); several
are merged. `build` writes a topology file (docs/topology.md) that lists every entity by its
full name with its attributes, hard edges (`depends_on`), redundant edges (`members`), and its
IP / node-name index entries, so loading it gives back the graph that was discovered.
`export --format json` writes the same format for the part of the graph it exports, so an
incident's neighbourhood can be replayed or shared on its own.

Library functions: `topology_document_lines(topology, names=None)` (the file, line by line),
`write_topology_file(topology, path)`, `neighbourhood(topology, entity, depth, limit)`,
`to_dot(topology, names, focus=None)`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from ground.errors import InputError
from topology import entities
from topology.graph import Topology

MARKER = "alert-router/topology"  # topology.fileformat.MARKER
DOT_COLOURS = {
    "cluster": "grey90",
    "region": "grey80",
    "zone": "lightyellow",
    "node": "lightblue",
    "node-component": "lightcyan",
    "pod": "white",
    "service": "palegreen",
    "ingress": "palegreen3",
    "dns": "orange",
    "apiserver": "salmon",
    "etcd": "salmon3",
    "scheduler": "salmon",
    "controller-manager": "salmon",
    "deployment": "plum",
    "statefulset": "plum",
    "daemonset": "plum",
    "replicaset": "thistle",
    "job": "thistle",
    "cronjob": "plum",
    "pvc": "wheat",
    "pv": "wheat3",
}


def register(subparsers: Any) -> None:
    topo = subparsers.add_parser("topology", help="build, inspect and export the dependency graph")
    sub = topo.add_subparsers(dest="topology_command", required=True)

    build = sub.add_parser("build", help="discover the topology from Prometheus (kube-state-metrics series)")
    build.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus or Thanos base URL")
    build.add_argument("-o", "--out", required=True, help="topology file to write (JSON; - for stdout)")
    build.add_argument("--cluster", action="append", help="only this `cluster` label value; repeatable")
    build.add_argument(
        "--default-cluster", help="cluster of series without a `cluster` label (default: Prometheus' own)"
    )
    build.add_argument("--selector", default="", help='extra label matchers, e.g. job="kube-state-metrics"')
    build.add_argument("--timeout", type=float, default=120.0, help="seconds per query (default 120)")
    build.add_argument("--header", action="append", default=[], help="HTTP header 'Name: value'; repeatable")
    build.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    build.set_defaults(func=_build)

    show = sub.add_parser("show", help="counts per kind; one entity's dependencies; why an alert maps")
    show.add_argument("files", nargs="+", metavar="FILE")
    show.add_argument("--entity", help="an entity name: its attributes, dependencies and dependents")
    show.add_argument("--why", metavar="ALERT_LABELS_JSON", help="alert labels, e.g. '{\"alertname\": ...}'")
    show.add_argument(
        "--rules", action="append", help="rule file for --why; repeatable (default: bundled pack)"
    )
    show.add_argument("--depth", type=int, default=3, help="levels of transitive dependencies (default 3)")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_show)

    export = sub.add_parser("export", help="the graph, or one entity's neighbourhood, as DOT or JSON")
    export.add_argument("files", nargs="+", metavar="FILE")
    export.add_argument("--format", choices=("dot", "json"), required=True)
    export.add_argument("--around", metavar="ENTITY", help="only entities within --depth edges of this one")
    export.add_argument(
        "--depth", type=int, default=2, help="edges from --around, either direction (default 2)"
    )
    export.add_argument(
        "--max-entities", type=int, default=2000, help="stop the neighbourhood at this size (default 2000)"
    )
    export.add_argument("-o", "--out", default="-", help="output file (default: stdout)")
    export.set_defaults(func=_export)


# -- build ----------------------------------------------------------------------------------------


def _build(args: argparse.Namespace) -> int:
    from integrations.prometheus.client import PrometheusClient
    from topology.discovery import DiscoveryError, PrometheusDiscovery

    headers = {}
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise InputError(f"--header {header!r}: write 'Name: value'")
        headers[name.strip()] = value.strip()
    client = PrometheusClient(
        args.prometheus, timeout=args.timeout, headers=headers, verify=not args.insecure
    )
    try:
        discovery = PrometheusDiscovery(
            client, clusters=args.cluster, default_cluster=args.default_cluster, selector=args.selector
        )
        result = discovery.discover_sync()
    except ValueError as exc:
        raise InputError(f"--selector: {exc}") from None
    except DiscoveryError as exc:
        print(f"alert-router: {args.prometheus}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    for warning in result.warnings:
        print(f"alert-router: warning: {warning}", file=sys.stderr)
    lines = write_topology_file(result.topology, args.out)
    summary = {
        "out": args.out,
        "entities": len(result.topology),
        "edges": result.topology.graph.number_of_edges(),
        "lines": lines,
        "warnings": len(result.warnings),
        **result.stats.to_dict(),
    }
    summary.pop("series")
    summary.pop("family_seconds")
    print(json.dumps(summary), file=sys.stderr)
    return 0


def topology_document_lines(topology: Topology, names: Iterable[str] | None = None) -> Iterator[str]:
    """The topology file of `topology` (or of the entities `names` and the edges among them),
    one entity per line, sorted by name: a stable, diffable JSON document."""
    graph = topology.graph
    chosen = sorted(graph.nodes if names is None else (n for n in names if n in graph))
    inside = None if names is None else set(chosen)
    yield f'{{"kind": "{MARKER}",\n "entities": [\n'
    for index, name in enumerate(chosen):
        item = _entity_item(topology, name, inside)
        yield ("  " if index == 0 else ", ") + json.dumps(item, ensure_ascii=False, default=str) + "\n"
    yield "]}\n"


def _entity_item(topology: Topology, name: str, inside: set[str] | None) -> dict[str, Any]:
    graph = topology.graph
    attrs = {k: v for k, v in graph.nodes[name].items() if k != "kind"}
    item: dict[str, Any] = {"name": name}
    if attrs:
        item["attrs"] = attrs
    kind = graph.nodes[name].get("kind") or entities.kind_of(name)
    cluster = name.split("/", 2)[1]
    if kind == "node":
        ip = attrs.get("internal_ip")
        if ip and topology.node_by_ip(cluster, ip) == name:
            item["ip"] = ip
        item["aliases"] = [name.split("/", 2)[2]]  # `instance="worker-1:9100"` finds the node
    elif kind == "pod":
        ip = attrs.get("pod_ip")
        if ip and topology.pod_by_ip(cluster, ip) == name:
            item["ip"] = ip
    hard: list[str] = []
    members: list[str] = []
    for dependency, data in graph.succ[name].items():
        if inside is not None and dependency not in inside:
            continue
        (members if data.get("redundant") else hard).append(dependency)
    if hard:
        item["depends_on"] = sorted(hard)
    if members:
        item["members"] = sorted(members)
    return item


def write_topology_file(topology: Topology, path: str, names: Iterable[str] | None = None) -> int:
    """Write the topology file; returns the number of lines."""
    count = 0
    with _output(path) as out:
        for line in topology_document_lines(topology, names):
            out.write(line)
            count += 1
    return count


@contextmanager
def _output(path: str) -> Iterator[TextIO]:
    """stdout, or a file written beside its target and renamed into place when complete."""
    if path == "-":
        yield sys.stdout
        return
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    try:
        handle = open(partial, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with handle:
            yield handle
        partial.replace(target)  # readers never see half a file
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


# -- show -----------------------------------------------------------------------------------------


def _load(files: list[str]) -> Topology:
    from topology.load import load_topology

    return load_topology(files)


def _show(args: argparse.Namespace) -> int:
    topology = _load(args.files)
    report: dict[str, Any] = {"files": args.files, "entities": len(topology), "counts": topology.summary()}
    report["clusters"] = sorted({name.split("/", 2)[1] for name in topology.graph.nodes})
    if args.entity:
        report["entity"] = describe_entity(topology, args.entity, args.depth)
    if args.why:
        report["why"] = explain_alert(topology, args.why, args.rules)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_show(report)
    return 0


def describe_entity(topology: Topology, name: str, depth: int = 3) -> dict[str, Any]:
    if name not in topology:
        similar = sorted(n for n in topology.graph.nodes if name in n)[:10]
        hint = f"; did you mean: {', '.join(similar)}" if similar else ""
        raise InputError(f"--entity {name!r}: not in the topology{hint}")
    dependents = sorted(topology.dependents(name))
    return {
        "name": name,
        "kind": topology.kind(name),
        "attrs": {k: v for k, v in topology.attrs(name).items() if k != "kind"},
        "depends_on": [{"entity": d, "redundant": r} for d, r in sorted(topology.dependencies(name))],
        "dependents": dependents[:50],
        "dependents_total": len(dependents),
        "tree": _tree(topology, name, depth),
    }


def _tree(topology: Topology, name: str, depth: int) -> list[str]:
    """What `name` depends on, transitively, as indented lines (`~>`: a redundant member)."""
    lines: list[str] = []
    seen = {name}

    def walk(current: str, level: int) -> None:
        if level > depth:
            return
        for dependency, redundant in sorted(topology.dependencies(current)):
            arrow = "~>" if redundant else "->"
            again = dependency in seen
            lines.append(f"{'  ' * (level - 1)}{arrow} {dependency}{' (see above)' if again else ''}")
            if not again:
                seen.add(dependency)
                walk(dependency, level + 1)

    walk(name, 1)
    return lines


def explain_alert(topology: Topology, labels_json: str, rule_files: list[str] | None) -> dict[str, Any]:
    from rules.ruleset import RuleSet

    try:
        labels = json.loads(labels_json)
    except json.JSONDecodeError as exc:
        raise InputError(f"--why: not JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InputError('--why: write the alert labels as a JSON object of strings, {"alertname": "..."}')
    cls = RuleSet.load(rule_files).classify(labels, topology)
    out: dict[str, Any] = {
        "labels": labels,
        "rule": cls.rule,
        "entity": cls.entity,
        "how": cls.how,
        "in_topology": bool(cls.entity and cls.entity in topology),
        "propagates": cls.propagates,
        "urgency": cls.urgency,
        "severity": cls.severity,
        "grace_seconds": cls.grace.total_seconds(),
    }
    if cls.entity and cls.entity in topology:
        out["depends_on"] = _tree(topology, cls.entity, 2)
    return out


def _print_show(report: dict[str, Any]) -> None:
    counts = dict(report["counts"])
    edges = counts.pop("edges", 0)
    print(f"{report['entities']} entities, {edges} edges; clusters: {', '.join(report['clusters']) or '-'}")
    width = max((len(kind) for kind in counts), default=0)
    for kind, count in counts.items():
        print(f"  {kind:<{width}}  {count}")
    entity = report.get("entity")
    if entity:
        print(f"\n{entity['name']} ({entity['kind']})")
        for key, value in entity["attrs"].items():
            print(f"  {key}: {value}")
        print(f"  depends on ({len(entity['depends_on'])}), transitively:")
        for line in entity["tree"] or ["(nothing)"]:
            print(f"    {line}")
        shown = entity["dependents"]
        print(f"  dependents ({entity['dependents_total']}):")
        for dependent in shown:
            print(f"    <- {dependent}")
        if entity["dependents_total"] > len(shown):
            print(f"    ... and {entity['dependents_total'] - len(shown)} more")
    why = report.get("why")
    if why:
        labels = ", ".join(f'{k}="{v}"' for k, v in why["labels"].items())
        print(f"\nalert {{{labels}}}")
        print(f"  rule: {why['rule'] or '(none matched)'}")
        print(
            f"  maps to: {why['entity'] or '(no entity)'}"
            + ("" if why["in_topology"] else " (not in topology)")
        )
        print(f"  how: {why['how']}")
        print(
            f"  urgency {why['urgency']}, severity {why['severity']}, "
            f"{'propagates to dependents' if why['propagates'] else 'does not propagate'}, "
            f"grace {why['grace_seconds']:g}s"
        )
        for line in why.get("depends_on", []):
            print(f"    {line}")


# -- export ---------------------------------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    topology = _load(args.files)
    names: list[str] | None = None
    if args.around:
        if args.around not in topology:
            describe_entity(topology, args.around)  # raises with suggestions
        names, truncated = neighbourhood(topology, args.around, args.depth, args.max_entities)
        if truncated:
            print(
                f"alert-router: the neighbourhood was cut at {args.max_entities} entities (--max-entities)",
                file=sys.stderr,
            )
    if args.format == "json":
        write_topology_file(topology, args.out, names)
    else:
        with _output(args.out) as out:
            for line in to_dot(topology, names, focus=args.around):
                out.write(line)
    return 0


def neighbourhood(topology: Topology, entity: str, depth: int, limit: int = 2000) -> tuple[list[str], bool]:
    """Entities within `depth` edges of `entity` in either direction, nearest first; and whether
    `limit` cut the list."""
    graph = topology.graph
    seen = {entity: 0}
    queue = deque([entity])
    while queue:
        current = queue.popleft()
        level = seen[current]
        if level >= depth:
            continue
        for neighbour in (*graph.succ[current], *graph.pred[current]):
            if neighbour in seen:
                continue
            if len(seen) >= limit:
                return list(seen), True
            seen[neighbour] = level + 1
            queue.append(neighbour)
    return list(seen), False


def to_dot(topology: Topology, names: Iterable[str] | None = None, focus: str | None = None) -> Iterator[str]:
    """Graphviz DOT; solid edges "depends on", dashed ones a group's redundant members."""
    graph = topology.graph
    chosen = sorted(graph.nodes if names is None else (n for n in names if n in graph))
    inside = set(chosen)
    yield "digraph topology {\n  rankdir=LR;\n  node [shape=box, style=filled, fontsize=10];\n"
    for name in chosen:
        kind = graph.nodes[name].get("kind") or entities.kind_of(name)
        label = f"{kind}\\n{_dot_escape(name.split('/', 2)[-1])}"
        colour = DOT_COLOURS.get(kind, "white")
        extra = ", penwidth=3, color=red" if name == focus else ""
        yield f'  "{_dot_escape(name)}" [label="{label}", fillcolor="{colour}"{extra}];\n'
    for name in chosen:
        for dependency, data in sorted(graph.succ[name].items()):
            if dependency in inside:
                style = " [style=dashed]" if data.get("redundant") else ""
                yield f'  "{_dot_escape(name)}" -> "{_dot_escape(dependency)}"{style};\n'
    yield "}\n"


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
