"""Message building: what an incident's Slack message says, and that Slack would accept it.

Every message is also run through the stand-in's Block Kit checks (`check_blocks`), which
follow Slack's documented limits independently of slack-sdk's validators.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from integrations.slack.blocks import (
    MessageState,
    RenderContext,
    escape,
    fit_lines,
    parent_message,
    shorten,
    thread_reply,
)
from tests.slack_standin import check_blocks

AT = "2026-10-06T02:05:02.000Z"
NOW = datetime(2026, 10, 6, 2, 5, 2, tzinfo=UTC)
ROOT_LABELS = {"alertname": "KubeNodeNotReady", "node": "worker-1", "severity": "critical"}


def notification(action: str = "page", **extra) -> dict:
    out = {
        "at": AT,
        "action": action,
        "incident": "inc-3f2a9c",
        "severity": "critical",
        "root": {
            "entity": "node/default/worker-1",
            "alert": {
                "fingerprint": "1ebbdcf9e40cf5d3",
                "alertname": "KubeNodeNotReady",
                "labels": ROOT_LABELS,
            },
        },
        "symptoms": [
            symptom(i, "pod/default/shop/checkout-6d8f-{i}", "node/default/worker-1") for i in range(4)
        ]
        + [
            symptom(
                9,
                "daemonset/default/kube-system/kube-proxy",
                "pod/default/kube-system/kube-proxy-x",
                "node/default/worker-1",
            )
        ],
        "reason": "KubeNodeNotReady on node worker-1; still firing after 2m; 5 alerts on what depends on it "
        "are its symptoms (4 pod, 1 daemonset)",
    }
    out.update(extra)
    return out


def symptom(i: int, entity: str, *path: str) -> dict:
    entity = entity.format(i=i)
    return {
        "fingerprint": f"fp{i:04d}",
        "alertname": "KubePodNotReady",
        "entity": entity,
        "path": [entity, *path],
    }


VIEW = {
    "id": "inc-3f2a9c",
    "state": "paged",
    "opened_at": "2026-10-06T01:59:32.000Z",
    "acknowledged_by": None,
    "silenced_by": None,
    "alerts": [
        {
            "fingerprint": "1ebbdcf9e40cf5d3",
            "entity": "node/default/worker-1",
            "status": "firing",
            "labels": ROOT_LABELS,
            "annotations": {
                "summary": "Node is not ready.",
                "description": "worker-1 has been unready for more than 15 minutes.",
                "runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubenodenotready",
            },
            "generator_url": "http://prometheus-k8s-0:9090/graph?g0.expr=kube_node_status_condition&g0.tab=1",
        }
    ],
}


def state_after(*notes: dict) -> MessageState:
    state = MessageState("inc-3f2a9c")
    for i, note in enumerate(notes):
        state.apply(note, f"inc-3f2a9c:{i}:{note['action']}")
    return state


def texts(blocks: list[dict]) -> str:
    """Every piece of text in the blocks, for assertions on what a reader sees."""
    out: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return "\n".join(out)


def test_page_says_what_broke_why_what_it_took_down_and_what_to_do():
    ctx = RenderContext(now=NOW, mention="<!subteam^S0ONCALL1>", alertmanager_url="https://am.example.com")
    message = parent_message(state_after(notification()), "page", VIEW, ctx)
    assert check_blocks(message.blocks) == []
    header = message.blocks[0]
    assert header["type"] == "header"
    assert header["text"]["text"] == ":red_circle: CRITICAL: KubeNodeNotReady on node worker-1"
    seen = texts(message.blocks)
    assert "<!subteam^S0ONCALL1> critical page" in seen
    assert "*Firing* for 5m" in seen  # opened 01:59:32, as of the page at 02:05:02
    assert "`node/default/worker-1`" in seen
    assert "5 (4 pod, 1 daemonset)" in seen
    assert "daemonset kube-system/kube-proxy → pod kube-system/kube-proxy-x → node worker-1" in seen
    assert "worker-1 has been unready for more than 15 minutes." in seen
    assert (
        "<https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubenodenotready|:book: Runbook>"
        in seen
    )
    assert "<http://prometheus-k8s-0:9090/graph?g0.expr=kube_node_status_condition&g0.tab=1|" in seen
    assert "https://am.example.com/#/alerts?filter=%7Balertname%3D%22KubeNodeNotReady%22" in seen
    actions = next(b for b in message.blocks if b["type"] == "actions")
    buttons = [(e["action_id"], e["text"]["text"], e["value"]) for e in actions["elements"]]
    assert buttons == [
        ("incident_acknowledge", "Acknowledge", "inc-3f2a9c"),
        ("incident_resolve", "Resolve", "inc-3f2a9c"),
        ("incident_silence_1h", "Silence 1h", "inc-3f2a9c"),
        ("incident_silence_4h", "Silence 4h", "inc-3f2a9c"),
    ]
    assert message.text.startswith("<!subteam^S0ONCALL1> ")  # the fallback text is what notifies


def test_without_a_mention_nobody_is_named_and_without_a_view_links_are_left_out():
    message = parent_message(
        state_after(notification(severity="warning")), "page", None, RenderContext(now=NOW)
    )
    seen = texts(message.blocks)
    assert message.blocks[0]["text"]["text"].startswith(":large_orange_circle: WARNING:")
    assert "<!" not in message.text and "subteam" not in seen
    assert "Runbook" not in seen and "Prometheus" not in seen
    assert check_blocks(message.blocks) == []


def test_acknowledged_then_resolved_message_has_who_and_how_long_and_no_buttons():
    ack = notification("update", at="2026-10-06T02:07:00.000Z", symptoms=[], reason="acknowledged by alice")
    resolve = notification(
        "resolve",
        at="2026-10-06T02:41:32.000Z",
        symptoms=[],
        reason="root and all symptoms resolved; lasted 42m",
    )
    acked = parent_message(state_after(notification(), ack), "page", None, RenderContext(now=NOW))
    assert ":eyes: acknowledged by *alice*" in texts(acked.blocks)
    assert any(b["type"] == "actions" for b in acked.blocks)
    done = parent_message(state_after(notification(), ack, resolve), "page", VIEW, RenderContext(now=NOW))
    assert done.blocks[0]["text"]["text"] == ":white_check_mark: RESOLVED: KubeNodeNotReady on node worker-1"
    assert "*Resolved* after 42m: root and all symptoms resolved" in texts(done.blocks)
    assert "acknowledged by *alice*" in texts(done.blocks)
    assert not any(b["type"] == "actions" for b in done.blocks)


def test_merged_message_points_at_the_surviving_incident():
    merged = notification(
        "resolve",
        symptoms=[],
        severity="none",
        root={"entity": "node/default/worker-1", "alert": None},
        reason="merged into inc-0a1b2c: zone z0 is the root cause",
    )
    state = state_after(notification(), merged)
    links = {"inc-0a1b2c": "https://example.slack.com/archives/C0PAGES01/p1760000002000002"}
    message = parent_message(state, "page", None, RenderContext(now=NOW, permalink=links.get))
    assert (
        message.blocks[0]["text"]["text"]
        == ":leftwards_arrow_with_hook: MERGED: KubeNodeNotReady on node worker-1"
    )
    target = "<https://example.slack.com/archives/C0PAGES01/p1760000002000002|inc-0a1b2c>"
    assert f"*Merged into* {target}: zone z0 is the root cause" in texts(message.blocks)
    assert "critical" in texts(message.blocks)  # the merge's severity "none" does not overwrite it
    assert not any(b["type"] == "actions" for b in message.blocks)


def test_notice_wakes_nobody_and_has_no_buttons():
    notice = notification(
        "notice",
        severity="warning",
        reason="KubePodCrashLooping on pod shop/cart recovered by itself after 3m, within its grace",
    )
    message = parent_message(
        state_after(notice), "notice", None, RenderContext(now=NOW, mention="<!subteam^S0ONCALL1>")
    )
    seen = texts(message.blocks)
    assert message.blocks[0]["text"]["text"].startswith(":information_source: NOTICE:")
    assert "recovered by itself after 3m" in seen and "Nobody was paged" in seen
    assert "<!subteam" not in seen and "<!subteam" not in message.text
    assert not any(b["type"] == "actions" for b in message.blocks)


def test_a_500_symptom_update_is_summarised_within_slack_limits():
    symptoms = [
        symptom(
            i, "pod/default/shop/checkout-{i}", "deployment/default/shop/checkout", "node/default/worker-1"
        )
        for i in range(100, 500)
    ]
    symptoms += [
        symptom(1000 + i, "deployment/default/web/frontend-{i}", "node/default/worker-1") for i in range(100)
    ]
    update = notification(
        "update", symptoms=symptoms, reason="500 more symptoms attached (400 pod, 100 deployment)"
    )
    reply = thread_reply(update, RenderContext(now=NOW))
    assert reply is not None
    assert check_blocks(reply.blocks) == []
    body = reply.blocks[1]["text"]["text"]
    assert len(body) <= 3000
    listed = [line for line in body.splitlines() if line.startswith("• ")]
    assert 10 <= len(listed) <= 30
    assert (
        body.splitlines()[-1] == f"… and {500 - len(listed)} more ({400 - len(listed)} pod, 100 deployment)"
    )
    parent = parent_message(state_after(notification(), update), "page", VIEW, RenderContext(now=NOW))
    assert check_blocks(parent.blocks) == []
    assert "505 (404 pod, 100 deployment, 1 daemonset)" in texts(parent.blocks)


def test_huge_alert_text_is_shortened_at_word_boundaries_and_escaped():
    alertname = "Very" + "Long" * 100
    view = {
        "opened_at": AT,
        "alerts": [
            {
                "fingerprint": "1ebbdcf9e40cf5d3",
                "entity": "node/default/worker-1",
                "labels": ROOT_LABELS,
                "annotations": {"summary": "word " * 2000, "description": "<!channel> & everyone " * 900},
                "generator_url": "http://prometheus/graph?" + "x" * 5000,  # too long to link: left out
            }
        ],
    }
    page = notification(
        root={
            "entity": "node/default/" + "n" * 400,
            "alert": {"fingerprint": "1ebbdcf9e40cf5d3", "alertname": alertname, "labels": ROOT_LABELS},
        },
        reason="because " * 1000,
    )
    message = parent_message(state_after(page), "page", view, RenderContext(now=NOW))
    assert check_blocks(message.blocks) == []
    seen = texts(message.blocks)
    assert "<!channel>" not in seen and "&lt;!channel&gt; &amp; everyone" in seen  # no injected mention
    assert "Prometheus" not in seen
    why = next(b for b in message.blocks if b.get("block_id") == "why")["text"]["text"]
    assert why.endswith("because…")
    assert len(message.blocks[0]["text"]["text"]) <= 150


def test_escape_neutralises_slack_control_sequences():
    assert escape("<@U123> & <!here>") == "&lt;@U123&gt; &amp; &lt;!here&gt;"


@given(
    st.lists(st.text(alphabet="abcdefgh xyz", min_size=0, max_size=30), max_size=40).map(" ".join),
    st.integers(5, 200),
)
def test_shorten_never_cuts_a_word(text, limit):
    out = shorten(text, limit)
    assert len(out) <= limit
    if out == text:
        return
    assert out.endswith("…")
    kept = out[:-1]
    assert text.startswith(kept)
    # The cut falls on a word boundary, unless the first word alone overflows.
    head = text[:limit].rstrip()
    assert text[len(kept)] == " " or " " not in head.lstrip(" ")


@given(st.lists(st.text(alphabet="abc ", min_size=1, max_size=60), max_size=80), st.integers(30, 600))
def test_fit_lines_keeps_whole_lines_and_counts_the_rest(lines, limit):
    out = fit_lines(lines, limit, lambda n: f"… and {n} more")
    assert len(out) <= limit
    got = out.split("\n") if out else []
    if got and got[-1].startswith("… and "):
        shown = got[:-1]
        assert int(got[-1].split()[2]) == len(lines) - len(shown)
    else:
        shown = got if lines else []
        assert len(shown) == len(lines)
    assert shown == lines[: len(shown)]
