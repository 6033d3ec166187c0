"""Incidents and notifications in words, for a person at a terminal: `replay` on a TTY and
`alert-router demo`. Machines get JSON (the notification lines, the API); this is for reading."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from router.core.wording import count_kinds, describe

# Symptoms listed under an incident before "… and N more".
SHOWN_SYMPTOMS = 8


def incidents_text(views: Iterable[dict[str, Any]], links: str | None = None) -> list[str]:
    """One block per incident (incident views of the engine or the API): its state, root and
    root alert, then its symptoms, each with the path to the root. Incidents merged into
    another are counted, not shown: their alerts are in the one they joined. `links`: the
    service's base URL, to add where the incident and its timeline are."""
    lines: list[str] = []
    merged = 0
    for view in views:
        if view.get("merged_into"):
            merged += 1
            continue
        root = view["root"]
        alert = root.get("alert")
        cause = f"{alert['alertname']} on {describe(root['entity'])}" if alert else describe(root["entity"])
        how = "" if alert else " (inferred: it has no alert of its own)"
        state = view["state"]
        if view.get("paged_at"):
            state += f", paged {view['paged_at'][11:19]}"
        elif state == "open" and view.get("urgency") == "page" and view.get("grace_until"):
            state += f", pages at {view['grace_until'][11:19]} UTC if still firing"
        lines.append(f"{view['id']}  {state}  {view['severity']}: {cause}{how}")
        symptoms = view.get("symptoms") or []
        if symptoms:
            kinds = count_kinds(s["entity"] for s in symptoms)
            lines.append(f"  {len(symptoms)} symptom{'s' if len(symptoms) != 1 else ''} ({kinds}):")
            for symptom in symptoms[:SHOWN_SYMPTOMS]:
                path = symptom.get("path") or []
                via = [describe(p) for p in path[1:-1]]
                through = f" via {', '.join(via)}" if via else ""
                lines.append(f"    {symptom['alertname']} on {describe(symptom['entity'])}{through}")
            if len(symptoms) > SHOWN_SYMPTOMS:
                lines.append(f"    … and {len(symptoms) - SHOWN_SYMPTOMS} more")
        else:
            lines.append("  no symptoms: only the root alerted")
        if links:
            lines.append(f"  API:      {links}/api/v1/incidents/{view['id']}")
            lines.append(f"  timeline: {links}/api/v1/incidents/{view['id']}/timeline?format=html")
    if merged:
        lines.append(f"({merged} more incident{'s' if merged != 1 else ''} merged into those above)")
    return lines or ["no incidents"]


def notification_line(notification: dict[str, Any]) -> str:
    """`01:18:20  page     inc-dba60a  warning  <reason>`."""
    at = str(notification.get("at", ""))[11:19]
    return (
        f"{at}  {notification.get('action', ''):<8} {notification.get('incident', '')}  "
        f"{notification.get('severity', '')}  {notification.get('reason', '')}"
    )
