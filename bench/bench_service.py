"""Load the service over loopback from a second process and report what it sustains.

    .venv/bin/python bench/bench_service.py [--seconds 15] [--concurrency 32] [--json OUT]
        [--store sqlite|postgres|both] [--replicas N] [--postgres-url URL]

Starts `alert-router serve` as a subprocess (fresh data directory, the small-cluster topology,
the bundled rule pack, notifications to the log), then for each scenario posts deliveries with
an aiohttp client at a fixed concurrency, bounded in count and in time:

- 1 alert per delivery, 100 alerts per delivery (alerts drawn from a pool, so that most are
  re-sends, as in a real storm, and some are new);

and prints deliveries/s, alerts/s, p50/p99/max latency of the 200s, the service's CPU (share of
one core) and peak RSS, and how long the engine took to catch up after the load. Every 200 is a
durable commit (the service answers only then); the bench checks that the event log holds
exactly as many deliveries as it got 200s for.

`--store both` (the default) runs every scenario on SQLite and on PostgreSQL (a throwaway
database on the server of `--postgres-url`, default that of the tests: scripts/postgres-up.sh),
side by side; `--replicas N` runs N replicas on the PostgreSQL log and spreads the load over them.
Each delivery's body is distinct (a `bench_seq` field), so that none is taken for a retry.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY = ROOT / "tests" / "fixtures" / "topology" / "small-cluster.prom"
TICKS = os.sysconf("SC_CLK_TCK")
NAMESPACES = ["shop", "batch", "web", "db", "pay", "kube-system", "monitoring"]


def start_service(
    data_dir: Path, log_path: Path, db_url: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ALERT_ROUTER_LOGGING__LEVEL": "info"}
    if db_url:
        env["ALERT_ROUTER_STORAGE__URL"] = db_url
    handle = open(log_path, "wb")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "router.cli.main",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(data_dir),
            "--topology",
            str(TOPOLOGY),
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=handle,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"serve exited: {log_path.read_text()[-2000:]}")
        for line in log_path.read_text().splitlines():
            if '"msg": "listening"' in line:
                return proc, "http://" + json.loads(line)["address"]
        time.sleep(0.05)
    proc.kill()
    sys.exit("serve did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bodies(per_delivery: int, count: int, pool: int, seed: int) -> list[bytes]:
    """Pre-serialised payloads: alerts from a pool of `pool` fingerprints (mostly re-sends)."""
    import random

    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(minutes=30)
    starts = start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    out = []
    for i in range(count):
        namespace = NAMESPACES[i % len(NAMESPACES)]
        alerts = []
        for _ in range(per_delivery):
            n = rng.randrange(pool)
            alerts.append(
                {
                    "status": "firing",
                    "labels": {
                        "alertname": "KubePodNotReady",
                        "namespace": namespace,
                        "pod": f"app-{n}",
                        "severity": "warning",
                        "job": "kube-state-metrics",
                    },
                    "annotations": {"summary": "Pod has been in a non-ready state for more than 15 minutes."},
                    "startsAt": starts,
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus-k8s-0:9090/graph?g0.expr=kube_pod_status_phase",
                    "fingerprint": f"{namespace}-{n:012x}",
                }
            )
        payload = {
            "receiver": "alert-router",
            "status": "firing",
            "alerts": alerts,
            "groupLabels": {"namespace": namespace},
            "commonLabels": {"namespace": namespace, "severity": "warning"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager-main-0:9093",
            "version": "4",
            "groupKey": f'{{}}:{{namespace="{namespace}"}}',
            "truncatedAlerts": 0,
            "bench_seq": i,
        }
        out.append(json.dumps(payload).encode())
    return out


async def load(urls: list[str], payloads: list[bytes], concurrency: int, seconds: float) -> dict[str, object]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    index = 0
    deadline = time.monotonic() + seconds
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal index
        while index < len(payloads) and time.monotonic() < deadline:
            body = payloads[index]
            url = urls[index % len(urls)]
            index += 1
            began = time.perf_counter()
            try:
                async with session.post(url + "/api/v1/alertmanager", data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            if status == 200:
                latencies.append(time.perf_counter() - began)
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.monotonic() - began
    latencies.sort()
    return {"ok": len(latencies), "elapsed": elapsed, "latencies": latencies, "errors": errors}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


async def caught_up(urls: list[str], timeout: float = 120) -> float:
    """Until every replica's engine has applied every recorded input."""
    began = time.monotonic()
    async with aiohttp.ClientSession() as session:
        for url in urls:
            while time.monotonic() - began < timeout:
                async with session.get(url + "/readyz") as response:
                    if (await response.json()).get("backlog") == 0:
                        break
                await asyncio.sleep(0.05)
    return time.monotonic() - began if time.monotonic() - began < timeout else float("inf")


def postgres_database(admin_url: str, name: str) -> str:
    """A new empty database on the server of `admin_url`; returns its URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = admin_url.rpartition("/")
    return f"{head}/{name}"


def stored_deliveries(data: Path, db_url: str | None) -> int:
    if db_url is None:
        conn = sqlite3.connect(data / "alert-router.sqlite")
        count = int(conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0])
        conn.close()
        return count
    import psycopg

    with psycopg.connect(db_url) as pg:
        row = pg.execute("SELECT COUNT(*) FROM deliveries").fetchone()
        return int(row[0]) if row else 0


def run_scenario(
    name: str, per: int, count: int, concurrency: int, args: argparse.Namespace, work: Path, store: str
) -> dict[str, object]:
    data = work / f"{name}-{store}"
    db_url = None
    replicas = 1
    if store == "postgres":
        db_url = postgres_database(args.postgres_url, f"alert_router_bench_{name.replace('-', '_')}")
        replicas = args.replicas
    started = [
        start_service(data / f"r{i}", work / f"{name}-{store}-r{i}.log", db_url) for i in range(replicas)
    ]
    procs = [proc for proc, _ in started]
    urls = [url for _, url in started]
    try:
        payloads = bodies(per, count, pool=args.pool, seed=per)
        # warm up (connections, code paths), not measured
        asyncio.run(load(urls, payloads[:200], concurrency, 10))
        cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        result = asyncio.run(load(urls, payloads[200:], concurrency, args.seconds))
        cpu1 = sum(cpu_seconds(p.pid) for p in procs)
        lag = asyncio.run(caught_up(urls))
        rss = max(peak_rss_mib(p.pid) for p in procs)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
    stored = stored_deliveries(data / "r0", db_url)
    ok = int(result["ok"])  # type: ignore[arg-type]
    warm = min(200, len(payloads))
    elapsed = float(result["elapsed"])  # type: ignore[arg-type]
    latencies = result["latencies"]  # type: ignore[assignment]
    return {
        "scenario": name,
        "store": store if replicas == 1 else f"{store} x{replicas}",
        "alerts_per_delivery": per,
        "concurrency": concurrency,
        "deliveries": ok,
        "seconds": round(elapsed, 2),
        "deliveries_per_s": round(ok / elapsed),
        "alerts_per_s": round(ok * per / elapsed),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),  # type: ignore[arg-type]
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),  # type: ignore[arg-type]
        "max_ms": round(max(latencies, default=0) * 1000, 1),  # type: ignore[arg-type]
        "service_cpu": round((cpu1 - cpu0) / elapsed, 2),
        "service_peak_rss_mib": round(rss),
        "engine_caught_up_s": round(lag, 2),
        "errors": result["errors"],
        "durable": stored == ok + warm,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="time limit per scenario")
    parser.add_argument(
        "--concurrency",
        type=int,
        help="requests in flight (default: 32 for 1-alert, 8 for 100-alert deliveries)",
    )
    parser.add_argument("--pool", type=int, default=300, help="distinct alerts per namespace to draw from")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--replicas", type=int, default=1, help="replicas on the PostgreSQL log")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "ALERT_ROUTER_TEST_POSTGRES", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
        ),
        help="a server where the bench may create and drop a database",
    )
    args = parser.parse_args()
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    # Alertmanager posts one flush per aggregation group at a time: a handful of large groups,
    # or many small ones, in flight together.
    scenarios = [("1-alert", 1, 60_000, 32), ("100-alerts", 100, 6_000, 8)]
    with tempfile.TemporaryDirectory(prefix="alert-router-bench-") as tmp:
        results = [
            run_scenario(name, per, count, args.concurrency or concurrency, args, Path(tmp), store)
            for name, per, count, concurrency in scenarios
            for store in stores
        ]
    columns = [
        ("scenario", "scenario"),
        ("store", "store"),
        ("in flight", "concurrency"),
        ("deliveries/s", "deliveries_per_s"),
        ("alerts/s", "alerts_per_s"),
        ("p50 ms", "p50_ms"),
        ("p99 ms", "p99_ms"),
        ("max ms", "max_ms"),
        ("CPU", "service_cpu"),  # all replicas together
        ("RSS MiB", "service_peak_rss_mib"),  # the largest replica
        ("catch-up s", "engine_caught_up_s"),
        ("durable", "durable"),
    ]
    print(
        f"machine: {os.cpu_count()} cores; each scenario <= {args.seconds}s of load, "
        f"{args.pool} alerts per namespace"
    )
    print(" | ".join(title for title, _ in columns))
    print(" | ".join("---" for _ in columns))
    for row in results:
        print(" | ".join(str(row[key]) for _, key in columns))
        if row["errors"]:
            print(f"  errors: {row['errors']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if all(r["durable"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
