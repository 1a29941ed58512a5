"""Does a message look like an exchange API key or secret? (Used in public chats.)

Exchange keys are long runs of random letters and digits (Binance: 64, Bybit:
18 and 36, OKX: UUIDs and 32 hex). We flag any word of 18+ characters that
mixes digits with letters and is as random as such keys are, and never plain
words, URLs or numbers.
"""

from __future__ import annotations

import math
import re
from collections import Counter

_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-]{18,}")
_URL = re.compile(r"https?://\S+")


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def looks_like_secret(text: str) -> bool:
    text = _URL.sub(" ", text)
    for token in _TOKEN.findall(text):
        core = token.replace("-", "")
        if len(core) < 18:
            continue
        has_digit = any(c.isdigit() for c in core)
        has_alpha = any(c.isalpha() for c in core)
        if has_digit and has_alpha and _entropy(core) >= 3.3:
            return True
    return False
