"""Properties of the rollout rule over generated clusters (hypothesis).

A Deployment with two ReplicaSets that have pods is rolling out. When the pods of one of them
fail while the other's serve, the rollout explains them: they point at no node (two bad
rollouts whose new pods the scheduler put on one healthy node are no dead node), and the
Deployment is named from its first failing pod, before its own `KubeDeploymentRolloutStuck`
(progress deadline, then 15m) arrives; nor do they point at cluster DNS, which the serving pods
use as well. A node that is really down still takes everything on it, rolling pods included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from router.core.inference import Evidence, Inferred, infer
from router.core.reach import Reach
from router.core.settings import InferenceSettings
from topology.graph import Topology

SETTINGS = InferenceSettings()
DNS = "dns/c/cluster-dns"


@dataclass
class Cluster:
    topology: Topology
    pods_on: dict[str, list[str]] = field(default_factory=dict)  # node -> its pods
    new_pods: dict[str, list[str]] = field(default_factory=dict)  # rolling Deployment -> new pods
    old_pods: dict[str, list[str]] = field(default_factory=dict)  # Deployment -> current pods
    owner: dict[str, str] = field(default_factory=dict)  # pod -> Deployment


@st.composite
def clusters(draw) -> Cluster:
    """3-10 nodes and 3-15 Deployments of 1-4 replicas (ReplicaSet pods, as kube-state-metrics
    shows them); 1-4 of them rolling out a new ReplicaSet of 1-2 pods, no more than the old one
    has (a rollout that stalls, stalls at its surge), on any nodes or all on one (the
    scheduler's choice)."""
    nodes = [f"node/c/n{i}" for i in range(draw(st.integers(3, 10)))]
    t = Topology()
    cluster = Cluster(t)
    for node in nodes:
        t.add(node)
        cluster.pods_on[node] = []
    # Cluster DNS, which every application pod resolves names through (CoreDNS on two nodes).
    for i, node in enumerate(nodes[:2]):
        coredns = f"pod/c/kube-system/coredns-{i}"
        t.add(coredns, node=node, owner="deployment/c/kube-system/coredns")
        t.depends(coredns, node)
        t.depends(DNS, coredns, redundant=True)
    count = draw(st.integers(3, 15))
    rolling = set(draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=4, unique=True)))
    one_node = draw(st.booleans())
    landing = draw(st.sampled_from(nodes))

    def place(deployment: str, replicaset: str, pod: str, node: str) -> None:
        t.add(pod, node=node, owner=deployment)
        t.depends(pod, node)
        t.depends(pod, DNS)
        t.depends(deployment, replicaset)
        t.depends(replicaset, pod)
        cluster.pods_on[node].append(pod)
        cluster.owner[pod] = deployment

    for d in range(count):
        namespace = f"ns{d % 3}"
        deployment = f"deployment/c/{namespace}/app{d}"
        t.add(deployment)
        replicas = draw(st.integers(1, 4))
        for r in range(replicas):
            pod = f"pod/c/{namespace}/app{d}-old-{r}"
            place(deployment, f"replicaset/c/{namespace}/app{d}-old", pod, draw(st.sampled_from(nodes)))
            cluster.old_pods.setdefault(deployment, []).append(pod)
        if d in rolling:
            for r in range(draw(st.integers(1, min(2, replicas)))):
                pod = f"pod/c/{namespace}/app{d}-new-{r}"
                node = landing if one_node else draw(st.sampled_from(nodes))
                place(deployment, f"replicaset/c/{namespace}/app{d}-new", pod, node)
                cluster.new_pods.setdefault(deployment, []).append(pod)
    return cluster


def inferred(cluster: Cluster, failing: list[str]) -> dict[str, Inferred]:
    t = cluster.topology
    evidence = [Evidence(f"inc-{pod}", pod) for pod in failing]
    return {found.entity: found for found in infer(evidence, t, Reach(t), lambda entity: False, SETTINGS)}


@settings(max_examples=300, deadline=None)
@given(clusters())
def test_bad_rollouts_name_their_deployments_and_never_a_node(cluster):
    """Only the new pods fail: each rolling Deployment is the root of its own new pods, and no
    node is named, however many of them the scheduler put on one node, nor cluster DNS, however
    many namespaces and nodes they span (the serving pods resolve names through it too)."""
    failing = [pod for pods in cluster.new_pods.values() for pod in pods]
    found = inferred(cluster, failing)
    assert not [entity for entity in found if entity.startswith("node/")]
    assert set(found) == set(cluster.new_pods)
    for deployment, pods in cluster.new_pods.items():
        assert {e.entity for e in found[deployment].evidence} == set(pods)
        assert "rollout" in found[deployment].reason


@settings(max_examples=300, deadline=None)
@given(clusters(), st.data())
def test_a_dead_node_still_takes_the_rolling_pods_on_it(cluster, data):
    """Every pod on one node fails (it died); when enough applications that are not rolling out
    fail there to name the node, it takes the rolling pods on it too: no Deployment is named
    beside it for them."""
    node = data.draw(st.sampled_from(sorted(cluster.pods_on)))
    failing = cluster.pods_on[node]
    others = {cluster.owner[p] for p in failing} - set(cluster.new_pods)
    found = inferred(cluster, failing)
    if len(others) >= SETTINGS.min_workloads_node:
        assert node in found
        assert set(failing) <= {e.entity for e in found[node].evidence}
        assert not [entity for entity in found if entity.startswith("deployment/")]


@settings(max_examples=200, deadline=None)
@given(clusters())
def test_pods_of_both_replicasets_failing_are_no_rollout(cluster):
    """Old and new pods failing alike: the rollout does not explain that (the rule that names a
    workload from two failing pods may; the rollout's reason is never given)."""
    failing = [p for d in cluster.new_pods for p in (cluster.new_pods[d][0], cluster.old_pods[d][0])]
    for found in inferred(cluster, failing).values():
        assert "rollout" not in found.reason
