"""Neutral replies as Discord embeds, with their buttons and select menus in a View.

A reply becomes one embed (more when it is long): its first title is the
embed's title, paragraphs are escaped Markdown, tables are monospace code
blocks. Its buttons keep their core payload as ``custom_id`` (at most 64 bytes,
well within Discord's 100), so a press goes straight back to the chat core. A
list of five or more one-button rows (a choice among many, like the strategy
step of /newbot) is shown as a select menu, as Discord users expect; Discord's
limits (5 rows of 5 buttons, 25 options a menu) are kept by folding the rest
into menus.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import discord
from discord.utils import escape_markdown

from bots.core.replies import Button, Code, Paragraph, Reply, Table, Title

EMBED_COLOUR = discord.Colour(0x2B8A3E)
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_ROWS = 5
MAX_BUTTONS_PER_ROW = 5
MAX_OPTIONS = 25
MAX_LABEL = 80
MAX_OPTION_LABEL = 100
SELECT_FROM = 5  # this many one-button rows in a row read better as a menu
IMAGE_NAME = "chart.png"
PICK_PREFIX = "rt:pick:"  # custom_id of our select menus; the chosen value is the core payload


@dataclass(frozen=True)
class Row:
    """One row of a message: buttons side by side, or a select menu of choices."""

    kind: str  # "buttons" | "select"
    buttons: list[Button] = field(default_factory=list)


def _table(table: Table) -> str:
    rows = ([table.header] if table.header else []) + table.rows
    if not rows:
        return ""
    width = max(map(len, rows))
    widths = [max(len(str(r[i])) for r in rows if i < len(r)) for i in range(width)]
    lines = ["  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    # A backtick would close the code block early; the look-alike keeps the text readable.
    body = "\n".join(lines).replace("`", "ˋ")
    return f"```\n{body}\n```"


def _block_text(block: Title | Paragraph | Table | Code) -> str:
    if isinstance(block, Title):
        return f"**{escape_markdown(block.text)}**"
    if isinstance(block, Paragraph):
        return escape_markdown(block.text)
    if isinstance(block, Table):
        return _table(block)
    return f"`{block.text.replace('`', 'ˋ')}`"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_embeds(reply: Reply) -> list[discord.Embed]:
    """The reply's text as embeds, split at block boundaries to fit Discord's limits."""
    blocks = list(reply.blocks)
    title = None
    first = blocks[0] if blocks else None
    if isinstance(first, Title):
        title = _cut(first.text, MAX_TITLE)
        blocks = blocks[1:]
    parts = [text for text in (_block_text(b) for b in blocks) if text]
    descriptions: list[str] = []
    current = ""
    for part in parts:
        part = _cut(part, MAX_DESCRIPTION)
        candidate = f"{current}\n\n{part}" if current else part
        if len(candidate) <= MAX_DESCRIPTION:
            current = candidate
            continue
        descriptions.append(current)
        current = part
    if current:
        descriptions.append(current)
    if not descriptions and title is None and reply.image is None:
        return []  # a document alone goes as a file without an embed
    embeds: list[discord.Embed] = []
    budget = MAX_EMBED_TOTAL - len(title or "")
    for index, description in enumerate(descriptions or [""]):
        if index >= MAX_EMBEDS or budget <= 1:
            break
        description = _cut(description, budget)
        budget -= len(description)
        embeds.append(
            discord.Embed(
                title=title if index == 0 else None,
                description=description or None,
                colour=EMBED_COLOUR,
            )
        )
    if reply.image is not None:
        embeds[-1].set_image(url=f"attachment://{IMAGE_NAME}")
        if reply.image.caption:
            embeds[-1].set_footer(text=_cut(reply.image.caption, 2048))
    return embeds


def render_files(reply: Reply) -> list[discord.File]:
    """The reply's attachments: its chart (shown in the embed) and its document, if any."""
    files = []
    if reply.image is not None:
        files.append(discord.File(io.BytesIO(reply.image.png), filename=IMAGE_NAME))
    if reply.document is not None:
        document = reply.document
        files.append(
            discord.File(
                io.BytesIO(document.data),
                filename=document.filename,
                description=_cut(document.caption, 1024) or None,
            )
        )
    return files


def layout(buttons: Sequence[Sequence[Button]]) -> list[Row]:
    """Discord rows for the reply's buttons (see the module docstring)."""
    rows: list[Row] = []
    run: list[Button] = []

    def flush() -> None:
        if len(run) >= SELECT_FROM:
            rows.extend(
                Row("select", run[i : i + MAX_OPTIONS]) for i in range(0, len(run), MAX_OPTIONS)
            )
        else:
            rows.extend(Row("buttons", [b]) for b in run)
        run.clear()

    seen: set[str] = set()
    for raw in buttons:
        row = []
        for b in raw:
            key = b.action or b.url or ""
            if key and key not in seen:  # Discord refuses two components with one custom_id
                seen.add(key)
                row.append(b)
        if len(row) == 1 and row[0].action:
            run.append(row[0])
            continue
        flush()
        rows.extend(
            Row("buttons", row[i : i + MAX_BUTTONS_PER_ROW])
            for i in range(0, len(row), MAX_BUTTONS_PER_ROW)
        )
    flush()
    if len(rows) <= MAX_ROWS:
        return rows
    # Too many rows for one message: every choice goes into menus, links stay buttons.
    choices = [b for row in rows for b in row.buttons if b.action]
    links = [b for row in rows for b in row.buttons if b.url and not b.action]
    folded = [
        Row("select", choices[i : i + MAX_OPTIONS]) for i in range(0, len(choices), MAX_OPTIONS)
    ]
    folded += [
        Row("buttons", links[i : i + MAX_BUTTONS_PER_ROW])
        for i in range(0, len(links), MAX_BUTTONS_PER_ROW)
    ]
    return folded[:MAX_ROWS]


class ReplyView(discord.ui.View):
    """The components of one reply; pressing them is answered by the front end's dispatcher.

    The View lays the components out and, after ``timeout`` seconds without a
    press, greys them out (the dialog they belong to has expired by then). The
    presses themselves are handled in one place, ``on_interaction``, so a button
    still works after a restart, when no View is alive any more.
    """

    message: discord.Message | discord.InteractionMessage | discord.WebhookMessage | None

    def __init__(self, rows: list[Row], *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.message = None
        for index, row in enumerate(rows):
            if row.kind == "select":
                self.add_item(
                    discord.ui.Select(
                        custom_id=f"{PICK_PREFIX}{index}",
                        options=[
                            discord.SelectOption(
                                label=_cut(b.label, MAX_OPTION_LABEL) or "·", value=str(b.action)
                            )
                            for b in row.buttons
                        ],
                        row=index,
                    )
                )
                continue
            for b in row.buttons:
                label = _cut(b.label, MAX_LABEL) or "·"
                if b.url:
                    self.add_item(discord.ui.Button(label=label, url=b.url, row=index))
                else:
                    self.add_item(
                        discord.ui.Button(
                            label=label,
                            custom_id=b.action,
                            style=discord.ButtonStyle.secondary,
                            row=index,
                        )
                    )

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button | discord.ui.Select):
                item.disabled = True
        if self.message is not None:
            # Gone, or the interaction token expired: nothing left to grey out then.
            with contextlib.suppress(discord.HTTPException):
                await self.message.edit(view=self)


def render_view(reply: Reply, *, timeout: float) -> ReplyView | None:
    rows = layout(reply.buttons)
    return ReplyView(rows, timeout=timeout) if rows else None


def message_kwargs(reply: Reply, view: ReplyView | None) -> dict[str, Any]:
    """Keyword arguments for ``send``/``followup.send`` (no view key when there is none)."""
    kwargs: dict[str, Any] = {"embeds": render_embeds(reply)}
    files = render_files(reply)
    if files:
        kwargs["files"] = files
    if view is not None:
        kwargs["view"] = view
    return kwargs


def is_empty(reply: Reply) -> bool:
    return (
        not reply.blocks and not reply.buttons and reply.image is None and reply.document is None
    )
