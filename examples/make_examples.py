"""Regenerate the bundled demo: a 12-node cluster and a node-down storm on it.

.venv/bin/python examples/make_examples.py
"""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from router.sim import scenarios  # noqa: E402
from router.sim.gencluster import generate  # noqa: E402
from router.sim.storm import AlertmanagerConfig, simulate, write_jsonl  # noqa: E402


def main() -> None:
    buffer = io.StringIO()
    info = generate(12, 6, 3, out=buffer)
    (HERE / "cluster.prom").write_text(buffer.getvalue())
    node = info.zones[next(iter(info.zones))][2]
    t0 = datetime(2026, 10, 6, 1, 0, tzinfo=UTC)
    alerts = scenarios.node_down(
        node,
        info.pods_by_node[node],
        info.daemonsets,
        t0,
        recover_at=t0 + timedelta(minutes=40),
        node_ip=info.node_ips[node],
        cluster_nodes=len(info.node_ips),
        ksm_instance=info.ksm_instance,
    )
    lines = simulate(alerts, AlertmanagerConfig(replicas=2))
    write_jsonl(lines, HERE / "node-down.jsonl")
    print(f"{node}: {len(alerts)} alerts, {len(lines)} deliveries")


if __name__ == "__main__":
    main()
