"""Connections against the real server on a loopback port, with raw sockets: one that never
completes its request is closed after `server.read_timeout`; past `server.max_connections` a new
one is answered 503 and closed, and the service goes on serving the others."""

from __future__ import annotations

import asyncio
import json
import time

from tests.service_harness import DELIVERIES, serving, settings_for, until

HALF = b"POST /api/v1/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: appl"


def example() -> str:
    return (DELIVERIES / "alertmanager-0.33-example.json").read_text()


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def test_a_connection_that_never_completes_its_request_is_closed(tmp_path):
    settings = settings_for(tmp_path, server={"read_timeout": "1s"})
    async with serving(settings) as svc:
        half, half_writer = await connect(svc.url)
        half_writer.write(HALF)  # half the headers, then nothing
        await half_writer.drain()
        silent, silent_writer = await connect(svc.url)  # nothing at all
        began = time.monotonic()
        # Meanwhile others are served at once.
        assert (await svc.post(example()))[0] == 200
        assert await asyncio.wait_for(half.read(), 10) == b""  # closed by the server
        assert await asyncio.wait_for(silent.read(), 10) == b""
        assert 0.5 < time.monotonic() - began < 5
        half_writer.close()
        silent_writer.close()
        # An idle keep-alive connection is closed too, after its answer.
        reader, writer = await connect(svc.url)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        await asyncio.wait_for(reader.read(), 10)  # the rest of the answer, then EOF
        writer.close()


async def test_connections_beyond_the_cap_are_refused_with_503_and_the_rest_served(tmp_path):
    settings = settings_for(tmp_path, server={"max_connections": 4, "read_timeout": "30s"})
    async with serving(settings) as svc:
        held = [await connect(svc.url) for _ in range(4)]
        for _, writer in held:
            writer.write(HALF)
            await writer.drain()
        reader, writer = await connect(svc.url)
        answer = await asyncio.wait_for(reader.read(), 5)  # answered and closed at once
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503")
        assert "max_connections" in json.loads(body)["error"]
        writer.close()
        registry = svc.service.metrics.registry
        assert registry.get_sample_value("alert_router_http_connections_refused_total") == 1
        # Freeing one slot lets a request through.
        _, first = held.pop()
        first.close()
        await until(lambda: registry.get_sample_value("alert_router_http_connections") == 3)
        status, _ = await svc.post(example())
        assert status == 200
        for _, w in held:
            w.close()
