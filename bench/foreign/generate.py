#!/usr/bin/env python3
"""Independent Kubernetes alert-storm generator for alert-router.

python bench/foreign/generate.py --count N --seed S --out DIR

Writes DIR/<id>/{cluster.prom, alerts.jsonl, truth.json}. Deterministic from the seed.
See README.md in this directory for what is modelled.
"""

import argparse
import json
from pathlib import Path
from typing import Any

from clock import iso
from ksm_dump import ksm_dump
from rule_evaluation import AlertInstance
from scenario import Recording, build_storm


def write_storm(out_dir: Path, storm_id: str, seed: str) -> dict[str, Any]:
    """Build one storm and write its KSM dump, its webhook stream and its truth; return the truth."""
    recording = build_storm(seed)
    storm_dir = out_dir / storm_id
    storm_dir.mkdir(parents=True, exist_ok=True)
    # the dump draws from the storm's generator too, after everything else
    (storm_dir / "cluster.prom").write_text(ksm_dump(recording.storm.world))
    delivered: set[str] = set()
    with (storm_dir / "alerts.jsonl").open("w") as stream:
        for received_at, payload in recording.deliveries:
            delivered.update(alert["fingerprint"] for alert in payload["alerts"])
            line = {"received_at": iso(received_at), "payload": payload}
            stream.write(json.dumps(line, separators=(",", ":")) + "\n")
    truth = _truth(storm_id, recording, delivered)
    with (storm_dir / "truth.json").open("w") as out:
        json.dump(truth, out, indent=1)
    return truth


def _truth_alert(alert: AlertInstance, delivered: set[str]) -> dict[str, Any]:
    """An alert as the scorer sees it: who owns it, in which role, and whether the webhook got it."""
    return {
        "fingerprint": alert.fingerprint,
        "alertname": alert.labels["alertname"],
        "role": alert.role,
        "entity": alert.entity,
        "starts_at": iso(alert.fires_at),
        "ends_at": iso(alert.resolves_at) if alert.resolves_at is not None else None,
        "delivered": alert.fingerprint in delivered,
        "labels": {name: value for name, value in alert.labels.items() if name != "prometheus"},
    }


def _truth(storm_id: str, recording: Recording, delivered: set[str]) -> dict[str, Any]:
    """What the scorer needs: the cluster's shape, the faults with their accepted roots and their alerts,
    and the noise."""
    storm, world = recording.storm, recording.storm.world
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for alert in recording.alerts:
        by_owner.setdefault(alert.owner, []).append(_truth_alert(alert, delivered))
    faults = [
        {
            "id": fault.id,
            "kind": fault.kind,
            "root": fault.root,
            "accept_roots": fault.accept_roots,
            "near_roots": fault.near_roots,
            "must_page": fault.must_page,
            "start": iso(fault.start),
            "heal": iso(fault.heal) if fault.heal else None,
            "detail": fault.detail,
            "alerts": by_owner.get(fault.id, []),
        }
        for fault in storm.faults
    ]
    return {
        "id": storm_id,
        "cluster": world.entity_cluster,
        "cluster_label": world.cluster,
        "flavour": world.flavour,
        "nodes": len(world.nodes),
        "zones": world.zones,
        "self_hosted_control_plane": world.self_hosted,
        "ksm_version": world.ksm_version,
        "topology_dump": world.dump,
        "endpoints": world.endpoints_mode,
        "endpointslice_service_labels": world.slice_labels,
        "recording": {
            "start": iso(recording.start),
            "end": iso(recording.end),
            "deliveries": len(recording.deliveries),
        },
        "alertmanager": recording.alertmanager.describe(),
        "traps": sorted(set(storm.traps)),
        "faults": faults,
        "noise": by_owner.get("noise", []),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = max(args.seed, 0)
    kinds: dict[str, int] = {}
    for i in range(args.count):
        truth = write_storm(out_dir, f"s{seed}-{i:04d}", f"foreign-storm:{seed}:{i}")
        for fault in truth["faults"]:
            kinds[fault["kind"]] = kinds.get(fault["kind"], 0) + 1
    print(f"wrote {args.count} storms to {args.out}; faults: {json.dumps(kinds, sort_keys=True)}")


if __name__ == "__main__":
    main()
