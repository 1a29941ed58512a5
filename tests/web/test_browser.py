"""The dashboard in a real browser: headless Chromium over the DevTools protocol.

The app is served by uvicorn on 127.0.0.1; Chromium opens the login link a user
gets from /dashboard, the page loads htmx from our own /static, a click on a
bot's Stop button sends the htmx request with the CSRF header, the row is
swapped in place and the database says the bot stopped. Chromium must be
installed (``make test`` installs it): without it this test fails, it never skips.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from robotrader.use_cases.web_access import issue_dashboard_link
from tests.web.cdp import Browser, ChromiumMissing, launch, open_page
from tests.web.conftest import Web, serving


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        with launch() as running:
            yield running
    except ChromiumMissing as exc:
        pytest.fail(str(exc), pytrace=False)


async def test_stop_a_bot_from_the_dashboard_in_chromium(web: Web, browser: Browser) -> None:
    user = await web.user("pro")
    alpha = await web.bot(user, running=True, name="alpha")
    beta = await web.bot(user, running=True, name="beta", symbols=["ETH/USDT"])
    await web.history(user, alpha)

    async with serving(web.api) as base_url, open_page(browser) as page:
        # The link is the one the chat sends, for where the app is reachable.
        web.app.settings = web.app.settings.model_copy(update={"public_url": base_url})
        link = await issue_dashboard_link(web.app, user)
        await page.goto(link)
        assert await page.evaluate("location.pathname") == "/dashboard"
        await page.wait_for("typeof htmx !== 'undefined' && htmx.version.startsWith('2.')")
        assert await page.evaluate("document.querySelectorAll('#bots tbody tr').length") == 2
        assert await page.evaluate("!!document.querySelector('#equity svg polyline')")
        assert await page.evaluate("document.cookie") == ""  # HttpOnly: not visible to scripts

        await page.evaluate(f"document.querySelector('#bot-{alpha} button.stop').click()")
        await page.wait_for(f"document.querySelector('#bot-{alpha}').dataset.status === 'stopped'")
        assert await page.evaluate(
            f"document.querySelector('#bot-{alpha} button').textContent.trim()"
        ) == "Start"
        assert await page.evaluate("document.querySelector('#flash').textContent.trim()") == ""
        assert await web.bot_status(alpha) == "stopped"
        assert await web.bot_status(beta) == "running"

        # The same click without the page's CSRF header is refused by the server.
        status = await page.evaluate(
            f"fetch('/dashboard/bots/{beta}/stop', {{method: 'POST'}}).then(r => r.status)"
        )
        assert status == 403 and await web.bot_status(beta) == "running"

        await page.evaluate("document.querySelector('#logout').click()")
        await page.wait_for("document.querySelector('#message') !== null")
        assert "logged out" in await page.evaluate("document.body.textContent")
        await page.goto(f"{base_url}/dashboard")
        assert "/dashboard" in await page.evaluate("document.querySelector('#message').textContent")

        problems = [p for p in page.problems() if "401" not in p and "403" not in p]
        assert problems == [], problems
