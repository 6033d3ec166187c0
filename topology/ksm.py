"""Topology from kube-state-metrics series (`curl kube-state-metrics:8080/metrics > cluster.prom`).

One pass over the series collects the objects into a `ClusterBuilder` (dicts keyed by cluster,
namespace and name; no per-object scans), which then makes the edges (topology/k8s.py). Every
series may carry a `cluster` label (a federated or multi-cluster dump); without one the object
belongs to cluster `default`. Extra labels added by a Prometheus scrape (job, instance,
container) are ignored. Families that are missing only remove what they would have told:
no kube_node_labels -> zones from the providerID; no endpoint series -> no Service -> pod edges;
no owner series -> pods owned by their ReplicaSet (or by nothing).

docs/topology.md lists the series read and the edges they give.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from topology.graph import Topology
from topology.k8s import ClusterBuilder, paused_gc
from topology.promtext import Series, parse_file, parse_lines

DEFAULT_CLUSTER = "default"

# Series read; every other family is skipped unparsed.
WANTED = frozenset(
    {
        "kube_node_info",
        "kube_node_labels",
        "kube_pod_info",
        "kube_pod_owner",
        "kube_pod_status_phase",
        "kube_replicaset_owner",
        "kube_deployment_spec_replicas",
        "kube_statefulset_replicas",
        "kube_daemonset_status_desired_number_scheduled",
        "kube_job_info",
        "kube_job_owner",
        "kube_cronjob_info",
        "kube_horizontalpodautoscaler_info",
        "kube_service_info",
        "kube_endpointslice_endpoints",
        "kube_endpointslice_labels",
        "kube_endpoint_address",
        "kube_ingress_info",
        "kube_ingress_path",
        "kube_pod_spec_volumes_persistentvolumeclaims_info",
        "kube_persistentvolumeclaim_info",
        "kube_persistentvolume_claim_ref",
        "kube_persistentvolume_info",
    }
)
# Families whose value is a count, not a 0/1 flag: the series only says the object exists.
_EXISTENCE = {
    "kube_deployment_spec_replicas": "deployment",
    "kube_statefulset_replicas": "statefulset",
    "kube_daemonset_status_desired_number_scheduled": "daemonset",
}


def _finished_phase(line: str) -> bool:
    # kube_pod_status_phase has 5 series per pod; only Succeeded/Failed (at 1) matter here.
    return ('"Succeeded"' in line or '"Failed"' in line) and not line.endswith(("} 0\n", "} 0"))


# Raw-line filters applied before label parsing (see promtext.parse_lines).
PREFILTER = {"kube_pod_status_phase": _finished_phase}

# EndpointSlice names are generated as `<service>-<5 random chars>`.
_SLICE_SUFFIX = re.compile(r"(.+)-[a-z0-9]{5}\Z")


def load_ksm(path: str | Path) -> Topology:
    """Parse a kube-state-metrics exposition file into a Topology (InputError names file:line)."""
    return build_from_series(parse_file(path, WANTED, PREFILTER))


def load_ksm_text(text: str, source: str = "<input>") -> Topology:
    return build_from_series(parse_lines(text.splitlines(), source, WANTED, PREFILTER))


def build_from_series(series: Iterable[Series], builder: ClusterBuilder | None = None) -> Topology:
    builder = builder or ClusterBuilder()
    with paused_gc():
        collect(series, builder)
        return builder.build()


def collect(series: Iterable[Series], builder: ClusterBuilder) -> None:
    """Declare the objects the series describe; nothing is linked until `builder.build()`."""
    clusters: set[str] = set()
    # (cluster, namespace, slice) -> ready pods; slice -> service from kube_endpointslice_labels.
    slice_pods: dict[tuple[str, str, str], list[tuple[str | None, str]]] = {}
    slice_service: dict[tuple[str, str, str], str] = {}

    for name, labels, value, _ in series:
        cluster = labels.get("cluster") or DEFAULT_CLUSTER
        if cluster not in clusters:
            clusters.add(cluster)
            builder.add_cluster(cluster)
        kind = _EXISTENCE.get(name)
        if kind is not None:
            builder.add_workload(cluster, kind, labels.get("namespace", ""), labels.get(kind, ""))
            continue
        if value != 1:
            # Info series are always 1; a 0 is a state that does not hold.
            continue
        get = labels.get
        if name == "kube_pod_info":
            builder.add_pod(
                cluster,
                get("namespace", ""),
                get("pod", ""),
                node=get("node", ""),
                ip=get("pod_ip", ""),
                host_network=get("host_network") == "true",
                owner_kind=get("created_by_kind", ""),
                owner_name=get("created_by_name", ""),
            )
        elif name == "kube_endpointslice_endpoints":
            # Every endpoint is a member, ready or not: readiness is state, and it flips exactly
            # while an incident runs; a refresh then must not cut the path from a Service to
            # the failing pods behind it (their failure is what explains the Service's alerts).
            target_kind = get("targetref_kind")
            if target_kind in ("Pod", "Node") and get("targetref_name"):
                key = (cluster, get("namespace", ""), get("endpointslice", ""))
                # Node targets (the kubelet Service prometheus-operator maintains) keep namespace "".
                target = (
                    get("targetref_namespace", "") if target_kind == "Pod" else None,
                    labels["targetref_name"],
                )
                slice_pods.setdefault(key, []).append(target)
        elif name == "kube_pod_owner":
            if get("owner_is_controller") == "true" and get("owner_kind"):
                builder.set_pod_owner(
                    cluster, get("namespace", ""), get("pod", ""), labels["owner_kind"], get("owner_name", "")
                )
        elif name == "kube_pod_status_phase":
            if get("phase") in ("Succeeded", "Failed"):
                builder.set_pod_finished(cluster, get("namespace", ""), get("pod", ""))
        elif name == "kube_pod_spec_volumes_persistentvolumeclaims_info":
            if get("persistentvolumeclaim"):
                builder.add_pod_claim(
                    cluster, get("namespace", ""), get("pod", ""), labels["persistentvolumeclaim"]
                )
        elif name == "kube_node_info":
            builder.add_node(
                cluster,
                get("node", ""),
                internal_ip=get("internal_ip", ""),
                provider_id=get("provider_id", ""),
            )
        elif name == "kube_node_labels":
            builder.set_node_zone(
                cluster,
                get("node", ""),
                zone=get("label_topology_kubernetes_io_zone", ""),
                region=get("label_topology_kubernetes_io_region", ""),
            )
        elif name == "kube_replicaset_owner":
            if get("owner_kind"):
                builder.set_owner(
                    cluster,
                    "replicaset",
                    get("namespace", ""),
                    get("replicaset", ""),
                    labels["owner_kind"],
                    get("owner_name", ""),
                )
        elif name == "kube_job_owner":
            namespace, job = get("namespace", ""), get("job_name", "")
            if get("owner_kind"):
                builder.set_owner(cluster, "job", namespace, job, labels["owner_kind"], get("owner_name", ""))
            else:
                builder.add_workload(cluster, "job", namespace, job)
        elif name == "kube_job_info":
            builder.add_workload(cluster, "job", get("namespace", ""), get("job_name", ""))
        elif name == "kube_cronjob_info":
            builder.add_workload(cluster, "cronjob", get("namespace", ""), get("cronjob", ""))
        elif name == "kube_horizontalpodautoscaler_info":
            builder.add_hpa(
                cluster,
                get("namespace", ""),
                get("horizontalpodautoscaler", ""),
                get("scaletargetref_kind", ""),
                get("scaletargetref_name", ""),
            )
        elif name == "kube_service_info":
            builder.add_service(cluster, get("namespace", ""), get("service", ""))
        elif name == "kube_endpointslice_labels":
            service = get("label_kubernetes_io_service_name")
            if service:
                slice_service[(cluster, get("namespace", ""), get("endpointslice", ""))] = service
        elif name == "kube_endpoint_address":
            # Ready or not, like EndpointSlice endpoints above (notReadyAddresses included).
            if get("ip"):
                builder.add_endpoint_ip(cluster, get("namespace", ""), get("endpoint", ""), labels["ip"])
        elif name == "kube_ingress_info":
            builder.add_ingress(cluster, get("namespace", ""), get("ingress", ""))
        elif name == "kube_ingress_path":
            builder.add_ingress(cluster, get("namespace", ""), get("ingress", ""), get("service_name", ""))
        elif name == "kube_persistentvolumeclaim_info":
            builder.add_claim(
                cluster, get("namespace", ""), get("persistentvolumeclaim", ""), get("volumename", "")
            )
        elif name == "kube_persistentvolume_claim_ref":
            if get("name") and get("claim_namespace"):
                builder.add_claim(
                    cluster, labels["claim_namespace"], labels["name"], get("persistentvolume", "")
                )
        elif name == "kube_persistentvolume_info":
            builder.add_volume(cluster, get("persistentvolume", ""))

    for key, pods in slice_pods.items():
        cluster, namespace, endpoint_slice = key
        service = slice_service.get(key) or _service_of_slice(builder, cluster, namespace, endpoint_slice)
        for pod_namespace, target_name in pods:
            if pod_namespace is None:
                builder.add_endpoint_node(cluster, namespace, service, target_name)
            else:
                builder.add_endpoint_pod(cluster, namespace, service, pod_namespace, target_name)


def _service_of_slice(builder: ClusterBuilder, cluster: str, namespace: str, endpoint_slice: str) -> str:
    """The Service of a slice without its `kubernetes.io/service-name` label: the slice name
    without its generated suffix. Long Service names are cut to 57 characters before the suffix,
    so a known Service that the stripped name starts with is taken when there is exactly one."""
    match = _SLICE_SUFFIX.match(endpoint_slice)
    if not match:
        return endpoint_slice
    base = match.group(1)
    if (cluster, namespace, base) in builder.services or len(base) < 57:
        return base
    candidates = [
        name
        for (c, ns, name) in builder.services
        if c == cluster and ns == namespace and name.startswith(base)
    ]
    return candidates[0] if len(candidates) == 1 else base
