"""The /newbot dialog follows its declared steps: forward by its buttons, back by older ones."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from billing import plans
from bots.core.commands.bots import BUTTON_STEP, STEPS, Step
from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from bots.core.registry import ACTIONS
from bots.core.replies import Table
from db.models import ChatIdentity, Plan, Platform, User
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
    buttons = ("nbx", "nbs", "nbt", "nbp", "nbf", "nbr", "nbk", "nbm", "nbc")
    assert [BUTTON_STEP[b] for b in buttons] == STEPS


async def test_buttons_walk_the_steps_in_order(core: ChatCore) -> None:
    await core.handle_text(CTX, "/newbot")
    assert step(core) == Step.EXCHANGE
    for press, reached in [
        ("nbx:binance", Step.SYMBOLS),
        ("nbs:next", Step.SYMBOLS),  # no symbol yet: asked again
        ("nbs:BTC/USDT", Step.SYMBOLS),
        ("nbs:next", Step.STRATEGY),
        ("nbt:sma_crossover", Step.PARAMS),
        ("nbp", Step.TIMEFRAME),
        ("nbf:1h", Step.RISK),
        ("nbr:sl3", Step.CAPITAL),
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
    [reply] = await core.handle_text(CTX, "250")  # not key=value: asked again, with why
    assert step(core) == Step.PARAMS and '"250" is not key=value' in reply.plain()
    await core.handle_action(CTX, "v1:nbp")
    await core.handle_text(CTX, "4h")
    assert step(core) == Step.RISK
    await core.handle_action(CTX, "v1:nbr:done")
    await core.handle_text(CTX, "250")
    assert step(core) == Step.MODE
    await core.handle_action(CTX, "v1:nbm:paper")
    [confirm] = await core.handle_text(CTX, "300")  # capital was answered: use the buttons
    assert step(core) == Step.CONFIRM and "buttons" in confirm.plain()


async def to_risk_step(core: ChatCore, ctx: ChatContext = CTX, strategy: str = "rsi") -> None:
    await core.handle_text(ctx, "/newbot")
    for press in ("nbx:binance", "nbs:BTC/USDT", "nbs:next", f"nbt:{strategy}", "nbp", "nbf:skip"):
        await core.handle_action(ctx, f"v1:{press}")


async def test_params_step_shows_the_strategys_own_parameters(core: ChatCore) -> None:
    await core.handle_text(CTX, "/newbot")
    for press in ("nbx:binance", "nbs:BTC/USDT", "nbs:next"):
        await core.handle_action(CTX, f"v1:{press}")
    [reply] = await core.handle_action(CTX, "v1:nbt:rsi")
    table = next(b for b in reply.blocks if isinstance(b, Table))
    assert [row[:3] for row in table.rows] == [
        ["period", "14", "2–50"], ["oversold", "30", "1–50"], ["overbought", "70", "50–99"],
    ]  # fmt: skip
    assert all(row[3] and not row[3].startswith("strategy.") for row in table.rows)
    assert "period=2 oversold=1" in reply.plain() and "fast=" not in reply.plain()


async def test_risk_step_takes_typed_settings_until_done(core: ChatCore) -> None:
    await to_risk_step(core)
    assert step(core) == Step.RISK
    [reply] = await core.handle_text(CTX, "sl=3 dll=5")
    assert step(core) == Step.RISK and "Now: sl=3 dll=5" in reply.plain()
    assert "[Done]" in reply.plain()
    [reply] = await core.handle_text(CTX, "sl=300")  # refused: the same step, with why
    assert step(core) == Step.RISK
    assert "sl=300 is not valid (sl takes 0.1-99 %)" in reply.plain()
    assert "Now: sl=3 dll=5" in reply.plain()
    [reply] = await core.handle_text(CTX, "stop=3")
    assert "stop is not a setting of this bot" in reply.plain() and step(core) == Step.RISK
    await core.handle_action(CTX, "v1:nbr:done")
    assert step(core) == Step.CAPITAL
    await core.handle_action(CTX, "v1:nbk:500")
    [confirm] = await core.handle_action(CTX, "v1:nbm:paper")
    table = next(b for b in confirm.blocks if isinstance(b, Table))
    assert [
        row for row in table.rows if row[0] in ("Timeframe", "Stop loss", "Daily loss limit")
    ] == [
        ["Timeframe", "1m"], ["Stop loss", "3 % under the entry"],
        ["Daily loss limit", "5 % of the capital"],
    ]  # fmt: skip
    assert "/newbot binance BTC/USDT rsi 500 tf=1m sl=3 dll=5" in confirm.plain()


async def test_a_preset_sets_every_exit_and_moves_on(core: ChatCore) -> None:
    await to_risk_step(core)
    await core.handle_text(CTX, "sl=7 max=100")
    [reply] = await core.handle_action(CTX, "v1:nbr:targets")
    assert step(core) == Step.CAPITAL, reply.plain()
    dialog = core.dialogs.get(CTX.identity_key)
    assert dialog is not None
    settings = dialog.data["settings"]
    assert settings.stop_loss_pct is None and settings.breakeven
    assert [(t.profit_pct, t.share_pct) for t in settings.targets] == [(2, 50), (4, 50)]
    assert settings.max_position == 100  # not an exit: kept


async def test_typed_timeframe_and_parameters_go_together_or_not_at_all(core: ChatCore) -> None:
    await core.handle_text(CTX, "/newbot")
    for press in ("nbx:binance", "nbs:BTC/USDT", "nbs:next", "nbt:rsi"):
        await core.handle_action(CTX, f"v1:{press}")
    [reply] = await core.handle_text(CTX, "tf=4h period=99")
    assert step(core) == Step.PARAMS and "period" in reply.plain()
    dialog = core.dialogs.get(CTX.identity_key)
    assert dialog is not None and dialog.data["settings"].timeframe == "1m"
    await core.handle_text(CTX, "tf=4h period=9")
    assert dialog.data["settings"].timeframe == "4h" and dialog.data["parameters"]["period"] == 9
    [reply] = await core.handle_action(CTX, "v1:nbp")
    assert step(core) == Step.TIMEFRAME and "[✅ 4h]" in reply.plain()


async def user_on(core: ChatCore, name: str, plan: Plan, language: str = "en") -> ChatContext:
    """A registered chat user on ``plan`` (set here: whatever billing is configured)."""
    ctx = ChatContext(
        platform=Platform.TELEGRAM, platform_user_id=name, chat_id=name, is_private=True,
        client_language=language,
    )  # fmt: skip
    await core.handle_text(ctx, "/plan")
    async with core.app.database.transaction() as session:
        user_id = await session.scalar(
            select(ChatIdentity.user_id).where(ChatIdentity.platform_user_id == name)
        )
        user = await session.get(User, user_id)
        assert user is not None
        user.plan = plan
    return ctx


async def made(core: ChatCore, ctx: ChatContext, line: str) -> None:
    await core.handle_text(ctx, line)
    [created] = await core.handle_action(ctx, "v1:nbc")
    assert "created" in created.plain() or "criado" in created.plain(), created.plain()


async def test_newbot_says_at_once_when_no_bot_is_left(core: ChatCore) -> None:
    ctx = await user_on(core, "full-free", Plan.FREE)
    await made(core, ctx, "/newbot binance BTC/USDT rsi 100")
    [refused] = await core.handle_text(ctx, "/newbot")
    assert refused.plain() == (
        "Your Free plan allows 1 bot(s): you use 1. Pro allows more: /upgrade."
    )
    assert core.dialogs.get(ctx.identity_key) is None
    [refused] = await core.handle_text(ctx, "/newbot binance ETH/USDT rsi 100 sl=3")
    assert "Free plan allows 1 bot(s)" in refused.plain()


async def test_pair_picker_refuses_the_pair_over_the_plan_when_pressed(core: ChatCore) -> None:
    ctx = await user_on(core, "pairs-free", Plan.FREE, "pt-br")
    await made(core, ctx, "/newbot binance BTC/USDT,ETH/USDT rsi 100")
    async with core.app.database.transaction() as session:
        user_id = await session.scalar(
            select(ChatIdentity.user_id).where(ChatIdentity.platform_user_id == "pairs-free")
        )
        user = await session.get(User, user_id)
        assert user is not None
        user.plan = Plan.PRO  # room for bots, and then Pro's pairs are counted
    limit = plans.PLANS[Plan.PRO].max_symbols
    assert limit is not None
    await core.handle_text(ctx, "/newbot")
    await core.handle_action(ctx, "v1:nbx:binance")
    # A pair another bot trades costs nothing; new ones count until the limit.
    await core.handle_action(ctx, "v1:nbs:BTC/USDT")
    for n in range(limit - 2):
        [reply] = await core.handle_action(ctx, f"v1:nbs:C{n}/USDT")
        assert "Selecionados" in reply.plain(), reply.plain()
    [refused] = await core.handle_action(ctx, "v1:nbs:SOL/USDT")
    assert refused.plain() == (
        f"Seu plano Pro permite {limit} pares somando seus robôs: você usa {limit}. "
        "O Premium permite mais: /upgrade."
    )
    dialog = core.dialogs.get(ctx.identity_key)
    assert dialog is not None and "SOL/USDT" not in dialog.data["symbols"]
    await core.handle_action(ctx, "v1:nbs:ETH/USDT")  # the other bot's: still free
    assert "ETH/USDT" in dialog.data["symbols"]


async def test_a_locked_strategy_says_which_plan_unlocks_it(core: ChatCore) -> None:
    ctx = await user_on(core, "locked-free", Plan.FREE)
    await core.handle_text(ctx, "/newbot")
    for press in ("nbx:binance", "nbs:BTC/USDT"):
        await core.handle_action(ctx, f"v1:{press}")
    [strategies] = await core.handle_action(ctx, "v1:nbs:next")
    assert "🔒 Grid" in strategies.plain() and "🔒 RSI" not in strategies.plain()
    [refused] = await core.handle_action(ctx, "v1:nbt:grid")
    assert "isn't in the Free plan" in refused.plain() and "Pro unlocks it" in refused.plain()
    assert step_of(core, ctx) == Step.STRATEGY
    [refused] = await core.handle_text(ctx, "/newbot binance BTC/USDT dca 100")
    assert "Pro unlocks it" in refused.plain()


def step_of(core: ChatCore, ctx: ChatContext) -> Step:
    dialog = core.dialogs.get(ctx.identity_key)
    assert dialog is not None
    return Step(dialog.step)
