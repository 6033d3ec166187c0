"""Score one storm: replay it through `alert-router replay` (a subprocess, the engine's only interface here)
and judge every page against the storm's truth."""

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

ROUTER = os.environ.get(
    "ALERT_ROUTER", str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "alert-router")
)
Result = dict[str, Any]


def timestamp(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with milliseconds."""
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def replay(storm_dir: Path) -> tuple[int, str, Path]:
    """Run the engine on the storm; keep its stderr beside the notifications it writes."""
    notifications = storm_dir / "notifications.jsonl"
    command = [
        ROUTER,
        "replay",
        "--topology",
        str(storm_dir / "cluster.prom"),
        "--alerts",
        str(storm_dir / "alerts.jsonl"),
        "--out",
        str(notifications),
    ]
    process = subprocess.run(command, capture_output=True, text=True)
    (storm_dir / "replay.stderr").write_text(process.stderr)
    return process.returncode, process.stderr, notifications


def _stderr_problems(stderr: str) -> list[str]:
    """Lines of stderr that are not JSON log records."""
    problems = []
    for line in stderr.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            json.loads(line)
        except ValueError:
            problems.append(line[:200])
    return problems


def _read_jsonl(path: Path) -> list[Any]:
    with path.open() as lines:
        return [json.loads(line) for line in lines if line.strip()]


class Judge:
    """The storm's truth, indexed to judge pages: which faults a root entity answers, who owns an alert."""

    def __init__(self, truth: dict[str, Any]) -> None:
        self.faults = truth["faults"]
        # fingerprint -> (fault, the fault's alert)
        self.owner = {
            alert["fingerprint"]: (fault, alert) for fault in self.faults for alert in fault["alerts"]
        }
        self.noise = {alert["fingerprint"]: alert for alert in truth["noise"]}
        self.accepting: dict[str, list[dict[str, Any]]] = {}  # root entity -> faults that accept it
        for fault in self.faults:
            for entity in fault["accept_roots"]:
                self.accepting.setdefault(entity, []).append(fault)

    def judge_page(self, page: dict[str, Any], entity: str | None, fingerprint: str | None) -> list[str]:
        """Set the page's verdict (correct, healed_or_noise or wrong), its fault and its failure class; return
        the must-page faults it pages correctly."""
        must_page = [fault for fault in self.accepting.get(entity or "", []) if fault["must_page"]]
        if must_page:
            page["verdict"] = "correct"
            page["fault"] = must_page[0]["id"]
            return [fault["id"] for fault in must_page]
        owned = self.owner.get(fingerprint or "")
        must_not_page = [fault for fault in self.accepting.get(entity or "", []) if not fault["must_page"]]
        if must_not_page or fingerprint in self.noise or (owned and not owned[0]["must_page"]):
            page["verdict"] = "healed_or_noise"
            if must_not_page:
                page["fault"] = must_not_page[0]["id"]
                page["class"] = f"pages on {must_not_page[0]['kind']}"
            elif owned:
                page["fault"] = owned[0]["id"]
                page["class"] = f"pages on {owned[0]['kind']}"
            else:
                page["fault"] = "noise"
                page["class"] = f"pages on noise {self.noise[fingerprint or '']['alertname']}"
            return []
        page["verdict"] = "wrong"
        near = [fault for fault in self.faults if entity in fault["near_roots"]]
        if near:
            page["class"] = f"near: {near[0]['kind']} names {(entity or '').split('/')[0]}"
            page["fault"] = near[0]["id"]
        elif owned:
            alertname = owned[1]["alertname"]
            is_app_alert = (owned[1].get("entity") or "").startswith("service/")
            if is_app_alert and not alertname.startswith(("Kube", "Target")):
                alertname = "app alert on service"
            page["class"] = f"symptom as root: {owned[0]['kind']} alert {alertname}"
            page["fault"] = owned[0]["id"]
        elif fingerprint is None:
            page["class"] = f"inferred root {(entity or '').split('/')[0]} with no fault"
        else:
            page["class"] = "unknown root alert"
        return []


def score_storm(storm_dir: Path) -> Result:
    """The storm's pages with their verdicts, its faults with recall, time to page and attached symptoms."""
    truth = json.loads((storm_dir / "truth.json").read_text())
    returncode, stderr, notifications_path = replay(storm_dir)
    with_label = "with" if truth.get("cluster_label") else "without"
    result: Result = {
        "id": truth["id"],
        "rc": returncode,
        "stderr_problems": _stderr_problems(stderr),
        "pages": [],
        "missed": [],
        "faults": [],
        "attach": [0, 0],  # attached symptoms, delivered symptoms of correctly paged faults
        "traps": truth["traps"],
        "topology": f"{truth.get('topology_dump', 'ksm')} dump, alerts {with_label} cluster label",
    }
    if returncode != 0 or not notifications_path.exists():
        result["error"] = f"exit {returncode}"
        return result
    notifications = _read_jsonl(notifications_path)
    delivered = {
        alert["fingerprint"]
        for line in _read_jsonl(storm_dir / "alerts.jsonl")
        for alert in line["payload"]["alerts"]
    }
    judge = Judge(truth)
    incident_root: dict[str, str | None] = {}
    paged_incidents = set()
    reattributed: dict[str, str] = {}  # fault id -> when a paged incident was updated to its root
    credited: dict[str, str] = {}  # fault id -> when it was first paged correctly
    attached: dict[str, set[str | None]] = {}  # symptom fingerprint -> roots of incidents that list it
    for note in notifications:
        root = note.get("root") or {}
        entity = root.get("entity")
        if note.get("incident"):
            incident_root[note["incident"]] = entity
        root_alert = root.get("alert") or {}
        if note["action"] in ("page", "update"):
            for symptom in note.get("symptoms") or []:
                root_entity = incident_root.get(note["incident"], entity)
                attached.setdefault(symptom.get("fingerprint"), set()).add(root_entity)
        if note["action"] == "update" and entity:
            for fault in judge.accepting.get(entity, []):
                if fault["must_page"] and note["incident"] in paged_incidents:
                    reattributed.setdefault(fault["id"], note["at"])
        if note["action"] != "page":
            continue
        paged_incidents.add(note["incident"])
        page = {
            "at": note["at"],
            "entity": entity,
            "alertname": root_alert.get("alertname"),
            "fingerprint": root_alert.get("fingerprint"),
            "reason": note.get("reason", ""),
            "symptoms": len(note.get("symptoms") or []),
        }
        for fault_id in judge.judge_page(page, entity, root_alert.get("fingerprint")):
            credited.setdefault(fault_id, note["at"])
        result["pages"].append(page)
    for fault in truth["faults"]:
        result["faults"].append(_fault_result(result, fault, delivered, credited, reattributed, attached))
    return result


def _fault_result(
    result: Result,
    fault: dict[str, Any],
    delivered: set[str],
    credited: dict[str, str],
    reattributed: dict[str, str],
    attached: dict[str, set[str | None]],
) -> dict[str, Any]:
    """The fault's row; counts its attached symptoms into the storm's, and lists it as missed if unpaged."""
    symptoms = [
        alert["fingerprint"]
        for alert in fault["alerts"]
        if alert["role"] == "symptom" and alert["fingerprint"] in delivered
    ]
    paged = fault["id"] in credited
    attached_ok = [fp for fp in symptoms if set(fault["accept_roots"]) & attached.get(fp, set())]
    delivered_alerts = sum(1 for alert in fault["alerts"] if alert["fingerprint"] in delivered)
    row = {
        "id": fault["id"],
        "kind": fault["kind"],
        "root": fault["root"],
        "must_page": fault["must_page"],
        "paged": paged,
        "delivered_alerts": delivered_alerts,
        "symptoms": len(symptoms),
        "attached": len(attached_ok) if paged else 0,
        "reattributed_later": (not paged) and fault["id"] in reattributed,
        "ttp_min": (timestamp(credited[fault["id"]]) - timestamp(fault["start"])) / 60 if paged else None,
    }
    if fault["must_page"] and paged:
        result["attach"][0] += len(attached_ok)
        result["attach"][1] += len(symptoms)
    if fault["must_page"] and not paged:
        first_alert = min(
            (alert["starts_at"] for alert in fault["alerts"] if alert["fingerprint"] in delivered),
            default=None,
        )
        result["missed"].append(
            {
                "id": fault["id"],
                "kind": fault["kind"],
                "root": fault["root"],
                "delivered_alerts": delivered_alerts,
                "first_alert": first_alert,
            }
        )
    return row
