"""Score a correlation engine on generated worlds (router/sim/worlds.py), through its public contract
only: the recorded stream goes in, the notifications of `router.replay` (the code `alert-router
replay` runs) come out, and each figure compares them with the world's ground truth.

Definitions (per world, and over many worlds by summing numerators and denominators):

- **must-page fault**: a fault whose `must_page` is true (it does not heal before its slow alerts
  fire); the others (node blips, transient trouble) are **expected quiet** (a notice is fine).
- **page**: a notification with `action == "page"`. A page is **correct** when its
  `root.entity` is the root entity of a must-page fault of the world, or when the likely cause
  it names (`likely_cause.entity`) is that root or the recorded change that started the fault
  (an application fault behind a Service that raises no alert of its own is paged on the
  caller that first shows it, with the Service, or its rollout, as the lead).
- **precision** = correct pages / pages.
- **recall** = must-page faults named by at least one correct page / must-page faults.
- **pages per real incident** = pages / must-page faults (target <= 1.1: one page per problem).
- **healed/noise paged** = pages whose root is an expected-quiet fault's root entity, or whose
  root alert is one of that fault's alerts or a noise alert (target 0).
- **time to page** = for each must-page fault paged on its root, the time from the fault's start
  to the first such page (median and 90th percentile; not a target: the price of waiting for
  the better root, to be compared between engines on the same worlds).
- **symptoms attached** = for must-page faults, the share of their symptom alerts (by
  fingerprint) that appear in the `symptoms` of a `page` or `update` notification of an
  incident whose root names that fault: the notification's own `root.entity`, or the root its
  incident ends with, is the fault's root, or its page named the fault by its likely cause (then
  the page's own root alert counts as attached) (target >= 0.90). Alerts on the root itself
  (the fault's `root` alerts) are not symptoms and are not counted.

Every page is also given a verdict for the diagnosis: the root of a fault, a symptom of a fault
paged on its own, a wrong root for a fault's own alerts, a healed fault, noise, or an invented
root (an inferred root that names no fault).
"""

from __future__ import annotations

import math
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ground.times import parse_time
from router.core.engine import Engine
from router.core.replay import replay
from router.core.settings import EngineSettings
from router.sim.worlds import World, generate_world
from rules.ruleset import RuleSet
from topology.load import load_topology

ATTACH_TARGET = 0.90
PAGES_PER_INCIDENT_TARGET = 1.1


@dataclass
class PageVerdict:
    at: str
    incident: str
    root: str
    root_alert: str  # alertname, or "" for an inferred root
    reason: str
    verdict: str  # root | symptom | wrong-root | healed | noise | invented | unknown
    fault: str = ""  # the fault id the verdict refers to
    by_cause: bool = False  # right by the likely cause it names, not by its root
    symptoms: int = 0
    final_root: str = ""  # the root its incident ends with (an `update` may re-attribute it)
    reattributed: bool = False  # not right when paged, but its incident ends on a fault's root

    @property
    def correct(self) -> bool:
        return self.verdict == "root"


@dataclass
class FaultScore:
    id: str
    kind: str
    root: str
    must_page: bool
    summary: str
    pages: int = 0  # pages naming its root
    to_page: float | None = None  # seconds from the fault's start to the first page naming its root
    symptoms: int = 0
    attached: int = 0
    unattached: list[str] = field(default_factory=list)  # "alertname {labels}" of missing symptoms

    @property
    def paged(self) -> bool:
        return self.pages > 0

    @property
    def attach_share(self) -> float:
        return self.attached / self.symptoms if self.symptoms else 1.0


@dataclass
class WorldScore:
    seed: int
    cluster: dict
    start: str
    faults: list[FaultScore]
    pages: list[PageVerdict]
    notices: int = 0
    noise_notices: int = 0  # notices whose root alert is noise (allowed, but noise in a channel)
    seconds: dict[str, float] = field(default_factory=dict)
    error: str = ""  # the replay did not finish (timeout): nothing it would have said counts
    alertmanager: dict = field(default_factory=dict)  # how the world was delivered (truth.json)

    @property
    def must_page(self) -> int:
        return sum(f.must_page for f in self.faults)

    @property
    def correct_pages(self) -> int:
        return sum(p.correct for p in self.pages)

    @property
    def paged_faults(self) -> int:
        return sum(f.must_page and f.paged for f in self.faults)

    @property
    def quiet_paged(self) -> int:
        return sum(p.verdict in ("healed", "noise") for p in self.pages)

    @property
    def symptoms(self) -> int:
        return sum(f.symptoms for f in self.faults if f.must_page)

    @property
    def attached(self) -> int:
        return sum(f.attached for f in self.faults if f.must_page)

    def violations(self) -> list[str]:
        """The invariants a correct engine holds on every world; empty when all hold."""
        out = [self.error] if self.error else []
        if len(self.pages) > self.must_page:
            out.append(f"{len(self.pages)} pages for {self.must_page} fault(s) that must page")
        for page in self.pages:
            if not page.correct:
                out.append(f"page on {page.root} is {page.verdict}{' ' + page.fault if page.fault else ''}")
        for fault in self.faults:
            if fault.must_page and not fault.paged:
                out.append(f"{fault.id} {fault.kind} never paged ({fault.root})")
            if fault.must_page and fault.attach_share < ATTACH_TARGET:
                out.append(f"{fault.id} {fault.kind}: {fault.attached}/{fault.symptoms} symptoms attached")
        return out

    @property
    def badness(self) -> float:
        """How far from right, for picking the worlds worth reading first."""
        wrong = sum(not p.correct for p in self.pages)
        missed = self.must_page - self.paged_faults
        detached = sum(1 - f.attach_share for f in self.faults if f.must_page)
        return 3 * missed + 2 * wrong + detached


def _short(row: dict) -> str:
    skip = {
        "alertname",
        "severity",
        "prometheus",
        "cluster",
        "job",
        "instance",
        "container",
        "uid",
        "endpoint",
    }
    keep = {k: v for k, v in row["labels"].items() if k not in skip}
    if row["labels"].get("job") and not any(k in keep for k in ("pod", "node", "service", "service_name")):
        keep["job"] = row["labels"]["job"]
    return f"{row['alertname']} {','.join(f'{k}={v}' for k, v in sorted(keep.items()))}"


def score(truth: dict, notifications: Iterable[dict]) -> WorldScore:
    """Compare the notifications of one replay (contract dicts) with the world's ground truth."""
    notes = list(notifications)
    faults = truth["faults"]
    roots = {f["root"]: f for f in faults}
    causes = {
        entity: f for f in faults for entity in (f["root"], (f.get("change") or {}).get("entity")) if entity
    }
    by_fp: dict[str, tuple[dict, str]] = {}
    for fault in faults:
        for row in fault["alerts"]:
            by_fp[row["fingerprint"]] = (fault, row["role"])
    noise = {row["fingerprint"] for row in truth["noise"]}

    final_root: dict[str, str] = {}
    for note in notes:
        if note["action"] in ("page", "update", "notice"):
            final_root[note["incident"]] = note["root"]["entity"]
    pages = [_verdict(n, roots, causes, by_fp, noise) for n in notes if n["action"] == "page"]
    for page in pages:
        page.final_root = final_root.get(page.incident, page.root)
        late = roots.get(page.final_root)
        page.reattributed = not page.correct and late is not None and late["must_page"]
    attached_by_root: dict[str, set[str]] = {}
    attached_by_incident: dict[str, set[str]] = {}
    for note in notes:
        if note["action"] not in ("page", "update"):
            continue
        fps = {s["fingerprint"] for s in note["symptoms"]}
        for root in {note["root"]["entity"], final_root.get(note["incident"], "")}:
            attached_by_root.setdefault(root, set()).update(fps)
        root_alert = note["root"]["alert"]
        attached_by_incident.setdefault(note["incident"], set()).update(
            fps | ({root_alert["fingerprint"]} if root_alert else set())
        )

    scores = []
    for fault in faults:
        symptoms = [row for row in fault["alerts"] if row["role"] == "symptom"]
        naming = [p for p in pages if p.fault == fault["id"] and p.verdict in ("root", "healed")]
        attached = set(attached_by_root.get(fault["root"], set()))
        for page in naming:
            if page.by_cause:
                attached |= attached_by_incident.get(page.incident, set())
        missing = [row for row in symptoms if row["fingerprint"] not in attached]
        paged_at = [parse_time(p.at) for p in naming]
        started = parse_time(fault["start"])
        first = min((at for at in paged_at if at is not None), default=None)
        scores.append(
            FaultScore(
                id=fault["id"],
                kind=fault["kind"],
                root=fault["root"],
                must_page=fault["must_page"],
                summary=fault["summary"],
                pages=len(paged_at),
                to_page=(first - started).total_seconds() if first and started else None,
                symptoms=len(symptoms),
                attached=len(symptoms) - len(missing),
                unattached=[_short(row) for row in missing],
            )
        )
    return WorldScore(
        seed=truth["seed"],
        cluster=truth["cluster"],
        start=truth["start"],
        faults=scores,
        pages=pages,
        notices=sum(n["action"] == "notice" for n in notes),
        noise_notices=sum(
            n["action"] == "notice" and (n["root"]["alert"] or {}).get("fingerprint") in noise for n in notes
        ),
        alertmanager=truth.get("alertmanager", {}),
    )


def _verdict(
    note: dict,
    roots: dict[str, dict],
    causes: dict[str, dict],
    by_fp: dict[str, tuple[dict, str]],
    noise: set[str],
) -> PageVerdict:
    root = note["root"]["entity"]
    alert = note["root"]["alert"]
    page = PageVerdict(
        at=note["at"],
        incident=note["incident"],
        root=root,
        root_alert=alert["alertname"] if alert else "",
        reason=note["reason"],
        verdict="unknown",
        symptoms=len(note["symptoms"]),
    )
    fault = roots.get(root)
    if fault is None:  # named by its likely cause instead: the root is where the fault showed
        fault = causes.get((note.get("likely_cause") or {}).get("entity", ""))
        page.by_cause = fault is not None
    if fault is not None:
        page.verdict, page.fault = ("root" if fault["must_page"] else "healed"), fault["id"]
        return page
    if alert is not None and alert["fingerprint"] in by_fp:
        owner, role = by_fp[alert["fingerprint"]]
        page.fault = owner["id"]
        if not owner["must_page"]:
            page.verdict = "healed"
        else:
            page.verdict = "symptom" if role == "symptom" else "wrong-root"
        return page
    if alert is not None and alert["fingerprint"] in noise:
        page.verdict = "noise"
        return page
    if alert is None:
        page.verdict = "invented"
        counts: dict[str, int] = {}
        for symptom in note["symptoms"]:
            known = by_fp.get(symptom["fingerprint"])
            if known is not None:
                counts[known[0]["id"]] = counts.get(known[0]["id"], 0) + 1
        if counts:
            page.fault = max(sorted(counts), key=lambda k: counts[k])
    return page


# --- running worlds through the engine -------------------------------------------------------------


def replay_world(
    world: World, rules: RuleSet, settings: EngineSettings | None = None
) -> tuple[list[dict], dict]:
    """Replay a world's stream through the engine on its own topology files; returns the
    notifications (contract dicts) and the seconds spent loading and replaying."""
    with tempfile.TemporaryDirectory(prefix=f"world-{world.seed}-") as directory:
        paths = world.write(directory)
        started = time.perf_counter()
        topology = load_topology(world.topology_paths(paths))
        loaded = time.perf_counter()
        engine = Engine(topology, rules, settings or EngineSettings())
        lines = enumerate(world.stream_text.splitlines(keepends=True), 1)
        result = replay(engine, lines, f"world-{world.seed}")
        done = time.perf_counter()
    return [n.to_dict() for n in result.notifications], {"load": loaded - started, "replay": done - loaded}


class ReplayTimeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise ReplayTimeout


def run_world(
    seed: int,
    rules: RuleSet,
    kinds: Sequence[str] | None = None,
    settings: EngineSettings | None = None,
    *,
    timeout: float | None = None,
    routing: str = "kube-prometheus",
) -> WorldScore:
    """Generate, replay and score one world.

    With `timeout` (seconds; main thread only), a replay that runs longer is abandoned and the
    world scores as if the engine had said nothing, with the timeout as a violation: one engine
    hang must not stall a bench of a thousand worlds.
    """
    started = time.perf_counter()
    world = generate_world(seed, kinds, routing)
    truth = world.truth()
    generated = time.perf_counter()
    armed = timeout is not None and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGALRM, _alarm) if armed else None
    error = ""
    try:
        if armed and timeout is not None:
            signal.setitimer(signal.ITIMER_REAL, timeout)
        notes, seconds = replay_world(world, rules, settings)
    except ReplayTimeout:
        notes, seconds = [], {"load": 0.0, "replay": time.perf_counter() - generated}
        error = f"replay did not finish within {timeout:g} s"
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    result = score(truth, notes)
    result.seconds = {"generate": generated - started, **seconds}
    result.error = error
    return result


# --- aggregation and reports -----------------------------------------------------------------------


@dataclass
class Figures:
    worlds: int = 0
    faults: int = 0
    must_page: int = 0
    pages: int = 0
    correct: int = 0
    paged: int = 0
    quiet_paged: int = 0
    symptoms: int = 0
    attached: int = 0
    notices: int = 0
    noise_notices: int = 0
    passing: int = 0  # worlds without any violation
    reattributed: int = 0  # wrong pages whose incident later names a real root
    timeouts: int = 0  # worlds whose replay did not finish in time
    verdicts: dict[str, int] = field(default_factory=dict)
    to_page: list[float] = field(default_factory=list)  # seconds, per must-page fault paged

    def add(self, result: WorldScore) -> None:
        self.worlds += 1
        self.faults += len(result.faults)
        self.must_page += result.must_page
        self.pages += len(result.pages)
        self.correct += result.correct_pages
        self.paged += result.paged_faults
        self.quiet_paged += result.quiet_paged
        self.symptoms += result.symptoms
        self.attached += result.attached
        self.notices += result.notices
        self.noise_notices += result.noise_notices
        self.passing += not result.violations()
        self.reattributed += sum(p.reattributed for p in result.pages)
        self.timeouts += bool(result.error)
        self.to_page.extend(f.to_page for f in result.faults if f.must_page and f.to_page is not None)
        for page in result.pages:
            self.verdicts[page.verdict] = self.verdicts.get(page.verdict, 0) + 1

    @property
    def precision(self) -> float:
        return self.correct / self.pages if self.pages else 1.0

    @property
    def recall(self) -> float:
        return self.paged / self.must_page if self.must_page else 1.0

    @property
    def pages_per_incident(self) -> float:
        return self.pages / self.must_page if self.must_page else float(self.pages)

    @property
    def attach(self) -> float:
        return self.attached / self.symptoms if self.symptoms else 1.0

    def to_page_quantile(self, q: float) -> float | None:
        """The `q` quantile of the time to page, in seconds (nearest rank)."""
        if not self.to_page:
            return None
        ordered = sorted(self.to_page)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def aggregate(results: Iterable[WorldScore]) -> tuple[Figures, dict[str, Figures]]:
    """Overall figures, and per fault kind (a world counts in the rows of each of its kinds; its
    pages are split by the fault their verdict names)."""
    overall = Figures()
    kinds: dict[str, Figures] = {}
    for result in results:
        overall.add(result)
        for fault in result.faults:
            row = kinds.setdefault(fault.kind, Figures())
            row.faults += 1
            row.must_page += fault.must_page
            row.paged += fault.must_page and fault.paged
            if fault.must_page:
                row.symptoms += fault.symptoms
                row.attached += fault.attached
                if fault.to_page is not None:
                    row.to_page.append(fault.to_page)
            mine = [p for p in result.pages if p.fault == fault.id]
            row.pages += len(mine)
            row.correct += sum(p.correct for p in mine)
            row.quiet_paged += sum(p.verdict in ("healed", "noise") for p in mine)
            for page in mine:
                row.verdicts[page.verdict] = row.verdicts.get(page.verdict, 0) + 1
    return overall, dict(sorted(kinds.items()))


def format_figures(overall: Figures, kinds: dict[str, Figures]) -> str:
    lines = [
        f"worlds                      {overall.worlds}",
        f"faults                      {overall.faults} ({overall.must_page} must page, "
        f"{overall.faults - overall.must_page} expected quiet)",
        f"pages                       {overall.pages} ({overall.notices} notices, "
        f"{overall.noise_notices} of them on noise)",
        f"precision                   {overall.precision:.3f}   pages naming a real root / pages; target 1",
        f"recall                      {overall.recall:.3f}   must-page faults paged on their root; target 1",
        f"pages per real incident     {overall.pages_per_incident:.2f}    pages / must-page faults; "
        f"target <= {PAGES_PER_INCIDENT_TARGET}",
        f"healed/noise paged          {overall.quiet_paged}       target 0",
        f"symptoms attached           {overall.attach:.3f}   target >= {ATTACH_TARGET}",
        f"time to page                median {_minutes(overall.to_page_quantile(0.5))}, "
        f"p90 {_minutes(overall.to_page_quantile(0.9))}   fault start to its first right page",
        f"worlds passing invariants   {overall.passing}/{overall.worlds}",
        f"wrong pages re-attributed   {overall.reattributed}       (their incident later names a real root)",
        f"replays timed out           {overall.timeouts}",
        "pages by verdict            "
        + ", ".join(f"{k} {v}" for k, v in sorted(overall.verdicts.items(), key=lambda kv: -kv[1])),
        "",
        f"{'kind':<15}{'faults':>7}{'page?':>7}{'recall':>8}{'attach':>8}{'pages':>7}{'right':>7}"
        + f"{'to page':>9}  wrong pages",
    ]
    for kind, row in kinds.items():
        wrong = {k: v for k, v in row.verdicts.items() if k != "root"}
        recall = f"{row.recall:.2f}" if row.must_page else "-"
        attach = f"{row.attach:.2f}" if row.symptoms else "-"
        lines.append(
            f"{kind:<15}{row.faults:>7}{row.must_page:>7}{recall:>8}{attach:>8}{row.pages:>7}"
            + f"{row.correct:>7}{_minutes(row.to_page_quantile(0.5)):>9}  "
            + (", ".join(f"{k} {v}" for k, v in sorted(wrong.items(), key=lambda kv: -kv[1])) or "-")
        )
    return "\n".join(lines)


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s"


def _offset(at: str, start: datetime) -> str:
    moment = parse_time(at)
    if moment is None:
        return at
    total = int((moment - start).total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    return f"{sign}{total // 60}m{total % 60:02d}s"


def diagnose(result: WorldScore, *, limit: int = 8) -> str:
    """A short readable account of one world: its faults, every page with its verdict, and the
    symptoms left unattached (times from the start of the recording)."""
    start = parse_time(result.start)
    assert start is not None
    c = result.cluster
    control = "managed" if c["managed"] else "self-hosted"
    shape = f"{c['platform']} {control}, {len(c['zones'])} zones, {c['nodes']} nodes, {c['pods']} pods"
    extra = ", topology file" if c["topology_file"] else ""
    lines = [f"seed {result.seed} ({shape}{extra}; cluster {c['name']})"]
    am = result.alertmanager
    if am:
        lines.append(
            f"  alertmanager: group_by {am['group_by']}, wait {am['group_wait']}, interval "
            f"{am['group_interval']}, {am['replicas']} replica(s)"
        )
    for fault in result.faults:
        goal = "must page" if fault.must_page else "expected quiet"
        state = ""
        if fault.must_page:
            state = f"; paged {fault.pages}x; symptoms {fault.attached}/{fault.symptoms} attached"
        lines.append(f"  {fault.id} {fault.kind} [{goal}] root {fault.root}{state}")
        lines.append(f"     {fault.summary}")
    if not result.pages:
        lines.append("  no page")
    for page in result.pages:
        what = page.verdict + (f" {page.fault}" if page.fault else "")
        alert = page.root_alert or "inferred"
        if page.final_root != page.root:
            what += f", later re-attributed to {page.final_root}"
        lines.append(f"  page {_offset(page.at, start)} root {page.root} ({alert}) -> {what}")
        lines.append(f"     {page.reason}")
    for fault in result.faults:
        if fault.must_page and fault.unattached:
            shown = fault.unattached[:limit]
            more = f" (+{len(fault.unattached) - limit} more)" if len(fault.unattached) > limit else ""
            lines.append(f"  unattached symptoms of {fault.id}: " + "; ".join(shown) + more)
    for violation in result.violations():
        lines.append(f"  ! {violation}")
    return "\n".join(lines)
