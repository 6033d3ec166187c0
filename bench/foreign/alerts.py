"""Alert conditions: which alert a fault raises, when its condition holds, and the labels and annotations the
real rule and its scrape target would put on it."""

import random
import re
from dataclasses import dataclass
from typing import Any

from catalogue import RULES
from world import Service, World, pod_suffix

# The expression of the application alerts (and of any alert the catalogue lacks).
APP_ALERT_EXPR = 'sum(rate(http_requests_total{code=~"5.."}[5m])) by (service) > 0.05'
APP_ERROR_ALERTS = [
    "HighErrorRate",
    "HTTP5xxRatioHigh",
    "ErrorBudgetBurnFast",
    "GRPCServerErrorsHigh",
    "UpstreamErrorsHigh",
]
APP_LATENCY_ALERTS = ["HighRequestLatency", "LatencyP99High", "SlowResponses"]


@dataclass
class AlertSpec:
    """An alert's condition: it holds from `start` to `end` (ms; None: past the recording); the alert fires
    once it has held for `for_seconds`."""

    labels: dict[str, str]
    annotations: dict[str, str]
    start: int
    end: int | None
    for_seconds: int
    owner: str  # the fault's id, or "noise"
    role: str  # "root", "symptom" or "noise"
    entity: str | None  # the truth's entity the alert is about
    expr: str


def render(template: str, labels: dict[str, str]) -> str:
    """A rule's description with its label references filled in and its value shown as 97.3."""
    text = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    text = re.sub(r"\{\{[^}]*\$value[^}]*\}\}", "97.3", text)
    return re.sub(r"\{\{[^}]*\}\}", "", text)


class AlertMaker:
    """Builds alert conditions labelled as Prometheus, the rule and the scrape target label them."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world = world
        self.rng = rng

    def spec(
        self,
        owner: str,
        role: str,
        alertname: str,
        severity: str,
        labels: dict[str, Any],
        start: int,
        end: int | None,
        for_seconds: int | None = None,
        rule_key: str | None = None,
        entity: str | None = None,
        annotations: dict[str, str] | None = None,
    ) -> AlertSpec:
        """An alert of the catalogue's rule `rule_key` (default `alertname/severity`); labels set to None are
        left off, and `for_seconds`/`annotations` default to the rule's."""
        rule = RULES.get(rule_key or f"{alertname}/{severity}")
        alert_labels = {"alertname": alertname}
        if rule:
            alert_labels.update(rule.static_labels)
        if severity:
            alert_labels["severity"] = severity
        alert_labels.update({key: value for key, value in labels.items() if value is not None})
        alert_labels["prometheus"] = "monitoring/k8s"
        if self.world.cluster:
            alert_labels["cluster"] = self.world.cluster
        if for_seconds is None:
            for_seconds = rule.for_seconds if rule else 60
        if annotations is None:
            annotations = {}
            if rule:
                if rule.description:
                    annotations["description"] = render(rule.description, alert_labels)
                if rule.summary:
                    annotations["summary"] = rule.summary
                if rule.runbook_url:
                    annotations["runbook_url"] = rule.runbook_url
        expr = rule.expr if rule else APP_ALERT_EXPR
        return AlertSpec(alert_labels, annotations, start, end, for_seconds, owner, role, entity, expr)

    def ksm_labels(self, extra: dict[str, str], own_container: bool = False) -> dict[str, str]:
        """Labels of an alert on a kube-state-metrics series: KSM's target labels, and the proxy's container
        unless the series has a container label of its own."""
        labels = dict(extra)
        labels["job"] = "kube-state-metrics"
        labels["instance"] = self.world.ksm_instance
        if not own_container:
            labels["container"] = "kube-rbac-proxy-main"
        return labels

    def kubelet_labels(self, node: str, extra: dict[str, str]) -> dict[str, str]:
        """Labels of an alert on a kubelet series: `node`, and `instance` at the kubelet's port."""
        labels = dict(extra)
        labels.update(
            {
                "node": node,
                "instance": f"{self.world.nodes[node].ip}:10250",
                "job": "kubelet",
                "metrics_path": "/metrics",
                "service": "kubelet",
                "endpoint": "https-metrics",
            }
        )
        labels.setdefault("namespace", "kube-system")
        return labels

    def node_exporter_labels(self, node: str, extra: dict[str, str]) -> dict[str, str]:
        """Labels of an alert on a node-exporter series: the exporter's own pod and namespace, and `instance`
        set to the node name."""
        exporters = [pod for pod in self.world.pods_on(node) if pod.owner_name == "node-exporter"]
        labels = {
            "instance": node,
            "job": "node-exporter",
            "namespace": "monitoring",
            "pod": exporters[0].name if exporters else "node-exporter-" + pod_suffix(self.rng),
            "service": "node-exporter",
            "endpoint": "https",
            "container": "kube-rbac-proxy",
        }
        labels.update(extra)
        return labels

    def app_alert(
        self,
        owner: str,
        service: Service,
        start: int,
        end: int | None,
        latency: bool = False,
        for_seconds: int | None = None,
    ) -> AlertSpec:
        """An application's own error-rate or latency alert: `namespace` and the team's service label, no
        pod."""
        rng = self.rng
        style = self.world.app_label_style.get(service.namespace, "service")
        alertname = rng.choice(APP_LATENCY_ALERTS if latency else APP_ERROR_ALERTS)
        severity = rng.choice(["critical", "warning"] if not latency else ["warning", "warning", "critical"])
        labels = {"namespace": service.namespace, style: service.name}
        if rng.random() < 0.4:
            labels["team"] = service.namespace + "-team"
        if rng.random() < 0.2:
            labels["slo"] = "availability" if not latency else "latency"
        what = "Latency" if latency else "Error rate"
        measure = "p99 latency" if latency else "5xx ratio"
        annotations = {
            "summary": f"{what} of {service.namespace}/{service.name} is above its SLO",
            "description": f"{measure} for service {service.name} in {service.namespace} has been above "
            "threshold for a few minutes.",
        }
        return self.spec(
            owner,
            "symptom",
            alertname,
            severity,
            labels,
            start,
            end,
            for_seconds=for_seconds or rng.choice([60, 120, 120, 180, 300]),
            rule_key="app",
            entity=self.world.entity("service", service.namespace, service.name),
            annotations=annotations,
        )
