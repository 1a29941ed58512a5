"""Replies as neutral structures; each front end renders them its own way.

Texts are already in the user's language. Front ends escape every text for
their markup (Telegram HTML, Discord markdown, plain console) and decide how a
title, a table or a button looks.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Title:
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    """Rows of cells, shown aligned (monospace) where the platform allows."""

    rows: list[list[str]]
    header: list[str] | None = None


@dataclass(frozen=True)
class Code:
    text: str


Block = Title | Paragraph | Table | Code


@dataclass(frozen=True)
class Button:
    label: str
    action: str | None = None  # short callback payload, see bots/core/actions.py
    url: str | None = None


@dataclass(frozen=True)
class Image:
    png: bytes
    caption: str = ""


@dataclass(frozen=True)
class Document:
    """A file sent with the reply (a CSV export), under its own name."""

    data: bytes
    filename: str
    caption: str = ""


@dataclass
class Reply:
    blocks: list[Block] = field(default_factory=list)
    buttons: list[list[Button]] = field(default_factory=list)
    image: Image | None = None
    document: Document | None = None
    # Replace the message whose button was pressed instead of sending a new one.
    edit: bool = False
    # Send to the user's private chat rather than where the message came from.
    private: bool = False
    # Discord: visible only to the user (ephemeral). Telegram ignores it.
    personal: bool = True

    @classmethod
    def text(cls, *paragraphs: str, **options: object) -> Reply:
        return cls(blocks=[Paragraph(p) for p in paragraphs], **options)  # type: ignore[arg-type]

    def plain(self) -> str:
        """Every text of the reply, one block per line (console, logs of tests, search)."""
        lines: list[str] = []
        for block in self.blocks:
            if isinstance(block, Table):
                if block.header:
                    lines.append("  ".join(block.header))
                lines.extend("  ".join(row) for row in block.rows)
            else:
                lines.append(block.text)
        for row in self.buttons:
            lines.append(" | ".join(f"[{b.label}]" for b in row))
        return "\n".join(lines)
