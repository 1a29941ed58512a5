"""/backtest in the chat core: handing over to the outbox when nobody can wait for the result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.notifications import render_notification
from bots.core.rate_limit import RateLimiter
from bots.core.replies import Reply
from db.models import Backtest, Notification, Platform
from db.session import Database
from engine.backtest.queue import ThreadBacktestQueue
from robotrader.app import App
from robotrader.settings import Settings


@pytest.fixture
async def core(settings: Settings, database: Database) -> AsyncIterator[ChatCore]:
    app = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    yield ChatCore(app, rate_limiter=RateLimiter(rate=1000, burst=1000))
    await app.backtests.close()
    await app.pool.close()


def ctx(user: str, shown: list[Reply] | None = None) -> ChatContext:
    async def progress(reply: Reply) -> None:
        assert shown is not None
        shown.append(reply)

    return ChatContext(
        platform=Platform.TELEGRAM, platform_user_id=user, chat_id=user, is_private=True,
        client_language="pt-br", progress=progress if shown is not None else None,
    )  # fmt: skip


async def notification(core: ChatCore, within: float = 30) -> Notification:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with core.app.database.sessions() as session:
            found = await session.scalar(select(Notification))
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("no notification")


async def test_without_progress_messages_the_result_comes_through_the_outbox(
    core: ChatCore,
) -> None:
    user = ctx("outbox-1")
    [started] = await core.handle_text(user, "/backtest sma_crossover BTC/USDT 2d")
    assert "Eu te aviso quando terminar" in started.plain()

    note = await notification(core)
    assert note.kind == "backtest_done"
    reply = render_notification(note.kind, note.payload, "pt-BR")
    assert "concluído: Cruzamento de médias móveis em BTC/USDT, 2 dias" in reply.plain()
    [[show]] = reply.buttons
    assert show.label == "📊 Ver o resultado" and show.action == f"v1:btv:{note.payload['job']}"

    [result] = await core.handle_action(user, show.action)
    assert "Taxa de acerto" in result.plain() and result.image is not None


async def test_a_shutdown_hands_a_followed_backtest_over_to_the_outbox(core: ChatCore) -> None:
    shown: list[Reply] = []
    queue = core.app.backtests
    assert isinstance(queue, ThreadBacktestQueue)
    for _ in range(2):  # both worker slots busy: the job waits in the queue
        queue._slots.acquire()
    core.shutdown()  # the front end is stopping as the command arrives
    try:
        replies = await core.handle_text(ctx("outbox-2", shown), "/backtest rsi ETH/USDT 1d")
    finally:
        for _ in range(2):
            queue._slots.release()
    assert replies == []  # nothing more to say here: the progress message says it
    assert "eu te aviso quando o backtest" in shown[-1].plain()
    async with core.app.database.sessions() as session:
        job = await session.scalar(select(Backtest))
    assert job is not None and job.notify_when_done
    note = await notification(core)
    assert note.payload["job"] == job.id
