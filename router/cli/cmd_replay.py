"""`alert-router replay`: a recorded stream through the engine (router/core/replay.py), with the
files read and written here: stream, topology, rules, configuration, notifications, events."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import ValidationError

from ground.errors import InputError, describe_validation_error
from ground.jsonio import canonical_json
from router.cli.summary import incidents_text, notification_line
from router.core.engine import Engine
from router.core.replay import ReplayResult, replay
from router.core.settings import EngineSettings
from rules.ruleset import RuleSet
from topology.graph import Topology


def load_engine_settings(config: str | Path | None) -> EngineSettings:
    """The `engine:` section of the service's configuration file (the rest is ignored here)."""
    if config is None:
        return EngineSettings()
    path = Path(config)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise InputError(f"{path}{where}: not valid YAML") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: the configuration must be a mapping")
    try:
        return EngineSettings.model_validate(raw.get("engine") or {})
    except ValidationError as exc:
        raise InputError(f"{path}: engine.{describe_validation_error(exc)}") from None


def read_stream(path: str | Path) -> Iterator[tuple[int, str]]:
    """Lines of a recorded stream with their numbers; `-` reads standard input."""
    if str(path) == "-":
        yield from enumerate(sys.stdin, 1)
        return
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below, generator
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        yield from enumerate(handle, 1)


def run_replay(
    topology_paths: list[str],
    alerts_path: str,
    rule_paths: list[str] | None,
    config_path: str | None,
    out_path: str | None,
    events_path: str | None = None,
    err: TextIO | None = None,
    out: TextIO | None = None,
) -> int:
    """Everything is loaded and checked before any output file is created. On a terminal the
    notifications (without --out) and the summary are written for reading; to a file or a pipe
    they are the JSON of docs/contracts.md."""
    from topology.load import load_topology

    err = err or sys.stderr
    out = out or sys.stdout
    settings = load_engine_settings(config_path)
    topology = load_topology(topology_paths) if topology_paths else Topology()
    rules = RuleSet.load(rule_paths or None)
    engine = Engine(topology, rules, settings)
    result = replay(engine, read_stream(alerts_path), alerts_path, on_skip=err)
    notifications = (n.to_dict() for n in result.notifications)
    if out_path is None and out.isatty():
        print("Notifications (JSON Lines with --out FILE or into a pipe):", file=out)
        for row in notifications:
            print("  " + notification_line(row), file=out)
        out.flush()
    else:
        _write_lines(out_path, notifications, out)
    if events_path:
        _write_lines(events_path, (e.to_dict() for e in result.events), out)
    if err.isatty():
        print("\n".join(readable_summary(result, alerts_path)), file=err)
    else:
        print(json.dumps(result.summary(), sort_keys=True), file=err)
    return 0


def readable_summary(result: ReplayResult, source: str) -> list[str]:
    s = result.summary()
    actions = ", ".join(
        f"{s[key]} {key[:-1]}" for key in ("pages", "notices", "updates", "resolves") if s.get(key)
    )
    lines = [
        f"{source}: {s['deliveries']} deliveries, {s['alerts_received']} alerts ({s['alert_instances']} "
        f"instances, {s['duplicates']} duplicates), {s['skipped_lines']} lines skipped",
        f"{s['incidents']} incidents, {s['notifications']} notifications"
        + (f" ({actions})" if actions else ""),
        "",
    ]
    return lines + incidents_text(result.engine.incidents() if result.engine else [])


def _write_lines(path: str | None, rows: Iterable[dict[str, Any]], stdout: TextIO) -> None:
    if path is None or path == "-":
        for row in rows:
            stdout.write(canonical_json(row) + "\n")
        stdout.flush()
        return
    try:
        with open(path, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(canonical_json(row) + "\n")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
