"""/editbot through the chat core: one line, the step-by-step menu, refusals in words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import select

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from db.models import AuditEntry, Bot, Platform
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings
from robotrader.use_cases.bots import BotSpec, create_bot, start_bot
from tests.engine.conftest import make_user


@pytest.fixture
async def core(settings: Settings, database: Database) -> AsyncIterator[ChatCore]:
    app = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    yield ChatCore(app, rate_limiter=RateLimiter(rate=1000, burst=1000))
    await app.pool.close()


CTX = ChatContext(
    platform=Platform.TELEGRAM, platform_user_id="u1", chat_id="u1", is_private=True,
    client_language="pt-br",
)  # fmt: skip


async def _bot(core: ChatCore, *, running: bool = False) -> int:
    user = await make_user(core.app, "u1")  # the same identity as CTX
    spec = BotSpec(exchange="binance", symbols=["BTC/USDT"], strategy="sma_crossover",
                   capital="1000", name="alpha")  # fmt: skip
    bot = await create_bot(core.app, user, spec)
    if running:
        await start_bot(core.app, user, bot.id)
    return bot.id


async def _row(core: ChatCore, bot_id: int) -> Bot:
    async with core.app.database.sessions() as session:
        bot = await session.get(Bot, bot_id)
        assert bot is not None
        return bot


async def say(core: ChatCore, text: str) -> str:
    [reply] = await core.handle_text(CTX, text)
    return reply.plain()


async def press(core: ChatCore, payload: str) -> str:
    [reply] = await core.handle_action(CTX, f"v1:{payload}")
    return reply.plain()


async def test_one_line_applies_at_once_and_says_before_and_after(core: ChatCore) -> None:
    bot_id = await _bot(core, running=True)
    text = await say(core, "/editbot alpha sl=3 tp=2:50,4:50 capital=800")
    assert "alpha alterado" in text and "Stop loss" in text and "desligado → 3" in text
    assert "1000 → 800" in text and "próximo tick" in text
    bot = await _row(core, bot_id)
    assert bot.stop_loss_pct == Decimal(3) and bot.capital == Decimal(800)
    # Refusals are the user's language, never a trace.
    assert "só pode mudar com o robô parado" in await say(core, "/editbot alpha tf=1h")
    assert "não é uma configuração" in await say(core, "/editbot alpha nope=1")
    assert "Nada mudou" in await say(core, "/editbot alpha sl=3")
    assert "/editbot <nome" in await say(core, "/editbot sl=3")


async def test_the_menu_collects_changes_and_writes_only_on_confirm(core: ChatCore) -> None:
    bot_id = await _bot(core)
    menu = await say(core, "/editbot alpha")
    assert "Editar alpha" in menu and "[Parâmetros]" in menu and "[Concluir]" in menu
    assert "tempo gráfico (agora 1m)" in await press(core, "ebm:tf")
    menu = await press(core, "ebt:1h")
    assert "1m → 1h" in menu and "[✅ Confirmar]" in menu
    assert "capital" in (await press(core, "ebm:capital")).lower()
    assert "1000 → 500" in await say(core, "500")
    await press(core, "ebm:params")
    assert "fast precisa ficar entre" in await say(core, "fast=0")  # refused, the rest kept
    assert "fast" in await say(core, "fast=7")
    await press(core, "ebm:risk")
    menu = await say(core, "sl=2 trail=1.5@2")
    assert "desligado → 1,5 % abaixo do preço máximo, depois de subir 2 %" in menu  # in words
    assert "1m → 1h" in menu
    assert (await _row(core, bot_id)).timeframe == "1m"  # nothing written yet

    done = await press(core, "eby")
    assert "alpha alterado" in done
    bot = await _row(core, bot_id)
    assert (bot.timeframe, bot.capital, bot.parameters["fast"]) == ("1h", Decimal(500), 7)
    assert bot.stop_loss_pct == Decimal(2) and bot.trailing_stop_pct == Decimal("1.5")
    async with core.app.database.sessions() as session:
        assert await session.scalar(select(AuditEntry.platform).where(
            AuditEntry.action == "bot.edit")) == "telegram"  # fmt: skip
    # The dialog is over: its buttons are stale.
    assert "expirou" in (await press(core, "eby")).lower()


async def test_cancel_discards_and_the_card_opens_the_same_menu(core: ChatCore) -> None:
    bot_id = await _bot(core)
    card = await press(core, f"bd:{bot_id}")
    assert "[✏️ Editar]" in card
    menu = await press(core, f"eb:{bot_id}")
    assert "Editar alpha" in menu
    await press(core, "ebm:risk")
    await say(core, "sl=4")
    assert "Cancelado" in await press(core, "cancel")
    assert (await _row(core, bot_id)).stop_loss_pct is None
