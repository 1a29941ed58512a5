"""Logging as ``event key=value`` lines, with every known secret masked.

Secrets (bot tokens, API keys read from the vault, webhook secrets) are
registered with `redact`. A log-record factory scrubs them from each record as
it is made, message and exception text alike, so no handler (a file, stderr,
pytest's capture) ever sees them, whichever library logged them.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import quote

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
MASK = "***"
_base_factory = logging.getLogRecordFactory()


def redact(*values: str | None) -> None:
    """Never let these strings reach a log line, as they are or URL-encoded.

    (A bot token in a file-download URL is percent-encoded: ``123%3AABC...``.)
    """
    global _secrets
    forms = {form for v in values if v and len(v) >= 6 for form in (v, quote(v, safe=""))}
    with _lock:
        _secrets = _secrets | forms


def scrub(text: str) -> str:
    secrets = _secrets
    if not secrets:
        return text
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _scrubbing_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    if _secrets:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
    return record


logging.setLogRecordFactory(_scrubbing_factory)


# A log file kept by a terminal session stays small: a few rotated files at most.
LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 3


def configure_logging(level: str = "INFO", *, file: Path | None = None) -> None:
    """Log records to stderr, or to ``file`` (its folder made) when the terminal is the
    chat itself (`robotrader chat`): there, only what is meant for the user is printed."""
    handler: logging.Handler
    if file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
        )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter that would print request URLs (the Bot API puts the token in the path).
    for noisy in ("httpx", "httpcore", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
