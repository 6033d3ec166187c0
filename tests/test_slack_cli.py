"""`alert-router slack check` against the stand-in Slack: token, channels, membership, scopes;
and that it posts nothing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from router.cli.main import main
from tests.slack_standin import TOKEN, SlackStandIn


@contextmanager
def standin_thread() -> Iterator[SlackStandIn]:
    """The stand-in on its own loop, so that the CLI can run its own asyncio.run()."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    standin = SlackStandIn({"C0PAGES01": "alerts", "C0NOTICE1": "alerts-low", "C0SHOP001": "shop-oncall"})
    asyncio.run_coroutine_threadsafe(standin.start(), loop).result(10)
    try:
        yield standin
    finally:
        asyncio.run_coroutine_threadsafe(standin.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def write_config(tmp_path, url: str, token: str = TOKEN) -> str:
    token_file = tmp_path / "slack-token"
    token_file.write_text(token)
    path = tmp_path / "alert-router.yaml"
    path.write_text(
        f"""
slack:
  bot_token_file: {token_file}
  signing_secret: not-empty
  api_url: {url}
  default_channel: C0PAGES01
  notice_channel: C0NOTICE1
  routes:
    - channel: C0SHOP001
      namespaces: [shop]
"""
    )
    return str(path)


def test_check_passes_and_posts_nothing(tmp_path, capsys):
    with standin_thread() as slack:
        code = main(["slack", "check", "--config", write_config(tmp_path, slack.url)])
        calls = [c.method for c in slack.calls]
    out = capsys.readouterr().out
    assert code == 0, out
    assert calls == ["auth.test", "conversations.info", "conversations.info", "conversations.info"]
    assert "ok   bot token: alert-router in workspace Stand-in" in out
    assert "ok   channel #shop-oncall (C0SHOP001): the bot is a member and can post" in out
    assert TOKEN not in out
    assert out.strip().endswith("0 problem(s)")


def test_check_reports_each_problem(tmp_path, capsys):
    with standin_thread() as slack:
        slack.channels["C0NOTICE1"].is_member = False
        slack.channels["C0SHOP001"].is_archived = True
        del slack.channels["C0PAGES01"]
        slack.scopes.discard("channels:history")
        slack.scopes.discard("groups:history")
        code = main(["slack", "check", "--config", write_config(tmp_path, slack.url)])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL channel C0PAGES01: channel_not_found" in out
    assert (
        "FAIL channel #alerts-low (C0NOTICE1): the bot is not a member; invite it with /invite @alert-router"
        in out
    )
    assert "FAIL channel #shop-oncall (C0SHOP001): archived" in out
    assert "warn scope channels:history or groups:history missing" in out
    assert out.strip().endswith("3 problem(s)")


def test_check_with_a_bad_token_or_no_slack(tmp_path, capsys):
    with standin_thread() as slack:
        assert main(["slack", "check", "--config", write_config(tmp_path, slack.url, "xoxb-revoked")]) == 1
    assert "FAIL bot token: rejected by Slack (invalid_auth)" in capsys.readouterr().out
    down = write_config(tmp_path, "http://127.0.0.1:9/api/")
    assert main(["slack", "check", "--config", down]) == 1
    assert "Slack API unreachable" in capsys.readouterr().out


def test_bad_configuration_exits_2_naming_the_field(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    path = tmp_path / "bad.yaml"
    path.write_text("slack:\n  default_channel: '#alerts'\n")
    assert main(["slack", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "slack.default_channel" in err and "not a Slack channel ID" in err


@pytest.mark.parametrize("argv", [["slack"], ["slack", "nope"]])
def test_slack_needs_a_subcommand(argv):
    with pytest.raises(SystemExit):
        main(argv)
