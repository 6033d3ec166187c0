"""Alertmanager API v2 client: what fires now (reconcile at start and periodically) and silences
(Slack buttons).

Alerts are not replicated between the replicas of an HA Alertmanager, so `snapshot()` asks every
configured replica and takes the union by fingerprint. `reconcile_payload()` turns a snapshot and
what the engine believes into one synthetic webhook delivery (`receiver` and `groupKey`
"alert-router/reconcile"), recorded in the event log like any delivery so that replay sees it:

- alerts Alertmanager has and would notify (not silenced or inhibited) are sent as firing: all
  of them at start (the engine ignores what it already knows), the new ones periodically;
- every alert the engine believes firing that no replica has is sent as resolved, `endsAt` now,
  but only when every replica answered and has been up for `min_uptime`: a freshly restarted
  Alertmanager has forgotten its alerts until Prometheus re-sends them, and resolving them
  then would close real incidents. Silenced alerts count as present: only their absence says
  that they ended (Alertmanager sends no webhook for a silenced alert's resolution).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp

from ground.jsonio import loads
from ground.times import ZERO_TIME, format_time, parse_time
from router.core.groups import RECONCILE_GROUP_KEY

RECONCILE_RECEIVER = RECONCILE_GROUP_KEY  # its receiver and group key: not a group snapshot


class AlertmanagerError(Exception):
    pass


@dataclass
class Snapshot:
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # fingerprint -> API alert
    answered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # url -> error
    youngest_uptime: timedelta | None = None

    @property
    def complete(self) -> bool:
        return bool(self.answered) and not self.failed

    def difference(
        self,
        believed_firing: list[dict[str, Any]],
        now: datetime,
        min_uptime: timedelta,
        *,
        firing: str = "all",
    ) -> tuple[dict[str, Any] | None, int, int]:
        """What to record so the router believes what Alertmanager says: see reconcile_payload."""
        return reconcile_payload(self, believed_firing, now, min_uptime, firing=firing)


class AlertmanagerClient:
    def __init__(
        self,
        urls: Iterable[str],
        timeout: float = 10.0,
        bearer_token: str | None = None,
        receiver: str | None = None,
    ) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self._receiver = receiver
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(self, url: str) -> Any:
        try:
            async with self._client().get(url) as response:
                text = await response.text()
                if response.status != 200:
                    raise AlertmanagerError(f"GET {url}: HTTP {response.status}: {text[:200]}")
                return loads(text)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise AlertmanagerError(f"GET {url}: {type(exc).__name__}: {exc}") from exc

    async def alerts(self, base: str) -> list[dict[str, Any]]:
        """Every alert not yet resolved, silenced and inhibited ones included (`status.state` is
        "suppressed" for those): a silenced alert still fires, and Alertmanager sends no webhook
        when it resolves, so only its absence from this list tells that it ended."""
        params = "active=true&silenced=true&inhibited=true&unprocessed=true"
        if self._receiver:
            params += "&receiver=" + quote(self._receiver, safe="")
        data = await self._get(f"{base}/api/v2/alerts?{params}")
        if not isinstance(data, list):
            raise AlertmanagerError(f"{base}/api/v2/alerts: expected a JSON list")
        return [
            a
            for a in data
            if isinstance(a, dict) and a.get("fingerprint") and isinstance(a.get("labels"), dict)
        ]

    async def uptime(self, base: str, now: datetime) -> timedelta | None:
        data = await self._get(f"{base}/api/v2/status")
        started = parse_time(str(data.get("uptime", ""))) if isinstance(data, dict) else None
        return now - started if started else None

    async def snapshot(self, now: datetime) -> Snapshot:
        snap = Snapshot()
        for base in self.urls:
            try:
                alerts = await self.alerts(base)
                uptime = await self.uptime(base, now)
            except AlertmanagerError as exc:
                snap.failed[base] = str(exc)
                continue
            snap.answered.append(base)
            if uptime is None or snap.youngest_uptime is None or uptime < snap.youngest_uptime:
                snap.youngest_uptime = uptime if uptime is not None else timedelta(0)
            for alert in alerts:
                known = snap.alerts.get(alert["fingerprint"])
                if known is None or str(alert.get("updatedAt", "")) > str(known.get("updatedAt", "")):
                    snap.alerts[alert["fingerprint"]] = alert
        return snap

    async def create_silence(
        self,
        matchers: list[dict[str, Any]],
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        """POST /api/v2/silences on the first replica that takes it (silences are gossiped)."""
        body = {
            "matchers": matchers,
            "startsAt": format_time(starts_at),
            "endsAt": format_time(ends_at),
            "createdBy": created_by,
            "comment": comment,
        }
        errors = []
        for base in self.urls:
            try:
                async with self._client().post(f"{base}/api/v2/silences", json=body) as response:
                    text = await response.text()
                    if response.status == 200:
                        return str(json.loads(text)["silenceID"])
                    errors.append(f"{base}: HTTP {response.status}: {text[:200]}")
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
                errors.append(f"{base}: {type(exc).__name__}")
        raise AlertmanagerError(
            "no Alertmanager took the silence: " + "; ".join(errors or ["no URL configured"])
        )


def reconcile_payload(
    snapshot: Snapshot,
    believed_firing: list[dict[str, Any]],
    now: datetime,
    min_uptime: timedelta,
    *,
    firing: str = "all",
) -> tuple[dict[str, Any] | None, int, int]:
    """(webhook payload or None, alerts sent firing, alerts sent resolved).

    Firing: what a webhook would have told (suppressed alerts are not news: a silence or an
    inhibition is a human's or a rule's decision to keep them quiet): `all` of them, only those
    the router does not already believe firing (`new`), or `none`. Resolved: what the router
    believes firing and no replica has at all, suppressed or not; only when the snapshot can be
    trusted."""
    if firing not in ("all", "new", "none"):
        raise ValueError(f"firing must be all, new or none, not {firing!r}")
    believed = {alert["fingerprint"] for alert in believed_firing}
    alerts: list[dict[str, Any]] = []
    for fingerprint in sorted(snapshot.alerts) if firing != "none" else ():
        item = snapshot.alerts[fingerprint]
        if (item.get("status") or {}).get("state") == "suppressed":
            continue
        if firing == "new" and fingerprint in believed:
            continue
        alerts.append(
            {
                "status": "firing",
                "labels": {str(k): str(v) for k, v in item["labels"].items()},
                "annotations": {str(k): str(v) for k, v in (item.get("annotations") or {}).items()},
                "startsAt": str(item.get("startsAt") or format_time(now)),
                "endsAt": ZERO_TIME,  # as webhooks send firing alerts; the API's endsAt is an expiry
                "generatorURL": str(item.get("generatorURL") or ""),
                "fingerprint": fingerprint,
            }
        )
    sent_firing = len(alerts)
    resolved = 0
    trusted = (
        snapshot.complete and snapshot.youngest_uptime is not None and snapshot.youngest_uptime >= min_uptime
    )
    if trusted:
        for alert in believed_firing:
            if alert["fingerprint"] in snapshot.alerts:
                continue
            resolved += 1
            alerts.append(
                {
                    "status": "resolved",
                    "labels": alert["labels"],
                    "annotations": alert.get("annotations") or {},
                    "startsAt": alert["startsAt"],
                    "endsAt": format_time(now),
                    "generatorURL": alert.get("generatorURL") or "",
                    "fingerprint": alert["fingerprint"],
                }
            )
    if not alerts:
        return None, 0, 0
    payload: dict[str, Any] = {
        "receiver": RECONCILE_RECEIVER,
        "status": "firing" if sent_firing else "resolved",
        "alerts": alerts,
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": snapshot.answered[0] if snapshot.answered else "",
        "version": "4",
        "groupKey": RECONCILE_RECEIVER,
        "truncatedAlerts": 0,
    }
    return payload, sent_firing, resolved
