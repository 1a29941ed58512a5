"""A key typed as a command's argument in a group is deleted and its owner warned.

The secret detector used to skip every message starting with "/": ``/connect binance
<key> <secret>`` posted in a group stayed there for everyone to read.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from db.models import Platform
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings

KEY = "Xk3pL9qR2mN8vB4tY7wZ1cD6fG0hJ5sAq8Wm2Ze7Rt4Yu1Io9Pa3Sd6Fg0Hj5Kl"
SECRET = "Qw8Er4Ty7Ui1Op5As3Df9Gh2Jk6Lz0Xc4Vb8Nm1Qa7Ws3Ed5Rf9Tg2Yh6Uj0Ik4"
_users = itertools.count(1)


@pytest.fixture
async def core(settings: Settings, database: Database) -> ChatCore:
    app = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    return ChatCore(app, rate_limiter=RateLimiter(rate=1000, burst=1000))


class Chat:
    def __init__(self, private: bool) -> None:
        self.deleted = 0
        user = f"kg{next(_users)}"
        self.ctx = ChatContext(
            platform=Platform.TELEGRAM,
            platform_user_id=user,
            chat_id=user if private else "-100777",
            is_private=private,
            client_language="en",
            display_name="Keys",
            delete_incoming=self.delete,
        )

    async def delete(self) -> bool:
        self.deleted += 1
        return True


@pytest.mark.parametrize(
    "text",
    [
        f"/connect binance {KEY} {SECRET}",
        f"/connect@RoboTraderBot binance {KEY}",
        f"/connect bybit key={KEY}",
        f"/newbot {KEY}",
        f"/nonsense {SECRET}",
    ],
)
async def test_a_command_carrying_a_key_in_a_group_is_deleted_and_its_author_warned(
    core: ChatCore, text: str
) -> None:
    chat = Chat(private=False)
    replies = await core.handle_text(chat.ctx, text)
    assert chat.deleted == 1
    public = [r for r in replies if not r.private]
    private = [r for r in replies if r.private]
    assert public and "deleted" in public[0].plain()
    assert private and "revoke" in private[0].plain().lower()
    for reply in replies:
        assert KEY not in reply.plain() and SECRET not in reply.plain()


@pytest.mark.parametrize(
    "text",
    [
        "/help",
        "/backtest sma_crossover BTC/USDT 90d fast=5 slow=20",
        "/start@RoboTrader2024TestBot_bot",
        "/status https://www.tradingview.com/chart/Ab3dE5gH7jK9mN1pQ3sT/",
    ],
)
async def test_ordinary_commands_in_a_group_stay(core: ChatCore, text: str) -> None:
    chat = Chat(private=False)
    await core.handle_text(chat.ctx, text)
    assert chat.deleted == 0


async def test_a_private_chat_is_unchanged(core: ChatCore) -> None:
    chat = Chat(private=True)
    await core.handle_text(replace(chat.ctx), f"/help {KEY}")
    assert chat.deleted == 0
