"""`alert-router serve --prometheus URL` end to end: a real Prometheus scrapes a served
kube-state-metrics; the service discovers its graph, follows a change through
POST /api/v1/topology/refresh, and asks Prometheus before paging an inferred node (the answer is
recorded in the event log as an input, and pages minutes before the inference grace)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tests.promharness import TestCluster
from tests.service_harness import ManualClock, alert, payload, serving, settings_for, until
from tests.test_discovery import env  # noqa: F401 - the real Prometheus fixture, shared

T0 = datetime(2026, 10, 6, 2, 0, tzinfo=UTC)


async def test_serve_keeps_a_live_graph_and_asks_prometheus_before_paging(env, tmp_path):  # noqa: F811
    harness, prom = env
    cluster = TestCluster("live", nodes=6)
    harness.ksm.clusters["live"] = cluster
    await asyncio.to_thread(harness.wait_scraped, prom, cluster)
    settings = settings_for(tmp_path, prometheus={"url": prom.url, "refresh_interval": "1h"})
    async with serving(settings, clock=ManualClock(T0)) as svc:
        engine = svc.service.engine
        await until(lambda: "node/live/worker-3" in engine.topology, timeout=30)
        status, summary = await svc.get("/api/v1/topology")
        # 6 discovered nodes, merged with the 3 of the --topology file the harness configures.
        assert status == 200 and summary["kinds"]["node"] == 6 + 3
        assert all(f"node/live/worker-{i}" in engine.topology for i in range(6))
        assert "node/default/worker-1" in engine.topology

        # The cluster changes: a node is removed; a refresh on demand follows it.
        cluster.remove_node("worker-5")
        await asyncio.to_thread(harness.wait_scraped, prom, cluster)
        async with svc.session.post(f"{svc.url}/api/v1/topology/refresh") as response:
            report = await response.json()
            assert response.status == 200, report
        assert report["nodes_removed"] == 1
        assert "node/live/worker-5" not in engine.topology

        # Two workloads fail on worker-2, which is really NotReady: the node is inferred, the
        # witness confirms it at once, and the page does not wait for the 3m inference grace.
        cluster.set_ready("worker-2", False)
        await asyncio.to_thread(harness.wait_scraped, prom, cluster)
        victims = [p for p in cluster.pods_on("worker-2") if p.owner_kind == "ReplicaSet"][:2]
        assert len({p.owner_name for p in victims}) == 2
        for pod in victims:
            labels = {"alertname": "KubePodNotReady", "namespace": pod.namespace, "pod": pod.name,
                      "cluster": "live", "severity": "warning"}  # fmt: skip
            body = payload([alert(f"fp-{pod.name}", T0, labels)], pod.namespace)
            assert (await svc.post(body))[0] == 200

        def paged() -> bool:
            return any(
                i["state"] == "paged" and i["root"]["entity"] == "node/live/worker-2"
                for i in engine.incidents()
            )

        await until(paged, timeout=30)
        incident = next(i for i in engine.incidents() if i["root"]["entity"] == "node/live/worker-2")
        assert incident["paged_at"] == "2026-10-06T02:00:00.000Z"  # the clock never moved: no grace ran
        actions = await svc.service.readers.run(lambda reader: reader.events_of(incident["id"]))
        answered = [e for e in actions if e["kind"] == "witness_answered"]
        assert any(e["confirmed"] is True for e in answered)  # recorded in the event log
