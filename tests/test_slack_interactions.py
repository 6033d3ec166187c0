"""Slack buttons over real HTTP: requests signed the way Slack documents it (v0 = HMAC-SHA256
of "v0:{timestamp}:{body}"), bad ones refused with 401 and no effect, silences created in a
stand-in Alertmanager (API v2) with the acting user recorded."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from aiohttp import web

from ground.times import parse_time
from integrations.alertmanager import AlertmanagerClient
from integrations.slack.config import SlackSettings
from integrations.slack.interactions import (
    INTERACTIONS_PATH,
    SlackInteractions,
    create_interactions,
    silence_matchers,
)
from tests.slack_standin import SlackStandIn

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
INC = "inc-3f2a9c"


def sign(body: str, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def form(action_id: str, incident: str = INC, response_url: str = "", kind: str = "block_actions") -> str:
    payload = {
        "type": kind,
        "user": {"id": "U0ALICE01", "username": "alice", "name": "alice", "team_id": "T0STANDIN"},
        "api_app_id": "A0ROUTER1",
        "team": {"id": "T0STANDIN", "domain": "standin"},
        "channel": {"id": "C0PAGES01", "name": "alerts"},
        "container": {"type": "message", "message_ts": "1760000001.000001", "channel_id": "C0PAGES01"},
        "trigger_id": "1234.5678.abcd",
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "actions",
                "value": incident,
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "action_ts": "1760000100.000200",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


ALERTS = [
    {
        "fingerprint": "a1",
        "status": "firing",
        "labels": {"alertname": "KubeNodeNotReady", "node": "worker-1", "severity": "warning"},
    },
    {
        "fingerprint": "a2",
        "status": "firing",
        "labels": {
            "alertname": "KubePodNotReady",
            "namespace": "shop",
            "pod": "checkout-1",
            "severity": "warning",
        },
    },
    {
        "fingerprint": "a3",
        "status": "firing",
        "labels": {
            "alertname": "KubePodNotReady",
            "namespace": "shop",
            "pod": "cart-2",
            "severity": "warning",
        },
    },
    {
        "fingerprint": "a4",
        "status": "resolved",
        "labels": {"alertname": "TargetDown", "job": "node-exporter", "severity": "warning"},
    },
]
VIEWS = {
    INC: {"id": INC, "state": "paged", "merged_into": None, "alerts": ALERTS},
    "inc-0a1b2c": {"id": "inc-0a1b2c", "state": "merged", "merged_into": INC, "alerts": []},
}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    async def __call__(self, incident: str, action: str, user: str, note: str) -> None:
        if incident not in VIEWS:
            raise KeyError(incident)
        self.calls.append((incident, action, user, note))


@pytest.fixture
async def alertmanager(aiohttp_server):
    silences: list[dict] = []
    state = {"fail": False}

    async def post_silence(request: web.Request) -> web.Response:
        if state["fail"]:
            return web.Response(status=500, text="silence store unavailable")
        body = await request.json()
        silences.append(body)
        return web.json_response({"silenceID": f"sil-{len(silences)}"})

    app = web.Application()
    app.router.add_post("/api/v2/silences", post_silence)
    server = await aiohttp_server(app)
    server.silences = silences
    server.state = state
    return server


@pytest.fixture
async def slack():
    standin = await SlackStandIn().start()
    yield standin
    await standin.stop()


@pytest.fixture
async def setup(aiohttp_client, alertmanager, slack):
    act = Recorder()
    silences = AlertmanagerClient([str(alertmanager.make_url(""))])
    interactions = SlackInteractions(
        SECRET,
        act,
        incident_view=VIEWS.get,
        create_silence=silences.create_silence,
        response_url_prefixes=[f"http://127.0.0.1:{slack.port}/response/"],
    )
    app = web.Application()
    app.add_routes(interactions.routes())
    client = await aiohttp_client(app)
    yield client, act, interactions
    await interactions.close()
    await silences.close()


async def test_acknowledge_and_resolve_call_act_with_the_users_name(setup):
    client, act, _ = setup
    for action_id in ("incident_acknowledge", "incident_resolve"):
        body = form(action_id)
        response = await client.post(INTERACTIONS_PATH, data=body, headers=sign(body))
        assert response.status == 200
    assert [(c[0], c[1], c[2]) for c in act.calls] == [
        (INC, "acknowledge", "alice"),
        (INC, "resolve", "alice"),
    ]
    assert "U0ALICE01" in act.calls[0][3]


@pytest.mark.parametrize("skew", [-301, 301, -3600])
async def test_expired_or_future_timestamp_is_refused(setup, skew):
    client, act, _ = setup
    body = form("incident_acknowledge")
    response = await client.post(INTERACTIONS_PATH, data=body, headers=sign(body, int(time.time()) + skew))
    assert response.status == 401
    assert act.calls == []


async def test_tampered_body_is_refused(setup, alertmanager):
    client, act, _ = setup
    signed_body = form("incident_acknowledge")
    tampered = form("incident_silence_4h")
    response = await client.post(INTERACTIONS_PATH, data=tampered, headers=sign(signed_body))
    assert response.status == 401
    wrong_secret = await client.post(
        INTERACTIONS_PATH, data=signed_body, headers=sign(signed_body, secret="another-secret")
    )
    assert wrong_secret.status == 401
    assert act.calls == [] and alertmanager.silences == []


async def test_replayed_request_is_refused(setup):
    client, act, _ = setup
    body = form("incident_acknowledge")
    headers = sign(body)
    first = await client.post(INTERACTIONS_PATH, data=body, headers=headers)
    replay = await client.post(INTERACTIONS_PATH, data=body, headers=headers)
    assert (first.status, replay.status) == (200, 401)
    assert len(act.calls) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Signature": "v0=00"},
    ],
)
async def test_missing_or_garbled_signature_headers_are_refused(setup, headers):
    client, act, _ = setup
    response = await client.post(INTERACTIONS_PATH, data=form("incident_acknowledge"), headers=headers)
    assert response.status == 401
    assert act.calls == []


async def test_silence_creates_alertmanager_silences_and_records_who(setup, alertmanager, slack):
    client, act, interactions = setup
    body = form("incident_silence_1h", response_url=f"http://127.0.0.1:{slack.port}/response/1")
    response = await client.post(INTERACTIONS_PATH, data=body, headers=sign(body))
    assert response.status == 200
    await interactions.close()
    # One silence per alert name over the firing alerts; the resolved TargetDown is left alone.
    assert [s["matchers"] for s in alertmanager.silences] == [
        [
            {"name": "alertname", "value": "KubeNodeNotReady", "isRegex": False, "isEqual": True},
            {"name": "node", "value": "worker-1", "isRegex": False, "isEqual": True},
            {"name": "severity", "value": "warning", "isRegex": False, "isEqual": True},
        ],
        [
            {"name": "alertname", "value": "KubePodNotReady", "isRegex": False, "isEqual": True},
            {"name": "namespace", "value": "shop", "isRegex": False, "isEqual": True},
            {"name": "pod", "value": r"cart\-2|checkout\-1", "isRegex": True, "isEqual": True},
            {"name": "severity", "value": "warning", "isRegex": False, "isEqual": True},
        ],
    ]
    for silence in alertmanager.silences:
        assert silence["createdBy"] == "alice"
        assert INC in silence["comment"] and "alice" in silence["comment"]
        assert parse_time(silence["endsAt"]) - parse_time(silence["startsAt"]) == timedelta(hours=1)
    assert [(c[0], c[1], c[2]) for c in act.calls] == [(INC, "silence", "alice")]
    assert "1h" in act.calls[0][3] and "sil-1, sil-2" in act.calls[0][3]
    assert [r["body"]["response_type"] for r in slack.responses] == ["ephemeral"]
    assert "Silenced inc-3f2a9c for 1h" in slack.responses[0]["body"]["text"]


async def test_silence_of_a_merged_incident_silences_the_survivors_alerts(setup, alertmanager):
    client, act, _ = setup
    body = form("incident_silence_4h", incident="inc-0a1b2c")
    assert (await client.post(INTERACTIONS_PATH, data=body, headers=sign(body))).status == 200
    assert len(alertmanager.silences) == 2
    assert parse_time(alertmanager.silences[0]["endsAt"]) - parse_time(
        alertmanager.silences[0]["startsAt"]
    ) == (timedelta(hours=4))
    assert act.calls[0][:3] == ("inc-0a1b2c", "silence", "alice")


async def test_alertmanager_failure_changes_nothing_and_tells_the_user(setup, alertmanager, slack):
    client, act, interactions = setup
    alertmanager.state["fail"] = True
    body = form("incident_silence_1h", response_url=f"http://127.0.0.1:{slack.port}/response/2")
    assert (await client.post(INTERACTIONS_PATH, data=body, headers=sign(body))).status == 200
    await interactions.close()
    assert act.calls == []
    told = slack.responses[0]["body"]["text"]
    assert "Could not create the silence in Alertmanager" in told and "HTTP 500" in told


async def test_unknown_incident_is_told_to_the_user_only(setup, slack):
    client, act, interactions = setup
    body = form(
        "incident_acknowledge",
        incident="inc-ffffff",
        response_url=f"http://127.0.0.1:{slack.port}/response/3",
    )
    assert (await client.post(INTERACTIONS_PATH, data=body, headers=sign(body))).status == 200
    await interactions.close()
    assert act.calls == []
    assert slack.responses[0]["body"]["text"].startswith("Incident inc-ffffff is unknown")


async def test_response_url_outside_the_allowed_prefixes_is_not_called(setup, slack):
    client, _, interactions = setup
    body = form("incident_acknowledge", incident="inc-ffffff", response_url="http://169.254.169.254/latest")
    assert (await client.post(INTERACTIONS_PATH, data=body, headers=sign(body))).status == 200
    await interactions.close()
    assert slack.responses == []


async def test_other_payloads_and_bad_values(setup):
    client, act, _ = setup
    other = form("incident_acknowledge", kind="view_submission")
    assert (await client.post(INTERACTIONS_PATH, data=other, headers=sign(other))).status == 200
    bad_value = form("incident_acknowledge", incident="'; DROP TABLE")
    assert (await client.post(INTERACTIONS_PATH, data=bad_value, headers=sign(bad_value))).status == 400
    not_a_form = "payload=%7Bnot json"
    assert (await client.post(INTERACTIONS_PATH, data=not_a_form, headers=sign(not_a_form))).status == 400
    assert act.calls == []


def test_silence_matchers_cover_exactly_the_values_seen():
    alerts = [
        {"labels": {"alertname": "A", "job": "x.y", "instance": "10.0.0.1:9100"}},
        {"labels": {"alertname": "A", "job": "x.y", "instance": "10.0.0.2:9100", "extra": "1"}},
        {"labels": {"alertname": "B"}},
    ]
    assert silence_matchers(alerts) == [
        [
            {"name": "alertname", "value": "A", "isRegex": False, "isEqual": True},
            {
                "name": "instance",
                "value": r"10\.0\.0\.1:9100|10\.0\.0\.2:9100",
                "isRegex": True,
                "isEqual": True,
            },
            {"name": "job", "value": "x.y", "isRegex": False, "isEqual": True},
        ],
        [{"name": "alertname", "value": "B", "isRegex": False, "isEqual": True}],
    ]


def test_create_interactions_needs_a_signing_secret(monkeypatch):
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    assert create_interactions(SlackSettings(default_channel="C0PAGES01"), Recorder()) is None
    made = create_interactions(SlackSettings(signing_secret=SECRET, default_channel="C0PAGES01"), Recorder())
    assert isinstance(made, SlackInteractions)
    assert [r.path for r in made.routes()] == [INTERACTIONS_PATH]


async def test_a_body_that_trickles_in_or_is_too_large_is_refused(setup, monkeypatch):
    import integrations.slack.interactions as module

    client, act, _ = setup
    monkeypatch.setattr(module, "READ_TIMEOUT", 0.5)
    body = form("incident_acknowledge")

    async def slowly():
        yield body[:10].encode()
        await asyncio.sleep(2)
        yield body[10:].encode()

    headers = {**sign(body), "Content-Length": str(len(body))}
    response = await client.post(INTERACTIONS_PATH, data=slowly(), headers=headers)
    assert response.status == 408
    big = "payload=" + "x" * (module.MAX_BODY + 1)
    response = await client.post(INTERACTIONS_PATH, data=big, headers=sign(big))
    assert response.status == 413
    assert act.calls == []
