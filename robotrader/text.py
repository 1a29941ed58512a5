"""Text from users, made safe to store and compare."""

from __future__ import annotations

import unicodedata

_KEEP = {"\n", "\t"}


def clean_text(text: str, *, max_length: int = 4096) -> str:
    """Drop control characters (PostgreSQL refuses NUL in text) and cap the length."""
    return "".join(
        ch for ch in text[: max_length * 2] if ch in _KEEP or unicodedata.category(ch) != "Cc"
    )[:max_length]
