"""What an incident looks like from outside: its root alert, its symptoms, and the read views
the API, Slack and the exports show. Pure functions of an incident and the alerts it holds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ground.times import format_time
from router.core.alerts import AlertState
from router.core.events import SymptomRef
from router.core.lifecycle import Incident
from rules.schema import severity_rank


def primary_root_alert(incident: Incident, alerts: Mapping[str, AlertState]) -> AlertState | None:
    """The alert that names the root best: firing, most severe, first seen."""
    roots = [alerts[fp] for fp in incident.root_alerts]
    if not roots:
        return None
    roots.sort(key=lambda a: (not a.firing, -severity_rank(a.cls.severity), a.first_seen, a.fingerprint))
    return roots[0]


def symptoms(
    incident: Incident, alerts: Mapping[str, AlertState], only: Iterable[str] | None = None
) -> tuple[SymptomRef, ...]:
    """The attached alerts that are not on the root, each with the path that explains it."""
    chosen = incident.alerts if only is None else only
    out = []
    for fp in chosen:
        alert = alerts[fp]
        if alert.entity == incident.root or alert.incident != incident.id:
            continue
        out.append(SymptomRef(fp, alert.alertname, alert.entity, alert.path))
    return tuple(out)


def incident_view(incident: Incident, alerts: Mapping[str, AlertState]) -> dict[str, Any]:
    root_alert = primary_root_alert(incident, alerts)
    return {
        "id": incident.id,
        "state": incident.state.value,
        "severity": incident.top_severity,
        "urgency": incident.top_urgency,
        "root": {"entity": incident.root, "alert": root_alert.ref().to_dict() if root_alert else None},
        "inferred": incident.inferred,
        "opened_at": format_time(incident.opened_at),
        "grace_until": format_time(incident.grace_until),
        "paged_at": _fmt(incident.paged_at),
        "root_resolved_at": _fmt(incident.root_resolved_at),
        "closed_at": _fmt(incident.closed_at),
        "merged_into": incident.merged_into,
        "acknowledged_by": incident.acknowledged_by,
        "silenced_by": incident.silenced_by,
        "flapping": incident.flapping,
        "alerts": [alert_view(alerts[fp]) for fp in incident.alerts],
        "symptoms": [s.to_dict() for s in symptoms(incident, alerts)],
    }


def alert_view(alert: AlertState) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "alertname": alert.alertname,
        "entity": alert.entity,
        "severity": alert.cls.severity,
        "status": "firing" if alert.firing else "resolved",
        "starts_at": alert.starts_at,
        "first_seen": format_time(alert.first_seen),
        "resolved_at": _fmt(alert.resolved_at),
        "path": list(alert.path),
        "labels": alert.labels,
        "annotations": alert.annotations,
        "generator_url": alert.generator_url,
        "rule": alert.cls.rule,
    }


def _fmt(value: datetime | None) -> str | None:
    return format_time(value) if value else None
