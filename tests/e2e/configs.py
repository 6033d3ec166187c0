"""Configurations of the end-to-end stack, every duration scaled by one factor.

A real failure unfolds over minutes: `for: 15m` in the rules, Alertmanager's 30s/5m group
timings, the router's 2m-10m grace periods. The suite keeps their proportions and shrinks them
all by `factor` (1/30 by default: 15m becomes 30s), so the order of events a real cluster shows
is the order the router sees. The router's own configuration is the shipped default (bundled
rule pack, default engine settings) with only its durations scaled; Alertmanager's is the
shipped receiver and routes (deploy/alertmanager/) with only the URL, the token file and the
group timings replaced.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from router.core.settings import EngineSettings
from tests.e2e.rules import parse_duration, scale_duration

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "rules" / "packs" / "kubernetes.yaml"
ALERTMANAGER_EXAMPLE = ROOT / "deploy" / "alertmanager" / "alertmanager.yaml"

DEFAULT_FACTOR = 1 / 30
# Rule-pack keys whose values are durations (a single one, or one per severity).
PACK_DURATION_KEYS = ("grace", "hold", "outlive_root")
# Alertmanager's route timings and their defaults (a route that omits one inherits it).
ALERTMANAGER_TIMINGS = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}


def time_factor() -> float:
    """The suite's factor: E2E_TIME_FACTOR (e.g. 0.05) or 1/30."""
    return float(os.environ.get("E2E_TIME_FACTOR", DEFAULT_FACTOR))


def scaled_seconds(real: str, factor: float) -> float:
    """A real-world duration (`15m`) in the stack's seconds."""
    return parse_duration(real) / 1000 * factor


# --------------------------------------------------------------------------- the router


def router_rule_pack(factor: float) -> str:
    """The bundled rule pack with every grace (`grace`), `hold` and `outlive_root` scaled."""
    pack = yaml.safe_load(PACK.read_text())

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key in PACK_DURATION_KEYS and isinstance(value, dict):
                    out[key] = {severity: scale_duration(v, factor) for severity, v in value.items()}
                elif key in PACK_DURATION_KEYS and value is not None:
                    out[key] = scale_duration(value, factor)
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    # Anchors (`x-entities`) were resolved by the load; dump without aliases stays valid.
    return yaml.safe_dump(walk(pack), sort_keys=False)


def _scaled_model(model: BaseModel, factor: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, timedelta):
            out[name] = value.total_seconds() * factor
        elif isinstance(value, BaseModel):
            out[name] = _scaled_model(value, factor)
    return out


def router_engine_settings(factor: float) -> dict[str, Any]:
    """The default engine settings' durations scaled (in seconds); other values stay default."""
    return _scaled_model(EngineSettings(), factor)


def router_config(
    *,
    port: int,
    data_dir: Path,
    rules_file: Path,
    token_file: Path,
    prometheus_url: str,
    alertmanager_urls: list[str],
    factor: float,
    slack: dict[str, Any] | None = None,
) -> str:
    config: dict[str, Any] = {
        "server": {"listen": f"127.0.0.1:{port}"},
        "auth": {"bearer_token_file": str(token_file)},
        "storage": {"data_dir": str(data_dir)},
        "rules": {"files": [str(rules_file)]},
        "engine": router_engine_settings(factor),
        "prometheus": {
            "url": prometheus_url,
            "refresh_interval": scale_duration("5m", factor),
            "retry_interval": "1s",
            "witness": True,
            "witness_timeout": "2s",
        },
        "alertmanager": {
            "urls": alertmanager_urls,
            "receiver": "alert-router",
            "min_uptime": scale_duration("10m", factor),
            "reconcile_interval": scale_duration("1m", factor),
            "timeout": "5s",
        },
        "notifiers": {
            "log": {"enabled": True, "path": str(data_dir / "notifications.jsonl")},
            "retry": {"initial": "200ms", "maximum": "2s"},
        },
        "runtime": {"tick_interval": "200ms", "drain_timeout": "5s"},
        "logging": {"level": "info", "format": "json"},
    }
    if slack:
        config["slack"] = slack
    return yaml.safe_dump(config, sort_keys=False)


# --------------------------------------------------------------------------- Alertmanager


def alertmanager_config(router_url: str, token_file: Path, factor: float) -> str:
    """The shipped Alertmanager example (deploy/alertmanager/) pointed at the router under test,
    its group timings scaled. Everything else (grouping, routes, send_resolved, max_alerts) is
    what a platform team would apply."""
    config = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text())

    def walk_route(route: dict[str, Any]) -> None:
        for key in ALERTMANAGER_TIMINGS:
            if key in route:
                route[key] = scale_duration(route[key], factor)
        for child in route.get("routes") or []:
            walk_route(child)

    walk_route(config["route"])
    for timing, default in ALERTMANAGER_TIMINGS.items():  # defaults the example relies on, scaled too
        config["route"].setdefault(timing, scale_duration(default, factor))
    if "global" in config and "resolve_timeout" in config["global"]:
        config["global"]["resolve_timeout"] = scale_duration(config["global"]["resolve_timeout"], factor)
    for receiver in config.get("receivers") or []:
        for webhook in receiver.get("webhook_configs") or []:
            webhook["url"] = f"{router_url}/api/v1/alertmanager"
            authorization = (webhook.get("http_config") or {}).get("authorization")
            if authorization is not None:
                authorization["credentials_file"] = str(token_file)
                authorization.pop("credentials", None)
    return yaml.safe_dump(config, sort_keys=False)


# --------------------------------------------------------------------------- Prometheus


def prometheus_alerting(alertmanager_ports: list[int]) -> dict[str, Any]:
    """Prometheus' `alerting` section: every Alertmanager replica gets every alert, as in an HA pair."""
    targets = [f"127.0.0.1:{port}" for port in alertmanager_ports]
    replicas = {"api_version": "v2", "timeout": "2s", "static_configs": [{"targets": targets}]}
    return {"alertmanagers": [replicas]}
