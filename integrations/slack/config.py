"""Slack configuration: the `slack:` section of the service configuration.

Secrets (bot token, signing secret) are `SecretStr`, so neither `repr()`, a log line nor a
validation error ever shows them. Each comes, in this order, from the setting itself, from a
file (`*_file`, e.g. a mounted Kubernetes secret), or from the environment (`SLACK_BOT_TOKEN`,
`SLACK_SIGNING_SECRET`).

Channels are Slack channel IDs (`C0123ABCD`), not names: names change, `chat.update` only takes
IDs, and `alert-router slack check` verifies membership by ID.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ground.errors import InputError
from ground.secrets import read_secret
from topology import entities

CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")
USERGROUP_ID = re.compile(r"^S[A-Z0-9]{6,}$")
SPECIAL_MENTIONS = frozenset({"here", "channel"})


def _check_channel(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not CHANNEL_ID.match(value):
        raise ValueError(
            f"{value!r} is not a Slack channel ID: use the ID (C0123ABCD) shown at the bottom of "
            "the channel's details, not its name"
        )
    return value


def _check_usergroup(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lstrip("!@")
    if value not in SPECIAL_MENTIONS and not USERGROUP_ID.match(value):
        raise ValueError(f"{value!r} is not a Slack user group ID (S0123ABCD) nor 'here'/'channel'")
    return value


def mention_markup(usergroup: str | None) -> str | None:
    """Slack markup that notifies a user group (`<!subteam^S…>`) or `@here`/`@channel`."""
    if not usergroup:
        return None
    if usergroup in SPECIAL_MENTIONS:
        return f"<!{usergroup}>"
    return f"<!subteam^{usergroup}>"


class SlackRoute(BaseModel):
    """Send incidents whose root matches every given criterion to `channel` (first match wins)."""

    model_config = ConfigDict(extra="forbid")

    channel: str
    namespaces: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)
    kinds: list[str] = Field(default_factory=list)
    # Optional per-route overrides of the global settings.
    notice_channel: str | None = None
    oncall_usergroup: str | None = None

    _channels = field_validator("channel", "notice_channel")(lambda cls, v: _check_channel(v))
    _usergroup = field_validator("oncall_usergroup")(lambda cls, v: _check_usergroup(v))

    @model_validator(mode="after")
    def _has_criterion(self) -> SlackRoute:
        if not (self.namespaces or self.teams or self.kinds):
            raise ValueError("a route needs at least one of namespaces, teams, kinds")
        return self

    def matches(self, namespace: str | None, team: str | None, kind: str) -> bool:
        if self.namespaces and namespace not in self.namespaces:
            return False
        if self.teams and team not in self.teams:
            return False
        return not self.kinds or kind in self.kinds


class Destination(BaseModel):
    """Where one incident's messages go, and whom a page wakes."""

    channel: str
    notice_channel: str
    usergroup: str | None


class SlackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_token: SecretStr | None = None
    bot_token_file: Path | None = None
    signing_secret: SecretStr | None = None
    signing_secret_file: Path | None = None
    # Slack Web API base; point it at a stand-in for tests. Must end with "/" (added if missing).
    api_url: str = "https://slack.com/api/"
    # Used to build links to other incidents' messages (merges): https://<workspace>.slack.com
    workspace_url: str = "https://slack.com"
    default_channel: str | None = None
    # Low-urgency channel for notices (auto-recovered incidents); default: the routed channel.
    notice_channel: str | None = None
    routes: list[SlackRoute] = Field(default_factory=list)
    # Alert label naming the owning team (routes by `teams`).
    team_label: str = "team"
    # Mentioned when an incident of a severity in `mention_severities` pages.
    oncall_usergroup: str | None = None
    mention_severities: list[str] = Field(default_factory=lambda: ["critical"])
    # Alertmanager UI base URL for links in messages (optional, e.g. https://alertmanager.example.com).
    alertmanager_url: str | None = None
    # HTTP timeout per Slack call (seconds) and retries per kind of failure (slack-sdk handlers).
    timeout: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    # Symptoms listed one per line in a thread reply before the rest is summarised.
    symptoms_listed: int = Field(default=30, ge=1, le=200)
    # Where the interactivity endpoint may post ephemeral replies (Slack's response_url).
    response_url_prefixes: list[str] = Field(default_factory=lambda: ["https://hooks.slack.com/"])

    _channels = field_validator("default_channel", "notice_channel")(lambda cls, v: _check_channel(v))
    _usergroup = field_validator("oncall_usergroup")(lambda cls, v: _check_usergroup(v))

    @field_validator("api_url")
    @classmethod
    def _slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("api_url must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _one_source(self) -> SlackSettings:
        if self.bot_token is not None and self.bot_token_file is not None:
            raise ValueError("set bot_token or bot_token_file, not both")
        if self.signing_secret is not None and self.signing_secret_file is not None:
            raise ValueError("set signing_secret or signing_secret_file, not both")
        if self.routes and self.default_channel is None:
            raise ValueError("routes need a default_channel for incidents no route matches")
        return self

    # ------------------------------------------------------------------ secrets

    def resolved_bot_token(self) -> SecretStr | None:
        return _secret(self.bot_token, self.bot_token_file, "SLACK_BOT_TOKEN", "slack.bot_token_file")

    def resolved_signing_secret(self) -> SecretStr | None:
        return _secret(
            self.signing_secret, self.signing_secret_file, "SLACK_SIGNING_SECRET", "slack.signing_secret_file"
        )

    @property
    def enabled(self) -> bool:
        """Slack is on when there is somewhere to post and a token to post with."""
        return self.default_channel is not None and self.resolved_bot_token() is not None

    # ------------------------------------------------------------------ routing

    def destination(self, namespace: str | None, team: str | None, kind: str) -> Destination:
        if self.default_channel is None:
            raise InputError("slack.default_channel: required to send to Slack")
        for route in self.routes:
            if route.matches(namespace, team, kind):
                return Destination(
                    channel=route.channel,
                    notice_channel=route.notice_channel or self.notice_channel or route.channel,
                    usergroup=route.oncall_usergroup or self.oncall_usergroup,
                )
        return Destination(
            channel=self.default_channel,
            notice_channel=self.notice_channel or self.default_channel,
            usergroup=self.oncall_usergroup,
        )

    def channels(self) -> list[str]:
        """Every configured channel, once, in configuration order (for `slack check`)."""
        found = [self.default_channel, self.notice_channel]
        for route in self.routes:
            found += [route.channel, route.notice_channel]
        return list(dict.fromkeys(c for c in found if c))


def routing_keys(
    root_entity: str, labels: list[dict[str, str]], team_label: str
) -> tuple[str | None, str | None, str]:
    """(namespace, team, kind) of an incident: from its root entity, then its alerts' labels."""
    kind = entities.kind_of(root_entity)
    namespace: str | None = None
    parts = root_entity.split("/")
    if kind in entities.NAMESPACED_KINDS and len(parts) >= 4:
        namespace = parts[2]
    team: str | None = None
    for alert_labels in labels:
        if namespace is None and alert_labels.get("namespace"):
            namespace = alert_labels["namespace"]
        if team is None and alert_labels.get(team_label):
            team = alert_labels[team_label]
    return namespace, team, kind


def _secret(value: SecretStr | None, path: Path | None, env: str, field: str) -> SecretStr | None:
    """The setting, else its file, else the environment variable Slack's own tools use."""
    found = read_secret(value, path, field)
    if found is not None or value is not None or path is not None:
        return found
    from_env = os.environ.get(env, "").strip()
    return SecretStr(from_env) if from_env else None
