"""The rule facts a generated alert carries: static labels, `for`, summary, description, runbook URL and
expression.

They are read from the repository's copy of the public kube-prometheus alert catalogue (with the etcd and
CoreDNS mixins), so the storms carry exactly what the real rules would put on their alerts.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

CATALOGUE_PATH = (
    Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "reference" / "kubernetes-alerts.json"
)
# An alert's generatorURL quotes its rule's expression; the first 300 characters are enough to recognise it.
EXPR_CHARS = 300
_DURATION = re.compile(r"(\d+)([smh])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Rule:
    """What an alerting rule puts on each of its alerts."""

    static_labels: dict[str, str]
    for_seconds: int
    summary: str
    description: str
    runbook_url: str
    expr: str


def _seconds(duration: str | None) -> int:
    """A rule's `for` ("15m"; absent means none) in seconds."""
    if duration is None:
        return 0
    match = _DURATION.fullmatch(duration)
    if match is None:
        raise ValueError(f"unexpected duration {duration!r} in {CATALOGUE_PATH}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _load() -> dict[str, Rule]:
    """Rules keyed `alertname/severity`, or `alertname/severity/for` where one alert has several rules of a
    severity (KubeAPIErrorBudgetBurn's burn-rate windows)."""
    entries = json.loads(CATALOGUE_PATH.read_text())
    per_severity: dict[tuple[str, str], int] = {}
    for entry in entries:
        name_severity = (entry["alertname"], entry["severity"])
        per_severity[name_severity] = per_severity.get(name_severity, 0) + 1
    rules = {}
    for entry in entries:
        key = f"{entry['alertname']}/{entry['severity']}"
        if per_severity[(entry["alertname"], entry["severity"])] > 1:
            key += f"/{entry['for']}"
        rules[key] = Rule(
            static_labels=entry["static_labels"] or {},
            for_seconds=_seconds(entry["for"]),
            summary=entry["summary"] or "",
            description=entry["description"] or "",
            runbook_url=entry["runbook_url"] or "",
            expr=entry["expr"][:EXPR_CHARS],
        )
    return rules


RULES = _load()
