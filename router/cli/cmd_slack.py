"""`alert-router slack check`: is the Slack configuration able to page someone?

It verifies the bot token (`auth.test`) and, for every configured channel, that the channel
exists, is not archived and has the bot as a member (`conversations.info`). It posts nothing:
a check run from a deploy pipeline must not spam the on-call channels. Being a member is what
`chat.postMessage` needs for a public or private channel, so membership is the check; the
token's scopes (from `auth.test`) are checked against what posting, updating and the
idempotency lookup need.

Exit status: 0 all good, 1 a problem was found (each printed on its own line), 2 bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import yaml
from pydantic import ValidationError
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from ground.errors import InputError, describe_validation_error
from integrations.slack.config import SlackSettings

# Scopes the bot needs: (any of these, what for, required?)
SCOPES = (
    (("chat:write",), "post and update messages", True),
    (("channels:read", "groups:read"), "check channels (conversations.info)", True),
    (
        ("channels:history", "groups:history"),
        "find a message whose post was interrupted (no duplicates)",
        False,
    ),
)


def register(subparsers: Any) -> None:
    slack = subparsers.add_parser("slack", help="Slack integration")
    sub = slack.add_subparsers(dest="slack_command", required=True)
    check = sub.add_parser(
        "check",
        help="verify the bot token and that the bot can post in every configured channel (posts nothing)",
    )
    check.add_argument("--config", help="service configuration file (its slack: section is checked)")
    check.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    settings = load_slack_settings(args.config)
    return asyncio.run(run_check(settings, sys.stdout))


def load_slack_settings(path: str | None) -> SlackSettings:
    """The `slack:` section of a configuration file (secrets may come from file or environment)."""
    data: Any = {}
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a mapping at the top level")
    section = data.get("slack") or {}
    try:
        return SlackSettings.model_validate(section)
    except ValidationError as exc:
        raise InputError(f"{path or '(defaults)'}: slack.{describe_validation_error(exc)}") from None


async def run_check(settings: SlackSettings, out: TextIO) -> int:
    problems = 0

    def say(ok: bool | None, what: str) -> None:
        nonlocal problems
        problems += ok is False
        mark = {True: "ok  ", False: "FAIL", None: "warn"}[ok]
        print(f"{mark} {what}", file=out)

    token = settings.resolved_bot_token()
    if token is None:
        say(False, "bot token: none (slack.bot_token, slack.bot_token_file or SLACK_BOT_TOKEN)")
        return 1
    if settings.resolved_signing_secret() is None:
        say(
            None,
            "signing secret: none, buttons are refused (slack.signing_secret[_file] or SLACK_SIGNING_SECRET)",
        )
    if not settings.channels():
        say(False, "channels: none configured (slack.default_channel)")
    client = AsyncWebClient(
        token=token.get_secret_value(),
        base_url=settings.api_url,
        timeout=max(int(settings.timeout), 1),
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(),
        ],
    )
    try:
        try:
            auth = await client.auth_test()
        except SlackApiError as exc:
            say(False, f"bot token: rejected by Slack ({exc.response.get('error')})")
            return 1
        say(True, f"bot token: {auth.get('user')} in workspace {auth.get('team')} ({settings.api_url})")
        granted = {s.strip() for s in str(auth.headers.get("x-oauth-scopes", "")).split(",") if s.strip()}
        if granted:
            for any_of, purpose, required in SCOPES:
                if not granted.intersection(any_of):
                    say(
                        False if required else None,
                        f"scope {' or '.join(any_of)} missing: needed to {purpose}",
                    )
        for channel in settings.channels():
            try:
                info = (await client.conversations_info(channel=channel))["channel"]
            except SlackApiError as exc:
                say(False, f"channel {channel}: {exc.response.get('error')}")
                continue
            name = f"#{info.get('name', '?')} ({channel})"
            if info.get("is_archived"):
                say(False, f"channel {name}: archived")
            elif not info.get("is_member"):
                say(
                    False,
                    f"channel {name}: the bot is not a member; invite it with /invite @{auth.get('user')}",
                )
            else:
                say(True, f"channel {name}: the bot is a member and can post")
    except (aiohttp.ClientError, TimeoutError) as exc:
        say(False, f"Slack API unreachable at {settings.api_url}: {type(exc).__name__}")
    print(f"{problems} problem(s)", file=out)
    return 1 if problems else 0
