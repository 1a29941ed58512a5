"""/newbot through the real Telegram front end: the one-line form, the timeframe and exits
steps, the plan's limits said where they apply, and /help newbot (English and Portuguese)."""

from __future__ import annotations

from decimal import Decimal

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
