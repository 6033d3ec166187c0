"""Entities, durations and counts in words: shared by the engine's reasons, Slack and exports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from topology import entities


def describe(entity: str) -> str:
    """An entity in words: `node worker-1`, `pod shop/checkout-x`, `kubelet on node w1`."""
    kind = entities.kind_of(entity)
    parts = entity.split("/")
    if len(parts) < 3:
        return entity
    cluster = parts[1]
    where = "" if cluster == entities.DEFAULT_CLUSTER else f" ({cluster})"
    if kind == "dns":
        return "cluster DNS" + where
    if kind == "pipeline":
        return "the alerting pipeline" + where
    if kind == "node-component":
        return f"{parts[3]} on node {parts[2]}" + where
    if kind in ("apiserver", "etcd", "scheduler", "controller-manager"):
        return parts[-1] + where
    if kind == "alert":
        return "an alert with no known entity"
    return f"{kind} {'/'.join(parts[2:])}" + where


def span(delta: timedelta | float) -> str:
    """`45s`, `7m30s`, `2h05m`, `3d4h`: precise for short spans, coarse for long ones."""
    seconds = max(0, int(delta.total_seconds() if isinstance(delta, timedelta) else delta))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s" if seconds else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


def count_kinds(names: Iterable[str]) -> str:
    """`4 pod, 2 daemonset`: most frequent kind first."""
    counts: dict[str, int] = {}
    for name in names:
        kind = entities.kind_of(name)
        counts[kind] = counts.get(kind, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{n} {kind}" for kind, n in ordered)


def cause_phrase(kind: str, entity: str, what: str, when: str) -> str:
    """A likely cause as a page's reason ends: `likely cause: <this>` (router/core/causes.py)."""
    if kind == "change":
        return f"{what} on {entity} at {when}"
    if kind == "unreachable":
        return f"{entity} is unreachable ({what} since {when})"
    return f"{entity}, {what} (since {when})"


_CAUSE_REASONS = {
    "change": "{entity} changed shortly before {root} failed",
    "unreachable": "{entity} receives no requests while {root} failed",
    "resident": "{entity} was in trouble on {root} while its residents saturated it",
    "callee": "{entity} is the only service {root} calls, and no change of {root}'s own is known",
}


def cause_reason(kind: str, entity: str, root: str) -> str:
    """Why a likely cause was named, for the timeline's `likely_cause` event."""
    return _CAUSE_REASONS[kind].format(entity=entity, root=root)
