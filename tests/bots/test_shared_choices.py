"""Backtest periods and the capital range: one definition, the same on Telegram, Discord and REST.

Each front end offers what the use cases accept; a copy that drifts fails here.
"""

from __future__ import annotations

from typing import Any

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from bots.discord.commands import slash_commands
from db.models import Platform
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings
from robotrader.use_cases.backtests import BACKTEST_PERIODS, parse_period
from robotrader.use_cases.bots import MAX_CAPITAL, MIN_CAPITAL, parse_capital
from web.schemas import BotCreate


class _Runner:
    async def run_text(self, interaction: Any, text: str) -> None:  # never called here
        raise AssertionError(text)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(name)


def _discord(path: tuple[str, ...]) -> Any:
    found: Any = None
    for command in slash_commands(_Runner()):  # type: ignore[arg-type]
        if command.name == path[0]:
            found = command
    for name in path[1:]:
        found = found.get_command(name)
    assert found is not None, path
    return found


def test_every_offered_period_is_accepted() -> None:
    for days in BACKTEST_PERIODS:
        assert parse_period(f"{days}d") == days


def test_discord_offers_the_backtest_periods() -> None:
    [period] = [p for p in _discord(("backtest",)).parameters if p.name == "period"]
    assert [c.value for c in period.choices] == list(BACKTEST_PERIODS)


def test_discord_and_rest_take_the_capital_range_of_the_use_case() -> None:
    [capital] = [p for p in _discord(("bot", "create")).parameters if p.name == "capital"]
    assert (capital.min_value, capital.max_value) == (int(MIN_CAPITAL), int(MAX_CAPITAL))
    schema = BotCreate.model_json_schema()["properties"]["capital"]
    assert (schema["minimum"], schema["maximum"]) == (int(MIN_CAPITAL), int(MAX_CAPITAL))
    assert parse_capital(MIN_CAPITAL) == MIN_CAPITAL and parse_capital(MAX_CAPITAL) == MAX_CAPITAL


async def test_telegram_offers_the_backtest_periods(settings: Settings, database: Database) -> None:
    app = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    core = ChatCore(app, rate_limiter=RateLimiter(rate=1000, burst=1000))
    ctx = ChatContext(
        platform=Platform.TELEGRAM, platform_user_id="periods", chat_id="periods",
        is_private=True, client_language="en",
    )  # fmt: skip
    try:
        [step] = await core.handle_text(ctx, "/backtest sma_crossover BTC/USDT")
        offered = [int(b.action.rsplit(":", 1)[1]) for row in step.buttons for b in row]
        assert offered == list(BACKTEST_PERIODS)
    finally:
        await app.backtests.close()
        await app.pool.close()
