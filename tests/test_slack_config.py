"""Slack settings: secrets never shown, channels by ID, routing by namespace, team and kind."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from ground.errors import InputError
from integrations.slack.config import SlackSettings, mention_markup, routing_keys

TOKEN = "xoxb-1111-2222-secretvalue"


def test_secrets_never_appear_in_repr_dump_or_logs(caplog):
    settings = SlackSettings(
        bot_token=TOKEN, signing_secret="signing-secret-value", default_channel="C0PAGES01"
    )
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").info("settings: %s %r", settings, settings)
    for shown in (repr(settings), str(settings), settings.model_dump_json(), caplog.text):
        assert TOKEN not in shown
        assert "signing-secret-value" not in shown
    assert settings.resolved_bot_token().get_secret_value() == TOKEN


def test_secret_from_file_then_environment(tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert SlackSettings(bot_token_file=token_file).resolved_bot_token().get_secret_value() == TOKEN
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-env")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "from-env")
    settings = SlackSettings(default_channel="C0PAGES01")
    assert settings.resolved_bot_token().get_secret_value() == "xoxb-from-env"
    assert settings.resolved_signing_secret().get_secret_value() == "from-env"
    assert settings.enabled


def test_unreadable_or_empty_secret_file_names_the_setting(tmp_path):
    with pytest.raises(InputError, match=r"slack\.bot_token_file: cannot read .*missing"):
        SlackSettings(bot_token_file=tmp_path / "missing").resolved_bot_token()
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(InputError, match=r"slack\.signing_secret_file: .* is empty"):
        SlackSettings(signing_secret_file=empty).resolved_signing_secret()


def test_bad_settings_fail_with_the_field(tmp_path):
    with pytest.raises(ValidationError, match="not a Slack channel ID"):
        SlackSettings(default_channel="#alerts")
    with pytest.raises(ValidationError, match="bot_token or bot_token_file, not both"):
        SlackSettings(bot_token=TOKEN, bot_token_file=tmp_path / "t")
    with pytest.raises(ValidationError, match="at least one of namespaces, teams, kinds"):
        SlackSettings(default_channel="C0PAGES01", routes=[{"channel": "C0SHOP001"}])
    with pytest.raises(ValidationError, match="extra"):
        SlackSettings(default_chanel="C0PAGES01")
    with pytest.raises(ValidationError, match="user group ID"):
        SlackSettings(oncall_usergroup="oncall")
    assert SlackSettings(api_url="http://127.0.0.1:9/api").api_url == "http://127.0.0.1:9/api/"


def test_routes_first_match_wins_with_default_and_notice_fallbacks():
    settings = SlackSettings(
        default_channel="C0PAGES01",
        notice_channel="C0NOTICE1",
        oncall_usergroup="S0ONCALL1",
        routes=[
            {"channel": "C0SHOP001", "namespaces": ["shop"], "oncall_usergroup": "S0SHOPONC"},
            {"channel": "C0PAYTEAM", "teams": ["payments"], "notice_channel": "C0PAYLOW1"},
            {"channel": "C0INFRA01", "kinds": ["node", "zone", "dns"]},
        ],
    )
    shop = settings.destination("shop", "payments", "pod")
    assert (shop.channel, shop.notice_channel, shop.usergroup) == ("C0SHOP001", "C0NOTICE1", "S0SHOPONC")
    pay = settings.destination("web", "payments", "deployment")
    assert (pay.channel, pay.notice_channel, pay.usergroup) == ("C0PAYTEAM", "C0PAYLOW1", "S0ONCALL1")
    assert settings.destination(None, None, "node").channel == "C0INFRA01"
    other = settings.destination("web", None, "pod")
    assert (other.channel, other.notice_channel) == ("C0PAGES01", "C0NOTICE1")
    assert settings.channels() == [
        "C0PAGES01",
        "C0NOTICE1",
        "C0SHOP001",
        "C0PAYTEAM",
        "C0PAYLOW1",
        "C0INFRA01",
    ]


def test_routing_keys_come_from_the_root_entity_then_alert_labels():
    assert routing_keys("pod/default/shop/checkout-1", [{"namespace": "other", "team": "t1"}], "team") == (
        "shop",
        "t1",
        "pod",
    )
    assert routing_keys("node/default/w1", [{}, {"namespace": "monitoring", "owner": "infra"}], "owner") == (
        "monitoring",
        "infra",
        "node",
    )
    assert routing_keys("node/default/w1/kubelet", [], "team") == (None, None, "node-component")


def test_mentions():
    assert mention_markup("S0ONCALL1") == "<!subteam^S0ONCALL1>"
    assert mention_markup("here") == "<!here>"
    assert mention_markup(None) is None
