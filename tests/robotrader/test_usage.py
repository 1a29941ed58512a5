"""robotrader.use_cases.usage on the real databases: what counts against a plan."""

from __future__ import annotations

from billing.plans import Usage
from robotrader.app import App
from robotrader.use_cases.bots import BotSpec, create_bot, delete_bot
from robotrader.use_cases.usage import plan_usage, user_symbols
from tests.engine.conftest import make_user


async def _bot(app: App, user: int, symbols: list[str], name: str) -> int:
    spec = BotSpec(exchange="binance", symbols=symbols, strategy="dca", capital="100", name=name)
    return (await create_bot(app, user, spec)).id


async def test_distinct_symbols_and_bots_are_counted_per_user(app: App) -> None:
    user, other = await make_user(app, "u1"), await make_user(app, "u2")
    await _bot(app, user, ["BTC/USDT", "ETH/USDT"], "a")
    await _bot(app, user, ["ETH/USDT"], "b")
    await _bot(app, other, ["SOL/USDT"], "a")
    async with app.database.sessions() as session:
        assert await plan_usage(session, user) == Usage(exchanges=0, symbols=2, bots=2)
        assert await user_symbols(session, user) == {"BTC/USDT", "ETH/USDT"}


async def test_a_deleted_bot_counts_against_no_plan(app: App) -> None:
    user = await make_user(app)
    await _bot(app, user, ["BTC/USDT"], "a")
    await delete_bot(app, user, await _bot(app, user, ["SOL/USDT"], "b"))
    async with app.database.sessions() as session:
        assert await plan_usage(session, user) == Usage(exchanges=0, symbols=1, bots=1)
        assert await user_symbols(session, user) == {"BTC/USDT"}
