"""Wiring: the one place where the service shell builds its adapters from the settings.

The rest of the shell (the service, its HTTP handlers, the event log, the outbox) knows the
adapters only by the small interfaces it calls: a `Notifier` sends, the Alertmanager client
snapshots and silences, the Slack interactions answer a button, the Prometheus link refreshes
the topology and answers the engine's questions. Which concrete adapter stands behind each, and
how it is configured, is decided here; an import contract (pyproject.toml) keeps it that way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from integrations.alertmanager import AlertmanagerClient
from integrations.notifiers import LogNotifier, WebhookNotifier
from integrations.prometheus.client import PrometheusClient
from integrations.prometheus.witness import Witness
from integrations.slack.interactions import SlackInteractions
from integrations.slack.notifier import SlackNotifier
from integrations.slack.state import SlackState
from router.service.config import Settings, read_secret
from router.service.outbox import Notifier
from router.service.prometheus_link import PrometheusLink
from topology.graph import Topology

IncidentView = Callable[[str], dict[str, Any] | None]


def notifier_names(settings: Settings, extra: list[Notifier] | None) -> list[str]:
    """The notifiers each notification gets an outbox row for, in the order `build_notifiers`
    makes them. Known before any adapter exists: the rebuild at start writes outbox rows."""
    names = [n.name for n in extra or []]
    names += [hook.name for hook in settings.notifiers.webhooks]
    if extra is None and settings.slack.enabled:
        names.append("slack")
    if _log_notifier_on(settings, bool(names)):
        names.append("log")
    return names


def build_notifiers(
    settings: Settings, extra: list[Notifier] | None, incident_view: IncidentView
) -> dict[str, Notifier]:
    """`extra` (tests, embedders) replaces Slack and adds to the configured webhooks."""
    out: list[Notifier] = list(extra or [])
    for hook in settings.notifiers.webhooks:
        secret = read_secret(hook.secret, hook.secret_file, f"notifiers.webhooks.{hook.name}.secret_file")
        out.append(
            WebhookNotifier(
                hook.name,
                hook.url,
                secret.get_secret_value().encode() if secret else None,
                hook.timeout.total_seconds(),
                hook.headers,
            )
        )
    if extra is None and settings.slack.enabled:
        out.append(
            SlackNotifier(
                settings.slack, _slack_state(settings), incident_view=incident_view, owns_state=True
            )
        )
    if _log_notifier_on(settings, bool(out)):
        out.append(LogNotifier(settings.notifiers.log.path))
    return {n.name: n for n in out}


def _slack_state(settings: Settings) -> SlackState:
    """Where each incident's Slack message is: beside the event log. With several replicas that
    is the shared database, so the replica that takes over edits the leader's messages."""
    storage = settings.storage
    if not storage.replicated:
        return SlackState(storage.data_dir / "slack.sqlite")
    from router.service import pgstore  # psycopg: only for a shared log

    return SlackState(pgstore.backend_for(storage.resolved_url(), storage.busy_timeout).connect())


def _log_notifier_on(settings: Settings, others: bool) -> bool:
    # Unset means "when nothing else would say anything": a fresh install still shows its pages.
    enabled = settings.notifiers.log.enabled
    return bool(enabled or (enabled is None and not others))


def build_alertmanager(settings: Settings) -> AlertmanagerClient | None:
    am = settings.alertmanager
    if not am.urls:
        return None
    token = am.resolved_bearer()
    return AlertmanagerClient(
        am.urls, am.timeout.total_seconds(), token.get_secret_value() if token else None, am.receiver
    )


def build_slack_interactions(
    settings: Settings,
    act: Callable[..., Awaitable[Any]],
    incident_view: IncidentView,
    alertmanager: AlertmanagerClient | None,
) -> SlackInteractions | None:
    secret = settings.slack.resolved_signing_secret() if settings.slack.enabled else None
    if secret is None:
        return None
    return SlackInteractions(
        secret,
        act=act,
        incident_view=incident_view,
        create_silence=alertmanager.create_silence if alertmanager else None,
        response_url_prefixes=settings.slack.response_url_prefixes,
    )


def build_prometheus_link(service: Any, settings: Settings, topology: Topology) -> PrometheusLink | None:
    prom = settings.prometheus
    if not prom.url:
        return None
    client = PrometheusClient(prom.url, timeout=prom.timeout.total_seconds())
    witness = Witness(client, timeout=prom.witness_timeout.total_seconds()) if prom.witness else None
    return PrometheusLink(service, prom, topology, client, witness)
