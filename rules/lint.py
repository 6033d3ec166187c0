"""`alert-router rules lint`: everything wrong with a set of rule files, as `file:line: rule: message`.

Checks, beyond what loading refuses (schema, matchers, templates, entity specs and kinds,
duplicate names and keys within a file): rule names used in two files, rules that can
never match because an earlier rule with the same or broader matchers catches their alerts
first, unmapped alerts that a rule maps anyway, and — for the bundled pack, or when a
catalogue is given — that every catalogue alert is either mapped or deliberately unmapped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from rules.matchers import Matcher, make_matcher
from rules.ruleset import BUNDLED_PACK, CompiledRule, Problem, RuleSet, SourceFile, check_file

# The 159 alert names of tests/fixtures/reference/kubernetes-alerts.json: kube-prometheus (commit
# 4d719f1d) and the etcd, CoreDNS, kube-proxy, Weave Net and AWS VPC CNI add-on rules.
_CATALOGUE_TEXT = """
AlertmanagerClusterCrashlooping AlertmanagerClusterDown AlertmanagerClusterFailedPeers
AlertmanagerClusterFailedToSendAlerts AlertmanagerConfigInconsistent AlertmanagerFailedReload
AlertmanagerFailedToSendAlerts AlertmanagerMembersInconsistent AwsVpcCniWarmIPsLow
ConfigReloaderSidecarErrors CoreDNSDown CoreDNSErrorsHigh CoreDNSForwardErrorsHigh
CoreDNSForwardHealthcheckBrokenCount CoreDNSForwardHealthcheckFailureCount
CoreDNSForwardLatencyHigh CoreDNSLatencyHigh CPUThrottlingHigh etcdDatabaseHighFragmentationRatio
etcdDatabaseQuotaLowSpace etcdExcessiveDatabaseGrowth etcdGRPCRequestsSlow etcdHighCommitDurations
etcdHighFsyncDurations etcdHighNumberOfFailedGRPCRequests etcdHighNumberOfFailedProposals
etcdHighNumberOfLeaderChanges etcdInsufficientMembers etcdMemberCommunicationSlow etcdMembersDown
etcdNoLeader GrafanaRequestsFailing InfoInhibitor KubeAggregatedAPIDown KubeAggregatedAPIErrors
KubeAPIDown KubeAPIErrorBudgetBurn KubeAPIInstanceUnreachable KubeAPITerminatedRequests
KubeClientCertificateExpiration KubeClientErrors KubeContainerWaiting KubeControllerManagerDown
KubeControllerManagerInstanceUnreachable KubeCPUOvercommit KubeCPUQuotaOvercommit
KubeDaemonSetMisScheduled KubeDaemonSetNotScheduled KubeDaemonSetRolloutStuck
KubeDeploymentGenerationMismatch KubeDeploymentReplicasMismatch KubeDeploymentRolloutStuck
KubeHpaMaxedOut KubeHpaReplicasMismatch KubeJobFailed KubeJobNotCompleted
KubeletClientCertificateExpiration KubeletClientCertificateRenewalErrors KubeletDown
KubeletInstanceUnreachable KubeletPlegDurationHigh KubeletPodStartUpLatencyHigh
KubeletServerCertificateExpiration KubeletServerCertificateRenewalErrors KubeletTooManyPods
KubeMemoryOvercommit KubeMemoryQuotaOvercommit KubeNodeEviction KubeNodeNotReady KubeNodePressure
KubeNodeReadinessFlapping KubeNodeUnreachable KubePdbNotEnoughHealthyPods
KubePersistentVolumeErrors KubePersistentVolumeFillingUp KubePersistentVolumeInodesFillingUp
KubePodCrashLooping KubePodNotReady KubeProxyDown KubeProxyInstanceUnreachable KubeQuotaAlmostFull
KubeQuotaExceeded KubeQuotaFullyUsed KubeSchedulerDown KubeSchedulerInstanceUnreachable
KubeStatefulSetGenerationMismatch KubeStatefulSetReplicasMismatch KubeStatefulSetUpdateNotRolledOut
KubeStateMetricsListErrors KubeStateMetricsShardingMismatch KubeStateMetricsShardsMissing
KubeStateMetricsWatchErrors KubeVersionMismatch NodeBondingDegraded NodeClockNotSynchronising
NodeClockSkewDetected NodeCPUHighUsage NodeDiskIOSaturation NodeFileDescriptorLimit
NodeFilesystemAlmostOutOfFiles NodeFilesystemAlmostOutOfSpace NodeFilesystemFilesFillingUp
NodeFilesystemSpaceFillingUp NodeHighNumberConntrackEntriesUsed NodeMemoryHighUtilization
NodeMemoryMajorPagesFaults NodeNetworkInterfaceFlapping NodeNetworkReceiveErrs
NodeNetworkTransmitErrs NodeRAIDDegraded NodeRAIDDiskFailure NodeSystemdServiceCrashlooping
NodeSystemdServiceFailed NodeSystemSaturation NodeTextFileCollectorScrapeError PrometheusBadConfig
PrometheusDuplicateTimestamps PrometheusErrorSendingAlertsToAnyAlertmanager
PrometheusErrorSendingAlertsToSomeAlertmanagers PrometheusHighQueryLoad
PrometheusKubernetesListWatchFailures PrometheusLabelLimitHit PrometheusMissingRuleEvaluations
PrometheusNotConnectedToAlertmanagers PrometheusNotificationQueueRunningFull
PrometheusNotIngestingSamples PrometheusOperatorListErrors PrometheusOperatorNodeLookupErrors
PrometheusOperatorNotReady PrometheusOperatorReconcileErrors PrometheusOperatorRejectedResources
PrometheusOperatorStatusUpdateErrors PrometheusOperatorSyncFailed PrometheusOperatorWatchErrors
PrometheusOutOfOrderTimestamps PrometheusRemoteStorageFailures PrometheusRemoteWriteBehind
PrometheusRemoteWriteDesiredShards PrometheusRuleFailures PrometheusScrapeBodySizeLimitHit
PrometheusScrapeSampleLimitHit PrometheusSDRefreshFailure PrometheusTargetLimitHit
PrometheusTargetSyncFailure PrometheusTSDBCompactionsFailing PrometheusTSDBReloadsFailing
TargetDown Watchdog WeaveNetConnectionsConnecting WeaveNetConnectionsFailed
WeaveNetConnectionsPending WeaveNetConnectionsRetying WeaveNetFastDPFlowsLow WeaveNetFastDPFlowsOff
WeaveNetHighConnectionTerminationRate WeaveNetIPAMPendingAllocates WeaveNetIPAMPendingClaims
WeaveNetIPAMSplitBrain WeaveNetIPAMUnreachable
"""
CATALOGUE_ALERTNAMES = frozenset(_CATALOGUE_TEXT.split())


def lint_files(paths: Iterable[str | Path], catalogue: str | Path | None = None) -> list[str]:
    """Problems found in these rule files, linted together in this order; [] when clean.

    Catalogue coverage is checked when the bundled pack is among `paths` (against the names
    above) or when `catalogue` names a kubernetes-alerts.json (then per rule of it, with its
    severity and static labels, so severity-split rules must cover every variant).
    """
    chosen = [Path(p) for p in paths]
    problems: list[Problem] = []
    sources: list[SourceFile] = []
    for path in chosen:
        source, found = check_file(path)
        problems.extend(found)
        if source is not None:
            sources.append(source)
    if sources:
        ruleset = RuleSet(sources)
        problems.extend(_duplicate_names(ruleset))
        problems.extend(_shadowed(ruleset))
        problems.extend(_unmapped_problems(sources, ruleset))
        bundled = any(_same_file(p, BUNDLED_PACK) for p in chosen)
        if catalogue is not None or bundled:
            where = str(next((p for p in chosen if _same_file(p, BUNDLED_PACK)), chosen[-1]))
            problems.extend(_coverage(ruleset, where, catalogue))
    return [str(p) for p in problems]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _rule_label(rule: CompiledRule) -> str:
    return f"rule {rule.name}"


def _duplicate_names(ruleset: RuleSet) -> list[Problem]:
    """Within a file loading refuses them; across files the later one would be ambiguous."""
    first: dict[str, CompiledRule] = {}
    problems = []
    for rule in ruleset.rules:
        earlier = first.get(rule.name)
        if earlier is None:
            first[rule.name] = rule
        elif earlier.source != rule.source:
            problems.append(
                Problem(
                    rule.source,
                    rule.line,
                    _rule_label(rule),
                    f"name: also defined at {earlier.where()}; "
                    "classifications report rules by name, rename one",
                )
            )
    return problems


def _accepted(matcher: Matcher) -> tuple[bool, frozenset[str]] | None:
    """(positive, values) when the matcher is a finite set test: `=`/`=~A|B` accept exactly
    `values`, `!=`/`!~A|B` accept everything else; None for a real regex."""
    if matcher.literals is not None:
        return True, matcher.literals
    if matcher.op == "!=":
        return False, frozenset((matcher.value,))
    if matcher.op == "!~":
        positive = make_matcher(matcher.name, "=~", matcher.value)
        if positive.literals is not None:
            return False, positive.literals
    return None


def _implies(narrow: Matcher, broad: Matcher) -> bool:
    """Every label value `narrow` accepts is accepted by `broad` (sufficient, not complete)."""
    if narrow.name != broad.name:
        return False
    if narrow == broad:
        return True
    a, b = _accepted(narrow), _accepted(broad)
    if a is None or b is None:
        return False
    (a_pos, a_set), (b_pos, b_set) = a, b
    if a_pos and b_pos:
        return a_set <= b_set
    if a_pos and not b_pos:
        return not (a_set & b_set)
    if not a_pos and not b_pos:
        return b_set <= a_set
    return False


def _shadowed(ruleset: RuleSet) -> list[Problem]:
    """A rule is dead when an earlier rule matches every alert it matches (first match wins)."""
    problems = []
    for index, rule in enumerate(ruleset.rules):
        for earlier in ruleset.rules[:index]:
            named = rule.alertnames is not None and earlier.alertnames is not None
            if named and not rule.alertnames & earlier.alertnames:  # type: ignore[operator]
                continue  # cheap exit: no alert name in common
            if all(any(_implies(mine, theirs) for mine in rule.matchers) for theirs in earlier.matchers):
                same = set(rule.matchers) == set(earlier.matchers)
                why = "has identical matchers" if same else "matches everything it matches"
                problems.append(
                    Problem(
                        rule.source,
                        rule.line,
                        _rule_label(rule),
                        f"match: never used: earlier rule {earlier.name} ({earlier.where()}) {why}",
                    )
                )
                break
    return problems


def _unmapped_problems(sources: list[SourceFile], ruleset: RuleSet) -> list[Problem]:
    problems = []
    seen: dict[str, str] = {}
    for source in sources:
        for index, item in enumerate(source.model.unmapped):
            where = f"{source.path}:{source.line_of('unmapped', index)}"
            line = source.line_of("unmapped", index)
            if item.alertname in seen:
                problems.append(
                    Problem(
                        str(source.path),
                        line,
                        None,
                        f"unmapped: {item.alertname} listed twice (also {seen[item.alertname]})",
                    )
                )
                continue
            seen[item.alertname] = where
            mapping = next(
                (r for r in ruleset.candidates(item.alertname) if r.accepts_alertname(item.alertname)), None
            )
            if mapping is not None:
                problems.append(
                    Problem(
                        str(source.path),
                        line,
                        None,
                        f"unmapped: {item.alertname} is listed unmapped but rule {mapping.name} "
                        f"({mapping.where()}) maps it; remove one",
                    )
                )
    return problems


def _coverage(ruleset: RuleSet, where: str, catalogue: str | Path | None) -> list[Problem]:
    if catalogue is None:
        return [
            Problem(
                where, None, None, f"catalogue alert {name} is neither mapped by a rule nor listed unmapped"
            )
            for name in sorted(CATALOGUE_ALERTNAMES)
            if name not in ruleset.unmapped
            and not any(r.accepts_alertname(name) for r in ruleset.candidates(name))
        ]
    try:
        entries = json.loads(Path(catalogue).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [Problem(str(catalogue), None, None, f"cannot read the alert catalogue: {exc}")]
    problems = []
    for entry in entries:
        name = entry.get("alertname", "")
        if name in ruleset.unmapped:
            continue
        labels = {"alertname": name, "severity": entry.get("severity") or ""}
        labels.update(entry.get("static_labels") or {})
        matched = next((r for r in ruleset.candidates(name) if r.matches(labels)), None)
        if matched is None or matched.accepts_alertname(name) is not True:
            problems.append(
                Problem(
                    where,
                    None,
                    None,
                    f"catalogue alert {name} (severity {labels['severity']}) is neither mapped by a rule "
                    "nor listed unmapped",
                )
            )
    return problems
