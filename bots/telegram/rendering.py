"""Neutral replies as Telegram HTML messages with inline keyboards."""

from __future__ import annotations

from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bots.core.replies import Code, Paragraph, Reply, Table, Title

MAX_MESSAGE = 4096


def _table_lines(table: Table) -> list[str]:
    rows = ([table.header] if table.header else []) + table.rows
    if not rows:
        return []
    widths = [
        max(len(str(row[i])) for row in rows if i < len(row)) for i in range(max(map(len, rows)))
    ]
    return [
        "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]


# Each block as (opening tag, raw text, closing tag): escaped and wrapped only once
# it has been cut to size, so a cut never falls inside a tag or an entity.
_Piece = tuple[str, str, str]


def _pieces(reply: Reply) -> list[_Piece]:
    pieces: list[_Piece] = []
    for block in reply.blocks:
        if isinstance(block, Title):
            pieces.append(("<b>", block.text, "</b>"))
        elif isinstance(block, Paragraph):
            pieces.append(("", block.text, ""))
        elif isinstance(block, Table):
            lines = _table_lines(block)
            if lines:
                pieces.append(("<pre>", "\n".join(lines), "</pre>"))
        elif isinstance(block, Code):
            pieces.append(("<code>", block.text, "</code>"))
    return [p for p in pieces if p[1]]


def units(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP is 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _cut(raw: str, budget: int) -> list[str]:
    """``raw`` in pieces whose escaped length is at most ``budget``; cut after a line
    where one fits, else between characters (never inside an escape like ``&amp;``)."""
    cuts: list[str] = []
    start = 0
    while start < len(raw):
        size, end, line_end = 0, start, 0
        while end < len(raw):
            cost = units(escape(raw[end]))
            if size + cost > budget:
                break
            size += cost
            end += 1
            if raw[end - 1] == "\n":
                line_end = end
        if end < len(raw) and line_end > start:
            end = line_end
        cuts.append(raw[start:end].removesuffix("\n"))
        start = max(end, start + 1)
    return [c for c in cuts if c.strip()]


def render_messages(reply: Reply, limit: int = MAX_MESSAGE) -> list[str]:
    """The reply as Telegram HTML messages of at most ``limit`` characters each, as sent.

    Blocks are packed into as few messages as fit; a block too long for one message is
    cut (at line ends where it can) and each part keeps its own tags (``<pre>``...).
    Lengths are measured after escaping, in UTF-16 units, as Telegram measures them.
    """
    parts: list[str] = []
    for opening, raw, closing in _pieces(reply):
        whole = f"{opening}{escape(raw)}{closing}"
        if units(whole) <= limit:
            parts.append(whole)
            continue
        budget = limit - units(opening) - units(closing)
        parts.extend(f"{opening}{escape(cut)}{closing}" for cut in _cut(raw, budget))
    messages: list[str] = []
    for part in parts:
        candidate = f"{messages[-1]}\n\n{part}" if messages else part
        if messages and units(candidate) <= limit:
            messages[-1] = candidate
        else:
            messages.append(part)
    return messages


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
