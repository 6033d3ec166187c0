"""The Silence button end to end: a signed Slack click creates silences in a real Alertmanager
(API v2), one per alert name over the incident's firing alerts, with the acting user recorded."""

from __future__ import annotations

import json

from aiohttp import ClientSession, web

from integrations.alertmanager import AlertmanagerClient
from integrations.slack.interactions import INTERACTIONS_PATH, SlackInteractions
from tests.amharness import running_alertmanager
from tests.test_slack_interactions import INC, SECRET, VIEWS, Recorder, form, sign


async def test_silence_button_lands_in_a_real_alertmanager(tmp_path, aiohttp_client):
    with running_alertmanager(tmp_path / "am") as url:
        alertmanager = AlertmanagerClient([url])
        act = Recorder()
        interactions = SlackInteractions(
            SECRET, act, incident_view=VIEWS.get, create_silence=alertmanager.create_silence
        )
        app = web.Application()
        app.add_routes(interactions.routes())
        client = await aiohttp_client(app)
        body = form("incident_silence_4h")
        assert (await client.post(INTERACTIONS_PATH, data=body, headers=sign(body))).status == 200
        tampered = body.replace("alice", "mallory")
        assert (await client.post(INTERACTIONS_PATH, data=tampered, headers=sign(body))).status == 401
        await interactions.close()
        await alertmanager.close()
        async with ClientSession() as session, session.get(f"{url}/api/v2/silences") as response:
            silences = json.loads(await response.text())
    active = [s for s in silences if s["status"]["state"] == "active"]
    assert {s["createdBy"] for s in active} == {"alice"}
    by_name = {next(m["value"] for m in s["matchers"] if m["name"] == "alertname"): s for s in active}
    assert set(by_name) == {"KubeNodeNotReady", "KubePodNotReady"}  # the resolved TargetDown is left alone
    pods = next(m for m in by_name["KubePodNotReady"]["matchers"] if m["name"] == "pod")
    assert pods["isRegex"] and set(pods["value"].replace("\\", "").split("|")) == {"cart-2", "checkout-1"}
    assert all(INC in s["comment"] for s in active)
    assert [(c[0], c[1], c[2]) for c in act.calls] == [(INC, "silence", "alice")]
