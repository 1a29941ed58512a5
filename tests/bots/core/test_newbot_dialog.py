"""The /newbot dialog follows its declared steps: forward by its buttons, back by older ones."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bots.core.commands.bots import BUTTON_STEP, STEPS, Step
from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from bots.core.registry import ACTIONS
from db.models import Platform
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings


@pytest.fixture
async def core(settings: Settings, database: Database) -> AsyncIterator[ChatCore]:
    app = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    yield ChatCore(app, rate_limiter=RateLimiter(rate=1000, burst=1000))
    await app.pool.close()


CTX = ChatContext(
    platform=Platform.TELEGRAM, platform_user_id="dialog", chat_id="dialog", is_private=True,
    client_language="en",
)  # fmt: skip


def step(core: ChatCore) -> Step:
    dialog = core.dialogs.get(CTX.identity_key)
    assert dialog is not None and dialog.name == "newbot"
    return Step(dialog.step)


def test_every_dialog_button_answers_a_declared_step() -> None:
    dialog_buttons = {name for name in ACTIONS if name.startswith("nb") and name != "nb"}
    assert dialog_buttons == set(BUTTON_STEP)
    assert [BUTTON_STEP[b] for b in ("nbx", "nbs", "nbt", "nbp", "nbk", "nbm", "nbc")] == STEPS


async def test_buttons_walk_the_steps_in_order(core: ChatCore) -> None:
    await core.handle_text(CTX, "/newbot")
    assert step(core) == Step.EXCHANGE
    for press, reached in [
        ("nbx:binance", Step.SYMBOLS),
        ("nbs:next", Step.SYMBOLS),  # no symbol yet: asked again
        ("nbs:BTC/USDT", Step.SYMBOLS),
        ("nbs:next", Step.STRATEGY),
        ("nbt:sma_crossover", Step.PARAMS),
        ("nbp", Step.CAPITAL),
        ("nbk:100", Step.MODE),
        ("nbm:paper", Step.CONFIRM),
    ]:
        [reply] = await core.handle_action(CTX, f"v1:{press}")
        assert step(core) == reached, (press, reply.plain())

    # An older button (the user scrolled back) goes back there, keeping the answers...
    await core.handle_action(CTX, "v1:nbs:ETH/USDT")
    assert step(core) == Step.SYMBOLS
    # ... and a button of a step not reached again since is stale.
    [stale] = await core.handle_action(CTX, "v1:nbc")
    assert step(core) == Step.SYMBOLS and "expired" in stale.plain().lower()


async def test_typed_answers_go_to_the_step_being_asked(core: ChatCore) -> None:
    await core.handle_text(CTX, "/newbot")
    [reply] = await core.handle_text(CTX, "BTC/USDT")
    assert step(core) == Step.EXCHANGE and "buttons" in reply.plain()
    await core.handle_action(CTX, "v1:nbx:binance")
    await core.handle_text(CTX, "btcusdt, ethusdt")
    assert step(core) == Step.SYMBOLS
    await core.handle_action(CTX, "v1:nbs:next")
    await core.handle_action(CTX, "v1:nbt:sma_crossover")
    [reply] = await core.handle_text(CTX, "fast=5")
    assert step(core) == Step.PARAMS and "5" in reply.plain()
    await core.handle_text(CTX, "250")
    assert step(core) == Step.MODE
    await core.handle_action(CTX, "v1:nbm:paper")
    [confirm] = await core.handle_text(CTX, "300")  # capital was answered: use the buttons
    assert step(core) == Step.CONFIRM and "buttons" in confirm.plain()
