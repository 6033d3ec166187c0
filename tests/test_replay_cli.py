"""`alert-router replay` as a user runs it: the contract's exit codes, messages and output."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "examples/cluster.prom"
STORM = ROOT / "examples/node-down.jsonl"


def replay(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli.main", "replay", *args], capture_output=True, text=True, cwd=cwd
    )


def test_bundled_storm_pages_once_and_resolves(tmp_path):
    out = tmp_path / "notifications.jsonl"
    events = tmp_path / "events.jsonl"
    done = replay(
        "--topology", str(CLUSTER), "--alerts", str(STORM), "--out", str(out), "--events", str(events)
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [n["action"] for n in lines] == ["page", "resolve"]
    assert lines[0]["root"]["entity"].startswith("node/default/")
    assert lines[0]["at"].endswith("Z") and len(lines[0]["at"]) == 24
    summary = json.loads(done.stderr.strip().splitlines()[-1])
    assert summary["pages"] == 1 and summary["deliveries"] == 20 and summary["skipped_lines"] == 0
    kinds = {json.loads(line)["kind"] for line in events.read_text().splitlines()}
    assert {"alert_fired", "symptom_attached", "paged", "resolved"} <= kinds


def test_output_is_byte_identical_between_runs(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (first, second):
        assert replay("--topology", str(CLUSTER), "--alerts", str(STORM), "--out", str(out)).returncode == 0
    assert first.read_bytes() == second.read_bytes()


def test_malformed_lines_are_reported_with_their_number_and_skipped(tmp_path):
    lines = STORM.read_text().splitlines()
    good = json.loads(lines[0])
    wrong_version = json.loads(lines[1])
    wrong_version["payload"]["version"] = "3"
    missing = json.loads(lines[2])
    del missing["payload"]["alerts"][0]["fingerprint"]
    broken = [lines[0], "{not json", json.dumps(wrong_version), json.dumps(missing), "", *lines[3:]]
    stream = tmp_path / "broken.jsonl"
    stream.write_text("\n".join(broken) + "\n")
    out = tmp_path / "out.jsonl"
    done = replay("--topology", str(CLUSTER), "--alerts", str(stream), "--out", str(out))
    assert done.returncode == 0
    assert f"{stream}:2: not valid JSON" in done.stderr
    assert f"{stream}:3: payload.version" in done.stderr
    assert f"{stream}:4: payload.alerts.0.fingerprint: Field required" in done.stderr
    summary = json.loads(done.stderr.strip().splitlines()[-1])
    assert summary["skipped_lines"] == 3
    # Nothing accepted so far was lost: the storm still pages.
    assert '"action":"page"' in out.read_text()
    assert good["payload"]["version"] == "4"


def test_missing_alerts_file_is_an_error_naming_it(tmp_path):
    out = tmp_path / "out.jsonl"
    done = replay("--topology", str(CLUSTER), "--alerts", str(tmp_path / "nope.jsonl"), "--out", str(out))
    assert done.returncode == 2
    assert "nope.jsonl" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()  # nothing written before every input was read


def test_unknown_topology_format_is_an_error_naming_the_file(tmp_path):
    weird = tmp_path / "cluster.txt"
    weird.write_text("hello: [this is not a topology\n")
    done = replay("--topology", str(weird), "--alerts", str(STORM))
    assert done.returncode == 2
    assert str(weird) in done.stderr and "Traceback" not in done.stderr


def test_bad_engine_config_names_the_key(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("engine:\n  reopen_window: soon\n")
    done = replay("--topology", str(CLUSTER), "--alerts", str(STORM), "--config", str(config))
    assert done.returncode == 2
    assert "engine.reopen_window" in done.stderr


def on_a_terminal(*args: str, stdout_too: bool = True) -> tuple[str, bytes]:
    """Run `replay` with stderr (and stdout) on a pseudo-terminal: (what the terminal shows,
    what stdout wrote when it was a pipe)."""
    master, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "router.cli.main", "replay", *args],
        cwd=ROOT,
        stdout=terminal if stdout_too else subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child has closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    piped = process.stdout.read() if process.stdout else b""
    assert process.wait(60) == 0
    os.close(master)
    return shown.decode().replace("\r\n", "\n"), piped


def test_on_a_terminal_replay_prints_incidents_roots_and_symptoms_not_json(tmp_path):
    out = tmp_path / "n.jsonl"
    piped = replay("--topology", str(CLUSTER), "--alerts", str(STORM), "--out", str(out))
    summary = json.loads(piped.stderr.strip().splitlines()[-1])
    notes = [json.loads(line) for line in out.read_text().splitlines()]
    page = next(n for n in notes if n["action"] == "page")
    shown, _ = on_a_terminal("--topology", str(CLUSTER), "--alerts", str(STORM))
    assert '{"' not in shown  # no JSON for a person
    assert f"{summary['incidents']} incidents, {summary['notifications']} notifications" in shown
    assert f"{summary['deliveries']} deliveries, {summary['alerts_received']} alerts" in shown
    root = page["root"]
    assert f"{page['incident']}  closed, paged {page['at'][11:19]}" in shown
    assert f"{root['alert']['alertname']} on node {root['entity'].split('/')[-1]}" in shown
    assert f"{len(page['symptoms'])} symptoms (" in shown
    assert f"{page['symptoms'][0]['alertname']} on " in shown
    assert f"{page['at'][11:19]}  page     {page['incident']}" in shown  # the notifications, one line each


def test_with_stdout_piped_the_notifications_stay_json_lines(tmp_path):
    out = tmp_path / "n.jsonl"
    assert replay("--topology", str(CLUSTER), "--alerts", str(STORM), "--out", str(out)).returncode == 0
    shown, piped = on_a_terminal("--topology", str(CLUSTER), "--alerts", str(STORM), stdout_too=False)
    assert piped == out.read_bytes()  # the contract, byte for byte
    assert "incidents," in shown and '{"' not in shown
