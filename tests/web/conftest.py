"""The web app on both databases: driven in-process with httpx, or served by uvicorn locally."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from db.models import Bot, BotMode, BotStatus, Platform, Position, Trade, User
from db.session import Database
from db.types import utcnow
from robotrader.app import App
from robotrader.settings import Settings
from robotrader.use_cases.accounts import register
from robotrader.use_cases.bots import BotSpec, create_bot, start_bot
from robotrader.use_cases.web_access import create_api_token
from tests.engine.conftest import bot_settings_of
from tests.secret_audit import AUDIT
from web.app import create_app

_names = itertools.count(1)



@dataclass
class Web:
    app: App
    api: FastAPI
    client: httpx.AsyncClient

    async def user(self, plan: str = "premium", language: str = "en") -> int:
        """A registered user on ``plan`` (rows written as the product writes them)."""
        name = f"web{next(_names)}"
        account = await register(
            self.app, Platform.TELEGRAM, name, chat_id=name, client_language=language
        )
        async with self.app.database.transaction() as session:
            user = await session.get(User, account.user_id)
            assert user is not None
            user.plan = plan  # type: ignore[assignment]
        return account.user_id

    async def token(self, user_id: int) -> str:
        return (await create_api_token(self.app, user_id)).token

    async def premium(self, language: str = "en") -> tuple[int, dict[str, str]]:
        """A Premium user and the Authorization header of a fresh token of theirs."""
        user_id = await self.user("premium", language)
        return user_id, {"Authorization": f"Bearer {await self.token(user_id)}"}

    async def api_bot(self, headers: dict[str, str], **body: Any) -> dict[str, Any]:
        """A bot made through ``POST /api/v1/bots``, as the API answers it."""
        response = await self.client.post("/api/v1/bots", headers=headers, json=body)
        assert response.status_code == 201, response.text
        made: dict[str, Any] = response.json()
        return made

    async def bot(self, user_id: int, *, running: bool = False, **spec: Any) -> int:
        values: dict[str, Any] = {
            "exchange": "binance", "symbols": ["BTC/USDT"], "strategy": "dca", "capital": "1000",
        }  # fmt: skip
        values.update(spec)
        settings = bot_settings_of(values)
        bot = await create_bot(self.app, user_id, BotSpec(**values, settings=settings))
        if running:
            await start_bot(self.app, user_id, bot.id)
        return bot.id

    async def history(self, user_id: int, bot_id: int) -> None:
        """Two closed trades (one win, one loss) and an open position for ``bot_id``."""
        now = utcnow()
        async with self.app.database.transaction() as session:
            bot = await session.get(Bot, bot_id)
            assert bot is not None
            for days, pnl in ((3, Decimal("12.5")), (1, Decimal("-2.25"))):
                session.add(
                    Trade(
                        user_id=user_id, bot_id=bot_id, mode=BotMode.PAPER, symbol="BTC/USDT",
                        amount=Decimal("0.01"), entry_price=Decimal("90000"),
                        exit_price=Decimal("90000") + pnl * 100, pnl=pnl,
                        pnl_pct=Decimal("1.39") if pnl > 0 else Decimal("-0.25"),
                        fees=Decimal("0.18"), exit_reason="exit",
                        opened_at=now - timedelta(days=days, hours=2),
                        closed_at=now - timedelta(days=days),
                    )
                )  # fmt: skip
            session.add(
                Position(
                    user_id=user_id, bot_id=bot_id, symbol="BTC/USDT", amount=Decimal("0.002"),
                    average_entry=Decimal("95000"), cost=Decimal("190"), entries=1,
                    opened_at=now - timedelta(hours=1),
                )
            )  # fmt: skip

    async def bot_status(self, bot_id: int) -> BotStatus:
        async with self.app.database.sessions() as session:
            bot = await session.get(Bot, bot_id)
            assert bot is not None
            return BotStatus(bot.status)


def web_settings(settings: Settings, **extra: Any) -> Settings:
    return settings.model_copy(update={"market_data": "replay", **extra})


async def audit_response(response: httpx.Response) -> None:
    """Every answer of the web app goes to the secrets audit (pages, headers, cookies)."""
    await response.aread()
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    AUDIT.scan(f"web:{response.request.url.path[:40]}", headers + "\n" + response.text)


@pytest.fixture
def extra_settings() -> dict[str, Any]:
    """Settings a test module adds (override this fixture in the module)."""
    return {}


@pytest.fixture
async def web(
    settings: Settings, database: Database, extra_settings: dict[str, Any]
) -> AsyncIterator[Web]:
    app = App.from_settings(web_settings(settings, **extra_settings), database)
    api = create_app(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url="http://test",
        event_hooks={"response": [audit_response]},
    ) as client:
        yield Web(app, api, client)
    await app.pool.close()


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: pytest keeps Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(api: FastAPI) -> AsyncIterator[str]:
    """``api`` served by uvicorn on 127.0.0.1 (a free port) in this event loop; yields its URL."""
    config = uvicorn.Config(api, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            await task  # raises what stopped it
            raise RuntimeError("uvicorn did not start")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)
