"""bench/gen_cluster.py writes valid kube-state-metrics text; bench/gen_storm.py turns it into a storm.

The exposition is checked with a small parser written here on purpose (not the project's loader):
what is tested is the text format and KSM's shape, independently of how the router reads it.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter, defaultdict

import pytest

from bench import gen_storm
from router.core.model import parse_delivery_line
from router.sim import gencluster as gen_cluster
from router.sim.scenarios import pod_uid

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(rf"^({NAME})\{{(.*)\}} (-?[0-9.e+]+|NaN)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse(text: str) -> dict[str, dict]:
    """Prometheus text format -> {family: {help, type, samples: [(labels as ordered pairs, value)]}}.

    Strict about what KSM prints: HELP then TYPE then the samples, one contiguous block per family,
    every sample labelled, every label quoted, values numbers.
    """
    families: dict[str, dict] = {}
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line[:80]}"
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in families, f"{where}: family {name} appears twice"
            current = families[name] = {"help": help_text, "type": None, "samples": []}
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert current is families.get(name) and current["type"] is None, f"{where}: TYPE without HELP"
            assert kind == "gauge", where
            current["type"] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"{where}: not a sample"
        name, body, value = match.groups()
        assert current is families.get(name) and current["type"], f"{where}: sample outside its family block"
        pairs, pos = [], 0
        while pos < len(body):
            label = LABEL.match(body, pos)
            assert label, f"{where}: bad label at {body[pos : pos + 30]!r}"
            pairs.append((label.group(1), label.group(2)))
            pos = label.end()
        assert len({k for k, _ in pairs}) == len(pairs), f"{where}: repeated label"
        current["samples"].append((pairs, float(value)))
    return families


def rows(families: dict, name: str) -> list[dict[str, str]]:
    return [dict(pairs) for pairs, _ in families[name]["samples"]]


@pytest.fixture(scope="module")
def small():
    out = io.StringIO()
    info = gen_cluster.generate(9, 12, 3, out=out, seed=7)
    return out.getvalue(), parse(out.getvalue()), info


def test_output_is_prometheus_text_with_ksm_headers(small):
    text, families, _ = small
    assert text.endswith("\n") and "\n\n" not in text
    assert families["kube_pod_info"]["help"] == "[STABLE] Information about pod."
    assert families["kube_node_info"]["help"] == "[STABLE] Information about a cluster node."
    assert (
        families["kube_endpointslice_endpoints"]["help"] == "Endpoints attached to the endpointslice."
    )  # ALPHA
    required = {
        "kube_node_info", "kube_node_labels", "kube_node_status_condition", "kube_pod_info", "kube_pod_owner",
        "kube_replicaset_owner", "kube_deployment_spec_replicas", "kube_statefulset_replicas",
        "kube_daemonset_status_desired_number_scheduled", "kube_service_info", "kube_endpointslice_endpoints",
        "kube_endpointslice_labels", "kube_ingress_path", "kube_pod_spec_volumes_persistentvolumeclaims_info",
        "kube_persistentvolumeclaim_info", "kube_persistentvolume_claim_ref", "kube_pod_status_phase",
        "kube_pod_container_info",
    }  # fmt: skip
    assert required <= families.keys()
    # KSM writes its stores in resource-name order: daemonsets ... statefulsets.
    order = list(families)
    assert order[0].startswith("kube_daemonset_") and order[-1].startswith("kube_statefulset_")
    assert order.index("kube_node_info") < order.index("kube_pod_info") < order.index("kube_service_info")


def test_label_order_is_ksm_print_order(small):
    _, families, _ = small
    expected = {
        "kube_pod_info": [
            "namespace", "pod", "uid", "host_ip", "pod_ip", "node", "created_by_kind", "created_by_name",
            "priority_class", "host_network",
        ],
        "kube_node_info": [
            "node", "kernel_version", "os_image", "container_runtime_version", "kubelet_version",
            "kubeproxy_version", "provider_id", "pod_cidr", "system_uuid", "internal_ip",
        ],
        "kube_pod_owner": ["namespace", "pod", "uid", "owner_kind", "owner_name", "owner_is_controller"],
        "kube_endpointslice_endpoints": [
            "endpointslice", "namespace", "ready", "serving", "hostname", "terminating", "targetref_kind",
            "targetref_name", "targetref_namespace", "endpoint_nodename", "endpoint_zone", "address",
        ],
        "kube_service_info": [
            "namespace", "service", "uid", "cluster_ip", "external_name", "load_balancer_ip",
            "external_traffic_policy",
        ],
        "kube_node_labels": [
            "node", "label_topology_kubernetes_io_region", "label_topology_kubernetes_io_zone",
        ],
        "kube_persistentvolume_claim_ref": ["persistentvolume", "name", "claim_namespace"],
    }  # fmt: skip
    for name, keys in expected.items():
        for pairs, _ in families[name]["samples"]:
            assert [k for k, _ in pairs] == keys, name


def test_counts_match_the_requested_cluster(small):
    _, families, info = small
    workers, control_plane, per_node = 6, 3, 12
    pods = rows(families, "kube_pod_info")
    assert len(rows(families, "kube_node_info")) == 9
    assert len(pods) == workers * per_node + control_plane * (4 + 3)
    assert len(families["kube_pod_status_phase"]["samples"]) == 5 * len(pods)
    assert len(families["kube_pod_owner"]["samples"]) == len(pods)
    assert len(families["kube_node_status_condition"]["samples"]) == 9 * 15
    per_node_count = Counter(p["node"] for p in pods)
    assert sorted(per_node_count.values()) == [7] * control_plane + [per_node] * workers
    running = [
        v for pairs, v in families["kube_pod_status_phase"]["samples"] if dict(pairs)["phase"] == "Running"
    ]
    assert running == [1.0] * len(pods)
    ready = {n["node"] for n in rows(families, "kube_node_status_condition") if n["condition"] == "Ready"}
    assert len(ready) == 9
    assert info.objects["pod"] == len(pods) and info.series["kube_pod_info"] == len(pods)


def test_control_plane_daemonsets_and_system_workloads(small):
    _, families, info = small
    pods = rows(families, "kube_pod_info")
    static = [p for p in pods if p["created_by_kind"] == "Node"]
    assert len(static) == 12 and all(p["host_network"] == "true" for p in static)
    assert {p["node"] for p in static} == set(info.control_plane)
    for node in info.control_plane:
        assert {p["pod"] for p in static if p["node"] == node} == {
            f"{c}-{node}" for c in ("kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager")
        }
    owners = rows(families, "kube_pod_owner")
    for ds in ("kube-proxy", "calico-node", "node-exporter"):
        nodes = Counter(p["node"] for p, o in zip(pods, owners, strict=True) if o["owner_name"] == ds)
        assert sorted(nodes) == sorted(info.node_ips) and set(nodes.values()) == {1}
    deployments = {(d["namespace"], d["deployment"]) for d in rows(families, "kube_deployment_spec_replicas")}
    assert {("kube-system", "coredns"), ("monitoring", "kube-state-metrics")} <= deployments
    statefulsets = {(s["namespace"], s["statefulset"]) for s in rows(families, "kube_statefulset_replicas")}
    assert ("monitoring", "prometheus-k8s") in statefulsets
    services = {(s["namespace"], s["service"]) for s in rows(families, "kube_service_info")}
    assert {("kube-system", "kube-dns"), ("default", "kubernetes"), ("kube-system", "kubelet")} <= services
    dns = [
        e
        for e in rows(families, "kube_endpointslice_endpoints")
        if e["endpointslice"].startswith("kube-dns-")
    ]
    assert sorted(e["targetref_name"] for e in dns) == sorted(p for p, _ in info.coredns_pods)
    ksm = next(p for p in pods if p["pod"].startswith("kube-state-metrics-"))
    assert info.ksm_instance == f"{ksm['pod_ip']}:8443"


def test_references_between_objects_resolve(small):
    _, families, _ = small
    pods = {(p["namespace"], p["pod"]): p for p in rows(families, "kube_pod_info")}
    nodes = {n["node"]: n for n in rows(families, "kube_node_info")}
    assert all(p["node"] in nodes and p["host_ip"] == nodes[p["node"]]["internal_ip"] for p in pods.values())
    assert all(p["uid"] == pod_uid(p["namespace"], p["pod"]) for p in pods.values())
    replicasets = {
        (r["namespace"], r["replicaset"]): r["owner_name"] for r in rows(families, "kube_replicaset_owner")
    }
    deployments = {(d["namespace"], d["deployment"]) for d in rows(families, "kube_deployment_spec_replicas")}
    for owner in rows(families, "kube_pod_owner"):
        if owner["owner_kind"] == "ReplicaSet":
            deployment = replicasets[(owner["namespace"], owner["owner_name"])]
            assert (owner["namespace"], deployment) in deployments
            assert re.fullmatch(
                rf"{re.escape(owner['owner_name'])}-[{gen_cluster.NAME_ALPHABET}]{{5}}", owner["pod"]
            )
    slice_service = {
        (s["namespace"], s["endpointslice"]): s["label_kubernetes_io_service_name"]
        for s in rows(families, "kube_endpointslice_labels")
    }
    services = {(s["namespace"], s["service"]) for s in rows(families, "kube_service_info")}
    assert all((ns, svc) in services for (ns, _), svc in slice_service.items())
    for endpoint in rows(families, "kube_endpointslice_endpoints"):
        assert (endpoint["namespace"], endpoint["endpointslice"]) in slice_service
        if endpoint["targetref_kind"] == "Pod":
            pod = pods[(endpoint["targetref_namespace"], endpoint["targetref_name"])]
            assert (endpoint["address"], endpoint["endpoint_nodename"]) == (pod["pod_ip"], pod["node"])
        elif endpoint["targetref_kind"] == "Node":  # prometheus-operator's kubelet Service
            node = nodes[endpoint["targetref_name"]]
            assert endpoint["address"] == node["internal_ip"] and endpoint["namespace"] == "kube-system"
    for path in rows(families, "kube_ingress_path"):
        assert (path["namespace"], path["service_name"]) in services
    claims = {
        (c["namespace"], c["persistentvolumeclaim"]): c["volumename"]
        for c in rows(families, "kube_persistentvolumeclaim_info")
    }
    volumes = {
        v["persistentvolume"]: (v["claim_namespace"], v["name"])
        for v in rows(families, "kube_persistentvolume_claim_ref")
    }
    mounted = rows(families, "kube_pod_spec_volumes_persistentvolumeclaims_info")
    assert mounted and len(mounted) == len(claims) == len(volumes)
    for mount in mounted:
        assert (mount["namespace"], mount["pod"]) in pods
        volume = claims[(mount["namespace"], mount["persistentvolumeclaim"])]
        assert volumes[volume] == (mount["namespace"], mount["persistentvolumeclaim"])


def test_cluster_info_matches_the_text(small):
    _, families, info = small
    pods = rows(families, "kube_pod_info")
    zone_of = {n["node"]: n["label_topology_kubernetes_io_zone"] for n in rows(families, "kube_node_labels")}
    assert {zone: sorted(nodes) for zone, nodes in info.zones.items()} == {
        zone: sorted(n for n, z in zone_of.items() if z == zone) for zone in set(zone_of.values())
    }
    from_text = defaultdict(set)
    for p in pods:
        from_text[p["node"]].add((p["namespace"], p["pod"]))
    assert {n: {(ns, pod) for ns, pod, _, _ in refs} for n, refs in info.pods_by_node.items()} == dict(
        from_text
    )
    kinds = {kind for refs in info.pods_by_node.values() for _, _, kind, _ in refs}
    assert kinds == {"Node", "DaemonSet", "Deployment", "StatefulSet"}
    provider = {n["node"]: n["provider_id"] for n in rows(families, "kube_node_info")}
    assert all(
        provider[n].startswith(f"aws:///{zone}/i-0") for zone, nodes in info.zones.items() for n in nodes
    )
    assert gen_cluster.ClusterInfo.from_json(json.loads(json.dumps(info.to_json()))) == info


def test_deterministic_per_seed():
    def run(seed: int) -> str:
        out = io.StringIO()
        gen_cluster.generate(6, 8, 2, out=out, seed=seed)
        return out.getvalue()

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_options_node_labels_ksm_version_and_clusters():
    out = io.StringIO()
    gen_cluster.generate(5, 6, 2, out=out, node_labels=False, ksm_version="2.20.0")
    families = parse(out.getvalue())
    assert "kube_node_labels" not in families
    claims = families["kube_pod_spec_volumes_persistentvolumeclaims_info"]
    assert claims["help"].endswith("Information about persistentvolumeclaim and ephemeral volumes in a pod.")
    assert all(dict(pairs)["ephemeral"] == "false" for pairs, _ in claims["samples"])
    sts = [
        e for e in rows(families, "kube_endpointslice_endpoints") if e["targetref_name"] == "prometheus-k8s-0"
    ]
    assert (sts[0]["serving"], sts[0]["hostname"], sts[0]["terminating"]) == (
        "true",
        "prometheus-k8s-0",
        "false",
    )
    out = io.StringIO()
    infos = gen_cluster.generate_many(5, 6, 2, out=out, clusters=2)
    families = parse(out.getvalue())
    assert [i.cluster for i in infos] == ["cluster-1", "cluster-2"]
    nodes = rows(families, "kube_node_info")
    assert Counter(n["cluster"] for n in nodes) == {"cluster-1": 5, "cluster-2": 5}
    assert all(list(dict(pairs))[-1] == "cluster" for pairs, _ in families["kube_pod_info"]["samples"])
    assert len({n["internal_ip"] for n in nodes}) == 10
    with pytest.raises(ValueError, match="--nodes"):
        gen_cluster.generate(3, 6, 1, out=io.StringIO())


def test_large_services_are_split_into_slices_of_100():
    out = io.StringIO()
    gen_cluster.generate(230, 4, 3, out=out)
    families = parse(out.getvalue())
    per_slice = Counter(e["endpointslice"] for e in rows(families, "kube_endpointslice_endpoints"))
    exporter = {s: n for s, n in per_slice.items() if s.startswith("node-exporter-")}
    assert sorted(exporter.values()) == [30, 100, 100]
    kubelet = {s: n for s, n in per_slice.items() if s.startswith("kubelet-")}
    assert list(kubelet.values()) == [230]  # prometheus-operator fills up to 512 per slice
    assert max(n for s, n in per_slice.items() if s not in kubelet) <= 100


def test_cli_writes_the_exposition_and_the_info(tmp_path, capsys):
    prom, info = tmp_path / "cluster.prom", tmp_path / "info.json"
    argv = ["--nodes", "6", "--pods-per-node", "8", "--zones", "2", "-o", str(prom), "--info-out", str(info)]
    assert gen_cluster.main(argv) == 0
    summary = json.loads(capsys.readouterr().err)
    families = parse(prom.read_text())
    assert summary["nodes"] == 6 and summary["pods"] == len(families["kube_pod_info"]["samples"])
    assert summary["bytes"] == prom.stat().st_size
    assert json.loads(info.read_text())[0]["zones"].keys() == {"eu-west-1a", "eu-west-1b"}
    assert gen_cluster.main(["--nodes", "2", "-o", str(tmp_path / "x.prom")]) == 2
    assert "--nodes" in capsys.readouterr().err


def test_zone_storm_through_the_simulator(tmp_path, capsys):
    info_file, stream = tmp_path / "info.json", tmp_path / "storm.jsonl"
    argv = ["--nodes", "12", "--pods-per-node", "9", "--zones", "3", "-o", str(tmp_path / "c.prom")]
    assert gen_cluster.main([*argv, "--info-out", str(info_file)]) == 0
    capsys.readouterr()
    assert (
        gen_storm.main(
            ["--cluster-info", str(info_file), "--zone", "1", "--recover-after", "30m", "-o", str(stream)]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().err)
    info = gen_cluster.ClusterInfo.from_json(json.loads(info_file.read_text())[0])
    dead = info.zones["eu-west-1b"]
    lines = stream.read_text().splitlines()
    deliveries = [parse_delivery_line(line) for line in lines]
    assert summary["deliveries"] == len(lines) and summary["bytes"] == stream.stat().st_size
    names: Counter[str] = Counter()
    resolved: Counter[tuple[str, str]] = Counter()
    seen = set()
    for delivery in deliveries:
        for alert in delivery.payload.alerts:
            key = (alert.fingerprint, alert.startsAt)
            resolved[key] += alert.status == "resolved"
            if key not in seen:
                seen.add(key)
                names[alert.labels["alertname"]] += 1
    assert summary["distinct_alerts"] == len(seen) == summary["alert_specs"]
    assert names["KubeNodeNotReady"] == names["KubeNodeUnreachable"] == len(dead)
    assert names["KubePodNotReady"] == sum(len(info.pods_by_node[n]) for n in dead)
    assert names["TargetDown"] >= 2  # node-exporter and kubelet: a third of the nodes is down
    assert {resolved[key] for key in seen} == {2}  # resolved once, by each of the two replicas
    # Two replicas: every payload of a group arrives twice, 15 s apart.
    by_group = defaultdict(list)
    for delivery in deliveries:
        by_group[delivery.payload.groupKey].append(delivery)
    for copies in by_group.values():
        assert len(copies) % 2 == 0
        for first, second in zip(copies[::2], copies[1::2], strict=True):
            assert first.payload == second.payload
            assert (second.received - first.received).total_seconds() == 15
    # Rebuilding the cluster from the same arguments gives the same storm.
    again = tmp_path / "again.jsonl"
    rebuilt = ["--nodes", "12", "--pods-per-node", "9", "--zones", "3", "--zone", "eu-west-1b"]
    assert gen_storm.main([*rebuilt, "--recover-after", "30m", "-o", str(again)]) == 0
    assert again.read_text() == stream.read_text()
