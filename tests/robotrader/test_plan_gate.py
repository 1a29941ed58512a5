"""Which strategies a plan includes: one answer for /newbot, create_bot and backtests."""

from __future__ import annotations

import uuid

import pytest

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from db.models import Plan, Platform, User
from engine.strategies.registry import STRATEGIES
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.accounts import register
from robotrader.use_cases.backtests import NOT_BACKTESTABLE, backtest_choices
from robotrader.use_cases.bots import (
    BotSpec,
    check_strategy_in_plan,
    create_bot,
    strategy_choices,
)


async def user_on(app: App, plan: Plan) -> tuple[int, str]:
    name = uuid.uuid4().hex[:10]
    account = await register(app, Platform.TELEGRAM, name, chat_id=name, client_language="en")
    async with app.database.transaction() as session:
        user = await session.get(User, account.user_id)
        assert user is not None
        user.plan = plan
    return account.user_id, name


@pytest.mark.parametrize("plan", list(Plan))
async def test_every_front_end_locks_the_same_strategies(app: App, plan: Plan) -> None:
    user_id, name = await user_on(app, plan)
    choices = {c.name: c for c in strategy_choices(plan)}
    assert set(choices) == set(STRATEGIES)

    core = ChatCore(app, rate_limiter=RateLimiter(rate=1000, burst=1000))
    ctx = ChatContext(
        platform=Platform.TELEGRAM, platform_user_id=name, chat_id=name, is_private=True,
        client_language="en",
    )  # fmt: skip
    await core.handle_text(ctx, "/newbot")
    await core.handle_action(ctx, "v1:nbx:binance")
    [step] = await core.handle_action(ctx, "v1:nbs:BTC/USDT")
    [step] = await core.handle_action(ctx, "v1:nbs:next")
    shown = {b.action.rsplit(":", 1)[-1]: b.label.startswith("🔒") for [b] in step.buttons}
    assert shown == {n: c.locked for n, c in choices.items()}

    backtestable = (await backtest_choices(app, user_id)).strategies
    for strategy, choice in choices.items():
        if choice.locked:
            assert choice.unlocked_by is not None
            with pytest.raises(UserError, match="strategy_not_in_plan"):
                check_strategy_in_plan(plan, strategy)
            with pytest.raises(UserError, match="strategy_not_in_plan"):
                spec = BotSpec("binance", ["BTC/USDT"], strategy, "100")
                await create_bot(app, user_id, spec)
            assert strategy not in backtestable
        else:
            assert choice.unlocked_by is None
            check_strategy_in_plan(plan, strategy)
            assert strategy in backtestable or strategy in NOT_BACKTESTABLE


def test_the_free_plan_is_told_which_plan_unlocks_the_rest() -> None:
    locked = [c for c in strategy_choices(Plan.FREE) if c.locked]
    assert locked and {c.unlocked_by for c in locked} == {Plan.PRO}
