"""HTTP answers every part of the server shares: JSON errors that name the field, and bodies
read within a size and a time limit (Alertmanager, the API and Slack all post to us)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web


class ErrorAnswer(web.Response):
    """A JSON error, `{"error": message, "field": field}`, that keeps what the log line of the
    refusal says (router.service.api.answers): `why`, the message unless the client is told less."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        *,
        why: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        body: dict[str, Any] = {"error": message}
        if field is not None:
            body["field"] = field
        super().__init__(
            text=json.dumps(body), status=status, content_type="application/json", headers=headers
        )
        self.why = why or message
        self.field = field


def error(status: int, message: str, field: str | None = None) -> web.Response:
    return ErrorAnswer(status, message, field)


def closing(response: web.Response) -> web.Response:
    """The rest of the body was not read: the connection is closed after the answer (the server
    lingers at most LINGER seconds reading what the client still sends, see router.cli.cmd_serve)."""
    response.force_close()
    return response


class Refusal(Exception):
    """An answer that ends a request early: the handler returns `response`."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The whole body, at most `limit` bytes (413), arrived within `timeout` seconds (408)."""
    if request.content_length is not None and request.content_length > limit:
        raise Refusal(
            closing(error(413, f"body of {request.content_length} bytes exceeds the limit of {limit}"))
        )
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.content.iter_any():
                body += chunk
                if len(body) > limit:
                    raise Refusal(closing(error(413, f"body exceeds the limit of {limit} bytes")))
    except TimeoutError:
        raise Refusal(closing(error(408, "the request body did not arrive in time"))) from None
    return bytes(body)
