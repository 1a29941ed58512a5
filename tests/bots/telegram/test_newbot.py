"""/newbot through the real Telegram front end: the one-line form, the timeframe and exits
steps, the plan's limits said where they apply, and /help newbot (English and Portuguese)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bots.core.commands.bots import EXAMPLE
from db.models import Bot, ChatIdentity, Plan, User
from tests.bots.telegram.conftest import RunningBot
from tests.bots.telegram.test_e2e import button, new_user

ONE_LINE = EXAMPLE  # the example, as /help newbot shows it first


async def set_plan(bot: RunningBot, telegram_user: int, plan: Plan) -> None:
    async with bot.app.database.transaction() as session:
        identity = await session.scalar(
            select(ChatIdentity).where(ChatIdentity.platform_user_id == str(telegram_user))
        )
        assert identity is not None
        user = await session.get(User, identity.user_id)
        assert user is not None
        user.plan = plan


async def registered(bot: RunningBot, language: str, plan: Plan = Plan.FREE) -> int:
    user = new_user(bot, language=language)
    bot.emulator.user_sends(user, "/start")
    await bot.says(user, "RoboTrader")
    await set_plan(bot, user, plan)
    return user


async def bots_of(bot: RunningBot, telegram_user: int) -> list[Bot]:
    async with bot.app.database.sessions() as session:
        identity = await session.scalar(
            select(ChatIdentity).where(ChatIdentity.platform_user_id == str(telegram_user))
        )
        assert identity is not None
        return list(await session.scalars(select(Bot).where(Bot.user_id == identity.user_id)))


async def test_one_line_form_keeps_every_setting_and_parameter(telegram_bot: RunningBot) -> None:
    user = await registered(telegram_bot, "en")
    telegram_bot.emulator.user_sends(user, ONE_LINE)
    confirm = await telegram_bot.says(user, "Create this bot?")
    assert "tf=1h sl=3 tp=2:50,4:50 trail=1.5@2 be=1" in confirm["text"]
    assert "period=7 oversold=25" in confirm["text"]
    telegram_bot.emulator.user_presses(user, confirm, button(confirm, "Create"))
    await telegram_bot.says(user, "created")
    [made] = await bots_of(telegram_bot, user)
    assert made.parameters == {"period": 7, "oversold": 25.0, "overbought": 70.0}
    assert made.timeframe == "1h" and made.stop_loss_pct == Decimal(3)
    assert made.take_profit_targets == [["2", "50"], ["4", "50"]]
    assert made.trailing_stop_pct == Decimal("1.5") and made.trailing_arm_pct == Decimal(2)
    assert made.breakeven_after_target is True and made.take_profit_pct is None


async def test_one_line_form_in_portuguese_refuses_a_bad_option_and_creates_nothing(
    telegram_bot: RunningBot,
) -> None:
    user = await registered(telegram_bot, "pt-br")
    emu = telegram_bot.emulator
    emu.user_sends(user, "/newbot binance BTC/USDT rsi 500 tf=1h stop=3")
    refused = await telegram_bot.says(user, "stop não é uma configuração deste robô")
    assert "Configurações válidas: tf=1m|5m|15m|1h|4h|1d" in refused["text"]
    assert "period=2-50" in refused["text"]
    emu.user_sends(user, "/newbot binance BTC/USDT rsi 500 sl=120")
    refused = await telegram_bot.says(user, "sl=120 não é válido (sl aceita 0.1-99 %)")
    emu.user_sends(user, "/newbot binance BTC/USDT rsi 500 period=70")
    await telegram_bot.says(user, "period")
    assert await bots_of(telegram_bot, user) == []
    emu.user_sends(user, "/newbot binance BTC/USDT rsi 500 tf=4h be=1 tp=3:100 oversold=25")
    confirm = await telegram_bot.says(user, "Criar este robô?")
    assert "Da próxima vez, numa linha só:" in confirm["text"]
    assert "/newbot binance BTC/USDT rsi 500 tf=4h tp=3:100 be=1 oversold=25" in confirm["text"]
    emu.user_presses(user, confirm, button(confirm, "Criar"))
    await telegram_bot.says(user, "criado")
    [made] = await bots_of(telegram_bot, user)
    assert made.timeframe == "4h" and made.parameters["oversold"] == 25
    assert made.take_profit_targets == [["3", "100"]] and made.breakeven_after_target


async def walk_to_risk(bot: RunningBot, user: int, words: dict[str, str]) -> dict[str, Any]:
    """/newbot's buttons up to the risk step, the timeframe set to 1h on the way."""
    emu = bot.emulator
    emu.user_sends(user, "/newbot")
    step = await bot.says(user, words["step1"])
    emu.user_presses(user, step, button(step, "Binance"))
    step = await bot.says(user, words["step2"])
    emu.user_presses(user, step, button(step, "ETH/USDT"))
    step = await bot.says(user, words["selected"])
    emu.user_presses(user, step, button(step, words["next"]))
    step = await bot.says(user, words["step3"])
    emu.user_presses(user, step, button(step, "RSI"))
    step = await bot.says(user, words["step4"])
    assert "period" in step["text"] and "2–50" in step["text"]
    emu.user_sends(user, "period=9 oversold=20")
    step = await bot.says(user, "20")
    emu.user_presses(user, step, button(step, words["use_these"]))
    step = await bot.says(user, words["step5"])
    assert "✅ 1m" in str(step["reply_markup"])
    emu.user_presses(user, step, button(step, "1h"))
    return await bot.says(user, words["step6"])


ENGLISH = {
    "step1": "Step 1/8", "step2": "Step 2/8", "step3": "Step 3/8", "step4": "Step 4/8",
    "step5": "Step 5/8", "step6": "Step 6/8", "step7": "Step 7/8", "step8": "Step 8/8",
    "next": "Next", "use_these": "Use these", "paper": "paper", "create": "Create",
    "confirm": "Create this bot?", "created": "created", "now": "Now:",
    "selected": "Selected: ETH/USDT",
}  # fmt: skip
PORTUGUESE = {
    "step1": "Passo 1/8", "step2": "Passo 2/8", "step3": "Passo 3/8", "step4": "Passo 4/8",
    "step5": "Passo 5/8", "step6": "Passo 6/8", "step7": "Passo 7/8", "step8": "Passo 8/8",
    "next": "Próximo", "use_these": "Usar estes", "paper": "papel", "create": "Criar",
    "confirm": "Criar este robô?", "created": "criado", "now": "Agora:",
    "selected": "Selecionados: ETH/USDT",
}  # fmt: skip


@pytest.mark.parametrize(("language", "words"), [("en", ENGLISH), ("pt-br", PORTUGUESE)])
async def test_timeframe_and_exits_steps_through_the_buttons(
    telegram_bot: RunningBot, language: str, words: dict[str, str]
) -> None:
    user = await registered(telegram_bot, language)
    emu = telegram_bot.emulator
    risk = await walk_to_risk(telegram_bot, user, words)
    emu.user_sends(user, "sl=2.5 trail=x")
    refused = await telegram_bot.says(user, "trail=x")
    assert words["step6"] in refused["text"]  # the same step, asked again
    emu.user_sends(user, "dll=4")
    again = await telegram_bot.says(user, f"{words['now']} dll=4")
    assert words["step6"] in again["text"]
    emu.user_presses(user, risk, button(risk, "SL 3 % + trailing"))
    step = await telegram_bot.says(user, words["step7"])
    emu.user_presses(user, step, button(step, "500 USDT"))
    step = await telegram_bot.says(user, words["step8"])
    emu.user_presses(user, step, button(step, words["paper"]))
    confirm = await telegram_bot.says(user, words["confirm"])
    line = "/newbot binance ETH/USDT rsi 500 tf=1h sl=3 trail=1.5@2 dll=4 period=9 oversold=20"
    assert line in confirm["text"]
    emu.user_presses(user, confirm, button(confirm, words["create"]))
    await telegram_bot.says(user, words["created"])
    [made] = await bots_of(telegram_bot, user)
    assert (made.timeframe, made.stop_loss_pct, made.trailing_stop_pct) == (
        "1h", Decimal(3), Decimal("1.5"),
    )  # fmt: skip
    assert made.trailing_arm_pct == Decimal(2) and made.daily_loss_limit_pct == Decimal(4)
    assert made.parameters["period"] == 9 and made.parameters["oversold"] == 20


@pytest.mark.parametrize(
    ("language", "fragments"),
    [
        ("en", ["/newbot in one line", "sl=0.1-99 % — Stop loss: sell everything",
                "rsi: period=2-50", "/newbot binance BTC/USDT grid 500 lower="]),
        ("pt-br", ["/newbot numa linha só", "sl=0.1-99 % — Stop loss: vende tudo",
                   "rsi: period=2-50", "chave=valor"]),
    ],
)  # fmt: skip
async def test_help_newbot_shows_the_one_line_form(
    telegram_bot: RunningBot, language: str, fragments: list[str]
) -> None:
    user = await registered(telegram_bot, language)
    telegram_bot.emulator.user_sends(user, "/help newbot")
    shown = await telegram_bot.says(user, fragments[0])
    assert ONE_LINE in shown["text"]
    for fragment in fragments[1:]:
        assert fragment in shown["text"]
    for key in ("tf=", "sl=", "tp=", "trail=", "be=", "max=", "dll="):
        assert f"\n{key}" in shown["text"]
    telegram_bot.emulator.user_sends(user, "/help")
    listed = await telegram_bot.says(user, "/help newbot")
    assert "/bots" in listed["text"]
