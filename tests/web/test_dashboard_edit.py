"""The dashboard's bot page: the edit form (CSRF), refusals translated, before/after shown."""

from __future__ import annotations

import html
from decimal import Decimal

from db.models import Bot
from tests.web.conftest import Web
from tests.web.test_dashboard import _login


def _form(**changes: str) -> dict[str, str]:
    """The form as the page fills it for a fresh DCA bot, with ``changes`` typed in."""
    fields = {
        "symbols": "BTC/USDT", "parameters": "", "capital": "1000", "tf": "1m", "sl": "",
        "tp": "", "trail": "", "max": "", "dll": "",
    }  # fmt: skip
    return {**fields, **changes}


async def _row(web: Web, bot_id: int) -> Bot:
    async with web.app.database.sessions() as session:
        bot = await session.get(Bot, bot_id)
        assert bot is not None
        return bot


async def test_the_bot_page_edits_the_bot_and_shows_before_and_after(web: Web) -> None:
    user = await web.user("pro")
    bot_id = await web.bot(user, running=True, name="alpha", stop_loss_pct="5")
    csrf = await _login(web, user)
    listing = (await web.client.get("/dashboard")).text
    assert f'href="/dashboard/bots/{bot_id}"' in listing
    page = await web.client.get(f"/dashboard/bots/{bot_id}")
    assert page.status_code == 200
    assert 'name="sl" value="5"' in page.text and 'name="csrf_token"' in page.text

    path = f"/dashboard/bots/{bot_id}/edit"
    refused = await web.client.post(path, data=_form(sl="3"))  # no CSRF token
    assert refused.status_code == 403 and (await _row(web, bot_id)).stop_loss_pct == Decimal(5)

    done = await web.client.post(path, data=_form(csrf_token=csrf, sl="3", tp="2:50,4:50", be="1"))
    text = html.unescape(done.text)
    assert done.status_code == 200 and "alpha changed" in text and "5 → 3" in text
    assert "next tick" in text and "off → 2:50,4:50" in text
    bot = await _row(web, bot_id)
    assert bot.stop_loss_pct == Decimal(3) and bot.breakeven_after_target


async def test_refusals_are_shown_in_the_users_language(web: Web) -> None:
    user = await web.user("pro", language="pt-br")
    bot_id = await web.bot(user, running=True, name="beta")
    csrf = await _login(web, user)
    path = f"/dashboard/bots/{bot_id}/edit"
    running = await web.client.post(path, data=_form(csrf_token=csrf, tf="1h"))
    assert running.status_code == 409
    assert "só pode mudar com o robô parado" in html.unescape(running.text)
    bad = await web.client.post(path, data=_form(csrf_token=csrf, sl="500"))
    assert bad.status_code == 422 and "sl=500 não é válido" in html.unescape(bad.text)
    assert (await _row(web, bot_id)).timeframe == "1m"
    other = await web.user("pro")
    theirs = await web.bot(other)
    assert (await web.client.get(f"/dashboard/bots/{theirs}")).status_code == 404
