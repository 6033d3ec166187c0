"""Notifiers the outbox sends to: the log, and a generic outbound webhook with an HMAC signature.

Interface (shared with integrations.slack.notifier.SlackNotifier): `name`, `async send(notification, key)`
raising on failure, `async close()`. An exception whose `retryable` attribute is False means a
retry will not help (the outbox marks the notification failed instead of retrying it).

Webhook requests: `POST <url>` with the notification JSON of `docs/contracts.md` and
- `X-Alert-Router-Key`: the idempotency key (the same on every retry: receivers dedupe on it),
- `X-Alert-Router-Timestamp`: Unix seconds when this attempt was signed,
- `X-Alert-Router-Signature`: hex HMAC-SHA256 over `<timestamp>.<body>` with the
  shared secret (absent without a secret). Receivers should refuse timestamps older than a few
  minutes so that a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from ground.jsonio import canonical_json

log = logging.getLogger("alert_router.notify")

KEY_HEADER = "X-Alert-Router-Key"
TIMESTAMP_HEADER = "X-Alert-Router-Timestamp"
SIGNATURE_HEADER = "X-Alert-Router-Signature"
# Statuses a retry may cure; any other 4xx is the receiver refusing this request for good.
RETRYABLE_4XX = frozenset({408, 409, 425, 429})


class NotifierError(Exception):
    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256(secret, "<timestamp>.<body>")."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(
    secret: bytes, timestamp: str, body: bytes, signature: str, now: float, tolerance: float = 300
) -> bool:
    """What a receiver does (and the tests): constant-time check plus a freshness window."""
    try:
        fresh = abs(now - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


class LogNotifier:
    """One JSON log line per notification (and optionally the bare notification, one JSON line
    each, appended to a file: the same format as `alert-router replay --out`)."""

    name = "log"

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self._handle: TextIO | None = None

    async def send(self, notification: dict[str, Any], key: str) -> None:
        log.info(
            "%s %s: %s",
            notification.get("action"),
            notification.get("severity"),
            notification.get("reason"),
            extra={"incident": notification.get("incident"), "key": key, "notification": notification},
        )
        if self.path is not None:
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            self._handle.write(canonical_json(notification) + "\n")
            self._handle.flush()

    async def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class WebhookNotifier:
    """POSTs each notification as JSON; 2xx is success, 4xx (but 408/409/425/429) is final."""

    def __init__(
        self,
        name: str,
        url: str,
        secret: bytes | None = None,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._headers = dict(headers or {})
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    async def send(self, notification: dict[str, Any], key: str) -> None:
        body = canonical_json(notification).encode("utf-8")
        timestamp = str(int(self._clock()))
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "User-Agent": "alert-router",
            KEY_HEADER: key,
            TIMESTAMP_HEADER: timestamp,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self.url, data=body, headers=headers) as response:
                text = (await response.text(errors="replace"))[:200]
                if 200 <= response.status < 300:
                    return
                retryable = response.status >= 500 or response.status in RETRYABLE_4XX
                raise NotifierError(f"{self.name}: HTTP {response.status}: {text}", retryable=retryable)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NotifierError(f"{self.name}: {type(exc).__name__}: {exc}", retryable=True) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
