"""Webhook signals (TradingView-style alerts) for bots running the signal strategy.

An alert is stored as a BotSignal; the next engine tick consumes it (the newest
pending alert of a bot wins). The bot's secret in the URL is the only
credential, so nothing here says whether a secret exists beyond "not found".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select

from db.models import Bot, BotSignal, BotStatus
from db.types import utcnow
from engine.tick import SIGNAL_CODES
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.text import clean_text
from robotrader.use_cases.bots import normalize_symbol

RATE_LIMIT = 10  # alerts per bot ...
RATE_WINDOW = timedelta(minutes=1)  # ... in this window
MAX_SECRET_LENGTH = 64
# Money(38, 18) holds 20 integer digits; no price or amount comes near this.
MAX_NUMBER = Decimal("1e15")


@dataclass(frozen=True)
class SignalAlert:
    """What an alert says; the strings are as received (validated by `receive_signal`)."""

    action: str
    symbol: str | None = None
    price: Decimal | str | None = None
    amount: Decimal | str | None = None


@dataclass(frozen=True)
class SignalReceipt:
    signal_id: int
    bot_id: int
    action: str
    symbol: str | None
    received_at: datetime


def _number(value: Decimal | str | None, name: str) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = clean_text(str(value), max_length=40).strip().replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise UserError("bad_number", name=name, value=text[:20]) from None
    if not number.is_finite() or not Decimal(0) < number < MAX_NUMBER:
        raise UserError("bad_number", name=name, value=text[:20])
    # Money keeps 18 decimals: round here rather than let the database do it differently.
    return number.quantize(Decimal("1e-18"))


async def receive_signal(app: App, bot_secret: str, alert: SignalAlert) -> SignalReceipt:
    """Store one alert for the bot whose webhook secret is ``bot_secret``.

    UserError keys: ``signal_unknown_bot`` (no such secret), ``signal_bot_not_running``,
    ``signal_bad_action``, ``signal_symbol_not_traded``, ``bad_symbol``, ``bad_number``
    and ``signal_rate_limited`` (more than RATE_LIMIT alerts a minute for one bot).
    """
    secret = bot_secret.strip()
    if not 0 < len(secret) <= MAX_SECRET_LENGTH:
        raise UserError("signal_unknown_bot")
    async with app.database.transaction() as session:
        # Locked: concurrent alerts of one bot are counted against the limit one at a time.
        bot = await session.scalar(
            select(Bot).where(Bot.signal_secret == secret).with_for_update()
        )
        if bot is None or bot.strategy != "signal":
            raise UserError("signal_unknown_bot")
        if bot.status != BotStatus.RUNNING:
            raise UserError("signal_bot_not_running", bot=bot.name)
        action = clean_text(alert.action, max_length=16).strip().lower()
        if action not in SIGNAL_CODES:
            raise UserError(
                "signal_bad_action", action=action[:16], choices=", ".join(SIGNAL_CODES)
            )
        symbol = None
        if alert.symbol is not None and alert.symbol.strip():
            symbol = normalize_symbol(clean_text(alert.symbol, max_length=40))
            if symbol not in bot.symbols:
                raise UserError(
                    "signal_symbol_not_traded", symbol=symbol, bot=bot.name,
                    symbols=", ".join(bot.symbols),
                )  # fmt: skip
        price = _number(alert.price, "price")
        amount = _number(alert.amount, "amount")
        now = utcnow()
        recent = await session.scalar(
            select(func.count())
            .select_from(BotSignal)
            .where(BotSignal.bot_id == bot.id, BotSignal.received_at > now - RATE_WINDOW)
        )
        if (recent or 0) >= RATE_LIMIT:
            raise UserError("signal_rate_limited", maximum=RATE_LIMIT)
        signal = BotSignal(
            bot_id=bot.id, action=action, symbol=symbol, price=price, amount=amount,
            received_at=now,
        )  # fmt: skip
        session.add(signal)
        await session.flush()
        return SignalReceipt(signal.id, bot.id, action, symbol, now)
