"""The HTTP application: the webhook, the incident API, health, metrics and the OpenAPI document.

`/api/v1/*` requires the configured credentials (the same bearer token or basic auth as the
webhook), except `/api/v1/openapi.yaml` and Slack's interactions endpoint (signed by Slack).
`/healthz`, `/readyz` and `/metrics` are open: they are for the kubelet and Prometheus.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from ground.httpio import ErrorAnswer, Refusal, error, read_body
from ground.jsonio import JsonError, loads
from router.export import TimelineNotFound, TimelineRequestError, render_timeline
from router.export.store_source import StoreSource
from router.service.metrics import CONTENT_TYPE
from router.service.store import StorageUnavailable
from router.service.webhook import PATH, Authenticator, WebhookHandler, unauthorized

# An action's body is a name and a note: anything much larger is not one.
ACTION_BODY_LIMIT = 64 * 1024
# GET /api/v1/incidents: incidents per page unless `limit` says, and at most.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
STATES = ("open", "paged", "recovered", "resolving", "closed", "merged")
log = logging.getLogger("alert_router.http")
SERVICE: web.AppKey[Any] = web.AppKey("service", object)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(service: Any) -> web.Application:
    settings = service.settings
    auth = Authenticator(settings.auth.resolved_bearer(), settings.auth.resolved_basic())
    api = Api(service, auth)
    webhook = WebhookHandler(service, auth)
    app = web.Application(client_max_size=settings.server.max_body_bytes, middlewares=[answers])
    app.router.add_post(PATH, webhook.handle)
    app.router.add_get("/api/v1/incidents", api.guard(api.incidents))
    app.router.add_get("/api/v1/incidents/{id}", api.guard(api.incident))
    app.router.add_get("/api/v1/incidents/{id}/timeline", api.guard(timeline))
    app.router.add_post("/api/v1/incidents/{id}/{action:acknowledge|resolve}", api.guard(api.act))
    app.router.add_get("/api/v1/topology", api.guard(api.topology))
    app.router.add_post("/api/v1/topology/refresh", api.guard(api.refresh_topology))
    app.router.add_get("/api/v1/openapi.yaml", openapi)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/readyz", api.readyz)
    app.router.add_get("/metrics", api.metrics)
    if service.slack_interactions is not None:
        app.add_routes(service.slack_interactions.routes())
    app[SERVICE] = service
    return app


class Api:
    def __init__(self, service: Any, auth: Authenticator) -> None:
        self.service = service
        self.auth = auth
        self.read_timeout = service.settings.server.read_timeout.total_seconds()

    def guard(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            header = request.headers.get("Authorization")
            if not self.auth.check(header):
                return unauthorized(header)
            return await handler(request)

        return guarded

    async def incidents(self, request: web.Request) -> web.Response:
        """A page of incidents, oldest first; `next_cursor` continues it (null: no more)."""
        query = request.query
        state = query.get("state")
        if state is not None and state not in STATES:
            return error(400, f"state must be one of {', '.join(STATES)}", "state")
        text = query.get("limit", str(DEFAULT_LIMIT))
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            return error(400, f"limit must be a whole number from 1 to {MAX_LIMIT}", "limit")
        try:
            after = _read_cursor(query["cursor"]) if "cursor" in query else None
            page, last = self.service.incident_page(state, after, int(text))
        except (KeyError, ValueError):
            return error(400, "cursor: not a next_cursor of this service's incident list", "cursor")
        return web.json_response({"incidents": page, "next_cursor": _cursor(last) if last else None})

    async def incident(self, request: web.Request) -> web.Response:
        view = self.service.engine.incident(request.match_info["id"])
        if view is None:
            return error(404, "no such incident", "id")
        return web.json_response(view)

    async def act(self, request: web.Request) -> web.Response:
        incident = request.match_info["id"]
        action = request.match_info["action"]
        try:
            raw = (
                await read_body(request, ACTION_BODY_LIMIT, self.read_timeout)
                if request.can_read_body
                else b"{}"
            )
            body = loads(raw)
        except Refusal as refusal:
            return refusal.response
        except JsonError as exc:
            shape = "" if exc.field != "(body)" else '; the body is {"user": "...", "note": "..."}'
            return error(400, f"{exc}{shape}", exc.field)
        if not isinstance(body, dict):
            return error(400, "the body must be a JSON object", "(body)")
        user, note = body.get("user"), body.get("note", "")
        if not isinstance(user, str) or not user.strip() or len(user) > 200:
            return error(400, "user: a name of 1 to 200 characters is required", "user")
        if not isinstance(note, str) or len(note) > 2000:
            return error(400, "note: text of at most 2000 characters", "note")
        try:
            view = await self.service.act(incident, action, user.strip(), note)
        except KeyError:
            return error(404, "no such incident", "id")
        except StorageUnavailable as exc:
            return error(503, f"event log unavailable, retry: {exc}")
        return web.json_response(view)

    async def topology(self, request: web.Request) -> web.Response:
        topology = self.service.engine.topology
        return web.json_response({"entities": len(topology), "kinds": topology.summary()})

    async def refresh_topology(self, request: web.Request) -> web.Response:
        """Re-discover the graph from Prometheus now; the report says what changed or why the
        new graph was refused (the last good one stays)."""
        link = self.service.prometheus
        if link is None:
            return error(409, "no Prometheus configured (prometheus.url)", "prometheus.url")
        report = await link.refresh()
        return web.json_response(report.to_dict(), status=200 if report.result == "ok" else 502)

    async def healthz(self, request: web.Request) -> web.Response:
        if self.service.fatal:  # restart me: the rebuild from the event log repairs the state
            return web.json_response({"status": "failed", "reason": self.service.fatal}, status=503)
        return web.json_response({"status": "alive"})

    async def readyz(self, request: web.Request) -> web.Response:
        ok, why = self.service.ready()
        if ok and not await self.service.probe_storage():
            ok, why = False, "storage unavailable: a test commit failed"
        body = {"status": "ready" if ok else "not ready", "reason": why, "backlog": self.service.backlog()}
        return web.json_response(body, status=200 if ok else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        body = self.service.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def _cursor(incident: str) -> str:
    """Opaque to clients: where the next page starts."""
    return base64.urlsafe_b64encode(f"after:{incident}".encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> str:
    text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    kind, sep, incident = text.partition(":")
    if kind != "after" or not sep:
        raise ValueError(cursor)
    return incident


@web.middleware
async def answers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is JSON, aiohttp's own 404 and 405 included; every refusal (4xx) is logged
    once, here, with its reason."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _as_json(request, exc)
    if 400 <= response.status < 500:
        answer = response if isinstance(response, ErrorAnswer) else None
        log.warning(
            "refused %s %s: %d %s",
            request.method,
            request.path,
            response.status,
            answer.why if answer else response.reason,
            extra={"status": response.status, "remote": request.remote, "field": answer and answer.field},
        )
    return response


def _as_json(request: web.Request, exc: web.HTTPException) -> web.Response:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        response = error(
            405, f"{request.method} is not allowed on {request.path} (allowed: {', '.join(allowed)})"
        )
        response.headers["Allow"] = ", ".join(allowed)
        return response
    if isinstance(exc, web.HTTPNotFound):
        return error(404, f"no such path: {request.path} (the API: /api/v1/openapi.yaml)")
    return error(exc.status, exc.reason)


async def timeline(request: web.Request) -> web.Response:
    """Without `format`: the incident's own decision events, oldest first (docs/events.md).
    With `format=md|json|html|csv` (and `tz=ZONE`): the post-mortem export of docs/export.md,
    merged incidents and message results included."""
    service = request.app[SERVICE]
    incident = request.match_info["id"]
    fmt = request.query.get("format")
    if fmt is None:
        if service.engine.incident(incident) is None:
            return error(404, "no such incident", "id")
        events = await service.readers.run(lambda reader: reader.events_of(incident))
        return web.json_response(events)
    try:
        content_type, body = await asyncio.to_thread(
            _render_timeline, service.settings.storage.path, incident, fmt, request.query.get("tz")
        )
    except TimelineNotFound:
        return error(404, "no such incident", "id")
    except TimelineRequestError as exc:
        return error(400, str(exc), "tz" if "zone" in str(exc).lower() else "format")
    return web.Response(text=body, headers={"Content-Type": content_type})


def _render_timeline(path: Any, incident: str, fmt: str, tz: str | None) -> tuple[str, str]:
    recording = StoreSource(path).load(incident)
    return render_timeline(
        recording.events,
        recording.notifications,
        incident,
        fmt,
        tz,
        outbox=recording.outbox,
        attempts=recording.attempts,
        origin="the event log",
    )


async def openapi(request: web.Request) -> web.Response:
    text = resources.files("router.service").joinpath("data/openapi.yaml").read_text(encoding="utf-8")
    return web.Response(text=text, content_type="application/yaml")
