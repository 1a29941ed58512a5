"""A small client of the Chrome DevTools Protocol: headless Chromium driven from Python.

Chromium is started with ``--remote-debugging-port=0`` and writes the port it
picked to ``DevToolsActivePort`` in its (fresh) profile directory; each page is
driven over its own WebSocket (aiohttp's client) with JSON commands
(``Page.navigate``, ``Runtime.evaluate`` ...) and events.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--no-default-browser-check",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


class ChromiumMissing(RuntimeError):
    pass


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise ChromiumMissing(
        "Chromium is not installed: `apt-get install -y chromium` (make test installs it)"
    )


@dataclass
class Browser:
    """A running headless Chromium; ``http`` is its DevTools HTTP endpoint."""

    process: subprocess.Popen[bytes]
    profile: Path
    http: str


@contextlib.contextmanager
def launch(timeout: float = 30) -> Iterator[Browser]:
    binary = chromium_binary()
    profile = Path(tempfile.mkdtemp(prefix="rt-chromium-"))
    process = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"Chromium exited with {process.returncode}: {stderr[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        yield Browser(process, profile, f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Page:
    """One tab: commands with ``send``, JavaScript with ``evaluate``, events kept in ``events``."""

    socket: aiohttp.ClientWebSocketResponse
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[message_id] = future
        payload = {"id": message_id, "method": method, "params": params}
        await self.socket.send_str(json.dumps(payload))
        reply = await asyncio.wait_for(future, timeout=30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 15) -> Any:  # noqa: ASYNC109
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still falsy after {timeout}s: {expression}")
            await asyncio.sleep(0.05)

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def problems(self) -> list[str]:
        """Console errors, exceptions and CSP refusals seen so far."""
        found = []
        for event in self.events:
            if event.get("method") == "Runtime.exceptionThrown":
                found.append(json.dumps(event["params"]["exceptionDetails"])[:500])
            elif event.get("method") == "Log.entryAdded":
                entry = event["params"]["entry"]
                if entry.get("level") == "error":
                    found.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url')}")
            elif (
                event.get("method") == "Runtime.consoleAPICalled"
                and event["params"].get("type") == "error"
            ):
                found.append(json.dumps(event["params"].get("args"))[:500])
        return found


@contextlib.asynccontextmanager
async def open_page(browser: Browser) -> AsyncIterator[Page]:
    """A new tab with a clean cookie jar, its Page, Runtime, Log and Network domains on."""
    async with aiohttp.ClientSession() as http:
        async with http.put(f"{browser.http}/json/new?about:blank") as answer:
            target = await answer.json(content_type=None)
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as socket:
            page = Page(socket)
            reader = asyncio.create_task(_read(page))
            try:
                for domain in ("Page", "Runtime", "Log", "Network"):
                    await page.send(f"{domain}.enable")
                await page.send("Network.clearBrowserCookies")
                yield page
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        async with http.get(f"{browser.http}/json/close/{target['id']}") as answer:
            await answer.read()


async def _read(page: Page) -> None:
    async for message in page.socket:
        if message.type != aiohttp.WSMsgType.TEXT:
            continue
        data = json.loads(message.data)
        future = page.pending.pop(data["id"], None) if "id" in data else None
        if future is not None and not future.done():
            future.set_result(data)
        elif "method" in data:
            page.events.append(data)
