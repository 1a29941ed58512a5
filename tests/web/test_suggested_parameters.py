"""One default for a new grid's range: the chat, the REST API and /backtest agree.

The range sits around the live price (±10 %), whatever the pair; the grid's static
defaults (a range for BTC) are only what is left when no price can be had.
"""

from __future__ import annotations

from typing import Any

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from db.models import Platform, User
from engine.strategies.registry import get_strategy
from robotrader.use_cases.accounts import register
from robotrader.use_cases.backtests import BacktestRequest, resolve_spec
from robotrader.use_cases.bots import suggested_parameters
from tests.web.conftest import Web


async def _same_minute(web: Web, symbol: str, read: Any) -> tuple[dict[str, Any], Any]:
    """What ``read()`` gives, and the suggestion of the same candle (the replay price moves)."""
    for _ in range(3):
        before = await suggested_parameters(web.app, "binance", symbol, "grid")
        result = await read()
        if before == await suggested_parameters(web.app, "binance", symbol, "grid"):
            return before, result
    raise AssertionError("the price kept moving")


async def test_the_api_chat_and_backtest_suggest_the_same_grid_range(web: Web) -> None:
    user_id, headers = await web.premium()
    static = get_strategy("grid").defaults()

    async def created() -> dict[str, Any]:
        made = await web.api_bot(
            headers, exchange="binance", symbols=["ETH/USDT"], strategy="grid", capital="500"
        )
        parameters: dict[str, Any] = made["parameters"]
        return parameters

    suggested, api = await _same_minute(web, "ETH/USDT", created)
    assert (api["lower"], api["upper"]) == (suggested["lower"], suggested["upper"])
    assert (api["lower"], api["upper"]) != (static["lower"], static["upper"])
    assert api["lower"] < api["upper"] < static["lower"]  # ETH is nowhere near BTC's range

    async def backtested() -> dict[str, Any]:
        request = BacktestRequest("grid", symbol="ETH/USDT", period="2d")
        spec, _ = await resolve_spec(web.app, user_id, request)
        return spec.parameters

    suggested, backtest = await _same_minute(web, "ETH/USDT", backtested)
    assert (backtest["lower"], backtest["upper"]) == (suggested["lower"], suggested["upper"])

    core = ChatCore(web.app, rate_limiter=RateLimiter(rate=1000, burst=1000))
    account = await register(web.app, Platform.TELEGRAM, "grid-chat", chat_id="grid-chat")
    async with web.app.database.transaction() as session:
        user = await session.get(User, account.user_id)
        assert user is not None
        user.plan = "pro"  # type: ignore[assignment]
    chat = ChatContext(
        platform=Platform.TELEGRAM, platform_user_id="grid-chat", chat_id="grid-chat",
        is_private=True, client_language="en",
    )  # fmt: skip

    async def confirmed() -> str:
        [reply] = await core.handle_text(chat, "/newbot binance ETH/USDT grid 500")
        return reply.plain()

    suggested, text = await _same_minute(web, "ETH/USDT", confirmed)
    assert f"lower={suggested['lower']}" in text and f"upper={suggested['upper']}" in text


async def test_given_bounds_are_kept(web: Web) -> None:
    given = {"lower": 1000.0, "upper": 2000.0}
    parameters = await suggested_parameters(web.app, "binance", "ETH/USDT", "grid", given)
    assert (parameters["lower"], parameters["upper"]) == (1000.0, 2000.0)
    parameters = await suggested_parameters(web.app, "binance", "ETH/USDT", "dca")
    assert parameters == get_strategy("dca").defaults()
