"""REST API v1 (Premium): bots, positions, trades, profit, balances — the chat's use cases.

Authenticated by a personal API token (``Authorization: Bearer rt_...``) made
with /token in a private chat. Ownership and plan limits are the use cases'
(the same as in the chat); this module only maps HTTP to them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from robotrader.i18n import translate
from robotrader.text import clean_text
from robotrader.use_cases import bots as bot_cases
from robotrader.use_cases import portfolio
from robotrader.use_cases.bot_edits import BotEdit, edit_bot
from robotrader.use_cases.bot_status import bot_activity
from web.dependencies import ApiUserDep, AppDep
from web.errors import error_responses
from web.schemas import (
    BalanceOut,
    BotActivityOut,
    BotCreate,
    BotEditOut,
    BotOut,
    BotPatch,
    KillSwitchIn,
    KillSwitchOut,
    PositionOut,
    ProfitOut,
    TradeOut,
    balance_out,
)

router = APIRouter(prefix="/api/v1", tags=["api"], responses=error_responses(401, 403, 422, 429))

# Ids are 32-bit integers in the database: anything larger is simply not found.
BotId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The bot's id")]


@router.get("/bots", summary="Your bots")
async def list_bots(app: AppDep, user: ApiUserDep) -> list[BotOut]:
    return [BotOut.of(b, app.settings) for b in await bot_cases.list_bots(app, user.user_id)]


@router.post(
    "/bots",
    status_code=status.HTTP_201_CREATED,
    summary="Create a bot (stopped, on paper)",
    responses=error_responses(409),
)
async def create_bot(body: BotCreate, app: AppDep, user: ApiUserDep) -> BotOut:
    spec = bot_cases.BotSpec(
        exchange=clean_text(body.exchange, max_length=32),
        symbols=[clean_text(s, max_length=32) for s in body.symbols],
        strategy=clean_text(body.strategy, max_length=32),
        capital=body.capital,
        parameters={clean_text(k, max_length=32): v for k, v in body.parameters.items()},
        name=clean_text(body.name, max_length=32) if body.name is not None else None,
        settings=body.settings(),
    )
    summary = await bot_cases.create_bot(app, user.user_id, spec)
    return BotOut.of(summary, app.settings)


@router.get(
    "/bots/{bot_id}",
    summary="One of your bots, with what it decides on now",
    description="`activity`: when the engine last evaluated the bot and when it decides "
    "next, and per pair the values its strategy decides on at the last closed candle, "
    "its open position marked to that candle's close, and any order it waits for.",
    responses=error_responses(404),
)
async def show_bot(bot_id: BotId, app: AppDep, user: ApiUserDep) -> BotOut:
    activity = await bot_activity(app, user.user_id, bot_id)
    shown = BotOut.of(activity.bot, app.settings)
    shown.activity = BotActivityOut.of(activity, user.language)
    return shown


@router.patch(
    "/bots/{bot_id}",
    summary="Change a bot: risk, exits and capital any time; the rest while it is stopped",
    responses=error_responses(404, 409),
)
async def edit(bot_id: BotId, body: BotPatch, app: AppDep, user: ApiUserDep) -> BotEditOut:
    change = BotEdit(
        settings=body.settings_changes(),
        parameters={clean_text(k, max_length=32): v for k, v in (body.parameters or {}).items()},
        capital=body.capital,
        strategy=clean_text(body.strategy, max_length=32) if body.strategy else None,
        exchange=clean_text(body.exchange, max_length=32) if body.exchange else None,
        symbols=[clean_text(s, max_length=32) for s in body.symbols] if body.symbols else None,
    )
    result = await edit_bot(app, user.user_id, bot_id, change, platform="api")
    return BotEditOut.of(result, app.settings, lambda key: translate(user.language, key))


@router.post("/bots/{bot_id}/start", summary="Start a bot", responses=error_responses(404, 409))
async def start_bot(bot_id: BotId, app: AppDep, user: ApiUserDep) -> BotOut:
    summary = await bot_cases.start_bot(app, user.user_id, bot_id)
    return BotOut.of(summary, app.settings)


@router.post("/bots/{bot_id}/stop", summary="Stop a bot", responses=error_responses(404))
async def stop_bot(bot_id: BotId, app: AppDep, user: ApiUserDep) -> BotOut:
    summary = await bot_cases.stop_bot(app, user.user_id, bot_id)
    return BotOut.of(summary, app.settings)


@router.delete(
    "/bots/{bot_id}",
    summary="Delete a bot (archived: its orders and trades are kept)",
    responses=error_responses(404, 409),
)
async def delete_bot(bot_id: BotId, app: AppDep, user: ApiUserDep) -> BotOut:
    summary = await bot_cases.delete_bot(app, user.user_id, bot_id)
    return BotOut.of(summary, app.settings)


@router.post(
    "/kill-switch",
    summary="Stop every bot now; optionally sell every open position at market",
    description="Idempotent: pressed again, nothing is sold twice. `waiting` counts live "
    "orders the exchange has not settled yet; the engine finishes them.",
)
async def kill_switch(body: KillSwitchIn, app: AppDep, user: ApiUserDep) -> KillSwitchOut:
    result = await bot_cases.kill_switch(app, user.user_id, close_positions=body.close_positions)
    return KillSwitchOut.of(result)


@router.get("/positions", summary="Open positions, marked to the last price")
async def positions(app: AppDep, user: ApiUserDep) -> list[PositionOut]:
    return [PositionOut.of(p) for p in await portfolio.positions(app, user.user_id)]


@router.get("/trades", summary="Closed trades, newest first")
async def trades(
    app: AppDep,
    user: ApiUserDep,
    limit: Annotated[int, Query(ge=1, le=50, description="How many")] = 10,
) -> list[TradeOut]:
    return [TradeOut.of(t) for t in await portfolio.trades(app, user.user_id, limit=limit)]


@router.get("/profit", summary="Realised profit today, over 7 and 30 days, and in all")
async def profit(app: AppDep, user: ApiUserDep) -> list[ProfitOut]:
    return [ProfitOut.of(p) for p in await portfolio.profit(app, user.user_id)]


@router.get("/balance", summary="The paper account and each connected exchange")
async def balance(app: AppDep, user: ApiUserDep) -> list[BalanceOut]:
    return [
        balance_out(b, translate(user.language, f"error.{b.error}") if b.error else None)
        for b in await portfolio.balances(app, user.user_id)
    ]
