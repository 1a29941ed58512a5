"""How a user names a bot: an id (ASCII digits, in range) or a name that is not a number.

``str.isdigit()`` took '²' for a digit (int() then crashed); an id past SQLite's integer
range overflowed in the driver; a bot named ``1`` made ``/startbot 1`` ambiguous. Every
such reference now ends in a clear "no such bot", never an apology with a traceback.
"""

from __future__ import annotations

import itertools
import logging

import pytest

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from db.models import Platform
from db.session import Database
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.settings import Settings
from robotrader.use_cases.bot_refs import MAX_ID, BotRef, parse_bot_ref
from robotrader.use_cases.bots import BotSpec, create_bot, show_bot, start_bot

_users = itertools.count(1)
STRANGE = [
    "²", "¹²", "١٢", "𝟙", "99999999999999999999", str(2**31), str(2**63), "-1", "0", "1e3",
    " 0x1", "+1", "1_000",
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", BotRef(id=7)),
        (" 42 ", BotRef(id=42)),
        (str(MAX_ID), BotRef(id=MAX_ID)),
        ("Alpha", BotRef(name="alpha")),
        ("my bot 2", BotRef(name="my bot 2")),
        ("²", BotRef(name="²")),
    ],
)
def test_parsing(text: str, expected: BotRef) -> None:
    assert parse_bot_ref(text) == expected


@pytest.mark.parametrize("text", ["0", "00", str(MAX_ID + 1), "9" * 30, ""])
def test_ids_out_of_range_are_no_such_bot(text: str) -> None:
    with pytest.raises(UserError) as raised:
        parse_bot_ref(text)
    assert raised.value.key == "bot_not_found"


@pytest.fixture
async def app(settings: Settings, database: Database) -> App:
    return App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)


async def _user(app: App) -> int:
    from robotrader.use_cases.accounts import register

    name = f"ref{next(_users)}"
    return (await register(app, Platform.TELEGRAM, name, chat_id=name)).user_id


def _spec(name: str | None = None) -> BotSpec:
    return BotSpec(
        exchange="binance", symbols=["BTC/USDT"], strategy="sma_crossover", capital="100",
        name=name,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["1", "007", "²", "١٢", " 12 "])
async def test_a_name_that_is_a_number_is_refused(app: App, name: str) -> None:
    user = await _user(app)
    with pytest.raises(UserError) as raised:
        await create_bot(app, user, _spec(name))
    assert raised.value.key == "bot_name_is_number"


async def test_every_strange_reference_is_no_such_bot(app: App) -> None:
    user = await _user(app)
    bot = await create_bot(app, user, _spec("alpha"))
    assert (await show_bot(app, user, str(bot.id))).id == bot.id
    assert (await show_bot(app, user, "ALPHA")).id == bot.id
    for text in STRANGE:
        with pytest.raises(UserError) as raised:
            await start_bot(app, user, text)
        assert raised.value.key == "bot_not_found", text


async def test_in_chat_the_answer_is_no_such_bot_without_a_traceback(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    core = ChatCore(app, rate_limiter=RateLimiter(rate=1000, burst=1000))
    ctx = ChatContext(
        platform=Platform.TELEGRAM, platform_user_id="refchat", chat_id="refchat",
        is_private=True, client_language="en",
    )  # fmt: skip
    caplog.set_level(logging.ERROR)
    for command in ("startbot", "stopbot", "deletebot", "live", "backtest", "chart"):
        for text in ("²", "99999999999999999999"):
            [reply] = await core.handle_text(ctx, f"/{command} {text}")
            answer = reply.plain().lower()
            assert "no bot" in answer or "neither one of your bots" in answer, (command, text)
    for text in ("²", "99999999999999999999"):
        replies = await core.handle_text(ctx, f"/trades {text}")
        assert not any("went wrong" in r.plain().lower() for r in replies), text
        [hour] = await core.handle_text(ctx, f"/settings hour {text}")
        assert "went wrong" not in hour.plain(), text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
