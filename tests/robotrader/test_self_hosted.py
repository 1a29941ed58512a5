"""Self-hosted without Stripe (no STRIPE_API_KEY): the server has no plans, every user has
every feature with Premium's limits. With Stripe configured, the stored plan applies.

The suite's settings carry a fake Stripe key (tests/conftest.py), so plan limits are
on by default; these tests take it away to be self-hosted.
"""

from __future__ import annotations

import pytest

from billing.plans import PLANS
from db.models import Plan
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.backtests import backtest_choices
from robotrader.use_cases.billing import plan_overview, upgrade_offers
from robotrader.use_cases.bots import BotSpec, create_bot, start_bot
from robotrader.use_cases.web_access import authenticate_api_token, create_api_token
from tests.engine.conftest import make_user

FREE, PREMIUM = PLANS[Plan.FREE], PLANS[Plan.PREMIUM]
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]


async def _many_bots(app: App, user: int) -> list[str]:
    """More bots, symbols and a strategy than Free allows: dca is not a basic strategy."""
    names = []
    for n, symbol in enumerate(SYMBOLS):
        spec = BotSpec("binance", [symbol], "dca" if n % 2 else "rsi", "100")
        names.append((await create_bot(app, user, spec)).name)
    return names


async def test_without_stripe_a_free_user_has_every_feature(self_hosted_app: App) -> None:
    assert len(SYMBOLS) > max(FREE.max_bots, FREE.max_symbols or 0)
    user = await make_user(self_hosted_app, "selfhosted", plan="free")
    names = await _many_bots(self_hosted_app, user)
    assert len(names) == len(SYMBOLS)
    for name in names:
        assert (await start_bot(self_hosted_app, user, name)).status == "running"

    choices = await backtest_choices(self_hosted_app, user)
    assert choices.max_days == PREMIUM.max_backtest_days and "dca" in choices.strategies

    token = await create_api_token(self_hosted_app, user)  # the REST API is Premium's
    assert (await authenticate_api_token(self_hosted_app, token.token)) is not None

    overview = await plan_overview(self_hosted_app, user)
    assert not overview.plans_apply and overview.limits == PREMIUM
    assert (overview.usage.bots, overview.usage.symbols) == (len(SYMBOLS), len(SYMBOLS))
    with pytest.raises(UserError) as raised:
        upgrade_offers(self_hosted_app)
    assert raised.value.key == "billing_not_configured"


async def test_with_stripe_the_same_user_is_held_to_the_free_plan(app: App) -> None:
    assert app.settings.billing_enabled
    user = await make_user(app, "paying", plan="free")
    await create_bot(app, user, BotSpec("binance", [SYMBOLS[0]], "rsi", "100"))
    with pytest.raises(UserError) as raised:
        await create_bot(app, user, BotSpec("binance", [SYMBOLS[1]], "rsi", "100"))
    assert (raised.value.key, raised.value.args_["limit"]) == ("limit_reached_upgrade", "bots")
    with pytest.raises(UserError) as raised:
        await create_bot(app, user, BotSpec("binance", [SYMBOLS[1]], "dca", "100"))
    assert raised.value.key == "strategy_not_in_plan"
    with pytest.raises(UserError) as raised:
        await create_api_token(app, user)
    assert raised.value.key == "rest_api_not_in_plan"

    choices = await backtest_choices(app, user)
    assert choices.max_days == FREE.max_backtest_days and "dca" not in choices.strategies
    overview = await plan_overview(app, user)
    assert overview.plans_apply and overview.plan == Plan.FREE and overview.limits == FREE
    assert [offer.plan for offer in upgrade_offers(app)] == [Plan.PRO, Plan.PREMIUM]
