"""Service configuration: one YAML file, `ALERT_ROUTER_*` environment overrides, command-line flags.

Precedence, highest first: flags (`--listen`, `--data-dir`, ...), environment
(`ALERT_ROUTER_SERVER__LISTEN=...`, nested keys joined with `__`), the YAML file, the defaults.
Every option has a default, so an empty configuration starts a working service (SQLite in
`./data`, the bundled rule pack, notifications to the log).

Unknown keys and wrong types are refused at start with the key's path (`InputError`, exit 2).
Secrets are `SecretStr` (never shown by `repr`, a log line or a validation error) and come from
the value itself, a `*_file` (a mounted Kubernetes Secret) or the environment.
"""

from __future__ import annotations

import ipaddress
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from ground.errors import InputError
from ground.secrets import read_secret
from ground.times import format_duration, parse_duration
from integrations.slack.config import SlackSettings
from router.core.settings import EngineSettings

ENV_PREFIX = "ALERT_ROUTER_"
DEFAULT_PORT = 9095
ENV_DELIMITER = "__"


def _duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


# `30s`, `5m`, `1h30m`, `2d` or a number of seconds.
Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _one_of(value: object, path: object, name: str) -> None:
    if value is not None and path is not None:
        raise ValueError(f"set {name} or {name}_file, not both")


def split_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` -> (host, port)."""
    text = listen.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{listen!r} is not HOST:PORT (e.g. 0.0.0.0:9095 or [::]:9095)")
    return host or "0.0.0.0", int(port)


def is_loopback(host: str) -> bool:
    """Only this machine can reach `host` (a name other than localhost may resolve anywhere)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServerSettings(_Section):
    # Where the HTTP server listens: HOST:PORT, [IPv6]:PORT. Unset: 0.0.0.0:9095 (every
    # interface) when credentials are configured (auth:), else 127.0.0.1:9095 (this machine).
    listen: str | None = None
    # Serve without credentials on an address other than loopback: whoever reaches it can post
    # alerts and acknowledge or resolve incidents under any name. Off: such a start is refused.
    allow_anonymous: bool = False
    # Largest accepted request body. A 10,000-alert delivery is about 6 MiB.
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=64 * 1024)
    # A client must send its whole request within this time (slow clients are cut off): the
    # headers from the connection's opening or its previous answer (else it is closed), the
    # body from the headers (else 408). Also how long an idle keep-alive connection stays open.
    read_timeout: Duration = timedelta(seconds=30)
    # Connections open at once; one more is answered 503 and closed.
    max_connections: int = Field(default=512, ge=1, le=100_000)
    # One log line per HTTP request (every delivery is in the event log anyway).
    access_log: bool = False

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is None:
            return None
        split_listen(value)
        return value.strip()

    @property
    def host(self) -> str:
        assert self.listen is not None, "resolved by Settings"
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        assert self.listen is not None, "resolved by Settings"
        return split_listen(self.listen)[1]


class BasicAuth(_Section):
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one_password(self) -> Any:
        _one_of(self.password, self.password_file, "password")
        return self


class AuthSettings(_Section):
    """Credentials Alertmanager's `http_config` sends (`authorization` or `basic_auth`).
    With neither set the API is open (a warning is logged at start)."""

    bearer_token: SecretStr | None = None
    bearer_token_file: Path | None = None
    basic_auth: BasicAuth | None = None

    @model_validator(mode="after")
    def _one_token(self) -> Any:
        _one_of(self.bearer_token, self.bearer_token_file, "bearer_token")
        return self

    @property
    def configured(self) -> bool:
        # As the service reads them: an empty token is none (an empty token file is an error).
        token = self.bearer_token is not None and bool(self.bearer_token.get_secret_value().strip())
        return token or self.bearer_token_file is not None or self.basic_auth is not None

    def resolved_bearer(self) -> SecretStr | None:
        return read_secret(self.bearer_token, self.bearer_token_file, "auth.bearer_token_file")

    def resolved_basic(self) -> tuple[str, SecretStr] | None:
        if self.basic_auth is None:
            return None
        password = read_secret(
            self.basic_auth.password, self.basic_auth.password_file, "auth.basic_auth.password_file"
        )
        return self.basic_auth.username, password or SecretStr("")


class WebhookSettings(_Section):
    """Sanity limits on alert times. A 4xx drops the whole delivery (Alertmanager does not retry
    it), so these only catch values that are certainly garbage."""

    # Times before this are refused (the Go zero time in endsAt still means "not ended").
    earliest: str = "2000-01-01T00:00:00Z"
    # startsAt may be at most this far ahead of our clock (clock skew between hosts).
    max_clock_skew: Duration = timedelta(hours=1)
    # endsAt (when set) may be at most this far ahead of our clock.
    max_ends_ahead: Duration = timedelta(days=366)


class StorageSettings(_Section):
    # Directory of the event log (created if missing). Relative paths are from the working directory.
    data_dir: Path = Path("data")
    database: str = "alert-router.sqlite"
    # How long a write waits for a lock held by another connection before it fails (-> 503).
    busy_timeout: Duration = timedelta(seconds=5)
    # How long a request waits for its delivery to be committed before it answers 503.
    commit_timeout: Duration = timedelta(seconds=10)
    # Most writes grouped into one transaction (group commit).
    max_batch: int = Field(default=2000, ge=1, le=100_000)
    # SQLite `synchronous`: FULL syncs the WAL at every commit; EXTRA also syncs the directory.
    synchronous: Literal["FULL", "EXTRA"] = "FULL"
    # PostgreSQL instead of SQLite (several replicas, docs/deploy.md#several-replicas): a libpq URL
    # `postgresql://user:password@host:5432/db`, or `url_file` (a mounted Secret). Unset: SQLite.
    url: SecretStr | None = None
    url_file: Path | None = None
    # PostgreSQL only: the leader lease. A leader that cannot renew it for `lease_ttl` stops
    # deciding and sending; another replica takes over once it has expired in the database.
    lease_ttl: Duration = timedelta(seconds=5)
    # PostgreSQL only: the same webhook body received again within this window (a retry that
    # reached another replica) is answered 200 and recorded once.
    dedup_window: Duration = timedelta(minutes=1)

    @model_validator(mode="after")
    def _one_url(self) -> Any:
        _one_of(self.url, self.url_file, "url")
        if self.lease_ttl < timedelta(seconds=1):
            raise ValueError("lease_ttl: at least 1s")
        return self

    def resolved_url(self) -> str | None:
        secret = read_secret(self.url, self.url_file, "storage.url_file")
        if secret is None:
            return None
        url = secret.get_secret_value()
        if not url.startswith(("postgresql://", "postgres://")):
            raise InputError("storage.url: a PostgreSQL URL (postgresql://user:password@host:port/database)")
        return url

    @property
    def replicated(self) -> bool:
        """The event log is a shared PostgreSQL database (several replicas, one leader)."""
        return self.url is not None or self.url_file is not None

    @property
    def path(self) -> Path:
        return self.data_dir / self.database


class FilesSettings(_Section):
    files: list[Path] = Field(default_factory=list)


class PrometheusSettings(_Section):
    """Live topology from the Prometheus that scrapes kube-state-metrics, and Prometheus as a
    second witness before paging (docs/prometheus.md). Off while `url` is unset."""

    url: str | None = None
    # Re-discover the graph this often (and on POST /api/v1/topology/refresh).
    refresh_interval: Duration = timedelta(minutes=5)
    retry_interval: Duration = timedelta(seconds=30)
    # A refresh that would drop more than this share of a cluster's nodes or pods is refused.
    max_drop_share: float = Field(default=0.2, ge=0, le=1)
    timeout: Duration = timedelta(seconds=30)
    # Ask Prometheus before paging; each check gives up after witness_timeout.
    witness: bool = True
    witness_timeout: Duration = timedelta(seconds=5)
    # Service calls: traffic within this window makes a call edge (0s: no call graph).
    call_window: Duration = timedelta(hours=1)
    # Rollouts and configuration changes this far back are recorded (0s: none).
    change_window: Duration = timedelta(hours=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value


class AlertmanagerSettings(_Section):
    """Alertmanager API v2: reconcile at start and periodically, silences from Slack. Give every
    replica of an HA setup: alerts are not replicated between them, so reconcile takes the union."""

    # A list, or in the environment a comma-separated string (or a JSON list).
    urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Only alerts routed to receivers matching this regex (Alertmanager's `receiver` filter).
    receiver: str | None = None
    timeout: Duration = timedelta(seconds=10)
    reconcile: bool = True
    # ... and again this often while running (0: only at start). Alertmanager sends no webhook
    # when a silenced alert resolves: this is how the router learns it ended.
    reconcile_interval: Duration = timedelta(minutes=1)
    # Alerts the router believes firing but Alertmanager has not are resolved only when every
    # replica answered and has been up this long (a restarted Alertmanager forgets its alerts
    # until Prometheus re-sends them).
    min_uptime: Duration = timedelta(minutes=10)
    bearer_token: SecretStr | None = None
    bearer_token_file: Path | None = None

    @field_validator("urls", mode="before")
    @classmethod
    def _urls(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [u for u in text.split(",") if u.strip()]
        if isinstance(value, list):
            for url in value:
                if not isinstance(url, str) or not url.strip().startswith(("http://", "https://")):
                    raise ValueError(f"{url!r} is not an http(s) URL")
            return [u.strip().rstrip("/") for u in value]
        return value

    @model_validator(mode="after")
    def _one_token(self) -> Any:
        _one_of(self.bearer_token, self.bearer_token_file, "bearer_token")
        return self

    def resolved_bearer(self) -> SecretStr | None:
        return read_secret(self.bearer_token, self.bearer_token_file, "alertmanager.bearer_token_file")


class LogNotifierSettings(_Section):
    # None: on when no other notifier is configured.
    enabled: bool | None = None
    # Also append each notification (contract JSON, one line each) to this file.
    path: Path | None = None


class WebhookNotifierSettings(_Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str
    # HMAC-SHA256 key of X-Alert-Router-Signature.
    secret: SecretStr | None = None
    secret_file: Path | None = None
    timeout: Duration = timedelta(seconds=10)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("url must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> Any:
        _one_of(self.secret, self.secret_file, "secret")
        return self


class RetrySettings(_Section):
    """Outbox retries: exponential backoff with ±50 % jitter."""

    initial: Duration = timedelta(seconds=1)
    maximum: Duration = timedelta(minutes=5)
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    # 0 retries until it succeeds (a page must not be dropped); errors a retry cannot cure
    # (a webhook's 4xx, Slack's channel_not_found) fail at once.
    max_attempts: int = Field(default=0, ge=0)
    # Notifications in flight per notifier (one at a time per incident, in order).
    concurrency: int = Field(default=4, ge=1, le=64)


class NotifierSettings(_Section):
    log: LogNotifierSettings = Field(default_factory=LogNotifierSettings)
    webhooks: list[WebhookNotifierSettings] = Field(default_factory=list)
    retry: RetrySettings = Field(default_factory=RetrySettings)

    @field_validator("webhooks")
    @classmethod
    def _unique(cls, value: list[WebhookNotifierSettings]) -> list[WebhookNotifierSettings]:
        names = [w.name for w in value]
        if len(names) != len(set(names)) or {"log", "slack"} & set(names):
            raise ValueError("webhook names must be unique and not 'log' or 'slack'")
        return value


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"


class RuntimeSettings(_Section):
    # How often the engine's timers are checked (grace periods, heartbeats).
    tick_interval: Duration = timedelta(seconds=1)
    # On SIGTERM: how long the outbox may take to drain before the process exits.
    drain_timeout: Duration = timedelta(seconds=10)
    # /readyz fails while this many committed inputs wait for the engine.
    max_backlog: int = Field(default=10_000, ge=1)
    # A decision (event or notification) the event log refuses for its own reason is written
    # apart from the others, tried this often (1s, 2s, 4s, ... apart; /readyz fails meanwhile),
    # then dropped and logged: one bad row never holds up the decisions that follow.
    decision_write_attempts: int = Field(default=5, ge=1, le=20)
    # On SIGTERM: the whole shutdown's bound (requests in flight, last commits, drain, exit).
    # Past it the process logs every thread's stack and exits 70, before Kubernetes' SIGKILL at
    # terminationGracePeriodSeconds (30 s by default) would end it without a word.
    shutdown_timeout: Duration = timedelta(seconds=28)

    @model_validator(mode="after")
    def _shutdown_after_drain(self) -> Any:
        if self.shutdown_timeout <= self.drain_timeout:
            raise ValueError(
                f"shutdown_timeout ({format_duration(self.shutdown_timeout)}) must be longer than "
                f"drain_timeout ({format_duration(self.drain_timeout)})"
            )
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        case_sensitive=False,
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    topology: FilesSettings = Field(default_factory=FilesSettings)
    rules: FilesSettings = Field(default_factory=FilesSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    alertmanager: AlertmanagerSettings = Field(default_factory=AlertmanagerSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    notifiers: NotifierSettings = Field(default_factory=NotifierSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Flags (passed as init values) > environment > the YAML file (see load_settings).
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @model_validator(mode="after")
    def _default_listen(self) -> Any:
        if self.server.listen is None:
            self.server.listen = f"{'0.0.0.0' if self.auth.configured else '127.0.0.1'}:{DEFAULT_PORT}"
        return self

    def exposure_problem(self) -> str | None:
        """Why serving on these settings would open the API to the network, or None."""
        server = self.server
        if self.auth.configured or server.allow_anonymous or is_loopback(server.host):
            return None
        return (
            f"server.listen: {server.listen} would let anyone who reaches it post alerts and "
            "acknowledge or resolve incidents under any name: configure credentials "
            "(auth.bearer_token_file or auth.basic_auth), listen on 127.0.0.1, or set "
            "server.allow_anonymous: true"
        )

    def redacted(self) -> dict[str, Any]:
        """The effective configuration for the start log line: secrets show as '**********'."""
        return self.model_dump(mode="json")


class _YamlSource(PydanticBaseSettingsSource):
    """The parsed YAML document, handed over by load_settings through a context variable."""

    document: dict[str, Any] = {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.document.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.document)


def read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise InputError(f"{path}{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: the configuration must be a mapping of sections (server:, storage:, ...)")
    return data


def _unknown_env_keys(model: type[BaseModel], environ: dict[str, str]) -> list[str]:
    """ALERT_ROUTER_* variables that name no option (pydantic-settings ignores them silently)."""
    bad = []
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        parts = upper[len(ENV_PREFIX) :].lower().split(ENV_DELIMITER)
        current: type[BaseModel] | None = model
        for part in parts:
            fields = current.model_fields if current is not None else {}
            if part not in fields:
                bad.append(name)
                break
            annotation = fields[part].annotation
            current = (
                annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
            )
            if current is None:
                break  # a leaf (or a list/dict given as JSON): pydantic checks the rest
    return bad


def _format_errors(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        message = message.removeprefix("Value error, ")  # a validator's own words say enough
        lines.append(f"{source}: {location}: {message}")
    return "\n".join(lines)


def load_settings(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Defaults < YAML file < environment < overrides (flags). InputError names the key."""
    document = read_yaml(path) if path is not None else {}
    unknown = _unknown_env_keys(Settings, dict(os.environ))
    if unknown:
        raise InputError(f"environment: {', '.join(sorted(unknown))}: unknown option")
    source = f"{path}" if path else "configuration"
    _YamlSource.document = document
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        raise InputError(
            _format_errors(exc, f"{source} (file, {ENV_PREFIX}* environment or flags)")
        ) from None
    except SettingsError as exc:
        raise InputError(f"environment: {exc}") from None
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from None
    finally:
        _YamlSource.document = {}
