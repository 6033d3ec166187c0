"""The HTML timeline in a real headless Chromium (Debian's `chromium`, installed by
scripts/install-externals.sh), driven over the DevTools protocol (router/export/browser.py):
it loads with no console message and no request but its own file, the chart has one lane per
entity with the root on top, the dependency graph has every entity of the symptom paths, the
report is below, it prints; the screenshots and the PDF are kept in tests/artifacts/.

Without Chromium these tests fail when CI=true (the CI must run them) and are skipped otherwise.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from router.export import build, render
from router.export.browser import find_chromium, inspect_page_sync
from tests.test_export_world import NODE, Recorded, node_down_storm

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")

EXPRESSIONS = {
    "lanes": "[...document.querySelectorAll('svg.timeline-chart g.lane')].map(g => g.dataset.entity)",
    "bars": "[...document.querySelectorAll('svg.timeline-chart g.lane')].map("
    "g => [...g.querySelectorAll('rect.bar')].filter(r => r.getBBox().width > 0).length)",
    "human_markers": "document.querySelectorAll('svg.timeline-chart .m-human').length",
    "dag_nodes": "[...document.querySelectorAll('svg.dependency-graph g.dag-node')]"
    ".map(g => g.dataset.entity)",
    "dag_root": "document.querySelector('svg.dependency-graph g.dag-root').dataset.entity",
    "dag_edges": "document.querySelectorAll('svg.dependency-graph path.edge').length",
    "sections": "[...document.querySelectorAll('main h2')].map(h => h.textContent)",
    "timeline_rows": "document.querySelectorAll('table.timeline tbody tr').length",
    "badge": "document.querySelector('h1 .badge').textContent",
    "resources": "performance.getEntriesByType('resource').length",
    "chart_fits": "document.querySelector('svg.timeline-chart').getBoundingClientRect().right"
    " <= document.documentElement.clientWidth",
}
PRINT_EXPRESSIONS = {
    "background": "getComputedStyle(document.body).backgroundColor",
    "chart_width": "document.querySelector('svg.timeline-chart').getBoundingClientRect().width",
}


def chromium() -> str:
    found = find_chromium()
    if found is None:
        message = "chromium is not installed: run scripts/install-externals.sh (Debian package `chromium`)"
        if IN_CI:
            pytest.fail(message + "; CI must run the browser checks")
        pytest.skip(message)
    return found


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def expected_lanes(recorded: Recorded, incident: str) -> set[str]:
    """Entities of the incident computed straight from the events: the root and every entity
    with an alert attached to it or to an incident merged into it."""
    family, grew = {incident}, True
    while grew:
        merged = {e["incident"] for e in recorded.events if e["kind"] == "merged" and e["into"] in family}
        grew = not merged <= family
        family |= merged
    attached = {
        e["entity"]
        for e in recorded.events
        if e["kind"] in ("root_alert", "symptom_attached") and e["incident"] in family
    }
    return attached | {recorded.engine.incident(incident)["root"]["entity"]}


@pytest.mark.parametrize("case", ["closed", "open"])
def test_html_timeline_in_headless_chromium(case, tmp_path):
    binary = chromium()
    recorded = node_down_storm(resolve=case == "closed")
    timeline = build(recorded.events, recorded.notifications, recorded.incident)
    page = tmp_path / f"{case}.html"
    page.write_text(render(timeline, "html", "Europe/Paris")[1], encoding="utf-8")
    shot = ARTIFACTS / f"timeline-node-down-{case}.png"
    pdf = ARTIFACTS / f"timeline-node-down-{case}.pdf"
    shot.unlink(missing_ok=True)
    report = inspect_page_sync(
        page,
        expressions=EXPRESSIONS,
        print_expressions=PRINT_EXPRESSIONS,
        screenshot=shot,
        pdf=pdf,
        chromium=binary,
    )
    values = report.values

    assert report.console == []  # no console call, log entry or exception
    assert report.requests == [page.resolve().as_uri()]  # nothing but the file itself
    assert values["resources"] == 0

    lanes = values["lanes"]
    assert len(lanes) == len(set(lanes)) == len(expected_lanes(recorded, recorded.incident))
    assert set(lanes) == expected_lanes(recorded, recorded.incident)
    assert lanes[0] == NODE  # the root on top
    assert all(count >= 1 for count in values["bars"]), dict(zip(lanes, values["bars"], strict=True))
    assert values["human_markers"] == 2  # alice acknowledged, bob silenced
    assert values["chart_fits"] is True

    nodes, edges = timeline.graph()
    assert sorted(values["dag_nodes"]) == sorted(nodes) and set(lanes) <= set(values["dag_nodes"])
    assert values["dag_root"] == NODE
    assert values["dag_edges"] == len(edges) > 0

    assert values["sections"][:2] == ["Timeline chart", "Dependency neighbourhood of the root"]
    assert {"Summary", "Impact window", "Root cause and evidence", "Timeline", "Key figures"} <= set(
        values["sections"]
    )
    assert values["timeline_rows"] == len(timeline.entries)
    assert values["badge"] == ("closed" if case == "closed" else "still open")

    width, height = png_size(shot)
    assert width == 1200 and height > 900  # the whole page, not just the viewport
    assert report.print_values["background"] == "rgb(255, 255, 255)"
    assert report.print_values["chart_width"] > 500
    assert pdf.read_bytes()[:5] == b"%PDF-"
