"""Configuration: defaults start a service, file < environment < flags, unknown keys and wrong
types fail with the key's path (exit 2, no traceback), secrets never shown."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from ground.errors import InputError
from router.service.config import load_settings
from tests.service_harness import ROOT


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.upper().startswith("ALERT_ROUTER_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults_need_no_file():
    settings = load_settings()
    # No credentials: this machine only.
    assert settings.server.listen == "127.0.0.1:9095" and not settings.server.allow_anonymous
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 9095)
    assert settings.exposure_problem() is None
    assert settings.storage.path == Path("data") / "alert-router.sqlite"
    assert settings.rules.files == [] and settings.topology.files == []
    assert settings.notifiers.log.enabled is None and not settings.slack.enabled
    assert settings.storage.synchronous == "FULL"


def test_file_then_environment_then_flags(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        """
server: {listen: "127.0.0.1:8000", max_body_bytes: 1048576}
storage: {data_dir: /var/lib/a, busy_timeout: 2s}
engine: {reopen_window: 300}
notifiers:
  webhooks:
    - {name: pager, url: "https://hooks.example.com/x", timeout: 1m30s}
""",
    )
    settings = load_settings(path)
    assert settings.server.port == 8000 and settings.storage.busy_timeout == timedelta(seconds=2)
    assert settings.notifiers.webhooks[0].timeout == timedelta(seconds=90)
    assert settings.engine.reopen_window == timedelta(minutes=5)
    monkeypatch.setenv("ALERT_ROUTER_SERVER__LISTEN", "[::1]:9000")
    monkeypatch.setenv("ALERT_ROUTER_STORAGE__BUSY_TIMEOUT", "250ms")
    monkeypatch.setenv("ALERT_ROUTER_ALERTMANAGER__URLS", "http://am-0:9093,http://am-1:9093/")
    settings = load_settings(path)
    assert (settings.server.host, settings.server.port) == ("::1", 9000)
    assert settings.server.max_body_bytes == 1048576  # the rest of the section still from the file
    assert settings.storage.busy_timeout == timedelta(milliseconds=250)
    assert settings.alertmanager.urls == ["http://am-0:9093", "http://am-1:9093"]
    settings = load_settings(path, {"server": {"listen": "0.0.0.0:1234"}, "storage": {"data_dir": "/d"}})
    assert settings.server.port == 1234 and settings.storage.path == Path("/d/alert-router.sqlite")
    assert settings.storage.busy_timeout == timedelta(milliseconds=250)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sever: {listen: x}", "sever: unknown key"),
        ("server: {listn: x}", "server.listn: unknown key"),
        ("server: {listen: 'localhost'}", "server.listen"),
        ("storage: {max_batch: many}", "storage.max_batch"),
        ("storage: {busy_timeout: 5 minutes}", "storage.busy_timeout"),
        ("engine: {flap_threshold: [1]}", "engine.flap_threshold"),
        ("notifiers: {webhooks: [{name: a, url: ftp://x}]}", "notifiers.webhooks.0.url"),
        ("auth: {bearer_token: a, bearer_token_file: /x}", "auth"),
        ("slack: {default_channel: '#alerts'}", "slack.default_channel"),
        ("runtime: {drain_timeout: 30s}", "runtime: shutdown_timeout (28s) must be longer"),
        ("- just a list", "must be a mapping"),
        ("server: {listen: [", "config.yaml:1"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path, text, message):
    with pytest.raises(InputError) as caught:
        load_settings(write(tmp_path, text))
    assert message in str(caught.value)


def test_unknown_environment_variable_is_refused(monkeypatch):
    monkeypatch.setenv("ALERT_ROUTER_SERVR__LISTEN", "x")
    with pytest.raises(InputError, match="ALERT_ROUTER_SERVR__LISTEN"):
        load_settings()
    monkeypatch.delenv("ALERT_ROUTER_SERVR__LISTEN")
    monkeypatch.setenv("ALERT_ROUTER_STORAGE__MAX_BATCH", "lots")
    with pytest.raises(InputError, match=r"storage\.max_batch"):
        load_settings()


def test_secrets_come_from_files_and_are_never_shown(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n")
    path = write(
        tmp_path, f"auth: {{bearer_token_file: {token}, basic_auth: {{username: am, password: pw-9}}}}"
    )
    settings = load_settings(path)
    assert settings.auth.resolved_bearer().get_secret_value() == "s3cr3t-token"
    assert settings.auth.resolved_basic()[1].get_secret_value() == "pw-9"
    shown = repr(settings) + str(settings.redacted())
    assert "s3cr3t" not in shown and "pw-9" not in shown
    monkeypatch.setenv("ALERT_ROUTER_AUTH__BEARER_TOKEN", "from-env")
    with pytest.raises(InputError) as caught:
        load_settings(path)  # both the value and the file: refused, without echoing the value
    assert "from-env" not in str(caught.value)
    monkeypatch.delenv("ALERT_ROUTER_AUTH__BEARER_TOKEN")
    missing = write(tmp_path, "auth: {bearer_token_file: /nonexistent/token}")
    with pytest.raises(InputError, match=r"auth\.bearer_token_file"):
        load_settings(missing).auth.resolved_bearer()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "router.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_with_bad_configuration_exits_2_without_traceback(tmp_path):
    path = write(tmp_path, "server:\n  listen: 127.0.0.1:0\n  colour: blue\n")
    result = run_cli("serve", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "server.colour: unknown key" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("serve", "--listen", "nowhere", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert result.returncode == 2 and "server.listen" in result.stderr
    result = run_cli(
        "serve", "--topology", str(tmp_path / "missing.prom"), "--data-dir", str(tmp_path / "d"), cwd=tmp_path
    )
    assert result.returncode == 2 and "missing.prom" in result.stderr and "Traceback" not in result.stderr


def test_second_instance_on_the_same_data_dir_is_refused(tmp_path):
    import fcntl

    data = tmp_path / "d"
    data.mkdir()
    with open(data / "alert-router.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_cli("serve", "--listen", "127.0.0.1:0", "--data-dir", str(data), cwd=tmp_path)
    assert result.returncode == 2 and "in use by another alert-router" in result.stderr


def test_the_documented_examples_are_valid():
    import yaml

    from router.service.webhook import PATH

    settings = load_settings(ROOT / "deploy" / "alert-router.example.yaml")
    assert settings.server.port == 9095 and settings.engine.reopen_window == timedelta(minutes=10)
    receivers = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yaml").read_text())[
        "receivers"
    ]
    urls = [w["url"] for r in receivers for w in r.get("webhook_configs", [])]
    assert urls and all(url.endswith(":9095" + PATH) for url in urls)
    auth = [w["http_config"] for r in receivers for w in r.get("webhook_configs", [])]
    assert {"authorization", "basic_auth"} == {key for a in auth for key in a}


def test_the_default_address_follows_the_credentials(tmp_path):
    token = tmp_path / "token"
    token.write_text("t0k\n")
    with_token = load_settings(write(tmp_path, f"auth: {{bearer_token_file: {token}}}"))
    assert with_token.server.listen == "0.0.0.0:9095" and with_token.exposure_problem() is None
    basic = load_settings(write(tmp_path, "auth: {basic_auth: {username: am, password: pw}}"))
    assert basic.server.listen == "0.0.0.0:9095"
    empty = load_settings(write(tmp_path, "auth: {bearer_token: ''}"))  # no token is no credentials
    assert empty.server.listen == "127.0.0.1:9095"


@pytest.mark.parametrize(
    ("listen", "open_to_the_network"),
    [
        ("0.0.0.0:9095", True),
        ("[::]:9095", True),
        (":9095", True),
        ("10.1.2.3:9095", True),
        ("router.internal:9095", True),
        ("127.0.0.1:9095", False),
        ("127.0.0.2:9095", False),
        ("[::1]:9095", False),
        ("localhost:9095", False),
    ],
)
def test_serving_anonymously_beyond_loopback_needs_the_explicit_setting(listen, open_to_the_network):
    settings = load_settings(None, {"server": {"listen": listen}})
    problem = settings.exposure_problem()
    assert (problem is not None) == open_to_the_network
    if problem:
        assert problem.startswith(f"server.listen: {listen.strip()}") and "server.allow_anonymous" in problem
    allowed = load_settings(None, {"server": {"listen": listen, "allow_anonymous": True}})
    assert allowed.exposure_problem() is None


def test_serve_refuses_to_open_the_api_to_the_network_without_credentials(tmp_path):
    data = tmp_path / "d"
    result = run_cli("serve", "--listen", "0.0.0.0:0", "--data-dir", str(data), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "server.allow_anonymous: true" in result.stderr and "auth.bearer_token_file" in result.stderr
    assert not data.exists()  # refused before anything was opened
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "ALERT_ROUTER_SERVER__ALLOW_ANONYMOUS": "true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "router.cli.main", "serve", "--listen", "0.0.0.0:0", "--data-dir", str(data)],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            if '"listening"' in line:
                break
        assert any("open to the network" in line for line in lines), lines
        assert '"address": "0.0.0.0:' in lines[-1]
    finally:
        process.terminate()
        process.wait(30)


def test_storage_url_names_postgresql_once_and_its_errors_name_the_key(tmp_path):
    assert not load_settings(None, {}).storage.replicated  # SQLite unless a URL is given
    url_file = tmp_path / "url"
    url_file.write_text("postgresql://alert_router:pw@db.example:5432/alert_router\n")
    both = {"storage": {"url": "postgresql://a@b/c", "url_file": str(url_file)}}
    with pytest.raises(InputError, match=r"storage.*set url or url_file, not both"):
        load_settings(None, both)
    with pytest.raises(InputError, match="lease_ttl: at least 1s"):
        load_settings(None, {"storage": {"lease_ttl": "0.5s"}})
    with pytest.raises(InputError, match=r"storage\.url: a PostgreSQL URL"):
        load_settings(None, {"storage": {"url": "mysql://db.example/x"}}).storage.resolved_url()
    settings = load_settings(None, {"storage": {"url_file": str(url_file)}})
    assert settings.storage.replicated
    assert settings.storage.resolved_url() == "postgresql://alert_router:pw@db.example:5432/alert_router"
    assert "pw@" not in str(settings.redacted())


def test_serve_on_an_unreachable_database_says_so_without_a_traceback(tmp_path):
    path = write(tmp_path, "storage:\n  url: postgresql://postgres@127.0.0.1:9/nothing\n  busy_timeout: 1s\n")
    result = run_cli("serve", "--config", str(path), "--listen", "127.0.0.1:0", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "the event log is unavailable: cannot connect to PostgreSQL" in result.stderr
    assert "Traceback" not in result.stderr
