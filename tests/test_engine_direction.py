"""Service-to-service dependencies in the engine: which way a failure travels, and changes as
causes (docs/engine.md, "Direction" and "Changes as causes").

The shop: frontend calls checkout; checkout calls payment and email. Errors and latency travel
from callee to caller (checkout's errors are explained by a failing payment); starvation
travels the other way (email receiving no requests is explained by a failing caller).
"""

from __future__ import annotations

from router.core.engine import Engine
from rules.ruleset import RuleSet
from tests.world import Stream, alert, call_graph, run
from topology.fileformat import build_topology_file
from topology.graph import Topology

RULES = RuleSet.load()
NS = "shop"


def shop(changes: list[dict] | None = None) -> Topology:
    services = {
        "frontend": ["checkout"],
        "checkout": ["payment", "email"],
        "payment": [],
        "email": [],
    }
    document = {
        "kind": "alert-router/topology",
        "nodes": [{"name": "w1"}, {"name": "w2"}],
        "pods": [
            {
                "namespace": NS,
                "name": f"{s}-5c8d-abcde",
                "node": "w1" if i % 2 else "w2",
                "owner": f"deployment/{s}",
            }
            for i, s in enumerate(services)
        ],
        "services": [
            {"namespace": NS, "name": s, "pods": [f"{s}-5c8d-abcde"], "calls": calls}
            for s, calls in services.items()
        ],
        "entities": [
            {"name": f"deployment/default/{NS}/payment", "depends_on": [f"configmap/default/{NS}/flags"]}
        ],
        "changes": changes or [],
    }
    return build_topology_file(document, "<shop>")


def app(fp: str, started: float, alertname: str, service: str, **kw: str) -> dict:
    return alert(fp, started, alertname=alertname, namespace=NS, service_name=service, **kw)


def errors(fp: str, started: float, service: str) -> dict:
    return app(fp, started, "HighRequestErrorRate", service)


def starving(fp: str, started: float, service: str) -> dict:
    return app(fp, started, "NoRequestsReceived", service)


def pages(notes):
    return [n for n in notes if n.action == "page"]


def the_lead(stream: Stream, root: str, kind: str, cause: str):
    """The one page of the shop's stream: on service `root`, naming `cause` as a lead of `kind`."""
    [page] = pages(run(Engine(shop(), RULES), stream, until=60))
    assert page.root_entity == f"service/default/{NS}/{root}"
    named = page.extra["likely_cause"]
    assert (named["kind"], named["entity"]) == (kind, f"service/default/{NS}/{cause}")
    assert named["path"] == [page.root_entity, named["entity"]]
    return page


def test_rules_say_which_way_each_class_travels():
    topology = shop()
    err = RULES.classify(
        {"alertname": "HighRequestErrorRate", "namespace": NS, "service_name": "email"}, topology
    )
    starve = RULES.classify(
        {"alertname": "NoRequestsReceived", "namespace": NS, "service_name": "email"}, topology
    )
    lag = RULES.classify({"alertname": "HighKafkaConsumerLag", "namespace": NS, "service": "email"}, topology)
    assert (err.rule, err.explained_by, err.propagates) == ("app-errors", "dependencies", True)
    assert (starve.rule, starve.explained_by, starve.propagates) == ("app-starvation", "dependents", False)
    assert (lag.rule, lag.explained_by) == ("app-consumer-lag", "dependencies")
    assert err.entity == starve.entity == f"service/default/{NS}/email"


def test_every_service_label_spelling_names_the_service():
    topology = shop()
    for label in (
        "service_name",
        "service.name",
        "service",
        "app.kubernetes.io/name",
        "app_kubernetes_io_name",
    ):
        for alertname in ("HighRequestLatency", "SomethingNoRuleKnows"):
            found = RULES.classify({"alertname": alertname, "namespace": NS, label: "payment"}, topology)
            assert found.entity == f"service/default/{NS}/payment", (label, alertname, found.how)
    by_job = RULES.classify({"alertname": "HighRequestLatency", "namespace": NS, "job": "payment"}, topology)
    assert by_job.entity == f"service/default/{NS}/payment"


def test_errors_travel_from_callee_to_callers_over_call_edges():
    s = Stream()
    s.deliver(0, [errors("e-pay", 0, "payment")])
    s.deliver(1, [errors("e-co", 1, "checkout"), errors("e-fe", 1, "frontend")])
    notes = run(Engine(shop(), RULES), s, until=60)
    [page] = pages(notes)
    assert page.root_entity == f"service/default/{NS}/payment"
    paths = {x.entity.rsplit("/", 1)[1]: x.path for x in page.symptoms}
    assert paths["frontend"] == (
        f"service/default/{NS}/frontend",
        f"service/default/{NS}/checkout",
        f"service/default/{NS}/payment",
    )


def test_starvation_is_explained_by_a_failing_caller_not_a_failing_callee():
    s = Stream()
    s.deliver(0, [errors("e-pay", 0, "payment"), errors("e-co", 0.5, "checkout")])
    # email starves because checkout fails (it aborts before sending mail): a symptom of payment
    # through checkout. checkout's own starvation would not be explained by payment (a callee).
    s.deliver(2, [starving("s-mail", 2, "email")])
    notes = run(Engine(shop(), RULES), s, until=60)
    [page] = pages(notes)
    assert page.root_entity == f"service/default/{NS}/payment"
    [mail] = [x for x in page.symptoms if x.alertname == "NoRequestsReceived"]
    assert mail.path == (
        f"service/default/{NS}/email",
        f"service/default/{NS}/checkout",
        f"service/default/{NS}/payment",
    )


def test_starvation_before_its_cause_joins_it_when_the_caller_fails():
    s = Stream()
    s.deliver(0, [starving("s-mail", 0, "email"), starving("s-pay", 0, "payment")])
    s.deliver(4, [errors("e-co", 4, "checkout")])
    notes = run(Engine(shop(), RULES), s, until=90)
    [page] = pages(notes)
    assert page.root_entity == f"service/default/{NS}/checkout"
    assert sorted(x.alertname + ":" + x.entity.rsplit("/", 1)[1] for x in page.symptoms) == [
        "NoRequestsReceived:email",
        "NoRequestsReceived:payment",
    ]


def test_a_failing_callee_does_not_explain_its_callers_starvation():
    s = Stream()
    s.deliver(0, [errors("e-pay", 0, "payment")])
    s.deliver(1, [starving("s-fe", 1, "frontend")])  # nobody calls the frontend: its own problem
    notes = run(Engine(shop(), RULES), s, until=90)
    roots = sorted(p.root_entity.rsplit("/", 1)[1] for p in pages(notes))
    assert roots == ["frontend", "payment"]


def test_a_change_shortly_before_the_failure_is_named_as_its_likely_cause():
    edited = {"entity": f"configmap/default/{NS}/flags", "at": "2026-10-06T00:58:00Z", "what": "edited"}
    older = {"entity": f"deployment/default/{NS}/email", "at": "2026-10-05T22:00:00Z", "what": "rolled out"}
    s = Stream()
    s.deliver(0, [errors("e-pay", 0, "payment")])
    s.deliver(1, [errors("e-co", 1, "checkout")])
    engine = Engine(shop([edited, older]), RULES)
    notes = run(engine, s, until=60)
    [page] = pages(notes)
    cause = page.extra["likely_cause"]
    assert cause["entity"] == f"configmap/default/{NS}/flags"
    assert cause["at"] == "2026-10-06T00:58:00.000Z"
    assert cause["path"][0] == f"service/default/{NS}/payment" and cause["path"][-1] == cause["entity"]
    assert "likely cause: edited on" in page.reason
    [event] = [e for e in engine.drain_events() if e.kind == "likely_cause"]
    assert event.incident == page.incident and event.data["entity"] == cause["entity"]


def test_no_change_is_named_when_nothing_changed_near_the_root_in_time():
    long_ago = {"entity": f"configmap/default/{NS}/flags", "at": "2026-10-05T20:00:00Z", "what": "edited"}
    elsewhere = {"entity": "configmap/default/other/flags", "at": "2026-10-06T00:59:00Z", "what": "edited"}
    s = Stream()
    s.deliver(0, [errors("e-pay", 0, "payment")])
    notes = run(Engine(shop([long_ago, elsewhere]), RULES), s, until=60)
    [page] = pages(notes)
    assert "likely_cause" not in page.extra
    assert "likely cause" not in page.reason


def test_a_change_to_what_the_root_runs_on_beats_a_later_one_elsewhere_in_its_namespace():
    own = {"entity": f"deployment/default/{NS}/payment", "at": "2026-10-06T00:40:00Z", "what": "rolled out"}
    neighbour = {
        "entity": f"deployment/default/{NS}/frontend",
        "at": "2026-10-06T00:59:00Z",
        "what": "rolled out",
    }
    s = Stream()
    s.deliver(0, [errors("e-pay", 0, "payment")])
    notes = run(Engine(shop([own, neighbour]), RULES), s, until=60)
    [page] = pages(notes)
    assert page.extra["likely_cause"]["entity"] == own["entity"]


def test_the_one_silent_callee_of_a_failing_caller_is_named_as_unreachable():
    s = Stream()
    s.deliver(0, [errors("e-co", 0, "checkout")])
    s.deliver(1, [starving("s-mail", 1, "email")])  # payment still gets its requests
    page = the_lead(s, "checkout", "unreachable", "email")
    assert "unreachable" in page.reason


def test_a_caller_whose_callees_all_starve_broke_itself():
    s = Stream()
    s.deliver(0, [errors("e-co", 0, "checkout")])
    s.deliver(1, [starving("s-mail", 1, "email"), starving("s-pay", 1, "payment")])
    notes = run(Engine(shop(), RULES), s, until=60)
    [page] = pages(notes)
    assert page.root_entity == f"service/default/{NS}/checkout"
    assert "likely_cause" not in page.extra
    assert len(page.symptoms) == 2


def test_services_without_requests_point_at_no_node():
    """a and b run on n1, and both go without requests with nothing to explain it. That says
    their callers stopped calling, not that n1 is down (two failing services with their pods on
    one node would make the node the inferred root)."""
    placed = (("a", "n1"), ("b", "n1"), ("c", "n2"), ("d", "n3"))
    document = {
        "kind": "alert-router/topology",
        "nodes": [{"name": "n1", "zone": "z1"}, {"name": "n2", "zone": "z2"}, {"name": "n3", "zone": "z1"}],
        "pods": [
            {"namespace": NS, "name": f"{s}-5c8d-abcde", "node": n, "owner": f"deployment/{s}"}
            for s, n in placed
        ],
        "services": [{"namespace": NS, "name": s, "pods": [f"{s}-5c8d-abcde"]} for s, _ in placed],
    }
    stream = Stream()
    stream.deliver(0, [starving("s-a", 0, "a"), starving("s-b", 0, "b")])
    notes = run(Engine(build_topology_file(document, "<n1>"), RULES), stream, until=90)
    assert sorted(p.root_entity for p in pages(notes)) == [
        f"service/default/{NS}/a",
        f"service/default/{NS}/b",
    ]
    errors_instead = Stream()
    errors_instead.deliver(0, [errors("e-a", 0, "a"), errors("e-b", 0, "b")])
    notes = run(Engine(build_topology_file(document, "<n1>"), RULES), errors_instead, until=90)
    assert [p.root_entity for p in pages(notes)] == ["node/default/n1"]  # what errors would say


def test_the_only_callee_of_a_failing_caller_is_named_as_its_lead():
    """frontend calls checkout alone: its errors with nothing changed in it point there."""
    s = Stream()
    s.deliver(0, [errors("e-fe", 0, "frontend")])
    page = the_lead(s, "frontend", "callee", "checkout")
    assert "likely cause: service shop/checkout, the only callee of service shop/frontend" in page.reason


def test_a_caller_of_several_services_or_a_recent_change_names_no_callee():
    s = Stream()
    s.deliver(0, [errors("e-co", 0, "checkout")])  # checkout calls payment and email: which?
    [page] = pages(run(Engine(shop(), RULES), s, until=60))
    assert "likely_cause" not in page.extra
    # A change in the namespace just before the failure (a NetworkPolicy) beats the graph's guess;
    # one long before does not.
    policy = {"entity": f"networkpolicy/default/{NS}/deny", "at": "2026-10-06T00:55:00Z", "what": "created"}
    old = {"entity": f"networkpolicy/default/{NS}/deny", "at": "2026-10-06T00:20:00Z", "what": "created"}
    for change, kind in ((policy, "change"), (old, "callee")):
        s = Stream()
        s.deliver(0, [errors("e-fe", 0, "frontend")])
        [page] = pages(run(Engine(shop([change]), RULES), s, until=60))
        assert page.extra["likely_cause"]["kind"] == kind


def saturation(fp: str, started: float) -> dict:
    return alert(fp, started, alertname="NodeSystemSaturation", instance="10.0.0.1:9100", job="node-exporter")


def test_on_a_saturated_node_the_one_workload_in_trouble_is_named_as_its_lead():
    """n1's load comes from what runs there: of its residents a and b, a alone shows trouble its
    callees do not explain (c's errors come from a call to a, and c runs elsewhere)."""
    topology = call_graph({"a": [], "b": [], "c": ["a", "b"]}, on_n1={"a", "b"})
    s = Stream()
    s.deliver(0, [saturation("sat", 0)])
    s.deliver(1, [starving("s-a", 1, "a"), errors("e-c", 1, "c")])
    [page] = pages(run(Engine(topology, RULES), s, until=60))
    assert page.root_entity == "node/default/n1"
    cause = page.extra["likely_cause"]
    assert (cause["kind"], cause["entity"], cause["path"]) == (
        "resident",
        f"service/default/{NS}/a",
        ["node/default/n1", f"service/default/{NS}/a"],
    )
    assert "in trouble while it is saturated" in page.reason


def test_a_saturated_node_names_no_workload_when_several_or_only_victims_are_in_trouble():
    topology = call_graph({"a": ["d"], "b": [], "d": []}, on_n1={"a", "b"})
    both = Stream()
    both.deliver(0, [saturation("sat", 0)])
    both.deliver(1, [errors("e-a", 1, "a"), starving("s-b", 1, "b")])
    [page] = pages(run(Engine(topology, RULES), both, until=60))
    assert "likely_cause" not in page.extra
    # a's errors come from d, failing on n2: a is d's victim, so b is the one left in trouble.
    victim = Stream()
    victim.deliver(0, [saturation("sat", 0)])
    victim.deliver(1, [errors("e-d", 1, "d"), errors("e-a", 1, "a"), starving("s-b", 1, "b")])
    node_pages = [p for p in pages(run(Engine(topology, RULES), victim, until=60)) if "/n1" in p.root_entity]
    assert [p.extra["likely_cause"]["entity"] for p in node_pages] == [f"service/default/{NS}/b"]


def test_a_silent_service_all_of_whose_callers_fail_is_inferred_as_their_root():
    """a and b call s, and nothing else calls it: their errors, with nothing of theirs failing,
    point at s though s has no alert of its own (an HTTP abort nothing instruments)."""
    s = Stream()
    s.deliver(0, [errors("e-a", 0, "a")])
    s.deliver(2, [errors("e-b", 2, "b")])
    topology = call_graph({"a": ["s", "t"], "b": ["s"], "s": [], "t": []}, on_n1={"a"})  # a: n1; others: n2
    notes = run(Engine(topology, RULES), s, until=90)
    [page] = pages(notes)
    assert page.root_entity == f"service/default/{NS}/s"
    assert "services calling it are failing" in page.reason
    assert sorted(x.entity.rsplit("/", 1)[1] for x in page.symptoms) == ["a", "b"]


def test_a_service_a_healthy_caller_still_uses_is_not_blamed():
    """a and b both call s and t; c calls s too and does not fail, so s answers: t is blamed."""
    s = Stream()
    s.deliver(0, [errors("e-a", 0, "a")])
    s.deliver(2, [errors("e-b", 2, "b")])
    topology = call_graph({"a": ["s", "t"], "b": ["s", "t"], "c": ["s"], "s": [], "t": []}, on_n1={"a"})
    [page] = pages(run(Engine(topology, RULES), s, until=90))
    assert page.root_entity == f"service/default/{NS}/t"
    # With c calling t as well, nothing is left to blame: a and b page as themselves.
    topology = call_graph({"a": ["s", "t"], "b": ["s", "t"], "c": ["s", "t"], "s": [], "t": []}, on_n1={"a"})
    notes = run(Engine(topology, RULES), s, until=90)
    assert sorted(p.root_entity.rsplit("/", 1)[1] for p in pages(notes)) == ["a", "b"]


def test_a_change_in_the_namespace_of_a_service_the_root_calls_is_named():
    """web (namespace front) calls db (namespace data); a ConfigMap edited in data minutes
    before web's errors may be what broke db; one edited in a namespace web does not call
    into names nothing."""
    document = {
        "kind": "alert-router/topology",
        "nodes": [{"name": "n1"}],
        "pods": [
            {"namespace": ns, "name": f"{s}-5c8d-abcde", "node": "n1", "owner": f"deployment/{s}"}
            for ns, s in (("front", "web"), ("data", "db"))
        ],
        "services": [
            {"namespace": "front", "name": "web", "pods": ["web-5c8d-abcde"], "calls": ["data/db"]},
            {"namespace": "data", "name": "db", "pods": ["db-5c8d-abcde"]},
        ],
    }
    for namespace, named in (("data", True), ("elsewhere", False)):
        change = {
            "entity": f"configmap/default/{namespace}/settings",
            "at": "2026-10-06T00:58:00Z",
            "what": "edited",
        }
        topology = build_topology_file({**document, "changes": [change]}, "<two namespaces>")
        s = Stream()
        s.deliver(
            0, [alert("e-web", 0, alertname="HighRequestErrorRate", namespace="front", service_name="web")]
        )
        [page] = pages(run(Engine(topology, RULES), s, until=60))
        cause = page.extra.get("likely_cause", {})
        assert (cause.get("entity") == change["entity"]) is named, cause


def test_the_one_callee_left_that_receives_nothing_beats_a_change_nearby():
    """frontend's calls fail and checkout, the only service it calls, receives no requests: a
    partition in front of checkout, named before a NetworkPolicy created in the namespace."""
    policy = {"entity": f"networkpolicy/default/{NS}/deny", "at": "2026-10-06T00:55:00Z", "what": "created"}
    s = Stream()
    s.deliver(0, [errors("e-fe", 0, "frontend")])
    s.deliver(1, [starving("s-co", 1, "checkout")])
    [page] = pages(run(Engine(shop([policy]), RULES), s, until=60))
    cause = page.extra["likely_cause"]
    assert (cause["kind"], cause["entity"]) == ("unreachable", f"service/default/{NS}/checkout")
    assert "unreachable" in page.reason
