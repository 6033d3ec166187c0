"""The service with Slack, end to end: a storm posted over HTTP pages in the stand-in Slack
through the outbox (one top-level message per paged incident, symptoms in its thread), and a
signed Acknowledge click on the service's interactions endpoint reaches the engine and updates
the message in place."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.service_harness import ManualClock, serving, settings_for, storm, until
from tests.slack_standin import TOKEN, SlackStandIn
from tests.test_slack_interactions import SECRET, form, sign

T0 = datetime(2026, 10, 6, 2, 0, tzinfo=UTC)
PAGES, NOTICES = "C0PAGES01", "C0NOTICE1"


async def test_storm_pages_in_slack_and_the_acknowledge_button_acts(tmp_path):
    slack = await SlackStandIn().start()
    try:
        settings = settings_for(
            tmp_path,
            slack={
                "bot_token": TOKEN,
                "signing_secret": SECRET,
                "api_url": slack.url,
                "default_channel": PAGES,
                "notice_channel": NOTICES,
                "response_url_prefixes": [f"http://127.0.0.1:{slack.port}/response/"],
            },
        )
        clock = ManualClock(T0)
        async with serving(settings, clock=clock) as svc:
            engine = svc.service.engine
            for offset, body in storm(T0, rounds=4, resolve_at=None):
                clock.set(T0 + timedelta(seconds=offset))
                assert (await svc.post(body))[0] == 200
            clock.set(T0 + timedelta(minutes=10))  # past every grace: the ticker pages
            await until(lambda: any(i["state"] == "paged" for i in engine.incidents()), timeout=20)
            paged = [i["id"] for i in engine.incidents() if i["state"] == "paged"]

            def posted() -> list:
                return [
                    c
                    for c in slack.calls
                    if c.method == "chat.postMessage" and c.ok and not c.args.get("thread_ts")
                ]

            await until(lambda: len(posted()) == len(paged), timeout=20)
            node = next(i for i in engine.incidents() if i["root"]["entity"] == "node/default/worker-1")
            body = form("incident_acknowledge", incident=node["id"])
            url = f"{svc.url}/api/v1/slack/interactions"
            async with svc.session.post(url, data=body, headers=sign(body)) as response:
                assert response.status == 200
            async with svc.session.post(
                url, data=body.replace("alice", "eve"), headers=sign(body)
            ) as response:
                assert response.status == 401  # tampered: refused, nothing changes
            await until(lambda: engine.incident(node["id"])["acknowledged_by"] == "alice", timeout=10)
            await until(
                lambda: any(c.method == "chat.update" and "alice" in json.dumps(c.args) for c in slack.calls),
                timeout=20,
            )
        # One top-level message per paged incident, in the pages channel; symptoms in threads.
        assert len(posted()) == len(paged) and all(c.args["channel"] == PAGES for c in posted())
        threads = [c for c in slack.calls if c.method == "chat.postMessage" and c.args.get("thread_ts")]
        assert threads and all(c.args["channel"] == PAGES for c in threads)
    finally:
        await slack.stop()
