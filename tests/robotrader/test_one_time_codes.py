"""robotrader.use_cases.one_time_codes on the real databases: hashed, single use, short lived."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from db.models import OneTimeCode
from robotrader.app import App
from robotrader.use_cases.one_time_codes import ALPHABET, consume, hash_code, issue, new_code, peek
from tests.engine.conftest import make_user

TTL = timedelta(minutes=10)


def test_codes_avoid_look_alike_characters() -> None:
    code = new_code(64)
    assert len(code) == 64 and set(code) <= set(ALPHABET)
    assert not set("01OI") & set(ALPHABET)
    assert hash_code(" abcd ") == hash_code("ABCD")


async def test_a_code_is_stored_hashed_and_used_once(app: App) -> None:
    user = await make_user(app)
    async with app.database.transaction() as session:
        code = await issue(session, user, "link", ttl=TTL)
    async with app.database.transaction() as session:
        stored = await session.scalar(select(OneTimeCode))
        assert stored is not None and stored.code_hash != code and code not in stored.code_hash
        assert await peek(session, "link", code.lower()) is not None
        assert await peek(session, "dashboard", code) is None  # another purpose
        row = await consume(session, "link", code)
        assert row is not None and row.user_id == user and row.used_at is not None
    async with app.database.transaction() as session:
        assert await peek(session, "link", code) is None
        assert await consume(session, "link", code) is None


async def test_an_expired_code_is_unknown(app: App) -> None:
    user = await make_user(app)
    async with app.database.transaction() as session:
        code = await issue(session, user, "link", ttl=-TTL, code="ABCD2345")
    assert code == "ABCD2345"
    async with app.database.transaction() as session:
        assert await peek(session, "link", code) is None
        assert await consume(session, "link", code) is None
