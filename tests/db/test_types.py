"""Money survives the round trip exactly, and datetimes come back aware, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from db.models import PaperBalance, User
from db.session import Database


async def test_money_and_time_round_trip(database: Database) -> None:
    exact = Decimal("12345678901234567890.123456789012345678")
    tiny = Decimal("0.000000000000000001")
    async with database.transaction() as session:
        user = User()
        session.add(user)
        await session.flush()
        session.add_all(
            [
                PaperBalance(user_id=user.id, asset="BTC", amount=exact),
                PaperBalance(user_id=user.id, asset="SHIB", amount=tiny),
            ]
        )
        user_id = user.id
    async with database.sessions() as session:
        btc = await session.get(PaperBalance, (user_id, "BTC"))
        shib = await session.get(PaperBalance, (user_id, "SHIB"))
        user = await session.get(User, user_id)
    assert btc is not None and btc.amount == exact
    assert shib is not None and shib.amount == tiny
    assert user is not None and user.created_at.tzinfo is not None
    assert abs(datetime.now(UTC) - user.created_at).total_seconds() < 60
