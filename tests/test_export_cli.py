"""`alert-router export` and `alert-router incidents` through router.cli.main: from a replay's
files (the real `replay` command on the bundled example) and from a service event log written
with router/service/store.py; unknown incidents, open incidents, empty and missing sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ground.jsonio import canonical_json
from router.cli.main import main
from router.core.engine import Engine
from router.export import build
from router.export.store_source import StoreSource
from router.service import store
from rules.ruleset import RuleSet
from tests.test_export_world import NODE, Recorded, alert, at, cluster, delivery, node_down_storm

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(canonical_json(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def storm() -> Recorded:
    return node_down_storm()


@pytest.fixture
def files(tmp_path, storm) -> tuple[Path, Path]:
    return (
        write_jsonl(tmp_path / "events.jsonl", storm.events),
        write_jsonl(tmp_path / "notifications.jsonl", storm.notifications),
    )


def test_replay_then_export_every_format(tmp_path, capsys):
    """The whole path a user takes: replay a recorded storm, list its incidents, export one."""
    events, notes = tmp_path / "e.jsonl", tmp_path / "n.jsonl"
    code = main(
        [
            "replay",
            "--topology",
            str(EXAMPLES / "cluster.prom"),
            "--alerts",
            str(EXAMPLES / "node-down.jsonl"),
            "--out",
            str(notes),
            "--events",
            str(events),
        ]
    )
    assert code == 0
    capsys.readouterr()
    assert main(["incidents", "--events", str(events), "--state", "closed", "--format", "json"]) == 0
    [closed] = json.loads(capsys.readouterr().out)
    assert closed["pages"] == 1 and closed["root"].startswith("node/default/")
    for fmt in ("md", "json", "html", "csv"):
        out = tmp_path / f"timeline.{fmt}"  # the format follows the extension
        assert (
            main(
                [
                    "export",
                    closed["id"],
                    "--events",
                    str(events),
                    "--notifications",
                    str(notes),
                    "-o",
                    str(out),
                ]
            )
            == 0
        )
        body = out.read_text()
        assert closed["id"] in body
    assert json.loads((tmp_path / "timeline.json").read_text())["incident"]["state"] == "closed"
    assert (tmp_path / "timeline.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "timeline.csv").read_text().startswith("at,local_time,incident,category,kind")
    assert not list(tmp_path.glob(".timeline*"))  # no temporary file left behind


def test_export_to_stdout_with_a_time_zone(files, storm, capsys):
    events, notes = files
    assert (
        main(
            [
                "export",
                storm.incident,
                "--events",
                str(events),
                "--notifications",
                str(notes),
                "--tz",
                "Asia/Tokyo",
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert out.out.startswith(f"# Incident {storm.incident}: KubeNodeNotReady on node worker-1\n")
    assert "| Time (UTC) | Time (Asia/Tokyo) |" in out.out
    assert out.err == ""  # closed: nothing to warn about


def test_unknown_incident_is_exit_2_with_a_clear_message(files, capsys):
    events, _ = files
    assert main(["export", "inc-000000", "--events", str(events)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"alert-router: no incident inc-000000 in {events} (3 incidents recorded;")


def test_empty_events_file_is_exit_2(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["export", "inc-123456", "--events", str(empty)]) == 2
    assert "no decision events in" in capsys.readouterr().err
    assert main(["incidents", "--events", str(empty)]) == 2
    assert "nothing has been recorded yet" in capsys.readouterr().err


def test_bad_inputs_name_the_problem(files, storm, tmp_path, capsys):
    events, notes = files
    cases = [
        (
            ["export", storm.incident, "--events", str(notes)],
            f"{notes}:1: kind: missing: not a decision event",
        ),
        (["export", storm.incident, "--events", str(tmp_path / "nope.jsonl")], "cannot read"),
        (
            ["export", storm.incident, "--events", str(events), "--tz", "Moon/Tranquility"],
            "unknown time zone",
        ),
        (["export", storm.incident, "--notifications", str(notes)], "--notifications needs --events"),
        (["export", storm.incident, "--events", str(events), "--data-dir", str(tmp_path)], "not both"),
        (["incidents", "--events", str(events), "--since", "last tuesday"], "--since: 'last tuesday' is not"),
        (["export", storm.incident, "--data-dir", str(tmp_path / "none")], "no event log at"),
    ]
    broken = tmp_path / "broken.jsonl"
    broken.write_text(events.read_text().splitlines()[0] + "\n{not json\n")
    cases.append((["export", storm.incident, "--events", str(broken)], f"{broken}:2: not valid JSON"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv


def test_open_incident_exports_marked_and_can_be_refused(tmp_path, capsys):
    running = node_down_storm(resolve=False)
    events = write_jsonl(tmp_path / "events.jsonl", running.events)
    out = tmp_path / "open.md"
    assert main(["export", running.incident, "--events", str(events), "-o", str(out)]) == 0
    assert f"note: incident {running.incident} is still open (state paged)" in capsys.readouterr().err
    assert "**Still open**" in out.read_text()
    assert main(["export", running.incident, "--events", str(events), "--require-closed"]) == 2
    assert "is still open (state paged): nothing exported" in capsys.readouterr().err


def test_merged_incident_points_to_the_survivor(files, storm, capsys):
    events, _ = files
    merged = next(i["id"] for i in storm.engine.incidents() if i["merged_into"])
    assert main(["export", merged, "--events", str(events), "--format", "json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["incident"]["merged_into"] == storm.incident
    assert f"`alert-router export {storm.incident}` has the whole story" in out.err


def test_incidents_table_and_filters(files, storm, capsys):
    events, notes = files
    assert main(["incidents", "--events", str(events), "--notifications", str(notes)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "ID",
        "STATE",
        "SEVERITY",
        "OPENED",
        "(UTC)",
        "PAGED",
        "CLOSED",
        "ALERTS",
        "PAGES",
        "ROOT",
    ]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {i["id"] for i in storm.engine.incidents()}
    node = rows[storm.incident]
    assert node[1] == "closed" and node[-3:] == ["6", "1", NODE]

    def ids(*argv: str) -> set[str]:
        assert main(["incidents", "--events", str(events), "--format", "json", *argv]) == 0
        return {row["id"] for row in json.loads(capsys.readouterr().out)}

    merged = {i["id"] for i in storm.engine.incidents() if i["state"] == "merged"}
    assert ids("--state", "merged") == merged
    assert ids("--state", "live") == set()
    assert ids("--entity", "worker-1") == {storm.incident}  # bare name: the node itself
    assert ids("--entity", "pod/default/shop") == {storm.incident, *merged}  # and everything below
    assert ids("--entity", "daemonset/default/kube-system/kube-proxy") == {storm.incident}
    assert ids("--until", "2026-10-06T01:00:00Z") == set()  # nothing opened before 01:00
    assert ids("--since", "2026-10-06T01:30:00Z") == {storm.incident}  # the merged ones ended at 01:16
    assert ids("--since", "2026-10-06T01:16:00", "--until", "2026-10-06T01:17:00") == {
        storm.incident,
        *merged,
    }


# ------------------------------------------------------------------------------ service event log


def write_store(data_dir: Path, recorded: Recorded) -> store.SQLiteConnection:
    """An event log as the service writes it (router/service/store.py), one notifier `slack`: the page
    failed once then went out, the rest stays pending. The connection stays open, like the
    running service's."""
    conn = store.SQLiteBackend(data_dir / "alert-router.sqlite").connect()
    store.migrate(conn)
    events = [
        (i + 1, 1, e["at"], e["kind"], e["incident"], canonical_json(e))
        for i, e in enumerate(recorded.events)
    ]
    seq: dict[str, int] = {}
    notes = []
    for position, n in enumerate(recorded.notifications, 1):
        number = seq.get(n["incident"], 0)
        seq[n["incident"]] = number + 1
        key = f"{n['incident']}:{number}:{n['action']}"
        notes.append((key, position, n["incident"], n["action"], n["at"], 1, n["at"], canonical_json(n)))
    conn.begin()
    store.write_outputs(conn, store.Outputs(1, recorded.events[-1]["at"], events, notes, ["slack"], "now"))
    conn.commit()
    page = notes[0][0]
    conn.begin()
    store.write_attempt(conn, 1, page, "slack", 1, "t1", 20, "HTTP 429 rate limited", "pending", "t2", "t1")
    store.write_attempt(conn, 2, page, "slack", 2, "t2", 20, None, "sent", "t2", "t2")
    conn.commit()
    return conn


def test_export_from_the_service_event_log(tmp_path, storm, capsys):
    conn = write_store(tmp_path, storm)
    try:
        out = tmp_path / "t.json"
        assert main(["export", storm.incident, "--data-dir", str(tmp_path), "-o", str(out)]) == 0
        data = json.loads(out.read_text())
        messages = data["messages"]
        assert messages[0]["key"] == f"{storm.incident}:0:page"
        assert (messages[0]["status"], messages[0]["result"]) == ("sent", "sent to slack (2 attempts)")
        assert {m["status"] for m in messages[1:]} == {"pending"}
        assert data["figures"]["alerts_received"] == 6 and data["incident"]["acknowledged_by"] == ["alice"]
        # The same timeline as from the replay's files, apart from the messages' results.
        from_files = StoreSource(tmp_path / "alert-router.sqlite").load(storm.incident)
        assert [e["kind"] for e in from_files.events] == [
            e["kind"]
            for e in storm.events
            if e["incident"] in {storm.incident, *data["incident"]["merged_in"]} or e["kind"] == "alert_fired"
        ]
        capsys.readouterr()
        assert main(["incidents", "--data-dir", str(tmp_path)]) == 0
        assert len(capsys.readouterr().out.splitlines()) == 1 + len(storm.engine.incidents())
        assert main(["export", "inc-000000", "--data-dir", str(tmp_path)]) == 2
        assert "no incident inc-000000 in the event log" in capsys.readouterr().err
    finally:
        conn.close()


def test_empty_and_foreign_event_logs(tmp_path, capsys):
    conn = store.SQLiteBackend(tmp_path / "alert-router.sqlite").connect()
    store.migrate(conn)  # a service that started and received nothing
    conn.close()
    assert main(["export", "inc-123456", "--data-dir", str(tmp_path)]) == 2
    assert "nothing has been recorded yet" in capsys.readouterr().err
    assert main(["incidents", "--data-dir", str(tmp_path)]) == 2
    assert "nothing has been recorded yet" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "alert-router.sqlite").write_bytes(b"not a database at all, just bytes" * 100)
    assert main(["export", "inc-123456", "--data-dir", str(other)]) == 2
    assert "cannot read the event log" in capsys.readouterr().err


def test_config_file_names_the_data_dir(tmp_path, storm, capsys):
    conn = write_store(tmp_path / "data", storm)
    conn.close()
    config = tmp_path / "alert-router.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\n")
    assert main(["export", storm.incident, "--config", str(config), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("at,local_time,")


def test_store_source_finds_how_an_adopted_cause_ended(tmp_path):
    """A cause adopted by a paged incident has no `merged` event of its own: the event log
    source must still bring the paged incident's `root_reattributed` event."""
    engine = Engine(cluster(), RuleSet.load())
    labels = {"job": "kube-state-metrics", "namespace": "shop", "pod": "checkout-6d8f7b9c5d-r7t5w"}
    notes = engine.ingest(delivery(at(0.5), [alert("p-w2", 0, "KubePodNotReady", **labels)]), at(0.5))
    notes += engine.tick(at(17))  # past the pod's 15m grace: it pages
    node = alert("n-w2", 17.5, "KubeNodeNotReady", job="kube-state-metrics", node="worker-2")
    notes += engine.ingest(delivery(at(18), [node]), at(18))
    recorded = Recorded(
        engine, [e.to_dict() for e in engine.drain_events()], [n.to_dict() for n in notes], ""
    )
    write_store(tmp_path, recorded).close()
    cause = next(i for i in engine.incidents() if i["state"] == "merged")
    recording = StoreSource(tmp_path / "alert-router.sqlite").load(cause["id"])
    t = build(recording.events, recording.notifications, cause["id"])
    assert (t.state, t.merged_into) == ("merged", cause["merged_into"])
    assert t.entries[-1].kind == "root_reattributed"
