"""Regenerate docs/img/timeline-node-down.png, the README's picture of the HTML timeline.

The incident is the bundled demo (examples/: a 12-node cluster and a node-down storm as
Alertmanager delivers it) run through the real engine, with an on-call engineer acknowledging
three minutes after the page; the page is rendered by headless Chromium (router/export/browser.py).

    .venv/bin/python scripts/screenshot_timeline.py [--out docs/img/timeline-node-down.png] [--html FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from router.core.engine import Engine  # noqa: E402
from router.core.model import parse_delivery_line  # noqa: E402
from router.export import build, render  # noqa: E402
from router.export.browser import inspect_page_sync  # noqa: E402
from rules.ruleset import RuleSet  # noqa: E402
from topology.load import load_topology  # noqa: E402

ACK_AFTER = timedelta(minutes=3)


def node_down_incident() -> tuple[list[dict], list[dict], str]:
    """(events, notifications, id of the paged incident) of the demo storm."""
    engine = Engine(load_topology([ROOT / "examples" / "cluster.prom"]), RuleSet.load())
    lines = (ROOT / "examples" / "node-down.jsonl").read_text().splitlines()
    notes, events = [], []
    page = None
    acked = False
    last = None
    for line in lines:
        delivery = parse_delivery_line(line)
        last = delivery.received
        if page is not None and not acked and last >= page.at + ACK_AFTER:
            notes += engine.act(page.incident, "acknowledge", "alice", page.at + ACK_AFTER, note="on it")
            acked = True
        out = engine.ingest(delivery, last)
        page = page or next((n for n in out if n.action == "page"), None)
        notes += out
        events += engine.drain_events()
    assert last is not None and page is not None, "the demo storm no longer pages: regenerate examples/"
    notes += engine.finish(last)
    events += engine.drain_events()
    return [e.to_dict() for e in events], [n.to_dict() for n in notes], page.incident


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img" / "timeline-node-down.png"))
    parser.add_argument("--html", help="also keep the HTML page here")
    args = parser.parse_args()
    events, notes, incident = node_down_incident()
    body = render(build(events, notes, incident), "html")[1]
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(args.html) if args.html else Path(tmp) / "timeline.html"
        page.write_text(body, encoding="utf-8")
        report = inspect_page_sync(page, screenshot=Path(args.out), down_to="#graph")
    if report.console or len(report.requests) != 1:
        print(f"unexpected console output or requests: {report.console} {report.requests}", file=sys.stderr)
        return 1
    print(f"{args.out}: incident {incident}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
