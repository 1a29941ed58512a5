"""The progress message of /backtest compare and /optimize: one message, edited in place."""

from __future__ import annotations

import time

from bots.core.invocation import Invocation
from bots.core.replies import Paragraph, Reply
from robotrader.use_cases.research_runs import ProgressReport

EDIT_EVERY_SECONDS = 1.0  # Telegram allows about one edit a second per chat
BAR_CELLS = 10


def bar(fraction: float) -> str:
    filled = min(BAR_CELLS, max(0, round(fraction * BAR_CELLS)))
    return "▓" * filled + "░" * (BAR_CELLS - filled)


def progress_reply(inv: Invocation, headline: str, stage: str, fraction: float) -> Reply:
    line = f"{bar(fraction)} {round(fraction * 100)}% — {inv.t(f'research.stage.{stage}')}"
    return Reply(blocks=[Paragraph(headline), Paragraph(line)])


def progress_reporter(inv: Invocation, headline: str) -> ProgressReport | None:
    """Shows each (stage, fraction) the use case reports, at most once a second; None where
    the front end has no progress message (the answer then simply comes when done).
    """
    show = inv.ctx.progress
    if show is None:
        return None
    shown: str | None = None
    shown_at = 0.0

    async def report(stage: str, fraction: float) -> None:
        nonlocal shown, shown_at
        reply = progress_reply(inv, headline, stage, fraction)
        text = reply.plain()
        if text != shown and time.monotonic() - shown_at >= EDIT_EVERY_SECONDS:
            await show(reply)
            shown, shown_at = text, time.monotonic()

    return report


async def finish_progress(inv: Invocation, headline: str) -> None:
    """The progress message at 100 %, so it does not stay at the last edit."""
    if inv.ctx.progress is not None:
        await inv.ctx.progress(progress_reply(inv, headline, "done", 1.0))
