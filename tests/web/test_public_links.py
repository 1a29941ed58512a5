"""Links to the web app: built in one place, so the chat and the REST API give the same ones."""

from __future__ import annotations

from typing import Any

import pytest

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from db.models import Platform, User
from robotrader.public_links import public_url, signal_url
from robotrader.settings import Settings
from robotrader.use_cases.accounts import register
from robotrader.use_cases.web_access import issue_dashboard_link
from tests.web.conftest import Web


@pytest.fixture
def extra_settings() -> dict[str, Any]:
    return {"public_url": "https://trade.example.com/"}


def test_public_url_falls_back_to_the_listening_address(settings: Settings) -> None:
    local = settings.model_copy(update={"public_url": None, "web_host": "0.0.0.0", "web_port": 81})
    assert public_url(local, "/docs") == "http://0.0.0.0:81/docs"
    remote = settings.model_copy(update={"public_url": "https://x.example/"})
    assert public_url(remote) == "https://x.example"
    assert signal_url(remote, "abc") == "https://x.example/signals/abc"


async def test_chat_api_and_dashboard_links_share_the_public_url(web: Web) -> None:
    user_id, headers = await web.premium()
    made = await web.api_bot(
        headers, exchange="binance", symbols=["BTC/USDT"], strategy="signal", capital="100"
    )
    api_url = made["signal_webhook_url"]
    assert api_url.startswith("https://trade.example.com/signals/")

    account = await register(web.app, Platform.TELEGRAM, "links-chat", chat_id="links-chat")
    async with web.app.database.transaction() as session:
        user = await session.get(User, account.user_id)
        assert user is not None
        user.plan = "pro"  # type: ignore[assignment]
    core = ChatCore(web.app, rate_limiter=RateLimiter(rate=1000, burst=1000))
    chat = ChatContext(
        platform=Platform.TELEGRAM, platform_user_id="links-chat", chat_id="links-chat",
        is_private=True, client_language="en",
    )  # fmt: skip
    [confirm] = await core.handle_text(chat, "/newbot binance BTC/USDT signal 100")
    create = next(b for row in confirm.buttons for b in row if b.action.endswith("nbc"))
    [created] = await core.handle_action(chat, create.action)
    secret = created.plain().split("/signals/", 1)[1].split()[0]
    assert signal_url(web.app.settings, secret) in created.plain()
    assert api_url.rsplit("/", 1)[0] == signal_url(web.app.settings, secret).rsplit("/", 1)[0]

    link = await issue_dashboard_link(web.app, user_id)
    assert link.startswith("https://trade.example.com/dashboard/login/")
