"""Long replies split into Telegram messages that each fit 4,096 characters as sent.

The old splitter measured blocks before they were cut, cut an oversized block inside
its HTML (a ``<pre>`` lost its end tag) and escaped what was already escaped, so a long
table of ``<``/``&`` grew far past the limit, and the rest of the table was dropped.
Each message is checked with the Bot API emulator's own HTML parser, and what the user
reads, put back together, is the whole reply.
"""

from __future__ import annotations

import pytest

from bots.core.replies import Code, Paragraph, Reply, Table, Title
from bots.telegram.rendering import MAX_MESSAGE, render_messages
from tests.emulators.telegram import parse_html, utf16_len


def _plain(reply: Reply) -> str:
    parts = []
    for block in reply.blocks:
        if isinstance(block, Table):
            rows = ([block.header] if block.header else []) + block.rows
            parts.append("\n".join("".join(cell.strip() for cell in row) for row in rows))
        else:
            parts.append(block.text)
    return "".join("".join(parts).split())


def _check(reply: Reply) -> list[str]:
    messages = render_messages(reply)
    assert messages
    read = []
    for message in messages:
        assert utf16_len(message) <= MAX_MESSAGE, utf16_len(message)  # as sent, escaped
        text, _ = parse_html(message)  # valid HTML: every tag closed in its own message
        assert 0 < utf16_len(text) <= MAX_MESSAGE
        read.append(text)
    # Nothing lost, nothing doubled (whitespace aside: tables are padded into columns).
    assert "".join("".join(read).split()) == _plain(reply)
    return messages


ESCAPED = "<&>\"'"


@pytest.mark.parametrize("rows", [10, 300, 2000])
def test_a_long_table_of_escaped_text(rows: int) -> None:
    table = Table(
        header=["bot", "symbol", "pnl"],
        rows=[[f"R&D <{i}>", "BTC/USDT", f"{ESCAPED * 3}{i}"] for i in range(rows)],
    )
    messages = _check(Reply(blocks=[Title("Trades & <results>"), table]))
    if rows > 100:
        assert len(messages) > 1
        assert all(m.count("<pre>") == m.count("</pre>") == 1 for m in messages[1:])


def test_one_huge_paragraph_of_ampersands_and_emoji() -> None:
    _check(Reply(blocks=[Paragraph("&" * 9000 + "📈" * 3000 + "<b>" * 500)]))


def test_one_huge_line_in_a_table_and_code() -> None:
    _check(
        Reply(
            blocks=[
                Table(rows=[["<" * 5000, "&" * 5000]]),
                Code("&" * 7000),
                Paragraph("short"),
            ]
        )
    )


def test_many_small_blocks_are_packed_not_sent_one_each() -> None:
    reply = Reply(blocks=[Paragraph(f"line {i} & more") for i in range(400)])
    messages = _check(reply)
    assert len(messages) <= 3


def test_a_short_reply_is_one_message_unchanged() -> None:
    reply = Reply(blocks=[Title("Hi & bye"), Paragraph("a < b")])
    assert render_messages(reply) == ["<b>Hi &amp; bye</b>\n\na &lt; b"]
