"""`alert-router send`: post the deliveries of a recorded stream to a running service's webhook,
in order, as Alertmanager would have: to see the router on a real storm, or to play a
production hour into a staging router.

    alert-router send STREAM --url URL [--token-file FILE | --token TOKEN]
                      [--speed X | --no-wait] [--max-wait DURATION] [--keep-times]

Every line is read and checked before anything is sent: a bad one is `FILE:LINE: problem`,
exit status 2, and nothing was sent.

Time. The service stamps each delivery with its own clock and refuses alert times far ahead of
it, so by default the recording is moved to now: the first delivery goes out at once, each next
one at its recorded distance from the previous one divided by `--speed` (and at most
`--max-wait`), and every `startsAt` and `endsAt` in the payloads moves with the deliveries
around it, so that an alert keeps its place in the story (firing 10 s before the first
delivery, resolved with the delivery that says so). `--keep-times` sends the times as recorded.

Answers. 2xx: sent. A 4xx is the service refusing that delivery for good (Alertmanager drops it
too): exit 2 with the line and the service's reason. A 5xx or no answer is retried a few times
with backoff, then exit 1.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from ground.errors import InputError
from ground.jsonio import loads
from ground.times import format_time, parse_time
from router.core.model import parse_delivery_line

WEBHOOK_PATH = "/api/v1/alertmanager"
ATTEMPTS = 5  # per delivery, on a 5xx or no answer; backoff 0.5 s, 1 s, 2 s, 4 s


class SendError(Exception):
    """The service could not be reached or kept failing: not the input's fault (exit 1)."""


@dataclass
class Delivery:
    line: int  # in the stream
    offset: float  # seconds after the first delivery is sent
    payload: dict[str, Any]  # the body to post (times moved unless --keep-times)

    @property
    def alerts(self) -> int:
        return len(self.payload.get("alerts") or [])


def webhook_url(url: str) -> str:
    """A base URL (`http://host:9095`) gets the webhook path; a full one is kept."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"--url: {url!r} is not an http(s) URL (e.g. http://127.0.0.1:9095)")
    return urlunsplit(parts._replace(path=parts.path if parts.path not in ("", "/") else WEBHOOK_PATH))


def plan(
    lines: Iterable[tuple[int, str]],
    source: str,
    *,
    now: datetime,
    speed: float | None = 1.0,
    max_wait: float | None = None,
    keep_times: bool = False,
) -> list[Delivery]:
    """The deliveries of a recorded stream with their send offsets and moved times. `speed`
    None: no waiting at all. InputError names the file and line of the first bad line."""
    recorded: list[tuple[int, datetime, dict[str, Any]]] = []
    latest: datetime | None = None
    for number, line in lines:
        if not line.strip():
            continue
        try:
            delivery = parse_delivery_line(line)
        except InputError as exc:
            raise InputError(f"{source}:{number}: {exc}") from None
        # A line recorded slightly out of order is sent in turn (as replay takes it).
        latest = delivery.received if latest is None or delivery.received > latest else latest
        recorded.append((number, latest, loads(line)["payload"]))
    if not recorded:
        raise InputError(f"{source}: no deliveries to send")
    offsets = [0.0]
    for (_, before, _), (_, after, _) in itertools.pairwise(recorded):
        gap = 0.0 if speed is None else (after - before).total_seconds() / speed
        offsets.append(offsets[-1] + (gap if max_wait is None else min(gap, max_wait)))
    moved = _TimeMap([at for _, at, _ in recorded], offsets, now)
    out = []
    for (number, _, payload), offset in zip(recorded, offsets, strict=True):
        if not keep_times:
            for alert in payload.get("alerts") or []:
                for key in ("startsAt", "endsAt"):
                    value = parse_time(alert.get(key) or "")  # None: the Go zero time, "not ended"
                    if value is not None:
                        alert[key] = format_time(moved(value))
        out.append(Delivery(number, offset, payload))
    return out


class _TimeMap:
    """Recorded time -> wall-clock time: piecewise linear through (each delivery's recorded
    time, now + its send offset); before the first and after the last, unscaled."""

    def __init__(self, recorded: Sequence[datetime], offsets: Sequence[float], now: datetime) -> None:
        self._recorded = list(recorded)
        self._offsets = list(offsets)
        self._now = now

    def __call__(self, moment: datetime) -> datetime:
        r, s = self._recorded, self._offsets
        if moment <= r[0]:
            offset = s[0] - (r[0] - moment).total_seconds()
        elif moment >= r[-1]:
            offset = s[-1] + (moment - r[-1]).total_seconds()
        else:
            i = bisect.bisect_right(r, moment) - 1
            span = (r[i + 1] - r[i]).total_seconds()
            share = (moment - r[i]).total_seconds() / span if span else 0.0
            offset = s[i] + share * (s[i + 1] - s[i])
        return self._now + timedelta(seconds=offset)


class Sender:
    """POSTs deliveries to one webhook URL with the service's credentials."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None = None) -> None:
        self.url = webhook_url(url)
        self._session = session
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    async def post(self, delivery: Delivery, source: str) -> None:
        body = json.dumps(delivery.payload)
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(0.5 * 2 ** (attempt - 1))
            try:
                async with self._session.post(self.url, data=body, headers=self._headers) as response:
                    text = await response.text()
                    if response.status < 300:
                        return
                    reason = _reason(text)
                    if response.status < 500:
                        raise InputError(
                            f"{source}:{delivery.line}: refused by {self.url}: {response.status} {reason}"
                        )
                    problem = f"{response.status} {reason}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = str(exc) or type(exc).__name__
        raise SendError(f"{source}:{delivery.line}: {self.url}: {problem} (after {ATTEMPTS} attempts)")


def _reason(text: str) -> str:
    try:
        return str(json.loads(text)["error"])
    except (ValueError, KeyError, TypeError):
        return text.strip()[:200]


async def send_all(
    deliveries: Sequence[Delivery],
    sender: Sender,
    source: str,
    before_wait: Callable[[float, Delivery], Awaitable[None]] | None = None,
) -> None:
    """Post each delivery at its offset from now. `before_wait(seconds, next)` is awaited
    before every wait of a second or more."""
    start = time.monotonic()
    for delivery in deliveries:
        wait = start + delivery.offset - time.monotonic()
        if wait >= 1 and before_wait is not None:
            await before_wait(wait, delivery)
            wait = start + delivery.offset - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        await sender.post(delivery, source)


def read_token(token: str | None, token_file: str | None) -> str | None:
    if token and token_file:
        raise InputError("--token and --token-file: give one")
    if token_file:
        try:
            text = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(f"--token-file: cannot read {token_file}: {exc.strerror or exc}") from None
        if not text:
            raise InputError(f"--token-file: {token_file} is empty")
        return text
    return token
