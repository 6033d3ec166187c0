"""Markdown for a post-mortem document (GitHub-flavoured: tables, no HTML)."""

from __future__ import annotations

import re

from router.export.report import Bullets, Code, Para, Report, Strong, Table, Text

# Characters that would start Markdown syntax inside free text (names, notes, reasons).
_SPECIAL = set("\\`*_[]<>|#")


def escape(text: str) -> str:
    flat = re.sub(r"\s+", " ", text)
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in flat)


def inline(parts: Text) -> str:
    out = []
    for part in parts:
        if isinstance(part, Code):
            # A code span cannot hold a pipe inside a table; entity names never contain one.
            text = part.text.replace("|", "/").replace("`", "'")
            out.append(f"`{text}`")
        elif isinstance(part, Strong):
            out.append(f"**{escape(part.text)}**")
        else:
            out.append(escape(part))
    return "".join(out)


def table(block: Table) -> list[str]:
    header = [escape(h) for h in block.header]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in block.rows:
        lines.append("| " + " | ".join(inline(cell) for cell in row) + " |")
    return lines


def render_markdown(report: Report) -> str:
    lines = [f"# {escape(report.title)}", ""]
    if report.banner is not None:
        lines += ["> " + inline(report.banner.parts), ""]
    for section in report.sections:
        lines += ["#" * section.level + " " + escape(section.title), ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines += table(block)
            elif isinstance(block, Bullets):
                lines += ["- " + inline(item) for item in block.items]
            elif isinstance(block, Para):
                lines.append(("> " if block.note else "") + inline(block.parts))
            lines.append("")
    lines += [f"_{escape(report.footer)}_", ""]
    return "\n".join(lines)
