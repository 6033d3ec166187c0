"""Slack notifier: one message per incident, kept true, with its symptoms in the thread.

The service's outbox calls `await notifier.send(notification, key)` for each notification of
`docs/contracts.md`; `send` raises on failure and the outbox retries later with the same key.
What each notification does in Slack:

- `page`: `chat.postMessage` (the incident's message, with buttons; it mentions the on-call
  group when the severity calls for it), then one thread reply listing the symptoms known at
  page time, if there are any.
- `update`: `chat.update` of the message, then one thread reply: what changed and the new
  symptoms, listed and summarised.
- `resolve`: `chat.update` (resolved with its duration, or merged with a link to the survivor).
- `notice`: `chat.postMessage` in the notice channel (no buttons, no mention), or `chat.update`.

The incident's message is created by whichever notification arrives first, so a lost or
late `page` never leaves updates without a message.

Idempotency (a retry with the same key never posts twice). Every post is recorded in
`SlackState` *before* the request leaves (an intent) and its `ts` right after, together with
the incident's message. A retry finds either the `ts` (nothing to post) or an intent without
`ts`: the earlier attempt may have reached Slack, so the message is looked up by the metadata
every post carries (`conversations.history` / `conversations.replies` with
`include_all_metadata`) before posting again. Failures that certainly posted nothing (connection
refused, a Slack error answer, 429) drop the intent, so the retry posts without a lookup.
For the same reason posts are retried inside slack-sdk only on 429 and refused connections;
5xx and broken connections go back to the outbox, whose retry does the lookup.
`chat.update` is idempotent and uses all of slack-sdk's retry handlers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from ground.errors import InputError
from ground.times import parse_time
from integrations.slack.blocks import (
    Message,
    MessageState,
    RenderContext,
    parent_message,
    permalink,
    pointer_message,
    thread_reply,
)
from integrations.slack.config import Destination, SlackSettings, mention_markup, routing_keys
from integrations.slack.state import MessageRecord, PostRecord, SlackState

T = TypeVar("T")

log = logging.getLogger("alert_router.slack")

IncidentView = Callable[[str], dict[str, Any] | None]

EVENT_TYPE = "alert_router_notification"
# How far before an uncertain post the lookup searches (our clock against Slack's).
LOOKUP_SKEW_SECONDS = 600
LOOKUP_PAGES = 5
# Slack errors a retry will not cure: configuration or message problems. Others are retried.
PERMANENT_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "invalid_arguments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
    }
)
# Lookup failures that mean "cannot look", not "try later": post again (and say so).
LOOKUP_UNAVAILABLE = frozenset({"missing_scope", "not_allowed_token_type", "no_permission"})


class SlackSendError(Exception):
    """A notification did not reach Slack. `retryable` is False when only a fix of the
    configuration (token, channel, scopes) will make it succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class SlackNotifier:
    """The outbox's notifier for Slack (`send(notification, key)`)."""

    name = "slack"

    def __init__(
        self,
        settings: SlackSettings,
        state: SlackState | str | Path,
        *,
        incident_view: IncidentView | None = None,
        token: SecretStr | None = None,
        wall_clock: Callable[[], float] = time.time,
        owns_state: bool | None = None,
    ) -> None:
        token = token or settings.resolved_bot_token()
        if token is None:
            raise InputError("slack: no bot token (slack.bot_token, slack.bot_token_file or SLACK_BOT_TOKEN)")
        if settings.default_channel is None:
            raise InputError("slack.default_channel: required to send to Slack")
        self.settings = settings
        self._token = token
        # A path is opened here and closed with the notifier; a given SlackState is closed by its
        # giver unless `owns_state` hands it over.
        self._owns_state = not isinstance(state, SlackState) if owns_state is None else owns_state
        self.state = state if isinstance(state, SlackState) else SlackState(state)
        self._incident_view = incident_view
        self._clock = wall_clock
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None  # every call but posts
        self._poster: AsyncWebClient | None = None  # chat.postMessage: only retries that cannot duplicate
        self._locks: dict[str, list[Any]] = {}  # incident -> [lock, users]

    @classmethod
    def from_settings(
        cls, settings: SlackSettings, state_path: str | Path, incident_view: IncidentView | None = None
    ) -> SlackNotifier:
        return cls(settings, state_path, incident_view=incident_view)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._client = self._poster = None
        if self._owns_state:
            self.state.close()

    # ------------------------------------------------------------------- send

    async def send(self, notification: dict[str, Any], key: str) -> None:
        incident = notification["incident"]
        async with self._incident_lock(incident):
            try:
                await self._send(notification, key)
            except SlackApiError as exc:
                error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
                log.warning("slack: %s failed: %s", key, error, extra={"incident": incident})
                raise SlackSendError(
                    f"Slack refused {key}: {error}", retryable=error not in PERMANENT_ERRORS
                ) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("slack: %s failed: %s", key, type(exc).__name__, extra={"incident": incident})
                raise SlackSendError(
                    f"Slack unreachable for {key}: {type(exc).__name__}", retryable=True
                ) from exc

    async def _send(self, notification: dict[str, Any], key: str) -> None:
        incident = notification["incident"]
        action = notification["action"]
        view = self._view(incident)
        record = await self._db(self.state.message, incident)
        state = MessageState.from_dict(record.state) if record else MessageState(incident)
        state.apply(notification, key)
        state.enrich(view)
        destination = self._destination(state, view)
        wake = (
            mention_markup(destination.usergroup)
            if state.severity in self.settings.mention_severities
            else None
        )

        if record is not None and record.mode == "notice" and action != "notice":
            # The incident went on to page: the page gets its own message, the notice points at it.
            state.escalated_from = [record.channel, record.ts] if record.ts else None
            record = None
        if record is None:
            mode = "notice" if action == "notice" else "page"
            channel = destination.notice_channel if mode == "notice" else destination.channel
            record = MessageRecord(incident, channel, None, mode, {})
        # The on-call group is woken once: by the parent message when this notification posts
        # it (a retry of the same key still carries the mention), else by this thread reply.
        if wake and state.mentioned_by is None and record.mode == "page" and state.status == "firing":
            state.mentioned_by = key
        parent_by_us = record.ts is None or await self._posted(key, "parent")
        reply_mention = wake if state.mentioned_by == key and not parent_by_us else None
        record.state = state.to_dict()
        await self._db(self.state.save_message, record, self._clock())

        ctx = self._context(notification, wake)
        parent = parent_message(state, record.mode, view, ctx)
        if record.ts is None:
            await self._post_once(key, "parent", incident, record.channel, parent, record=record)
        elif not await self._posted(key, "parent"):
            await self._update(key, record, parent)

        if action in ("page", "update") and record.mode == "page":
            reply = thread_reply(notification, ctx, reply_mention)
            if reply is not None:
                assert record.ts is not None
                await self._post_once(key, "reply", incident, record.channel, reply, thread_ts=record.ts)

        if state.escalated_from and record.ts:
            channel, ts = state.escalated_from
            target = permalink(self.settings.workspace_url, record.channel, record.ts)
            pointer = pointer_message(state, target, ctx)
            await self._client_for_updates().chat_update(
                channel=channel, ts=ts, text=pointer.text, blocks=pointer.blocks
            )
            state.escalated_from = None
            record.state = state.to_dict()
            await self._db(self.state.save_message, record, self._clock())
        log.info("slack: %s delivered", key, extra={"incident": incident})

    # ----------------------------------------------------------------- pieces

    @staticmethod
    async def _db(call: Callable[..., T], *args: Any) -> T:
        """The message index off the event loop: on a shared database each call is a network
        round trip, and the loop also answers webhooks. (The per-incident lock keeps the order.)"""
        return await asyncio.to_thread(call, *args)

    def _view(self, incident: str) -> dict[str, Any] | None:
        if self._incident_view is None:
            return None
        try:
            return self._incident_view(incident)
        except Exception:  # a view is a nicety: never fail a notification for it
            log.exception("slack: incident view failed", extra={"incident": incident})
            return None

    def _destination(self, state: MessageState, view: dict[str, Any] | None) -> Destination:
        labels = [(state.root_alert or {}).get("labels") or {}]
        labels += [a.get("labels") or {} for a in (view or {}).get("alerts") or []]
        namespace, team, kind = routing_keys(state.root_entity, labels, self.settings.team_label)
        return self.settings.destination(namespace, team, kind)

    def _context(self, notification: dict[str, Any], mention: str | None) -> RenderContext:
        def link_of(incident: str) -> str | None:
            other = self.state.message(incident)
            if other is None or other.ts is None:
                return None
            return permalink(self.settings.workspace_url, other.channel, other.ts)

        now = parse_time(notification["at"])
        if now is None:
            raise InputError(f"notification {notification['incident']}: at: not a time")
        return RenderContext(
            now=now,
            mention=mention,
            alertmanager_url=self.settings.alertmanager_url,
            permalink=link_of,
            symptoms_listed=self.settings.symptoms_listed,
        )

    async def _posted(self, key: str, step: str) -> bool:
        found = await self._db(self.state.post, key, step)
        return found is not None and found.ts is not None

    async def _update(self, key: str, record: MessageRecord, message: Message) -> None:
        assert record.ts is not None
        try:
            await self._client_for_updates().chat_update(
                channel=record.channel, ts=record.ts, text=message.text, blocks=message.blocks
            )
        except SlackApiError as exc:
            if exc.response.get("error") not in ("message_not_found", "cant_update_message"):
                raise
            # Someone deleted the message: post it again rather than go silent.
            log.warning(
                "slack: message %s gone, posting anew", record.ts, extra={"incident": record.incident}
            )
            record.ts = None
            await self._post_once(key, "parent", record.incident, record.channel, message, record=record)

    async def _post_once(
        self,
        key: str,
        step: str,
        incident: str,
        channel: str,
        message: Message,
        *,
        thread_ts: str | None = None,
        record: MessageRecord | None = None,
    ) -> str:
        """chat.postMessage at most once per (key, step); records the ts (and the incident's
        message, when this is its parent) before returning."""
        existing = await self._db(self.state.post, key, step)
        if existing is not None and existing.ts is not None:
            if record is not None:
                record.ts = existing.ts
            return existing.ts
        if existing is not None:
            found = await self._find_posted(existing, thread_ts)
            if found is not None:
                log.info(
                    "slack: %s/%s was posted before; not posting again",
                    key,
                    step,
                    extra={"incident": incident},
                )
                return await self._finish(existing.key, step, existing.channel, found, record)
        await self._db(self.state.begin_post, key, step, incident, channel, self._clock())
        try:
            response = await self._client_for_posts().chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
                metadata={
                    "event_type": EVENT_TYPE,
                    "event_payload": {"incident": incident, "key": key, "step": step},
                },
            )
        except Exception as exc:
            if _certainly_not_posted(exc):
                await self._db(self.state.abandon_post, key, step)
            raise
        return await self._finish(key, step, str(response["channel"]), str(response["ts"]), record)

    async def _finish(self, key: str, step: str, channel: str, ts: str, record: MessageRecord | None) -> str:
        if record is not None:
            record.ts = ts
            record.channel = channel
        await self._db(self.state.finish_post, key, step, channel, ts, record, self._clock())
        return ts

    async def _find_posted(self, intent: PostRecord, thread_ts: str | None) -> str | None:
        """An earlier attempt may have posted: find its message by metadata."""
        client = self._client_for_updates()
        oldest = f"{max(intent.started_at - LOOKUP_SKEW_SECONDS, 0):.6f}"
        cursor: str | None = None
        try:
            for _ in range(LOOKUP_PAGES):
                if thread_ts is not None:
                    page = await client.conversations_replies(
                        channel=intent.channel,
                        ts=thread_ts,
                        oldest=oldest,
                        include_all_metadata=True,
                        limit=200,
                        cursor=cursor,
                    )
                else:
                    page = await client.conversations_history(
                        channel=intent.channel,
                        oldest=oldest,
                        include_all_metadata=True,
                        limit=200,
                        cursor=cursor,
                    )
                for message in page.get("messages") or []:
                    payload = (message.get("metadata") or {}).get("event_payload") or {}
                    if payload.get("key") == intent.key and payload.get("step") == intent.step:
                        return str(message["ts"])
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if cursor is None:
                    return None
        except SlackApiError as exc:
            if exc.response.get("error") not in LOOKUP_UNAVAILABLE:
                raise
            log.warning(
                "slack: cannot look up %s/%s (%s): posting again, which may duplicate it; grant "
                "channels:history and groups:history",
                intent.key,
                intent.step,
                exc.response.get("error"),
                extra={"incident": intent.incident},
            )
        return None

    # ---------------------------------------------------------------- clients

    def _client_for_updates(self) -> AsyncWebClient:
        self._open()
        assert self._client is not None
        return self._client

    def _client_for_posts(self) -> AsyncWebClient:
        self._open()
        assert self._poster is not None
        return self._poster

    def _open(self) -> None:
        if self._client is not None:
            return
        settings = self.settings
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.timeout))
        retries = settings.max_retries
        common: dict[str, Any] = {
            "token": self._token.get_secret_value(),
            "base_url": settings.api_url,
            "session": self._session,
            "timeout": max(int(settings.timeout), 1),
        }
        self._client = AsyncWebClient(
            **common,
            retry_handlers=[
                AsyncRateLimitErrorRetryHandler(max_retry_count=retries),
                AsyncConnectionErrorRetryHandler(max_retry_count=retries),
                AsyncServerErrorRetryHandler(max_retry_count=retries),
            ],
        )
        self._poster = AsyncWebClient(
            **common,
            retry_handlers=[
                AsyncRateLimitErrorRetryHandler(max_retry_count=retries),
                # Only failures to connect: the request never left, a retry cannot duplicate.
                AsyncConnectionErrorRetryHandler(
                    max_retry_count=retries, error_types=[aiohttp.ClientConnectorError]
                ),
            ],
        )

    @asynccontextmanager
    async def _incident_lock(self, incident: str) -> AsyncIterator[None]:
        """One send at a time per incident (its message is created once); none kept when idle."""
        entry = self._locks.setdefault(incident, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[incident]


def _certainly_not_posted(exc: BaseException) -> bool:
    """True when the failed post cannot have created a message."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return True  # never connected
    if isinstance(exc, SlackApiError):
        return exc.response.status_code < 500  # Slack answered: an error, or 429 (not processed)
    return False
