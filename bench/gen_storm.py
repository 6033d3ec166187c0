"""A zone-outage alert storm for a cluster made by gen_cluster.py, as Alertmanager would deliver it.

    python bench/gen_cluster.py --nodes 5000 --zones 3 -o cluster.prom --info-out cluster-info.json
    python bench/gen_storm.py --cluster-info cluster-info.json --zone 0 -o storm.jsonl
    python bench/gen_storm.py --nodes 5000 --zones 3 --zone 0 -o storm.jsonl   # same cluster, rebuilt

Every node of one zone dies at `--t0`: per node the alerts of the node-death ordering
(router/sim/scenarios.py zone_outage: TargetDown per scrape job, KubeletInstanceUnreachable,
KubeNodeNotReady, KubeNodeUnreachable, KubePodNotReady for its pods, KubeDaemonSetRolloutStuck,
KubeStatefulSetReplicasMismatch), plus TargetDown for the pod-backed scrape jobs (CoreDNS,
Prometheus, kube-state-metrics) that lose more than 10% of their targets. The timeline goes
through router/sim/storm.py simulate() with an HA pair (both replicas deliver) and the
kube-prometheus routing (group_by namespace, 30s / 5m / 12h), and is written as a recorded
stream (JSON Lines). Counts go to stderr as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from ground.times import parse_duration, parse_time  # noqa: E402
from router.sim.gencluster import ClusterInfo, add_cluster_arguments, generate_many  # noqa: E402
from router.sim.scenarios import (  # noqa: E402
    EXTERNAL_LABELS,
    NODE_NOT_READY_AT,
    RECOVERY_SCRAPE,
    TARGET_DOWN_AT,
    combine,
    make_alert,
    watchdog,
    zone_outage,
)
from router.sim.storm import AlertmanagerConfig, AlertSpec, heartbeat_route, simulate, write_jsonl  # noqa: E402

DEFAULT_T0 = "2026-10-06T01:00:00Z"
APP_ALERT_AT = timedelta(minutes=3)  # a request error-rate alert with `for: 2m`, a minute after
# Pod-backed scrape jobs of kube-prometheus: (namespace, workload) -> (job, service).
POD_SCRAPE_JOBS = {
    ("kube-system", "coredns"): ("kube-dns", "kube-dns"),
    ("monitoring", "prometheus-k8s"): ("prometheus-k8s", "prometheus-k8s"),
    ("monitoring", "kube-state-metrics"): ("kube-state-metrics", "kube-state-metrics"),
}


def zone_storm(
    info: ClusterInfo,
    zone: str,
    t0: datetime,
    recover_at: datetime | None = None,
    stagger: timedelta = timedelta(0),
    workloads: bool = False,
) -> list[AlertSpec]:
    """The alert timeline of `zone` going dark at t0 (node k at t0 + k * stagger), back at recover_at.

    With `workloads`, also what a cluster whose Deployments spread their replicas over the zones
    shows: every Deployment with a replica in the zone alerts KubeDeploymentReplicasMismatch
    with the nodes, and its Service's request error rate fires within minutes."""
    nodes = info.zones[zone]
    specs = zone_outage(
        nodes,
        info.pods_by_node,
        info.daemonsets,
        t0,
        recover_at,
        info.cluster,
        node_ips=info.node_ips,
        cluster_nodes=len(info.node_ips),
        ksm_instance=info.ksm_instance,
        stagger=stagger,
    )
    total: Counter[tuple[str, str]] = Counter()
    down: Counter[tuple[str, str]] = Counter()
    dead = set(nodes)
    for node, pods in info.pods_by_node.items():
        for namespace, _, _, workload in pods:
            if (namespace, workload) in POD_SCRAPE_JOBS:
                total[(namespace, workload)] += 1
                down[(namespace, workload)] += node in dead
    extra = []
    for key, count in sorted(down.items()):
        if count and 100 * count / total[key] > 10:
            job, service = POD_SCRAPE_JOBS[key]
            labels = {**EXTERNAL_LABELS, "job": job, "namespace": key[0], "service": service}
            if info.cluster:
                labels["cluster"] = info.cluster
            clears = recover_at + RECOVERY_SCRAPE if recover_at else None
            value = f"{100 * count / total[key]:.4g}"
            spec = make_alert("TargetDown", labels, t0 + TARGET_DOWN_AT, clears, value=value)
            if spec:
                extra.append(spec)
    if workloads:
        extra += _workload_alerts(info, dead, t0, recover_at)
    return combine(specs, extra)


def _workload_alerts(
    info: ClusterInfo, dead: set[str], t0: datetime, recover_at: datetime | None
) -> list[AlertSpec]:
    """Replica mismatches of the Deployments that lost replicas, and their Services' error rates."""
    base = {**EXTERNAL_LABELS, **({"cluster": info.cluster} if info.cluster else {})}
    ksm = {"job": "kube-state-metrics", "instance": info.ksm_instance, "container": "kube-rbac-proxy-main"}
    hit = sorted(
        {
            (ns, name)
            for node in dead
            for ns, _, kind, name in info.pods_by_node.get(node, ())
            if kind == "Deployment"
        }
    )
    clears = recover_at + RECOVERY_SCRAPE if recover_at else None
    out: list[AlertSpec] = []
    for namespace, name in hit:
        labels = {**base, **ksm, "namespace": namespace, "deployment": name}
        spec = make_alert("KubeDeploymentReplicasMismatch", labels, t0 + NODE_NOT_READY_AT, clears)
        if spec:
            out.append(spec)
        if namespace == "kube-system" or namespace == "monitoring":
            continue
        app = {
            **base,
            "namespace": namespace,
            "service": name,
            "job": f"{namespace}/{name}",
            "severity": "warning",
        }
        spec = make_alert("HighErrorRate", app, t0 + APP_ALERT_AT, clears)
        if spec:
            out.append(spec)
    return out


def summarize(lines: list[dict]) -> dict[str, object]:
    instances = set()
    fingerprints = set()
    alerts_sent = 0
    by_status: Counter[str] = Counter()
    names: Counter[str] = Counter()
    groups = set()
    for line in lines:
        payload = line["payload"]
        groups.add(payload["groupKey"])
        alerts_sent += len(payload["alerts"])
        for alert in payload["alerts"]:
            by_status[alert["status"]] += 1
            key = (alert["fingerprint"], alert["startsAt"])
            if key not in instances:
                instances.add(key)
                names[alert["labels"]["alertname"]] += 1
            fingerprints.add(alert["fingerprint"])
    return {
        "deliveries": len(lines),
        "alerts_in_deliveries": alerts_sent,
        "firing_in_deliveries": by_status["firing"],
        "resolved_in_deliveries": by_status["resolved"],
        "distinct_alerts": len(instances),
        "distinct_fingerprints": len(fingerprints),
        "groups": len(groups),
        "alerts_by_name": dict(sorted(names.items())),
    }


def load_info(args: argparse.Namespace) -> ClusterInfo:
    if args.cluster_info:
        with open(args.cluster_info, encoding="utf-8") as handle:
            raw = json.load(handle)
        infos = [ClusterInfo.from_json(item) for item in (raw if isinstance(raw, list) else [raw])]
    else:
        with open(os.devnull, "w", encoding="utf-8") as sink:  # the model is all we need
            infos = generate_many(
                args.nodes,
                args.pods_per_node,
                args.zones,
                out=sink,
                clusters=args.clusters,
                seed=args.seed,
                node_labels=not args.no_node_labels,
                ksm_version=args.ksm_version,
                spread_zones=args.spread_zones,
            )
    if not 0 <= args.cluster_index < len(infos):
        raise ValueError(f"--cluster-index must be below {len(infos)}")
    return infos[args.cluster_index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster-info", help="ClusterInfo JSON from gen_cluster.py --info-out")
    add_cluster_arguments(parser)
    parser.add_argument("--cluster-index", type=int, default=0, help="which cluster of a multi-cluster file")
    parser.add_argument("--zone", default="0", help="zone index or name")
    parser.add_argument("--t0", default=DEFAULT_T0, help="when the zone goes dark (RFC 3339)")
    parser.add_argument("--recover-after", help="the zone comes back after this long (e.g. 40m)")
    parser.add_argument(
        "--stagger", default="0s", help="node k of the zone dies at t0 + k * this (e.g. 100ms)"
    )
    parser.add_argument("--duration", default="40m", help="simulate this long after t0")
    parser.add_argument(
        "--workloads",
        action="store_true",
        help="also Deployment replica mismatches and their Services' error rates (use with --spread-zones)",
    )
    parser.add_argument("--replicas", type=int, default=2, help="Alertmanager replicas")
    parser.add_argument("--watchdog", help="add a Watchdog on a heartbeat route with this interval (e.g. 1m)")
    parser.add_argument("-o", "--out", required=True, help="recorded stream to write (JSON Lines)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        info = load_info(args)
        zones = list(info.zones)
        zone = zones[int(args.zone)] if args.zone.isdigit() else args.zone
        if zone not in info.zones:
            raise ValueError(f"--zone: no zone {args.zone!r} (zones: {', '.join(zones)})")
        t0 = parse_time(args.t0)
        if t0 is None:
            raise ValueError("--t0: not a time")
        recover_at = t0 + parse_duration(args.recover_after) if args.recover_after else None
        until = t0 + parse_duration(args.duration)
        specs = zone_storm(info, zone, t0, recover_at, parse_duration(args.stagger), args.workloads)
        routes = ()
        if args.watchdog:
            specs += watchdog(t0 - timedelta(minutes=5), cluster=info.cluster)
            routes = (heartbeat_route(parse_duration(args.watchdog)),)
        built = time.perf_counter()
        lines = simulate(specs, AlertmanagerConfig(replicas=args.replicas, routes=routes), until=until)
        simulated = time.perf_counter()
        size = write_jsonl(lines, args.out)
    except (ValueError, OSError) as exc:
        print(f"gen_storm: {exc}", file=sys.stderr)
        return 2
    summary = {
        "zone": zone,
        "nodes_down": len(info.zones[zone]),
        "alert_specs": len(specs),
        **summarize(lines),
        "bytes": size,
        "seconds": {
            "cluster_and_timeline": round(built - started, 2),
            "simulate": round(simulated - built, 2),
            "write": round(time.perf_counter() - simulated, 2),
        },
    }
    print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
