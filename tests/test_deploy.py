"""The deployment artefacts (deploy/): rendered, schema-checked, cross-checked against the code.

- Kubernetes: both kustomize overlays (and the Slack Ingress component) and `helm template` in
  both modes are rendered with the pinned kubectl (kustomize built in) and helm of
  scripts/install-k8s-tools.sh, validated strictly against the Kubernetes 1.33 OpenAPI schemas
  bundled in kubernetes-validate (offline), and the chart must render the same objects as the
  overlays. The CRDs (ServiceMonitor, PrometheusRule) have no bundled schema: a structural check
  here, and `promtool check rules` on their rule groups.
- Cross-references: ports, probes, selectors, Secrets and their keys, the ConfigMap's
  configuration loaded with the real loader, the service started on that configuration and
  asked for the probe paths and its metrics; every metric an alerting rule uses is one the
  service exposes.
- The Dockerfile (no Docker engine here: checked statically) and the wheel it installs.
- The Alertmanager configuration, with `amtool check-config`.

Missing tools fail (never skip), naming the script that installs them.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml

from ground.errors import InputError
from ground.times import parse_duration
from integrations.slack.interactions import INTERACTIONS_PATH
from router.cli.main import build_parser
from router.core.settings import EngineSettings
from router.service.config import load_settings
from router.service.webhook import PATH as WEBHOOK_PATH
from tests.service_harness import ROOT, ServeProcess, alert, payload

DEPLOY = ROOT / "deploy"
KUSTOMIZE = DEPLOY / "kubernetes"
CHART = DEPLOY / "helm" / "alert-router"
RULES = DEPLOY / "prometheus" / "alert-router-rules.yaml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
TOOLS = ROOT / ".tools" / "bin"
KUBERNETES_VERSION = "1.33"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
# The contract between the manifests and the configuration: Secret -> the keys mounted from it.
SECRET_KEYS = {"alert-router-auth": {"token"}, "alert-router-slack": {"bot-token", "signing-secret"}}
# ha mode: the replicas' shared PostgreSQL URL, from this Secret's file named by this variable.
POSTGRES_SECRET = {"alert-router-postgres": {"url"}}
POSTGRES_URL_ENV = "ALERT_ROUTER_STORAGE__URL_FILE"
# kustomize's configMapGenerator appends a content hash to the ConfigMap's name.
HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")


# ---------------------------------------------------------------------------------- tools


def tool(path: Path, installer: str) -> str:
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is missing: run `bash scripts/{installer}` (scripts/test.sh does)")
    return str(path)


def helm() -> str:
    return tool(TOOLS / "helm", "install-k8s-tools.sh")


def kubectl() -> str:
    # Never the kubectl on PATH: it may be any version, or absent on a fresh machine.
    return tool(TOOLS / "kubectl", "install-k8s-tools.sh")


def promtool() -> str:
    return tool(Path(shutil.which("promtool") or "/usr/bin/promtool"), "install-externals.sh")


def amtool() -> str:
    return tool(Path(shutil.which("amtool") or "/usr/bin/amtool"), "install-externals.sh")


def run(*args: str, cwd: Path = ROOT) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


# ------------------------------------------------------------------------------ renders


@cache
def kustomize(directory: str) -> tuple[dict[str, Any], ...]:
    return tuple(documents(run(kubectl(), "kustomize", str(KUSTOMIZE / directory))))


@cache
def kustomize_with_ingress() -> tuple[dict[str, Any], ...]:
    """overlays/single plus components/slack-ingress, as a user's overlay would combine them.
    kustomize wants relative paths, and a directory outside the repository keeps it clean."""
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.relpath(KUSTOMIZE, tmp)
        (Path(tmp) / "kustomization.yaml").write_text(
            f"resources: [{base}/overlays/single]\ncomponents: [{base}/components/slack-ingress]\n"
        )
        return tuple(documents(run(kubectl(), "kustomize", tmp)))


@cache
def helm_template(*values: str) -> tuple[dict[str, Any], ...]:
    sets = [arg for value in values for arg in ("--set", value)]
    return tuple(documents(run(helm(), "template", "alert-router", str(CHART), *sets)))


RENDERS = {
    "kustomize-single": lambda: kustomize("overlays/single"),
    "kustomize-ha": lambda: kustomize("overlays/ha"),
    "kustomize-single-ingress": kustomize_with_ingress,
    "helm-single": lambda: helm_template("mode=single"),
    "helm-ha": lambda: helm_template("mode=ha"),
    "helm-single-ingress": lambda: helm_template("mode=single", "ingress.enabled=true"),
}
MODE = {name: "ha" if "-ha" in name else "single" for name in RENDERS}


def one(objects: tuple[dict[str, Any], ...], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(objects: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def config_of(objects: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return yaml.safe_load(one(objects, "ConfigMap")["data"]["config.yaml"])


def subset(small: dict[str, str], big: dict[str, str]) -> bool:
    return small.items() <= big.items()


# ---------------------------------------------------------------------- schema validation


@pytest.mark.parametrize("render", RENDERS)
def test_rendered_objects_are_valid_kubernetes(render: str) -> None:
    objects = RENDERS[render]()
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount", "PodDisruptionBudget"} <= kinds
    assert {"NetworkPolicy", "ServiceMonitor", "PrometheusRule"} <= kinds
    assert ("Ingress" in kinds) == render.endswith("ingress")
    assert ("PersistentVolumeClaim" in kinds) == (MODE[render] == "single")
    for obj in objects:
        # Namespace-agnostic: `kubectl apply -n`, `helm -n` or the user's overlay decide.
        assert "namespace" not in obj["metadata"], f"{obj['kind']} names a namespace"
        if obj["kind"] in CRD_KINDS:
            continue  # no bundled schema: test_prometheus_operator_objects
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{render}: {obj['kind']}/{obj['metadata']['name']}: {where}: {exc.message}")


def test_the_schema_check_is_strict() -> None:
    """A field Kubernetes does not know must fail: the validation above is not a no-op."""
    deployment = copy.deepcopy(one(kustomize("overlays/single"), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# ------------------------------------------------------------ Prometheus Operator objects


def plain_rule_groups() -> list[dict[str, Any]]:
    return yaml.safe_load(RULES.read_text())["groups"]


def plain_rules() -> list[dict[str, Any]]:
    return [rule for group in plain_rule_groups() for rule in group["rules"]]


@pytest.mark.parametrize("render", RENDERS)
def test_prometheus_operator_objects(render: str) -> None:
    objects = RENDERS[render]()
    service = one(objects, "Service")
    monitor = one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) == {"jobLabel", "selector", "endpoints"}
    assert subset(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    # The job name the rules expect comes from this Service label.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "alert-router"
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval"}
        assert endpoint["port"] in service_ports and endpoint["path"] == "/metrics"
        parse_duration(endpoint["interval"])

    rule = one(objects, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["spec"]) == {"groups"}
    # One source: the plain rules file that promtool checks.
    assert rule["spec"]["groups"] == plain_rule_groups()


def test_rule_files_pass_promtool_and_the_chart_copy_is_identical(tmp_path: Path) -> None:
    assert (CHART / "files" / "alert-router-rules.yaml").read_bytes() == RULES.read_bytes(), (
        f"copy {RULES.relative_to(ROOT)} to deploy/helm/alert-router/files/"
    )
    out = run(promtool(), "check", "rules", str(RULES))
    assert "SUCCESS" in out
    for rule in plain_rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
        assert rule["alert"].startswith("AlertRouter")
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["summary"]


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool"}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords,
    label names (in matchers and by/on lists), strings, durations or numbers."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", expr):
        if not match.group(2) and match.group(1) not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def test_metric_name_extraction() -> None:
    assert metric_names('absent(up{job="a"} == 1)') == {"up"}
    expr = 'sum by (ns, pod) (rate(a_total{code=~"5.."}[5m])) / on (pod) b > 8 * 1024 unless c == 0'
    assert metric_names(expr) == {"a_total", "b", "c"}


# ------------------------------------------------------------------------ cross-references


@pytest.mark.parametrize("render", RENDERS)
def test_manifests_reference_what_exists(render: str) -> None:
    objects = RENDERS[render]()
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    main = container(objects)
    service = one(objects, "Service")

    # Ports: the container's named port is what the Service, the probes and the policy use.
    (port,) = main["ports"]
    assert port == {"name": "http", "containerPort": 9095, "protocol": "TCP"}
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == port["name"] and service_port["port"] == 9095
    assert subset(service["spec"]["selector"], pod_labels)
    assert subset(deployment["spec"]["selector"]["matchLabels"], pod_labels)

    # Probes: the paths the service serves (test_the_service_runs_on_the_configmap).
    assert main["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}

    # The command line is the real CLI's and reads the mounted ConfigMap.
    args = build_parser().parse_args(main["args"])
    assert args.command == "serve"
    mounts = {m["name"]: m for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(mounts) == set(volumes), "every volume mounted, every mount backed by a volume"
    assert Path(args.config).parent == Path(mounts["config"]["mountPath"])
    assert volumes["config"]["configMap"]["name"] == one(objects, "ConfigMap")["metadata"]["name"]
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]

    # Secrets are referenced, never carried, with the keys the configuration reads.
    assert not [o for o in objects if o["kind"] == "Secret"]
    secret_volumes = {name: v["secret"] for name, v in volumes.items() if "secret" in v}
    expected_secrets = SECRET_KEYS | (POSTGRES_SECRET if MODE[render] == "ha" else {})
    mounted_secrets = {s["secretName"]: {i["key"] for i in s["items"]} for s in secret_volumes.values()}
    assert mounted_secrets == expected_secrets
    assert "envFrom" not in main
    config = config_of(objects)
    files = dict(secret_files(config))
    if MODE[render] == "ha":
        # The one setting outside the shared ConfigMap: the database URL's file, on its Secret.
        (env,) = main["env"]
        assert env["name"] == POSTGRES_URL_ENV
        files["storage.url_file"] = env["value"]
        assert secret_volumes["postgres"]["secretName"] == "alert-router-postgres"
        assert "optional" not in secret_volumes["postgres"], "no replica may start on SQLite by mistake"
    else:
        assert "env" not in main
    assert files, "the configuration reads its secrets from files"
    for key, path in files.items():
        owner = [n for n, m in mounts.items() if Path(path).parent == Path(m["mountPath"])]
        assert len(owner) == 1 and owner[0] in secret_volumes, f"{key}: {path} is on no Secret volume"
        items = {i["path"]: i["key"] for i in secret_volumes[owner[0]]["items"]}
        assert Path(path).name in items, f"{key}: {path} is not a key of {secret_volumes[owner[0]]}"
    assert Path(config["storage"]["data_dir"]) == Path(mounts["data"]["mountPath"])

    # Mode: one writer on a claim, or replicas on the shared PostgreSQL log rolling over emptyDirs.
    if MODE[render] == "single":
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        claim = volumes["data"]["persistentVolumeClaim"]["claimName"]
        assert claim == one(objects, "PersistentVolumeClaim")["metadata"]["name"]
    else:
        assert deployment["spec"]["replicas"] >= 2
        assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
        assert volumes["data"] == {"name": "data", "emptyDir": {}}

    # Hardening.
    assert pod["enableServiceLinks"] is False  # see test_service_links_would_stop_the_service
    assert pod["automountServiceAccountToken"] is False
    assert one(objects, "ServiceAccount")["automountServiceAccountToken"] is False
    rbac = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
    assert not [o for o in objects if o["kind"] in rbac], "no Kubernetes API access is needed"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = main["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "emptyDir" in volumes["tmp"] and mounts["tmp"]["mountPath"] == "/tmp"
    assert set(main["resources"]) == {"requests", "limits"}
    assert set(main["resources"]["limits"]) == {"cpu", "memory"}

    # Disruption budget and network policy select these pods and use the named port.
    assert subset(one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels)
    policy = one(objects, "NetworkPolicy")["spec"]
    assert subset(policy["podSelector"]["matchLabels"], pod_labels)
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    sources = []
    for rule in policy["ingress"]:
        assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
        (peer,) = rule["from"]
        sources.append(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
    assert sources == ["alertmanager", "prometheus", "ingress-nginx"]
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 9093, 9090, 443} | ({5432} if MODE[render] == "ha" else set())
    for url in [*config["alertmanager"]["urls"], config["prometheus"]["url"]]:
        assert urlparse(url).port in egress_ports

    # The Ingress exposes Slack's interactions endpoint, and only it.
    for ingress in (o for o in objects if o["kind"] == "Ingress"):
        (http_rule,) = ingress["spec"]["rules"]
        (path,) = http_rule["http"]["paths"]
        assert path["path"] == INTERACTIONS_PATH and path["pathType"] == "Exact"
        assert path["backend"]["service"] == {
            "name": service["metadata"]["name"],
            "port": {"name": service_port["name"]},
        }


def secret_files(config: Any, where: str = "") -> list[tuple[str, str]]:
    """(key path, file) of every `*_file` setting in a configuration document."""
    found = []
    if isinstance(config, dict):
        for key, value in config.items():
            path = f"{where}.{key}" if where else key
            if key.endswith("_file") and isinstance(value, str):
                found.append((path, value))
            else:
                found += secret_files(value, path)
    elif isinstance(config, list):
        for index, value in enumerate(config):
            found += secret_files(value, f"{where}.{index}")
    return found


def test_service_links_would_stop_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why enableServiceLinks is false: the variables Kubernetes injects for a Service named
    alert-router carry the service's own prefix and are refused as unknown options."""
    monkeypatch.setenv("ALERT_ROUTER_SERVICE_HOST", "10.0.0.1")
    with pytest.raises(InputError, match="ALERT_ROUTER_SERVICE_HOST"):
        load_settings(None)


def test_image_is_the_same_everywhere() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == version
    images = {container(render())["image"] for render in RENDERS.values()}
    assert images == {f"alert-router:{version}"}


# --------------------------------------------------------------- helm == kustomize


HELM_ONLY_LABELS = {"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"}


def normalized(objects: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """What must agree between the chart and the overlays: everything but Helm's bookkeeping
    (its labels, the config checksum, the keep policy on the claim), kustomize's ConfigMap name
    hash, the order of volumes and the ConfigMap's comments."""
    out = []
    for original in objects:
        obj = copy.deepcopy(original)
        meta = obj["metadata"]
        meta["name"] = HASH_SUFFIX.sub("", meta["name"]) if obj["kind"] == "ConfigMap" else meta["name"]
        for label in HELM_ONLY_LABELS:
            meta.get("labels", {}).pop(label, None)
        meta.get("annotations", {}).pop("helm.sh/resource-policy", None)
        if not meta.get("annotations", True):
            del meta["annotations"]
        if obj["kind"] == "ConfigMap":
            obj["data"] = {key: yaml.safe_load(text) for key, text in obj["data"].items()}
        if obj["kind"] == "Deployment":
            template = obj["spec"]["template"]
            template["metadata"].pop("annotations", None)
            volumes = template["spec"]["volumes"]
            for volume in volumes:
                if "configMap" in volume:
                    volume["configMap"]["name"] = HASH_SUFFIX.sub("", volume["configMap"]["name"])
            volumes.sort(key=lambda v: v["name"])
        out.append(obj)
    return sorted(out, key=lambda o: (o["kind"], o["metadata"]["name"]))


@pytest.mark.parametrize("mode", ["single", "ha", "single-ingress"])
def test_helm_chart_renders_what_kustomize_renders(mode: str) -> None:
    assert normalized(RENDERS[f"helm-{mode}"]()) == normalized(RENDERS[f"kustomize-{mode}"]())


def test_helm_chart_refuses_an_unknown_mode() -> None:
    result = subprocess.run(
        [helm(), "template", "alert-router", str(CHART), "--set", "mode=cluster"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "mode must be single or ha" in result.stderr


# ------------------------------------------------- the service on the ConfigMap's config


def local_config(config: dict[str, Any], tmp: Path, mounts: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """The ConfigMap's configuration as it runs in the pod, with each mounted path (data,
    Secrets) moved into `tmp`, the Secret files written there, Slack turned on, and the cluster
    endpoints (they only resolve in the cluster) pointed at a closed local port."""
    config = copy.deepcopy(config)
    moved = {mount: tmp / name for name, mount in mounts.items()}

    def local(path: str) -> Path:
        (parent,) = [moved[m] for m in moved if Path(path).parent == Path(m)]
        parent.mkdir(parents=True, exist_ok=True)
        return parent / Path(path).name

    secrets = {}
    for key, path in secret_files(config):
        section, name = key.split(".")
        value = f"test-{Path(path).name}"
        target = local(path)
        target.write_text(value + "\n")  # trailing whitespace, as `kubectl create secret` may leave
        config[section][name] = str(target)
        secrets[key] = value
    config["storage"]["data_dir"] = str(moved[config["storage"]["data_dir"]])
    closed = "http://127.0.0.1:9"
    config["alertmanager"]["urls"] = [closed]
    config["prometheus"]["url"] = closed
    config["slack"].update(default_channel="C0123PAGES", api_url=f"{closed}/api/")
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, secrets


def pod_mounts(objects: tuple[dict[str, Any], ...]) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in container(objects)["volumeMounts"]}


@pytest.mark.parametrize("render", ["kustomize-ha", "helm-ha"])
def test_ha_replicas_read_the_database_url_from_its_secret(
    render: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = RENDERS[render]()
    path, _ = local_config(config_of(objects), tmp_path, pod_mounts(objects))
    (env,) = container(objects)["env"]
    url = "postgresql://alert_router:s3cret@db.example:5432/alert_router"
    url_file = tmp_path / "postgres" / "url"
    url_file.parent.mkdir()
    url_file.write_text(url + "\n")  # as `kubectl create secret --from-file` may leave it
    monkeypatch.setenv(env["name"], str(url_file))
    settings = load_settings(path)
    assert settings.storage.replicated
    assert settings.storage.resolved_url() == url
    assert "s3cret" not in json.dumps(settings.redacted())


@pytest.mark.parametrize("render", ["kustomize-single", "kustomize-ha", "helm-single", "helm-ha"])
def test_configmap_loads_with_the_real_loader(render: str, tmp_path: Path) -> None:
    objects = RENDERS[render]()
    path, secrets = local_config(config_of(objects), tmp_path, pod_mounts(objects))
    settings = load_settings(path)
    assert settings.auth.resolved_bearer().get_secret_value() == secrets["auth.bearer_token_file"]
    assert settings.slack.enabled
    assert settings.slack.resolved_bot_token().get_secret_value() == secrets["slack.bot_token_file"]
    signing = settings.slack.resolved_signing_secret().get_secret_value()
    assert signing == secrets["slack.signing_secret_file"]


def get(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def exposed_metrics(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_the_service_runs_on_the_configmap(tmp_path: Path) -> None:
    """`alert-router serve` on the single overlay's configuration: the probe paths answer, the
    bearer token from the Secret file is enforced, Slack's interactions endpoint (the Ingress
    path) exists, and every metric the alerting rules use is exposed."""
    objects = kustomize("overlays/single")
    path, secrets = local_config(config_of(objects), tmp_path, pod_mounts(objects))
    server = ServeProcess(path, tmp_path / "serve.log")
    try:
        deadline = time.monotonic() + 20
        while (status := get(server.url + "/readyz")[0]) != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 200, "never ready"
        assert get(server.url + "/healthz")[0] == 200
        # The image's HEALTHCHECK command, pointed at this server.
        healthcheck = json.loads(dict(dockerfile())["HEALTHCHECK"].split(" CMD ", 1)[1])
        assert healthcheck[0] == "python"
        code = healthcheck[-1].replace("http://127.0.0.1:9095", server.url)
        assert subprocess.run([sys.executable, *healthcheck[1:-1], code], timeout=30).returncode == 0

        now = datetime.now(UTC) - timedelta(seconds=5)
        labels = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-1"}
        body = json.dumps(payload([alert("f1", now, labels)], "shop")).encode()
        json_type = {"Content-Type": "application/json"}
        assert get(server.url + WEBHOOK_PATH, body, json_type)[0] == 401
        token = {**json_type, "Authorization": f"Bearer {secrets['auth.bearer_token_file']}"}
        assert get(server.url + WEBHOOK_PATH, body, token)[0] == 200
        # Unsigned: refused by the signature check, i.e. the route exists and Slack is on.
        assert get(server.url + INTERACTIONS_PATH, b"payload=%7B%7D")[0] == 401

        status, metrics = get(server.url + "/metrics")
        assert status == 200
        exposed = exposed_metrics(metrics.decode())
    finally:
        assert server.terminate() == 0
    used = {name for rule in plain_rules() for name in metric_names(rule["expr"])}
    # `up` is Prometheus' own; everything else must be the service's.
    assert used - exposed == {"up"}, f"metrics the service does not expose: {used - exposed - {'up'}}"
    assert len(used) > 10


# ------------------------------------------------------------------------- Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    steps = [line.split(None, 1) for line in joined.splitlines() if line.strip()]
    return [(instruction.upper(), arguments) for instruction, arguments in steps]


def dockerignore_allows(source: str) -> bool:
    """.dockerignore is an allow-list: `*`, then `!name` for each thing the build needs."""
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    assert patterns[0] == "*"
    return f"!{source.rstrip('/')}" in [p.rstrip("/") for p in patterns]


def test_dockerfile(tmp_path: Path) -> None:
    steps = dockerfile()
    objects = kustomize("overlays/single")
    main = container(objects)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    mounts = pod_mounts(objects)
    args = dict(re.match(r"(\w+)=(\S+)", a).groups() for i, a in steps if i == "ARG")
    stages = [a.replace("${PYTHON_IMAGE}", args["PYTHON_IMAGE"]) for i, a in steps if i == "FROM"]
    assert stages == ["python:3.11-slim AS build", "python:3.11-slim"]
    last_from = max(i for i, (instruction, _) in enumerate(steps) if instruction == "FROM")
    final = steps[last_from + 1 :]
    last = dict(final)
    assert len(last) == len(final), "one of each instruction in the final stage"

    # Non-root, numeric (runAsNonRoot can only verify a numeric user), the pod's user.
    user, _, group = last["USER"].partition(":")
    assert user.isdigit() and int(user) > 0 and group.isdigit()
    assert int(user) == pod["securityContext"]["runAsUser"]
    assert int(last["EXPOSE"]) == main["ports"][0]["containerPort"]
    assert "http://127.0.0.1:9095/healthz" in last["HEALTHCHECK"] and "urllib" in last["HEALTHCHECK"]
    assert json.loads(last["ENTRYPOINT"]) == ["alert-router"]
    assert "alert-router" in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert json.loads(last["CMD"]) == main["args"]
    # Read-only root filesystem: data on the volume, scratch in /tmp (an emptyDir in the pod).
    assert last["WORKDIR"] == mounts["data"] and json.loads(last["VOLUME"]) == [mounts["data"]]
    env = dict(item.split("=", 1) for item in shlex.split(last["ENV"]))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["TMPDIR"] == env["HOME"] == mounts["tmp"]
    # The default configuration baked into the image puts the event log on the volume.
    default = re.search(r"printf '([^']*)' > /etc/alert-router/config.yaml", last["RUN"])
    (tmp_path / "config.yaml").write_text(default.group(1).replace("\\n", "\n"))
    assert str(load_settings(tmp_path / "config.yaml").storage.data_dir) == mounts["data"]

    # Every COPY source exists and is in the build context; nothing but the package is copied.
    sources = []
    for instruction, arguments in steps:
        if instruction == "COPY":
            assert "--from" not in arguments
            sources += arguments.split()[:-1]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert dockerignore_allows(source), f"{source} is excluded by .dockerignore"
    assert sorted(s.rstrip("/") for s in sources) == [
        "README.md",
        "ground",
        "integrations",
        "pyproject.toml",
        "router",
        "rules",
        "topology",
    ]


def test_wheel_from_the_image_sources_holds_every_package_file(tmp_path: Path) -> None:
    """The image installs the wheel built from what the Dockerfile copies: it must hold every
    module and data file of the packages (the bundled rule pack among them)."""
    context = tmp_path / "context"
    expected = set()
    for source in ["pyproject.toml", "README.md", "ground", "router", "topology", "rules", "integrations"]:
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, context / source, ignore=shutil.ignore_patterns("__pycache__"))
            expected |= {str(p.relative_to(context)) for p in (context / source).rglob("*") if p.is_file()}
        else:
            (context / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, context / source)
    out = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(context), "-w", str(out))
    (wheel,) = out.glob("alert_router-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        members = {name for name in archive.namelist() if ".dist-info/" not in name}
        entry_points = next(n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt"))
        assert "alert-router = router.cli.main:main" in archive.read(entry_points).decode()
    assert "rules/packs/kubernetes.yaml" in members
    assert members == expected, f"missing from the wheel: {sorted(expected - members)}"


# ----------------------------------------------------------------------- Alertmanager


def test_alertmanager_configuration() -> None:
    out = run(amtool(), "check-config", str(ALERTMANAGER_CONFIG))
    assert "SUCCESS" in out
    am = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    objects = kustomize("overlays/single")
    service = one(objects, "Service")
    config = config_of(objects)
    receivers = {r["name"]: r for r in am["receivers"]}

    # The receiver alert-router reconciles with (its `alertmanager.receiver` regex).
    assert re.fullmatch(config["alertmanager"]["receiver"], am["route"]["receiver"])
    (hook,) = receivers[am["route"]["receiver"]]["webhook_configs"]
    url = urlparse(hook["url"])
    assert url.path == WEBHOOK_PATH and url.port == service["spec"]["ports"][0]["port"]
    assert url.hostname == f"{service['metadata']['name']}.monitoring.svc"
    assert hook["send_resolved"] is True and hook["max_alerts"] == 0
    # The token file is the Secret alert-router reads it from, as the operator mounts it.
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    auth = next(v["secret"] for v in volumes if v["name"] == "auth")
    (key,) = auth["items"]
    expected = f"/etc/alertmanager/secrets/{auth['secretName']}/{key['key']}"
    assert hook["http_config"]["authorization"] == {"type": "Bearer", "credentials_file": expected}

    routes = am["route"]["routes"]
    # alert-router's own alerts also go elsewhere, and on to alert-router.
    fallback = next(r for r in routes if r["receiver"] == "alert-router-fallback")
    assert fallback["continue"] is True
    pattern = re.fullmatch(r'alertname =~ "(.+)"', fallback["matchers"][0]).group(1)
    assert all(re.fullmatch(pattern, rule["alert"]) for rule in plain_rules())
    # The heartbeat: re-sent often enough that two lost sends do not page.
    watchdog = next(r for r in routes if r["matchers"] == ['alertname = "Watchdog"'])
    assert watchdog["receiver"] == am["route"]["receiver"]
    repeat = parse_duration(watchdog["repeat_interval"]) + parse_duration(watchdog["group_interval"])
    assert 2 * repeat < EngineSettings().heartbeat_timeout
