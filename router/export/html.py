"""The timeline as one self-contained HTML page: inline CSS, inline SVG, no script, no network.

A Content-Security-Policy forbids every external load, so a page attached to a ticket renders
the same offline; `@media print` makes it readable on paper (A4 landscape, no backgrounds that
waste ink, tables that do not split a row)."""

from __future__ import annotations

from datetime import tzinfo
from html import escape

from router.export.chart import render_chart, render_legend
from router.export.dag import render_graph
from router.export.model import Timeline
from router.export.report import Bullets, Code, Para, Report, Strong, Table, Text, build_report
from router.export.timefmt import duration, with_zone

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

CSS = """
:root { --ink:#1d2433; --muted:#5b6475; --line:#d9dee7; --paper:#ffffff; --band:#f5f7fa;
  --crit:#c62828; --warn:#ef8a17; --info:#2f76d2; --none:#8c96a8; --root:#7a1d1d;
  --human:#2155cf; --msg:#7b3fb5; --ok:#2e7d32; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
  color: var(--ink); background: #eef1f5; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 40px; background: var(--paper); }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px;
  border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.sub { color: var(--muted); margin: 0 0 14px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  vertical-align: middle; margin-left: 6px; color: #fff; background: var(--ok); }
.badge-open { background: var(--crit); } .badge-merged { background: var(--muted); }
.callout { border-left: 4px solid var(--crit); background: #fff4f2; padding: 8px 12px; margin: 12px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 10px;
  margin: 14px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card .v { font-size: 20px; font-weight: 650; } .card .k { color: var(--muted); font-size: 12px; }
figure { margin: 8px 0 0; } figcaption { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: var(--band); } table.facts td:first-child { width: 160px; color: var(--muted); }
table.facts thead { display: none; }
table.timeline td:nth-child(-n+2) { white-space: nowrap; font-variant-numeric: tabular-nums; }
code { font: 12px ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; background: var(--band);
  padding: 0 3px; border-radius: 3px; white-space: nowrap; }
table.symptoms code, table.facts code, .sub code { white-space: normal; overflow-wrap: anywhere; }
ul.legend { list-style: none; padding: 0; margin: 6px 0; display: flex; flex-wrap: wrap; gap: 4px 16px;
  font-size: 12px; color: var(--muted); }
ul.legend li { display: flex; align-items: center; gap: 5px; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
.tick, .axis-label { font-size: 10px; fill: var(--muted); } .grid { stroke: var(--line); stroke-width: 1; }
.lane-label { font-size: 11px; fill: var(--ink); } .track-label { font-weight: 600; }
.root-badge { font-weight: 700; fill: var(--root); }
.lane-bg.lane-0 { fill: #fbfcfd; } .lane-bg.lane-1 { fill: #f1f4f8; } .track-bg { fill: #e8ecf3; }
.lane-root .lane-bg { fill: #fdecec; }
.timeline-chart .impact { fill: #e53935; opacity: .07; pointer-events: none; }
.bar { stroke: rgba(0,0,0,.25); stroke-width: .6; }
.bar-critical { fill: var(--crit); } .bar-warning { fill: var(--warn); } .bar-info { fill: var(--info); }
.bar-none { fill: var(--none); } .bar-root { stroke: var(--root); stroke-width: 1.4; }
.bar-firing { opacity: .75; } .bar-inferred { fill: url(#hatch); stroke: var(--root); stroke-width: 1; }
.hatch-bg { fill: #f7d9d9; } .hatch-line { stroke: var(--root); stroke-width: 2; }
.received { stroke: var(--ink); stroke-width: 1.4; }
.marker { stroke: #fff; stroke-width: 1; } .m-decision { fill: #4a5468; } .m-paged { fill: var(--crit); }
.m-human { fill: var(--human); } .m-message { fill: var(--msg); } .m-resolved { fill: var(--ok); }
.m-attached, .m-root-alert { fill: #fff; stroke: var(--ink); stroke-width: 1.2; }
.m-detached { stroke: var(--ink); stroke-width: 1.6; fill: none; }
.m-lane { fill: var(--root); }
.guide { stroke-width: 1.2; stroke-dasharray: 4 3; } .guide-label { font-size: 10px; font-weight: 600; }
.guide-paged { stroke: var(--crit); fill: var(--crit); }
.guide-acknowledged { stroke: var(--human); fill: var(--human); }
.guide-resolved { stroke: var(--ok); fill: var(--ok); }
.dag-node rect { fill: #fff; stroke: var(--none); stroke-width: 1.2; }
.dag-root rect { fill: #fdecec; stroke: var(--crit); stroke-width: 2; }
.dag-alerting rect { fill: #fff3e3; stroke: var(--warn); }
.dag-via rect { stroke-dasharray: 4 3; }
.dag-label { font-size: 11px; font-weight: 600; fill: var(--ink); }
.dag-sub { font-size: 10px; fill: var(--muted); }
.edge { fill: none; stroke: #7d8799; stroke-width: 1.3; } .arrow-head { fill: #7d8799; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { background: #fff; font-size: 11px; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  figure, .cards, svg { break-inside: avoid; }
  tr { break-inside: avoid; }
  thead { display: table-header-group; }
  .lane-bg.lane-1, .track-bg, .timeline-chart .impact, th, code {
    print-color-adjust: exact; -webkit-print-color-adjust: exact; }
  .callout { border: 1px solid var(--crit); }
  a { color: inherit; text-decoration: none; }
}
"""


def inline(parts: Text) -> str:
    out = []
    for part in parts:
        if isinstance(part, Code):
            out.append(f"<code>{escape(part.text)}</code>")
        elif isinstance(part, Strong):
            out.append(f"<strong>{escape(part.text)}</strong>")
        else:
            out.append(escape(part))
    return "".join(out)


def table(block: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in block.header)
    rows = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in block.rows)
    css = f' class="{escape(block.css)}"' if block.css else ""
    return f"<table{css}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def report_html(report: Report) -> str:
    """The Markdown content, as HTML (the same document tree, not a Markdown parser)."""
    out = []
    for section in report.sections:
        out.append(
            f'<section id="{escape(section.id)}"><h{section.level}>{escape(section.title)}</h{section.level}>'
        )
        for block in section.blocks:
            if isinstance(block, Table):
                out.append(table(block))
            elif isinstance(block, Bullets):
                out.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in block.items) + "</ul>")
            elif isinstance(block, Para):
                tag = "blockquote" if block.note else "p"
                out.append(f"<{tag}>{inline(block.parts)}</{tag}>")
        out.append("</section>")
    return "\n".join(out)


def _cards(t: Timeline) -> str:
    f = t.figures
    cards = [
        ("Time to detect", duration(f.time_to_detect)),
        ("Time to page", duration(f.time_to_page) if f.paged_at else "not paged"),
        ("Time to acknowledge", duration(f.time_to_acknowledge)),
        ("Time to resolve", duration(f.time_to_resolve) if f.resolved_at else ("open" if t.open else "—")),
        ("Alerts received", str(f.alerts_received)),
        ("Pages sent", str(f.pages_sent)),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="v">{escape(v)}</div><div class="k">{escape(k)}</div></div>'
            for k, v in cards
        )
        + "</div>"
    )


def render_html(t: Timeline, tz: tzinfo | None = None) -> str:
    report = build_report(t, tz)
    state = "open" if t.open else t.state
    badge_text = {"open": "still open", "merged": "merged", "closed": "closed"}.get(state, state)
    banner = f'<div class="callout" role="note">{inline(report.banner.parts)}</div>' if report.banner else ""
    lanes = len(t.entities())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="alert-router">
<link rel="icon" href="data:,">
<title>{escape(report.title)}</title>
<style>{CSS}</style>
</head>
<body>
<main data-incident="{escape(t.id)}" data-state="{escape(t.state)}">
<header>
<h1>{escape(report.title)} <span class="badge badge-{escape(state)}">{escape(badge_text)}</span></h1>
<p class="sub">Opened {escape(with_zone(t.opened_at, tz))} · severity {escape(t.severity)} · root
<code>{escape(t.root)}</code></p>
</header>
{banner}
{_cards(t)}
<section id="chart">
<h2>Timeline chart</h2>
<figure>
{render_chart(t, tz)}
<figcaption>{lanes} entit{"ies" if lanes != 1 else "y"}, one lane each, the root on top; the shaded band is
the impact window. Hover a bar or a marker for details.</figcaption>
</figure>
{render_legend()}
</section>
<section id="graph">
<h2>Dependency neighbourhood of the root</h2>
<figure>
{render_graph(t)}
<figcaption>Every symptom's path to the root as recorded by the router; arrows point from a dependent
to what it depends on. Dashed boxes are on a path but had no alert.</figcaption>
</figure>
</section>
{report_html(report)}
<footer>{escape(report.footer)}</footer>
</main>
</body>
</html>
"""
