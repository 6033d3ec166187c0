"""What an incident looks like from outside: its root alert, its symptoms, and the read views
the API, Slack and the exports show. Pure functions of an incident and the alerts it holds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ground.times import format_time
from router.core.alerts import AlertState
from router.core.events import SymptomRef
from router.core.lifecycle import Incident
from router.core.wording import count_kinds, describe, span
from rules.schema import severity_rank
from topology import entities


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


def page_reason(
    incident: Incident, alerts: Mapping[str, AlertState], now: datetime, flap_window: timedelta
) -> str:
    """Why people are paged: the root, how long it has fired (or flapped), what it explains."""
    root_alert = primary_root_alert(incident, alerts)
    attached = symptoms(incident, alerts)
    if incident.inferred and root_alert is None:
        head = f"{describe(incident.root)} inferred as root cause: {incident.inferred_reason}"
    elif root_alert is not None and entities.kind_of(incident.root) == "alert":
        head = f"{root_alert.alertname} (no entity could be identified from its labels)"
    elif root_alert is not None:
        head = f"{root_alert.alertname} on {describe(incident.root)}"
    else:
        head = f"{describe(incident.root)} is failing"
    if incident.flapping:
        head += f"; flapping: fired {incident.flap_count} times " + (f"within {span(flap_window)}")
    else:
        head += f"; still firing after {span(now - incident.opened_at)}"
    if attached:
        kinds = count_kinds(s.entity for s in attached)
        head += f"; {len(attached)} alerts on what depends on it are its symptoms ({kinds})"
    return head


def recovery_reason(incident: Incident, alerts: Mapping[str, AlertState]) -> str:
    """Why a root that healed within its grace is only a notice."""
    root_alert = primary_root_alert(incident, alerts)
    what = root_alert.alertname if root_alert else "failure"
    resolved = incident.root_resolved_at or incident.opened_at
    lasted = span(resolved - incident.opened_at)
    if (
        root_alert is not None
        and root_alert.resolved_at is not None
        and root_alert.resolved_at <= incident.opened_at
    ):
        # Judged afresh after it had ended (the hypothesis that held it was withdrawn): its own span.
        lasted = span(root_alert.resolved_at - root_alert.first_seen)
    attached = symptoms(incident, alerts)
    text = f"{what} on {describe(incident.root)} recovered by itself after {lasted}, within its grace"
    if attached:
        text += f"; {len(attached)} symptoms went with it"
    return text


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
