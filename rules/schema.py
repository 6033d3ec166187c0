"""The rule format: which alerts a rule selects, which entity they concern, and the policy.

A rule file (YAML) looks like:

    defaults:                       # optional, pack-wide
      grace: {critical: 2m, warning: 7m}
      outlive_root: 10m
    rules:
      - name: node-not-ready
        match: ['alertname=~"KubeNodeNotReady|KubeNodeUnreachable"']
        entity: {kind: node, name: "{node}"}
        propagates: true
        grace: 2m
        outlive_root: 10m
        urgency: page
    unmapped:
      - {alertname: KubeCPUOvercommit, reason: "capacity planning, not an outage"}

See docs/rules.md for every field. Validation errors name the file, the rule and the field.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from ground.times import parse_duration

Urgency = Literal["page", "notice", "quiet"]
Severity = Literal["critical", "warning", "info", "none"]
Lookup = Literal["none", "node-by-instance", "workload-of-pod", "pod-by-ip", "service-by-name"]
# Which way a failure travels to this alert: from what its entity depends on (errors, latency:
# a callee's trouble reaches its callers), or from what depends on it (starvation: a broken
# caller leaves its callees without requests).
ExplainedBy = Literal["dependencies", "dependents"]

SEVERITY_ORDER: dict[str, int] = {"none": 0, "info": 1, "warning": 2, "critical": 3}


def severity_rank(severity: str | None) -> int:
    """Unknown severities rank as warning: never hide what we do not understand."""
    if severity is None:
        return SEVERITY_ORDER["warning"]
    return SEVERITY_ORDER.get(severity.lower(), SEVERITY_ORDER["warning"])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError("expected a duration such as 30s, 5m or 1h")


class EntitySpec(_Strict):
    """How to name the entity an alert concerns, from its labels.

    `name` and `namespace` are templates over the alert's labels (`{node}`, `{namespace}`).
    Singleton kinds (dns, apiserver, etcd, scheduler, controller-manager, pipeline, cluster)
    need no name. `component` makes it a node component (`node/<c>/<node>/<component>`).
    `via` resolves the rendered name through the topology.
    """

    kind: str
    name: str | None = None
    namespace: str | None = None
    component: str | None = None
    via: Lookup = "none"


class Rule(_Strict):
    name: str
    match: list[str] = Field(min_length=1)
    # One spec or several alternatives tried in order (first whose labels are present wins).
    entity: EntitySpec | list[EntitySpec] | None = None
    propagates: bool = True
    # Grace before paging: time for the entity to heal by itself. `escalate_after` is the
    # deprecated spelling of the same field (kept so older rule files still load).
    grace: timedelta | None = Field(None, validation_alias=AliasChoices("grace", "escalate_after"))
    # While nothing explains it, wait this long for a cause before it may page as a root:
    # for alert classes known to fire minutes before their cause (application error rates).
    hold: timedelta | None = None
    outlive_root: timedelta | None = None
    urgency: Urgency | None = None
    # Urgency when the topology knows the cluster's nodes but no member of the alert's entity:
    # on managed control planes the scheduler and controller manager are never scraped, so
    # their `absent()` alerts fire for ever and say nothing about an outage.
    unobserved_urgency: Urgency | None = None
    heartbeat: bool = False
    explained_by: ExplainedBy = "dependencies"
    # The alert shows its pod's node at work (the kubelet restarting a container in back-off):
    # never evidence that the node itself failed.
    node_running: bool = False
    # The entity's load comes from what runs on it (a node's CPU or memory saturated): when one
    # workload there shows trouble its callees do not explain, the page names it as the likely
    # cause (the noisy neighbour, or the one victim worth looking at first).
    contention: bool = False
    # The alert's description gives the share of the cluster's nodes whose agent is down
    # (TargetDown of the kubelet or node-exporter job: "30.77% of the ... targets are down"):
    # while it says more nodes are down than have shown it, a node waits for its zone.
    node_share: bool = False
    # The alert is a failed scrape: Prometheus reaches its targets at the pod IPs it lists from
    # the API, with no name lookup, so the failure it shows (the pods down or cut off) is never
    # cluster DNS's: the application it names is no evidence of a DNS outage.
    bypasses_dns: bool = False
    # The alert warns that its entity is heading for a failure (a disk predicted to fill): a
    # held alert on what depends on it waits `foreshadow_wait` longer for that failure to show.
    foreshadows: bool = False
    # The alert is the node reporting on itself (its exporter measuring a full disk, memory or
    # load; its kubelet reporting pressure or evicting): the node is up and reachable whatever
    # else fails there. A zone is lost when its nodes go silent; this is no evidence of that.
    node_answers: bool = False
    # The alert says its entity is slow, not failing (a latency SLO): what a node's resource
    # running out (a filling disk's IO) shows first. Held and alone on its entity, with nothing
    # failing beside it, it waits the engine's `slow_alone_wait` longer for the node to say so.
    slowness: bool = False
    description: str = ""

    _check_durations = field_validator("grace", "hold", "outlive_root", mode="before")(
        lambda cls, v: None if v is None else _duration(v)
    )

    @property
    def entity_specs(self) -> list[EntitySpec]:
        if self.entity is None:
            return []
        return self.entity if isinstance(self.entity, list) else [self.entity]


class UnmappedAlert(_Strict):
    alertname: str
    reason: str = Field(min_length=3)


class PackDefaults(_Strict):
    grace: dict[Severity, timedelta] = Field(
        default_factory=dict, validation_alias=AliasChoices("grace", "escalate_after")
    )
    outlive_root: timedelta | None = None

    @field_validator("grace", mode="before")
    @classmethod
    def _per_severity(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: _duration(v) for k, v in value.items()}
        return value

    _check_outlive = field_validator("outlive_root", mode="before")(
        lambda cls, v: None if v is None else _duration(v)
    )


class RuleFile(_Strict):
    defaults: PackDefaults = Field(default_factory=PackDefaults)
    rules: list[Rule] = Field(default_factory=list)
    unmapped: list[UnmappedAlert] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> RuleFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return self
