"""Reconcile on start against a stand-in Alertmanager (API v2 on a loopback port): alerts that
started while the service was down are seen, alerts that ended are resolved (only when every
replica answered and has been up long enough), all recorded as a replayable delivery."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

from aiohttp import web

from ground.times import format_time, parse_time
from integrations.alertmanager import RECONCILE_RECEIVER, AlertmanagerClient
from router.core.model import parse_delivery_line
from tests.service_harness import alert, now_ms, payload, serving, settings_for, until

NODE = {"alertname": "KubeNodeNotReady", "node": "worker-1", "severity": "critical"}
POD = {
    "alertname": "KubePodNotReady",
    "namespace": "shop",
    "pod": "checkout-6d8f7b9c5d-p7r2s",
    "severity": "warning",
}
LATE = {
    "alertname": "KubePodCrashLooping",
    "namespace": "batch",
    "pod": "nightly-report-29012345-q8z4m",
    "severity": "warning",
}


class FakeAlertmanager:
    def __init__(self, alerts: list[dict], uptime: timedelta, fail: bool = False) -> None:
        self.alerts = alerts
        self.uptime = uptime
        self.fail = fail
        self.queries: list[str] = []
        self.silences: list[dict] = []

    async def get_alerts(self, request: web.Request) -> web.Response:
        self.queries.append(request.query_string)
        if self.fail:
            return web.Response(status=500)
        return web.json_response(self.alerts)

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"uptime": format_time(now_ms() - self.uptime), "cluster": {"status": "ready"}}
        )

    async def silence(self, request: web.Request) -> web.Response:
        self.silences.append(await request.json())
        return web.json_response({"silenceID": f"sil-{len(self.silences)}"})

    async def start(self) -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_get("/api/v2/alerts", self.get_alerts)
        app.router.add_get("/api/v2/status", self.status)
        app.router.add_post("/api/v2/silences", self.silence)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


def api_alert(fingerprint: str, labels: dict, starts, silenced_by: str = "") -> dict:
    """An alert as GET /api/v2/alerts returns it (endsAt is an expiry, not the zero time)."""
    state = {"state": "suppressed", "silencedBy": [silenced_by]} if silenced_by else {"state": "active"}
    return {
        "labels": labels,
        "annotations": {"summary": "x"},
        "startsAt": format_time(starts),
        "updatedAt": format_time(starts),
        "endsAt": format_time(now_ms() + timedelta(minutes=4)),
        "fingerprint": fingerprint,
        "receivers": [{"name": "alert-router"}],
        "status": {"silencedBy": [], "inhibitedBy": [], "mutedBy": [], **state},
        "generatorURL": "http://prometheus-k8s-0:9090/graph",
    }


async def prime(settings, starts) -> None:
    """A first run that saw the node and the pod firing."""
    async with serving(settings) as svc:
        body = payload([alert("fp-node", starts, NODE), alert("fp-pod", starts, POD)], "x")
        assert (await svc.post(body))[0] == 200
        await until(lambda: svc.service.engine.counters["instances"] == 2)


def reconcile_lines(settings) -> list[str]:
    conn = sqlite3.connect(settings.storage.path)
    try:
        return [
            r[0] for r in conn.execute("SELECT body FROM deliveries WHERE source = 'reconcile' ORDER BY seq")
        ]
    finally:
        conn.close()


async def test_reconcile_sees_new_alerts_and_resolves_vanished_ones(tmp_path):
    starts = now_ms() - timedelta(minutes=30)
    settings = settings_for(tmp_path)
    await prime(settings, starts)
    # While we were down: the pod recovered, a crash loop started.
    am = FakeAlertmanager(
        [api_alert("fp-node", NODE, starts), api_alert("fp-late", LATE, starts)], timedelta(hours=2)
    )
    runner, url = await am.start()
    try:
        async with serving(
            settings.model_copy(
                update={
                    "alertmanager": settings.alertmanager.model_copy(
                        update={"urls": [url], "receiver": "alert-router"}
                    )
                }
            )
        ) as svc:
            await until(lambda: svc.service.reconciled is not None)
            await until(lambda: svc.service.engine.counters["deliveries"] == 2)
            engine = svc.service.engine
            assert svc.service.reconciled["firing"] == 2 and svc.service.reconciled["resolved"] == 1
            assert engine.alerts["fp-late"].firing
            assert not engine.alerts["fp-pod"].firing
            assert engine.alerts["fp-node"].firing
    finally:
        await runner.cleanup()
    # Silenced and inhibited alerts are asked for too: only their absence says they ended.
    assert "receiver=alert-router" in am.queries[0] and "silenced=true" in am.queries[0]
    [line] = reconcile_lines(settings)
    delivery = parse_delivery_line(line)  # replayable like any recorded delivery
    assert delivery.payload.receiver == RECONCILE_RECEIVER == delivery.payload.groupKey
    status = {a.fingerprint: (a.status, a.endsAt) for a in delivery.payload.alerts}
    assert status["fp-node"] == ("firing", "0001-01-01T00:00:00Z")
    assert status["fp-pod"][0] == "resolved" and status["fp-pod"][1] <= delivery.received_at  # ended "now"
    assert parse_time(delivery.received_at) - parse_time(status["fp-pod"][1]) < timedelta(seconds=5)


async def test_a_young_or_partial_alertmanager_never_resolves_anything(tmp_path):
    starts = now_ms() - timedelta(minutes=30)
    settings = settings_for(tmp_path)
    await prime(settings, starts)
    young = FakeAlertmanager([api_alert("fp-node", NODE, starts)], timedelta(minutes=1))  # just restarted
    broken = FakeAlertmanager([], timedelta(hours=5), fail=True)
    runner1, url1 = await young.start()
    runner2, url2 = await broken.start()
    try:
        for urls in ([url1], [url1, url2]):
            am = settings.alertmanager.model_copy(update={"urls": urls, "receiver": "alert-router"})
            async with serving(settings.model_copy(update={"alertmanager": am})) as svc:
                await until(lambda: svc.service.reconciled is not None, timeout=15)
                assert svc.service.reconciled["resolved"] == 0
                await until(lambda: svc.service.backlog() == 0)
                assert svc.service.engine.alerts["fp-pod"].firing
    finally:
        await runner1.cleanup()
        await runner2.cleanup()
    for line in reconcile_lines(settings):
        assert all(a["status"] == "firing" for a in json.loads(line)["payload"]["alerts"])


async def test_create_silence_posts_api_v2_silences():
    am = FakeAlertmanager([], timedelta(hours=1))
    runner, url = await am.start()
    client = AlertmanagerClient(["http://127.0.0.1:1", url], timeout=2)  # the first replica is down
    try:
        starts = now_ms()
        matchers = [{"name": "namespace", "value": "shop", "isRegex": False, "isEqual": True}]
        silence_id = await client.create_silence(
            matchers, starts, starts + timedelta(hours=1), "alice", "inc-1"
        )
    finally:
        await client.close()
        await runner.cleanup()
    assert silence_id == "sil-1"
    [body] = am.silences
    assert body["matchers"] == matchers and body["createdBy"] == "alice"
    assert body["endsAt"] == format_time(starts + timedelta(hours=1))


def with_alertmanager(settings, url: str, **update):
    am = settings.alertmanager.model_copy(update={"urls": [url], **update})
    return settings.model_copy(update={"alertmanager": am})


async def test_silenced_alerts_are_neither_news_nor_resolved(tmp_path):
    """A silenced alert the router knows keeps firing (its silence is not its end); one it has
    never seen is not news (someone chose to keep it quiet)."""
    starts = now_ms() - timedelta(minutes=30)
    settings = settings_for(tmp_path)
    await prime(settings, starts)
    am = FakeAlertmanager(
        [
            api_alert("fp-node", NODE, starts, silenced_by="sil-1"),
            api_alert("fp-pod", POD, starts),
            api_alert("fp-late", LATE, starts, silenced_by="sil-2"),
        ],
        timedelta(hours=2),
    )
    runner, url = await am.start()
    try:
        async with serving(with_alertmanager(settings, url, receiver="alert-router")) as svc:
            await until(lambda: svc.service.reconciled is not None)
            await until(lambda: svc.service.backlog() == 0)
            engine = svc.service.engine
            assert svc.service.reconciled["resolved"] == 0
            assert engine.alerts["fp-node"].firing and engine.alerts["fp-pod"].firing
            assert "fp-late" not in engine.alerts
    finally:
        await runner.cleanup()


async def test_periodic_reconcile_resolves_what_ended_without_a_webhook(tmp_path):
    """Alertmanager sends nothing when a silenced alert resolves: the periodic round sees it
    gone and records the resolution, and records nothing while nothing changes."""
    starts = now_ms() - timedelta(minutes=30)
    settings = settings_for(tmp_path)
    await prime(settings, starts)
    am = FakeAlertmanager(
        [api_alert("fp-node", NODE, starts), api_alert("fp-pod", POD, starts, silenced_by="sil-1")],
        timedelta(hours=2),
    )
    runner, url = await am.start()
    try:
        async with serving(
            with_alertmanager(
                settings, url, receiver="alert-router", reconcile_interval=timedelta(seconds=0.2)
            )
        ) as svc:
            await until(lambda: len(am.queries) >= 4)  # the start round and quiet periodic ones
            engine = svc.service.engine
            assert engine.alerts["fp-pod"].firing
            am.alerts = [api_alert("fp-node", NODE, starts)]  # the silenced pod alert ended
            await until(lambda: not engine.alerts["fp-pod"].firing, timeout=10)
            assert engine.alerts["fp-node"].firing
    finally:
        await runner.cleanup()
    first, *periodic = reconcile_lines(settings)
    assert {a["fingerprint"] for a in json.loads(first)["payload"]["alerts"]} == {"fp-node"}
    [resolution] = periodic  # the quiet rounds recorded nothing
    [ended] = json.loads(resolution)["payload"]["alerts"]
    assert (ended["fingerprint"], ended["status"]) == ("fp-pod", "resolved")


async def test_periodic_rounds_bring_new_alerts_only_with_a_receiver_filter(tmp_path):
    """An alert the router never got (a dropped delivery) arrives with the next round, but only
    when the API is filtered to the router's receiver: unfiltered, it lists alerts routed
    elsewhere, which are none of the router's business."""
    starts = now_ms() - timedelta(minutes=30)
    settings = settings_for(tmp_path)
    await prime(settings, starts)
    known = [api_alert("fp-node", NODE, starts), api_alert("fp-pod", POD, starts)]
    am = FakeAlertmanager(known, timedelta(hours=2))
    runner, url = await am.start()
    try:
        for receiver, introduced in ((None, False), ("alert-router", True)):
            am.alerts = list(known)
            often = timedelta(seconds=0.2)
            async with serving(
                with_alertmanager(settings, url, receiver=receiver, reconcile_interval=often)
            ) as svc:
                await until(lambda: svc.service.reconciled is not None)
                rounds = len(am.queries) + 3  # a few periodic rounds after the new alert
                am.alerts = [*known, api_alert(f"fp-late-{receiver}", LATE, starts)]
                await until(lambda rounds=rounds: len(am.queries) >= rounds)
                await until(lambda: svc.service.backlog() == 0)
                assert (f"fp-late-{receiver}" in svc.service.engine.alerts) is introduced
    finally:
        await runner.cleanup()
