"""The alert-router topology file (YAML/JSON): short form, free entities, validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ground.errors import InputError
from tests.test_topology_ksm import hard, members, succ
from topology import entities
from topology.fileformat import load_topology_file
from topology.ksm import load_ksm

FIXTURES = Path(__file__).parent / "fixtures" / "topology"
HEAD = "kind: alert-router/topology\n"


def write(tmp_path: Path, text: str, name: str = "topology.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_short_form_gets_the_same_kubernetes_edges_as_kube_state_metrics():
    """One builder for both loaders: the hand-written twin of small-cluster.prom matches it."""
    written = load_topology_file(FIXTURES / "small-cluster.yaml")
    scraped = load_ksm(FIXTURES / "small-cluster.prom")
    compared = {
        "pod",
        "node",
        "node-component",
        "zone",
        "dns",
        "apiserver",
        "etcd",
        "scheduler",
        "controller-manager",
    }
    names = sorted(name for name in written.graph if entities.kind_of(name) in compared)
    assert len(names) == 42
    assert sorted(name for name in scraped.graph if entities.kind_of(name) in compared) == names
    for name in names:
        assert succ(written, name) == succ(scraped, name), name
    for service in ("kube-system/kube-dns", "shop/checkout", "shop/postgres", "monitoring/node-exporter"):
        name = f"service/default/{service}"
        assert succ(written, name) == succ(scraped, name), name
    pod = "pod/default/shop/checkout-6d8f7b9c5d-x2x9q"
    assert written.attrs(pod) == scraped.attrs(pod)


def test_short_form_edges_in_a_named_cluster():
    topology = load_topology_file(FIXTURES / "edge.json")
    assert succ(topology, "pod/edge/cdn/cache-0") == hard("node/edge/edge-1", "dns/edge/cluster-dns")
    assert succ(topology, "statefulset/edge/cdn/cache") == hard(
        "pod/edge/cdn/cache-0", "pod/edge/cdn/cache-1"
    )
    assert succ(topology, "service/edge/cdn/cache") == {
        "pod/edge/cdn/cache-0": True,
        "pod/edge/cdn/cache-1": True,
        "statefulset/edge/cdn/cache": False,  # the workload its endpoints belong to
        "external/edge/origin": False,
    }
    assert succ(topology, "node/edge/edge-2") == hard("zone/edge/fra-2")
    assert succ(topology, "node/edge/edge-1/kubelet") == hard(
        "node/edge/edge-1", "apiserver/edge/kube-apiserver"
    )
    assert succ(topology, "apiserver/edge/kube-apiserver") == hard("etcd/edge/etcd")
    assert topology.attrs("node/edge/edge-1")["rack"] == "r12"
    assert topology.attrs("external/edge/origin") == {"kind": "external", "url": "https://origin.example.com"}
    assert topology.node_by_ip("edge", "192.168.10.11") == "node/edge/edge-1"
    assert topology.pod_by_ip("edge", "10.50.2.4") == "pod/edge/cdn/cache-1"


def test_free_entities_only():
    topology = load_topology_file(FIXTURES / "outside.yaml")
    assert succ(topology, "service/default/shop/checkout") == hard(
        "external/default/orders-db", "external/default/payments-api"
    )
    assert succ(topology, "external/default/payments-lb") == members(
        "external/default/payments-api-eu", "external/default/payments-api-us"
    )
    assert succ(topology, "node/default/bastion-1") == hard("zone/default/eu-west-1a")
    assert topology.attrs("external/default/orders-db") == {
        "kind": "external",
        "team": "payments",
        "tier": "database",
    }
    assert topology.node_by_ip("default", "10.0.9.5") == "node/default/bastion-1"
    assert topology.node_by_instance("default", "bastion-1.corp.example.com:9100") == "node/default/bastion-1"
    # No short-form object: no Kubernetes singletons are invented.
    assert "apiserver/default/kube-apiserver" not in topology
    assert "dns/default/cluster-dns" not in topology


def test_minimal_file_and_defaults(tmp_path: Path):
    path = write(
        tmp_path,
        HEAD + "pods:\n  - {name: web-1, node: n1}\n",
    )
    topology = load_topology_file(path)
    assert succ(topology, "pod/default/default/web-1") == hard("node/default/n1", "dns/default/cluster-dns")
    assert succ(topology, "node/default/n1/kubelet") == hard(
        "node/default/n1", "apiserver/default/kube-apiserver"
    )


def test_per_item_cluster_overrides_the_default(tmp_path: Path):
    path = write(
        tmp_path,
        HEAD + "cluster: a\nnodes:\n  - {name: n1, cluster: b, zone: z1}\n  - {name: n2, zone: z2}\n",
    )
    topology = load_topology_file(path)
    assert succ(topology, "node/b/n1") == hard("zone/b/z1")
    assert succ(topology, "node/a/n2") == hard("zone/a/z2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: something-else\n", "kind: must be 'alert-router/topology'"),
        ("nodes: []\n", "kind: Field required"),
        ("- a\n- b\n", "(document): Input should be a valid dictionary or instance of TopologyFile"),
        (
            HEAD + "entities:\n  - {name: external/p/db}\n  - {name: external/p/x, depnds_on: []}\n",
            "entities[1].depnds_on: Extra inputs are not permitted",
        ),
        (
            HEAD + "entities:\n  - {name: db}\n",
            "entities[0].name: 'db' is not an entity name (<kind>/<cluster>/[<namespace>/]<name>)",
        ),
        (
            HEAD + "entities:\n  - {name: pod/prod/web-1}\n",
            "entities[0].name: 'pod/prod/web-1': a pod is named pod/<cluster>/<namespace>/<name>",
        ),
        (
            HEAD + "entities:\n  - {name: external/p/a, depends_on: [zone/p/z, zone//z]}\n",
            "entities[0].depends_on: 'zone//z' is not an entity name (<kind>/<cluster>/[<namespace>/]<name>)",
        ),
        (
            HEAD + "entities:\n  - {name: service/p/shop/web, ip: 10.0.0.1}\n",
            "entities[0]: ip is only for node and pod entities, not service",
        ),
        (
            HEAD + "entities:\n  - {name: external/p/db, attrs: {kind: x}}\n",
            "entities[0].attrs.kind: 'kind' is reserved (it comes from the name)",
        ),
        (
            HEAD + "pods:\n  - {name: web-1, owner: rollout/web}\n",
            "pods[0].owner: 'rollout/web': write <kind>/<name> with kind one of "
            "deployment, replicaset, statefulset, daemonset, job, node",
        ),
        (
            HEAD + "pods:\n  - {name: web-1, host_network: maybe}\n",
            "pods[0].host_network: Input should be a valid boolean, unable to interpret input",
        ),
        (
            HEAD + "nodes:\n  - {name: 1234}\n",
            "nodes[0].name: Input should be a valid string",
        ),
        (
            HEAD + "pods:\n  - {name: a}\nservices:\n  - {name: web, pods: [a, b]}\n",
            "services[0].pods[1]: no pod default/b in cluster default is declared under pods",
        ),
        (
            HEAD + "services:\n  - {name: web, calls: [a/b/c]}\n",
            "services[0].calls: 'a/b/c': write <service> or <namespace>/<service>",
        ),
        (
            HEAD
            + "changes:\n  - {entity: configmap/default/shop/flags, at: 2026-10-05T09:00:00, what: edited}\n",
            "changes[0].at: give the time zone (RFC 3339, e.g. 2026-10-05T09:00:00Z)",
        ),
        (
            HEAD
            + "changes:\n  - {entity: configmap/default/flags, at: 2026-10-05T09:00:00Z, what: edited}\n",
            "changes[0].entity: 'configmap/default/flags': a configmap is named "
            "configmap/<cluster>/<namespace>/<name>",
        ),
    ],
)
def test_invalid_files_name_the_file_and_field(tmp_path: Path, text: str, message: str):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as raised:
        load_topology_file(path)
    text_of_error = str(raised.value)
    assert text_of_error.startswith(f"{path}")
    assert text_of_error.endswith(message), text_of_error


def test_yaml_syntax_error_names_the_line(tmp_path: Path):
    path = write(tmp_path, HEAD + "entities:\n  - name: external/p/db\n    attrs: {a: [}\n")
    with pytest.raises(InputError, match=rf"^{path}:4: invalid YAML: "):
        load_topology_file(path)


def test_json_syntax_error_names_the_line(tmp_path: Path):
    path = write(tmp_path, '{\n  "kind": "alert-router/topology",\n  "nodes": [,]\n}\n', "t.json")
    with pytest.raises(InputError, match=rf"^{path}:3: invalid JSON: Expecting value$"):
        load_topology_file(path)


def test_yaml_flow_style_document_is_not_mistaken_for_json(tmp_path: Path):
    path = write(tmp_path, "{kind: alert-router/topology, nodes: [{name: n1, zone: z1}]}\n")
    assert succ(load_topology_file(path), "node/default/n1") == hard("zone/default/z1")


def test_the_documented_example_loads(tmp_path: Path):
    doc = (Path(__file__).parent.parent / "docs" / "topology.md").read_text()
    example = doc.split("## The topology file", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    topology = load_topology_file(write(tmp_path, example))
    assert succ(topology, "pod/prod/shop/checkout-6d8f7b9c5d-x2x9q") == hard(
        "node/prod/worker-1", "dns/prod/cluster-dns", "pvc/prod/shop/data-checkout-0"
    )
    assert succ(topology, "service/prod/shop/checkout") == {
        "pod/prod/shop/checkout-6d8f7b9c5d-x2x9q": True,
        "deployment/prod/shop/checkout": False,
        "external/prod/orders-db": False,
        "service/prod/shop/payment": False,  # calls
        "service/prod/db/orders": False,
    }
    assert topology.calls("service/prod/shop/checkout") == [
        "service/prod/db/orders",
        "service/prod/shop/payment",
    ]
    assert [c.entity for c in topology.changes] == ["configmap/prod/shop/feature-flags"]
    assert topology.node_by_instance("prod", "bastion-1.corp.example.com") == "node/prod/bastion-1"


def test_calls_and_changes_load_as_call_edges_and_timed_changes(tmp_path: Path):
    path = write(
        tmp_path,
        HEAD
        + "pods:\n  - {namespace: shop, name: web-1}\n"
        + "services:\n  - {namespace: shop, name: web, pods: [web-1], calls: [api, db/orders]}\n"
        + "entities:\n  - {name: service/default/shop/api, depends_on: [service/default/shop/cache]}\n"
        + "  - {name: service/default/shop/api, calls: [external/default/payments]}\n"
        + "changes:\n"
        + "  - {entity: configmap/default/shop/flags, at: 2026-10-05T11:00:00+02:00, what: flag set}\n",
    )
    topology = load_topology_file(path)
    assert topology.calls("service/default/shop/web") == [
        "service/default/db/orders",
        "service/default/shop/api",
    ]
    # A hand-written Service -> Service dependency is a call too; an explicit `calls` to anything is.
    assert topology.calls("service/default/shop/api") == [
        "external/default/payments",
        "service/default/shop/cache",
    ]
    assert topology.callers("service/default/shop/api") == ["service/default/shop/web"]
    [change] = list(topology.changes)
    assert (change.entity, change.what) == ("configmap/default/shop/flags", "flag set")
    assert change.at.isoformat() == "2026-10-05T09:00:00+00:00"
