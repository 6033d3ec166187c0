"""A local stand-in for https://slack.com/api/, strict about Slack's documented method contracts.

Serves `auth.test`, `chat.postMessage`, `chat.update`, `conversations.info`,
`conversations.history` and `conversations.replies` on a loopback port (slack-sdk's
`base_url`), plus `/response/<id>` standing in for an interaction's `response_url`.
Every request is checked the way Slack documents it and answered the way Slack answers:

- authentication: a bearer token (or a `token` form/query argument) that it knows, else
  `not_authed` / `invalid_auth`; a JSON body needs the header;
- required arguments (`channel`, `ts`, one of `text`/`blocks`: `no_text`), the channel exists
  (`channel_not_found`; `chat.update` wants the ID), the bot is a member (`not_in_channel`),
  it is not archived (`is_archived`), `text` at most 40,000 characters (`msg_too_long`),
  `thread_ts` names a message (`thread_not_found`), metadata has `event_type`/`event_payload`;
- Block Kit basics: at most 50 blocks, known block types, unique `block_id`s and `action_id`s,
  header plain_text <= 150, section text <= 3,000, at most 10 fields of <= 2,000, context
  <= 10 elements, actions <= 25 elements, buttons: plain_text label <= 75, `action_id` <= 255,
  `value` <= 2,000, `url` <= 3,000, style primary/danger, confirm dialog limits
  (`invalid_blocks` with an `errors` list, `invalid_blocks_format` when it is not a list);
- scopes: `conversations.history`/`.replies` need `channels:history`, `conversations.info`
  `channels:read`, posting `chat:write` (`missing_scope`).

It can be told to fail: `outage("503")` answers 503, `outage("refuse")` closes the port
(connection refused), `rate_limit(n, retry_after)` answers `ratelimited` with HTTP 429 and
`Retry-After` n times, `lose_responses(method, n)` does the work and then answers 500 (the
reply lost on the way back). Every call is recorded in `calls`, failures included.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

TOKEN = "xoxb-0000000000-standin-token"
DEFAULT_SCOPES = ("chat:write", "channels:read", "groups:read", "channels:history", "groups:history")
METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "conversations.info": "channels:read",
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
}
BLOCK_TYPES = {
    "section",
    "header",
    "actions",
    "context",
    "divider",
    "image",
    "input",
    "rich_text",
    "markdown",
}
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")
EVENT_TYPE = re.compile(r"^[A-Za-z0-9_]{1,255}$")


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    status: int
    body: dict[str, Any]
    lost: bool = False  # Slack did the work but the answer never reached the caller

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.body.get("ok"))

    @property
    def error(self) -> str | None:
        return None if self.ok else str(self.body.get("error", f"HTTP {self.status}"))


@dataclass
class Channel:
    id: str
    name: str
    is_member: bool = True
    is_archived: bool = False
    is_private: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)


class SlackError(Exception):
    def __init__(self, error: str, errors: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.errors = errors or []


class SlackStandIn:
    def __init__(
        self,
        channels: dict[str, str] | None = None,
        *,
        token: str = TOKEN,
        scopes: tuple[str, ...] = DEFAULT_SCOPES,
    ) -> None:
        names = channels or {"C0PAGES01": "alerts", "C0NOTICE1": "alerts-low"}
        self.channels = {cid: Channel(cid, name) for cid, name in names.items()}
        self.tokens = {token}
        self.scopes = set(scopes)
        self.calls: list[Call] = []
        self.responses: list[dict[str, Any]] = []  # posts to response_url
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._mode: str | None = None
        self._rate_limits: list[list[Any]] = []  # [method or None, remaining, retry_after]
        self._lost: dict[str, int] = {}
        self._last = 0.0

    # ------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def start(self) -> SlackStandIn:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_post("/response/{id}", self._response_url)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        if not self.port:
            sockets = self._runner.addresses
            self.port = int(sockets[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def outage(self, mode: str = "503") -> None:
        """'503': answer every call with 503; 'refuse': close the port (connection refused)."""
        if mode not in ("503", "refuse"):
            raise ValueError(mode)
        self._mode = mode
        if mode == "refuse":
            await self.stop()

    async def recover(self) -> None:
        if self._mode == "refuse":
            await self.start()
        self._mode = None

    def rate_limit(self, times: int, retry_after: int = 1, method: str | None = None) -> None:
        self._rate_limits.append([method, times, retry_after])

    def lose_responses(self, method: str, times: int = 1) -> None:
        self._lost[method] = times

    # --------------------------------------------------------------- queries

    def ok_calls(self, *methods: str) -> list[Call]:
        return [c for c in self.calls if c.ok and (not methods or c.method in methods)]

    def trace(self) -> list[tuple[str, ...]]:
        """Successful message calls as (method, channel, ts or thread_ts): the sequence tests assert."""
        out: list[tuple[str, ...]] = []
        for call in self.ok_calls("chat.postMessage", "chat.update"):
            if call.method == "chat.update":
                out.append(("update", call.body["channel"], call.body["ts"]))
            elif call.args.get("thread_ts"):
                out.append(("reply", call.body["channel"], str(call.args["thread_ts"])))
            else:
                out.append(("post", call.body["channel"], call.body["ts"]))
        return out

    def top_level(self, channel: str) -> list[dict[str, Any]]:
        return [m for m in self.channels[channel].messages if not m.get("thread_ts")]

    def replies(self, channel: str, ts: str) -> list[dict[str, Any]]:
        return [m for m in self.channels[channel].messages if m.get("thread_ts") == ts]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        return next(m for m in self.channels[channel].messages if m["ts"] == ts)

    # ---------------------------------------------------------------- server

    async def _response_url(self, request: web.Request) -> web.Response:
        self.responses.append({"id": request.match_info["id"], "body": await request.json()})
        return web.Response(text="ok")

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args, token, problem = await _read_args(request)
        if self._mode == "503":
            return self._answer(method, args, 503, {"ok": False, "error": "service_unavailable"})
        if problem:
            return self._answer(method, args, 200, {"ok": False, "error": problem})
        if not token:
            return self._answer(method, args, 200, {"ok": False, "error": "not_authed"})
        if token not in self.tokens:
            return self._answer(method, args, 200, {"ok": False, "error": "invalid_auth"})
        for limit in self._rate_limits:
            if limit[1] > 0 and limit[0] in (None, method):
                limit[1] -= 1
                return self._answer(
                    method, args, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(limit[2])}
                )
        needed = METHOD_SCOPES.get(method)
        if needed and needed not in self.scopes:
            return self._answer(method, args, 200, {"ok": False, "error": "missing_scope", "needed": needed})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._answer(method, args, 200, {"ok": False, "error": "unknown_method"})
        try:
            body = {"ok": True, **handler(args)}
        except SlackError as exc:
            body = {"ok": False, "error": exc.error}
            if exc.errors:
                body["errors"] = exc.errors
                body["response_metadata"] = {"messages": [f"[ERROR] {e}" for e in exc.errors]}
            return self._answer(method, args, 200, body)
        if self._lost.get(method, 0) > 0:
            self._lost[method] -= 1
            self.calls.append(Call(method, args, 200, body, lost=True))  # done, as Slack did it...
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)  # ...answer lost
        headers = {"X-OAuth-Scopes": ",".join(sorted(self.scopes))} if method == "auth.test" else None
        return self._answer(method, args, 200, body, headers)

    def _answer(
        self,
        method: str,
        args: dict[str, Any],
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self.calls.append(Call(method, args, status, body))
        return web.json_response(body, status=status, headers=headers)

    # --------------------------------------------------------------- methods

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://standin.slack.com/",
            "team": "Stand-in",
            "user": "alert-router",
            "team_id": "T0STANDIN",
            "user_id": "U0BOTUSER",
            "bot_id": "B0BOTUSER",
        }

    def _m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, by_id_only=True)
        return {
            "channel": {
                "id": channel.id,
                "name": channel.name,
                "is_channel": True,
                "is_private": channel.is_private,
                "is_archived": channel.is_archived,
                "is_member": channel.is_member,
            }
        }

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        if channel.is_archived:
            raise SlackError("is_archived")
        if not channel.is_member:
            raise SlackError("not_in_channel")
        blocks = _check_content(args)
        thread_ts = args.get("thread_ts")
        if thread_ts is not None and not any(
            m["ts"] == str(thread_ts) and not m.get("thread_ts") for m in channel.messages
        ):
            raise SlackError("thread_not_found")
        metadata = _check_metadata(args.get("metadata"))
        message = {
            "type": "message",
            "ts": self._next_ts(),
            "text": args.get("text", ""),
            "blocks": blocks,
            "thread_ts": str(thread_ts) if thread_ts else None,
            "metadata": metadata,
            "edits": 0,
        }
        channel.messages.append(message)
        return {"channel": channel.id, "ts": message["ts"], "message": _public(message, True)}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, by_id_only=True)
        ts = args.get("ts")
        if not ts:
            raise SlackError("invalid_arguments", ["missing required field: ts"])
        message = next((m for m in channel.messages if m["ts"] == str(ts)), None)
        if message is None:
            raise SlackError("message_not_found")
        blocks = _check_content(args)
        message.update(text=args.get("text", ""), blocks=blocks, edits=message["edits"] + 1)
        if "metadata" in args:
            message["metadata"] = _check_metadata(args["metadata"])
        return {"channel": channel.id, "ts": message["ts"], "text": message["text"]}

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, by_id_only=True)
        oldest = float(args.get("oldest") or 0)
        found = [m for m in reversed(channel.messages) if not m.get("thread_ts") and float(m["ts"]) > oldest]
        return self._page(found, args)

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, by_id_only=True)
        ts = str(args.get("ts") or "")
        parent = next((m for m in channel.messages if m["ts"] == ts and not m.get("thread_ts")), None)
        if parent is None:
            raise SlackError("thread_not_found")
        oldest = float(args.get("oldest") or 0)
        found = [parent] + [
            m for m in channel.messages if m.get("thread_ts") == ts and float(m["ts"]) > oldest
        ]
        return self._page(found, args)

    # --------------------------------------------------------------- helpers

    def _page(self, found: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
        limit = min(int(args.get("limit") or 100), 999)
        start = int(args.get("cursor") or 0)
        chunk = found[start : start + limit]
        metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        more = start + limit < len(found)
        return {
            "messages": [_public(m, metadata) for m in chunk],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _channel(self, args: dict[str, Any], by_id_only: bool = False) -> Channel:
        wanted = args.get("channel")
        if not wanted:
            raise SlackError("channel_not_found")
        wanted = str(wanted)
        if wanted in self.channels:
            return self.channels[wanted]
        if not by_id_only:
            for channel in self.channels.values():
                if wanted.lstrip("#") == channel.name:
                    return channel
        raise SlackError("channel_not_found")

    def _next_ts(self) -> str:
        """Like Slack: the wall-clock time in microseconds, unique and increasing per workspace."""
        self._last = max(time.time(), self._last + 0.000001)
        return f"{self._last:.6f}"


async def _read_args(request: web.Request) -> tuple[dict[str, Any], str | None, str | None]:
    """Arguments from the query and the body (JSON or form), the token, and a format problem."""
    args: dict[str, Any] = dict(request.query)
    token: str | None = None
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        token = auth[len("Bearer ") :].strip()
    raw = await request.read()
    if raw:
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = json.loads(raw)
            except ValueError:
                return args, token, "invalid_json"
            if not isinstance(body, dict):
                return args, token, "invalid_json"
            if "token" in body:
                return args, token, "invalid_arguments"  # JSON bodies take the token in the header
            args.update(body)
        elif ctype == "application/x-www-form-urlencoded":
            args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        elif not ctype or ctype == "application/octet-stream":
            return args, token, "missing_post_type"
        else:
            return args, token, "invalid_post_type"
    if token is None and args.get("token"):
        token = str(args.pop("token"))
    return args, token, None


def _public(message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    out = {k: v for k, v in message.items() if k not in ("metadata", "edits") and v is not None}
    if with_metadata and message.get("metadata"):
        out["metadata"] = message["metadata"]
    return out


def _check_metadata(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackError("invalid_metadata_format") from None
    if not isinstance(value, dict) or not value:
        raise SlackError("invalid_metadata_format")
    if not isinstance(value.get("event_type"), str) or not EVENT_TYPE.match(value["event_type"]):
        raise SlackError("invalid_metadata_schema")
    if not isinstance(value.get("event_payload"), dict):
        raise SlackError("invalid_metadata_schema")
    return value


def _check_content(args: dict[str, Any]) -> list[dict[str, Any]] | None:
    text = args.get("text")
    blocks = args.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            raise SlackError("invalid_blocks_format") from None
    if blocks is not None and not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")
    if not text and not blocks:
        raise SlackError("no_text")
    if text is not None and len(str(text)) > 40_000:
        raise SlackError("msg_too_long")
    if blocks:
        errors = check_blocks(blocks)
        if errors:
            raise SlackError("invalid_blocks", errors)
    return blocks


def check_blocks(blocks: list[Any]) -> list[str]:
    """Block Kit basics, as Slack's validator reports them (message and JSON pointer)."""
    errors: list[str] = []
    if len(blocks) > 50:
        errors.append(f"must provide no more than 50 items [json-pointer:/blocks] ({len(blocks)})")
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            errors.append(f"unknown block type [json-pointer:{where}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not 0 < len(block_id) <= 255:
                errors.append(f"must be 1-255 characters [json-pointer:{where}/block_id]")
            elif block_id in block_ids:
                errors.append(f"duplicate block_id [json-pointer:{where}/block_id]")
            block_ids.add(str(block_id))
        kind = block["type"]
        if kind == "header":
            _text(block.get("text"), 150, f"{where}/text", errors, plain_only=True)
        elif kind == "section":
            if block.get("text") is None and not block.get("fields"):
                errors.append(f"must provide text or fields [json-pointer:{where}]")
            if block.get("text") is not None:
                _text(block["text"], 3000, f"{where}/text", errors)
            fields = block.get("fields") or []
            if len(fields) > 10:
                errors.append(f"must provide no more than 10 items [json-pointer:{where}/fields]")
            for j, item in enumerate(fields):
                _text(item, 2000, f"{where}/fields/{j}", errors)
            if block.get("accessory") is not None:
                _element(block["accessory"], f"{where}/accessory", errors, action_ids)
        elif kind == "context":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= 10:
                errors.append(f"must provide 1-10 items [json-pointer:{where}/elements]")
            for j, item in enumerate(elements):
                if item.get("type") in ("plain_text", "mrkdwn"):
                    _text(item, 3000, f"{where}/elements/{j}", errors)
                elif item.get("type") != "image":
                    errors.append(f"unsupported element [json-pointer:{where}/elements/{j}]")
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= 25:
                errors.append(f"must provide 1-25 items [json-pointer:{where}/elements]")
            for j, item in enumerate(elements):
                _element(item, f"{where}/elements/{j}", errors, action_ids)
    return errors


def _text(obj: Any, limit: int, where: str, errors: list[str], plain_only: bool = False) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        errors.append(f"must be a text object [json-pointer:{where}]")
        return
    if plain_only and obj["type"] != "plain_text":
        errors.append(f"must be plain_text [json-pointer:{where}/type]")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        errors.append(f"must be more than 0 characters [json-pointer:{where}/text]")
    elif len(text) > limit:
        errors.append(f"must be less than {limit + 1} characters [json-pointer:{where}/text]")


def _element(item: Any, where: str, errors: list[str], action_ids: set[str]) -> None:
    if not isinstance(item, dict) or item.get("type") != "button":
        return  # only buttons are checked in depth: they are all we send
    _text(item.get("text"), 75, f"{where}/text", errors, plain_only=True)
    action_id = item.get("action_id")
    if action_id is not None:
        if not isinstance(action_id, str) or not 0 < len(action_id) <= 255:
            errors.append(f"must be 1-255 characters [json-pointer:{where}/action_id]")
        elif action_id in action_ids:
            errors.append(f"duplicate action_id [json-pointer:{where}/action_id]")
        action_ids.add(str(action_id))
    if "value" in item and (not isinstance(item["value"], str) or len(item["value"]) > 2000):
        errors.append(f"must be less than 2001 characters [json-pointer:{where}/value]")
    if "url" in item and (not isinstance(item["url"], str) or len(item["url"]) > 3000):
        errors.append(f"must be less than 3001 characters [json-pointer:{where}/url]")
    if "style" in item and item["style"] not in ("primary", "danger"):
        errors.append(f"must be primary or danger [json-pointer:{where}/style]")
    confirm = item.get("confirm")
    if isinstance(confirm, dict):
        for name, limit in (("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)):
            _text(confirm.get(name), limit, f"{where}/confirm/{name}", errors, plain_only=name != "text")
