"""The console front end: the same chat commands typed in a terminal, for one local user.

Buttons are shown as numbered choices: type the number to press one. Lets the
whole product be tried with no chat platform at all (`robotrader chat`).

A chat keeps every message with its buttons on screen; a terminal only has the
last numbers printed. So when an answer in a dialog is refused (the dialog stays
at its step), the step's question is printed again under the refusal, and its
buttons keep their numbers.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.delivery import OutboxDelivery, Outcome
from bots.core.digest import Outgoing
from bots.core.rate_limit import RateLimiter
from bots.core.replies import Button, Code, Paragraph, Reply, Table, Title
from robotrader.app import App
from robotrader.enums import Platform

PROMPT = "robotrader> "


def render_plain(reply: Reply, numbered: list[Button]) -> str:
    """Text for a terminal; buttons get numbers continuing ``numbered``."""
    lines: list[str] = []
    for block in reply.blocks:
        if isinstance(block, Title):
            lines.append(f"== {block.text} ==")
        elif isinstance(block, Paragraph | Code):
            lines.append(block.text)
        elif isinstance(block, Table):
            rows = ([block.header] if block.header else []) + block.rows
            if rows:
                width = [
                    max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))
                ]
                lines.extend(
                    "  ".join(c.ljust(width[i]) for i, c in enumerate(r)).rstrip() for r in rows
                )
    for row in reply.buttons:
        labels = []
        for button in row:
            numbered.append(button)
            target = f" ({button.url})" if button.url else ""
            labels.append(f"[{len(numbered)}] {button.label}{target}")
        lines.append("   ".join(labels))
    return "\n".join(lines)


class ConsoleDelivery(OutboxDelivery):
    """Notifications printed to the terminal, through the same claim-and-settle loop as chats."""

    platform = Platform.CONSOLE

    def __init__(self, app: App, out: TextIO) -> None:
        # One at a time: lines printed to a terminal keep the order they were written in.
        super().__init__(app, worker="console", concurrency=1)
        self.out = out

    def fits(self, reply: Reply) -> bool:
        return True  # a terminal takes a digest of any length in one piece

    async def send(self, message: Outgoing) -> Outcome:
        print("\n🔔 " + render_plain(message.reply, []), file=self.out, flush=True)
        return await self.accepted(message)


class Console:
    def __init__(self, app: App, *, out: TextIO = sys.stdout, user: str | None = None) -> None:
        self.app = app
        # The person at this terminal is the only user: a flood limit would only get in the
        # way of pasted commands (and of a /newbot dialog answered quickly).
        self.core = ChatCore(app, rate_limiter=RateLimiter.unlimited())
        self.out = out
        self.ctx = ChatContext(
            platform=Platform.CONSOLE,
            platform_user_id=user or getpass.getuser(),
            chat_id="console",
            is_private=True,
            client_language=None,
            display_name=user or getpass.getuser(),
            progress=self.progress,
        )
        self.buttons: list[Button] = []
        # The latest reply with buttons, and the dialog step it was shown at: a refusal
        # at that same step asks it again.
        self.question: Reply | None = None
        self.question_step: tuple[str, str] | None = None
        self.charts = 0
        self.delivery = ConsoleDelivery(app, out)

    async def progress(self, reply: Reply) -> None:
        """A terminal cannot edit a line already printed: each step is a line of its own."""
        print(render_plain(reply, []).replace("\n", "  "), file=self.out, flush=True)

    def _dialog_step(self) -> tuple[str, str] | None:
        dialog = self.core.dialogs.get(self.ctx.identity_key)
        return (dialog.name, dialog.step) if dialog else None

    def show(self, replies: list[Reply], asked: tuple[str, str] | None = None) -> None:
        """Print ``replies``; ``asked`` is the dialog step the user was answering, if any."""
        step = self._dialog_step()
        refused = not any(reply.buttons for reply in replies)
        if refused and asked is not None and asked == step == self.question_step:
            assert self.question is not None
            replies = [*replies, self.question]
        self.buttons = []
        for reply in replies:
            if reply.buttons:
                self.question, self.question_step = reply, step
            if reply.image is not None:
                print(f"🖼  {reply.image.caption}: {self._save(reply.image.png)}", file=self.out)
            if reply.document is not None:
                saved = self._save_document(reply.document.data, reply.document.filename)
                print(f"📄 {reply.document.caption}: {saved}", file=self.out)
            text = render_plain(reply, self.buttons)
            if text:
                print(text, file=self.out, flush=True)

    def _save(self, png: bytes) -> Path:
        """Charts go to files a terminal user can open."""
        self.charts += 1
        folder = self.app.settings.data_dir / "charts"
        folder.mkdir(parents=True, exist_ok=True)
        path = (folder / f"chart-{int(time.time())}-{self.charts}.png").resolve()
        path.write_bytes(png)
        return path

    def _save_document(self, data: bytes, filename: str) -> Path:
        """Documents (CSV exports) too, under their own name."""
        folder = self.app.settings.data_dir / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        path = (folder / Path(filename).name).resolve()
        path.write_bytes(data)
        return path

    async def handle_line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        asked = self._dialog_step()
        if line.isdigit() and 0 < int(line) <= len(self.buttons):
            button = self.buttons[int(line) - 1]
            if button.action:
                self.show(await self.core.handle_action(self.ctx, button.action), asked)
            return
        if line.startswith("/"):
            asked = None  # another command, not an answer to the step
        elif asked is None:
            line = "/" + line  # in a terminal, "bots" means /bots
        self.show(await self.core.handle_text(self.ctx, line), asked)

    async def deliver_notifications(self) -> int:
        """Print what is pending for this user; returns how many were claimed."""
        return await self.delivery.deliver_pending()


def _read_stdin(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    """In a daemon thread: a blocked read must never keep the process from exiting."""
    for line in iter(sys.stdin.readline, ""):
        loop.call_soon_threadsafe(queue.put_nowait, line)
    loop.call_soon_threadsafe(queue.put_nowait, None)


async def run_console(app: App, stop: asyncio.Event) -> None:
    """Read commands from stdin; ``/quit`` stops the product, end of input just ends the console."""
    console = Console(app)
    await console.handle_line("/start")
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_read_stdin, args=(loop, lines), daemon=True).start()
    print(PROMPT, end="", flush=True)
    while not stop.is_set():
        try:
            line = await asyncio.wait_for(lines.get(), timeout=1.0)
        except TimeoutError:
            if await console.deliver_notifications():
                print(PROMPT, end="", flush=True)
            continue
        if line is None:
            return
        if line.strip() in ("/quit", "quit", "exit"):
            stop.set()
            return
        await console.handle_line(line)
        await console.deliver_notifications()
        print(PROMPT, end="", flush=True)
