"""`alert-router send` against the real service on a loopback port (the recorded example storm
arrives in order, its times moved to now, and the service correlates it as replay does; bad
input is `FILE:LINE` and exit 2 with nothing sent; an unreachable service is exit 1), and
`alert-router demo`: one incident with its symptoms, in the API and the HTML timeline."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from ground.errors import InputError
from ground.times import ZERO_TIME, format_time, parse_time
from router.cli.cmd_demo import STORM, TOPOLOGY, demo
from router.cli.cmd_replay import read_stream
from router.cli.cmd_send import plan
from router.service.config import load_settings
from tests.service_harness import ROOT, ServeProcess, serving, settings_for

RECORDED = [json.loads(line) for line in STORM.read_text().splitlines()]
T0 = parse_time(RECORDED[0]["received_at"])


async def send(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router.cli.main",
        "send",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, err.decode()


def stored(settings) -> list[tuple[str, dict]]:
    conn = sqlite3.connect(settings.storage.path)
    try:
        rows = conn.execute("SELECT body FROM deliveries ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [(line["received_at"], line["payload"]) for line in (json.loads(body) for (body,) in rows)]


def example_settings(tmp_path: Path, **overrides):
    return settings_for(tmp_path, topology={"files": [str(TOPOLOGY)]}, **overrides)


async def test_send_posts_the_recorded_storm_in_order_with_its_times_moved_to_now(tmp_path):
    settings = example_settings(tmp_path)
    async with serving(settings) as svc:
        code, err = await send(str(STORM), "--url", svc.url, "--no-wait")
        assert code == 0, err
        assert f"sent {len(RECORDED)} deliveries (48 alerts) to {svc.url}/api/v1/alertmanager" in err
        engine = svc.service.engine
        assert engine.counters["deliveries"] == len(RECORDED)
        roots = [i for i in engine.incidents() if not i["merged_into"]]
        assert len(roots) == 1 and roots[0]["root"]["entity"].startswith("node/default/ip-10-0-0-6")
        assert len(roots[0]["symptoms"]) == 10
    arrived = stored(settings)
    assert len(arrived) == len(RECORDED)
    for (received, payload), line in zip(arrived, RECORDED, strict=True):
        original = line["payload"]
        assert payload["groupKey"] == original["groupKey"]  # in order, everything else as recorded
        assert [a["fingerprint"] for a in payload["alerts"]] == [a["fingerprint"] for a in original["alerts"]]
        assert [a["labels"] for a in payload["alerts"]] == [a["labels"] for a in original["alerts"]]
        for sent, was in zip(payload["alerts"], original["alerts"], strict=True):
            # The recorded distance before the first delivery is kept; the rest happen now.
            before = (T0 - parse_time(was["startsAt"])).total_seconds()
            lag = (parse_time(received) - parse_time(sent["startsAt"])).total_seconds()
            assert abs(lag - before) < 5, (sent["startsAt"], received)
            assert (sent["endsAt"] == ZERO_TIME) == (was["endsAt"] == ZERO_TIME)


def test_the_plan_keeps_the_recorded_pace_and_moves_every_time_with_it():
    now = datetime(2030, 1, 1, tzinfo=UTC)
    paced = plan(read_stream(STORM), str(STORM), now=now, speed=1.0, max_wait=60)
    gaps = [
        (parse_time(b["received_at"]) - parse_time(a["received_at"])).total_seconds()
        for a, b in itertools.pairwise(RECORDED)
    ]
    expected = [0.0]
    for gap in gaps:
        expected.append(expected[-1] + min(gap, 60))
    assert [d.offset for d in paced] == expected
    assert max(gaps) > 60 and paced[-1].offset < 180  # the 25 quiet minutes shortened to one
    first = paced[0].payload["alerts"][0]
    assert first["startsAt"] == format_time(
        now - (T0 - parse_time(RECORDED[0]["payload"]["alerts"][0]["startsAt"]))
    )
    # An end recorded inside the shortened quiet part stays inside it, before the resolve is sent.
    last = paced[-1]
    ended = [parse_time(a["endsAt"]) for a in last.payload["alerts"] if a["endsAt"] != ZERO_TIME]
    quiet_from, quiet_to = (now + timedelta(seconds=d.offset) for d in paced[9:11])
    assert ended and all(quiet_from < end < quiet_to for end in ended)
    assert all(end <= now + timedelta(seconds=last.offset) for end in ended)
    twice = plan(read_stream(STORM), str(STORM), now=now, speed=2.0)
    assert twice[1].offset == expected[1] / 2
    kept = plan(read_stream(STORM), str(STORM), now=now, keep_times=True)
    assert kept[0].payload == RECORDED[0]["payload"]


async def test_bad_input_names_the_file_and_line_and_sends_nothing(tmp_path):
    lines = STORM.read_text().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text(
        "\n".join([lines[0], lines[1], '{"received_at": "2026-10-06T01:16:00Z"}', *lines[3:]]) + "\n"
    )
    settings = example_settings(tmp_path)
    async with serving(settings) as svc:
        code, err = await send(str(broken), "--url", svc.url)
        assert code == 2 and f"{broken}:3: payload: Field required" in err and "Traceback" not in err
        for args, words in [
            ((str(tmp_path / "missing.jsonl"), "--url", svc.url), "cannot read"),
            ((str(STORM), "--url", "localhost:9095"), "--url: 'localhost:9095' is not an http(s) URL"),
            ((str(STORM), "--url", svc.url, "--speed", "0"), "--speed: must be above 0"),
            ((str(STORM), "--url", svc.url, "--max-wait", "soon"), "--max-wait: invalid duration"),
            (
                (str(STORM), "--url", svc.url, "--token-file", str(tmp_path / "none")),
                "--token-file: cannot read",
            ),
        ]:
            code, err = await send(*args)
            assert code == 2 and words in err and "Traceback" not in err, (args, err)
        assert svc.service.engine.counters["deliveries"] == 0  # nothing was sent


async def test_refusals_by_the_service_and_an_unreachable_one(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    settings = example_settings(tmp_path, auth={"bearer_token_file": str(token)})
    async with serving(settings) as svc:
        code, err = await send(str(STORM), "--url", svc.url, "--no-wait")
        assert code == 2 and f"{STORM}:1: refused by {svc.url}/api/v1/alertmanager: 401 unauthorized" in err
        code, err = await send(
            str(STORM), "--url", svc.url + "/api/v1/alertmanager", "--no-wait", "--token-file", str(token)
        )
        assert code == 0, err
        assert svc.service.engine.counters["deliveries"] == len(RECORDED)
        url = svc.url
    code, err = await send(str(STORM), "--url", url, "--no-wait")  # the service is gone
    assert code == 1 and f"{STORM}:1: {url}/api/v1/alertmanager: " in err and "after 5 attempts" in err
    assert "Traceback" not in err


async def test_the_demo_shows_one_incident_with_its_symptoms_in_the_api_and_the_timeline(tmp_path):
    settings = load_settings(
        None,
        {
            "server": {"listen": "127.0.0.1:0"},
            "storage": {"data_dir": str(tmp_path / "data")},
            "topology": {"files": [str(TOPOLOGY)]},
            "logging": {"level": "warning"},
        },
    )
    # The storm's firing part at its recorded pace (35 s) would be too slow here: ten times faster.
    deliveries = plan(read_stream(STORM), str(STORM), now=datetime.now(UTC), speed=10, max_wait=1)
    out = io.StringIO()
    stop = asyncio.Event()
    running = asyncio.create_task(demo(settings, deliveries, out=out, stop=stop))
    for _ in range(600):
        if "The whole recording is sent" in out.getvalue() or running.done():
            break
        await asyncio.sleep(0.05)
    text = out.getvalue()
    assert "The whole recording is sent" in text, text
    url = re.search(r"alert-router demo on (http://127\.0\.0\.1:\d+)", text).group(1)
    [api] = re.findall(r"API: +(\S+)", text)
    [timeline] = re.findall(r"timeline: +(\S+)", text)
    assert api.startswith(url) and timeline == api + "/timeline?format=html"
    assert "KubeNodeNotReady on node ip-10-0-0-6.eu-west-1.compute.internal" in text
    assert "10 symptoms (6 pod, 3 daemonset, 1 node-component)" in text
    async with aiohttp.ClientSession() as session:
        async with session.get(api) as response:
            incident = await response.json()
            assert response.status == 200 and len(incident["symptoms"]) == 10
        async with session.get(timeline) as response:
            page = await response.text()
            assert response.status == 200 and response.content_type == "text/html"
            assert incident["id"] in page and "ip-10-0-0-6" in page
    stop.set()
    assert await asyncio.wait_for(running, 30) == 0


def test_send_refuses_an_empty_stream(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="no deliveries to send"):
        plan(read_stream(empty), str(empty), now=datetime.now(UTC))


def test_run_sh_demo_runs_the_demo_end_to_end():
    """`bash scripts/run.sh --demo`, sped up and stopping once the storm is sent."""
    done = subprocess.run(
        [
            "bash",
            "scripts/run.sh",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--speed",
            "100",
            "--max-wait",
            "1s",
            "--exit",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "KubeNodeNotReady on node ip-10-0-0-6.eu-west-1.compute.internal" in done.stdout
    assert re.search(
        r"timeline: http://127\.0\.0\.1:\d+/api/v1/incidents/inc-[0-9a-f]{6}/timeline", done.stdout
    )
    assert "ready on http://127.0.0.1:" in done.stderr  # the service's own log, in text


def test_serve_says_where_it_is_and_what_to_do_next(tmp_path):
    config = tmp_path / "alert-router.yaml"
    config.write_text(f"storage: {{data_dir: {tmp_path / 'data'}}}\n")
    server = ServeProcess(config, tmp_path / "serve.log")
    try:
        deadline = time.monotonic() + 10
        while True:  # the lines after "listening" come a moment later
            records = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines()]
            if any("no topology" in r["msg"] for r in records) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        server.terminate()
    messages = [r["msg"] for r in records]
    assert (
        f"ready on {server.url}: Alertmanager's webhook POST {server.url}/api/v1/alertmanager, "
        in " ".join(messages)
    )
    assert any("no topology" in m and "alert-router demo" in m for m in messages)
    assert next(r for r in records if r["msg"] == "listening")["url"] == server.url
