"""The dashboard: server-rendered pages (Jinja2 + htmx), opened by a one-time link from /dashboard.

The login link opens a server-side session (cookie: HttpOnly, SameSite=Lax,
Secure behind https). Every POST carries the session's CSRF token: htmx sends it
as ``X-CSRF-Token`` (``hx-headers`` on <body>), plain forms as a hidden field.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from robotrader import activity_text, formatting
from robotrader.errors import UserError
from robotrader.i18n import translate
from robotrader.text import clean_text
from robotrader.use_cases import bots as bot_cases
from robotrader.use_cases import portfolio
from robotrader.use_cases.bot_edits import BotEdit, EditResult, edit_bot
from robotrader.use_cases.bot_settings import TIMEFRAMES
from robotrader.use_cases.bot_status import BotActivity, bot_activity
from robotrader.use_cases.bots import BotSummary
from robotrader.use_cases.equity import EquityPoint, equity_curve
from robotrader.use_cases.web_access import (
    SESSION_TTL,
    DashboardUser,
    dashboard_user,
    end_dashboard_session,
    redeem_dashboard_link,
)
from web.charts import equity_svg
from web.dependencies import AppDep
from web.errors import ApiError, request_language, status_of, user_error_message
from web.pages import message_page, page, render

router = APIRouter(prefix="/dashboard", include_in_schema=False)

SESSION_COOKIE = "rt_session"
COOKIE_PATH = "/dashboard"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
RECENT_TRADES = 20

BotId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _secure_cookies(request: Request) -> bool:
    public_url: str | None = request.app.state.robotrader.settings.public_url
    return bool(public_url and public_url.lower().startswith("https://"))


async def current_user(request: Request, app: AppDep) -> DashboardUser:
    token = request.cookies.get(SESSION_COOKIE)
    user = await dashboard_user(app, token) if token else None
    if user is None:
        # htmx: reload the whole page, which then says how to log in again.
        headers = {"HX-Refresh": "true"} if request.headers.get("HX-Request") else {}
        raise ApiError(401, "dashboard_login_needed", headers=headers)
    request.state.language = user.language
    return user


async def csrf_checked(
    request: Request, user: Annotated[DashboardUser, Depends(current_user)]
) -> DashboardUser:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), user.csrf_token.encode()):
        raise ApiError(403, "csrf_failed")
    return user


UserDep = Annotated[DashboardUser, Depends(current_user)]
CheckedUserDep = Annotated[DashboardUser, Depends(csrf_checked)]


@router.get("/login/{code}")
async def login(code: str, request: Request, app: AppDep) -> Response:
    try:
        opened = await redeem_dashboard_link(app, clean_text(code, max_length=80))
    except UserError as exc:
        language = request_language(request)
        return message_page(language, 400, user_error_message(language, exc))
    response = RedirectResponse(COOKIE_PATH, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        opened.session_token,
        max_age=int(SESSION_TTL.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure_cookies(request),
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _date(point: EquityPoint, language: str) -> str:
    return formatting.when(point.at, language)


@router.get("", response_class=HTMLResponse)
async def dashboard(app: AppDep, user: UserDep) -> HTMLResponse:
    language = user.language
    bots = await bot_cases.list_bots(app, user.user_id)
    positions = await portfolio.positions(app, user.user_id)
    trades = await portfolio.trades(app, user.user_id, limit=RECENT_TRADES)
    profit = await portfolio.profit(app, user.user_id)
    curve = await equity_curve(app, user.user_id)
    chart = equity_svg(
        curve.points,
        label=lambda value: formatting.signed_money(value, language),
        date=lambda point: _date(point, language),
        title=translate(language, "web.equity_title"),
        note=translate(language, "chart.no_trade_yet") if curve.trades == 0 else None,
    )
    return page(
        "dashboard.html",
        language,
        user=user,
        csrf_headers=json.dumps({CSRF_HEADER: user.csrf_token}),
        csrf_token=user.csrf_token,
        bots=bots,
        positions=positions,
        trades=trades,
        profit=profit,
        chart=chart,
    )


def _bot_row(bot: BotSummary, language: str, error: str | None = None) -> HTMLResponse:
    html = render("_bot_row.html", language, bot=bot)
    # The message goes to the page's flash area, out of band (htmx swaps 2xx answers only).
    html += render("_flash.html", language, error=error)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


async def _act(app: AppDep, user: DashboardUser, bot_id: int, start: bool) -> HTMLResponse:
    try:
        if start:
            bot = await bot_cases.start_bot(app, user.user_id, bot_id)
        else:
            bot = await bot_cases.stop_bot(app, user.user_id, bot_id)
    except UserError as exc:
        if exc.key == "bot_not_found":
            raise
        bot = await bot_cases.show_bot(app, user.user_id, bot_id)
        return _bot_row(bot, user.language, user_error_message(user.language, exc))
    return _bot_row(bot, user.language)


@router.post("/bots/{bot_id}/start", response_class=HTMLResponse)
async def start(bot_id: BotId, app: AppDep, user: CheckedUserDep) -> HTMLResponse:
    return await _act(app, user, bot_id, start=True)


@router.post("/bots/{bot_id}/stop", response_class=HTMLResponse)
async def stop(bot_id: BotId, app: AppDep, user: CheckedUserDep) -> HTMLResponse:
    return await _act(app, user, bot_id, start=False)


EDIT_FIELDS = ("tf", "sl", "tp", "trail", "max", "dll")


def _edit_page(
    user: DashboardUser,
    shown: EditResult,
    activity: BotActivity,
    *,
    done: EditResult | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    bot = shown.bot
    form: dict[str, str | None] = {
        **shown.settings_before,
        "symbols": ", ".join(bot.symbols),
        "parameters": " ".join(f"{k}={v}" for k, v in bot.parameters.items()),
        "capital": format(bot.capital.normalize(), "f"),
    }
    return page(
        "bot_edit.html", user.language, status=status, user=user, bot=bot, form=form,
        csrf_token=user.csrf_token, timeframes=TIMEFRAMES, error=error,
        changes=None if done is None else done.changes,
        next_tick=done is not None and done.from_next_tick,
        last_evaluated=activity_text.last_evaluated(activity, user.language),
        next_decision=activity_text.next_decision(activity, user.language),
        engine_stale=activity.engine_stale,
        markets=[activity_text.market(market, user.language) for market in activity.markets],
    )  # fmt: skip


@router.get("/bots/{bot_id}", response_class=HTMLResponse)
async def bot_page(bot_id: BotId, app: AppDep, user: UserDep) -> HTMLResponse:
    """A bot's page: what it decides on now (/status), and the form that edits it (/editbot)."""
    shown = await edit_bot(app, user.user_id, bot_id, BotEdit(), apply=False)
    return _edit_page(user, shown, await bot_activity(app, user.user_id, bot_id))


@router.post("/bots/{bot_id}/edit", response_class=HTMLResponse)
async def edit(
    bot_id: BotId,
    app: AppDep,
    user: CheckedUserDep,
    symbols: Annotated[str, Form(max_length=200)] = "",
    parameters: Annotated[str, Form(max_length=300)] = "",
    capital: Annotated[str, Form(max_length=20)] = "",
    tf: Annotated[str, Form(max_length=8)] = "",
    sl: Annotated[str, Form(max_length=64)] = "",
    tp: Annotated[str, Form(max_length=64)] = "",
    trail: Annotated[str, Form(max_length=64)] = "",
    max_position: Annotated[str, Form(max_length=64, alias="max")] = "",
    dll: Annotated[str, Form(max_length=64)] = "",
    be: Annotated[str, Form(max_length=1)] = "0",
) -> HTMLResponse:
    """Every field of the form is sent: an empty one switches its setting off."""
    typed = {"tf": tf, "sl": sl, "tp": tp, "trail": trail, "max": max_position, "dll": dll}
    words = [f"{key}={clean_text(typed[key], max_length=64) or 'off'}" for key in EDIT_FIELDS]
    words.append(f"be={'1' if be == '1' else '0'}")
    words += clean_text(parameters, max_length=300).split()
    change = BotEdit(
        options=tuple(words),
        capital=clean_text(capital, max_length=20) or None,
        symbols=clean_text(symbols, max_length=200).replace(",", " ").split() or None,
    )
    try:
        done = await edit_bot(app, user.user_id, bot_id, change, platform="web")
    except UserError as exc:
        if exc.key == "bot_not_found":
            raise
        shown = await edit_bot(app, user.user_id, bot_id, BotEdit(), apply=False)
        message = user_error_message(user.language, exc)
        activity = await bot_activity(app, user.user_id, bot_id)
        return _edit_page(user, shown, activity, error=message, status=status_of(exc))
    shown = await edit_bot(app, user.user_id, bot_id, BotEdit(), apply=False)
    return _edit_page(user, shown, await bot_activity(app, user.user_id, bot_id), done=done)


@router.post("/kill-switch", response_class=HTMLResponse)
async def kill_switch(
    app: AppDep, user: CheckedUserDep, close: Annotated[str, Form(max_length=1)] = "0"
) -> HTMLResponse:
    """The chat's /panic: every bot stopped (and with ``close=1`` every position sold)."""
    result = await bot_cases.kill_switch(app, user.user_id, close_positions=close == "1")
    language = user.language
    message = translate(
        language, "panic.done", bots=result.bots_stopped, orders=result.orders_canceled,
        sold=result.positions_sold,
    )  # fmt: skip
    if result.waiting:
        message += " " + translate(language, "panic.waiting", waiting=result.waiting)
    html = "".join(
        render("_bot_row.html", language, bot=bot, oob=True)
        for bot in await bot_cases.list_bots(app, user.user_id)
    )
    html += render("_flash.html", language, message=message)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.post("/logout")
async def logout(request: Request, app: AppDep, user: CheckedUserDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    await end_dashboard_session(app, token)
    response = message_page(user.language, 200, translate(user.language, "web.logged_out"))
    response.delete_cookie(
        SESSION_COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure_cookies(request),
    )
    return response
