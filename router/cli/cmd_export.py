"""`alert-router export` (an incident's post-mortem timeline) and `alert-router incidents` (the
list of incidents), from a replay's files or from the service's event log. See docs/export.md.

    alert-router export INCIDENT [--format md|json|html|csv] [-o FILE] [--tz ZONE] [--require-closed]
                        [--events FILE [--notifications FILE] | --data-dir DIR | --config FILE]
    alert-router incidents [--events FILE | --data-dir DIR | --config FILE]
                           [--since T] [--until T] [--state S] [--entity E] [--format table|json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ground.errors import InputError
from ground.times import format_time, parse_time
from router.export.model import LIVE_STATES, STATES, IncidentSummary, build, empty, summarize
from router.export.render import FORMATS, render
from router.export.sources import FileSource, Source
from router.export.timefmt import stamp

STATE_CHOICES = (*STATES, "live")


def register(subparsers: Any) -> None:
    export = subparsers.add_parser(
        "export",
        help="an incident's post-mortem timeline (Markdown, JSON, HTML or CSV)",
        description="Export an incident's timeline, built from the recorded decision events only.",
    )
    export.add_argument("incident", metavar="INCIDENT", help="incident id (inc-xxxxxx)")
    export.add_argument(
        "--format", choices=FORMATS, help="output format (default: from the -o extension, else md)"
    )
    export.add_argument("-o", "--out", help="output file (default: stdout)")
    export.add_argument("--tz", help="also show times in this IANA time zone (e.g. Europe/Paris)")
    export.add_argument(
        "--require-closed",
        action="store_true",
        help="fail (exit 2) instead of exporting an incident that is still open",
    )
    _source_arguments(export)
    export.set_defaults(func=_export)

    incidents = subparsers.add_parser(
        "incidents",
        help="list incidents from a replay's events or the service's event log",
        description="List incidents, newest last. Filters combine (all must match).",
    )
    _source_arguments(incidents)
    incidents.add_argument("--since", help="only incidents still open at or after this time (RFC 3339)")
    incidents.add_argument("--until", help="only incidents opened before this time (RFC 3339)")
    incidents.add_argument(
        "--state", choices=STATE_CHOICES, help="only incidents in this state (live: not closed nor merged)"
    )
    incidents.add_argument(
        "--entity", help="only incidents whose root or one of whose alerts is on this entity (or below it)"
    )
    incidents.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    incidents.set_defaults(func=_incidents)


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("source (default: the service's event log in ./data)")
    group.add_argument("--events", help="decision events of a replay (`replay --events FILE`)")
    group.add_argument("--notifications", help="notifications of that replay (`replay --out FILE`)")
    group.add_argument("--data-dir", help="the service's data directory (its event log)")
    group.add_argument("--config", help="the service's configuration file (for storage.data_dir)")


def open_source(args: argparse.Namespace) -> Source:
    if args.events and (args.data_dir or args.config):
        raise InputError("give either --events (a replay) or --data-dir/--config (the service), not both")
    if args.notifications and not args.events:
        raise InputError("--notifications needs --events (the decision events of the same replay)")
    if args.events:
        return FileSource(args.events, args.notifications)
    from router.export.store_source import StoreSource
    from router.service.config import load_settings

    overrides = {"storage": {"data_dir": args.data_dir}} if args.data_dir else {}
    return StoreSource(load_settings(args.config, overrides).storage.path)


# ------------------------------------------------------------------------------ export


def _export(args: argparse.Namespace) -> int:
    fmt = args.format or _format_from_name(args.out) or "md"
    source = open_source(args)
    recording = source.load(args.incident)
    timeline = build(
        recording.events,
        recording.notifications,
        args.incident,
        outbox=recording.outbox,
        attempts=recording.attempts,
        origin=recording.origin,
    )
    if timeline.open and args.require_closed:
        raise InputError(f"incident {timeline.id} is still open (state {timeline.state}): nothing exported")
    _, body = render(timeline, fmt, args.tz)
    _write(args.out, body)
    if timeline.open:
        print(
            f"alert-router: note: incident {timeline.id} is still open (state {timeline.state}); "
            "the export is marked provisional",
            file=sys.stderr,
        )
    elif timeline.survivor:
        print(
            f"alert-router: note: incident {timeline.id} was merged into {timeline.merged_into}; "
            f"`alert-router export {timeline.survivor}` has the whole story",
            file=sys.stderr,
        )
    return 0


def _format_from_name(name: str | None) -> str | None:
    if not name or name == "-":
        return None
    suffix = Path(name).suffix.lower().lstrip(".")
    return {"markdown": "md", "htm": "html"}.get(suffix, suffix if suffix in FORMATS else None)


def _write(out: str | None, body: str) -> None:
    if out is None or out == "-":
        sys.stdout.write(body)
        sys.stdout.flush()
        return
    target = Path(out)
    try:
        # Written whole or not at all: a failed export never leaves half a file behind.
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
        ) as handle:
            handle.write(body)
        os.replace(handle.name, target)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None


# ------------------------------------------------------------------------------ incidents


def _incidents(args: argparse.Namespace) -> int:
    since = _time_arg(args.since, "--since")
    until = _time_arg(args.until, "--until")
    source = open_source(args)
    recording = source.load()
    if not recording.events:
        raise empty(recording.origin)
    found = [
        s for s in summarize(recording.events, recording.notifications) if _matches(s, args, since, until)
    ]
    if args.format == "json":
        print(json.dumps([_summary_dict(s) for s in found], indent=2))
        return 0
    _print_table(found)
    if not found:
        print("alert-router: no incident matches the filters", file=sys.stderr)
    return 0


def _matches(
    item: IncidentSummary, args: argparse.Namespace, since: datetime | None, until: datetime | None
) -> bool:
    if args.state == "live":
        if item.state not in LIVE_STATES:
            return False
    elif args.state and item.state != args.state:
        return False
    if until is not None and item.opened_at >= until:
        return False
    if since is not None and item.closed_at is not None and item.closed_at < since:
        return False
    return not args.entity or any(_entity_matches(args.entity, e) for e in item.entities)


def _entity_matches(wanted: str, entity: str) -> bool:
    """`node/default/w1` matches itself and what is below it (`node/default/w1/kubelet`); a bare
    name (`w1`) matches an entity whose last part it is."""
    wanted = wanted.strip("/")
    if "/" not in wanted:
        return entity.rsplit("/", 1)[-1] == wanted
    return entity == wanted or entity.startswith(wanted + "/")


def _time_arg(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = parse_time(value)
    except ValueError:
        # A time without an offset is read as UTC, like every time this tool prints.
        try:
            naive = datetime.fromisoformat(value)
            parsed = naive.replace(tzinfo=UTC) if naive.tzinfo is None else naive
        except ValueError:
            parsed = None
    if parsed is None:
        raise InputError(f"{flag}: {value!r} is not an RFC 3339 time (e.g. 2026-10-06T02:00:00Z)")
    return parsed


def _summary_dict(s: IncidentSummary) -> dict[str, Any]:
    return {
        "id": s.id,
        "state": s.state,
        "severity": s.severity,
        "root": s.root,
        "opened_at": format_time(s.opened_at),
        "paged_at": format_time(s.paged_at) if s.paged_at else None,
        "closed_at": format_time(s.closed_at) if s.closed_at else None,
        "merged_into": s.merged_into,
        "alerts": s.alerts,
        "pages": s.pages,
    }


def _print_table(items: list[IncidentSummary]) -> None:
    header = ("ID", "STATE", "SEVERITY", "OPENED (UTC)", "PAGED", "CLOSED", "ALERTS", "PAGES", "ROOT")
    rows = [header]
    for s in items:
        same_day = stamp(s.opened_at)[:10]

        def when(value: datetime | None, day: str = same_day) -> str:
            if value is None:
                return "-"
            text = stamp(value)
            return text[11:] if text[:10] == day else text

        state = f"merged>{s.merged_into}" if s.state == "merged" and s.merged_into else s.state
        rows.append(
            (
                s.id,
                state,
                s.severity,
                stamp(s.opened_at),
                when(s.paged_at),
                when(s.closed_at),
                str(s.alerts),
                str(s.pages),
                s.root,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        print("  ".join([*cells, row[-1]]))
