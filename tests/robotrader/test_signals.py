"""robotrader.use_cases.signals on the real databases: webhook alerts for signal bots."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from db.models import Bot, BotSignal
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.bots import BotSpec, create_bot, start_bot, stop_bot
from robotrader.use_cases.signals import RATE_LIMIT, SignalAlert, receive_signal
from tests.engine.conftest import make_user


async def _signal_bot(app: App, *, running: bool = True) -> tuple[int, str]:
    user = await make_user(app)
    spec = BotSpec(exchange="binance", symbols=["BTC/USDT", "ETH/USDT"], strategy="signal",
                   capital="1000")  # fmt: skip
    bot = await create_bot(app, user, spec)
    if running:
        await start_bot(app, user, bot.id)
    assert bot.signal_secret is not None
    return bot.id, bot.signal_secret


async def refused(app: App, secret: str, alert: SignalAlert) -> str:
    with pytest.raises(UserError) as raised:
        await receive_signal(app, secret, alert)
    return raised.value.key


async def test_an_alert_is_stored_for_the_tick(app: App) -> None:
    bot, secret = await _signal_bot(app)
    alert = SignalAlert("BUY", symbol="ethusdt", price="2500,5", amount="0.1")
    receipt = await receive_signal(app, f" {secret} ", alert)
    assert (receipt.bot_id, receipt.action, receipt.symbol) == (bot, "buy", "ETH/USDT")
    async with app.database.sessions() as session:
        stored = await session.get(BotSignal, receipt.signal_id)
    assert stored is not None and stored.consumed_at is None
    assert (stored.price, stored.amount) == (Decimal("2500.5"), Decimal("0.1"))


@pytest.mark.parametrize(
    ("alert", "key"),
    [
        (SignalAlert("hodl"), "signal_bad_action"),
        (SignalAlert("buy", symbol="SOL/USDT"), "signal_symbol_not_traded"),
        (SignalAlert("buy", symbol="???"), "bad_symbol"),
        (SignalAlert("buy", price="-1"), "bad_number"),
        (SignalAlert("buy", amount="1e20"), "bad_number"),
        (SignalAlert("buy", price="abc"), "bad_number"),
    ],
)
async def test_bad_alerts_are_refused(app: App, alert: SignalAlert, key: str) -> None:
    _, secret = await _signal_bot(app)
    assert await refused(app, secret, alert) == key


async def test_unknown_secrets_and_stopped_bots(app: App) -> None:
    _, secret = await _signal_bot(app, running=False)
    assert await refused(app, secret, SignalAlert("buy")) == "signal_bot_not_running"
    for wrong in ("", "x" * 65, secret[:-1]):
        assert await refused(app, wrong, SignalAlert("buy")) == "signal_unknown_bot"


async def test_alerts_left_from_before_a_stop_are_never_acted_on(app: App) -> None:
    bot, secret = await _signal_bot(app)
    receipt = await receive_signal(app, secret, SignalAlert("buy"))
    async with app.database.sessions() as session:
        user = await session.scalar(select(Bot.user_id).where(Bot.id == bot))
    assert user is not None
    await stop_bot(app, user, bot)
    await start_bot(app, user, bot)
    async with app.database.sessions() as session:
        stored = await session.get(BotSignal, receipt.signal_id)
    assert stored is not None and stored.consumed_at is not None


async def test_more_than_the_rate_limit_is_refused(app: App) -> None:
    _, secret = await _signal_bot(app)
    for _ in range(RATE_LIMIT):
        await receive_signal(app, secret, SignalAlert("sell"))
    assert await refused(app, secret, SignalAlert("sell")) == "signal_rate_limited"
    async with app.database.sessions() as session:
        count = len((await session.scalars(select(BotSignal.id))).all())
    assert count == RATE_LIMIT
