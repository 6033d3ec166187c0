"""Slack buttons: `POST /api/v1/slack/interactions` (the app's Interactivity Request URL).

Every request is verified with slack-sdk's `SignatureVerifier` (HMAC-SHA256 of
`v0:{timestamp}:{body}` with the signing secret, timestamp within 5 minutes). A bad, expired
or replayed signature (the same signature seen again within the window) gets 401 and changes
nothing. A verified `block_actions` payload runs the button:

- Acknowledge / Resolve: `act(incident, "acknowledge" | "resolve", user, note)`;
- Silence 1h / 4h: one Alertmanager silence (API v2) per alert name covering the incident's
  firing alerts, `createdBy` the Slack user; then `act(incident, "silence", user, note)` with the
  duration and the silence IDs.

`act` is the service's callback (it feeds `Engine.act` and queues the notifications it
returns, so the incident's message is updated through the outbox like any other change).
`user` is the Slack user's name, which is what the incident timeline shows. Problems (unknown
incident, Alertmanager down) are told to the clicking user alone, through the payload's
`response_url`, in the background.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from slack_sdk.signature import Clock, SignatureVerifier

from ground.httpio import Refusal, error, read_body
from ground.jsonio import loads
from ground.times import format_time
from integrations.slack.blocks import ACTIONS, SILENCE_HOURS
from integrations.slack.config import SlackSettings

log = logging.getLogger("alert_router.slack")

INTERACTIONS_PATH = "/api/v1/slack/interactions"
INCIDENT_ID = re.compile(r"^inc-[0-9a-f]{6,}$")
REPLAY_WINDOW_SECONDS = 5 * 60  # SignatureVerifier's timestamp window
MAX_BODY = 1024 * 1024
READ_TIMEOUT = 10.0  # Slack sends a few KiB at once: a slow body is not Slack

ActCallback = Callable[[str, str, str, str], Any]  # (incident, action, user, note); may be async
SilenceCallback = Callable[[list[dict[str, Any]], datetime, datetime, str, str], Awaitable[str] | str]
IncidentView = Callable[[str], dict[str, Any] | None]


class _WallClock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class SlackInteractions:
    def __init__(
        self,
        signing_secret: SecretStr | str,
        act: ActCallback,
        *,
        incident_view: IncidentView | None = None,
        create_silence: SilenceCallback | None = None,
        response_url_prefixes: Iterable[str] = ("https://hooks.slack.com/",),
        clock: Callable[[], float] = time.time,
    ) -> None:
        secret = (
            signing_secret.get_secret_value() if isinstance(signing_secret, SecretStr) else signing_secret
        )
        self._verifier = SignatureVerifier(secret, clock=_WallClock(clock))
        self._act = act
        self._view = incident_view
        self._create_silence = create_silence
        self._prefixes = tuple(response_url_prefixes)
        self._clock = clock
        self._seen: dict[str, float] = {}  # signature -> when it leaves the replay window
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self) -> list[web.RouteDef]:
        return [web.post(INTERACTIONS_PATH, self.handle)]

    async def close(self) -> None:
        """Wait for ephemeral replies still on their way (graceful shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ---------------------------------------------------------------- request

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await read_body(request, MAX_BODY, READ_TIMEOUT)
        except Refusal as refusal:  # 413, or 408 for a body that trickles in
            return refusal.response
        if not self._authentic(
            body, request.headers.get("X-Slack-Request-Timestamp"), request.headers.get("X-Slack-Signature")
        ):
            return error(401, "invalid signature")  # logged once, with the other refusals
        try:
            payload = loads(parse_qs(body.decode("utf-8"), strict_parsing=True)["payload"][0])
        except (ValueError, KeyError, UnicodeDecodeError):
            return error(400, "expected a form body with a JSON payload field")
        if not isinstance(payload, dict) or payload.get("type") != "block_actions":
            return web.Response(status=200)  # other interaction types: nothing of ours
        user = payload.get("user") or {}
        name = str(user.get("username") or user.get("name") or user.get("id") or "someone")
        note = f"from Slack (user {user.get('id', '?')})"
        for action in payload.get("actions") or []:
            action_id = action.get("action_id")
            incident = str(action.get("value") or "")
            if action_id not in ACTIONS:
                continue
            if not INCIDENT_ID.match(incident):
                return error(400, f"{action_id}: value is not an incident id")
            reply = await self._perform(action_id, incident, name, note)
            if reply:
                self._tell(payload.get("response_url"), reply)
        return web.Response(status=200)

    def _authentic(self, body: bytes, timestamp: str | None, signature: str | None) -> bool:
        if not timestamp or not signature or not timestamp.isdigit():
            return False
        if not self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            return False
        now = self._clock()
        self._seen = {sig: until for sig, until in self._seen.items() if until > now}
        if signature in self._seen:
            return False  # a replay of a request already acted on
        self._seen[signature] = int(timestamp) + REPLAY_WINDOW_SECONDS
        return True

    # ---------------------------------------------------------------- actions

    async def _perform(self, action_id: str, incident: str, user: str, note: str) -> str | None:
        action = ACTIONS[action_id]
        try:
            if action == "silence":
                return await self._silence(incident, SILENCE_HOURS[action_id], user, note)
            await _maybe_await(self._act(incident, action, user, note))
        except LookupError:
            return f"Incident {incident} is unknown to alert-router (closed long ago?)."
        except Exception as exc:  # tell the user; Slack shows nothing useful for a 500
            log.exception("slack: %s failed", action, extra={"incident": incident})
            return f"{action} of {incident} failed: {exc}"
        log.info("slack: %s by %s", action, user, extra={"incident": incident})
        return None

    async def _silence(self, incident: str, hours: int, user: str, note: str) -> str:
        if self._create_silence is None:
            return "Silencing needs Alertmanager: set the Alertmanager URL in alert-router's configuration."
        alerts = self._alerts_of(incident)
        if not alerts:
            return f"Incident {incident} has no alerts to silence."
        starts = datetime.fromtimestamp(self._clock(), UTC)
        ends = starts + timedelta(hours=hours)
        comment = f"alert-router {incident}: silenced {hours}h from Slack by {user}"
        ids: list[str] = []
        try:
            for matchers in silence_matchers(alerts):
                ids.append(
                    str(await _maybe_await(self._create_silence(matchers, starts, ends, user, comment)))
                )
        except Exception as exc:
            log.warning("slack: silence failed: %s", exc, extra={"incident": incident})
            done = f" (created {', '.join(ids)} before the failure)" if ids else ""
            return f"Could not create the silence in Alertmanager: {exc}{done}"
        await _maybe_await(
            self._act(incident, "silence", user, f"{hours}h, Alertmanager silence {', '.join(ids)}; {note}")
        )
        log.info("slack: silenced %sh by %s: %s", hours, user, ids, extra={"incident": incident})
        listed = ", ".join(ids)
        return f"Silenced {incident} for {hours}h until {format_time(ends)} (Alertmanager silence {listed})."

    def _alerts_of(self, incident: str) -> list[dict[str, Any]]:
        """The incident's alerts (firing ones if any fire), following merges to the survivor."""
        if self._view is None:
            return []
        view = self._view(incident)
        for _ in range(16):
            if not view or not view.get("merged_into"):
                break
            view = self._view(view["merged_into"])
        if not view:
            raise KeyError(incident)
        alerts = [a for a in view.get("alerts") or [] if a.get("labels")]
        firing = [a for a in alerts if a.get("status") == "firing"]
        return firing or alerts

    def _tell(self, response_url: Any, text: str) -> None:
        if not isinstance(response_url, str) or not response_url.startswith(self._prefixes):
            return
        task = asyncio.create_task(_post_ephemeral(response_url, text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def create_interactions(
    settings: SlackSettings,
    act: ActCallback,
    *,
    incident_view: IncidentView | None = None,
    create_silence: SilenceCallback | None = None,
) -> SlackInteractions | None:
    """The interactivity endpoint for the service, or None (logged) without a signing secret."""
    secret = settings.resolved_signing_secret()
    if secret is None:
        log.warning(
            "slack: no signing secret (slack.signing_secret[_file], SLACK_SIGNING_SECRET): buttons are off"
        )
        return None
    return SlackInteractions(
        secret,
        act,
        incident_view=incident_view,
        create_silence=create_silence,
        response_url_prefixes=settings.response_url_prefixes,
    )


def silence_matchers(alerts: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """One silence per alert name, matching exactly the labels every such alert carries: equal
    when they agree, an alternation of the exact values when they differ (Alertmanager anchors
    regular expressions). It may also cover an alert that combines values of two of ours, never
    one with a value none of ours has."""
    groups: dict[str, list[dict[str, str]]] = {}
    for alert in alerts:
        labels = alert["labels"]
        groups.setdefault(labels.get("alertname", ""), []).append(labels)
    out: list[list[dict[str, Any]]] = []
    for _, label_sets in sorted(groups.items()):
        common = set.intersection(*(set(labels) for labels in label_sets))
        matchers = []
        for key in sorted(common):
            values = sorted({labels[key] for labels in label_sets})
            if len(values) == 1:
                matchers.append({"name": key, "value": values[0], "isRegex": False, "isEqual": True})
            else:
                value = "|".join(re.escape(v) for v in values)
                matchers.append({"name": key, "value": value, "isRegex": True, "isEqual": True})
        out.append(matchers)
    return out


async def _post_ephemeral(url: str, text: str) -> None:
    body = {"response_type": "ephemeral", "replace_original": False, "text": text}
    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, json=body) as response,
        ):
            await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("slack: could not reply to the user: %s", type(exc).__name__)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
