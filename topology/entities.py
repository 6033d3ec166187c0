"""Entity names, exactly as `shared/contracts.md` fixes them.

`<kind>/<cluster>/<name>` for cluster-scoped objects, `<kind>/<cluster>/<namespace>/<name>` for
namespaced ones, `node/<cluster>/<node>/<component>` for the parts of a node. `<cluster>` is the
alert's `cluster` label, or `default` when there is none.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_CLUSTER = "default"

NAMESPACED_KINDS = frozenset(
    {
        "deployment",
        "statefulset",
        "daemonset",
        "replicaset",
        "job",
        "cronjob",
        "pod",
        "service",
        "ingress",
        "pvc",
        "hpa",
        "pdb",
        "prometheus",
        "alertmanager",
        # Configuration: what changes (topology/changes.py) are recorded on.
        "configmap",
        "secret",
        "networkpolicy",
    }
)
CLUSTER_KINDS = frozenset(
    {
        "cluster",
        "region",
        "zone",
        "node",
        "apiserver",
        "etcd",
        "scheduler",
        "controller-manager",
        "dns",
        "namespace",
        "pv",
        "pipeline",
        "alert",
        "external",
    }
)

# Cluster functions: the control plane and cluster DNS. What depends on them uses them (through
# the network, the API); it does not run on them.
CLUSTER_FUNCTIONS = frozenset({"dns", "apiserver", "etcd", "scheduler", "controller-manager"})

# Components of a node that pods and the node itself depend on.
NODE_COMPONENTS = ("kubelet", "cni", "kube-proxy", "node-local-dns", "runtime", "disk")

# Singletons of a cluster: one control plane and one cluster DNS per cluster.
CLUSTER_DNS = "cluster-dns"
APISERVER = "kube-apiserver"
ETCD = "etcd"
SCHEDULER = "kube-scheduler"
CONTROLLER_MANAGER = "kube-controller-manager"
ALERTING_PIPELINE = "alerting-pipeline"


def cluster_of(labels: Mapping[str, str]) -> str:
    return labels.get("cluster") or DEFAULT_CLUSTER


def entity(kind: str, cluster: str, name: str, namespace: str | None = None) -> str:
    """Build an entity name; namespaced kinds need a namespace."""
    cluster = cluster or DEFAULT_CLUSTER
    if kind in NAMESPACED_KINDS:
        if not namespace:
            raise ValueError(f"{kind} {name!r} needs a namespace")
        return f"{kind}/{cluster}/{namespace}/{name}"
    return f"{kind}/{cluster}/{name}"


def node_component(cluster: str, node: str, component: str) -> str:
    return f"node/{cluster or DEFAULT_CLUSTER}/{node}/{component}"


def singleton(kind: str, cluster: str) -> str:
    """The one apiserver / etcd / scheduler / controller-manager / cluster DNS of a cluster."""
    names = {
        "dns": CLUSTER_DNS,
        "apiserver": APISERVER,
        "etcd": ETCD,
        "scheduler": SCHEDULER,
        "controller-manager": CONTROLLER_MANAGER,
        "pipeline": ALERTING_PIPELINE,
        "cluster": "cluster",
    }
    return entity(kind, cluster, names[kind])


def kind_of(name: str) -> str:
    """The kind of an entity name; node components report `node-component`."""
    kind, _, rest = name.partition("/")
    if kind == "node" and rest.count("/") >= 2:
        return "node-component"
    return kind


def split(name: str) -> tuple[str, str, str | None, str]:
    """Entity name -> (kind, cluster, namespace or None, object name)."""
    parts = name.split("/")
    if len(parts) < 3:
        raise ValueError(f"not an entity name: {name!r}")
    kind, cluster = parts[0], parts[1]
    if kind in NAMESPACED_KINDS and len(parts) >= 4:
        return kind, cluster, parts[2], "/".join(parts[3:])
    return kind, cluster, None, "/".join(parts[2:])
