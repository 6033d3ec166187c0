"""The dependency neighbourhood of the root, drawn from the symptom paths as a layered graph.

Layout: the root on the top layer, every other entity one layer below what it depends on (its
shortest distance to the root along the recorded paths); within a layer, entities sit under the
mean position of what they depend on (one barycentre pass), and a crowded layer wraps onto
several rows. Edges point from the dependent up to its dependency."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from html import escape

from router.core.wording import describe
from router.export.chart import label
from router.export.model import Timeline
from topology import entities

WIDTH = 1000
BOX_W = 180
BOX_H = 34
GAP_X = 14
ROW_GAP = 22
LAYER_GAP = 46
MARGIN = 12
PER_ROW = (WIDTH - 2 * MARGIN + GAP_X) // (BOX_W + GAP_X)


@dataclass
class Placed:
    entity: str
    layer: int
    x: float  # centre
    y: float  # top


def layers(root: str, nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Shortest distance to the root walking edges backwards (root = 0)."""
    dependents: dict[str, list[str]] = {}
    for a, b in edges:
        dependents.setdefault(b, []).append(a)
    depth = {root: 0}
    queue = deque([root])
    while queue:
        here = queue.popleft()
        for child in dependents.get(here, []):
            if child not in depth:
                depth[child] = depth[here] + 1
                queue.append(child)
    lowest = max(depth.values(), default=0) + 1
    return {n: depth.get(n, lowest) for n in nodes}


def layout(root: str, nodes: list[str], edges: list[tuple[str, str]]) -> tuple[list[Placed], float]:
    depth = layers(root, nodes, edges)
    ups: dict[str, list[str]] = {}
    for a, b in edges:
        ups.setdefault(a, []).append(b)
    placed: dict[str, Placed] = {}
    y = float(MARGIN)
    for layer in range(max(depth.values(), default=0) + 1):
        members = [n for n in nodes if depth[n] == layer]
        if not members:
            continue

        def pull(name: str) -> float:
            above = [placed[p].x for p in ups.get(name, []) if p in placed]
            return sum(above) / len(above) if above else WIDTH / 2

        members.sort(key=lambda n: (pull(n), n))
        for start in range(0, len(members), PER_ROW):
            row = members[start : start + PER_ROW]
            row_w = len(row) * BOX_W + (len(row) - 1) * GAP_X
            left = (WIDTH - row_w) / 2
            for i, name in enumerate(row):
                placed[name] = Placed(name, layer, left + i * (BOX_W + GAP_X) + BOX_W / 2, y)
            y += BOX_H + ROW_GAP
        y += LAYER_GAP - ROW_GAP
    height = y - LAYER_GAP + ROW_GAP + MARGIN
    return [placed[n] for n in nodes], max(height, BOX_H + 2 * MARGIN)


def render_graph(t: Timeline) -> str:
    nodes, edges = t.graph()
    boxes, height = layout(t.root, nodes, edges)
    where = {b.entity: b for b in boxes}
    alerting: dict[str, list[str]] = {}
    for alert in t.alerts:
        alerting.setdefault(alert.entity, []).append(alert.alertname)
    out = [
        '<svg class="dependency-graph" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {round(height)}" '
        f'width="100%" role="img" aria-label="Dependency neighbourhood of {escape(t.root)}: '
        f'{len(nodes)} entities, {len(edges)} dependencies">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" class="arrow-head"/></marker></defs>',
    ]
    for a, b in edges:
        child, parent = where[a], where[b]
        x1, y1 = child.x, child.y
        x2, y2 = parent.x, parent.y + BOX_H
        if y1 <= y2:  # same row or upwards in the layout: route around the side
            x1, y1 = child.x + BOX_W / 2, child.y + BOX_H / 2
            x2, y2 = parent.x + BOX_W / 2, parent.y + BOX_H / 2
            bend = max(abs(y1 - y2) / 2, 30)
            d = f"M{x1},{y1} C{x1 + bend},{y1} {x2 + bend},{y2} {x2 + 2},{y2}"
        else:
            mid = (y1 + y2) / 2
            d = f"M{x1},{y1} C{x1},{mid} {x2},{mid} {x2},{y2 + 1}"
        out.append(
            f'<path class="edge" data-from="{escape(a)}" data-to="{escape(b)}" d="{d}" '
            'marker-end="url(#arrow)">'
            f"<title>{escape(describe(a))} depends on {escape(describe(b))}</title></path>"
        )
    for box in boxes:
        names = alerting.get(box.entity, [])
        role = "root" if box.entity == t.root else ("alerting" if names else "via")
        left = box.x - BOX_W / 2
        count = f"{len(names)} alert{'s' if len(names) != 1 else ''}"
        if role == "root":
            sub = "root cause · " + (count if names else "inferred")
        else:
            sub = count if names else "no alert"
        kind = entities.kind_of(box.entity)
        name = label(box.entity, 60)
        if name.startswith(kind + " "):  # the kind goes to the second line: room for the name
            name, sub = name[len(kind) + 1 :], f"{kind} · {sub}"
        if " on " in name:  # `kubelet on node w1`: the component, and where below
            name, place = name.split(" on ", 1)
            sub = f"on {place} · {sub}"
        if len(name) > 24 and "/" in name:  # and the namespace too
            namespace, name = name.split("/", 1)
            sub = f"{kind} in {namespace} · {sub.split(' · ', 1)[1]}"
        if len(name) > 24:
            head = 14
            name = name[:head] + "…" + name[len(name) - 9 :]
        tip = box.entity + (": " + ", ".join(sorted(set(names))) if names else "")
        out.append(
            f'<g class="dag-node dag-{role}" data-entity="{escape(box.entity)}" data-layer="{box.layer}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{round(left, 1)}" y="{round(box.y, 1)}" width="{BOX_W}" height="{BOX_H}" rx="5"/>'
            f'<text class="dag-label" x="{round(box.x, 1)}" y="{round(box.y + 14, 1)}" text-anchor="middle">'
            f"{escape(name)}</text>"
            f'<text class="dag-sub" x="{round(box.x, 1)}" y="{round(box.y + 27, 1)}" text-anchor="middle">'
            f"{escape(sub)}</text></g>"
        )
    out.append("</svg>")
    return "\n".join(out)
