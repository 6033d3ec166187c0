"""Alertmanager simulator: a timeline of alert state changes -> the webhook deliveries it makes.

Scenario tests and benchmarks need streams that look like what a real Alertmanager sends, not
hand-written deltas. This module replays the dispatcher of prometheus/alertmanager (checked
against `dispatch/dispatch.go`, `notify/dedup_stage.go`, `alert/alert.go` at v0.34, same
behaviour since v0.27) on a simulated clock:

- aggregation groups keyed by the route and its `group_by` labels; the first flush is
  `group_wait` after the group is created, then one tick every `group_interval` on that grid;
- each tick runs the dedup stage: send when something new fires, when resolved alerts were not
  sent yet (`send_resolved`), when everything resolved, or when `repeat_interval` elapsed
  since the last send; otherwise stay quiet;
- each payload is a snapshot of the whole group (every firing alert plus those resolved since
  the last flush), sorted like Alertmanager sorts (`job`, `instance`, then the label set);
  resolved alerts are dropped from the group after the flush, and an empty group is destroyed;
- an alert that resolves before any notification of its group had something firing to send is
  dropped silently. As in Alertmanager, it is *not* dropped when its group notifies anyway
  (another alert fires, or the group notified before and the dedup stage sees a resolved alert
  it has not logged): it then arrives once, as resolved, never having been seen firing;
- a re-fire of the same label set is a new alert (new `startsAt`) with the same fingerprint and
  replaces the old one in its group;
- an HA pair or triple delivers the same flushes `i * peer_delay` later per replica (the
  common failure mode where the peers' notification logs do not deduplicate), or, with
  `dedup_replicas`, only when the first replica's delivery takes longer than a peer's wait.

Simplifications: alerts reach Alertmanager exactly at `fires_at` / `resolves_at` (no
Prometheus evaluation or resend jitter); replicas share one timer grid; routing is a root
route plus optional first-match child routes with equality matchers.

Everything is pure and deterministic: no wall clock, no randomness.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote_plus

from ground.errors import InputError
from ground.times import ZERO_TIME, format_time

PROMETHEUS_URL = "http://prometheus-k8s-0:9090"

# prometheus/common model/fnv.go: FNV-1a 64, the hash behind LabelSet.Fingerprint().
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK64 = (1 << 64) - 1
_SEPARATOR = 0xFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """16 hex digits identifying a label set, independent of label order.

    Computed like prometheus/common's `LabelSet.Fingerprint()` (FNV-1a 64 over the sorted
    `name 0xff value 0xff` bytes), which is what Alertmanager puts in `fingerprint`; the tests
    check it against that library's published test vector. Treat it as an imitation all the
    same: nothing here depends on matching a real Alertmanager byte for byte.
    """
    value = _FNV_OFFSET
    for name in sorted(labels):
        for chunk in (name.encode(), labels[name].encode()):
            for byte in chunk:
                value = ((value ^ byte) * _FNV_PRIME) & _MASK64
            value = ((value ^ _SEPARATOR) * _FNV_PRIME) & _MASK64
    return f"{value:016x}"


@dataclass(frozen=True)
class AlertSpec:
    """One alert instance as Prometheus sends it to Alertmanager."""

    labels: dict[str, str]  # must include alertname and severity
    fires_at: datetime  # when Prometheus starts sending it as firing (after its `for`)
    resolves_at: datetime | None = None  # None: still firing at the end of the simulation
    annotations: dict[str, str] = field(default_factory=dict)
    # startsAt as reported. Prometheus reports the moment the alert turned firing, so the
    # default is fires_at; an earlier value is allowed (and makes a new group flush at once,
    # as Alertmanager does for "old" alerts).
    starts_at: datetime | None = None
    generator_url: str | None = None  # default: a Prometheus graph link for ALERTS{alertname=...}

    @property
    def reported_start(self) -> datetime:
        return self.starts_at or self.fires_at


@dataclass(frozen=True)
class Route:
    """A child route under the root: first match wins, unset options inherit from the root."""

    matchers: Mapping[str, str]  # label equality matchers, all must hold
    group_by: tuple[str, ...] | None = None
    group_wait: timedelta | None = None
    group_interval: timedelta | None = None
    repeat_interval: timedelta | None = None


def heartbeat_route(interval: timedelta, alertname: str = "Watchdog") -> Route:
    """The usual dead man's switch route: the Watchdog alone, re-sent every `interval`.

    Alertmanager re-sends an unchanged group only when `repeat_interval` has elapsed at a
    group tick; heartbeat setups give the Watchdog its own route with short intervals so the
    receiver hears it often. The repeat is set below the tick interval on purpose: with equal
    values Alertmanager re-sends only every other tick (its log entry is written a moment after
    the tick, so one interval later the repeat has not quite elapsed), and so does this model.
    """
    return Route(
        matchers={"alertname": alertname},
        group_by=(),
        group_wait=timedelta(0),
        group_interval=interval,
        repeat_interval=interval / 2,
    )


@dataclass
class AlertmanagerConfig:
    group_by: tuple[str, ...] = ("namespace",)  # kube-prometheus default; ("...",) groups by all labels
    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=12)  # kube-prometheus; Alertmanager's own default is 4h
    replicas: int = 1
    peer_delay: timedelta = timedelta(seconds=15)  # --cluster.peer-timeout: replica i waits i * this
    receiver: str = "alert-router"
    external_url: str = "http://alertmanager-main-0:9093"
    send_resolved: bool = True
    dedup_replicas: bool = False  # False: every replica delivers; True: only when the first is late
    delivery_latency: timedelta = timedelta(0)  # how long a delivery takes to arrive
    routes: tuple[Route, ...] = ()
    notification_reason: bool = False  # v0.32+ adds "notification_reason" to the payload


@dataclass(frozen=True)
class _Opts:
    key: str  # the route key, e.g. `{}` or `{}/{alertname="Watchdog"}`
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta


@dataclass
class _Instance:
    """One alert instance inside an aggregation group."""

    fp: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    generator_url: str
    sort_key: tuple
    ends_at: datetime | None = None
    _firing: dict | None = None
    _resolved: dict | None = None

    def resolved_at(self, now: datetime) -> bool:
        return self.ends_at is not None and self.ends_at <= now

    def as_payload(self, now: datetime) -> dict:
        # Cached so that large groups re-sent many times share one dict per state.
        if self.resolved_at(now):
            if self._resolved is None:
                self._resolved = self._render("resolved", format_time(self.ends_at))  # type: ignore[arg-type]
            return self._resolved
        if self._firing is None:
            self._firing = self._render("firing", ZERO_TIME)
        return self._firing

    def _render(self, status: str, ends_at: str) -> dict:
        return {
            "status": status,
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": format_time(self.starts_at),
            "endsAt": ends_at,
            "generatorURL": self.generator_url,
            "fingerprint": self.fp,
        }


@dataclass
class _Group:
    key: str
    labels: dict[str, str]
    opts: _Opts
    next_tick: datetime
    alerts: dict[str, _Instance] = field(default_factory=dict)


@dataclass(frozen=True)
class _LogEntry:
    """The notification log entry of a group: what was last sent, and when."""

    firing: frozenset[str]
    resolved: frozenset[str]
    at: datetime


def _sort_key(labels: Mapping[str, str]) -> tuple:
    """Key equivalent to Alertmanager's AlertSlice.Less: job, then instance, then LabelSet.Before.

    A missing job/instance sorts after a present one; Before orders shorter label sets first and
    equal-sized ones by their sorted (name, value) pairs, which tuple comparison reproduces.
    """
    override = tuple((0, labels[k]) if k in labels else (1, "") for k in ("job", "instance"))
    return (*override, len(labels), tuple(sorted(labels.items())))


def _go_quote(value: str) -> str:
    # strconv.Quote for the printable values labels carry; JSON string escaping is the same there.
    return json.dumps(value, ensure_ascii=False)


def _label_set_string(labels: Mapping[str, str]) -> str:
    """prometheus/common LabelSet.String(): `{a="x", b="y"}`, names sorted."""
    return "{" + ", ".join(f"{name}={_go_quote(labels[name])}" for name in sorted(labels)) + "}"


def _matchers_string(matchers: Mapping[str, str]) -> str:
    """Alertmanager Matchers.String(): `{a="x",b="y"}` (no space)."""
    escaped = {
        name: value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        for name, value in matchers.items()
    }
    return "{" + ",".join(f'{name}="{escaped[name]}"' for name in sorted(escaped)) + "}"


def _quote_meta(text: str) -> str:
    """Go regexp.QuoteMeta, which Alertmanager applies to the receiver name (`web.hook` -> `web\\.hook`)."""
    return "".join("\\" + ch if ch in "\\.+*?()|[]{}^$" else ch for ch in text)


def _default_generator_url(labels: Mapping[str, str]) -> str:
    expr = f'ALERTS{{alertname="{labels.get("alertname", "")}"}}'
    return f"{PROMETHEUS_URL}/graph?g0.expr={quote_plus(expr)}&g0.tab=1"


def _route_opts(config: AlertmanagerConfig) -> tuple[_Opts, list[tuple[Mapping[str, str], _Opts]]]:
    root = _Opts(
        key="{}",
        group_by=tuple(config.group_by),
        group_wait=config.group_wait,
        group_interval=config.group_interval,
        repeat_interval=config.repeat_interval,
    )
    children = []
    for route in config.routes:
        children.append(
            (
                route.matchers,
                _Opts(
                    key=f"{root.key}/{_matchers_string(route.matchers)}",
                    group_by=root.group_by if route.group_by is None else tuple(route.group_by),
                    group_wait=root.group_wait if route.group_wait is None else route.group_wait,
                    group_interval=root.group_interval
                    if route.group_interval is None
                    else route.group_interval,
                    repeat_interval=root.repeat_interval
                    if route.repeat_interval is None
                    else route.repeat_interval,
                ),
            )
        )
    return root, children


def _validate(alerts: Sequence[AlertSpec]) -> list[str]:
    """Check every spec; returns their fingerprints. Errors name the alert index and field."""
    fingerprints = []
    spans: dict[str, list[tuple[datetime, datetime | None, int]]] = {}
    for index, spec in enumerate(alerts):
        where = f"alerts[{index}]"
        if not isinstance(spec.labels, Mapping):
            raise InputError(f"{where}.labels: must be a mapping of label name to value")
        for name in ("alertname", "severity"):
            if not spec.labels.get(name):
                raise InputError(f"{where}.labels: missing {name!r}")
        for name, value in spec.labels.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise InputError(f"{where}.labels.{name}: label names and values must be strings")
        for name in ("fires_at", "resolves_at", "starts_at"):
            value = getattr(spec, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InputError(f"{where}.{name}: must be a timezone-aware datetime")
        if spec.resolves_at is not None and spec.resolves_at <= spec.fires_at:
            raise InputError(f"{where}.resolves_at: must be after fires_at")
        if spec.starts_at is not None and spec.starts_at > spec.fires_at:
            raise InputError(f"{where}.starts_at: must not be after fires_at")
        fp = fingerprint(spec.labels)
        fingerprints.append(fp)
        spans.setdefault(fp, []).append((spec.fires_at, spec.resolves_at, index))
    for same in spans.values():
        same.sort(key=lambda span: span[0])
        for (_, end, first), (start, _, second) in itertools.pairwise(same):
            if end is None or start < end:
                raise InputError(
                    f"alerts[{second}]: fires while alerts[{first}] with the same labels is still firing"
                )
    return fingerprints


def simulate(
    alerts: Sequence[AlertSpec],
    config: AlertmanagerConfig | None = None,
    until: datetime | None = None,
) -> list[dict]:
    """The webhook deliveries Alertmanager makes for this timeline, as recorded-stream lines.

    Each line is `{"received_at": ..., "payload": {...}}`, sorted by `received_at` (ties keep
    flush order). Flushes happen up to `until` inclusive; by default one group_wait plus one
    group_interval past the last state change, enough for every change to be notified.
    HA replicas share payload objects: treat the lines as read-only.
    """
    config = config or AlertmanagerConfig()
    if config.replicas < 1:
        raise InputError("config.replicas: must be at least 1")
    if config.group_interval <= timedelta(0) or any(
        r.group_interval is not None and r.group_interval <= timedelta(0) for r in config.routes
    ):
        raise InputError("config.group_interval: must be positive")
    fingerprints = _validate(alerts)
    if not alerts:
        return []
    root, children = _route_opts(config)

    # State changes in time order; at the same instant a resolve goes before a re-fire.
    changes: list[tuple[datetime, int, int]] = []
    for index, spec in enumerate(alerts):
        changes.append((spec.fires_at, 1, index))
        if spec.resolves_at is not None:
            changes.append((spec.resolves_at, 0, index))
    changes.sort()
    if until is None:
        slack = max(max(o.group_wait, o.group_interval) for o in [root, *(opts for _, opts in children)])
        until = changes[-1][0] + slack

    groups: dict[str, _Group] = {}
    group_of_alert: dict[int, str] = {}
    log: dict[str, _LogEntry] = {}
    ticks: list[tuple[datetime, str]] = []
    out: list[tuple[datetime, int, dict]] = []
    receiver = _quote_meta(config.receiver)

    def route_for(labels: Mapping[str, str]) -> _Opts:
        for matchers, opts in children:
            if all(labels.get(name, "") == value for name, value in matchers.items()):
                return opts
        return root

    def fire(index: int, now: datetime) -> None:
        spec = alerts[index]
        opts = route_for(spec.labels)
        if "..." in opts.group_by:
            group_labels = dict(sorted(spec.labels.items()))
        else:
            group_labels = {n: spec.labels[n] for n in sorted(opts.group_by) if n in spec.labels}
        key = f"{opts.key}:{_label_set_string(group_labels)}"
        group = groups.get(key)
        if group is None:
            group = _Group(key=key, labels=group_labels, opts=opts, next_tick=now + opts.group_wait)
            # dispatch.go: a new group whose first alert is already older than group_wait flushes now.
            if spec.reported_start + opts.group_wait < now:
                group.next_tick = now
            groups[key] = group
            heapq.heappush(ticks, (group.next_tick, key))
        fp = fingerprints[index]
        group.alerts[fp] = _Instance(
            fp=fp,
            labels=dict(sorted(spec.labels.items())),
            annotations=dict(sorted(spec.annotations.items())),
            starts_at=spec.reported_start,
            generator_url=spec.generator_url or _default_generator_url(spec.labels),
            sort_key=_sort_key(spec.labels),
        )
        group_of_alert[index] = key

    def resolve(index: int) -> None:
        group = groups.get(group_of_alert.get(index, ""))
        instance = group.alerts.get(fingerprints[index]) if group else None
        if instance is not None and instance.starts_at == alerts[index].reported_start:
            instance.ends_at = alerts[index].resolves_at

    def flush(group: _Group, now: datetime) -> None:
        instances = sorted(group.alerts.values(), key=lambda a: a.sort_key)
        firing = frozenset(a.fp for a in instances if not a.resolved_at(now))
        resolved = frozenset(a.fp for a in instances if a.resolved_at(now))
        entry = log.get(group.key)
        if entry is not None and now > entry.at + 2 * group.opts.repeat_interval:
            entry = None  # nflog entries expire after twice the repeat interval
        reason = _needs_update(entry, firing, resolved, group.opts.repeat_interval, now, config)
        if reason is not None:
            log[group.key] = _LogEntry(firing, resolved, now)
            sent = [a for a in instances if config.send_resolved or a.fp in firing]
            if sent:  # a resolved-only batch without send_resolved is logged, never posted
                payload = _payload(group, sent, now, reason, receiver, config)
                _deliver(out, payload, now, config)
        # The flush succeeded either way: resolved alerts leave the group, an empty group dies.
        for fp in resolved:
            del group.alerts[fp]
        if not group.alerts:
            del groups[group.key]

    change = 0
    while True:
        next_change = changes[change][0] if change < len(changes) else None
        next_tick = ticks[0][0] if ticks else None
        if next_change is not None and (next_tick is None or next_change <= next_tick):
            if next_change > until:
                break
            _, kind, index = changes[change]
            change += 1
            if kind == 1:
                fire(index, next_change)
            else:
                resolve(index)
            continue
        if next_tick is None or next_tick > until:
            break
        at, key = heapq.heappop(ticks)
        group = groups.get(key)
        if group is None or group.next_tick != at:
            continue  # the stale tick of a destroyed (and maybe re-created) group
        group.next_tick = at + group.opts.group_interval
        heapq.heappush(ticks, (group.next_tick, key))
        flush(group, at)

    out.sort(key=lambda item: (item[0], item[1]))
    return [line for _, _, line in out]


def _needs_update(
    entry: _LogEntry | None,
    firing: frozenset[str],
    resolved: frozenset[str],
    repeat: timedelta,
    now: datetime,
    config: AlertmanagerConfig,
) -> str | None:
    """notify/dedup_stage.go needsUpdate: the notification reason, or None to stay quiet."""
    if entry is None:
        return "first notification" if firing else None
    if not firing <= entry.firing:
        return "first notification" if not entry.firing else "new alerts added"
    if not firing:
        return "all alerts resolved" if entry.firing else None
    if config.send_resolved and not resolved <= entry.resolved:
        return "some alerts resolved"
    if entry.at < now - repeat:
        return "repeat interval elapsed"
    return None


def _payload(
    group: _Group,
    sent: list[_Instance],
    now: datetime,
    reason: str,
    receiver: str,
    config: AlertmanagerConfig,
) -> dict:
    rendered = [a.as_payload(now) for a in sent]
    payload: dict = {
        "receiver": receiver,
        "status": "firing" if any(a["status"] == "firing" for a in rendered) else "resolved",
        "alerts": rendered,
    }
    if config.notification_reason:
        payload["notification_reason"] = reason
    payload.update(
        {
            "groupLabels": group.labels,
            "commonLabels": _common([a.labels for a in sent]),
            "commonAnnotations": _common([a.annotations for a in sent]),
            "externalURL": config.external_url,
            "version": "4",
            "groupKey": group.key,
            "truncatedAlerts": 0,
        }
    )
    return payload


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    """Label pairs shared by every map (template.Data commonLabels/commonAnnotations)."""
    common = dict(maps[0])
    for other in maps[1:]:
        if not common:
            break
        for name in [n for n, v in common.items() if other.get(n) != v]:
            del common[name]
    return common


def _deliver(
    out: list[tuple[datetime, int, dict]], payload: dict, now: datetime, config: AlertmanagerConfig
) -> None:
    for replica in range(config.replicas):
        wait = replica * config.peer_delay
        # With a working notification log a peer stays quiet unless the first delivery is still
        # in flight when its wait ends.
        if replica and config.dedup_replicas and config.delivery_latency <= wait:
            continue
        received = now + wait + config.delivery_latency
        out.append((received, len(out), {"received_at": format_time(received), "payload": payload}))


# Go's encoding/json escapes these even inside strings; real payloads carry `\u0026` in URLs.
_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _dumps(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in _GO_ESCAPES:  # str.replace scans in C: far faster than str.translate
        if char in text:
            text = text.replace(char, escaped)
    return text


def iter_jsonl(lines: Iterable[dict]) -> Iterable[str]:
    """One JSON text per line (with its newline); each distinct payload is serialised once."""
    # Keyed by id(); the payload is kept alongside so that its id cannot be reused meanwhile.
    cache: dict[int, tuple[dict, str]] = {}
    for line in lines:
        payload = line["payload"]
        hit = cache.get(id(payload))
        if hit is None:
            hit = cache[id(payload)] = (payload, _dumps(payload))
            if len(cache) > 64:  # replicas of a flush are adjacent or close; keep the cache small
                cache.pop(next(iter(cache)))
        text = hit[1]
        extra = {k: v for k, v in line.items() if k not in ("received_at", "payload")}
        head = f'{{"received_at":{_dumps(line["received_at"])},'
        tail = "".join(f",{_dumps(k)}:{_dumps(v)}" for k, v in extra.items())
        yield f'{head}"payload":{text}{tail}}}\n'


def to_jsonl(lines: Iterable[dict]) -> str:
    return "".join(iter_jsonl(lines))


def write_jsonl(lines: Iterable[dict], path: str | Path) -> int:
    """Write a recorded stream; returns the number of bytes written."""
    written = 0
    with open(path, "w", encoding="utf-8") as handle:
        for text in iter_jsonl(lines):
            written += handle.write(text)
    return written
