"""The listening socket of `serve`: aiohttp's server behind a cap on open connections.

aiohttp has no such cap, and each connection holds a file descriptor and a little memory, so a
client opening thousands of them (or sending half a request on each) could exhaust the process.
`LimitedSite` counts the connections it hands to aiohttp; one more than `max_connections` gets a
short 503 (Alertmanager retries a 5xx) and is closed before aiohttp sees it.

The other half of the defence is the runner's `keepalive_timeout` (see cli_serve.run): aiohttp
closes a connection still waiting for a complete request when that timer runs out, which it
arms when the connection opens and after each answer. Set to `server.read_timeout`, a connection
that sends half its headers is closed after it instead of being held for ever.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("alert_router.serve")

_BODY = json.dumps({"error": "too many connections (server.max_connections), retry"}).encode()
FULL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
)
# A refused connection is logged at most this often (a flood must not flood the log too).
LOG_EVERY = 10.0


class LimitedSite(web.BaseSite):
    """A TCP site that admits at most `max_connections` connections at once."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        max_connections: int,
        backlog: int = 1024,
        metrics: Any = None,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0
        self._metrics = metrics
        self._logged_at = 0.0
        self._refused_logged = 0

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Gate(server, self), self._host, self._port, backlog=self._backlog, reuse_address=True
        )

    def _admit(self) -> bool:
        if self.open >= self.max_connections:
            self.refused += 1
            if self._metrics is not None:
                self._metrics.connections_refused.inc()
            now = time.monotonic()
            if now - self._logged_at >= LOG_EVERY:
                log.warning(
                    "refused connections: %d open, the limit (server.max_connections)",
                    self.open,
                    extra={"refused": self.refused - self._refused_logged},
                )
                self._logged_at, self._refused_logged = now, self.refused
            return False
        self._count(+1)
        return True

    def _count(self, change: int) -> None:
        self.open += change
        if self._metrics is not None:
            self._metrics.connections.set(self.open)


class _Gate(asyncio.Protocol):
    """Stands between the transport and aiohttp's protocol, made only for an admitted connection."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], site: LimitedSite) -> None:
        self._factory = factory
        self._site = site
        self._inner: asyncio.Protocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._site._admit():
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(FULL)
            transport.close()
            return
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._site._count(-1)
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()
