"""The paid path: /upgrade in Telegram, Stripe checkout, webhook, confirmation in chat."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.billing.conftest import API_KEY, PRICES, WEBHOOK_SECRET
from tests.bots.telegram.conftest import RunningBot
from tests.bots.telegram.test_e2e import button, new_user
from tests.emulators.stripe_api import StripeEmulator
from web.app import create_app


@pytest.fixture(scope="module")
def stripe_emulator() -> Iterator[StripeEmulator]:
    with StripeEmulator(api_key=API_KEY, prices=PRICES) as emulator:
        yield emulator


@pytest.fixture
def extra_settings(stripe_emulator: StripeEmulator) -> dict[str, Any]:
    return {
        "stripe_api_key": SecretStr(API_KEY),
        "stripe_api_base": stripe_emulator.base_url,
        "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
        "stripe_price_pro": "price_pro",
        "stripe_price_premium": "price_premium",
    }


async def test_upgrade_in_chat_is_confirmed_in_chat_and_limits_change(
    telegram_bot: RunningBot, stripe_emulator: StripeEmulator
) -> None:
    emu = telegram_bot.emulator
    user = new_user(telegram_bot)
    emu.user_sends(user, "/plan")
    plan = await telegram_bot.says(user, "Seu plano: Free")
    assert "0 / 1" in plan["text"]
    emu.user_sends(user, "/newbot binance BTC/USDT grid 500")
    await telegram_bot.says(user, "não está no plano Free")

    emu.user_presses(user, plan, button(plan, "upgrade"))
    choose = await telegram_bot.says(user, "Premium: todas as corretoras")
    emu.user_presses(user, choose, button(choose, "Pro"))
    link = await telegram_bot.says(user, "checkout seguro da Stripe")
    url = link["reply_markup"]["inline_keyboard"][0][0]["url"]
    session_id = url.rstrip("/").rsplit("/", 1)[-1]
    assert url.startswith(stripe_emulator.base_url) and session_id.startswith("cs_")

    stripe_emulator.complete_checkout(session_id)  # the user pays on Stripe's page
    web = create_app(telegram_bot.app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web), base_url="http://t"
    ) as client:
        for webhook in stripe_emulator.signed_requests(WEBHOOK_SECRET):
            answer = await client.post(
                "/stripe/webhook", content=webhook.body, headers=webhook.headers
            )
            assert answer.status_code == 200
    await telegram_bot.says(user, "Agora você está no Pro", timeout=20)

    emu.user_sends(user, "/newbot binance BTC/USDT grid 500")
    confirm = await telegram_bot.says(user, "Criar este robô?")
    emu.user_presses(user, confirm, button(confirm, "Criar"))
    await telegram_bot.says(user, "criado")
