"""The Slack notifier against the stand-in Slack (real HTTP on loopback): which calls each
notification makes, restarts, outages, lost answers, rate limits, permanent errors.

The engine-driven scenarios (node-down storm, auto-recovery, merge) are in
test_slack_scenarios.py; here the notifications are written by hand to reach each edge.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from integrations.slack.config import SlackSettings
from integrations.slack.notifier import SlackNotifier, SlackSendError
from tests.slack_standin import TOKEN, SlackStandIn
from tests.test_slack_blocks import texts

INC = "inc-3f2a9c"
ROOT = {
    "entity": "node/default/worker-1",
    "alert": {
        "fingerprint": "1ebbdcf9e40cf5d3",
        "alertname": "KubeNodeNotReady",
        "labels": {"alertname": "KubeNodeNotReady", "node": "worker-1", "severity": "critical"},
    },
}


def note(
    action: str, seq: int, minute: int, *, symptoms: int = 0, start: int = 0, **extra
) -> tuple[dict, str]:
    body = {
        "at": f"2026-10-06T02:{minute:02d}:00.000Z",
        "action": action,
        "incident": extra.pop("incident", INC),
        "severity": extra.pop("severity", "critical"),
        "root": extra.pop("root", ROOT),
        "symptoms": [
            {
                "fingerprint": f"fp{i:05d}",
                "alertname": "KubePodNotReady",
                "entity": f"pod/default/shop/checkout-{i}",
                "path": [f"pod/default/shop/checkout-{i}", "node/default/worker-1"],
            }
            for i in range(start, start + symptoms)
        ],
        "reason": extra.pop("reason", f"{action} reason"),
    }
    body.update(extra)
    return body, f"{body['incident']}:{seq}:{action}"


@pytest.fixture
async def slack():
    standin = SlackStandIn({"C0PAGES01": "alerts", "C0NOTICE1": "alerts-low", "C0SHOP001": "shop-oncall"})
    await standin.start()
    yield standin
    await standin.stop()


@pytest.fixture
async def make(slack, tmp_path):
    made: list[SlackNotifier] = []

    def factory(state=None, **overrides) -> SlackNotifier:
        values = {
            "bot_token": TOKEN,
            "api_url": slack.url,
            "default_channel": "C0PAGES01",
            "notice_channel": "C0NOTICE1",
            "oncall_usergroup": "S0ONCALL1",
            "max_retries": 1,
            **overrides,
        }
        where = tmp_path / "slack.sqlite" if state is None else state
        notifier = SlackNotifier(SlackSettings(**values), where, owns_state=True)
        made.append(notifier)
        return notifier

    yield factory
    for notifier in made:
        await notifier.close()


def methods(slack: SlackStandIn) -> list[tuple[str, int]]:
    return [(c.method, c.status if c.ok or c.status != 200 else c.error) for c in slack.calls]


async def test_restart_updates_the_same_message(slack, make):
    first = make()
    await first.send(*note("page", 0, 5, symptoms=2))
    await first.close()
    second = make()  # a new process: only the state file is shared
    await second.send(*note("update", 1, 7, symptoms=1, start=10, reason="1 more symptoms attached (1 pod)"))
    await second.close()
    ts = slack.top_level("C0PAGES01")[0]["ts"]
    assert slack.trace() == [
        ("post", "C0PAGES01", ts),
        ("reply", "C0PAGES01", ts),
        ("update", "C0PAGES01", ts),
        ("reply", "C0PAGES01", ts),
    ]
    assert len(slack.top_level("C0PAGES01")) == 1
    assert "*Symptoms*\n3 (3 pod)" in texts(slack.message("C0PAGES01", ts)["blocks"])


async def test_critical_page_mentions_on_call_once_and_warning_escalation_mentions_in_thread(slack, make):
    notifier = make()
    await notifier.send(*note("page", 0, 5))
    post = slack.ok_calls("chat.postMessage")[0]
    assert post.args["text"].startswith("<!subteam^S0ONCALL1> ")
    await notifier.send(*note("update", 1, 6, reason="acknowledged by alice"))
    assert "<!subteam" not in slack.ok_calls("chat.postMessage")[-1].args["text"]

    other = "inc-0a1b2c"
    await notifier.send(*note("page", 0, 5, incident=other, severity="warning"))
    assert "<!subteam" not in slack.ok_calls("chat.postMessage")[-1].args["text"]
    await notifier.send(
        *note("update", 1, 9, incident=other, severity="critical", reason="severity raised to critical")
    )
    reply = slack.ok_calls("chat.postMessage")[-1]
    assert reply.args["thread_ts"] and reply.args["text"].startswith("<!subteam^S0ONCALL1> severity raised")
    await notifier.send(
        *note("update", 2, 10, incident=other, severity="critical", reason="acknowledged by bob")
    )
    assert "<!subteam" not in slack.ok_calls("chat.postMessage")[-1].args["text"]  # woken once
    await notifier.close()


async def test_notice_goes_to_the_notice_channel_without_mention_or_buttons(slack, make):
    notifier = make()
    await notifier.send(
        *note("notice", 0, 12, symptoms=2, reason="recovered by itself after 3m, within its grace")
    )
    await notifier.close()
    assert [c.method for c in slack.calls] == ["chat.postMessage"]
    message = slack.top_level("C0NOTICE1")[0]
    assert "<!" not in message["text"]
    assert not any(b["type"] == "actions" for b in message["blocks"])
    assert slack.top_level("C0PAGES01") == []


async def test_routing_by_namespace_sends_the_page_to_the_team_channel(slack, make):
    notifier = make(routes=[{"channel": "C0SHOP001", "namespaces": ["shop"]}])
    root = {"entity": "deployment/default/shop/checkout", "alert": None}
    await notifier.send(*note("page", 0, 5, root=root))
    await notifier.close()
    assert [t[:2] for t in slack.trace()] == [("post", "C0SHOP001")]


async def test_outage_503_then_recovery_posts_once(slack, make):
    notifier = make()
    await slack.outage("503")
    with pytest.raises(SlackSendError) as raised:
        await notifier.send(*note("page", 0, 5))
    assert raised.value.retryable
    await slack.recover()
    await notifier.send(*note("page", 0, 5))  # the outbox's retry: same notification, same key
    await notifier.send(*note("page", 0, 5))  # and once more: already delivered, nothing posted
    await notifier.close()
    # A 503 leaves it open whether Slack posted: the retry looks first, then posts.
    assert methods(slack) == [
        ("chat.postMessage", 503),
        ("conversations.history", 200),
        ("chat.postMessage", 200),
    ]
    assert len(slack.top_level("C0PAGES01")) == 1


async def test_connection_refused_then_recovery_posts_once_without_lookup(slack, make):
    notifier = make()
    await slack.outage("refuse")
    with pytest.raises(SlackSendError) as raised:
        await notifier.send(*note("page", 0, 5))
    assert raised.value.retryable
    assert slack.calls == []
    await slack.recover()
    await notifier.send(*note("page", 0, 5))
    await notifier.close()
    assert methods(slack) == [("chat.postMessage", 200)]


async def test_post_done_but_answer_lost_is_not_posted_twice(slack, make, tmp_path):
    notifier = make()
    slack.lose_responses("chat.postMessage", 1)
    with pytest.raises(SlackSendError):
        await notifier.send(*note("page", 0, 5, symptoms=3))
    await notifier.close()
    restarted = make()  # even across a restart: the intent is in the state file
    await restarted.send(*note("page", 0, 5, symptoms=3))
    await restarted.close()
    ts = slack.top_level("C0PAGES01")[0]["ts"]
    assert len(slack.top_level("C0PAGES01")) == 1
    assert [c.method for c in slack.calls] == [
        "chat.postMessage",  # posted; the answer was lost
        "conversations.history",  # found by its metadata
        "chat.postMessage",  # the thread reply
    ]
    assert slack.trace() == [("post", "C0PAGES01", ts), ("reply", "C0PAGES01", ts)]


async def test_thread_reply_done_but_answer_lost_is_not_replied_twice(slack, make):
    notifier = make()
    await notifier.send(*note("page", 0, 5))
    slack.lose_responses("chat.postMessage", 1)
    update = note("update", 1, 6, symptoms=2, reason="2 more symptoms attached (2 pod)")
    with pytest.raises(SlackSendError):
        await notifier.send(*update)
    await notifier.send(*update)
    await notifier.close()
    ts = slack.top_level("C0PAGES01")[0]["ts"]
    assert len(slack.replies("C0PAGES01", ts)) == 1
    assert [c.method for c in slack.calls][-2:] == ["chat.update", "conversations.replies"]


async def test_without_history_scope_a_lost_answer_is_the_documented_duplicate(slack, make, caplog):
    slack.scopes.discard("channels:history")
    notifier = make()
    slack.lose_responses("chat.postMessage", 1)
    with pytest.raises(SlackSendError):
        await notifier.send(*note("page", 0, 5))
    with caplog.at_level(logging.WARNING, logger="alert_router.slack"):
        await notifier.send(*note("page", 0, 5))
    await notifier.close()
    assert len(slack.top_level("C0PAGES01")) == 2
    assert "posting again, which may duplicate it" in caplog.text


async def test_rate_limit_is_waited_out_by_the_retry_handler(slack, make):
    notifier = make(max_retries=2)
    slack.rate_limit(2, retry_after=1, method="chat.postMessage")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await notifier.send(*note("page", 0, 5))
    await notifier.close()
    assert methods(slack) == [("chat.postMessage", 429), ("chat.postMessage", 429), ("chat.postMessage", 200)]
    assert loop.time() - started >= 2.0  # Retry-After: 1, twice
    assert len(slack.top_level("C0PAGES01")) == 1


async def test_rate_limit_beyond_retries_raises_for_the_outbox(slack, make):
    notifier = make(max_retries=1)
    slack.rate_limit(3, retry_after=0, method="chat.postMessage")
    with pytest.raises(SlackSendError, match="ratelimited") as raised:
        await notifier.send(*note("page", 0, 5))
    assert raised.value.retryable
    await notifier.send(*note("page", 0, 5))
    await notifier.close()
    assert [c.status for c in slack.calls] == [429, 429, 429, 200]  # 429 posted nothing: no lookup


async def test_configuration_errors_are_not_retryable(slack, make):
    slack.channels["C0PAGES01"].is_member = False
    notifier = make()
    with pytest.raises(SlackSendError, match="not_in_channel") as raised:
        await notifier.send(*note("page", 0, 5))
    assert not raised.value.retryable
    await notifier.close()
    bad = make(bot_token="xoxb-wrong")
    with pytest.raises(SlackSendError, match="invalid_auth") as raised:
        await bad.send(*note("page", 0, 5, incident="inc-0a1b2c"))
    assert not raised.value.retryable
    await bad.close()


async def test_deleted_message_is_posted_again(slack, make):
    notifier = make()
    await notifier.send(*note("page", 0, 5))
    slack.channels["C0PAGES01"].messages.clear()  # someone deleted it
    await notifier.send(*note("resolve", 1, 30, reason="root and all symptoms resolved; lasted 25m"))
    await notifier.close()
    assert [(c.method, c.error) for c in slack.calls] == [
        ("chat.postMessage", None),
        ("chat.update", "message_not_found"),
        ("chat.postMessage", None),
    ]
    assert "RESOLVED" in texts(slack.top_level("C0PAGES01")[0]["blocks"])


async def test_update_before_page_creates_the_message_and_the_late_page_updates_it(slack, make):
    notifier = make()
    await notifier.send(*note("update", 1, 6, symptoms=1, start=5, reason="1 more symptoms attached (1 pod)"))
    await notifier.send(*note("page", 0, 5, symptoms=2))
    await notifier.close()
    ts = slack.top_level("C0PAGES01")[0]["ts"]
    assert slack.trace() == [
        ("post", "C0PAGES01", ts),
        ("reply", "C0PAGES01", ts),
        ("update", "C0PAGES01", ts),
        ("reply", "C0PAGES01", ts),
    ]


async def test_concurrent_sends_for_one_incident_post_one_message(slack, make):
    notifier = make()
    await asyncio.gather(
        notifier.send(*note("page", 0, 5, symptoms=2)),
        notifier.send(*note("update", 1, 6, symptoms=1, start=5)),
        notifier.send(*note("update", 2, 7, reason="acknowledged by alice")),
    )
    await notifier.close()
    assert len(slack.top_level("C0PAGES01")) == 1
    assert [t[0] for t in slack.trace()].count("post") == 1


async def test_notice_that_goes_on_to_page_points_at_the_page(slack, make):
    notifier = make()
    await notifier.send(
        *note("notice", 0, 5, severity="warning", reason="low urgency: still firing after 5m")
    )
    await notifier.send(*note("page", 1, 9, reason="paged: a page-urgency alert joined"))
    await notifier.close()
    notice_ts = slack.top_level("C0NOTICE1")[0]["ts"]
    page_ts = slack.top_level("C0PAGES01")[0]["ts"]
    assert slack.trace() == [
        ("post", "C0NOTICE1", notice_ts),
        ("post", "C0PAGES01", page_ts),
        ("update", "C0NOTICE1", notice_ts),
    ]
    pointer = texts(slack.message("C0NOTICE1", notice_ts)["blocks"])
    assert "ESCALATED" in pointer and f"archives/C0PAGES01/p{page_ts.replace('.', '')}" in pointer


async def test_a_500_symptom_page_is_accepted(slack, make):
    notifier = make()
    await notifier.send(*note("page", 0, 5, symptoms=500))
    await notifier.send(*note("update", 1, 6, symptoms=500, start=500))
    await notifier.close()
    assert all(c.ok for c in slack.calls), [c.error for c in slack.calls]
    ts = slack.top_level("C0PAGES01")[0]["ts"]
    assert "… and 470 more (470 pod)" in texts(slack.replies("C0PAGES01", ts)[0]["blocks"])


async def test_a_replica_taking_over_on_the_shared_database_edits_the_leaders_message(slack, make):
    # Several replicas keep the Slack message index in the shared PostgreSQL database (wiring):
    # the replica that takes over edits the message the old leader posted, in the same thread.
    from integrations.slack.state import SlackState
    from router.service.pgstore import PostgresBackend
    from tests.pgharness import database, url_of

    with database() as name:
        backend = PostgresBackend(url_of(name))
        leader = make(state=SlackState(backend.connect()))
        await leader.send(*note("page", 0, 5, symptoms=2))
        await leader.close()
        successor = make(state=SlackState(backend.connect()))  # another pod: no file in common
        await successor.send(
            *note("update", 1, 7, symptoms=1, start=10, reason="1 more symptoms attached (1 pod)")
        )
        await successor.send(*note("resolve", 2, 9))
        await successor.close()
    ts = slack.top_level("C0PAGES01")[0]["ts"]
    assert len(slack.top_level("C0PAGES01")) == 1
    assert [step for step in slack.trace() if step[0] != "reply"] == [
        ("post", "C0PAGES01", ts),
        ("update", "C0PAGES01", ts),
        ("update", "C0PAGES01", ts),
    ]
    assert "*Symptoms*\n3 (3 pod)" in texts(slack.message("C0PAGES01", ts)["blocks"])
