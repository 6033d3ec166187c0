"""`alert-router send` (a recorded stream to a running service) and `alert-router demo` (the
service on the example cluster, sent the example storm: the first thing to run).

    alert-router send STREAM --url URL [--token-file FILE] [--speed X | --no-wait] [--max-wait D]
    alert-router demo [--listen HOST:PORT] [--data-dir DIR] [--speed X] [--max-wait D] [--exit]

The demo serves on http://127.0.0.1:9095, with examples/cluster.prom as its topology and an
event log in a temporary directory, and sends examples/node-down.jsonl (a node dying, the
alerts of everything on it, its recovery 25 minutes later) at the recorded pace, the long quiet
part shortened to `--max-wait` (3m): within half a minute the API shows one incident, the node,
with its symptoms attached; it pages when its grace is over (2m) and resolves when the
recording's recovery arrives. Bad input exits with status 2 naming the file and line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from ground.errors import InputError
from ground.times import parse_duration
from router.cli.cmd_replay import read_stream
from router.cli.cmd_send import Delivery, Sender, SendError, plan, read_token, send_all
from router.cli.summary import incidents_text
from router.core.wording import span

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOPOLOGY = EXAMPLES / "cluster.prom"
STORM = EXAMPLES / "node-down.jsonl"
# A wait this long in the recording is a quiet moment: the demo shows what the service holds.
QUIET = 20.0


def register(subparsers: Any) -> None:
    send = subparsers.add_parser("send", help="post a recorded stream's deliveries to a running service")
    send.add_argument(
        "stream", help="recorded stream (JSON Lines, the format of replay and log export); - for stdin"
    )
    send.add_argument(
        "--url", required=True, help="the service, e.g. http://127.0.0.1:9095 (or its webhook URL)"
    )
    send.add_argument("--token-file", help="file holding the bearer token (auth.bearer_token_file)")
    send.add_argument("--token", help="the bearer token itself (visible to other users: prefer --token-file)")
    _pacing(send, speed=1.0, max_wait=None)
    send.add_argument(
        "--no-wait", action="store_true", help="send every delivery at once, one after the other"
    )
    send.add_argument("--keep-times", action="store_true", help="send the alert times as recorded")
    send.set_defaults(func=_send)

    demo = subparsers.add_parser(
        "demo", help="run the service on the example cluster and send it a recorded node-down storm"
    )
    demo.add_argument("--listen", default="127.0.0.1:9095", help="HOST:PORT (default 127.0.0.1:9095)")
    demo.add_argument("--data-dir", help="event log directory (default: a temporary one, removed at the end)")
    _pacing(demo, speed=1.0, max_wait="3m")
    demo.add_argument("--exit", action="store_true", help="stop once the storm is sent (default: serve on)")
    demo.set_defaults(func=_demo)


def _pacing(parser: argparse.ArgumentParser, speed: float, max_wait: str | None) -> None:
    parser.add_argument(
        "--speed", type=float, default=speed, help=f"pace: recorded gaps divided by this (default {speed:g})"
    )
    parser.add_argument(
        "--max-wait",
        default=max_wait,
        help="longest wait between two deliveries, e.g. 30s, 3m"
        + (f" (default {max_wait})" if max_wait else ""),
    )


def _pace(args: argparse.Namespace) -> tuple[float | None, float | None]:
    if args.speed <= 0:
        raise InputError("--speed: must be above 0 (--no-wait sends without waiting)")
    try:
        max_wait = parse_duration(args.max_wait).total_seconds() if args.max_wait else None
    except ValueError as exc:
        raise InputError(f"--max-wait: {exc}") from None
    return (None if getattr(args, "no_wait", False) else args.speed), max_wait


# ------------------------------------------------------------------------------------- send


def _send(args: argparse.Namespace) -> int:
    token = read_token(args.token, args.token_file)
    speed, max_wait = _pace(args)
    deliveries = plan(
        read_stream(args.stream),
        args.stream,
        now=datetime.now(UTC),
        speed=speed,
        max_wait=max_wait,
        keep_times=args.keep_times,
    )
    try:
        return asyncio.run(_send_all(deliveries, args.url, token, args.stream))
    except SendError as exc:
        print(f"alert-router: {exc}", file=sys.stderr)
        return 1


async def _send_all(deliveries: list[Delivery], url: str, token: str | None, source: str) -> int:
    began = time.monotonic()

    async def tell(wait: float, following: Delivery) -> None:
        print(f"next delivery ({source}:{following.line}) in {span(wait)}", file=sys.stderr)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        sender = Sender(session, url, token)
        await send_all(deliveries, sender, source, tell)
    alerts = sum(d.alerts for d in deliveries)
    took = span(time.monotonic() - began)
    print(f"sent {len(deliveries)} deliveries ({alerts} alerts) to {sender.url} in {took}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------- demo


def _demo(args: argparse.Namespace) -> int:
    from router.cli.cmd_serve import _event_loop_runner
    from router.service import jsonlog
    from router.service.config import load_settings

    for path in (TOPOLOGY, STORM):
        if not path.is_file():
            raise InputError(f"{path}: missing (the demo runs from a checkout of the repository)")
    speed, max_wait = _pace(args)
    deliveries = plan(read_stream(STORM), str(STORM), now=datetime.now(UTC), speed=speed, max_wait=max_wait)
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="alert-router-demo-"))
    overrides = {
        "server": {"listen": args.listen},
        "storage": {"data_dir": str(data_dir)},
        "topology": {"files": [str(TOPOLOGY)]},
        "logging": {"format": "text"},
    }
    try:
        settings = load_settings(None, overrides)
        jsonlog.setup(settings.logging.level, settings.logging.format)
        return _event_loop_runner()(demo(settings, deliveries, exit_when_sent=args.exit))
    finally:
        jsonlog.flush()
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)


async def demo(
    settings: Any,
    deliveries: list[Delivery],
    *,
    exit_when_sent: bool = False,
    out: TextIO | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Serve, send the storm, say what to look at; serve on until SIGINT/SIGTERM or `stop` (or
    stop at once with `exit_when_sent`)."""
    from router.cli.cmd_serve import run

    out = out or sys.stdout
    stop = stop or asyncio.Event()
    bound: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(run(settings, stop=stop, on_listening=lambda h, p: bound.set_result((h, p))))
    waiting: list[asyncio.Future[Any]] = [server, bound]
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if server.done():
        return server.result()
    host, port = bound.result()
    url = f"http://{host}:{port}"
    sending = asyncio.create_task(_show(url, deliveries, out))
    await asyncio.wait({server, sending}, return_when=asyncio.FIRST_COMPLETED)
    if not sending.done():  # the service stopped (Ctrl-C) before the storm was sent
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        return await server
    try:
        sending.result()
    finally:
        if exit_when_sent or sending.exception() is not None:
            stop.set()
    return await server


async def _show(url: str, deliveries: list[Delivery], out: TextIO) -> None:
    def say(*lines: str) -> None:
        print("\n".join(lines), file=out, flush=True)

    say(
        "",
        f"alert-router demo on {url}, topology {TOPOLOGY.name} (6 nodes). Sending {STORM.name}: a node",
        f"dies, {len(deliveries)} deliveries from Alertmanager, its recovery at the end; at the recorded",
        "pace, the long quiet part shortened. The service's log follows. Ctrl-C stops.",
        "",
    )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def quiet(wait: float, following: Delivery) -> None:
            if wait >= QUIET:
                say(*await _incidents(session, url))
                say(
                    f"The recording goes quiet: its next delivery (line {following.line}) in {span(wait)}.",
                    "",
                )

        await send_all(deliveries, Sender(session, url), str(STORM), quiet)
        await asyncio.sleep(1)  # the engine decides on the last delivery
        say(*await _incidents(session, url))
        say(
            "The whole recording is sent: a page, if the node stayed down past its grace, and the resolve",
            "are in the log above. Each incident's timeline (the links) shows every decision and why.",
            "",
        )


async def _incidents(session: aiohttp.ClientSession, url: str) -> list[str]:
    async with session.get(f"{url}/api/v1/incidents") as response:
        views = (await response.json())["incidents"]
    return [f"Incidents now (GET {url}/api/v1/incidents):", *incidents_text(views, links=url), ""]
