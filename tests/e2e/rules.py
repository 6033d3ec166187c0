"""The real kube-prometheus alert rules, with time scaled down for end-to-end tests.

    rules = catalogue_rules(1 / 60)                        # every rule; for: 15m -> 15s
    rules = catalogue_rules(1 / 60, ["Watchdog", "KubeNodeNotReady"])
    rules = catalogue_rules(1 / 60, scale_ranges=True)     # also [5m] -> [5s] in the exprs

The rules come from the reference catalogue (`tests/fixtures/reference/kubernetes-alerts.json`: 177
rules of kube-prometheus, kubernetes-mixin, node-exporter, etcd, CoreDNS, kube-proxy, Weave Net
and AWS VPC CNI) with their real `expr`, severity, static labels and annotations (summary,
description, runbook_url where the catalogue has them), grouped by the catalogue's `group`.
Only `for:` changes: multiplied by `factor`, rounded to whole seconds, at least 1s (a rule
without `for:`, or with `for: 0s`, keeps none).

Range selectors in the exprs (`[5m]`, `[15m:1m]`) keep their real length unless
`scale_ranges=True`. With real windows some alerts outlive their cause by minutes, as they do
in a real cluster: `KubePodCrashLooping` is `max_over_time(...[5m]) >= 1`, so it stays firing
5 minutes after the crash loop ends; scale the ranges when a test needs the heal to show.

Which rules are left out by default (`names=None`), and why:
- DROPPED_GROUPS: kube-prometheus filters the `kubernetes-system-kube-proxy` group out unless
  `kubeProxy: true` (and then scrapes kube-proxy with a PodMonitor); the e2e cluster does not
  scrape kube-proxy either, so `KubeProxyDown` (absent(up{job="kube-proxy"})) would fire
  forever. Naming the rules in `names` includes them anyway.
- UNPARSABLE: exprs that Debian's Prometheus (2.42) cannot parse. None so far: all 177 parse
  (tests/e2e/test_cluster_alerts.py runs `promtool check rules` on the full file).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from tests.reference import CATALOGUE

CATALOGUE_ENV = "E2E_ALERT_CATALOGUE"

# group -> why it is not in the default rule file
DROPPED_GROUPS: dict[str, str] = {
    "kubernetes-system-kube-proxy": (
        "kube-prometheus drops it unless kubeProxy: true; kube-proxy is not scraped, so "
        "KubeProxyDown (absent) would always fire"
    ),
}
# alertname -> why Debian's Prometheus cannot load it (checked with promtool check rules)
UNPARSABLE: dict[str, str] = {}

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_UNITS_MS["y"] = 365 * _UNITS_MS["d"]
_DURATION = re.compile(r"^(?:\d+(?:ms|[smhdwy]))+$")
_PART = re.compile(r"(\d+)(ms|[smhdwy])")
# [5m], [15m:1m], [15m:] — a range or subquery; `[0-9]` inside a regex string never matches.
_RANGE = re.compile(r"\[((?:\d+(?:ms|[smhdwy]))+)(?::((?:\d+(?:ms|[smhdwy]))*))?\]")


class CatalogueError(RuntimeError):
    pass


def catalogue_path() -> Path:
    """The repository's copy (tests/fixtures/reference/), or $E2E_ALERT_CATALOGUE; a missing file
    is an error that says where it was looked for (tests fail, they do not skip)."""
    override = os.environ.get(CATALOGUE_ENV)
    path = Path(override) if override else CATALOGUE
    if not path.is_file():
        raise CatalogueError(
            f"the alert rule catalogue is missing: expected {path} "
            f"(the reference kubernetes-alerts.json; set {CATALOGUE_ENV}=/path to override)"
        )
    return path


def load_catalogue() -> list[dict[str, Any]]:
    return json.loads(catalogue_path().read_text())


def parse_duration(text: str) -> int:
    """Milliseconds of a Prometheus duration (`1h30m`, `15m`, `30s`, `500ms`)."""
    text = text.strip()
    if not _DURATION.match(text):
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNITS_MS[unit] for n, unit in _PART.findall(text))


def format_duration(ms: int) -> str:
    """Whole seconds as Prometheus writes them: 90000 -> `1m30s`, 0 -> `0s`."""
    seconds = ms // 1000
    if seconds == 0:
        return "0s"
    out = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out)


def scale_duration(text: str, factor: float) -> str:
    """`text` times `factor`, rounded to whole seconds, at least `1s` (`0s` stays `0s`).

    scale_duration("15m", 1/30) == "30s"; scale_duration("1h30m", 1/60) == "1m30s"."""
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}")
    ms = parse_duration(text)
    if ms == 0:
        return "0s"
    seconds = max(1, math.floor(ms * factor / 1000 + 0.5))
    return format_duration(seconds * 1000)


def scale_ranges_in(expr: str, factor: float) -> str:
    """Every range selector and subquery window of a PromQL expr scaled like scale_duration."""

    def one(match: re.Match[str]) -> str:
        window = scale_duration(match.group(1), factor)
        if match.group(2) is None:
            return f"[{window}]"
        step = scale_duration(match.group(2), factor) if match.group(2) else ""
        return f"[{window}:{step}]"

    return _RANGE.sub(one, expr)


def catalogue_rules(
    factor: float,
    names: Iterable[str] | None = None,
    *,
    scale_ranges: bool = False,
) -> str:
    """A Prometheus rule file (YAML) of the catalogue's rules, `for:` multiplied by `factor`.

    `names`: only these alertnames (every rule of each: some alerts have two severities); an
    unknown name is an error. None: every rule but DROPPED_GROUPS. UNPARSABLE rules are always
    left out. `scale_ranges`: scale the exprs' range windows too (see the module doc)."""
    rules = load_catalogue()
    if names is not None:
        wanted = set(names)
        unknown = wanted - {r["alertname"] for r in rules}
        if unknown:
            raise CatalogueError(f"not in the catalogue: {sorted(unknown)}")
        rules = [r for r in rules if r["alertname"] in wanted]
    else:
        rules = [r for r in rules if r["group"] not in DROPPED_GROUPS]
    groups: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        if rule["alertname"] in UNPARSABLE:
            continue
        expr = rule["expr"].strip()
        if scale_ranges:
            expr = scale_ranges_in(expr, factor)
        out: dict[str, Any] = {"alert": rule["alertname"], "expr": expr}
        if rule.get("for") and parse_duration(rule["for"]) > 0:
            out["for"] = scale_duration(rule["for"], factor)
        out["labels"] = {"severity": rule["severity"], **(rule.get("static_labels") or {})}
        annotations = {k: rule[k] for k in ("description", "runbook_url", "summary") if rule.get(k)}
        if annotations:
            out["annotations"] = annotations
        groups.setdefault(rule["group"], []).append(out)
    document = {"groups": [{"name": name, "rules": body} for name, body in groups.items()]}
    return yaml.safe_dump(document, sort_keys=False, width=1000, allow_unicode=True)
