"""The engine's decisions, one behaviour per test, on the small hand-built cluster.

Streams are Alertmanager-shaped (grouped by namespace, each delivery duplicated by an HA
replica 15 s later); alert names and labels are the real kube-prometheus ones.
"""

from __future__ import annotations

from collections import Counter

from ground.times import format_time
from router.core.engine import Engine
from router.core.settings import EngineSettings
from rules.ruleset import RuleSet
from tests.world import Stream, alert, at, run, small_cluster
from topology.graph import Topology

RULES = RuleSet.load()


def engine() -> Engine:
    return Engine(small_cluster(), RULES)


def by_action(notes, action):
    return [n for n in notes if n.action == action]


def roots(events, kind):
    """The entities of the decision events of one kind (`root_inferred`, `root_withdrawn`)."""
    return [e.data["entity"] for e in events if e.kind == kind]


def node_alert(fp="nn-w0", started=6.0, node="w0", **kw):
    return alert(fp, started, alertname="KubeNodeNotReady", node=node, job="kube-state-metrics", **kw)


def pod_alert(fp, pod, namespace, started=6.0, **kw):
    return alert(fp, started, alertname="KubePodNotReady", namespace=namespace, pod=pod, **kw)


TARGET_DOWN = dict(
    alertname="TargetDown", job="node-exporter", namespace="monitoring", service="node-exporter"
)


def node_down_stream(resolve_at: float | None = None) -> Stream:
    """TargetDown first (for: 10m), the node and its pods about six minutes later."""
    s = Stream()
    s.deliver(0, [alert("td-ne", 0, **TARGET_DOWN)])
    firing = [
        node_alert(),
        pod_alert("p-co", "checkout-5c8d-0", "shop"),
        pod_alert("p-or", "orders-5c8d-1", "db"),
    ]
    s.deliver(6, firing)
    s.deliver(5, [alert("td-ne", 0, **TARGET_DOWN)])  # group_interval re-send
    s.deliver(11, firing)
    if resolve_at is not None:
        s.deliver(
            resolve_at,
            [
                node_alert(status="resolved", ended=resolve_at),
                pod_alert("p-co", "checkout-5c8d-0", "shop", status="resolved", ended=resolve_at),
                pod_alert("p-or", "orders-5c8d-1", "db", status="resolved", ended=resolve_at),
                alert("td-ne", 0, status="resolved", ended=resolve_at, **TARGET_DOWN),
            ],
        )
    return s


def test_symptom_before_cause_merges_into_one_page_with_paths():
    notes = run(engine(), node_down_stream(resolve_at=30))
    pages = by_action(notes, "page")
    assert len(pages) == 1
    page = pages[0]
    assert page.root_entity == "node/default/w0"
    assert page.root_alert.alertname == "KubeNodeNotReady"
    assert page.at == at(8)  # the node's 2m grace, not the TargetDown's 10m
    paths = {s.alertname + ":" + s.entity: s.path for s in page.symptoms}
    assert paths["TargetDown:service/default/monitoring/node-exporter"] == (
        "service/default/monitoring/node-exporter",
        "pod/default/monitoring/node-exporter-0",
        "node/default/w0",
    )
    assert paths["KubePodNotReady:pod/default/shop/checkout-5c8d-0"] == (
        "pod/default/shop/checkout-5c8d-0",
        "node/default/w0",
    )
    assert not by_action(notes, "notice")
    resolves = by_action(notes, "resolve")
    assert [r.incident for r in resolves] == [page.incident]
    assert resolves[0].at == at(30)


def test_duplicates_and_resends_change_nothing():
    e = engine()
    notes = run(e, node_down_stream())
    assert len(by_action(notes, "page")) == 1
    assert not by_action(notes, "update")
    assert e.counters["duplicates"] > 0
    assert e.counters["instances"] == 4


def test_stale_firing_after_resolve_does_not_reopen():
    s = Stream()
    s.deliver(0, [node_alert(started=0)])
    s.deliver(1, [node_alert(started=0, status="resolved", ended=1)])
    s.deliver(1.2, [node_alert(started=0)])  # a late replica still had it firing
    notes = run(engine(), s)
    assert [n.action for n in notes] == ["notice"]


def test_transient_root_heals_within_grace_becomes_a_notice():
    s = Stream()
    s.deliver(0, [node_alert(started=0)])
    s.deliver(1, [node_alert(started=0, status="resolved", ended=1)])
    notes = run(engine(), s)
    assert [n.action for n in notes] == ["notice"]
    assert notes[0].at == at(11)  # after the 10m reopen window
    assert "recovered by itself" in notes[0].reason


def test_flapping_is_not_healing():
    s = Stream()
    for i, start in enumerate((0.0, 6.0, 12.0)):
        s.deliver(start, [node_alert(started=start)])
        s.deliver(start + 1, [node_alert(started=start, status="resolved", ended=start + 1)])
        assert i < 3
    notes = run(engine(), s)
    pages = by_action(notes, "page")
    assert len(pages) == 1
    assert pages[0].at == at(12)
    assert "flapping" in pages[0].reason
    assert {n.incident for n in notes} == {pages[0].incident}
    assert not by_action(notes, "notice")


def test_hidden_node_inferred_then_confirmed_by_its_alert():
    s = Stream()
    s.deliver(
        0,
        [
            pod_alert("p-co", "checkout-5c8d-0", "shop", started=0),
            pod_alert("p-or", "orders-5c8d-1", "db", started=0),
        ],
    )
    s.deliver(1, [node_alert(started=1)])
    notes = run(engine(), s)
    pages = by_action(notes, "page")
    assert len(pages) == 1
    assert pages[0].root_entity == "node/default/w0"
    assert pages[0].root_alert is not None and pages[0].root_alert.alertname == "KubeNodeNotReady"
    assert {s.entity for s in pages[0].symptoms} == {
        "pod/default/shop/checkout-5c8d-0",
        "pod/default/db/orders-5c8d-1",
    }


def test_cluster_dns_inferred_from_workloads_in_several_namespaces():
    s = Stream()
    s.deliver(
        0,
        [
            pod_alert("p-co", "checkout-5c8d-0", "shop", started=0),
            pod_alert("p-fe", "frontend-5c8d-0", "web", started=0),
            pod_alert("p-gw", "gateway-5c8d-0", "pay", started=0),  # one pod in each zone
        ],
    )
    s.deliver(5, [alert("dns-down", 5, alertname="CoreDNSDown", severity="critical")])
    notes = run(engine(), s)
    pages = by_action(notes, "page")
    assert len(pages) == 1
    assert pages[0].root_entity == "dns/default/cluster-dns"
    assert pages[0].root_alert is None  # inferred minutes before CoreDNSDown fires
    assert pages[0].at == at(3)
    assert len(pages[0].symptoms) == 3
    updates = [n for n in by_action(notes, "update") if "CoreDNSDown" in n.reason]
    assert updates and updates[0].root_alert.alertname == "CoreDNSDown"


def test_unmapped_alert_is_its_own_root_and_pages():
    s = Stream()
    s.deliver(0, [alert("weird", 0, alertname="MyAppQueueStuck", team="payments")])
    notes = run(engine(), s)
    pages = by_action(notes, "page")
    assert len(pages) == 1
    assert pages[0].root_entity.startswith("alert/default/MyAppQueueStuck")
    assert pages[0].at == at(7)  # warning default grace: a group interval and the delays after it


def test_info_root_explains_but_never_pages_by_itself():
    pressure = dict(alertname="KubeNodePressure", node="w0", condition="DiskPressure", severity="info")
    alone = Stream()
    alone.deliver(0, [alert("pressure", 0, **pressure)])
    assert run(engine(), alone, until=30) == []

    with_symptoms = Stream()
    with_symptoms.deliver(0, [alert("pressure", 0, **pressure)])
    with_symptoms.deliver(1, [pod_alert("p-co", "checkout-5c8d-0", "shop", started=1)])
    notes = run(engine(), with_symptoms, until=30)
    pages = by_action(notes, "page")
    assert len(pages) == 1
    assert pages[0].root_alert.alertname == "KubeNodePressure"
    assert pages[0].severity == "warning"


def test_two_independent_faults_page_separately():
    s = Stream()
    s.deliver(0, [node_alert(started=0), pod_alert("p-co", "checkout-5c8d-0", "shop", started=0)])
    crash = alert(
        "crash-gw", 0, alertname="KubePodCrashLooping", namespace="pay", pod="gateway-5c8d-0", container="gw"
    )
    s.deliver(0.5, [crash])
    notes = run(engine(), s)
    roots = sorted(p.root_entity for p in by_action(notes, "page"))
    assert roots == ["node/default/w0", "pod/default/pay/gateway-5c8d-0"]


def test_paged_incident_adopts_its_late_cause_without_a_second_page():
    s = Stream()
    crash = alert(
        "crash-co", 0, alertname="KubePodCrashLooping", namespace="shop", pod="checkout-5c8d-0", container="c"
    )
    s.deliver(0, [crash])
    s.deliver(20, [crash, node_alert(started=20)])  # after the crash loop's 15m grace
    notes = run(engine(), s)
    pages = by_action(notes, "page")
    assert len(pages) == 1 and pages[0].root_entity == "pod/default/shop/checkout-5c8d-0"
    updates = by_action(notes, "update")
    assert updates and updates[0].incident == pages[0].incident
    assert updates[0].root_entity == "node/default/w0"
    assert "re-attributed" in updates[0].reason
    assert [s.entity for s in updates[0].symptoms] == ["pod/default/shop/checkout-5c8d-0"]


def test_symptom_outliving_its_root_is_judged_afresh():
    s = Stream()
    s.deliver(0, [node_alert(started=0), pod_alert("p-co", "checkout-5c8d-0", "shop", started=0)])
    s.deliver(20, [node_alert(started=0, status="resolved", ended=20)])
    s.deliver(25, [pod_alert("p-co", "checkout-5c8d-0", "shop", started=0)])
    s.deliver(50, [pod_alert("p-co", "checkout-5c8d-0", "shop", started=0, status="resolved", ended=50)])
    notes = run(engine(), s)
    first, second = by_action(notes, "page")
    assert first.root_entity == "node/default/w0" and first.at == at(2)
    # The pod stays attached for its 10m outlive time, then stands on its own with a fresh
    # grace (15m for KubePodNotReady).
    assert second.root_entity == "pod/default/shop/checkout-5c8d-0"
    assert second.at == at(45)
    resolve_node = [n for n in by_action(notes, "resolve") if n.incident == first.incident]
    assert resolve_node and resolve_node[0].at == at(30)


def test_symptom_of_a_quiet_root_keeps_its_age_when_it_outlives_it():
    """Disk pressure (info: quiet) explains a crash loop while it lasts; the crash loop that
    goes on after the pressure is gone was hidden under a root nobody was told of, so it owes
    no second grace: it pages once its hold after the root's recovery ends."""
    pressure = {"alertname": "KubeNodePressure", "node": "w0", "condition": "DiskPressure"}
    pressure["severity"] = "info"
    crash = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "checkout-5c8d-0"}
    s = Stream()
    s.deliver(0, [alert("pressure", 0, **pressure)])
    for minute in range(10, 45, 5):
        s.deliver(minute, [alert("crash", 10, **crash)])
    s.deliver(20, [alert("pressure", 0, status="resolved", ended=20, **pressure)])
    s.deliver(45, [alert("crash", 10, status="resolved", ended=45, **crash)])
    notes = run(engine(), s)
    pages = by_action(notes, "page")
    assert [n.root_entity for n in pages] == ["pod/default/shop/checkout-5c8d-0"]
    # Detached when its 10m hold after the pressure's end ran out, already past its own 15m
    # grace (a fresh grace would have let it heal unseen until 45m).
    assert at(30) <= pages[0].at <= at(35)


def test_watchdog_absence_pages_and_its_return_resolves():
    s = Stream()
    for minute in range(0, 25, 5):
        s.deliver(minute, [alert("wd", 0, alertname="Watchdog", severity="none")])
    s.deliver(60, [alert("wd", 0, alertname="Watchdog", severity="none")])
    notes = run(engine(), s)
    assert [n.action for n in notes] == ["page", "resolve"]
    assert notes[0].root_entity == "pipeline/default/alerting-pipeline"
    assert notes[0].at == at(20.25 + 15)  # last seen at 20m15s (the replica), timeout 15m
    assert notes[1].at >= at(60)


def test_watchdog_check_stops_at_end_of_recording():
    s = Stream()
    for minute in range(0, 25, 5):
        s.deliver(minute, [alert("wd", 0, alertname="Watchdog", severity="none")])
    assert run(engine(), s) == []


def test_human_acknowledge_and_resolve():
    e = engine()
    s = Stream()
    s.deliver(0, [node_alert(started=0)])
    notes = run(e, s, until=3)
    page = by_action(notes, "page")[0]
    ack = e.act(page.incident, "acknowledge", "alice", at(4))
    assert [n.action for n in ack] == ["update"] and "acknowledged by alice" in ack[0].reason
    done = e.act(page.incident, "resolve", "alice", at(5))
    assert [n.action for n in done] == ["resolve"] and "alice" in done[0].reason
    kinds = [ev.kind for ev in e.drain_events()]
    assert "acknowledged" in kinds and "human_resolved" in kinds


def _dns_storm() -> Stream:
    s = Stream()
    s.deliver(
        0,
        [
            pod_alert("p-co", "checkout-5c8d-0", "shop", started=0),
            pod_alert("p-fe", "frontend-5c8d-0", "web", started=0),
            pod_alert("p-gw", "gateway-5c8d-0", "pay", started=0),  # one pod in each zone
        ],
        replicas=1,
    )
    return s


def test_second_witness_confirms_an_inferred_root_minutes_earlier():
    from router.core.settings import EngineSettings

    before = by_action(run(engine(), _dns_storm()), "page")
    witnessed = Engine(small_cluster(), RULES, EngineSettings(witness={"enabled": True}))
    notes = []
    for delivery in _dns_storm().deliveries():
        notes += witnessed.ingest(delivery, delivery.received)
    checks = witnessed.drain_checks()
    assert [(c.kind, c.entity) for c in checks] == [("dns_down", "dns/default/cluster-dns")]
    notes += witnessed.witness(checks[0].id, True, "no kube-dns target is up", at(0.5))
    after = by_action(notes, "page")
    assert [p.root_entity for p in before] == [p.root_entity for p in after] == ["dns/default/cluster-dns"]
    assert before[0].at == at(3) and after[0].at == at(0.5)


def test_witness_that_sees_the_root_resolved_defers_the_page_once():
    from router.core.settings import EngineSettings

    e = Engine(small_cluster(), RULES, EngineSettings(witness={"enabled": True}))
    s = Stream()
    s.deliver(0, [node_alert(started=0)], replicas=1)
    notes = []
    for delivery in s.deliveries():
        notes += e.ingest(delivery, delivery.received)
    notes += e.tick(at(1.51))  # 30 s before the 2m grace the engine asks (a tick fires what is past)
    [check] = e.drain_checks()
    assert check.kind == "alert_firing" and check.labels["alertname"] == "KubeNodeNotReady"
    notes += e.witness(check.id, False, "ALERTS shows no firing KubeNodeNotReady", at(1.6))
    notes += e.tick(at(3))
    assert not by_action(notes, "page")  # deferred to 4m
    resolved = Stream()
    resolved.deliver(3.5, [node_alert(started=0, status="resolved", ended=3.4)], replicas=1)
    for delivery in resolved.deliveries():
        notes += e.ingest(delivery, delivery.received)
    notes += e.finish(at(3.5))
    assert [n.action for n in notes] == ["notice"]


def test_witness_timeout_never_delays_a_page_beyond_its_grace():
    from router.core.settings import EngineSettings

    e = Engine(small_cluster(), RULES, EngineSettings(witness={"enabled": True}))
    s = Stream()
    s.deliver(0, [node_alert(started=0)], replicas=1)
    notes = run(e, s, until=10)  # the check is asked and never answered
    assert [(n.action, n.at) for n in notes] == [("page", at(2))]


def test_inferred_node_waits_while_a_neighbours_only_endpoint_fails():
    """Zone z0 (w0, w1) goes dark. w0's pods say "node w0" first; the error rate of a Service
    whose one endpoint runs on w1 is trouble on w1 too, so w0 waits for its zone's picture to
    settle, and the page names the zone once w1's own alert arrives, not w0 alone."""
    topology = small_cluster()
    solo = "pod/default/web/solo-6f7d-0"
    topology.add(solo, node="node/default/w1", owner="deployment/default/web/solo")
    topology.depends(solo, "node/default/w1")
    topology.depends("deployment/default/web/solo", solo)
    topology.depends("service/default/web/solo", solo, redundant=True)
    s = Stream()
    s.deliver(
        0,
        [
            pod_alert("p-co", "checkout-5c8d-0", "shop", started=0),
            pod_alert("p-or", "orders-5c8d-1", "db", started=0),
        ],
    )
    s.deliver(1, [alert("err-solo", 1, alertname="HighErrorRate", namespace="web", service="solo")])
    s.deliver(4, [node_alert("nn-w1", started=4, node="w1")])
    pages = by_action(run(Engine(topology, RULES), s, until=30), "page")
    assert [p.root_entity for p in pages] == ["zone/default/z0"]


def test_a_daemonset_rollout_beside_an_inferred_node_pages_apart_without_spinning():
    """node-exporter's pods fail on w2 and w4 (a bad rollout) while w0 is inferred from two
    applications' pods. The DaemonSet depends on its pod on w0 too, but one dead node does not
    explain pods failing on healthy ones: two pages. Inference and attribution once disagreed
    here, and the DaemonSet was inferred and merged away again and again at one instant."""
    s = Stream()
    s.deliver(
        0,
        [
            pod_alert("p-co", "checkout-5c8d-0", "shop", started=0),
            pod_alert("p-or", "orders-5c8d-1", "db", started=0),
            pod_alert("p-ne2", "node-exporter-2", "monitoring", started=0),
            pod_alert("p-ne4", "node-exporter-4", "monitoring", started=0),
            alert(
                "ds-ne",
                0,
                alertname="KubeDaemonSetRolloutStuck",
                namespace="monitoring",
                daemonset="node-exporter",
                job="kube-state-metrics",
            ),
        ],
    )
    eng = engine()
    pages = by_action(run(eng, s, until=30), "page")
    assert sorted(p.root_entity for p in pages) == [
        "daemonset/default/monitoring/node-exporter",
        "node/default/w0",
    ]
    inferred = Counter((e.at, e.data["entity"]) for e in eng.drain_events() if e.kind == "root_inferred")
    assert max(inferred.values()) == 1


def test_a_node_agent_failing_is_node_level_evidence_for_its_zone():
    """w0 is inferred from two applications' pods; on w1, the other node of zone z0, only the
    node-exporter pod fails. A node agent failing says its node is in trouble: two of the
    zone's two nodes are, and the zone is the root (one page, not a node and a pod)."""
    s = Stream()
    s.deliver(
        0,
        [
            pod_alert("p-co", "checkout-5c8d-0", "shop", started=0),
            pod_alert("p-or", "orders-5c8d-1", "db", started=0),
            pod_alert("p-ne1", "node-exporter-1", "monitoring", started=0),
        ],
    )
    pages = by_action(run(engine(), s, until=30), "page")
    assert [p.root_entity for p in pages] == ["zone/default/z0"]


def test_two_unknown_pods_of_a_rollout_page_their_workload_on_the_inference_grace():
    """A rollout's new pods are not in the topology yet: their alerts map onto the Deployment.
    One crash-looping pod gets a pod's grace (it may heal); two at once are a broken workload,
    as the workload rule of inference reads known pods, and page on the inference's grace."""
    pods = ["checkout-7b9fd6c4d8-x2k9p", "checkout-7b9fd6c4d8-q8w7e"]
    pages = {}
    for count in (1, 2):
        s = Stream()
        crashing = [
            alert(
                f"cl-{p}",
                0,
                alertname="KubePodCrashLooping",
                namespace="shop",
                pod=p,
                job="kube-state-metrics",
            )
            for p in pods[:count]
        ]
        s.deliver(0, crashing)
        [page] = by_action(run(engine(), s, until=40), "page")
        assert page.root_entity == "deployment/default/shop/checkout"
        pages[count] = page.at
    assert pages[2] == at(3)  # inference.grace
    assert pages[1] == at(15)  # the crash-loop rule's grace


def test_a_services_own_failing_workload_explains_its_errors_before_a_callee_does():
    """frontend calls orders. w0 dies and orders errs on it; frontend's errors first attach to
    w0 through the call. Then frontend's own new pods crash-loop (a bad rollout): its own
    workload explains its errors better than a callee does, and they move to the rollout."""
    topology = small_cluster()
    topology.depends("service/default/web/frontend", "service/default/db/orders", via="calls")
    topology.depends("service/default/web/frontend", "deployment/default/web/frontend")
    s = Stream()
    s.deliver(0, [node_alert("nn-w0", started=0, node="w0")])
    s.deliver(0.5, [alert("err-or", 0.5, alertname="HighErrorRate", namespace="db", service="orders")])
    s.deliver(1, [alert("err-fe", 1, alertname="HighErrorRate", namespace="web", service="frontend")])
    new_pods = ("frontend-6d5f8b7c9-k2j4h", "frontend-6d5f8b7c9-p9z8x")
    s.deliver(
        5,
        [
            alert(
                f"cl-{p}",
                5,
                alertname="KubePodCrashLooping",
                namespace="web",
                pod=p,
                job="kube-state-metrics",
            )
            for p in new_pods
        ],
    )
    notes = run(Engine(topology, RULES), s, until=40)
    pages = {p.root_entity: p for p in by_action(notes, "page")}
    node_page = pages["node/default/w0"]
    assert "service/default/web/frontend" in {
        x.entity for x in node_page.symptoms
    }  # at first, through orders
    rollout = pages["deployment/default/web/frontend"]
    [moved] = [x for x in rollout.symptoms if x.entity == "service/default/web/frontend"]
    assert moved.path == ("service/default/web/frontend", "deployment/default/web/frontend")


def test_a_zones_second_node_shows_in_what_the_failing_applications_share():
    """w0 (zone z0) is down. cart and gateway, which run on w1 and w4 and nowhere near w0, fail
    too: the one node of z0 they share is w1, beyond what chance puts there, so z0 is the root.
    cart and frontend share no node: w0 pages alone and they stay their own."""
    roots = {}
    for other in ("gateway", "frontend"):
        namespace = {"gateway": "pay", "frontend": "web"}[other]
        s = Stream()
        s.deliver(0, [node_alert("nn-w0", started=0, node="w0")])
        s.deliver(
            1,
            [
                alert("err-cart", 1, alertname="HighErrorRate", namespace="shop", service="cart"),
                alert(f"err-{other}", 1, alertname="HighErrorRate", namespace=namespace, service=other),
            ],
        )
        pages = by_action(run(engine(), s, until=60), "page")
        roots[other] = sorted(p.root_entity for p in pages)
    assert roots["gateway"] == ["zone/default/z0"]
    assert roots["frontend"] == [
        "node/default/w0",
        "service/default/shop/cart",
        "service/default/web/frontend",
    ]


def test_one_daemonset_pod_failing_waits_for_its_nodes_own_signs():
    """node-exporter's pod on w0 and its rollout-stuck alert come first, the node's own alert
    four minutes later. A dead node leaves every DaemonSet a pod short, so a
    DaemonSet inferred from one pod waits `zone_settle` for its node: one page, on w0. Alone
    (a real one-pod rollout stuck), the DaemonSet still pages, after that wait."""
    ds_alert = alert(
        "ds-ne",
        0,
        alertname="KubeDaemonSetRolloutStuck",
        namespace="monitoring",
        daemonset="node-exporter",
        job="kube-state-metrics",
    )
    s = Stream()
    s.deliver(0, [pod_alert("p-ne0", "node-exporter-0", "monitoring", started=0), ds_alert])
    s.deliver(4, [node_alert("nn-w0", started=4, node="w0")])
    pages = by_action(run(engine(), s, until=40), "page")
    assert [p.root_entity for p in pages] == ["node/default/w0"]

    alone = Stream()
    alone.deliver(0, [pod_alert("p-ne0", "node-exporter-0", "monitoring", started=0), ds_alert])
    [page] = by_action(run(engine(), alone, until=40), "page")
    assert page.root_entity == "daemonset/default/monitoring/node-exporter"
    assert page.at == at(5)  # inference.zone_settle, not the inference's 3m grace


def _zoned_cluster(zones: dict[str, str], apps: dict[str, tuple[str, ...]]) -> Topology:
    """Nodes in zones, CoreDNS on the last node, each application in its own namespace with one
    pod on each of its nodes, every pod a client of cluster DNS."""
    t = Topology()
    dns = t.add("dns/default/cluster-dns")
    for name, zone in zones.items():
        t.add(f"node/default/{name}")
        t.depends(f"node/default/{name}", f"zone/default/{zone}")
    coredns = "pod/default/kube-system/coredns-7d9f-0"
    t.add(coredns, node=f"node/default/{name}", owner="deployment/default/kube-system/coredns")
    t.depends(coredns, f"node/default/{name}")
    t.depends(dns, coredns, redundant=True)
    for app, nodes in apps.items():
        for r, node in enumerate(nodes):
            pod = f"pod/default/{app}/{app}-5c8d-{r}"
            t.add(pod, node=f"node/default/{node}", owner=f"deployment/default/{app}/{app}")
            t.depends(pod, f"node/default/{node}")
            t.depends(pod, dns)
            t.depends(f"deployment/default/{app}/{app}", pod)
            t.depends(f"service/default/{app}/{app}", pod, redundant=True)
    return t


def test_two_applications_on_one_node_in_a_dns_outage_do_not_make_the_node_a_root():
    """Cluster DNS fails. solo1 and solo2, whose only pods run on a0, fail first: the node is a
    fair guess. A minute later web, api and batch fail on three other nodes in both zones: the
    failures are broader than a0, and whether zone za or DNS lies under them the evidence cannot
    tell yet (za holds four of five failures, but four of five applications sit there anyway).
    a0 has nothing of its own and holds two of five failures: it is withdrawn, not paged, and
    CoreDNSDown later takes everything (one page, on DNS)."""
    s = Stream()
    s.deliver(
        0,
        [
            pod_alert("p-s1", "solo1-5c8d-0", "solo1", started=0),
            pod_alert("p-s2", "solo2-5c8d-0", "solo2", started=0),
        ],
    )
    s.deliver(
        1,
        [
            pod_alert("p-web", "web-5c8d-0", "web", started=1),
            pod_alert("p-api", "api-5c8d-0", "api", started=1),
            pod_alert("p-bat", "batch-5c8d-0", "batch", started=1),
        ],
    )
    s.deliver(8, [alert("dns-down", 8, alertname="CoreDNSDown", severity="critical")])
    # Zone za (a0, a1, a2) and zb (b0): four of the five applications have a pod in za.
    topology = _zoned_cluster(
        {"a0": "za", "a1": "za", "a2": "za", "b0": "zb"},
        {"solo1": ("a0",), "solo2": ("a0",), "web": ("a1", "b0"), "api": ("a2",), "batch": ("b0",)},
    )
    eng = Engine(topology, RULES)
    notes = run(eng, s, until=40)
    events = eng.drain_events()
    assert roots(events, "root_inferred")[:1] == ["node/default/a0"]
    pages = by_action(notes, "page")
    assert [p.root_entity for p in pages] == ["dns/default/cluster-dns"]
    assert len(pages[0].symptoms) + sum(len(u.symptoms) for u in by_action(notes, "update")) >= 5


def test_what_a_failure_runs_on_explains_it_before_what_it_talks_to():
    """etcd loses quorum and pages; then w0 dies. Its kubelet goes unreachable a minute before
    the node's own alert: at that moment etcd is the only failing thing the kubelet depends on
    (it reports through the apiserver), so the alert joins etcd. Once w0 is known to fail, the
    kubelet runs on it: w0 explains it, not etcd, whose incident it leaves."""
    kubelet = dict(alertname="KubeletInstanceUnreachable", node="w0", namespace="kube-system")
    s = Stream()
    s.deliver(0, [alert("etcd", 0, alertname="etcdNoLeader", job="etcd", severity="critical")])
    s.deliver(5, [alert("kl-w0", 5, **kubelet)])
    s.deliver(6, [node_alert("nn-w0", started=6, node="w0")])
    eng = engine()
    notes = run(eng, s, until=30)
    pages = sorted(p.root_entity for p in by_action(notes, "page"))
    assert pages == ["etcd/default/etcd", "node/default/w0"]
    told: dict[str, set[str]] = {}  # root -> every symptom on-call was shown with it
    for note in notes:
        told.setdefault(note.root_entity, set()).update(s.fingerprint for s in note.symptoms)
    assert "kl-w0" in told["node/default/w0"]
    etcd = next(n.incident for n in notes if n.root_entity == "etcd/default/etcd")
    detached = [
        (e.data["fingerprint"], e.incident) for e in eng.drain_events() if e.kind == "symptom_detached"
    ]
    assert detached == [("kl-w0", etcd)]


def test_a_workload_inferred_from_a_withdrawn_hypothesis_takes_in_its_pods():
    """Pods of three applications fail in three namespaces: cluster DNS is suspected. Two of
    them recover within a minute and a second checkout pod fails: what is left is checkout's two
    pods, a bad rollout. In that one pass DNS is withdrawn and checkout inferred; the first pod,
    which was DNS's evidence, finds its own incident only once DNS is withdrawn, and checkout
    must take it in then (it once merged into that pod's incident instead, and each pod paged
    on its own)."""
    s = Stream()
    s.deliver(
        0,
        [
            pod_alert("p-co0", "checkout-5c8d-0", "shop", started=0),
            pod_alert("p-fe", "frontend-5c8d-0", "web", started=0),
            pod_alert("p-gw", "gateway-5c8d-0", "pay", started=0),
        ],
    )
    s.deliver(
        1,
        [
            pod_alert("p-fe", "frontend-5c8d-0", "web", started=0, status="resolved", ended=1),
            pod_alert("p-gw", "gateway-5c8d-0", "pay", started=0, status="resolved", ended=1),
        ],
    )
    s.deliver(1.5, [pod_alert("p-co1", "checkout-5c8d-1", "shop", started=1.5)])
    eng = engine()
    notes = run(eng, s, until=40)
    inferred = roots(eng.drain_events(), "root_inferred")
    assert inferred == ["dns/default/cluster-dns", "deployment/default/shop/checkout"]
    [page] = by_action(notes, "page")
    assert page.root_entity == "deployment/default/shop/checkout"
    assert {s.fingerprint for s in page.symptoms} == {"p-co0", "p-co1"}


def test_a_hypothesis_is_checked_again_when_its_evidence_heals():
    """w0 (zone z0) dies. cart and gateway, which share w1, the other node of z0, report errors
    for half a minute (w1 blipped): z0 is inferred from w0 and w1. Their errors resolve before
    the zone's page is due, and with them the only sign of w1: the zone is checked again at
    once and withdrawn, and w0 pages alone (it was once paged as the zone)."""
    errors = [
        alert("err-cart", 1, alertname="HighErrorRate", namespace="shop", service="cart"),
        alert("err-gw", 1, alertname="HighErrorRate", namespace="pay", service="gateway"),
    ]
    s = Stream()
    s.deliver(0, [node_alert("nn-w0", started=0, node="w0")])
    s.deliver(1, errors)
    s.deliver(1.5, [{**a, "status": "resolved", "endsAt": format_time(at(1.5))} for a in errors])
    eng = engine()
    pages = by_action(run(eng, s, until=40), "page")
    inferred = roots(eng.drain_events(), "root_inferred")
    assert inferred == ["zone/default/z0"]
    assert [p.root_entity for p in pages] == ["node/default/w0"]


def test_a_failed_scrape_of_coredns_does_not_confirm_an_inferred_dns():
    """checkout, gateway and frontend report errors in three namespaces: cluster DNS is suspected.
    A CoreDNS target then goes down (TargetDown, one replica's scrape: a class held for its
    cause, like the error rates). It joins DNS as an alert on it, but it names no failure of
    DNS, so DNS stays a hypothesis: when checkout's and gateway's errors clear a minute later it is
    checked again and withdrawn, and frontend, still failing, is left to page on its own."""
    errors = [
        alert("err-co", 0, alertname="HighErrorRate", namespace="shop", service="checkout"),
        alert("err-gw", 0, alertname="HighErrorRate", namespace="pay", service="gateway"),
    ]
    frontend = alert("err-fe", 0, alertname="HighErrorRate", namespace="web", service="frontend")
    scrape = dict(alertname="TargetDown", job="kube-dns", namespace="kube-system", service="kube-dns")
    s = Stream()
    s.deliver(0, [*errors, frontend])
    s.deliver(1, [alert("td-dns", 1, **scrape)])
    s.deliver(2, [{**a, "status": "resolved", "endsAt": format_time(at(2))} for a in errors])
    s.deliver(3, [alert("td-dns", 1, status="resolved", ended=3, **scrape)])
    eng = engine()
    pages = by_action(run(eng, s, until=40), "page")
    events = eng.drain_events()
    assert roots(events, "root_inferred") == ["dns/default/cluster-dns"]
    assert roots(events, "root_withdrawn") == ["dns/default/cluster-dns"]
    assert [p.root_entity for p in pages] == ["service/default/web/frontend"]


def test_an_application_whose_scrapes_fail_is_no_evidence_of_a_dns_outage():
    """checkout, gateway and frontend report errors in three namespaces: cluster DNS is
    suspected. A minute later checkout's own targets are down (TargetDown of its job).
    Prometheus scrapes the pod IPs it lists from the API, with no name lookup: checkout's pods
    are down whatever DNS does, and two applications are not a DNS outage. DNS is withdrawn;
    when both of checkout's pods crash-loop its Deployment is the root (a bad rollout). Without
    the failed scrape the crash loops join DNS and DNS pages."""
    errors = [
        alert("err-co", 0, alertname="HighErrorRate", namespace="shop", service="checkout"),
        alert("err-gw", 0, alertname="HighErrorRate", namespace="pay", service="gateway"),
        alert("err-fe", 0, alertname="HighErrorRate", namespace="web", service="frontend"),
    ]
    scrape = alert("td-co", 0.5, alertname="TargetDown", job="checkout", namespace="shop", service="checkout")
    loops = [
        alert(f"cl-co-{r}", 3, alertname="KubePodCrashLooping", namespace="shop", pod=f"checkout-5c8d-{r}")
        for r in range(2)
    ]

    def replay(with_scrape: bool) -> tuple[list[str], list[str]]:
        s = Stream()
        s.deliver(0, errors)
        if with_scrape:
            s.deliver(1, [scrape])
        s.deliver(3, loops)
        eng = engine()
        pages = by_action(run(eng, s, until=40), "page")
        return roots(eng.drain_events(), "root_withdrawn"), [p.root_entity for p in pages]

    assert replay(with_scrape=False) == ([], ["dns/default/cluster-dns"])
    withdrawn, pages = replay(with_scrape=True)
    assert withdrawn == ["dns/default/cluster-dns"]
    assert "dns/default/cluster-dns" not in pages
    assert pages[0] == "deployment/default/shop/checkout"


def test_a_node_whose_own_agent_fails_takes_its_applications_from_a_standing_dns():
    """Pods of checkout, frontend and orders fail in three namespaces on three nodes: cluster
    DNS is inferred. Then cart and gateway, whose pods share w4, fail too, and DNS, standing,
    takes them as well. When w4's kubelet goes unreachable, w4 fails by its own signs: that is
    new evidence, not an equally good explanation to trade DNS for, so w4 is judged before the
    standing DNS and takes the applications that run on it; DNS keeps the other three."""
    s = Stream()
    s.deliver(
        0,
        [
            pod_alert("p-co", "checkout-5c8d-0", "shop", started=0),  # w0
            pod_alert("p-fe", "frontend-5c8d-0", "web", started=0),  # w2
            pod_alert("p-or", "orders-5c8d-0", "db", started=0),  # w3
        ],
    )
    s.deliver(
        1,
        [
            pod_alert("p-ca", "cart-5c8d-1", "shop", started=1),  # w4
            pod_alert("p-gw", "gateway-5c8d-0", "pay", started=1),  # w4
        ],
    )
    s.deliver(
        2, [alert("kl-w4", 2, alertname="KubeletInstanceUnreachable", node="w4", namespace="kube-system")]
    )
    eng = engine()
    run(eng, s, until=2.5)
    inferred = roots(eng.drain_events(), "root_inferred")
    assert inferred == ["dns/default/cluster-dns", "node/default/w4"]
    where = {fp: eng.book[a.incident].root for fp, a in eng.alerts.items() if a.incident}
    assert where["p-ca"] == where["p-gw"] == where["kl-w4"] == "node/default/w4"
    assert where["p-co"] == where["p-fe"] == where["p-or"] == "dns/default/cluster-dns"


def test_crash_loops_on_one_node_say_nothing_against_the_node():
    """cart's and gateway's only failing pods share w1 and crash-loop for ten minutes. A crash
    loop is the kubelet restarting a container: w1 is up, so it is not inferred from them, and
    each pod, healed within its grace, stays quiet."""
    crash = dict(alertname="KubePodCrashLooping", job="kube-state-metrics", reason="CrashLoopBackOff")
    loops = [
        alert("cl-ca", 0, namespace="shop", pod="cart-5c8d-0", **crash),  # w1
        alert("cl-gw", 0, namespace="pay", pod="gateway-5c8d-1", **crash),  # w1
    ]
    s = Stream()
    s.deliver(0, loops)
    s.deliver(10, [{**a, "status": "resolved", "endsAt": format_time(at(10))} for a in loops])
    eng = engine()
    notes = run(eng, s, until=40)
    assert not [e for e in eng.drain_events() if e.kind == "root_inferred"]
    assert not by_action(notes, "page")


def test_a_large_zone_whose_nodes_alert_in_two_batches_pages_once_on_the_zone():
    """Zone za (seven nodes) goes dark. Alertmanager delivers the nodes' KubeNodeNotReady in
    two group intervals: three nodes first, too few to call it the zone (four are needed), the
    other four five minutes later. Each of the first three would page on its own 2m grace; with
    two or more other nodes of its zone down by their own alerts, each waits for the zone's
    picture to settle instead, and the second batch makes it the zone: one page. So does an
    application whose only failing pod sits on a node whose alert is in the second batch: it
    is not inferred a bad rollout and paged before the zone."""
    zones = {f"a{i}": "za" for i in range(7)} | {"b0": "zb", "b1": "zb"}
    topology = _zoned_cluster(zones, {"shop": ("a6", "b0")})
    short = dict(alertname="KubeDeploymentReplicasMismatch", namespace="shop", deployment="shop")
    s = Stream()
    s.deliver(0, [node_alert(f"nn-a{i}", started=0, node=f"a{i}") for i in range(3)])
    s.deliver(1, [pod_alert("p-shop", "shop-5c8d-0", "shop", started=1), alert("rm-shop", 1, **short)])
    s.deliver(5, [node_alert(f"nn-a{i}", started=0, node=f"a{i}") for i in range(3, 7)])
    eng = Engine(topology, RULES)
    pages = by_action(run(eng, s, until=40), "page")
    assert [p.root_entity for p in pages] == ["zone/default/za"]


def test_an_inferred_node_gives_its_own_alerts_a_group_interval_after_its_pods_alerts():
    """cart's and gateway's pods on w1 go not ready (KubePodNotReady, 15m `for:`) and nothing
    else fails: w1 is inferred. Had w1 died, its own KubeNodeNotReady (the same `for:`) would
    come with them, a group interval apart at most; so the pods' alerts make w1 page only after
    `zone_settle` more. CoreDNSDown arrives in that wait: the pods were DNS's clients, w1 is
    withdrawn, and the one page names cluster DNS."""
    s = Stream()
    s.deliver(
        0,
        [
            pod_alert("p-ca", "cart-5c8d-0", "shop", started=0),  # w1
            pod_alert("p-gw", "gateway-5c8d-1", "pay", started=0),  # w1
        ],
    )
    s.deliver(4, [alert("dns-down", 4, alertname="CoreDNSDown", severity="critical")])
    eng = engine()
    pages = by_action(run(eng, s, until=40), "page")
    events = eng.drain_events()
    assert roots(events, "root_inferred") == ["node/default/w1"]
    assert roots(events, "root_withdrawn") == ["node/default/w1"]
    assert [p.root_entity for p in pages] == ["dns/default/cluster-dns"]


KUBELET_W0 = dict(alertname="KubeletInstanceUnreachable", node="w0", namespace="kube-system")


def test_a_kubelet_out_of_reach_waits_a_group_interval_for_its_nodes_own_alert():
    """w0's kubelet stops answering scrapes; the node's NotReady fires a minute later but lands
    in the group's next flush, 5m20s after the first (one group for everything, group_interval
    5m, a receiver that answers in 20 s). A 5m grace would page the kubelet moments before the
    node's alert comes; its 7m grace covers that group interval, and the one page names the
    node. A kubelet that fails alone still pages, when its grace ends."""
    s = Stream()
    s.deliver(0, [alert("kl-w0", 0, **KUBELET_W0)])
    s.deliver(5 + 20 / 60, [alert("kl-w0", 0, **KUBELET_W0), node_alert(started=1)])
    pages = by_action(run(engine(), s, until=40), "page")
    assert [p.root_entity for p in pages] == ["node/default/w0"]
    alone = Stream()
    alone.deliver(0, [alert("kl-w0", 0, **KUBELET_W0)])
    [page] = by_action(run(engine(), alone, until=40), "page")
    assert page.root_entity == "node/default/w0/kubelet"
    assert page.at == at(7)


def exporters_down(share: str, started: float = 0) -> dict:
    """kube-prometheus' TargetDown for the node exporters, its share of targets in the text."""
    down = alert("td-ne", started, alertname="TargetDown", job="node-exporter", namespace="monitoring",
                 service="node-exporter")  # fmt: skip
    down["annotations"]["description"] = (
        f"{share}% of the node-exporter/node-exporter targets in monitoring namespace are down."
    )
    return down


def test_a_node_waits_while_the_share_of_nodes_down_says_others_are_on_their_way():
    """A third of the six node exporters is down: two nodes, and only w0 has said so. Its page
    waits for the other one, whose NotReady lands 3.5 minutes later (another Alertmanager
    group): both are z0, and the one page names the zone. When the share counts w0 alone, w0
    pages on its own grace."""
    s = Stream()
    s.deliver(0, [exporters_down("33.33")])
    s.deliver(0.5, [node_alert(started=0.5)])
    s.deliver(4, [node_alert("nn-w1", started=4, node="w1")])
    [page] = by_action(run(engine(), s, until=40), "page")
    assert page.root_entity == "zone/default/z0"
    one = Stream()
    one.deliver(0, [exporters_down("16.67")])
    one.deliver(0.5, [node_alert(started=0.5)])
    [page] = by_action(run(engine(), one, until=40), "page")
    assert (page.root_entity, page.at) == ("node/default/w0", at(2.5))


def test_alerts_of_a_named_cluster_find_a_topology_dumped_without_the_label():
    """kube-state-metrics dumped with curl carries no `cluster` label (Prometheus adds it, as an
    external label, only to what it sends); the alerts carry `cluster="prod"`. The topology is
    that cluster: w0's NotReady explains its pods' alerts, and the page names node/prod/w0."""
    s = Stream()
    s.deliver(
        0,
        [
            pod_alert("p-co", "checkout-5c8d-0", "shop", started=0, cluster="prod"),
            pod_alert("p-or", "orders-5c8d-1", "db", started=0, cluster="prod"),
        ],
    )
    s.deliver(1, [node_alert(started=1, cluster="prod")])
    eng = engine()
    pages = by_action(run(eng, s, until=30), "page")
    assert [p.root_entity for p in pages] == ["node/prod/w0"]
    assert {x.entity for x in pages[0].symptoms} == {
        "pod/prod/shop/checkout-5c8d-0",
        "pod/prod/db/orders-5c8d-1",
    }
    named = [e for e in eng.drain_events() if e.kind == "cluster_named"]
    assert [e.data["cluster"] for e in named] == ["prod"]


def test_a_workload_alert_after_its_one_failing_pod_makes_the_workload_the_root():
    """checkout's new pod crash-loops; eight minutes later its Deployment reports the rollout
    stuck. One pod and the workload's own alert make the workload the root (a bad rollout), not
    the pod, though the alert came after the pod's incident took the pod in. Without the
    rollout alert the pod pages alone."""
    pod = dict(namespace="shop", pod="checkout-5c8d-0")
    stuck = alert("rs-co", 8, alertname="KubeDeploymentRolloutStuck", namespace="shop", deployment="checkout")

    def pages(with_stuck: bool) -> list[str]:
        s = Stream()
        s.deliver(0, [alert("nr-co", 0, alertname="KubePodNotReady", **pod)])
        s.deliver(0.5, [alert("cl-co", 0.5, alertname="KubePodCrashLooping", **pod)])
        if with_stuck:
            s.deliver(8, [stuck])
        return [p.root_entity for p in by_action(run(engine(), s, until=40), "page")]

    assert pages(with_stuck=False) == ["pod/default/shop/checkout-5c8d-0"]
    assert pages(with_stuck=True) == ["deployment/default/shop/checkout"]


def test_a_node_whose_kubelet_restarts_a_crash_looping_pod_is_no_hidden_root():
    """solo1 and solo2 run their one pod each on a0. solo1's pod crash-loops and is not ready,
    solo2's is not ready: two workloads confined to one node, as a dead node would show. But
    a crash loop is a0's kubelet restarting a container: a0 is up, and is not inferred (two
    bad rollouts that happen to share a node). Without the crash loop a0 is inferred."""
    topology = _zoned_cluster({"a0": "za", "b0": "zb"}, {"solo1": ("a0",), "solo2": ("a0",), "web": ("b0",)})

    def inferred(crash_loop: bool) -> list[str]:
        s = Stream()
        alerts = [
            alert("nr-1", 0, alertname="KubePodNotReady", namespace="solo1", pod="solo1-5c8d-0"),
            alert("nr-2", 0, alertname="KubePodNotReady", namespace="solo2", pod="solo2-5c8d-0"),
        ]
        if crash_loop:
            alerts.append(
                alert("cl-1", 0, alertname="KubePodCrashLooping", namespace="solo1", pod="solo1-5c8d-0")
            )
        s.deliver(0, alerts)
        eng = Engine(topology, RULES)
        run(eng, s, until=30)
        return roots(eng.drain_events(), "root_inferred")

    assert inferred(crash_loop=False) == ["node/default/a0"]
    assert "node/default/a0" not in inferred(crash_loop=True)


def test_an_alert_firing_long_before_the_router_listened_is_told_not_paged():
    """A blackbox target has been down for three days when the router receives its first
    delivery: whoever routed alerts before told someone, or it is accepted noise. It is a
    notice, not a page. The same alert starting while the router listens pages, and so does
    one that started 50 minutes before it listened (an outage in progress at deployment)."""
    target = dict(alertname="TargetDown", job="blackbox-exporter", namespace="monitoring")

    def actions(started: float) -> list[str]:
        s = Stream()
        s.deliver(0, [alert("td-bb", started, **target)])
        return [n.action for n in run(engine(), s, until=40) if n.action in ("page", "notice")]

    assert actions(started=-3 * 24 * 60) == ["notice"]
    assert actions(started=-50) == ["page"]
    assert actions(started=0) == ["page"]


def test_a_crash_loop_arriving_on_an_inferred_node_withdraws_it():
    """solo1's and solo2's only pods, both on a0, go not ready: a0 is inferred. A minute later
    solo1's pod is seen crash-looping: a0's kubelet is restarting it, so a0 is up. The crash
    loop joins a0's incident as a symptom, and a0 is checked again at once and withdrawn
    before its grace ends: nothing pages on a0."""
    topology = _zoned_cluster({"a0": "za", "b0": "zb"}, {"solo1": ("a0",), "solo2": ("a0",), "web": ("b0",)})
    s = Stream()
    s.deliver(
        0,
        [
            alert("nr-1", 0, alertname="KubePodNotReady", namespace="solo1", pod="solo1-5c8d-0"),
            alert("nr-2", 0, alertname="KubePodNotReady", namespace="solo2", pod="solo2-5c8d-0"),
        ],
    )
    s.deliver(1, [alert("cl-1", 1, alertname="KubePodCrashLooping", namespace="solo1", pod="solo1-5c8d-0")])
    eng = Engine(topology, RULES)
    pages = by_action(run(eng, s, until=40), "page")
    events = eng.drain_events()
    assert roots(events, "root_inferred")[:1] == ["node/default/a0"]
    withdrawn = [e for e in events if e.kind == "root_withdrawn" and e.data["entity"] == "node/default/a0"]
    assert withdrawn and withdrawn[0].at == at(1)
    assert "node/default/a0" not in [p.root_entity for p in pages]


def test_an_inferred_dns_waits_while_the_share_of_nodes_down_says_a_node_is_on_its_way():
    """Applications of three namespaces fail at once: cluster DNS, by the evidence. But the node
    exporters' TargetDown says a node is down that has not said so itself (its NotReady fires
    five minutes and more later, `for: 15m` against 10m). DNS waits for it: when w0's NotReady
    comes, DNS is withdrawn and w0 pages; when it never comes, DNS pages at the wait's end.
    Without the report DNS pages on its grace, as before."""
    failing = [
        pod_alert("p-co", "checkout-5c8d-0", "shop", started=0.5),  # on w0
        pod_alert("p-fe", "frontend-5c8d-0", "web", started=0.5),
        pod_alert("p-gw", "gateway-5c8d-0", "pay", started=0.5),
    ]
    wait = EngineSettings().inference.unseen_nodes_wait.total_seconds() / 60
    reported = Stream()
    reported.deliver(0, [exporters_down("16.67")])
    reported.deliver(0.5, failing)
    reported.deliver(6, [node_alert(started=6)])
    pages = by_action(run(engine(), reported, until=60), "page")
    assert "dns/default/cluster-dns" not in [p.root_entity for p in pages]
    assert pages[0].root_entity == "node/default/w0"
    never = Stream()
    never.deliver(0, [exporters_down("16.67")])
    never.deliver(0.5, failing)
    page = by_action(run(engine(), never, until=60), "page")[0]  # the exporters' TargetDown pages later
    assert (page.root_entity, page.at) == ("dns/default/cluster-dns", at(wait))
    unreported = Stream()
    unreported.deliver(0.5, failing)
    [page] = by_action(run(engine(), unreported, until=60), "page")
    assert (page.root_entity, page.at) == ("dns/default/cluster-dns", at(3.5))


def test_the_other_node_of_a_zone_may_show_a_group_interval_after_its_not_ready_fires():
    """TargetDown (`for: 10m`) counts two nodes down; their NotReady (`for: 15m`) fires five
    minutes after it, w0's at once, w1's at its group's next flush, five minutes later still.
    w0 waits for it, and the one page names the zone."""
    s = Stream()
    s.deliver(0, [exporters_down("33.33")])
    s.deliver(5.5, [node_alert(started=5.5)])
    s.deliver(5.5 + 5 + 0.5, [node_alert("nn-w1", started=5.5, node="w1")])  # + group interval, delays
    [page] = by_action(run(engine(), s, until=40), "page")
    assert page.root_entity == "zone/default/z0"


def test_a_notice_for_an_alert_judged_afresh_after_it_ended_tells_how_long_it_lasted():
    """Two pods on w0 fail: w0 is inferred. orders' pod recovers after two minutes and the
    node is withdrawn (one workload left); the ended alert, judged afresh, is a notice that
    says it lasted two minutes, not the zero seconds of the incident opened for it."""
    s = Stream()
    s.deliver(
        1,
        [
            pod_alert("p-co", "checkout-5c8d-0", "shop", started=1),
            pod_alert("p-or", "orders-5c8d-1", "db", started=1),
        ],
    )
    s.deliver(3, [pod_alert("p-or", "orders-5c8d-1", "db", started=1, status="resolved", ended=3)])
    [notice] = by_action(run(engine(), s, until=60), "notice")
    assert notice.root_entity == "pod/default/db/orders-5c8d-1"
    assert "recovered by itself after 2m," in notice.reason


def test_an_inferred_dns_does_not_page_early_on_one_pods_alert():
    """One pod crash-looping and two Services' error rates in three namespaces: cluster DNS by
    the evidence. But the crash loop (`for: 15m`) began before the others failed and may be a
    fault of its own; the error rates are held for a cause. DNS pages when a second entity's
    evidence is ready, or when the crash loop would have paged on its own (its 15m grace), not
    three minutes in. Two pods crash-looping in two namespaces make it page on its grace."""
    one = Stream()
    one.deliver(
        0, [alert("crash", 0, alertname="KubePodCrashLooping", namespace="shop", pod="checkout-5c8d-0")]
    )
    one.deliver(
        0.5,
        [
            alert("fe", 0.5, alertname="HighErrorRate", namespace="web", service="frontend"),
            alert("gw", 0.5, alertname="HighErrorRate", namespace="pay", service="gateway"),
        ],
    )
    [page] = by_action(run(engine(), one, until=60), "page")
    assert (page.root_entity, page.at) == ("dns/default/cluster-dns", at(15))
    two = Stream()
    two.deliver(
        0,
        [
            alert("crash-co", 0, alertname="KubePodCrashLooping", namespace="shop", pod="checkout-5c8d-0"),
            alert("crash-or", 0, alertname="KubePodCrashLooping", namespace="db", pod="orders-5c8d-0"),
            alert("fe", 0, alertname="HighErrorRate", namespace="web", service="frontend"),
        ],
    )
    [page] = by_action(run(engine(), two, until=60), "page")
    assert (page.root_entity, page.at) == ("dns/default/cluster-dns", at(3))
