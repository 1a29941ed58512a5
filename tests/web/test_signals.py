"""POST /signals/{secret}: TradingView alerts stored as BotSignals and consumed by the next tick."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select, update

from db.models import Bot, BotSignal, Position
from db.types import utcnow
from engine.market_data.cache import MemoryCandleCache
from engine.market_data.feed import MarketDataFeed
from engine.tick import run_tick
from robotrader.use_cases.signals import RATE_LIMIT
from tests.web.conftest import Web

NOW = 1_764_000_000_000  # a fixed moment: replay candles are deterministic for it


async def _signal_bot(web: Web, *, running: bool = True) -> tuple[int, str]:
    user = await web.user("pro")
    bot_id = await web.bot(
        user, running=running, strategy="signal", symbols=["BTC/USDT", "ETH/USDT"]
    )
    async with web.app.database.sessions() as session:
        secret = await session.scalar(select(Bot.signal_secret).where(Bot.id == bot_id))
    assert secret
    return bot_id, secret


async def _signals(web: Web, bot_id: int) -> list[BotSignal]:
    async with web.app.database.sessions() as session:
        return list(
            await session.scalars(
                select(BotSignal).where(BotSignal.bot_id == bot_id).order_by(BotSignal.id)
            )
        )


async def test_a_json_alert_is_stored_and_the_next_tick_buys(web: Web) -> None:
    bot_id, secret = await _signal_bot(web)
    answer = await web.client.post(
        f"/signals/{secret}", json={"action": "buy", "symbol": "btcusdt", "price": 97000.5}
    )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "queued" and body["action"] == "buy" and body["symbol"] == "BTC/USDT"
    [stored] = await _signals(web, bot_id)
    assert stored.action == "buy" and str(stored.price).startswith("97000.5")
    assert stored.consumed_at is None

    feed = MarketDataFeed(web.app.pool, MemoryCandleCache(), mode="replay")
    report = await run_tick(web.app.database, feed, now_ms=NOW)
    assert report.orders_filled >= 1
    [consumed] = await _signals(web, bot_id)
    assert consumed.consumed_at is not None
    async with web.app.database.sessions() as session:
        held = await session.scalar(
            select(func.count()).select_from(Position).where(Position.bot_id == bot_id)
        )
    assert held


async def test_tradingview_text_plain_bodies_and_ticker_are_accepted(web: Web) -> None:
    bot_id, secret = await _signal_bot(web)
    message = json.dumps({"action": "SELL", "ticker": "ETHUSDT", "amount": "0.5", "extra": 1})
    answer = await web.client.post(
        f"/signals/{secret}", content=message, headers={"content-type": "text/plain"}
    )
    assert answer.status_code == 202, answer.text
    no_type = await web.client.post(f"/signals/{secret}", content=b'{"action": "close"}')
    assert no_type.status_code == 202
    assert [(s.action, s.symbol) for s in await _signals(web, bot_id)] == [
        ("sell", "ETH/USDT"),
        ("close", None),
    ]


async def test_unknown_secret_is_404(web: Web) -> None:
    await _signal_bot(web)
    for secret in ("nope", "x" * 64):
        answer = await web.client.post(f"/signals/{secret}", json={"action": "buy"})
        assert answer.status_code == 404 and answer.json()["error"] == "signal_unknown_bot"
    too_long = await web.client.post(f"/signals/{'x' * 65}", json={"action": "buy"})
    assert too_long.status_code == 422


async def test_a_bot_that_is_not_running_answers_409(web: Web) -> None:
    bot_id, secret = await _signal_bot(web, running=False)
    answer = await web.client.post(f"/signals/{secret}", json={"action": "buy"})
    assert answer.status_code == 409
    assert answer.json()["error"] == "signal_bot_not_running"
    assert "not running" in answer.json()["message"]
    assert await _signals(web, bot_id) == []


async def test_bad_bodies_are_422(web: Web) -> None:
    bot_id, secret = await _signal_bot(web)
    bodies = [
        (b"buy", "signal_not_json"),
        (b"\xff\xfe", "signal_not_json"),
        (b"[1, 2]", "signal_not_json"),
        (b"{}", "signal_bad_fields"),
        (b'{"action": 5}', "signal_bad_fields"),
        (b'{"action": "hodl"}', "signal_bad_action"),
        (b'{"action": "buy", "symbol": "SOL/USDT"}', "signal_symbol_not_traded"),
        (b'{"action": "buy", "symbol": "not a pair"}', "bad_symbol"),
        (b'{"action": "buy", "price": "-3"}', "bad_number"),
        (b'{"action": "buy", "price": "NaN"}', "signal_bad_fields"),
        (b'{"action": "buy", "amount": 1e300}', "bad_number"),
        (b'{"action": "buy\\u0000"}', None),  # NUL dropped: a valid "buy"
    ]
    for body, code in bodies:
        answer = await web.client.post(
            f"/signals/{secret}", content=body, headers={"content-type": "application/json"}
        )
        if code is None:
            assert answer.status_code == 202, answer.text
            continue
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["error"] == code, (body, answer.json())
        assert answer.json()["message"]
    big = await web.client.post(f"/signals/{secret}", content=b"{" + b" " * 20000 + b"}")
    assert big.status_code == 413
    assert len(await _signals(web, bot_id)) == 1


async def test_more_than_ten_alerts_a_minute_per_bot_are_429(web: Web) -> None:
    bot_id, secret = await _signal_bot(web)
    _, other_secret = await _signal_bot(web)
    statuses = [
        (await web.client.post(f"/signals/{secret}", json={"action": "buy"})).status_code
        for _ in range(RATE_LIMIT + 2)
    ]
    assert statuses == [202] * RATE_LIMIT + [429, 429]
    limited = await web.client.post(f"/signals/{secret}", json={"action": "buy"})
    assert limited.json()["error"] == "signal_rate_limited" and "10" in limited.json()["message"]
    # Another bot has its own budget.
    other = await web.client.post(f"/signals/{other_secret}", json={"action": "buy"})
    assert other.status_code == 202
    # A minute later the bot is heard again.
    async with web.app.database.transaction() as session:
        await session.execute(
            update(BotSignal)
            .where(BotSignal.bot_id == bot_id)
            .values(received_at=utcnow() - timedelta(minutes=2))
        )
    assert (await web.client.post(f"/signals/{secret}", json={"action": "buy"})).status_code == 202
    assert len(await _signals(web, bot_id)) == RATE_LIMIT + 1
