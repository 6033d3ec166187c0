"""A bad rollout beside a cluster DNS outage: the rollout keeps its own pods.

Every pod depends on cluster DNS, so while CoreDNS is down, any pod's failure could be put on
it. A pod of the ReplicaSet a rollout brings up, failing while the Deployment's other pods
serve, is not DNS's doing: those pods use DNS as well. For any order and timing of the two
faults: the new pod's alerts never become DNS's symptoms, and both the Deployment and cluster
DNS page. Were the serving pods failing too, DNS would explain them all.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from router.core.engine import Engine
from rules.ruleset import RuleSet
from tests.world import Stream, alert, run, small_cluster
from topology.graph import Topology

RULES = RuleSet.load()
DEPLOYMENT = "deployment/default/shop/checkout"
NEW_POD = "pod/default/shop/checkout-7f9a-0"
OLD_PODS = ["pod/default/shop/checkout-5c8d-0", "pod/default/shop/checkout-5c8d-1"]
DNS = "dns/default/cluster-dns"


def rolling_cluster() -> Topology:
    """The small cluster, with shop/checkout rolling out: its two pods in ReplicaSet
    checkout-5c8d, one new pod (on w2) in checkout-7f9a."""
    t = small_cluster()
    old, new = "replicaset/default/shop/checkout-5c8d", "replicaset/default/shop/checkout-7f9a"
    for pod in OLD_PODS:
        t.graph.remove_edge(DEPLOYMENT, pod)
        t.depends(DEPLOYMENT, old)
        t.depends(old, pod)
    t.add(NEW_POD, node="node/default/w2", owner=DEPLOYMENT)
    t.depends(NEW_POD, "node/default/w2")
    t.depends(NEW_POD, DNS)
    t.depends(DEPLOYMENT, new)
    t.depends(new, NEW_POD)
    t.depends("service/default/shop/checkout", NEW_POD, redundant=True)
    return t


def _storm(dns_at: float, rollout_at: float, old_fail: bool) -> Stream:
    s = Stream()
    s.deliver(dns_at + 0.5, [alert("dns-down", dns_at, alertname="CoreDNSDown", severity="critical")])
    pods = [NEW_POD, *OLD_PODS] if old_fail else [NEW_POD]
    s.deliver(
        rollout_at + 0.5,
        [
            alert(
                f"nr-{i}",
                rollout_at,
                alertname="KubePodNotReady",
                namespace="shop",
                pod=pod.rsplit("/", 1)[1],
            )
            for i, pod in enumerate(pods)
        ],
    )
    return s


timing = st.floats(min_value=0, max_value=30, allow_nan=False).map(lambda m: round(m, 1))


@settings(max_examples=40, deadline=None)
@given(dns_at=timing, rollout_at=timing)
def test_the_rollout_keeps_its_new_pod_while_dns_is_down(dns_at, rollout_at):
    notes = run(Engine(rolling_cluster(), RULES), _storm(dns_at, rollout_at, old_fail=False), until=90)
    for note in notes:
        if note.root_entity == DNS:
            assert NEW_POD not in {s.entity for s in note.symptoms}
    paged = {n.root_entity for n in notes if n.action == "page"}
    assert paged == {DNS, DEPLOYMENT}


@settings(max_examples=20, deadline=None)
@given(dns_at=timing, rollout_at=timing)
def test_every_pod_failing_is_no_rollout_and_dns_takes_them(dns_at, rollout_at):
    notes = run(Engine(rolling_cluster(), RULES), _storm(dns_at, rollout_at, old_fail=True), until=90)
    root: dict[str, str] = {}  # incident -> its root, as last told
    symptoms: dict[str, set[str]] = {}  # incident -> every symptom it was told to hold
    for note in notes:
        root[note.incident] = note.root_entity
        symptoms.setdefault(note.incident, set()).update(s.entity for s in note.symptoms)
    on_dns = set().union(*(symptoms[i] for i, entity in root.items() if entity == DNS))
    assert {NEW_POD, *OLD_PODS} <= on_dns
