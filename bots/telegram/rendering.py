"""Neutral replies as Telegram HTML messages with inline keyboards."""

from __future__ import annotations

from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bots.core.replies import Code, Paragraph, Reply, Table, Title

MAX_MESSAGE = 4096


def _table(table: Table) -> str:
    rows = ([table.header] if table.header else []) + table.rows
    if not rows:
        return ""
    widths = [
        max(len(str(row[i])) for row in rows if i < len(row)) for i in range(max(map(len, rows)))
    ]
    lines = [
        "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    return f"<pre>{escape(chr(10).join(lines))}</pre>"


def render_text(reply: Reply) -> str:
    parts: list[str] = []
    for block in reply.blocks:
        if isinstance(block, Title):
            parts.append(f"<b>{escape(block.text)}</b>")
        elif isinstance(block, Paragraph):
            parts.append(escape(block.text))
        elif isinstance(block, Table):
            parts.append(_table(block))
        elif isinstance(block, Code):
            parts.append(f"<code>{escape(block.text)}</code>")
    return "\n\n".join(p for p in parts if p)


def split_message(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split at block boundaries so no HTML tag is cut in two."""
    if len(text) <= limit:
        return [text]
    chunks, current = [], ""
    for block in text.split("\n\n"):
        candidate = f"{current}\n\n{block}" if current else block
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            chunks.append(current)
        current = block if len(block) <= limit else escape(block[: limit - 20]) + "…"
    if current:
        chunks.append(current)
    return chunks


def render_keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    rows = [
        [
            InlineKeyboardButton(b.label, url=b.url)
            if b.url
            else InlineKeyboardButton(b.label, callback_data=b.action)
            for b in row
        ]
        for row in reply.buttons
    ]
    return InlineKeyboardMarkup(rows)
