"""Slack messages for incidents, built with `slack_sdk.models.blocks`.

Every block goes through slack-sdk's validators (`to_dict()` raises on a header over 150
characters, a section over 3,000, a button label over 75, ...); what slack-sdk does not check
(field length, block count, total size) is checked here. Long text is shortened at a word
boundary with an ellipsis and long lists end with "… and N more": a message is never cut
mid-word and never rejected by Slack, whatever the size of the incident.

`MessageState` is what the incident's parent message shows, folded from the notifications
(page/notice/update/resolve, `docs/contracts.md`); it is stored as JSON (integrations/slack/state.py)
so that a restart renders the same message. An optional engine view (`Engine.incident(id)`)
adds what notifications do not carry: the root alert's annotations (runbook, summary),
its generatorURL, and the opening time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from ground.times import parse_time
from router.core.wording import count_kinds, describe, span
from topology import entities

# Slack's documented limits (Block Kit reference, chat.postMessage).
MAX_BLOCKS = 50
HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
BUTTON_MAX = 75
URL_MAX = 3000
TEXT_MAX = 40_000
# Our own budgets, well inside the limits (Slack also rejects messages whose blocks total
# roughly 13,000 characters with `msg_blocks_too_long`, an undocumented limit).
FALLBACK_MAX = 1000
WHY_MAX = 1500
DETAIL_MAX = 1000
LINK_URL_MAX = 2000
TOTAL_MAX = 11_000

ACTIONS = {
    "incident_acknowledge": "acknowledge",
    "incident_resolve": "resolve",
    "incident_silence_1h": "silence",
    "incident_silence_4h": "silence",
}
SILENCE_HOURS = {"incident_silence_1h": 1, "incident_silence_4h": 4}

SEVERITY_STYLE = {
    "critical": (":red_circle:", "CRITICAL"),
    "warning": (":large_orange_circle:", "WARNING"),
    "info": (":large_blue_circle:", "INFO"),
    "none": (":white_circle:", "NOTICE"),
}
_MERGED = re.compile(r"^merged into (inc-[0-9a-f]+)")
_MERGED_IN = re.compile(r"incident (inc-[0-9a-f]+) merged in")
_ACKED = re.compile(r"acknowledged by ([^;]+)")
_SILENCED = re.compile(r"silenced by ([^;(]+)")


@dataclass(frozen=True)
class Message:
    text: str  # fallback text: notifications, screen readers, clients without blocks
    blocks: list[dict[str, Any]]


@dataclass(frozen=True)
class RenderContext:
    now: datetime  # the notification's own time: messages say "firing for 14m" as of then
    mention: str | None = None  # markup that wakes the on-call group, for pages of its severity
    alertmanager_url: str | None = None
    permalink: Callable[[str], str | None] = lambda incident: None
    symptoms_listed: int = 30


# --------------------------------------------------------------------------- text


def escape(text: str) -> str:
    """Slack mrkdwn control characters (&, <, >) in text that came from alerts."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shorten(text: str, limit: int, ellipsis: str = "…") -> str:
    """At most `limit` characters, cut at a word boundary and marked with an ellipsis.

    Only text whose first word alone overflows (a URL, a huge label value) is cut inside
    that word, at a separator (/ - _ . , :) when there is one in the second half.
    """
    if len(text) <= limit:
        return text
    room = limit - len(ellipsis)
    if room <= 0:
        return ellipsis[:limit]
    head = text[: room + 1]
    cut = head.rstrip().rfind(" ")
    if cut <= 0:
        cut = max(head.rfind(sep, 0, room) for sep in "/-_.,:") + 1
        if cut < room // 2:
            cut = room
    return text[:cut].rstrip() + ellipsis


def fit_lines(lines: list[str], limit: int, more: Callable[[int], str], hidden: int = 0) -> str:
    """Join whole lines while they fit in `limit`; a last line says how many were left out
    (`hidden` more items were never offered as lines)."""
    out: list[str] = []
    used = -1  # no newline before the first line
    for index, line in enumerate(lines):
        left = len(lines) - index - 1 + hidden
        tail = len(more(left)) + 1 if left else 0
        if used + 1 + len(line) + tail > limit:
            break
        out.append(line)
        used += 1 + len(line)
    left = len(lines) - len(out) + hidden
    if not left:
        return "\n".join(out)
    while out and used + 1 + len(more(left)) > limit:
        used -= 1 + len(out.pop())
        left += 1
    return "\n".join([*out, more(left)])


def render_path(path: Iterable[str]) -> str:
    return " → ".join(describe(step) for step in path)


def link(url: str | None, label: str) -> str | None:
    """`<url|label>` for an http(s) URL short enough to keep; None otherwise."""
    if not url or not url.startswith(("http://", "https://")) or len(url) > LINK_URL_MAX:
        return None
    safe = url.replace(" ", "%20").replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{safe}|{escape(label)}>"


def slack_date(when: datetime) -> str:
    """A date every reader sees in their own time zone, with a UTC fallback."""
    fallback = when.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def permalink(workspace_url: str, channel: str, ts: str) -> str:
    return f"{workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"


# ------------------------------------------------------------------ message state


@dataclass
class MessageState:
    """What an incident's parent message shows, folded from its notifications."""

    incident: str
    severity: str = "warning"
    root_entity: str = ""
    root_alert: dict[str, Any] | None = None
    why: str = ""  # the page's (or notice's) reason: why this is the root cause
    latest: str = ""  # the latest update's reason
    status: str = "firing"  # firing | resolved | merged | notice
    first_at: str = ""
    closed_at: str | None = None
    merged_into: str | None = None
    acknowledged_by: str | None = None
    silenced_by: str | None = None
    mentioned_by: str | None = None  # key of the notification whose message woke the on-call group
    escalated_from: list[str] | None = None  # [channel, ts] of a notice that went on to page
    symptoms: dict[str, list[str]] = field(default_factory=dict)  # fingerprint -> [alertname, entity]
    paths: list[list[str]] = field(default_factory=list)  # a few example paths, distinct kinds
    applied: list[str] = field(default_factory=list)  # notification keys folded in

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MessageState:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def apply(self, notification: dict[str, Any], key: str) -> bool:
        """Fold one notification in; False when it was already (a retry of the same key)."""
        if key in self.applied:
            return False
        self.applied.append(key)
        action = notification["action"]
        reason = notification.get("reason", "")
        self.first_at = self.first_at or notification["at"]
        root = notification.get("root") or {}
        self.root_entity = root.get("entity") or self.root_entity
        if action != "resolve":
            # A merged incident's resolve has lost its alerts: keep what the message showed.
            self.severity = notification.get("severity") or self.severity
            self.root_alert = root.get("alert")
        for symptom in notification.get("symptoms", []):
            self.symptoms.setdefault(symptom["fingerprint"], [symptom["alertname"], symptom["entity"]])
            self._keep_path(symptom.get("path") or [])
        if action in ("page", "notice"):
            self.why = reason
            self.status = "firing" if action == "page" else "notice"
        elif action == "update":
            self.latest = reason
            self.status = "firing"
            if acked := _ACKED.search(reason):
                self.acknowledged_by = acked.group(1).strip()
            if silenced := _SILENCED.search(reason):
                self.silenced_by = silenced.group(1).strip()
        elif action == "resolve":
            self.latest = reason
            self.closed_at = notification["at"]
            merged = _MERGED.match(reason)
            self.status = "merged" if merged else "resolved"
            self.merged_into = merged.group(1) if merged else None
        return True

    def _keep_path(self, path: list[str]) -> None:
        if len(path) < 2 or len(self.paths) >= 3:
            return
        kinds = [entities.kind_of(p[0]) for p in self.paths]
        if entities.kind_of(path[0]) not in kinds:
            self.paths.append(list(path))

    def enrich(self, view: dict[str, Any] | None) -> None:
        """Take what the engine knows better: who acknowledged or silenced."""
        if not view:
            return
        self.acknowledged_by = view.get("acknowledged_by") or self.acknowledged_by
        self.silenced_by = view.get("silenced_by") or self.silenced_by

    def headline(self) -> str:
        alert = self.root_alert
        if alert and entities.kind_of(self.root_entity) == "alert":
            return alert.get("alertname", "alert")
        if alert:
            return f"{alert.get('alertname', 'alert')} on {describe(self.root_entity)}"
        return f"{describe(self.root_entity)} is failing (inferred root cause)"


# ----------------------------------------------------------------------- messages


def parent_message(
    state: MessageState, mode: str, view: dict[str, Any] | None, ctx: RenderContext
) -> Message:
    """The one message of an incident: page (with buttons while it fires) or notice."""
    root_alert = _root_alert_view(state, view)
    opened_at = parse_time((view or {}).get("opened_at") or "")
    opened = opened_at or parse_time(state.first_at) or ctx.now
    blocks: list[Block] = [
        HeaderBlock(block_id="header", text=PlainTextObject(text=_header(state, mode), emoji=True))
    ]
    blocks.append(_section("status", _status_line(state, mode, opened, opened_at is not None, ctx)))
    blocks.append(SectionBlock(block_id="facts", fields=_facts(state)))
    if state.why:
        title = "What happened" if mode == "notice" else "Why this is the root cause"
        blocks.append(_section("why", f"*{title}*\n{escape(shorten(state.why, WHY_MAX))}"))
    if state.paths:
        lines = [f"• {escape(render_path(p))}" for p in state.paths]
        blocks.append(_section("path", "*Dependency path*\n" + fit_lines(lines, DETAIL_MAX, _more_paths)))
    if detail := _alert_detail(root_alert):
        blocks.append(_section("alert", detail))
    links = _links(state, root_alert, ctx)
    if state.latest and state.status == "firing":
        links.insert(0, "Latest: " + escape(shorten(state.latest, 500)))
    if links:
        blocks.append(
            ContextBlock(block_id="links", elements=[MarkdownTextObject(text=t) for t in links[:10]])
        )
    if mode == "page" and state.status == "firing":
        blocks.append(_buttons(state.incident))
    mention = ctx.mention if _wakes(state, mode, ctx) else None
    text = f"{_header(state, mode)} ({state.incident})"
    return _message(((mention + " ") if mention else "") + text, blocks)


def thread_reply(
    notification: dict[str, Any], ctx: RenderContext, mention: str | None = None
) -> Message | None:
    """One reply per update (or per page that already knew symptoms): what changed, symptoms listed."""
    action = notification["action"]
    symptoms = notification.get("symptoms", [])
    if action == "page" and not symptoms:
        return None
    blocks: list[Block] = []
    if action == "update":
        head = escape(shorten(notification.get("reason", ""), 1500))
        merged = _MERGED_IN.search(notification.get("reason", ""))
        if merged and (url := ctx.permalink(merged.group(1))):
            head += f" ({link(url, 'its message') or merged.group(1)})"
    else:
        head = (
            f"*{len(symptoms)} symptoms* known when this paged ({count_kinds(s['entity'] for s in symptoms)})"
        )
    if mention:
        head = f"{mention} {head}"
    blocks.append(_section("what", head))
    if symptoms:
        listed = [_symptom_line(s) for s in symptoms[: ctx.symptoms_listed]]

        def more(n: int) -> str:
            return f"… and {n} more ({count_kinds(s['entity'] for s in symptoms[len(symptoms) - n :])})"

        body = fit_lines(listed, SECTION_MAX, more, hidden=len(symptoms) - len(listed))
        blocks.append(_section("symptoms", body))
    text = shorten(notification.get("reason", "") or head, FALLBACK_MAX)
    return _message(((mention + " ") if mention else "") + text, blocks)


def pointer_message(state: MessageState, target_url: str | None, ctx: RenderContext) -> Message:
    """A notice whose incident went on to page: the notice points at the page."""
    where = link(target_url, "the page") if target_url else "the page"
    blocks: list[Block] = [
        HeaderBlock(
            block_id="header",
            text=PlainTextObject(
                text=shorten(f":arrow_up: ESCALATED: {state.headline()}", HEADER_MAX), emoji=True
            ),
        ),
        _section("status", f"This incident (`{state.incident}`) escalated to a page: follow {where}."),
    ]
    return _message(f"{state.headline()} escalated to a page ({state.incident})", blocks)


# ------------------------------------------------------------------------ helpers


def _header(state: MessageState, mode: str) -> str:
    if state.status == "resolved":
        prefix = ":white_check_mark: RESOLVED"
    elif state.status == "merged":
        prefix = ":leftwards_arrow_with_hook: MERGED"
    elif mode == "notice":
        prefix = ":information_source: NOTICE"
    else:
        emoji, label = SEVERITY_STYLE.get(state.severity, SEVERITY_STYLE["warning"])
        prefix = f"{emoji} {label}"
    return shorten(f"{prefix}: {state.headline()}", HEADER_MAX)


def _status_line(
    state: MessageState, mode: str, opened: datetime, known_open: bool, ctx: RenderContext
) -> str:
    if state.status == "merged":
        target = state.merged_into or "another incident"
        where = link(ctx.permalink(target), target) if state.merged_into else None
        rest = state.latest.partition(":")[2].strip()
        text = f"*Merged into* {where or f'`{target}`'}" + (f": {escape(rest)}" if rest else "")
        return shorten(text + ". Follow that incident's message and thread.", SECTION_MAX)
    if state.status == "resolved":
        closed = parse_time(state.closed_at or "") or ctx.now
        lasted = span((closed - opened).total_seconds())
        when = f"after {lasted}" if known_open else f"{lasted} after the page"
        text = f"*Resolved* {when}: {escape(state.latest)}"
    elif mode == "notice":
        text = f"Nobody was paged. First seen {slack_date(opened)}."
    else:
        text = f"*Firing* for {span((ctx.now - opened).total_seconds())}, since {slack_date(opened)}"
    if state.acknowledged_by:
        text += f" · :eyes: acknowledged by *{escape(state.acknowledged_by)}*"
    if state.silenced_by and state.status == "firing":
        text += f" · :no_bell: silenced by *{escape(state.silenced_by)}*"
    if _wakes(state, mode, ctx):
        text = f"{ctx.mention} {state.severity} page\n{text}"
    return shorten(text, SECTION_MAX)


def _wakes(state: MessageState, mode: str, ctx: RenderContext) -> bool:
    return bool(ctx.mention) and mode == "page" and state.status == "firing"


def _facts(state: MessageState) -> list[MarkdownTextObject]:
    kinds = count_kinds(entity for _, entity in state.symptoms.values())
    symptoms = f"{len(state.symptoms)} ({kinds})" if state.symptoms else "none"
    facts = [
        f"*Root cause*\n{escape(describe(state.root_entity))}\n`{escape(state.root_entity)}`",
        f"*Severity*\n{escape(state.severity)}",
        f"*Symptoms*\n{symptoms}",
        f"*Incident*\n`{state.incident}`",
    ]
    return [MarkdownTextObject(text=shorten(f, FIELD_MAX)) for f in facts]


def _root_alert_view(state: MessageState, view: dict[str, Any] | None) -> dict[str, Any] | None:
    """The root alert as the engine sees it (annotations, generator_url), when we have a view."""
    if not view:
        return None
    alerts = view.get("alerts") or []
    wanted = (state.root_alert or {}).get("fingerprint")
    for alert in alerts:
        if wanted and alert.get("fingerprint") == wanted:
            return alert
    return next((a for a in alerts if a.get("entity") == state.root_entity), None)


def _alert_detail(alert: dict[str, Any] | None) -> str | None:
    if not alert:
        return None
    notes = alert.get("annotations") or {}
    summary = notes.get("summary") or ""
    description = notes.get("description") or notes.get("message") or ""
    if not summary and not description:
        return None
    text = f"*{escape(shorten(summary, 300))}*" if summary else ""
    if description and description != summary:
        text += ("\n" if text else "") + escape(shorten(description, DETAIL_MAX - len(text) - 1))
    return text


def _links(state: MessageState, alert: dict[str, Any] | None, ctx: RenderContext) -> list[str]:
    notes = (alert or {}).get("annotations") or {}
    found = [
        link(notes.get("runbook_url"), ":book: Runbook"),
        link((alert or {}).get("generator_url"), ":chart_with_upwards_trend: Prometheus"),
        link(notes.get("dashboard_url"), ":bar_chart: Dashboard"),
    ]
    labels = (state.root_alert or {}).get("labels") or {}
    if ctx.alertmanager_url and labels:
        matchers = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        url = f"{ctx.alertmanager_url.rstrip('/')}/#/alerts?filter={quote('{' + matchers + '}')}"
        found.append(link(url, ":bell: Alertmanager"))
    return [f for f in found if f]


def _buttons(incident: str) -> ActionsBlock:
    def button(
        action_id: str, label: str, style: str | None = None, confirm: ConfirmObject | None = None
    ) -> ButtonElement:
        return ButtonElement(
            text=PlainTextObject(text=label, emoji=True),
            action_id=action_id,
            value=incident,
            style=style,
            confirm=confirm,
        )

    confirm = ConfirmObject(
        title="Resolve this incident?",
        text=f"{incident} closes now, even if its alerts still fire.",
        confirm="Resolve",
        deny="Cancel",
    )
    return ActionsBlock(
        block_id="actions",
        elements=[
            button("incident_acknowledge", "Acknowledge", "primary"),
            button("incident_resolve", "Resolve", "danger", confirm),
            button("incident_silence_1h", "Silence 1h"),
            button("incident_silence_4h", "Silence 4h"),
        ],
    )


def _symptom_line(symptom: dict[str, Any]) -> str:
    line = f"• *{escape(symptom['alertname'])}* on {escape(describe(symptom['entity']))}"
    path = symptom.get("path") or []
    if len(path) > 2:
        line += f" (via {escape(render_path(path[1:]))})"
    return shorten(line, 300)


def _more_paths(n: int) -> str:
    return f"… and {n} more"


def _section(block_id: str, text: str) -> SectionBlock:
    return SectionBlock(block_id=block_id, text=MarkdownTextObject(text=shorten(text, SECTION_MAX)))


def _message(text: str, blocks: list[Block]) -> Message:
    """Validate with slack-sdk, then check what slack-sdk does not: count and total size."""
    rendered = [block.to_dict() for block in blocks]
    if len(rendered) > MAX_BLOCKS:
        raise ValueError(f"{len(rendered)} blocks: Slack allows {MAX_BLOCKS}")
    for block in rendered:
        for item in block.get("fields") or []:
            if len(item["text"]) > FIELD_MAX:
                raise ValueError(f"a field of block {block.get('block_id')} exceeds {FIELD_MAX} characters")
    total = sum(len(str(block)) for block in rendered)
    if total > TOTAL_MAX:
        raise ValueError(f"blocks total {total} characters: over our budget of {TOTAL_MAX}")
    return Message(text=shorten(text, FALLBACK_MAX), blocks=rendered)
