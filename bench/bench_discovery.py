"""Benchmark of topology discovery through a real Prometheus (issue 5's performance target).

A kube-state-metrics dump of `--nodes` nodes x `--pods-per-node` pods (bench/gen_cluster.py) is
served to Debian's Prometheus (tests/promharness.py), which scrapes it every `--scrape-interval`.
Then, each in a fresh child process so that its peak RSS is its own:

- `discover`: PrometheusDiscovery alone: wall time, peak RSS, and where the time goes:
  Prometheus evaluating the queries (request sent -> first byte), download + JSON decoding,
  declaring objects to the builder (ksm.collect), building the graph (edges, networkx);
- `service`: the real service (`alert-router serve`'s `run`, SQLite in a temporary directory)
  receiving webhook deliveries over loopback every `--period` ms, while a TopologyRefresher runs
  the same discovery in the same process: p50/p99/max response latency before and during the
  refresh (the service's target: p99 below 50 ms).

Runs start right after a scrape of the dump has finished so that Prometheus' ingestion (the dump
is ~400 MB; a scrape takes ~40 s of one core here) does not compete with the measurement; the
figures with a scrape running at the same time are the `--no-wait` variant.

    .venv/bin/python bench/bench_discovery.py                      # 5,000 nodes, 150,000 pods
    .venv/bin/python bench/bench_discovery.py --nodes 500 --runs 1 --scrape-interval 30s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _discover(url: str) -> dict[str, Any]:
    from integrations.prometheus.client import PrometheusClient
    from topology.discovery import PrometheusDiscovery

    client = PrometheusClient(url, timeout=300.0)
    started = time.perf_counter()
    result = PrometheusDiscovery(client).discover_sync()
    wall = time.perf_counter() - started
    stats = result.stats
    return {
        "wall_seconds": round(wall, 2),
        "peak_rss_mb": round(_peak_rss_mb()),
        "entities": len(result.topology),
        "edges": result.topology.graph.number_of_edges(),
        "pods": result.topology.summary().get("pod", 0),
        "nodes": result.topology.summary().get("node", 0),
        "json_mb": round(stats.bytes / 1e6, 1),
        "prometheus_eval_seconds": round(stats.wait_seconds, 2),
        "download_decode_seconds": round(stats.read_seconds, 2),
        "collect_seconds": round(stats.collect_seconds, 2),
        "build_seconds": round(stats.build_seconds, 2),
        "series": sum(stats.series.values()),
        # The families that cost most: [Prometheus evaluating, download + decoding] seconds.
        "slowest_families": dict(
            sorted(stats.to_dict()["family_seconds"].items(), key=lambda kv: -sum(kv[1]))[:5]
        ),
    }


async def _service_under_refresh(url: str, period: float) -> dict[str, Any]:
    """The real service on loopback, a delivery every `period` s, a refresh in the middle."""
    import aiohttp

    from ground.times import format_time
    from integrations.prometheus.client import PrometheusClient
    from router.cli.cmd_serve import run
    from router.service.config import load_settings
    from router.service.webhook import PATH
    from topology.discovery import PrometheusDiscovery
    from topology.refresh import TopologyRefresher

    workdir = Path(tempfile.mkdtemp(prefix="bench-discovery-"))
    settings = load_settings(
        None, {"server": {"listen": "127.0.0.1:0"}, "storage": {"data_dir": str(workdir / "data")}}
    )
    stop = asyncio.Event()
    bound: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(run(settings, stop=stop, on_listening=lambda h, p: bound.set_result((h, p))))
    host, port = await asyncio.wait_for(bound, 60)
    endpoint = f"http://{host}:{port}{PATH}"
    refresher = TopologyRefresher(PrometheusDiscovery(PrometheusClient(url, timeout=300.0)).discover)
    latencies: dict[str, list[float]] = {"before": [], "during": [], "after": []}
    phase = "before"

    def delivery(n: int) -> dict[str, Any]:
        now = format_time(datetime.now(UTC))
        alert = {
            "status": "firing",
            "labels": {"alertname": "BenchProbe", "severity": "info", "namespace": "bench", "n": str(n % 50)},
            "annotations": {"summary": "latency probe"},
            "startsAt": now,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph",
            "fingerprint": f"{n % 50:016x}",
        }
        return {
            "version": "4",
            "groupKey": '{}:{namespace="bench"}',
            "status": "firing",
            "receiver": "alert-router",
            "groupLabels": {"namespace": "bench"},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "truncatedAlerts": 0,
            "alerts": [alert],
        }

    errors = 0

    async def load(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        n = 0
        while True:
            body = json.dumps(delivery(n)).encode()
            started = time.perf_counter()
            async with session.post(endpoint, data=body, headers={"Content-Type": "application/json"}) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
            latencies[phase].append(time.perf_counter() - started)
            n += 1
            await asyncio.sleep(max(0.0, period - (time.perf_counter() - started)))

    async with aiohttp.ClientSession() as session:
        loader = asyncio.create_task(load(session))
        await asyncio.sleep(3)
        phase = "during"
        started = time.perf_counter()
        report = await refresher.refresh(reason="bench")
        refresh_seconds = time.perf_counter() - started
        phase = "after"
        await asyncio.sleep(2)
        loader.cancel()
    stop.set()
    await server

    def summary(values: list[float]) -> dict[str, float]:
        if not values:
            return {}
        ordered = sorted(values)
        return {
            "n": len(ordered),
            "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1),
        }

    return {
        "refresh": report.result,
        "refresh_seconds": round(refresh_seconds, 2),
        "pods": report.pods,
        "peak_rss_mb": round(_peak_rss_mb()),
        "errors": errors,
        **{phase: summary(values) for phase, values in latencies.items()},
    }


def _child(args: argparse.Namespace) -> int:
    import logging

    logging.disable(logging.WARNING)
    if args.child == "discover":
        out = _discover(args.url)
    else:
        out = asyncio.run(_service_under_refresh(args.url, args.period / 1000))
    print(json.dumps(out))
    return 0


def _run_child(mode: str, url: str, period: float) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode, "--url", url, "--period", str(period)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods-per-node", type=int, default=30)
    parser.add_argument("--zones", type=int, default=3)
    parser.add_argument("--runs", type=int, default=2, help="measurements of each kind")
    parser.add_argument("--scrape-interval", default="2m", help="Prometheus scrape interval of the dump")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for the end of a scrape")
    parser.add_argument("--period", type=float, default=20.0, help="ms between webhook deliveries")
    parser.add_argument("--workdir", help="keep the generated dump here (default: a temporary directory)")
    parser.add_argument("--child", choices=("discover", "service"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    from tests.promharness import Harness

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-discovery-"))
    workdir.mkdir(parents=True, exist_ok=True)
    dump = workdir / f"cluster-{args.nodes}x{args.pods_per_node}.prom"
    if not dump.exists():
        subprocess.run(
            [sys.executable, str(ROOT / "bench/gen_cluster.py"), "--nodes", str(args.nodes),
             "--pods-per-node", str(args.pods_per_node), "--zones", str(args.zones), "-o", str(dump)],
            check=True,
        )  # fmt: skip
    interval = _seconds(args.scrape_interval)
    with Harness() as harness:
        harness.ksm.file = dump
        prom = harness.prometheus(scrape_interval=args.scrape_interval)
        size = dump.stat().st_size / 1e6
        print(f"prometheus {prom.url} scraping {size:.0f} MB every {args.scrape_interval}", file=sys.stderr)
        harness.wait_until(prom, 'up{job="kube-state-metrics"} == 1', bool, timeout=3 * interval + 120)
        scrape = float(prom.query('scrape_duration_seconds{job="kube-state-metrics"}')[0]["value"][1])
        results: dict[str, Any] = {
            "nodes": args.nodes,
            "pods_per_node": args.pods_per_node,
            "scrape_seconds": scrape,
        }
        for mode in ("discover", "service"):
            for run in range(args.runs):
                if not args.no_wait:
                    _after_next_scrape(harness, prom, interval)
                out = _run_child(mode, prom.url, args.period)
                results.setdefault(mode, []).append(out)
                print(f"{mode} run {run + 1}: {json.dumps(out)}", file=sys.stderr)
        results["prometheus_peak_rss_mb"] = round(_vm_hwm_kb(prom.pid) / 1024)
    print(json.dumps(results, indent=2))
    return 0


def _after_next_scrape(harness: Any, prom: Any, interval: float) -> None:
    """Wait until a scrape of the dump has just finished (its `up` sample is new)."""
    query = 'timestamp(up{job="kube-state-metrics"})'
    last = float(prom.query(query)[0]["value"][1])
    # `up` is appended and committed with the scrape's samples: a new one means ingestion is done.
    harness.wait_until(prom, query, lambda rows: float(rows[0]["value"][1]) > last, timeout=interval + 120)


def _vm_hwm_kb(pid: int | None) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
