"""kube-state-metrics text -> Topology: the exposition parser and the edges of a real-format dump.

The fixture `small-cluster.prom` is a 3-node, 2-zone cluster written in KSM's own label order
(plus kube-prometheus target labels and federate-style lines); the variants below are that file
with series families removed, as stock installs lack them.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ground.errors import InputError
from topology.graph import Topology
from topology.k8s import zone_from_provider_id
from topology.ksm import load_ksm, load_ksm_text
from topology.promtext import looks_like_exposition, parse_file, parse_lines

FIXTURES = Path(__file__).parent / "fixtures" / "topology"
SMALL = FIXTURES / "small-cluster.prom"


def succ(topology: Topology, name: str) -> dict[str, bool]:
    """Direct dependencies of an entity -> whether each edge is redundant."""
    assert name in topology, f"{name} missing"
    return dict(topology.dependencies(name))


def hard(*names: str) -> dict[str, bool]:
    return dict.fromkeys(names, False)


def members(*names: str) -> dict[str, bool]:
    return dict.fromkeys(names, True)


def without(tmp_path: Path, pattern: str, source: Path = SMALL) -> Path:
    """The fixture minus every line (samples, HELP, TYPE) of the families matching `pattern`."""
    family = re.compile(rf"^(# (HELP|TYPE) )?({pattern})[{{ ]")
    kept = [line for line in source.read_text().splitlines(keepends=True) if not family.match(line)]
    path = tmp_path / source.name
    path.write_text("".join(kept))
    return path


@pytest.fixture(scope="module")
def small() -> Topology:
    return load_ksm(SMALL)


# -- the exposition parser ------------------------------------------------------------------------


def test_parser_reads_every_form_of_the_format():
    text = "\n".join(
        [
            "# HELP up [STABLE] Whether the target is up.",
            "# TYPE up gauge",
            '# a free comment {with="braces"}',
            "",
            "   ",
            'up{job="kube-state-metrics",instance="10.0.0.1:8443"} 1',
            'm{b="2",a="1"} NaN',
            'm{a="x\\\\y",b="say \\"hi\\"",c="two\\nlines",d="keep \\t"} +Inf 1759716000000',
            "bare_metric -Inf",
            'spaced { a = "1" , b="2", } 3.5e-3',
            'nested{path="/a,b}c",empty=""} 0',
        ]
    )
    series = list(parse_lines(text.splitlines(), "t.prom"))
    assert [(n, labels, line) for n, labels, _, line in series] == [
        ("up", {"job": "kube-state-metrics", "instance": "10.0.0.1:8443"}, 6),
        ("m", {"b": "2", "a": "1"}, 7),
        ("m", {"a": "x\\y", "b": 'say "hi"', "c": "two\nlines", "d": "keep \\t"}, 8),
        ("bare_metric", {}, 9),
        ("spaced", {"a": "1", "b": "2"}, 10),
        ("nested", {"path": "/a,b}c", "empty": ""}, 11),
    ]
    values = [value for _, _, value, _ in series]
    assert values[0] == 1.0 and math.isnan(values[1])
    assert values[2:] == [math.inf, -math.inf, 0.0035, 0.0]


def test_parser_skips_unwanted_families_unparsed_and_applies_prefilters():
    lines = [
        'kube_pod_info{namespace="a",pod="p"} 1',
        "kube_node_status_condition{this is not valid at all",
        'kube_pod_status_phase{namespace="a",pod="p",phase="Running"} 0',
        'kube_pod_status_phase{namespace="a",pod="p",phase="Failed"} 1',
    ]
    wanted = {"kube_pod_info", "kube_pod_status_phase"}
    prefilter = {"kube_pod_status_phase": lambda line: not line.endswith("} 0")}
    series = list(parse_lines(lines, "x", wanted, prefilter))
    assert [(name, labels.get("phase"), line) for name, labels, _, line in series] == [
        ("kube_pod_info", None, 1),
        ("kube_pod_status_phase", "Failed", 4),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'kube_pod_info{namespace="shop",pod="x"',
            "expected ',' or '}' after label 'pod', found end of line",
        ),
        (
            'kube_pod_info{namespace="shop,pod="x"} 1',
            "expected ',' or '}' after label 'namespace', found 'x'",
        ),
        ('kube_pod_info{namespace="shop} 1', "unterminated value of label 'namespace'"),
        ("kube_pod_info{namespace=shop} 1", "value of label 'namespace' must be in double quotes"),
        ('kube_pod_info{namespace="a",namespace="b"} 1', "duplicate label 'namespace'"),
        ('kube_pod_info{name-space="a"} 1', "invalid label name 'name-space'"),
        ('kube_pod_info{namespace="a"}', "missing sample value"),
        ('kube_pod_info{namespace="a"} one', "invalid sample value 'one'"),
        ('kube_pod_info{namespace="a"} 1_000', "invalid sample value '1_000'"),
        ('kube_pod_info{namespace="a"} 1 12:00', "invalid timestamp '12:00'"),
        ('kube_pod_info{namespace="a"} 1 2 3', "unexpected text after the value: '3'"),
        ('kube_pod_info{namespace="a\\"} 1', "unterminated value of label 'namespace'"),
    ],
)
def test_malformed_line_names_file_line_and_problem(tmp_path: Path, line: str, message: str):
    path = tmp_path / "broken.prom"
    path.write_text(f"# HELP kube_pod_info [STABLE] Information about pod.\n{line}\n")
    with pytest.raises(InputError) as raised:
        load_ksm(path)
    assert str(raised.value) == f"{path}:2: {message}"


def test_malformed_line_deep_in_the_real_fixture_reports_its_line(tmp_path: Path):
    lines = SMALL.read_text().splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if line.startswith('kube_pod_info{namespace="shop"'))
    lines[target] = lines[target].replace('pod="checkout', "pod=checkout", 1)
    path = tmp_path / "cluster.prom"
    path.write_text("".join(lines))
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:{target + 1}: value of label 'pod' must"):
        load_ksm(path)


def test_parser_without_filter_rejects_a_bad_metric_name():
    with pytest.raises(InputError, match=r"^x:1: invalid metric name 'bad name'"):
        list(parse_lines(['bad name{a="1"} 1'], "x"))


label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,12}", fullmatch=True)
label_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(st.dictionaries(label_names, label_values, min_size=1, max_size=6), st.floats(allow_nan=False))
def test_escaped_label_values_round_trip(labels: dict[str, str], value: float):
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    body = ",".join(f'{name}="{escape(text)}"' for name, text in labels.items())
    [(name, parsed, parsed_value, _)] = list(parse_lines([f"metric{{{body}}} {value!r}\n"], "h"))
    assert (name, parsed, parsed_value) == ("metric", labels, value)


def test_exposition_is_recognised_by_headers_or_first_sample():
    assert looks_like_exposition("# HELP kube_node_info [STABLE] x\n")
    assert looks_like_exposition('# just a comment\n\nkube_pod_info{a="b"} 1\n')
    assert looks_like_exposition("up 1\n")
    assert not looks_like_exposition("# comment\nkind: alert-router/topology\n")
    assert not looks_like_exposition('{"kind": "alert-router/topology"}')
    assert not looks_like_exposition("hello world\n")
    assert not looks_like_exposition("")


def test_parse_file_reports_unreadable_files(tmp_path: Path):
    with pytest.raises(InputError, match=r"^cannot read .*missing\.prom: No such file or directory$"):
        list(parse_file(tmp_path / "missing.prom"))
    binary = tmp_path / "binary.prom"
    binary.write_bytes(b"up 1\n\xff\xfe\n")
    with pytest.raises(InputError, match=r"^cannot read .*binary\.prom: not UTF-8 text"):
        list(parse_file(binary))


# -- zones from the providerID ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider_id", "zone"),
    [
        ("aws:///eu-west-1a/i-0abc123def4567890", "eu-west-1a"),
        ("aws:///us-gov-west-1b/i-0abc123def4567890", "us-gov-west-1b"),
        ("gce://acme-prod/us-central1-b/gke-prod-pool-1-8f2a0c1d-x7k2", "us-central1-b"),
        ("gce://acme-prod/europe-west4-a/node-1", "europe-west4-a"),
        (
            "azure:///subscriptions/0000/resourceGroups/mc_rg/providers/Microsoft.Compute/"
            "virtualMachineScaleSets/aks-nodepool1-123/virtualMachines/0",
            "",
        ),
        ("kind://docker/kind/kind-worker", ""),
        ("", ""),
    ],
)
def test_zone_from_provider_id(provider_id: str, zone: str):
    assert zone_from_provider_id(provider_id) == zone


# -- the small cluster ------------------------------------------------------------------------------

APISERVER = "apiserver/default/kube-apiserver"
DNS = "dns/default/cluster-dns"


def test_nodes_zones_and_regions(small: Topology):
    for node, zone in (("cp-1", "eu-west-1a"), ("worker-1", "eu-west-1a"), ("worker-2", "eu-west-1b")):
        assert succ(small, f"node/default/{node}") == hard(f"zone/default/{zone}")
        assert succ(small, f"node/default/{node}/kubelet") == hard(f"node/default/{node}", APISERVER)
    assert succ(small, "zone/default/eu-west-1a") == hard("region/default/eu-west-1")
    assert succ(small, "zone/default/eu-west-1b") == hard("region/default/eu-west-1")
    # The escaped os_image of worker-1 comes before internal_ip: both must still be read right.
    assert small.attrs("node/default/worker-1") == {
        "kind": "node",
        "internal_ip": "10.0.1.21",
        "provider_id": "aws:///eu-west-1a/i-0abc123def4567890",
        "zone": "zone/default/eu-west-1a",
    }
    assert small.node_by_ip("default", "10.0.1.21") == "node/default/worker-1"
    assert small.node_by_instance("default", "10.0.2.22:10250") == "node/default/worker-2"
    assert small.node_by_instance("default", "cp-1") == "node/default/cp-1"


def test_node_components_are_their_daemonset_pods(small: Topology):
    assert succ(small, "node/default/worker-1/cni") == hard(
        "node/default/worker-1", "pod/default/kube-system/calico-node-h5rkp"
    )
    assert succ(small, "node/default/worker-2/kube-proxy") == hard(
        "node/default/worker-2", "pod/default/kube-system/kube-proxy-tz8wl"
    )
    # node-exporter is a DaemonSet but not a node component; no node runs node-local-dns.
    assert "node/default/worker-1/node-exporter" not in small
    assert "node/default/worker-1/node-local-dns" not in small
    # Component pods depend on their node only (no cycle through the component).
    assert succ(small, "pod/default/kube-system/calico-node-h5rkp") == hard("node/default/worker-1")
    assert succ(small, "pod/default/kube-system/kube-proxy-9mhxq") == hard("node/default/worker-1")


def test_application_pods(small: Topology):
    checkout = "pod/default/shop/checkout-6d8f7b9c5d-x2x9q"
    assert succ(small, checkout) == hard(
        "node/default/worker-1", "node/default/worker-1/cni", "node/default/worker-1/kube-proxy", DNS
    )
    assert small.attrs(checkout) == {
        "kind": "pod",
        "node": "node/default/worker-1",
        "host_network": False,
        "pod_ip": "10.244.1.17",
        "owner": "deployment/default/shop/checkout",
    }
    assert succ(small, "pod/default/shop/postgres-0") == hard(
        "node/default/worker-2",
        "node/default/worker-2/cni",
        "node/default/worker-2/kube-proxy",
        DNS,
        "pvc/default/shop/data-postgres-0",
    )
    assert small.attrs("pod/default/shop/postgres-0")["owner"] == "statefulset/default/shop/postgres"
    job_pod = "pod/default/batch/nightly-report-29012345-q8z4m"
    assert small.attrs(job_pod)["owner"] == "job/default/batch/nightly-report-29012345"


def test_host_network_pod_skips_pod_networking_and_its_ip_is_the_nodes(small: Topology):
    proxy = "pod/default/shop/edge-proxy-7c9f8d6b5-w4j8n"
    assert succ(small, proxy) == hard("node/default/worker-1", "node/default/worker-1/kube-proxy")
    assert small.attrs(proxy)["host_network"] is True
    assert small.attrs(proxy)["owner"] == "deployment/default/shop/edge-proxy"
    assert small.pod_by_ip("default", "10.0.1.21") is None
    assert small.node_by_ip("default", "10.0.1.21") == "node/default/worker-1"


def test_pod_ips_skip_finished_pods_whose_ip_was_reused(small: Topology):
    # The Succeeded job pod still reports 10.244.2.18, now the IP of a running checkout pod.
    assert small.pod_by_ip("default", "10.244.2.18") == "pod/default/shop/checkout-6d8f7b9c5d-zz9kq"
    assert small.pod_by_ip("default", "10.244.1.2") == "pod/default/kube-system/coredns-5d78c9869d-8xk2p"


def test_cluster_dns(small: Topology):
    coredns = (
        "pod/default/kube-system/coredns-5d78c9869d-8xk2p",
        "pod/default/kube-system/coredns-5d78c9869d-q7t4m",
    )
    assert succ(small, DNS) == members(*coredns)
    assert succ(small, "service/default/kube-system/kube-dns") == hard(DNS)
    # CoreDNS itself does not resolve through cluster DNS.
    assert succ(small, coredns[0]) == hard(
        "node/default/worker-1", "node/default/worker-1/cni", "node/default/worker-1/kube-proxy"
    )


def test_control_plane(small: Topology):
    assert succ(small, APISERVER) == {
        "etcd/default/etcd": False,
        "pod/default/kube-system/kube-apiserver-cp-1": True,
    }
    assert succ(small, "etcd/default/etcd") == members("pod/default/kube-system/etcd-cp-1")
    assert succ(small, "scheduler/default/kube-scheduler") == {
        APISERVER: False,
        "pod/default/kube-system/kube-scheduler-cp-1": True,
    }
    assert succ(small, "controller-manager/default/kube-controller-manager") == {
        APISERVER: False,
        "pod/default/kube-system/kube-controller-manager-cp-1": True,
    }
    # Static pods run below cluster networking and have no owner workload.
    assert succ(small, "pod/default/kube-system/etcd-cp-1") == hard("node/default/cp-1")
    assert "owner" not in small.attrs("pod/default/kube-system/etcd-cp-1")
    # Watchers of the apiserver fail with it.
    assert APISERVER in succ(small, "pod/default/monitoring/kube-state-metrics-6b7d8f9c4-k2m4p")
    assert APISERVER in succ(small, "pod/default/monitoring/prometheus-k8s-0")
    assert APISERVER not in succ(small, "pod/default/shop/checkout-6d8f7b9c5d-x2x9q")


def test_workloads(small: Topology):
    assert succ(small, "deployment/default/shop/checkout") == hard(
        "replicaset/default/shop/checkout-6d8f7b9c5d"
    )
    assert succ(small, "replicaset/default/shop/checkout-6d8f7b9c5d") == hard(
        "pod/default/shop/checkout-6d8f7b9c5d-x2x9q",
        "pod/default/shop/checkout-6d8f7b9c5d-p7r2s",
        "pod/default/shop/checkout-6d8f7b9c5d-zz9kq",
    )
    # An old ReplicaSet without pods is left out; a Deployment scaled to 0 still exists.
    assert "replicaset/default/shop/checkout-5f4d9b8c7a" not in small
    assert succ(small, "deployment/default/shop/cart") == {}
    assert succ(small, "statefulset/default/shop/postgres") == hard("pod/default/shop/postgres-0")
    assert succ(small, "daemonset/default/monitoring/node-exporter") == hard(
        "pod/default/monitoring/node-exporter-4xk7d",
        "pod/default/monitoring/node-exporter-7hmc2",
        "pod/default/monitoring/node-exporter-r2n8s",
    )
    assert succ(small, "cronjob/default/batch/nightly-report") == hard(
        "job/default/batch/nightly-report-29012345"
    )
    assert succ(small, "job/default/batch/nightly-report-29012345") == hard(
        "pod/default/batch/nightly-report-29012345-q8z4m"
    )
    assert succ(small, "hpa/default/shop/checkout") == hard("deployment/default/shop/checkout")


def test_services_and_ingress(small: Topology):
    # The not-ready endpoint (zz9kq) is a member too: readiness is state, not structure. The
    # Service also depends on the workload its endpoints belong to (a bad rollout fails both).
    assert succ(small, "service/default/shop/checkout") == {
        **members(
            "pod/default/shop/checkout-6d8f7b9c5d-x2x9q",
            "pod/default/shop/checkout-6d8f7b9c5d-p7r2s",
            "pod/default/shop/checkout-6d8f7b9c5d-zz9kq",
        ),
        **hard("deployment/default/shop/checkout"),
    }
    # No kube_endpointslice_labels for this slice: its name minus the generated suffix.
    assert succ(small, "service/default/shop/postgres") == {
        **members("pod/default/shop/postgres-0"),
        **hard("statefulset/default/shop/postgres"),
    }
    # Endpoints (by IP) of host-network pods: the one pod of the Service's namespace on that IP.
    assert succ(small, "service/default/monitoring/node-exporter") == {
        **members(
            "pod/default/monitoring/node-exporter-4xk7d",
            "pod/default/monitoring/node-exporter-7hmc2",
            "pod/default/monitoring/node-exporter-r2n8s",
        ),
        **hard("daemonset/default/monitoring/node-exporter"),
    }
    assert succ(small, "service/default/monitoring/kube-state-metrics") == {
        **members("pod/default/monitoring/kube-state-metrics-6b7d8f9c4-k2m4p"),
        **hard("deployment/default/monitoring/kube-state-metrics"),
    }
    assert succ(small, "service/default/default/kubernetes") == {}
    assert succ(small, "ingress/default/shop/storefront") == hard("service/default/shop/checkout")


def test_storage(small: Topology):
    assert succ(small, "pvc/default/shop/data-postgres-0") == hard(
        "pv/default/pvc-3f6c2a1e-8d4b-4c1a-9e2f-7a5b6c4d3e21"
    )
    # Bound through kube_persistentvolume_claim_ref only.
    assert succ(small, "pvc/default/monitoring/prometheus-k8s-db-prometheus-k8s-0") == hard(
        "pv/default/pvc-8e1d4b7a-2c5f-4a9e-b3d6-0f7c1e4a8b52"
    )


def test_whole_graph_counts(small: Topology):
    assert small.summary() == {
        "apiserver": 1,
        "controller-manager": 1,
        "cronjob": 1,
        "daemonset": 3,
        "deployment": 5,
        "dns": 1,
        "etcd": 1,
        "hpa": 1,
        "ingress": 1,
        "job": 1,
        "node": 3,
        "node-component": 9,
        "pod": 23,
        "pv": 2,
        "pvc": 2,
        "region": 1,
        "replicaset": 4,
        "scheduler": 1,
        "service": 6,
        "statefulset": 2,
        "zone": 2,
        "edges": 129,
    }


def test_loading_is_deterministic():
    first, second = load_ksm(SMALL), load_ksm(SMALL)
    assert list(first.graph.edges(data=True)) == list(second.graph.edges(data=True))
    assert list(first.graph.nodes(data=True)) == list(second.graph.nodes(data=True))


# -- degraded inputs --------------------------------------------------------------------------------


def test_without_node_labels_zones_come_from_the_provider_id(tmp_path: Path):
    topology = load_ksm(without(tmp_path, "kube_node_labels"))
    assert succ(topology, "node/default/worker-1") == hard("zone/default/eu-west-1a")
    assert succ(topology, "node/default/worker-2") == hard("zone/default/eu-west-1b")
    assert succ(topology, "zone/default/eu-west-1a") == {}
    assert not any(name.startswith("region/") for name in topology.graph)


def test_without_endpoint_series_services_have_no_members(tmp_path: Path):
    topology = load_ksm(without(tmp_path, "kube_endpointslice_[a-z]+|kube_endpoint_address"))
    for service in (
        "shop/checkout",
        "shop/postgres",
        "monitoring/node-exporter",
        "monitoring/kube-state-metrics",
    ):
        assert succ(topology, f"service/default/{service}") == {}
    # Cluster DNS falls back to the pods of the coredns Deployment.
    assert succ(topology, DNS) == members(
        "pod/default/kube-system/coredns-5d78c9869d-8xk2p", "pod/default/kube-system/coredns-5d78c9869d-q7t4m"
    )
    assert succ(topology, "service/default/kube-system/kube-dns") == hard(DNS)


def test_without_any_owner_information(tmp_path: Path):
    path = without(tmp_path, "kube_pod_owner|kube_replicaset_owner")
    path.write_text(
        re.sub(
            r'created_by_kind="[A-Za-z]*",created_by_name="[^"]*"',
            'created_by_kind="",created_by_name=""',
            path.read_text(),
        )
    )
    topology = load_ksm(path)
    checkout = "pod/default/shop/checkout-6d8f7b9c5d-x2x9q"
    assert "owner" not in topology.attrs(checkout)
    # Only its Service still points at it: no workload does.
    assert set(topology.dependents(checkout)) == {"service/default/shop/checkout"}
    # No DaemonSet owners: no node components, so pods depend on their node and DNS only.
    assert succ(topology, checkout) == hard("node/default/worker-1", DNS)
    # Control-plane static pods are still recognised by their kubeadm names.
    assert succ(topology, "etcd/default/etcd") == members("pod/default/kube-system/etcd-cp-1")
    assert succ(topology, "pod/default/kube-system/etcd-cp-1") == hard("node/default/cp-1")
    # The kube-dns endpoints still name the CoreDNS pods.
    assert succ(topology, DNS) == members(
        "pod/default/kube-system/coredns-5d78c9869d-8xk2p", "pod/default/kube-system/coredns-5d78c9869d-q7t4m"
    )


def test_without_owners_or_endpoints_dns_pods_are_found_by_name(tmp_path: Path):
    path = without(
        tmp_path, "kube_pod_owner|kube_replicaset_owner|kube_endpointslice_[a-z]+|kube_endpoint_address"
    )
    path.write_text(re.sub(r'created_by_kind="ReplicaSet"', 'created_by_kind=""', path.read_text()))
    topology = load_ksm(path)
    assert succ(topology, DNS) == members(
        "pod/default/kube-system/coredns-5d78c9869d-8xk2p", "pod/default/kube-system/coredns-5d78c9869d-q7t4m"
    )


def test_without_owner_series_pods_keep_their_replicaset(tmp_path: Path):
    topology = load_ksm(without(tmp_path, "kube_pod_owner|kube_replicaset_owner"))
    checkout = "pod/default/shop/checkout-6d8f7b9c5d-x2x9q"
    assert topology.attrs(checkout)["owner"] == "replicaset/default/shop/checkout-6d8f7b9c5d"
    assert succ(topology, "deployment/default/shop/checkout") == {}
    # DaemonSet owners come from kube_pod_info's created_by: components are still found.
    assert "node/default/worker-1/cni" in succ(topology, checkout)


def test_managed_control_plane_still_has_its_singletons(tmp_path: Path):
    path = tmp_path / "managed.prom"
    path.write_text('kube_node_info{node="n1",provider_id="",internal_ip="10.0.0.5"} 1\n')
    topology = load_ksm(path)
    assert succ(topology, APISERVER) == hard("etcd/default/etcd")
    assert succ(topology, "scheduler/default/kube-scheduler") == hard(APISERVER)
    assert succ(topology, "controller-manager/default/kube-controller-manager") == hard(APISERVER)
    assert succ(topology, "etcd/default/etcd") == {}
    assert succ(topology, "node/default/n1") == {}
    assert succ(topology, "node/default/n1/kubelet") == hard("node/default/n1", APISERVER)


def test_multi_cluster_dump_keeps_clusters_apart():
    topology = load_ksm(FIXTURES / "multi-cluster.prom")
    eu_api = "pod/eu-prod/shop/api-7f9c6d5b8-m2n4q"
    us_api = "pod/us-prod/shop/api-7f9c6d5b8-m2n4q"
    gke_node = "node/us-prod/gke-prod-pool-1-8f2a0c1d-x7k2"
    assert succ(topology, eu_api) == hard("node/eu-prod/node-a", "dns/eu-prod/cluster-dns")
    assert succ(topology, us_api) == hard(gke_node, "dns/us-prod/cluster-dns")
    assert succ(topology, "node/eu-prod/node-a") == hard("zone/eu-prod/eu-west-1a")
    assert succ(topology, "zone/eu-prod/eu-west-1a") == hard("region/eu-prod/eu-west-1")
    # us-prod has no kube_node_labels: the GCE providerID names the zone.
    assert succ(topology, gke_node) == hard("zone/us-prod/us-central1-b")
    assert succ(topology, "dns/eu-prod/cluster-dns") == members(
        "pod/eu-prod/kube-system/coredns-5d78c9869d-8xk2p"
    )
    assert succ(topology, "dns/us-prod/cluster-dns") == members(
        "pod/us-prod/kube-system/coredns-5d78c9869d-8xk2p"
    )
    assert succ(topology, "service/eu-prod/shop/api") == {
        **members(eu_api),
        **hard("deployment/eu-prod/shop/api"),
    }
    # us-prod lacks the ReplicaSet's owner series: its pod stays owned by the ReplicaSet.
    assert topology.attrs(eu_api)["owner"] == "deployment/eu-prod/shop/api"
    assert topology.attrs(us_api)["owner"] == "replicaset/us-prod/shop/api-7f9c6d5b8"
    # The same pod IP in two clusters maps to each cluster's pod.
    assert topology.pod_by_ip("eu-prod", "10.244.1.30") == eu_api
    assert topology.pod_by_ip("us-prod", "10.244.1.30") == us_api
    assert topology.node_by_ip("us-prod", "10.128.0.21") == gke_node
    for cluster in ("eu-prod", "us-prod"):
        assert succ(topology, f"apiserver/{cluster}/kube-apiserver") == hard(f"etcd/{cluster}/etcd")
    assert "apiserver/default/kube-apiserver" not in topology


def test_bulk_graph_building_matches_one_by_one():
    """The loaders use Topology.add_many/depends_many for speed: same graph as add/depends."""
    nodes = [("node/c/n1", {"internal_ip": "10.0.0.1"}), ("pod/c/ns/p", {"node": "node/c/n1"})]
    nodes.append(("node/c/n1", {"zone": "zone/c/z"}))
    hard_edges = [("pod/c/ns/p", "node/c/n1"), ("node/c/n1", "zone/c/z"), ("node/c/n1/kubelet", "node/c/n1")]
    hard_edges.append(("x/c/self", "x/c/self"))
    member_edges = [("service/c/ns/s", "pod/c/ns/p")]
    one, bulk = Topology(), Topology()
    for name, attrs in nodes:
        one.add(name, **attrs)
    for a, b in hard_edges:
        one.depends(a, b)
    for a, b in member_edges:
        one.depends(a, b, redundant=True)
    bulk.add_many(nodes)
    bulk.depends_many(hard_edges)
    bulk.depends_many(member_edges, redundant=True)
    assert list(bulk.graph.nodes(data=True)) == list(one.graph.nodes(data=True))
    assert list(bulk.graph.edges(data=True)) == list(one.graph.edges(data=True))
    assert bulk.attrs("node/c/n1/kubelet") == {"kind": "node-component"}


def test_kubelet_service_endpoints_that_target_nodes_make_kubelets_its_members():
    text = (
        'kube_node_info{node="w1",internal_ip="10.0.0.1",provider_id=""} 1\n'
        'kube_node_info{node="w2",internal_ip="10.0.0.2",provider_id=""} 1\n'
        'kube_service_info{namespace="kube-system",service="kubelet",uid="u",cluster_ip="None"} 1\n'
        'kube_endpointslice_endpoints{endpointslice="kubelet-abcde",namespace="kube-system",ready="true",'
        'serving="",hostname="",terminating="",targetref_kind="Node",targetref_name="w1",targetref_namespace="",'
        'endpoint_nodename="w1",endpoint_zone="",address="10.0.0.1"} 1\n'
        'kube_endpointslice_endpoints{endpointslice="kubelet-abcde",namespace="kube-system",ready="false",'
        'serving="",hostname="",terminating="",targetref_kind="Node",targetref_name="w2",targetref_namespace="",'
        'endpoint_nodename="w2",endpoint_zone="",address="10.0.0.2"} 1\n'
    )
    topology = load_ksm_text(text)
    members = topology.redundant_members("service/default/kube-system/kubelet")
    # The not-ready endpoint is a member as well: a node that fails keeps its place.
    assert members == ["node/default/w1/kubelet", "node/default/w2/kubelet"]


def test_endpoints_at_node_addresses_are_the_nodes_kubelets(tmp_path: Path):
    """kube-prometheus' `kube-system/kubelet` Service lists the nodes' own addresses. Endpoints
    (by IP) name no Node, and no pod of kube-system owns those IPs alone (kube-proxy and the CNI
    agent share them): the members are the nodes' kubelets, so a dead node explains the
    kubelet job's TargetDown."""
    dump = tmp_path / "with-kubelet.prom"
    dump.write_text(
        SMALL.read_text()
        + 'kube_service_info{namespace="kube-system",service="kubelet",cluster_ip="None"} 1\n'
        + "".join(
            f'kube_endpoint_address{{namespace="kube-system",endpoint="kubelet",ip="{ip}",ready="true"}} 1\n'
            for ip in ("10.0.1.21", "10.0.2.22", "10.9.9.9")  # the last is no node's
        )
    )
    assert succ(load_ksm(dump), "service/default/kube-system/kubelet") == members(
        "node/default/worker-1/kubelet", "node/default/worker-2/kubelet"
    )
