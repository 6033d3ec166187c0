"""Headless Chromium over the DevTools protocol: load a page, record what it logged and what it
requested, query its DOM, screenshot it, print it. A development tool (the HTML export's tests
and scripts/screenshot_timeline.py), not used by the router itself.

Chromium is Debian's `chromium` package (scripts/install-externals.sh); `CHROMIUM` overrides the
path. It runs with a throw-away profile and every background service off, so the only request
a self-contained page may cause is the page itself."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)


def find_chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass
class PageReport:
    url: str
    console: list[str] = field(default_factory=list)  # console calls, log entries, exceptions
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    values: dict[str, Any] = field(default_factory=dict)  # results of the evaluated expressions
    print_values: dict[str, Any] = field(default_factory=dict)  # the same, in print media
    screenshot: Path | None = None
    pdf: Path | None = None


class _Session:
    """One websocket to the browser; commands to a page go through its flat session id."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.waiting:
                self.waiting.pop(data["id"]).set_result(data)
            elif "method" in data:
                self.events.append(data)
                self.arrived.set()
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("the browser closed the DevTools connection"))

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> Any:
        ident = next(self.ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[ident] = future
        await self.ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    async def wait_for(self, method: str, timeout: float) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for event in self.events:
                if event["method"] == method:
                    return event
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"no {method} within {timeout}s")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)


async def _port(profile: Path, process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    marker = profile / "DevToolsActivePort"
    for _ in range(int(timeout * 10)):
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with status {process.returncode} before DevTools was up")
        if marker.is_file():
            first = marker.read_text().splitlines()[:1]
            if first and first[0].isdigit():
                return int(first[0])
        await asyncio.sleep(0.1)
    raise TimeoutError("chromium did not open its DevTools port")


def _describe_console(event: dict[str, Any]) -> str | None:
    params = event["params"]
    if event["method"] == "Runtime.consoleAPICalled":
        args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
        return f"console.{params.get('type')}: {args}"
    if event["method"] == "Log.entryAdded":
        entry = params["entry"]
        return f"log {entry.get('level')} ({entry.get('source')}): {entry.get('text')}"
    if event["method"] == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return f"exception: {details.get('text')} {details.get('exception', {}).get('description', '')}"
    return None


async def inspect_page(
    path: Path,
    *,
    expressions: dict[str, str] | None = None,
    print_expressions: dict[str, str] | None = None,
    screenshot: Path | None = None,
    pdf: Path | None = None,
    width: int = 1200,
    max_height: int | None = None,
    down_to: str | None = None,
    chromium: str | None = None,
) -> PageReport:
    """Load `path` in a fresh headless Chromium and report on it. The screenshot is the whole
    page, or its top `max_height` pixels, or the page down to the element `down_to` (a CSS
    selector) and a small margin."""
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (scripts/install-externals.sh installs it)")
    url = Path(path).resolve().as_uri()
    report = PageReport(url)
    profile = Path(tempfile.mkdtemp(prefix="alert-router-chromium-"))
    process = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = await _port(profile, process)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/version") as response:
                browser_url = (await response.json())["webSocketDebuggerUrl"]
            async with http.ws_connect(browser_url, max_msg_size=0) as ws:
                cdp = _Session(ws)
                target = await cdp.send("Target.createTarget", {"url": "about:blank"})
                attached = await cdp.send(
                    "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
                )
                session = attached["sessionId"]
                for domain in ("Runtime", "Log", "Network", "Page"):
                    await cdp.send(f"{domain}.enable", session=session)
                await cdp.send(
                    "Emulation.setDeviceMetricsOverride",
                    {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                    session=session,
                )
                cdp.events.clear()
                await cdp.send("Page.navigate", {"url": url}, session=session)
                await cdp.wait_for("Page.loadEventFired", 30)
                await asyncio.sleep(0.3)  # late console messages and requests
                report.values = await _evaluate(cdp, session, expressions or {})
                if screenshot is not None:
                    metrics = await cdp.send("Page.getLayoutMetrics", session=session)
                    size = metrics.get("cssContentSize") or metrics["contentSize"]
                    height = min(size["height"], max_height) if max_height else size["height"]
                    if down_to:
                        where = (
                            f"document.querySelector({json.dumps(down_to)}).getBoundingClientRect().bottom"
                        )
                        bottom = await _evaluate(cdp, session, {"y": where})
                        height = min(height, float(bottom["y"]) + 16)
                    shot = await cdp.send(
                        "Page.captureScreenshot",
                        {
                            "format": "png",
                            "captureBeyondViewport": True,
                            "clip": {"x": 0, "y": 0, "width": size["width"], "height": height, "scale": 1},
                        },
                        session=session,
                    )
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    screenshot.write_bytes(base64.b64decode(shot["data"]))
                    report.screenshot = screenshot
                if print_expressions or pdf is not None:
                    await cdp.send("Emulation.setEmulatedMedia", {"media": "print"}, session=session)
                    report.print_values = await _evaluate(cdp, session, print_expressions or {})
                if pdf is not None:
                    printed = await cdp.send(
                        "Page.printToPDF", {"landscape": True, "printBackground": True}, session=session
                    )
                    pdf.parent.mkdir(parents=True, exist_ok=True)
                    pdf.write_bytes(base64.b64decode(printed["data"]))
                    report.pdf = pdf
                await asyncio.sleep(0.1)
                for event in cdp.events:
                    if event.get("sessionId") != session:
                        continue
                    if event["method"] == "Network.requestWillBeSent":
                        report.requests.append(event["params"]["request"]["url"])
                    elif (text := _describe_console(event)) is not None:
                        report.console.append(text)
                with contextlib.suppress(Exception):
                    await cdp.send("Browser.close")
                cdp.reader.cancel()
    finally:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
    return report


async def _evaluate(cdp: _Session, session: str, expressions: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, expression in expressions.items():
        result = await cdp.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{name}: {result['exceptionDetails'].get('text')}")
        out[name] = result["result"].get("value")
    return out


def inspect_page_sync(path: Path, **kwargs: Any) -> PageReport:
    return asyncio.run(inspect_page(path, **kwargs))
