"""`alert-router serve` (the service) and `alert-router log export` (its recorded stream).

    alert-router serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR]
                       [--topology FILE ...] [--rules FILE ...] [--alertmanager-url URL ...]
                       [--prometheus URL]
    alert-router log export [--config FILE] [--data-dir DIR] [-o FILE] [--since T] [--until T]

Configuration errors exit with status 2 and a message naming the key, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ground.errors import InputError
from ground.times import format_time, parse_time
from router.service import jsonlog, watchdog
from router.service.config import Settings, is_loopback, load_settings
from router.service.store import StorageUnavailable

log = logging.getLogger("alert_router.serve")


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run the service (Alertmanager webhook target)")
    serve.add_argument("--config", help="YAML configuration file (see docs/configuration.md)")
    serve.add_argument(
        "--listen",
        help="HOST:PORT to listen on (default 127.0.0.1:9095; 0.0.0.0:9095 when credentials are configured)",
    )
    serve.add_argument("--data-dir", help="directory of the event log (default ./data)")
    serve.add_argument(
        "--topology", action="append", help="topology file (KSM text, YAML or JSON); repeatable"
    )
    serve.add_argument("--rules", action="append", help="rule file; repeatable (default: the bundled pack)")
    serve.add_argument(
        "--alertmanager-url", action="append", help="Alertmanager base URL (one per replica); repeatable"
    )
    serve.add_argument(
        "--prometheus", help="Prometheus URL: live topology from kube-state-metrics and second witness"
    )
    serve.set_defaults(func=_serve)

    logs = subparsers.add_parser("log", help="the service's event log")
    sub = logs.add_subparsers(dest="log_command", required=True)
    export = sub.add_parser("export", help="write the recorded deliveries as a stream for `replay` (JSONL)")
    export.add_argument("--config", help="configuration file (for storage.data_dir)")
    export.add_argument("--data-dir", help="directory of the event log (default ./data)")
    export.add_argument("-o", "--out", help="output file (default: stdout)")
    export.add_argument("--since", help="only deliveries received at or after this RFC 3339 time")
    export.add_argument("--until", help="only deliveries received before this RFC 3339 time")
    export.set_defaults(func=_export)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if getattr(args, "listen", None):
        out.setdefault("server", {})["listen"] = args.listen
    if getattr(args, "data_dir", None):
        out.setdefault("storage", {})["data_dir"] = args.data_dir
    if getattr(args, "topology", None):
        out["topology"] = {"files": args.topology}
    if getattr(args, "rules", None):
        out["rules"] = {"files": args.rules}
    if getattr(args, "alertmanager_url", None):
        out.setdefault("alertmanager", {})["urls"] = args.alertmanager_url
    if getattr(args, "prometheus", None):
        out.setdefault("prometheus", {})["url"] = args.prometheus
    return out


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config, overrides(args))
    except InputError as exc:
        print(f"alert-router: {exc}", file=sys.stderr)
        return 2
    jsonlog.setup(settings.logging.level, settings.logging.format)
    # Armed when the shutdown begins and never cancelled: the interpreter's exit, which joins
    # the worker threads, is bounded too (a daemon timer ends with the process).
    bound = watchdog.Watchdog(settings.runtime.shutdown_timeout.total_seconds())
    try:
        return _event_loop_runner()(run(settings, on_stop=bound.arm))
    except InputError as exc:
        log.error("cannot start: %s", exc)
        jsonlog.flush()
        print(f"alert-router: {exc}", file=sys.stderr)
        return 2
    except StorageUnavailable as exc:  # the database server is away: a restart may find it
        log.error("cannot start: the event log is unavailable: %s", exc)
        jsonlog.flush()
        print(f"alert-router: the event log is unavailable: {exc}", file=sys.stderr)
        return 1
    finally:
        jsonlog.flush()


async def run(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    on_listening: Callable[[str, int], None] | None = None,
    on_stop: Callable[[], None] | None = None,
    service: Any = None,
) -> int:
    """Start, serve until SIGTERM/SIGINT (or `stop`), then shut down gracefully (`on_stop`
    first: the CLI arms its shutdown watchdog)."""
    from router.service.api import build_app
    from router.service.app import Service
    from router.service.httpserver import LimitedSite
    from router.service.webhook import LINGER, PATH

    problem = settings.exposure_problem()
    if problem is not None:
        raise InputError(problem)
    sys.setswitchinterval(0.001)
    service = service or Service(settings)
    log.info("starting", extra={"config": settings.redacted()})
    await service.start()
    if not settings.auth.configured:
        if is_loopback(settings.server.host):
            log.info("no credentials configured (auth:): the API is open to this machine only")
        else:
            log.warning("server.allow_anonymous and no credentials: the API is open to the network")
    app = build_app(service)
    runner = web.AppRunner(
        app,
        access_log=logging.getLogger("alert_router.access") if settings.server.access_log else None,
        handle_signals=False,
        shutdown_timeout=settings.storage.commit_timeout.total_seconds() + 5,
        lingering_time=LINGER,
        # Closes a connection still without a complete request this long after it opened or
        # after its last answer: half-sent headers no longer hold a connection for ever.
        keepalive_timeout=settings.server.read_timeout.total_seconds(),
    )
    await runner.setup()
    site = LimitedSite(
        runner,
        settings.server.host,
        settings.server.port,
        max_connections=settings.server.max_connections,
        metrics=service.metrics,
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await service.stop()
        raise InputError(
            f"server.listen: cannot listen on {settings.server.listen}: {exc.strerror or exc}"
        ) from None
    host, port = _bound(site, settings)
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    log.info(
        "listening",
        extra={
            "address": f"{host}:{port}",
            "url": url,
            "webhook": PATH,
            "notifiers": list(service.dispatcher.notifiers),
        },
    )
    # For the person who just started it: where it is and what to do next.
    log.info(
        "ready on %s: Alertmanager's webhook POST %s%s, incidents GET %s/api/v1/incidents",
        url,
        url,
        PATH,
        url,
    )
    if not settings.topology.files and not settings.prometheus.url:
        log.info(
            "no topology (--topology, topology.files, prometheus.url): every alert stands on its own; "
            "`alert-router demo` (or `bash scripts/run.sh --demo`) shows the router on an example cluster"
        )
    if on_listening is not None:
        on_listening(host, port)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests)
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if on_stop is not None:
        on_stop()
    log.info("shutting down: no new requests; draining")
    await runner.cleanup()  # stops listening, lets requests in flight finish
    await service.stop()
    return 0


def _event_loop_runner() -> Callable[[Any], int]:
    """uvloop when installed (about a sixth less CPU per webhook request), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def _bound(site: web.BaseSite, settings: Settings) -> tuple[str, int]:
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    if sockets:
        address = sockets[0].getsockname()
        return str(address[0]), int(address[1])
    return settings.server.host, settings.server.port


def _export(args: argparse.Namespace) -> int:
    from router.service.store import Connection, Reader, SQLiteBackend

    settings = load_settings(args.config, overrides(args))
    since = _time_arg(args.since, "--since")
    until = _time_arg(args.until, "--until")
    conn: Connection
    if settings.storage.replicated:  # the replicas' shared PostgreSQL log
        from router.service import pgstore

        backend = pgstore.backend_for(settings.storage.resolved_url(), settings.storage.busy_timeout)
        where = backend.describe()
        try:
            conn = backend.connect()
        except StorageUnavailable as exc:
            raise InputError(f"cannot read the event log {where}: {exc}") from None
    else:
        path = settings.storage.path
        if not path.is_file():
            raise InputError(f"no event log at {path} (use --data-dir)")
        where = str(path)
        conn = SQLiteBackend(path).connect()
    count = 0
    try:
        reader = Reader(conn)
        handle = open(args.out, "w", encoding="utf-8") if args.out and args.out != "-" else sys.stdout  # noqa: SIM115
        try:
            for line in reader.delivery_lines(since, until):
                handle.write(line + "\n")
                count += 1
        finally:
            if handle is not sys.stdout:
                handle.close()
            else:
                handle.flush()
    except OSError as exc:
        raise InputError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    finally:
        conn.close()
    print(json.dumps({"deliveries": count, "event_log": where}), file=sys.stderr)
    return 0


def _time_arg(value: str | None, flag: str) -> str | None:
    if value is None:
        return None
    try:
        parsed = parse_time(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise InputError(f"{flag}: {value!r} is not an RFC 3339 time (e.g. 2026-10-06T02:00:00Z)")
    return format_time(parsed)
