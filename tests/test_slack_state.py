"""The incident -> Slack message mapping survives a restart; post intents are exact."""

from __future__ import annotations

import sqlite3

import pytest

from integrations.slack.state import MessageRecord, SlackState


def test_messages_and_posts_survive_reopening(tmp_path):
    path = tmp_path / "data" / "slack.sqlite"
    state = SlackState(path)
    record = MessageRecord("inc-000001", "C0PAGES01", None, "page", {"severity": "warning"})
    state.save_message(record, now=1.0)
    state.begin_post("inc-000001:0:page", "parent", "inc-000001", "C0PAGES01", now=2.0)
    intent = state.post("inc-000001:0:page", "parent")
    assert intent is not None and intent.ts is None and intent.started_at == 2.0
    record.ts = "1760000001.000001"
    record.state["severity"] = "critical"
    state.finish_post("inc-000001:0:page", "parent", "C0PAGES01", record.ts, record, now=3.0)
    state.close()

    reopened = SlackState(path)
    again = reopened.message("inc-000001")
    assert again == MessageRecord(
        "inc-000001", "C0PAGES01", "1760000001.000001", "page", {"severity": "critical"}
    )
    assert reopened.post("inc-000001:0:page", "parent").ts == "1760000001.000001"
    assert reopened.message("inc-999999") is None
    reopened.close()


def test_abandon_forgets_only_unfinished_intents(tmp_path):
    state = SlackState(tmp_path / "s.sqlite")
    state.begin_post("k1", "reply", "inc-000001", "C0PAGES01", now=1.0)
    state.abandon_post("k1", "reply")
    assert state.post("k1", "reply") is None
    state.begin_post("k2", "reply", "inc-000001", "C0PAGES01", now=1.0)
    state.finish_post("k2", "reply", "C0PAGES01", "1.000001", None, now=2.0)
    state.abandon_post("k2", "reply")
    assert state.post("k2", "reply").ts == "1.000001"
    assert state.prune(before=5.0) == 1
    assert state.post("k2", "reply") is None
    state.close()


def test_a_failed_transaction_leaves_nothing_half_written(tmp_path):
    state = SlackState(tmp_path / "s.sqlite")
    state.begin_post("k1", "parent", "inc-000001", "C0PAGES01", now=1.0)
    bad = MessageRecord("inc-000001", "C0PAGES01", "1.000001", "page", {"unserialisable": object()})
    with pytest.raises(TypeError):
        state.finish_post("k1", "parent", "C0PAGES01", "1.000001", bad, now=2.0)
    assert state.post("k1", "parent").ts is None  # the ts update was rolled back with the message
    assert state.message("inc-000001") is None
    state.close()
    tables = {r[0] for r in sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT name FROM sqlite_master")}
    assert {"slack_messages", "slack_posts", "slack_schema"} <= tables
