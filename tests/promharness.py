"""A real Prometheus for tests and benchmarks, scraping a cluster the test controls.

    cluster = TestCluster("t1", nodes=6)                      # a small Kubernetes cluster model
    with Harness() as h:                                      # aiohttp servers in a thread
        h.ksm.clusters["t1"] = cluster                        # served as KSM text at /ksm
        prom = h.prometheus(targets=[Target("kube-dns", "coredns-a", "t1")], rules=RULES)
        ...                                                   # prom.url: http://127.0.0.1:<port>
        cluster.remove_node("worker-3"); h.wait_scraped(prom, cluster)
        proxy = h.proxy(prom.url); proxy.mode = "error"       # 500s, delays, truncation
        prom.stop()

`/usr/bin/prometheus` (Debian's `prometheus`, see scripts/install-externals.sh) is started with
a generated configuration in a temporary directory, on a free loopback port, scrape and rule
evaluation every second. Every mutation of a TestCluster bumps `ksm_harness_generation`, so
`wait_scraped` knows when Prometheus has ingested it. A missing binary fails the test with a
message saying how to install it (with CI=true too: tests that need a binary fail loudly).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml
from aiohttp import ClientError, ClientSession, ClientTimeout, web

PROMETHEUS = os.environ.get("PROMETHEUS_BINARY", "/usr/bin/prometheus")
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"


class HarnessError(RuntimeError):
    pass


def prometheus_binary() -> str:
    """The binary, or a loud failure that says how to get it."""
    if os.access(PROMETHEUS, os.X_OK):
        return PROMETHEUS
    where = "CI=true: " if os.environ.get("CI") == "true" else ""
    raise HarnessError(
        f"{where}{PROMETHEUS} is missing: the Prometheus end-to-end tests need Debian's `prometheus` "
        "package (bash scripts/install-externals.sh, or apt-get install prometheus; "
        "PROMETHEUS_BINARY=/path overrides the location)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------- the cluster model


@dataclass
class Node:
    name: str
    ip: str
    zone: str
    ready: bool = True


@dataclass
class Pod:
    namespace: str
    name: str
    node: str
    ip: str
    owner_kind: str  # ReplicaSet | StatefulSet | DaemonSet | Node | ""
    owner_name: str
    host_network: bool = False
    phase: str = "Running"
    claims: list[str] = field(default_factory=list)


@dataclass
class Service:
    namespace: str
    name: str
    selects: tuple[str, str]  # (owner kind, owner name) of the pods behind it


DEFAULT_APPS = (("shop", "checkout", 4), ("web", "frontend", 3), ("db", "orders", 3))


class TestCluster:
    """A small cluster: N workers over zones of one region; kube-proxy on every node; CoreDNS (2
    pods behind `kube-system/kube-dns`); Deployments `apps` (namespace, name, replicas), each
    behind a Service, their pods dealt round-robin over the nodes after CoreDNS's; StatefulSet
    `shop/postgres` (one pod, a PVC) and an Ingress to `shop/checkout`.
    Mutations bump `generation`. `name=None` renders series without a `cluster` label."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        name: str | None,
        *,
        nodes: int = 6,
        zones: int = 2,
        apps: tuple[tuple[str, str, int], ...] = DEFAULT_APPS,
    ) -> None:
        self.name = name
        self.generation = 1
        self.lock = threading.Lock()
        self.nodes: dict[str, Node] = {}
        self.pods: dict[tuple[str, str], Pod] = {}
        coredns_rs = "coredns-5d78c9869d"
        self.replicasets = {("kube-system", coredns_rs): "coredns"}
        self.deployments = [("kube-system", "coredns")]
        self.statefulsets = [("shop", "postgres")]
        self.daemonsets = [("kube-system", "kube-proxy")]
        self.services = [
            Service("kube-system", "kube-dns", ("ReplicaSet", coredns_rs)),
            Service("shop", "postgres", ("StatefulSet", "postgres")),
        ]
        self._ip = 10
        for index in range(nodes):
            node = f"worker-{index}"
            ip = f"10.0.{index // 200}.{index % 200 + 10}"
            self.nodes[node] = Node(node, ip, f"eu-west-1{'abc'[index % zones]}")
        names = list(self.nodes)
        for node in names:
            self.add_pod(
                "kube-system", f"kube-proxy-{_suffix(node)}", node, "DaemonSet", "kube-proxy", host=True
            )
        self.add_pod("kube-system", f"{coredns_rs}-aaaaa", names[0], "ReplicaSet", coredns_rs)
        self.add_pod("kube-system", f"{coredns_rs}-bbbbb", names[1 % nodes], "ReplicaSet", coredns_rs)
        slot = 2
        for namespace, app, replicas in apps:
            replicaset = f"{app}-{_suffix(app)}{_suffix(app[::-1])}"[: len(app) + 11]
            self.replicasets[(namespace, replicaset)] = app
            self.deployments.append((namespace, app))
            self.services.append(Service(namespace, app, ("ReplicaSet", replicaset)))
            for index in range(replicas):
                pod = f"{replicaset}-{_suffix(f'{app}/{index}')}"
                self.add_pod(namespace, pod, names[slot % nodes], "ReplicaSet", replicaset)
                slot += 1
        postgres = self.add_pod("shop", "postgres-0", names[-1], "StatefulSet", "postgres")
        postgres.claims.append("data-postgres-0")
        self.generation = 1

    def pods_of(self, namespace: str, app: str) -> list[Pod]:
        """The pods of a Deployment (through its ReplicaSet) or of a StatefulSet/DaemonSet."""
        with self.lock:
            return [
                p
                for p in self.pods.values()
                if p.namespace == namespace
                and (p.owner_name == app or self.replicasets.get((namespace, p.owner_name)) == app)
            ]

    def pods_on(self, node: str) -> list[Pod]:
        with self.lock:
            return [p for p in self.pods.values() if p.node == node]

    # -- mutations (each one is a new generation) --------------------------------------------

    def add_pod(
        self,
        namespace: str,
        name: str,
        node: str,
        owner_kind: str,
        owner_name: str,
        *,
        host: bool = False,
    ) -> Pod:
        with self.lock:
            ip = self.nodes[node].ip if host else f"100.64.{self._ip // 250}.{self._ip % 250 + 1}"
            self._ip += 1
            pod = Pod(namespace, name, node, ip, owner_kind, owner_name, host_network=host)
            self.pods[(namespace, name)] = pod
            self.generation += 1
            return pod

    def remove_node(self, name: str) -> list[str]:
        """The node goes; its DaemonSet pods go, its other pods are recreated elsewhere (new
        names, as Kubernetes does; a StatefulSet pod keeps its name). Returns the new pod names."""
        with self.lock:
            del self.nodes[name]
            other = sorted(self.nodes)[0]
            moved = []
            for key, pod in list(self.pods.items()):
                if pod.node != name:
                    continue
                del self.pods[key]
                if pod.owner_kind == "DaemonSet":
                    continue
                new_name = pod.name if pod.owner_kind == "StatefulSet" else pod.name[:-5] + _suffix(pod.name)
                self._ip += 1
                ip = f"100.64.{self._ip // 250}.{self._ip % 250 + 1}"
                self.pods[(pod.namespace, new_name)] = Pod(
                    pod.namespace, new_name, other, ip, pod.owner_kind, pod.owner_name, claims=pod.claims
                )
                moved.append(new_name)
            self.generation += 1
            return moved

    def move_pod(self, namespace: str, name: str, node: str, new_name: str | None = None) -> str:
        """Reschedule a pod on `node` (with a new name unless given the same, as a StatefulSet)."""
        with self.lock:
            pod = self.pods.pop((namespace, name))
            pod.name = new_name or name
            pod.node = node
            self._ip += 1
            pod.ip = f"100.64.{self._ip // 250}.{self._ip % 250 + 1}"
            self.pods[(namespace, pod.name)] = pod
            self.generation += 1
            return pod.name

    def set_ready(self, node: str, ready: bool) -> None:
        with self.lock:
            self.nodes[node].ready = ready
            self.generation += 1

    def truncate_pods(self, keep: int) -> None:
        """Serve only the first `keep` pods (what a KSM shard that lost its list would serve)."""
        with self.lock:
            self.pods = dict(list(self.pods.items())[:keep])
            self.generation += 1

    def bump(self) -> None:
        with self.lock:
            self.generation += 1

    # -- rendering -------------------------------------------------------------------------------

    def families(self) -> dict[str, list[str]]:
        """family -> sample lines, in KSM's label order, plus the harness' generation gauge."""
        with self.lock:
            return self._families()

    def _families(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}

        def emit(family: str, value: str | int, **labels: str) -> None:
            if self.name is not None:
                labels["cluster"] = self.name
            body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            out.setdefault(family, []).append(f"{family}{{{body}}} {value}")

        for node in self.nodes.values():
            emit(
                "kube_node_info",
                1,
                node=node.name,
                kernel_version="6.8.0-45-generic",
                os_image="Ubuntu 24.04.1 LTS",
                container_runtime_version="containerd://1.7.22",
                kubelet_version="v1.31.2",
                kubeproxy_version="deprecated",
                provider_id=f"aws:///{node.zone}/i-{_hash(node.name)[:17]}",
                pod_cidr="",
                system_uuid=_hash(node.name)[:36],
                internal_ip=node.ip,
            )
            emit(
                "kube_node_labels",
                1,
                node=node.name,
                label_topology_kubernetes_io_region="eu-west-1",
                label_topology_kubernetes_io_zone=node.zone,
            )
            for status in ("true", "false", "unknown"):
                current = "true" if node.ready else "unknown"
                emit(
                    "kube_node_status_condition",
                    int(status == current),
                    node=node.name,
                    condition="Ready",
                    status=status,
                )
            emit("kube_node_spec_unschedulable", 0, node=node.name)
        for pod in self.pods.values():
            uid = _uid(self.name, pod)
            common = {"namespace": pod.namespace, "pod": pod.name, "uid": uid}
            emit(
                "kube_pod_info",
                1,
                **common,
                host_ip=self.nodes[pod.node].ip if pod.node in self.nodes else "",
                pod_ip=pod.ip,
                node=pod.node,
                created_by_kind=pod.owner_kind,
                created_by_name=pod.owner_name,
                priority_class="",
                host_network=str(pod.host_network).lower(),
            )
            emit(
                "kube_pod_owner",
                1,
                **common,
                owner_kind=pod.owner_kind,
                owner_name=pod.owner_name,
                owner_is_controller="true" if pod.owner_kind else "",
            )
            for phase in ("Pending", "Succeeded", "Failed", "Unknown", "Running"):
                emit("kube_pod_status_phase", int(phase == pod.phase), **common, phase=phase)
            for claim in pod.claims:
                emit(
                    "kube_pod_spec_volumes_persistentvolumeclaims_info",
                    1,
                    **common,
                    volume="data",
                    persistentvolumeclaim=claim,
                )
        for (namespace, name), deployment in self.replicasets.items():
            emit(
                "kube_replicaset_owner",
                1,
                namespace=namespace,
                replicaset=name,
                owner_kind="Deployment",
                owner_name=deployment,
                owner_is_controller="true",
            )
        for namespace, name in self.deployments:
            replicas = sum(
                1 for p in self.pods.values() if self.replicasets.get((p.namespace, p.owner_name)) == name
            )
            emit("kube_deployment_spec_replicas", replicas, namespace=namespace, deployment=name)
        for namespace, name in self.statefulsets:
            emit("kube_statefulset_replicas", 1, namespace=namespace, statefulset=name)
        for namespace, name in self.daemonsets:
            emit(
                "kube_daemonset_status_desired_number_scheduled",
                len(self.nodes),
                namespace=namespace,
                daemonset=name,
            )
        for service in self.services:
            emit(
                "kube_service_info",
                1,
                namespace=service.namespace,
                service=service.name,
                uid=_hash(f"{self.name}/{service.namespace}/{service.name}")[:36],
                cluster_ip="10.96.0.10",
                external_name="",
                load_balancer_ip="",
                external_traffic_policy="",
            )
            slice_name = f"{service.name}-{_suffix(service.name)}"
            emit(
                "kube_endpointslice_labels",
                1,
                endpointslice=slice_name,
                namespace=service.namespace,
                label_kubernetes_io_service_name=service.name,
            )
            for pod in self.pods.values():
                if (pod.owner_kind, pod.owner_name) != service.selects or pod.namespace != service.namespace:
                    continue
                ready = self.nodes.get(pod.node, Node("", "", "", False)).ready
                emit(
                    "kube_endpointslice_endpoints",
                    1,
                    endpointslice=slice_name,
                    namespace=service.namespace,
                    ready=str(ready).lower(),
                    serving="false",
                    hostname="",
                    terminating="",
                    targetref_kind="Pod",
                    targetref_name=pod.name,
                    targetref_namespace=pod.namespace,
                    endpoint_nodename=pod.node,
                    endpoint_zone=self.nodes[pod.node].zone if pod.node in self.nodes else "",
                    address=pod.ip,
                )
        emit("kube_ingress_info", 1, namespace="shop", ingress="storefront", ingressclass="nginx")
        emit(
            "kube_ingress_path",
            1,
            namespace="shop",
            ingress="storefront",
            host="shop.example.com",
            path="/",
            path_type="Prefix",
            service_name="checkout",
            service_port="8080",
        )
        for pod in self.pods.values():
            for claim in pod.claims:
                volume = "pvc-" + _hash(f"{self.name}/{claim}")[:32]
                emit(
                    "kube_persistentvolumeclaim_info",
                    1,
                    namespace=pod.namespace,
                    persistentvolumeclaim=claim,
                    storageclass="gp3",
                    volumename=volume,
                    volumemode="Filesystem",
                )
                emit("kube_persistentvolume_info", 1, persistentvolume=volume, storageclass="gp3")
        emit("ksm_harness_generation", self.generation)
        return out


def render(clusters: list[TestCluster]) -> str:
    """KSM text of several clusters, each family's lines together under its HELP/TYPE."""
    merged: dict[str, list[str]] = {}
    for cluster in clusters:
        for family, lines in cluster.families().items():
            merged.setdefault(family, []).extend(lines)
    parts = []
    for family, lines in merged.items():
        parts.append(f"# HELP {family} {family}.\n# TYPE {family} gauge\n")
        parts.append("\n".join(lines) + "\n")
    return "".join(parts)


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _suffix(seed: str) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:5])


def _uid(cluster: str | None, pod: Pod) -> str:
    h = _hash(f"{cluster}/{pod.namespace}/{pod.name}")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


# ---------------------------------------------------------------------------- servers in a thread


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="promharness", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Target:
    """A scrape target whose `up` the test controls (`/target/<name>`: 200, or 500 when down)."""

    job: str
    name: str
    cluster: str | None = None


@dataclass
class Traffic:
    """A request counter served next to the KSM text (servicegraph, Istio, Linkerd series): it
    grows by one per scrape while `flowing`, and stays put when the traffic stops."""

    metric: str
    labels: dict[str, str]
    flowing: bool = True
    value: float = 0.0

    def line(self) -> str:
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(self.labels.items()))
        return f"{self.metric}{{{labels}}} {self.value:.17g}\n"


class KsmServer:
    """Serves `/ksm` (the clusters as KSM text, or a file, and the `traffic` counters) and
    `/target/<name>`."""

    def __init__(self) -> None:
        self.clusters: dict[str, TestCluster] = {}
        self.traffic: list[Traffic] = []
        self.file: Path | None = None
        self.down: set[str] = set()
        self.failing = False  # /ksm answers 500 (kube-state-metrics down)
        self.port = 0
        self.scrapes = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ksm", self._ksm)
        app.router.add_get("/target/{name}", self._target)
        return app

    async def _ksm(self, request: web.Request) -> web.StreamResponse:
        self.scrapes += 1
        if self.failing:
            return web.Response(status=500, text="kube-state-metrics is down")
        if self.file is not None:
            return web.FileResponse(self.file, headers={"Content-Type": EXPOSITION})
        text = render(list(self.clusters.values()))
        for metric in sorted({t.metric for t in self.traffic}):
            text += f"# TYPE {metric} counter\n"
            for series in self.traffic:
                if series.metric == metric:
                    series.value += 1 if series.flowing else 0
                    text += series.line()
        return web.Response(body=text.encode(), headers={"Content-Type": EXPOSITION})

    async def _target(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in self.down:
            return web.Response(status=500, text="down")
        return web.Response(text="harness_target 1\n", headers={"Content-Type": EXPOSITION})


class Proxy:
    """An HTTP proxy in front of Prometheus whose behaviour the test sets with `mode`:
    `pass`, `delay` (waits `delay` seconds, then passes), `error` (HTTP 500 with a Prometheus
    error body), `truncate` (HTTP 200, the body cut in the middle). `warnings`: added to every
    answer, as a Thanos querier does for a partial response."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = "pass"
        self.delay = 5.0
        self.warnings: list[str] = []
        self.port = 0
        self.requests = 0
        self.session: ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        mode = self.mode
        if mode == "error":
            return web.json_response(
                {"status": "error", "errorType": "internal", "error": "proxy says no"}, status=500
            )
        if mode == "delay":
            await asyncio.sleep(self.delay)
        if self.session is None:
            return web.Response(status=503, text="proxy closed")
        try:
            async with self.session.request(
                request.method, self.upstream + request.rel_url.path_qs, data=await request.read()
            ) as upstream:
                body = await upstream.read()
                status = upstream.status
        except (RuntimeError, ClientError) as exc:  # upstream stopped, or the harness closing
            return web.Response(status=502, text=f"proxy: {exc}")
        if self.warnings and status == 200:
            # What a Thanos querier with a store down answers (partial response).
            payload = json.loads(body)
            payload["warnings"] = list(self.warnings)
            body = json.dumps(payload).encode()
        if mode == "truncate":
            body = body[: len(body) // 2]
        return web.Response(body=body, status=status, headers={"Content-Type": "application/json"})


class PrometheusProcess:
    def __init__(self, workdir: Path, config: dict[str, Any], rules: str | None, args: list[str]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        if rules:
            (workdir / "rules.yml").write_text(rules)
            config["rule_files"] = [str(workdir / "rules.yml")]
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.log = workdir / "prometheus.log"
        self.command = [
            prometheus_binary(),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=2h",
            "--log.level=warn",
            "--scrape.discovery-reload-interval=200ms",
            *args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(f"prometheus exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise HarnessError(f"prometheus not ready after {timeout:g}s: {self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        response.raise_for_status()
        return response.json()["data"]["result"]


class Harness:
    """Owns the server thread, the Prometheus processes and proxies; a context manager."""

    def __init__(self, workdir: Path | None = None) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="promharness-")) if workdir is None else workdir
        self.ksm = KsmServer()
        self._thread = _LoopThread()
        self._runners: list[web.AppRunner] = []
        self._proxies: list[Proxy] = []
        self.processes: list[PrometheusProcess] = []
        self.ksm.port = self._serve(self.ksm.app())

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _serve(self, app: web.Application) -> int:
        async def start() -> int:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self._runners.append(runner)
            return port

        return self._thread.run(start())

    def prometheus(
        self,
        *,
        targets: list[Target] = (),  # type: ignore[assignment]
        rules: str | None = None,
        scrape_interval: str = "1s",
        scrape_timeout: str | None = None,
        args: list[str] = (),  # type: ignore[assignment]
        external_labels: dict[str, str] | None = None,
        start: bool = True,
    ) -> PrometheusProcess:
        """A Prometheus scraping this harness' KSM server (job kube-state-metrics) and targets."""
        address = f"127.0.0.1:{self.ksm.port}"
        jobs: dict[str, list[dict[str, Any]]] = {}
        for target in targets:
            labels = {"instance": target.name, "__metrics_path__": f"/target/{target.name}"}
            if target.cluster:
                labels["cluster"] = target.cluster
            jobs.setdefault(target.job, []).append({"targets": [address], "labels": labels})
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_timeout or scrape_interval,
                "evaluation_interval": "1s",
                **({"external_labels": external_labels} if external_labels else {}),
            },
            "scrape_configs": [
                {
                    "job_name": "kube-state-metrics",
                    "honor_labels": True,
                    "metrics_path": "/ksm",
                    "static_configs": [{"targets": [address]}],
                },
                *({"job_name": job, "static_configs": groups} for job, groups in jobs.items()),
            ],
        }
        process = PrometheusProcess(
            self.workdir / f"prometheus-{len(self.processes)}", config, rules, list(args)
        )
        self.processes.append(process)
        if start:
            process.start()
        return process

    def proxy(self, upstream: str) -> Proxy:
        proxy = Proxy(upstream)

        async def session() -> ClientSession:  # created on the server thread's loop
            return ClientSession(timeout=ClientTimeout(total=60), auto_decompress=True)

        proxy.session = self._thread.run(session())
        proxy.port = self._serve(proxy.app())
        self._proxies.append(proxy)
        return proxy

    def wait_scraped(self, prom: PrometheusProcess, cluster: TestCluster, timeout: float = 20.0) -> None:
        """Until Prometheus has ingested the cluster's current generation."""
        want = cluster.generation
        selector = f'{{cluster="{cluster.name}"}}' if cluster.name is not None else '{cluster=""}'
        self.wait_until(
            prom,
            f"ksm_harness_generation{selector}",
            lambda rows: bool(rows) and float(rows[0]["value"][1]) >= want,
            timeout,
            f"generation {want} of cluster {cluster.name}",
        )

    def wait_until(
        self,
        prom: PrometheusProcess,
        promql: str,
        predicate: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 20.0,
        what: str = "",
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                rows = prom.query(promql)
                if predicate(rows):
                    return rows
            time.sleep(0.1)
        raise HarnessError(f"timed out after {timeout:g}s waiting for {what or promql}; last answer {rows}")

    def close(self) -> None:
        for process in self.processes:
            process.stop()

        async def cleanup() -> None:
            for proxy in self._proxies:
                if proxy.session is not None:
                    await proxy.session.close()
            for runner in self._runners:
                await runner.cleanup()

        with contextlib.suppress(Exception):
            self._thread.run(cleanup(), timeout=15)
        self._thread.close()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def harness() -> Iterator[Harness]:
    with Harness() as h:
        yield h
