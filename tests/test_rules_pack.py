"""The bundled pack against the whole catalogue (tests/fixtures/reference/kubernetes-alerts.json): every
alert name is mapped or deliberately unmapped, and every rule of the catalogue, sent with the
labels it really carries, gets an entity of the kind the catalogue says it concerns."""

from __future__ import annotations

import json

import pytest

from rules.lint import CATALOGUE_ALERTNAMES
from rules.ruleset import RuleSet
from tests.reference import CATALOGUE
from topology import entities
from topology.graph import Topology

RULES = RuleSet.load()

# The catalogue's `entity` category -> kinds an alert of it may be mapped to.
EXPECTED_KINDS = {
    "container": {"pod"},
    "pod": {"pod"},
    "deployment": {"deployment"},
    "statefulset": {"statefulset"},
    "daemonset": {"daemonset"},
    "job": {"job"},
    "hpa": {"hpa"},
    "pvc": {"pvc"},
    "pv": {"pv"},
    "namespace": {"namespace"},
    "cluster": {"cluster"},
    "node": {"node"},
    "kubelet": {"node-component", "cluster"},
    "apiserver": {"apiserver"},
    "scheduler": {"scheduler", "pod"},
    "controller-manager": {"controller-manager", "pod"},
    "kube-proxy": {"node-component", "daemonset"},
    "coredns": {"dns"},
    "etcd": {"etcd"},
    "cni": {"node-component", "daemonset"},
    "target": {"service", "dns", "etcd", "apiserver", "scheduler", "controller-manager"},
    "prometheus": {"statefulset", "pod"},
    "alertmanager": {"statefulset", "service", "pod"},
    "other": {"pipeline", "apiserver", "deployment", "statefulset", "service", "pdb", "pod"},
}


def _catalogue() -> list[dict]:
    return json.loads(CATALOGUE.read_text(encoding="utf-8"))


def _labels(entry: dict) -> dict[str, str]:
    """The labels one alert of this rule carries, with plausible values (no `cluster` label: a stock
    kube-prometheus has no external labels)."""
    labels = {"alertname": entry["alertname"], "severity": entry["severity"], "prometheus": "monitoring/k8s"}
    node_exporter = entry["mixin"] == "node-exporter-mixin" or entry["alertname"].startswith(
        "NodeNetworkInterface"
    )
    for raw in [*entry["labels_on_alert"], *(entry["other_labels_carried"] or [])]:
        name, _, rest = raw.partition("(")
        name = name.strip()
        if name == "cluster" or name in labels:
            continue
        if rest.startswith("="):
            labels[name] = rest[1:].split(",")[0].split(")")[0].strip()
        elif name == "instance":
            labels[name] = "worker-1" if node_exporter else "10.0.1.21:10250"
        elif name == "node":
            labels[name] = "worker-1"
        elif name == "namespace":
            labels[name] = "monitoring"
        else:
            labels[name] = f"{name}-1"
    labels.update(entry["static_labels"] or {})
    return labels


def _topology() -> Topology:
    topology = Topology()
    node = topology.add("node/default/worker-1")
    topology.index_node_ip("default", "10.0.1.21", node)
    return topology


def test_embedded_catalogue_has_the_159_alert_names():
    assert len(CATALOGUE_ALERTNAMES) == 159


def test_embedded_catalogue_matches_the_reference():
    assert {entry["alertname"] for entry in _catalogue()} == CATALOGUE_ALERTNAMES


def test_every_catalogue_alertname_is_mapped_or_listed_unmapped():
    missing = [
        name
        for name in sorted(CATALOGUE_ALERTNAMES)
        if name not in RULES.unmapped and not any(r.accepts_alertname(name) for r in RULES.candidates(name))
    ]
    assert missing == []
    # and nothing is both
    assert [n for n in RULES.unmapped if any(r.accepts_alertname(n) for r in RULES.candidates(n))] == []


def test_unmapped_alerts_have_reasons():
    assert set(RULES.unmapped) <= CATALOGUE_ALERTNAMES
    assert all(len(reason) > 20 for reason in RULES.unmapped.values())


def test_every_rule_has_a_description():
    assert [r.name for r in RULES.rules if len(r.model.description) < 20] == []


@pytest.mark.parametrize("entry", _catalogue(), ids=lambda e: f"{e['alertname']}-{e['severity']}")
def test_catalogue_alert_with_its_real_labels_gets_a_rule_and_an_entity_of_its_kind(entry):
    labels = _labels(entry)
    c = RULES.classify(labels, _topology())
    if entry["alertname"] in RULES.unmapped:
        assert c.rule is None
        assert c.urgency == "quiet"
        return
    assert c.rule is not None, labels
    assert c.entity is not None, (c.how, labels)
    assert c.severity == entry["severity"]
    assert entities.kind_of(c.entity) in EXPECTED_KINDS[entry["entity"]], (c.entity, c.how)
    # Exporters' own pods never stand for what their alerts are about.
    if entry["mixin"] == "node-exporter-mixin":
        assert c.entity == "node/default/worker-1"
    # info/none alerts never page by themselves; critical ones always page.
    if entry["severity"] in ("info", "none"):
        assert c.urgency == "quiet"
    if entry["severity"] == "critical":
        assert c.urgency == "page"


def test_labels_absent_alerts_carry_as_the_reference_says():
    by_name = {e["alertname"]: e for e in _catalogue()}
    assert by_name["CoreDNSDown"]["labels_on_alert"] == []
    assert by_name["KubeAPIDown"]["labels_on_alert"] == ["job"]
    assert RULES.classify({"alertname": "CoreDNSDown", "severity": "critical"}, Topology()).entity == (
        "dns/default/cluster-dns"
    )
