"""Engine-made incidents in the stand-in Slack: the exact sequence of posts, updates and
thread replies.

The notifications come from the real engine (bundled rule pack) fed with Alertmanager-shaped
deliveries (HA duplicates included) over a small hand-built topology; each step's
notifications are sent to the notifier right away, as the service's outbox would, with
`engine.incident` as the incident view. The acknowledgement is a signed click on the message's
button, through the interactivity endpoint, back into the engine.

Scenarios: (a) a node-down storm, (b) an auto-recovered incident, (c) a merge of two paged
incidents, (d) a Slack outage in the middle of the storm.
"""

from __future__ import annotations

import pytest
from aiohttp import web

from integrations.slack.config import SlackSettings
from integrations.slack.interactions import INTERACTIONS_PATH, SlackInteractions
from integrations.slack.notifier import SlackNotifier, SlackSendError
from router.core.engine import Engine
from rules.ruleset import RuleSet
from tests.slack_standin import TOKEN, SlackStandIn
from tests.test_slack_blocks import texts
from tests.test_slack_interactions import SECRET, form, sign
from tests.world import Stream, alert, at
from topology.graph import Topology

PAGES, NOTICES = "C0PAGES01", "C0NOTICE1"


def cluster() -> Topology:
    """Three nodes; cluster DNS served by two CoreDNS pods (on w0 and w1); apps on w0 (the
    storm), on w1 (the one that heals) and on w2 (a DNS client)."""
    t = Topology()
    dns = t.add("dns/default/cluster-dns")
    for node in ("w0", "w1", "w2"):
        t.add(f"node/default/{node}")

    def pod(namespace: str, name: str, node: str, owner: str, uses_dns: bool = True) -> None:
        entity = t.add(f"pod/default/{namespace}/{name}", node=f"node/default/{node}", owner=owner)
        t.depends(entity, f"node/default/{node}")
        t.depends(owner, entity)
        if uses_dns:
            t.depends(entity, dns)

    for name, node in (("coredns-a", "w0"), ("coredns-b", "w1")):
        pod("kube-system", name, node, "deployment/default/kube-system/coredns", uses_dns=False)
        t.depends(dns, f"pod/default/kube-system/{name}", redundant=True)
    for namespace, name in (("shop", "checkout-0"), ("shop", "cart-0"), ("shop", "payment-0")):
        pod(namespace, name, "w0", f"deployment/default/{namespace}/{name[:-2]}")
    for name in ("orders-0", "orders-1"):
        pod("db", name, "w0", "statefulset/default/db/orders")
    pod("web", "frontend-0", "w1", "deployment/default/web/frontend")
    pod("search", "indexer-0", "w2", "deployment/default/search/indexer")
    return t


def node_down(fp: str, node: str, started: float, **kw) -> dict:
    return alert(fp, started, alertname="KubeNodeNotReady", node=node, severity="critical", **kw)


def pod_not_ready(fp: str, namespace: str, name: str, started: float, **kw) -> dict:
    return alert(fp, started, alertname="KubePodNotReady", namespace=namespace, pod=name, **kw)


def crash_looping(fp: str, namespace: str, name: str, started: float, **kw) -> dict:
    return alert(
        fp, started, alertname="KubePodCrashLooping", namespace=namespace, pod=name, container="app", **kw
    )


class Run:
    """The engine, the notifier and the interactivity endpoint, driven on the engine's clock."""

    def __init__(self, slack: SlackStandIn, tmp_path, topology: Topology | None = None) -> None:
        self.engine = Engine(topology or cluster(), RuleSet.load())
        settings = SlackSettings(
            bot_token=TOKEN,
            api_url=slack.url,
            default_channel=PAGES,
            notice_channel=NOTICES,
            oncall_usergroup="S0ONCALL1",
            max_retries=1,
        )
        self.notifier = SlackNotifier(settings, tmp_path / "slack.sqlite", incident_view=self.engine.incident)
        self.notes: list[dict] = []  # every notification, in order
        self.queue: list[tuple[dict, str]] = []  # the outbox: not yet delivered
        self.now = at(0)

    async def deliver(self, minute: float, alerts: list[dict]) -> None:
        stream = Stream()
        stream.deliver(minute, alerts)
        for delivery in stream.deliveries():
            self.now = delivery.received
            self._take(self.engine.ingest(delivery, delivery.received))
        await self.flush()

    async def tick(self, minute: float) -> None:
        self.now = at(minute)
        self._take(self.engine.tick(self.now))
        await self.flush()

    async def finish(self) -> None:
        self._take(self.engine.finish(self.now))
        await self.flush()

    def act(self, incident: str, action: str, user: str, note: str) -> None:
        """The service's callback for buttons."""
        self._take(self.engine.act(incident, action, user, self.now, note))

    def _take(self, notifications) -> None:
        for notification in notifications:
            self.notes.append(notification.to_dict())
            self.queue.append((notification.to_dict(), notification.key))

    async def flush(self) -> None:
        """Deliver in order; on failure keep the rest queued (the outbox retries later)."""
        while self.queue:
            await self.notifier.send(*self.queue[0])
            self.queue.pop(0)

    def actions(self) -> list[tuple[str, str]]:
        return [(n["action"], n["incident"]) for n in self.notes]


@pytest.fixture
async def slack():
    standin = await SlackStandIn({PAGES: "alerts", NOTICES: "alerts-low"}).start()
    yield standin
    await standin.stop()


@pytest.fixture
async def run(slack, tmp_path):
    scenario = Run(slack, tmp_path)
    yield scenario
    await scenario.notifier.close()


@pytest.fixture
async def buttons(run, aiohttp_client):
    interactions = SlackInteractions(SECRET, run.act, incident_view=run.engine.incident)
    app = web.Application()
    app.add_routes(interactions.routes())
    client = await aiohttp_client(app)

    async def click(action_id: str, incident: str) -> int:
        body = form(action_id, incident=incident)
        response = await client.post(INTERACTIONS_PATH, data=body, headers=sign(body))
        await run.flush()
        return response.status

    yield click
    await interactions.close()


async def storm(run: Run, click=None, before_resolve=None) -> None:
    """Node w0 goes down: its pods follow in bursts; on-call acknowledges; all recovers."""
    await run.deliver(0, [node_down("n-w0", "w0", 0), pod_not_ready("p-checkout", "shop", "checkout-0", 0)])
    await run.tick(12)  # well past the node's grace: it pages, with checkout-0 as its symptom
    await run.deliver(
        13, [pod_not_ready("p-cart", "shop", "cart-0", 13), pod_not_ready("p-pay", "shop", "payment-0", 13)]
    )
    await run.deliver(
        14, [pod_not_ready("p-o0", "db", "orders-0", 14), pod_not_ready("p-o1", "db", "orders-1", 14)]
    )
    incident = run.notes[0]["incident"]
    run.now = at(15)
    if click is not None:
        assert await click("incident_acknowledge", incident) == 200
    else:
        run.act(incident, "acknowledge", "alice", "")
        await run.flush()
    if before_resolve is not None:
        await before_resolve()
    await run.deliver(
        30,
        [
            node_down("n-w0", "w0", 0, status="resolved", ended=30),
            pod_not_ready("p-checkout", "shop", "checkout-0", 0, status="resolved", ended=30),
            pod_not_ready("p-cart", "shop", "cart-0", 13, status="resolved", ended=30),
            pod_not_ready("p-pay", "shop", "payment-0", 13, status="resolved", ended=30),
            pod_not_ready("p-o0", "db", "orders-0", 14, status="resolved", ended=30),
            pod_not_ready("p-o1", "db", "orders-1", 14, status="resolved", ended=30),
        ],
    )
    await run.finish()


async def test_a_node_down_storm_is_one_message_with_its_symptoms_threaded(run, slack, buttons):
    await storm(run, click=buttons)
    incident = run.notes[0]["incident"]
    assert run.actions() == [("page", incident)] + [("update", incident)] * 3 + [("resolve", incident)]
    assert run.notes[3]["reason"] == "acknowledged by alice"

    ts = slack.top_level(PAGES)[0]["ts"]
    assert slack.trace() == [
        ("post", PAGES, ts),  # page: the incident's message...
        ("reply", PAGES, ts),  # ...and checkout-0, known when it paged
        ("update", PAGES, ts),  # burst 1: cart-0, payment-0
        ("reply", PAGES, ts),
        ("update", PAGES, ts),  # burst 2: orders-0, orders-1
        ("reply", PAGES, ts),
        ("update", PAGES, ts),  # acknowledged by alice (the button)
        ("reply", PAGES, ts),
        ("update", PAGES, ts),  # resolved
    ]
    assert all(c.ok for c in slack.calls)
    assert slack.top_level(NOTICES) == [] and len(slack.top_level(PAGES)) == 1

    post = slack.ok_calls("chat.postMessage")[0]
    assert post.args["text"].startswith(
        "<!subteam^S0ONCALL1> :red_circle: CRITICAL: KubeNodeNotReady on node w0"
    )
    replies = [texts(r["blocks"]) for r in slack.replies(PAGES, ts)]
    assert "KubePodNotReady* on pod shop/checkout-0" in replies[0]
    assert "pod shop/cart-0" in replies[1] and "pod shop/payment-0" in replies[1]
    assert "pod db/orders-0" in replies[2] and "pod db/orders-1" in replies[2]
    assert replies[3] == "acknowledged by alice"
    final = texts(slack.message(PAGES, ts)["blocks"])
    assert ":white_check_mark: RESOLVED: KubeNodeNotReady on node w0" in final
    assert "*Resolved* after 30m" in final and "acknowledged by *alice*" in final
    assert "5 (5 pod)" in final
    assert "Acknowledge" not in final  # no buttons on a resolved incident


async def test_an_auto_recovered_incident_is_one_notice_in_the_notice_channel(run, slack):
    await run.deliver(0, [crash_looping("c-frontend", "web", "frontend-0", 0)])
    await run.deliver(
        0.5, [crash_looping("c-frontend", "web", "frontend-0", 0, status="resolved", ended=0.5)]
    )
    await run.finish()  # the reopen window passes quietly
    incident = run.notes[0]["incident"]
    assert run.actions() == [("notice", incident)]
    assert "recovered by itself" in run.notes[0]["reason"]
    ts = slack.top_level(NOTICES)[0]["ts"]
    assert slack.trace() == [("post", NOTICES, ts)]
    message = slack.message(NOTICES, ts)
    assert "<!" not in message["text"]  # nobody woken
    shown = texts(message["blocks"])
    assert ":information_source: NOTICE: KubePodCrashLooping on pod web/frontend-0" in shown
    assert "recovered by itself" in shown and "Acknowledge" not in shown


async def test_a_merged_incident_points_at_the_survivor(run, slack):
    # Two paged incidents: node w0 (where one CoreDNS replica runs) and a crash-looping DNS
    # client on w2, which nothing explains while the other replica serves.
    await run.deliver(0, [node_down("n-w0", "w0", 0), crash_looping("c-indexer", "search", "indexer-0", 0)])
    await run.tick(20)
    pages = [n for n in run.notes if n["action"] == "page"]
    assert len(pages) == 2
    node_inc = next(n["incident"] for n in pages if n["root"]["entity"] == "node/default/w0")
    app_inc = next(n["incident"] for n in pages if n["root"]["entity"] == "pod/default/search/indexer-0")
    # Cluster DNS starts failing: explained by the CoreDNS replica on w0, so the DNS client's
    # incident turns out to be the node's.
    await run.deliver(
        21, [alert("d-errors", 21, alertname="CoreDNSErrorsHigh", job="kube-dns", severity="critical")]
    )
    after = [(n["action"], n["incident"]) for n in run.notes[2:]]
    assert after == [("resolve", app_inc), ("update", node_inc)]
    assert run.notes[2]["reason"].startswith(f"merged into {node_inc}")

    node_ts = next(c.body["ts"] for c in slack.ok_calls("chat.postMessage") if "node w0" in c.args["text"])
    app_ts = next(c.body["ts"] for c in slack.ok_calls("chat.postMessage") if "indexer-0" in c.args["text"])
    first_two = sorted(slack.trace()[:2])
    assert first_two == sorted([("post", PAGES, node_ts), ("post", PAGES, app_ts)])
    assert slack.trace()[2:] == [
        ("update", PAGES, app_ts),  # merged: points at the survivor
        ("update", PAGES, node_ts),  # the survivor: incident merged in, symptoms attached
        ("reply", PAGES, node_ts),
    ]
    merged = texts(slack.message(PAGES, app_ts)["blocks"])
    assert ":leftwards_arrow_with_hook: MERGED" in merged
    link = f"https://slack.com/archives/{PAGES}/p{node_ts.replace('.', '')}"
    assert f"*Merged into* <{link}|{node_inc}>" in merged
    reply = texts(slack.replies(PAGES, node_ts)[-1]["blocks"])
    assert f"incident {app_inc} merged in" in reply
    assert f"archives/{PAGES}/p{app_ts.replace('.', '')}" in reply  # and a link back to its message


async def test_slack_outage_mid_storm_delays_without_losing_or_duplicating(run, slack, tmp_path):
    reference = []

    async def outage_then_recovery() -> None:
        # Slack goes down before the next update: the outbox keeps it and retries later.
        reference.extend(slack.trace())
        await slack.outage("503")
        run.act(run.notes[0]["incident"], "silence", "bob", "1h")
        with pytest.raises(SlackSendError):
            await run.flush()
        assert len(run.queue) == 1
        with pytest.raises(SlackSendError):
            await run.flush()  # a retry during the outage fails too
        await slack.recover()
        await run.flush()
        assert run.queue == []

    await storm(run, before_resolve=outage_then_recovery)
    ts = slack.top_level(PAGES)[0]["ts"]
    assert len(slack.top_level(PAGES)) == 1
    assert slack.trace()[len(reference) :] == [
        ("update", PAGES, ts),  # silenced by bob, delivered after the outage
        ("reply", PAGES, ts),
        ("update", PAGES, ts),  # resolved
    ]
    failed = [c for c in slack.calls if not c.ok]
    assert failed and all(c.status == 503 for c in failed)
    assert "silenced by bob" in texts(slack.replies(PAGES, ts)[-1]["blocks"])


async def test_a_500_pod_node_failure_is_summarised_and_never_rejected(slack, tmp_path):
    topology = cluster()
    for i in range(500):
        pod = topology.add(f"pod/default/bulk/worker-{i:03d}", node="node/default/w2")
        topology.depends(pod, "node/default/w2")
    run = Run(slack, tmp_path, topology)
    pods = [pod_not_ready(f"b-{i:03d}", "bulk", f"worker-{i:03d}", 0) for i in range(500)]
    await run.deliver(0, [node_down("n-w2", "w2", 0), *pods])
    await run.tick(10)
    await run.notifier.close()
    assert [n["action"] for n in run.notes] == ["page"]
    assert len(run.notes[0]["symptoms"]) == 500
    assert all(c.ok for c in slack.calls), [c.error for c in slack.calls if not c.ok]
    ts = slack.top_level(PAGES)[0]["ts"]
    assert slack.trace() == [("post", PAGES, ts), ("reply", PAGES, ts)]
    assert "500 (500 pod)" in texts(slack.message(PAGES, ts)["blocks"])
    reply = texts(slack.replies(PAGES, ts)[0]["blocks"])
    assert reply.startswith("*500 symptoms* known when this paged (500 pod)")
    assert reply.splitlines()[-1] == "… and 470 more (470 pod)"
