"""The timeline as JSON for other tools (schema: docs/timeline-schema.json).

Stable: keys are always present (null when unknown), in a fixed order, times are RFC 3339 UTC
with milliseconds, durations are seconds. New optional keys may be added; none is removed or
renamed without raising `schema_version`.
"""

from __future__ import annotations

import json
from typing import Any

from router.core.wording import describe
from router.export.model import Alert, Entry, Message, Timeline, iso
from router.export.report import lead

SCHEMA = "alert-router/timeline"  # documented in docs/timeline-schema.json
SCHEMA_VERSION = 1


def alert_dict(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "alertname": alert.alertname,
        "entity": alert.entity,
        "severity": alert.severity,
        "rule": alert.rule,
        "role": alert.role,
        "incident": alert.incident,
        "path": list(alert.path),
        "starts_at": iso(alert.starts_at),
        "received_at": iso(alert.fired_at),
        "attached_at": iso(alert.attached_at),
        "resolved_at": iso(alert.resolved_at),
        "ends_at": iso(alert.ends_at),
        "detached_at": iso(alert.detached_at),
    }


def message_dict(message: Message) -> dict[str, Any]:
    return {
        "at": iso(message.at),
        "incident": message.incident,
        "action": message.action,
        "key": message.key,
        "severity": message.severity,
        "symptoms": message.symptoms,
        "reason": message.reason,
        "status": message.status,
        "result": message.result,
        "deliveries": [
            {
                "notifier": d.notifier,
                "state": d.state,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "sent_at": d.sent_at,
            }
            for d in message.deliveries
        ],
    }


def entry_dict(entry: Entry) -> dict[str, Any]:
    return {
        "at": iso(entry.at),
        "incident": entry.incident,
        "category": entry.category,
        "kind": entry.kind,
        "entity": entry.entity,
        "alertname": entry.alertname,
        "fingerprint": entry.fingerprint,
        "actor": entry.actor,
        "path": entry.path,
        "reason": entry.reason,
        "text": entry.text,
        "message": message_dict(entry.message) if entry.message else None,
    }


def timeline_dict(t: Timeline) -> dict[str, Any]:
    f = t.figures
    nodes, edges = t.graph()
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "incident": {
            "id": t.id,
            "state": t.state,
            "open": t.open,
            "title": t.title,
            "summary": lead(t),
            "severity": t.severity,
            "root": {
                "entity": t.root,
                "description": describe(t.root),
                "inferred": t.inferred,
                "alert": (
                    {"fingerprint": t.root_alert.fingerprint, "alertname": t.root_alert.alertname}
                    if t.root_alert
                    else None
                ),
            },
            "opened_at": iso(t.opened_at),
            "closed_at": iso(t.closed_at),
            "merged_into": t.merged_into,
            "merged_in": list(t.merged_in),
            "acknowledged_by": list(t.acknowledged_by),
            "silenced_by": list(t.silenced_by),
        },
        "figures": {
            "impact_start": iso(f.impact_start),
            "impact_end": iso(f.impact_end),
            "detected_at": iso(f.detected_at),
            "paged_at": iso(f.paged_at),
            "acknowledged_at": iso(f.acknowledged_at),
            "acknowledged_by": f.acknowledged_by,
            "resolved_at": iso(f.resolved_at),
            "time_to_detect_s": f.time_to_detect,
            "time_to_page_s": f.time_to_page,
            "time_to_acknowledge_s": f.time_to_acknowledge,
            "time_to_resolve_s": f.time_to_resolve,
            "impact_duration_s": f.impact_duration,
            "alerts_received": f.alerts_received,
            "pages_sent": f.pages_sent,
            "messages_sent": dict(sorted(f.messages_sent.items())),
        },
        "evidence": [e.text for e in t.evidence],
        "lanes": t.entities(),
        "alerts": [alert_dict(a) for a in t.alerts],
        "graph": {"nodes": nodes, "edges": [{"from": a, "to": b} for a, b in edges]},
        "entries": [entry_dict(e) for e in t.entries],
        "messages": [message_dict(m) for m in t.messages],
    }


def render_json(t: Timeline) -> str:
    return json.dumps(timeline_dict(t), indent=2, ensure_ascii=False) + "\n"
