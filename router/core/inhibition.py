"""Alertmanager's inhibit rules, read the way Alertmanager applies them.

While an alert matching a rule's source fires, Alertmanager mutes every alert matching its target
with the same values of the rule's `equal` labels, and drops a muted alert from every notification,
resolved or not (its MuteStage). kube-prometheus ships three rules: a critical alert mutes the
warning and info alerts of its name and namespace, a warning the info ones, `InfoInhibitor` every
info alert of its namespace. So an error-rate warning on one Service, a symptom of some cause,
muted when the same alert turns critical on another Service of its namespace, is never said to
have healed: it stayed firing here, outlived its cause and paged on its own, twenty minutes after
it healed. Group snapshots show such an alert gone only when its group flushes again and the
sender has shown it sends snapshots (`router.core.groups`); a critical sub-route or a group that
never flushes again shows nothing. The engine reads the same rules: an alert a new alert mutes is
*muted*. Whether it heals, nobody will say: it stays what it was (a root keeps its incident and
pages: a node's full disk muted by another node's critical one had not healed), but it is not
judged afresh on its own without news of it since (outliving its cause, or a hypothesis it joined
withdrawn): it ends there. Delivered again, it is heard of, and no longer muted.

Not every Alertmanager applies these rules. One that does not shows it: it delivers an alert
while an alert that would mute it fires (in the same delivery, or after the inhibitor had been
delivered). From then on that sender's deliveries are not read with that rule.

An alert never mutes itself, nor its own entity's alert of the same name (its warning beside its
critical: the critical says the same and more).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from router.core.alerts import AlertState
from rules.matchers import Matcher, parse_matcher


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    @classmethod
    def parse(cls, source: Sequence[str], target: Sequence[str], equal: Sequence[str]) -> InhibitRule:
        return cls(tuple(map(parse_matcher, source)), tuple(map(parse_matcher, target)), tuple(equal))

    def key(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(labels.get(name, "") for name in self.equal)


def _matches(matchers: tuple[Matcher, ...], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


class Inhibitions:
    """Which firing alerts each rule's sources and targets are, by their `equal` labels."""

    def __init__(self, rules: Sequence[InhibitRule], alerts: Mapping[str, AlertState]) -> None:
        self.rules = tuple(rules)
        self._alerts = alerts
        # per rule: equal-label values -> fingerprints of alerts that matched, firing when added
        self._sources: list[dict[tuple[str, ...], dict[str, None]]] = [{} for _ in self.rules]
        self._targets: list[dict[tuple[str, ...], dict[str, None]]] = [{} for _ in self.rules]
        # per fingerprint: (rule, equal-label values) it is a source / a target of, matched once
        # when it fires: every delivery repeats every alert, and matching is not free.
        self._as_source: dict[str, tuple[tuple[int, tuple[str, ...]], ...]] = {}
        self._as_target: dict[str, tuple[tuple[int, tuple[str, ...]], ...]] = {}
        self._ignored: set[tuple[str, int]] = set()  # (sender, rule) the sender does not apply
        # Which rules an alert is a source and a target of depends only on the labels the
        # matchers read (severity, alertname): decided once per combination.
        self._read = tuple(sorted({m.name for r in self.rules for m in (*r.source, *r.target)}))
        self._roles: dict[tuple[str, ...], tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def fired(self, alert: AlertState) -> None:
        """Index a new firing instance under the rules whose source or target it matches."""
        fp, labels = alert.fingerprint, alert.labels
        read = tuple(labels.get(name, "") for name in self._read)
        roles = self._roles.get(read)
        if roles is None:
            sources = tuple(i for i, r in enumerate(self.rules) if _matches(r.source, labels))
            targets = tuple(i for i, r in enumerate(self.rules) if _matches(r.target, labels))
            roles = self._roles[read] = (sources, targets)
        as_source = tuple((i, self.rules[i].key(labels)) for i in roles[0])
        as_target = tuple((i, self.rules[i].key(labels)) for i in roles[1])
        for index, key in as_source:
            self._sources[index].setdefault(key, {})[fp] = None
        for index, key in as_target:
            self._targets[index].setdefault(key, {})[fp] = None
        self._as_source[fp] = as_source
        self._as_target[fp] = as_target

    def muted_by(self, source: AlertState, sender: str) -> Iterator[str]:
        """The fingerprint of each firing alert that the firing `source` mutes."""
        for index, key in self._as_source.get(source.fingerprint, ()):
            if (sender, index) in self._ignored:
                continue
            for fp in self._firing(self._targets[index], key):
                if self._mutes(source, self._alerts[fp]):
                    yield fp

    def inhibitor(
        self, target: AlertState, sender: str, delivered_before: Callable[[AlertState], bool]
    ) -> int | None:
        """The rule under which a firing alert would mute `target`, if one fires that
        `delivered_before(alert)` says Alertmanager knew when it sent `target`."""
        for index, key in self._as_target.get(target.fingerprint, ()):
            if key not in self._sources[index] or (sender, index) in self._ignored:
                continue
            for fp in self._firing(self._sources[index], key):
                source = self._alerts[fp]
                if self._mutes(source, target) and delivered_before(source):
                    return index
        return None

    def ignore(self, sender: str, rule: int) -> None:
        self._ignored.add((sender, rule))

    @staticmethod
    def _mutes(source: AlertState, target: AlertState) -> bool:
        return source.fingerprint != target.fingerprint and not (
            source.entity == target.entity and source.alertname == target.alertname
        )

    def _firing(self, index: dict[tuple[str, ...], dict[str, None]], key: tuple[str, ...]) -> list[str]:
        """The fingerprints under `key` still firing (those that ended are dropped as met)."""
        found = index.get(key)
        if not found:
            return []
        alerts = self._alerts
        ended = [fp for fp in found if (alert := alerts.get(fp)) is None or not alert.firing]
        for fp in ended:
            del found[fp]
        if not found:
            del index[key]
        return list(found)
