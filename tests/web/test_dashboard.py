"""The dashboard over HTTP: one-time login links, session cookies, CSRF, pages and logout."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import httpx
from sqlalchemy import func, select, update

from db.models import Bot, BotMode, OneTimeCode, Trade, WebSession
from db.types import utcnow
from engine.tick import run_tick
from robotrader.app import App
from robotrader.use_cases.web_access import issue_dashboard_link
from tests.web.conftest import Web
from web.app import create_app
from web.charts import PAD_LEFT, PAD_RIGHT, WIDTH


async def _login(web: Web, user_id: int, client: httpx.AsyncClient | None = None) -> str:
    """Open a session for ``user_id`` the way a user does; returns the page's CSRF token."""
    client = client or web.client
    link = await issue_dashboard_link(web.app, user_id)
    answer = await client.get(link.replace("http://127.0.0.1:8000", ""))
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
    page = await client.get("/dashboard")
    assert page.status_code == 200
    match = re.search(r"hx-headers='\{&#34;X-CSRF-Token&#34;: &#34;([\w\-]+)&#34;\}'", page.text)
    assert match, page.text[:500]
    return match.group(1)


async def test_the_login_link_opens_a_session_with_safe_cookie_flags(web: Web) -> None:
    user = await web.user("free")
    link = await issue_dashboard_link(web.app, user)
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/dashboard/login/[A-Z2-9]{32}", link)
    async with web.app.database.sessions() as session:
        code = await session.scalar(select(OneTimeCode).where(OneTimeCode.user_id == user))
    assert code is not None and code.purpose == "dashboard"
    lifetime = code.expires_at - utcnow()
    assert timedelta(minutes=9) < lifetime <= timedelta(minutes=10)

    answer = await web.client.get(link.removeprefix("http://127.0.0.1:8000"))
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("rt_session=")
    for flag in ("HttpOnly", "SameSite=lax", "Path=/dashboard", "Max-Age=43200"):
        assert flag.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # plain http on localhost
    token = cookie.split(";", 1)[0].split("=", 1)[1]
    async with web.app.database.sessions() as session:
        stored = await session.scalar(select(WebSession).where(WebSession.user_id == user))
    assert stored is not None and token not in (stored.token_hash, stored.csrf_token)


async def test_a_login_link_works_once(web: Web) -> None:
    user = await web.user()
    link = (await issue_dashboard_link(web.app, user)).removeprefix("http://127.0.0.1:8000")
    assert (await web.client.get(link)).status_code == 303
    web.client.cookies.clear()
    again = await web.client.get(link)
    assert again.status_code == 400
    assert "already used" in again.text and "/dashboard" in again.text
    assert "set-cookie" not in again.headers
    assert (await web.client.get("/dashboard")).status_code == 401


async def test_an_expired_login_link_is_refused(web: Web) -> None:
    user = await web.user()
    link = (await issue_dashboard_link(web.app, user)).removeprefix("http://127.0.0.1:8000")
    async with web.app.database.transaction() as session:
        await session.execute(
            update(OneTimeCode).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    answer = await web.client.get(link)
    assert answer.status_code == 400 and "expired" in answer.text
    for bogus in ("/dashboard/login/NOPE", "/dashboard/login/" + "A" * 200):
        assert (await web.client.get(bogus)).status_code == 400


async def test_the_page_shows_bots_positions_trades_and_the_equity_curve(web: Web) -> None:
    user = await web.user("pro")
    bot_id = await web.bot(user, running=True, name="alpha")
    await web.history(user, bot_id)
    await _login(web, user)
    page = await web.client.get("/dashboard")
    html = page.text
    assert f'id="bot-{bot_id}"' in html and "alpha" in html
    assert f'hx-post="/dashboard/bots/{bot_id}/stop"' in html
    assert "Open positions" in html and "0.002" in html
    assert "Last 2 trades" in html and "-2.25 USDT" in html and "+12.50 USDT" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and "<polyline" in html
    assert '<script src="/static/htmx.min.js"' in html and "cdn" not in html.lower()
    headers = page.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"

    script = await web.client.get("/static/htmx.min.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "htmx" in script.text[:200]


async def test_the_page_speaks_portuguese(web: Web) -> None:
    user = await web.user("pro", language="pt-br")
    await web.bot(user, name="beta")
    await _login(web, user)
    html = (await web.client.get("/dashboard")).text
    assert 'lang="pt-BR"' in html and "Sair" in html and "Ligar" in html
    assert "Seus robôs" in html and "Nenhuma posição aberta." in html


async def test_a_bot_page_shows_it_alive_and_what_it_decides_on(web: Web) -> None:
    user = await web.user("pro")
    bot_id = await web.bot(user, running=True, name="gamma", strategy="dca")
    await run_tick(web.app.database, web.app.feed)  # the DCA bot buys at once
    await _login(web, user)
    listed = (await web.client.get("/dashboard")).text
    assert f'href="/dashboard/bots/{bot_id}"' in listed
    page = await web.client.get(f"/dashboard/bots/{bot_id}")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    evaluated = re.search(r'id="last-evaluated">([^<]+)<', html)
    assert evaluated is not None and "ago (" in evaluated.group(1)
    decision = re.search(r'id="next-decision">([^<]+)<', html)
    assert decision is not None and decision.group(1).startswith("in ")
    assert "next safety order 1 at " in html and "take profit at " in html
    assert "holds " in html and "BTC/USDT at " in html
    other = await web.user("pro")
    await _login(web, other)
    assert (await web.client.get(f"/dashboard/bots/{bot_id}")).status_code == 404


async def test_state_changes_need_the_csrf_token(web: Web) -> None:
    user = await web.user()
    bot_id = await web.bot(user, running=True)
    csrf = await _login(web, user)
    path = f"/dashboard/bots/{bot_id}/stop"

    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
        refused = await web.client.post(path, headers={"HX-Request": "true", **headers})
        assert refused.status_code == 403, headers
        assert await web.bot_status(bot_id) == "running"

    stopped = await web.client.post(path, headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert stopped.status_code == 200
    assert f'id="bot-{bot_id}"' in stopped.text and 'data-status="stopped"' in stopped.text
    assert f'hx-post="/dashboard/bots/{bot_id}/start"' in stopped.text
    assert await web.bot_status(bot_id) == "stopped"

    started = await web.client.post(
        f"/dashboard/bots/{bot_id}/start", headers={"X-CSRF-Token": csrf}
    )
    assert started.status_code == 200 and await web.bot_status(bot_id) == "running"


async def test_other_users_bots_cannot_be_touched(web: Web) -> None:
    owner = await web.user()
    bot_id = await web.bot(owner, running=True)
    intruder = await web.user()
    csrf = await _login(web, intruder)
    answer = await web.client.post(
        f"/dashboard/bots/{bot_id}/stop", headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 404
    assert await web.bot_status(bot_id) == "running"


async def test_use_case_refusals_show_in_the_flash_area(web: Web) -> None:
    user = await web.user("free")
    first = await web.bot(user, name="one", strategy="rsi")
    async with web.app.database.transaction() as session:
        from db.models import Bot

        # A second bot over the Free plan's limit (left from a downgrade): it may not start.
        session.add(
            Bot(user_id=user, name="two", exchange="binance", symbols=["ETH/USDT"],
                strategy="sma_crossover", parameters={}, capital=100)
        )  # fmt: skip
    csrf = await _login(web, user)
    async with web.app.database.sessions() as session:
        from db.models import Bot

        second = await session.scalar(select(Bot.id).where(Bot.user_id == user, Bot.id != first))
    answer = await web.client.post(
        f"/dashboard/bots/{second}/start", headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 200
    assert 'id="flash"' in answer.text and 'hx-swap-oob="true"' in answer.text
    assert "/upgrade" in answer.text
    assert await web.bot_status(second) == "stopped"


async def test_without_a_session_the_page_says_how_to_log_in(web: Web) -> None:
    page = await web.client.get("/dashboard")
    assert page.status_code == 401 and "/dashboard" in page.text
    assert "text/html" in page.headers["content-type"]
    post = await web.client.post("/dashboard/bots/1/stop", headers={"HX-Request": "true"})
    assert post.status_code == 401 and post.headers["hx-refresh"] == "true"
    web.client.cookies.set("rt_session", "forged", path="/dashboard")
    assert (await web.client.get("/dashboard")).status_code == 401


async def test_sessions_expire(web: Web) -> None:
    user = await web.user()
    await _login(web, user)
    async with web.app.database.transaction() as session:
        await session.execute(update(WebSession).values(expires_at=utcnow()))
    assert (await web.client.get("/dashboard")).status_code == 401


async def test_logout_ends_the_session(web: Web) -> None:
    user = await web.user()
    csrf = await _login(web, user)
    cookie = web.client.cookies.get("rt_session")
    refused = await web.client.post("/dashboard/logout", data={"csrf_token": "nope"})
    assert refused.status_code == 403
    answer = await web.client.post("/dashboard/logout", data={"csrf_token": csrf})
    assert answer.status_code == 200 and "logged out" in answer.text
    assert 'rt_session=""' in answer.headers["set-cookie"] or "Max-Age=0" in answer.headers[
        "set-cookie"
    ]
    async with web.app.database.sessions() as session:
        left = await session.scalar(select(func.count()).select_from(WebSession))
    assert left == 0
    web.client.cookies.set("rt_session", cookie or "", path="/dashboard")
    assert (await web.client.get("/dashboard")).status_code == 401


async def test_cookies_are_secure_behind_https(web: Web) -> None:
    settings = web.app.settings.model_copy(update={"public_url": "https://robo.example"})
    app = App.from_settings(settings, web.app.database)
    user = await web.user()
    link = await issue_dashboard_link(app, user)
    assert link.startswith("https://robo.example/dashboard/login/")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(app)), base_url="https://robo.example"
    ) as client:
        answer = await client.get(link)
    assert answer.status_code == 303 and "secure" in answer.headers["set-cookie"].lower()
    await app.pool.close()


async def test_the_kill_switch_stops_every_bot_and_says_what_it_did(web: Web) -> None:
    user = await web.user()
    bots = [await web.bot(user, running=True, name=f"k{i}") for i in range(2)]
    csrf = await _login(web, user)
    page = await web.client.get("/dashboard")
    assert 'id="sell-all"' in page.text and 'hx-post="/dashboard/kill-switch"' in page.text
    refused = await web.client.post("/dashboard/kill-switch", data={"close": "1"})
    assert refused.status_code == 403
    answer = await web.client.post(
        "/dashboard/kill-switch", data={"close": "1"}, headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 200
    assert "2 bot(s) stopped" in answer.text and 'id="flash"' in answer.text
    for bot_id in bots:
        assert f'id="bot-{bot_id}" data-status="stopped" hx-swap-oob="true"' in answer.text
        assert await web.bot_status(bot_id) == "stopped"


def _polyline(html: str) -> list[tuple[float, float]]:
    match = re.search(r'<polyline [^>]*points="([^"]+)"', html)
    assert match, html
    return [(float(x), float(y)) for x, y in (p.split(",") for p in match.group(1).split())]


async def test_the_equity_curve_with_one_trade_steps_from_the_start_to_now(web: Web) -> None:
    user = await web.user("pro")
    bot_id = await web.bot(user, name="solo")
    async with web.app.database.transaction() as session:
        await session.execute(
            update(Bot).where(Bot.id == bot_id).values(created_at=utcnow() - timedelta(days=10))
        )
        session.add(
            Trade(
                bot_id=bot_id, user_id=user, symbol="BTC/USDT", mode=BotMode.PAPER,
                amount=Decimal("0.01"), entry_price=Decimal(90_000), exit_price=Decimal(91_000),
                pnl=Decimal("12.5"), pnl_pct=Decimal(1), fees=Decimal("0.1"), exit_reason="exit",
                opened_at=utcnow() - timedelta(days=5, hours=1),
                closed_at=utcnow() - timedelta(days=5),
            )
        )  # fmt: skip
    await _login(web, user)
    html = (await web.client.get("/dashboard")).text
    points = _polyline(html)
    # Flat from the bot's creation (left edge), a step at the close (mid-way), flat to now.
    left, right = PAD_LEFT, WIDTH - PAD_RIGHT
    assert points[0][0] == left and points[-1][0] == right
    assert len(points) == 5
    (_, y0), (x1, y1), (x2, y2), (x3, y3), (x4, y4) = points
    assert y0 == y1 and x1 == x2 and y2 < y1 and y2 == y3 == y4 and x3 == x4 == right
    assert left + (right - left) * 0.4 < x1 < left + (right - left) * 0.6
    assert "no trade yet" not in html


async def test_the_equity_curve_without_trades_is_flat_and_says_so(web: Web) -> None:
    user = await web.user("pro", language="pt-br")
    await web.bot(user, name="quiet")
    await _login(web, user)
    html = (await web.client.get("/dashboard")).text
    points = _polyline(html)
    assert points[0][0] == PAD_LEFT and points[-1][0] == WIDTH - PAD_RIGHT
    assert len({y for _, y in points}) == 1
    assert 'class="equity-note">nenhum trade ainda</text>' in html
