"""Alertmanager's side: routing, grouping, inhibition and the notification log decide which whole-group
snapshots reach the webhook, and when; an HA pair sometimes delivers them twice."""

import heapq
import random
from collections.abc import Callable
from typing import Any

from clock import SECOND, iso
from rule_evaluation import AlertInstance

# endsAt of a firing alert
ZERO_TIME = "0001-01-01T00:00:00Z"
Payload = dict[str, Any]


def label_set(labels: dict[str, str]) -> str:
    """A label set as Alertmanager prints it in group keys."""
    return "{" + ", ".join(f'{name}="{labels[name]}"' for name in sorted(labels)) + "}"


def _alert_key(alert: AlertInstance) -> str:
    """One firing of one alert: the notification log tells firings apart by their start."""
    return alert.fingerprint + str(alert.fires_at)


class Alertmanager:
    """One randomly configured Alertmanager (or HA pair) with the kube-prometheus routes and inhibit rules."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        group_by = rng.choice(
            [
                ["namespace"],
                ["namespace"],
                ["alertname"],
                ["alertname", "namespace"],
                ["cluster", "alertname"],
                [],
                ["alertname", "cluster", "service"],
                ["..."],
            ]
        )
        if group_by == ["..."] and rng.random() < 0.5:
            group_by = ["namespace"]
        self.group_by = group_by
        self.group_wait = rng.choice([10, 30, 30, 30, 60]) * SECOND
        self.group_interval = rng.choice([60, 120, 300, 300, 300]) * SECOND
        self.repeat_interval = rng.choice([20 * 60, 60 * 60, 4 * 3600, 12 * 3600]) * SECOND
        self.ha_pair = rng.random() < 0.6
        self.duplicate_probability = rng.uniform(0.1, 0.7) if self.ha_pair else 0.0
        self.receiver = rng.choice(["alert-router", "alert-router", "k8s-correlator", "web\\.hook"])
        self.inhibit_rules = rng.random() < 0.6
        self.info_inhibitor_routed = rng.random() < 0.4
        self.critical_subroute = rng.random() < 0.35
        self.watchdog_group_interval = rng.choice([60, 120, 300]) * SECOND
        self.watchdog_repeat_interval = max(self.watchdog_group_interval, rng.choice([60, 300, 600]) * SECOND)
        self.version = rng.choice(["0.27", "0.31", "0.32", "0.33", "0.34"])
        if rng.random() < 0.5:
            self.external_urls = [
                "http://alertmanager-main-0.alertmanager-operated:9093",
                "http://alertmanager-main-1.alertmanager-operated:9093",
            ]
        else:
            self.external_urls = ["https://alertmanager.example.com", "https://alertmanager.example.com"]

    def describe(self) -> dict[str, Any]:
        """The configuration, for the truth file."""
        return {
            "group_by": self.group_by,
            "group_wait_s": self.group_wait // SECOND,
            "group_interval_s": self.group_interval // SECOND,
            "repeat_interval_s": self.repeat_interval // SECOND,
            "ha_pair": self.ha_pair,
            "duplicate_probability": round(self.duplicate_probability, 2),
            "inhibit_rules": self.inhibit_rules,
            "info_inhibitor_routed": self.info_inhibitor_routed,
            "critical_subroute": self.critical_subroute,
            "receiver": self.receiver,
            "version": self.version,
        }

    def route(self, labels: dict[str, str]) -> tuple[str, dict[str, str], int, int, int] | None:
        """(route key, group labels, group_wait, group_interval, repeat_interval), or None for the null
        receiver."""
        alertname = labels.get("alertname")
        if alertname == "InfoInhibitor" and not self.info_inhibitor_routed:
            return None
        if alertname == "Watchdog":
            return (
                '{}/{alertname="Watchdog"}',
                {"alertname": "Watchdog"},
                0,
                self.watchdog_group_interval,
                self.watchdog_repeat_interval,
            )
        key = "{}"
        group_wait, group_interval = self.group_wait, self.group_interval
        if self.critical_subroute and labels.get("severity") == "critical":
            key = '{}/{severity="critical"}'
            group_wait, group_interval = 10 * SECOND, 60 * SECOND
        if self.group_by == ["..."]:
            group_labels = dict(labels)
        else:
            group_labels = {name: labels[name] for name in self.group_by if name in labels}
        return key, group_labels, group_wait, group_interval, self.repeat_interval

    def inhibitor(self, alerts: list[AlertInstance], t: int) -> Callable[[AlertInstance], bool]:
        """Whether an alert is muted at `t` by the kube-prometheus inhibit rules: a critical alert mutes the
        warning and info alerts of its name and namespace, a warning alert the info ones, InfoInhibitor every
        info alert of its namespace."""
        if not self.inhibit_rules:
            return lambda alert: False
        critical = set()
        warning = set()
        info_inhibited = set()
        for alert in alerts:
            if not (alert.arrives_at <= t and alert.firing_at(t)):
                continue
            namespace = alert.labels.get("namespace", "")
            severity = alert.labels.get("severity")
            alertname = alert.labels["alertname"]
            if severity == "critical":
                critical.add((namespace, alertname))
            if severity == "warning":
                warning.add((namespace, alertname))
            if alertname == "InfoInhibitor":
                info_inhibited.add(namespace)

        def muted(alert: AlertInstance) -> bool:
            namespace = alert.labels.get("namespace", "")
            source = (namespace, alert.labels["alertname"])
            severity = alert.labels.get("severity")
            if severity in ("warning", "info") and source in critical:
                return True
            return severity == "info" and (source in warning or namespace in info_inhibited)

        return muted

    def run(
        self, alerts: list[AlertInstance], recording_start: int, recording_end: int
    ) -> list[tuple[int, Payload]]:
        """The webhook deliveries (receive time, payload) inside the recording, in time order."""
        # (time, flushes after adds at the same time, sequence, event, alert or group key)
        events: list[tuple[int, int, int, str, Any]] = []
        sequence = 0
        for alert in alerts:
            heapq.heappush(events, (alert.arrives_at, 0, sequence, "add", alert))
            sequence += 1
        groups: dict[str, dict[str, Any]] = {}
        # group key -> (firing alert keys, resolved alert keys, time) of its last notification
        notification_log: dict[str, tuple[set[str], set[str], int]] = {}
        deliveries: list[tuple[int, Payload]] = []
        while events:
            t, _, _, event, subject = heapq.heappop(events)
            if t > recording_end:
                break
            if event == "add":
                route = self.route(subject.labels)
                if route is None:
                    continue
                route_key, group_labels, group_wait, group_interval, repeat_interval = route
                group_key = f"{route_key}:{label_set(group_labels)}"
                group = groups.get(group_key)
                if group is None:
                    group = {
                        "key": group_key,
                        "labels": group_labels,
                        "alerts": {},
                        "group_interval": group_interval,
                        "repeat_interval": repeat_interval,
                    }
                    groups[group_key] = group
                    heapq.heappush(events, (t + group_wait, 1, sequence, "flush", group_key))
                    sequence += 1
                group["alerts"][subject.fingerprint] = subject
                continue
            group = groups.get(subject)
            if group is None:
                continue
            muted = self.inhibitor(alerts, t)
            members = list(group["alerts"].values())
            firing = [alert for alert in members if alert.firing_at(t)]
            resolved = [alert for alert in members if not alert.firing_at(t)]
            firing_sent = [alert for alert in firing if not muted(alert)]
            resolved_sent = [alert for alert in resolved if not muted(alert)]
            firing_keys = {_alert_key(alert) for alert in firing_sent}
            resolved_keys = {_alert_key(alert) for alert in resolved_sent}
            previous = notification_log.get(subject)
            if self._needs_notification(
                previous, firing_keys, resolved_keys, t, group["repeat_interval"]
            ) and (firing_sent or resolved_sent):
                notification_log[subject] = (firing_keys, resolved_keys, t)
                if t >= recording_start:
                    self.deliver(deliveries, group, firing_sent, resolved_sent, t, previous)
            for alert in resolved:
                del group["alerts"][alert.fingerprint]
            if group["alerts"]:
                heapq.heappush(events, (t + group["group_interval"], 1, sequence, "flush", subject))
                sequence += 1
            else:
                del groups[subject]
        deliveries.sort(key=lambda delivery: delivery[0])
        return deliveries

    @staticmethod
    def _needs_notification(
        previous: tuple[set[str], set[str], int] | None,
        firing_keys: set[str],
        resolved_keys: set[str],
        t: int,
        repeat_interval: int,
    ) -> bool:
        """Alertmanager's DedupStage: notify on new firing alerts, when all have resolved, on newly resolved
        ones, and when the repeat interval has passed."""
        if previous is None:
            return bool(firing_keys)
        if not firing_keys <= previous[0]:
            return True
        if not firing_keys:
            return bool(previous[0])
        if not resolved_keys <= previous[1]:
            return True
        return previous[2] <= t - repeat_interval

    def deliver(
        self,
        deliveries: list[tuple[int, Payload]],
        group: dict[str, Any],
        firing: list[AlertInstance],
        resolved: list[AlertInstance],
        t: int,
        previous: tuple[set[str], set[str], int] | None,
    ) -> None:
        """Append the group's snapshot as the webhook receives it, and its HA twin's copy if there is one."""
        rng = self.rng

        def order(alert: AlertInstance) -> tuple[str, str, str]:
            """Alertmanager sorts a group's alerts by job, instance, then label set."""
            labels = alert.labels
            return labels.get("job", ""), labels.get("instance", ""), label_set(labels)

        alerts: list[dict[str, Any]] = []
        for alert in sorted(firing + resolved, key=order):
            is_resolved = alert in resolved
            alerts.append(
                {
                    "status": "resolved" if is_resolved else "firing",
                    "labels": alert.labels,
                    "annotations": alert.annotations,
                    "startsAt": iso(alert.fires_at),
                    "endsAt": iso(alert.resolves_at)
                    if is_resolved and alert.resolves_at is not None
                    else ZERO_TIME,
                    "generatorURL": alert.generator_url,
                    "fingerprint": alert.fingerprint,
                }
            )
        common_labels = dict(alerts[0]["labels"])
        for alert_json in alerts[1:]:
            common_labels = {k: v for k, v in common_labels.items() if alert_json["labels"].get(k) == v}
        common_annotations = dict(alerts[0]["annotations"])
        for alert_json in alerts[1:]:
            common_annotations = {
                k: v for k, v in common_annotations.items() if alert_json["annotations"].get(k) == v
            }
        payload: Payload = {
            "receiver": self.receiver,
            "status": "firing" if firing else "resolved",
            "alerts": alerts,
            "groupLabels": group["labels"],
            "commonLabels": common_labels,
            "commonAnnotations": common_annotations,
            "externalURL": self.external_urls[0],
            "version": "4",
            "groupKey": group["key"],
            "truncatedAlerts": 0,
        }
        if self.version >= "0.32":
            payload["notification_reason"] = self._notification_reason(previous, firing, resolved)
        if self.version >= "0.34":
            payload["routeLabels"] = {}
        received_at = t + rng.randrange(5, 400)
        deliveries.append((received_at, payload))
        if self.ha_pair and rng.random() < self.duplicate_probability:
            duplicate = dict(payload, externalURL=self.external_urls[1])
            duplicate["alerts"] = list(alerts)
            if rng.random() < 0.3:
                rng.shuffle(duplicate["alerts"])
            # usually later than the first copy, sometimes earlier
            lag = rng.randrange(500, 20000) if rng.random() < 0.85 else -rng.randrange(100, 3000)
            deliveries.append((received_at + lag, duplicate))

    @staticmethod
    def _notification_reason(
        previous: tuple[set[str], set[str], int] | None,
        firing: list[AlertInstance],
        resolved: list[AlertInstance],
    ) -> str:
        """The webhook's notification_reason (Alertmanager 0.32 and later) for this snapshot."""
        if previous is None:
            return "first notification"
        if not firing:
            return "all alerts resolved"
        if not {_alert_key(alert) for alert in firing} <= previous[0]:
            return "new alerts added"
        return "some alerts resolved" if resolved else "repeat interval elapsed"
