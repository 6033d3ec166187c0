"""Engine tuning: every knob of the correlation engine, with the defaults an SRE would pick."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ground.times import parse_duration
from rules.matchers import parse_matcher


def _duration(value: object) -> object:
    """`30s`, `5m`, `1h` like every other duration in the configuration; numbers are seconds."""
    return parse_duration(value) if isinstance(value, str | int | float) else value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class InferenceSettings(BaseModel):
    """When several alerting entities share a dependency with no alert of its own."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Kinds a hidden root may be inferred on, most specific first (`workload`: a Deployment,
    # StatefulSet or DaemonSet whose pods fail with nothing beneath them to blame).
    kinds: list[str] = Field(default_factory=lambda: ["node", "workload", "service", "zone", "dns"])
    # Distinct workloads (owners) whose alerts must point at one node before it is blamed.
    min_workloads_node: int = 2
    # Applications spread over several nodes (Services with endpoints on many) that all share
    # one node beyond chance, before that node is blamed though none points at it alone.
    min_workloads_shared_node: int = 3
    # Distinct failing callers of a Service (with no healthy one) before the Service is blamed.
    min_callers_service: int = 2
    # Distinct alerting nodes in one zone before the zone is blamed.
    min_nodes_zone: int = 2
    # Cluster DNS: distinct workloads, spread over at least this many namespaces and nodes.
    min_workloads_dns: int = 3
    min_namespaces_dns: int = 2
    min_nodes_dns: int = 2
    # A narrower candidate loses to a broader one that covers more than twice its evidence.
    narrow_share: float = 0.5
    # Inference runs at once on new evidence, then at most once per interval during a burst
    # (on the engine's clock, so replay decides the same).
    interval: Duration = timedelta(seconds=10)
    # Grace before an inferred root pages (it has no rule of its own).
    grace: Duration = Field(timedelta(minutes=3), validation_alias=AliasChoices("grace", "escalate_after"))
    # An inferred node whose zone had alerts on other nodes (or their pods and agents) waits
    # this long after the latest: the zone may be the root, and Alertmanager delivers its
    # nodes' alerts up to a group interval (5m) apart.
    zone_settle: Duration = timedelta(minutes=5)
    # While the kubelet's or node-exporter's TargetDown (`for: 10m`) counts more nodes down than
    # have shown their own alerts, a node down waits for them at most this long after that
    # report: their NotReady fires with `for: 15m` after the node-monitor grace (~1m), five
    # minutes and more later, and joins its group at the next flush (a group interval, 5m).
    unseen_nodes_wait: Duration = timedelta(minutes=12)


class WitnessSettings(BaseModel):
    """Prometheus as a second witness: the engine asks, the service answers with an input."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # Ask whether the root still fires this long before its grace ends.
    lead: Duration = timedelta(seconds=30)
    # When Prometheus says the root no longer fires at grace end, wait this much longer (once)
    # for Alertmanager's resolve before paging anyway.
    defer: Duration = timedelta(minutes=2)


class InhibitRuleSettings(BaseModel):
    """One of Alertmanager's inhibit rules, in its configuration's shape (router/core/inhibition.py)."""

    model_config = ConfigDict(extra="forbid")

    source_matchers: list[str]
    target_matchers: list[str]
    equal: list[str] = Field(default_factory=list)

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _parses(cls, matchers: list[str]) -> list[str]:
        for text in matchers:
            parse_matcher(text)  # a ValueError names the matcher and the position
        return matchers


# kube-prometheus' Alertmanager configuration (kube-prometheus-stack ships the same three).
KUBE_PROMETHEUS_INHIBIT_RULES = [
    InhibitRuleSettings(
        source_matchers=['severity="critical"'],
        target_matchers=['severity=~"warning|info"'],
        equal=["namespace", "alertname"],
    ),
    InhibitRuleSettings(
        source_matchers=['severity="warning"'],
        target_matchers=['severity="info"'],
        equal=["namespace", "alertname"],
    ),
    InhibitRuleSettings(
        source_matchers=['alertname="InfoInhibitor"'],
        target_matchers=['severity="info"'],
        equal=["namespace"],
    ),
]


class EngineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    witness: WitnessSettings = Field(default_factory=WitnessSettings)
    # A root that resolves within its grace is "recovered"; if it fires again within this
    # window the same incident reopens (and counts a flap); otherwise a notice closes it.
    reopen_window: Duration = timedelta(minutes=10)
    # A root entity that fires this many times within flap_window pages as flapping.
    flap_threshold: int = 3
    flap_window: Duration = timedelta(hours=1)
    # Watchdog-style heartbeat: missing for longer than this pages "alerting pipeline down".
    # Route the Watchdog to the router with a repeat_interval well below it.
    heartbeat_timeout: Duration = timedelta(minutes=15)
    # In replay, the clock runs on after the last delivery until nothing is pending, at most this.
    drain_limit: Duration = timedelta(hours=1)
    # A symptom whose rule lets it outlive its root longer than this (burn rates over windows
    # of hours) is lagging: it stays attached for its time but does not hold the resolve up.
    lagging_symptom: Duration = timedelta(minutes=30)
    # A recorded change (rollout, ConfigMap edit) this long before an incident's first alert
    # fired, on its root or what the root depends on, is named in the page as its likely cause.
    change_window: Duration = timedelta(hours=1)
    # An alert that had been firing this long before the first delivery the router received
    # is a standing condition (a target down for days, a burn rate from a past outage): its
    # incident is told as a notice, never paged. Alerts that start while it listens page as usual.
    standing_after: Duration = timedelta(hours=1)
    # A held alert (an error rate) whose entity depends on something with a `foreshadows` alert
    # firing (a node whose disk is predicted to fill) waits this much longer before it may page
    # as a root: the failure foreshadowed (NodeFilesystemAlmostOutOfSpace, `for: 30m`) may still
    # come and explain it.
    foreshadow_wait: Duration = timedelta(minutes=15)
    # A Service that is only slow (rule field `slowness`), with nothing failing beside it, waits
    # this much longer past its hold: a filling disk slows the IO of what runs on the node half
    # an hour before NodeFilesystemAlmostOutOfSpace (`for: 30m`) names it, and one slow Service
    # does not say which of its nodes that is. Errors, or callers failing with it, page on time.
    slow_alone_wait: Duration = timedelta(minutes=10)
    # An alert absent from a later snapshot of its Alertmanager group has left it (muted, or
    # resolved while muted: no resolve will come; router/core/groups.py) once no delivery has
    # shown it for this long: HA replicas flush one group a peer timeout (15 s) per position
    # apart, and groups flush every group_interval (as little as a minute, some faster).
    departed_after: Duration = timedelta(seconds=30)
    # The inhibit rules of the Alertmanager that delivers: an alert one of them mutes says
    # nothing more (no resolve will come): it stays what it was, but is not judged afresh on its
    # own without news of it. A sender seen not to apply a rule is not read with it. [] when
    # Alertmanager inhibits nothing.
    inhibit_rules: list[InhibitRuleSettings] = Field(
        default_factory=lambda: [rule.model_copy() for rule in KUBE_PROMETHEUS_INHIBIT_RULES]
    )
    # Resolved alert instances are remembered this long (to drop stale re-sends).
    forget_resolved_after: Duration = timedelta(hours=6)
