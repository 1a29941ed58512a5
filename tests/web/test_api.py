"""REST API v1 through the ASGI app: tokens, plan, ownership, money as strings, JSON errors."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from db.models import ApiToken, EngineHeartbeat
from db.types import utcnow
from engine.market_data.feed import MarketKey
from engine.strategies.indicators import rsi
from engine.tick import run_tick
from robotrader.use_cases.web_access import revoke_api_tokens
from tests.web.conftest import Web


async def test_openapi_schema_is_served_and_documents_the_api(web: Web) -> None:
    answer = await web.client.get("/openapi.json")
    assert answer.status_code == 200
    schema = answer.json()
    paths = schema["paths"]
    for path in ("/api/v1/bots", "/api/v1/bots/{bot_id}/start", "/api/v1/bots/{bot_id}/stop",
                 "/api/v1/positions", "/api/v1/trades", "/api/v1/profit", "/api/v1/balance",
                 "/signals/{bot_secret}"):  # fmt: skip
        assert path in paths, path
    assert "ApiToken" in schema["components"]["securitySchemes"]
    assert "/dashboard" not in paths and "/telegram/webhook" not in paths
    assert (await web.client.get("/docs")).status_code == 200


async def test_missing_or_unknown_token_is_401_with_a_clear_json_message(web: Web) -> None:
    missing = await web.client.get("/api/v1/bots")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"] == "api_token_missing"
    assert "/token" in missing.json()["message"]

    for header in ("Bearer rt_nope", "Bearer " + "x" * 500, "Basic dXNlcjpwYXNz"):
        answer = await web.client.get("/api/v1/bots", headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert answer.json()["error"] in ("api_token_invalid", "api_token_missing")


async def test_free_and_pro_users_get_403_naming_upgrade(web: Web) -> None:
    for plan in ("free", "pro"):
        user = await web.user("premium")
        token = await web.token(user)  # made while Premium ...
        from db.models import User

        async with web.app.database.transaction() as session:
            row = await session.get(User, user)
            assert row is not None
            row.plan = plan  # type: ignore[assignment]  # ... then the plan shrank
        answer = await web.client.get("/api/v1/bots", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 403
        body = answer.json()
        assert body["error"] == "rest_api_not_in_plan"
        assert "/upgrade" in body["message"] and "Premium" in body["message"]


async def test_error_messages_speak_the_users_language(web: Web) -> None:
    _, auth = await web.premium(language="pt-br")
    answer = await web.client.post("/api/v1/bots/999/stop", headers=auth)
    assert answer.status_code == 404
    assert answer.json()["error"] == "bot_not_found"
    assert "999" in answer.json()["message"] and "Você" in answer.json()["message"]
    anonymous = await web.client.get("/api/v1/bots", headers={"Accept-Language": "pt-BR"})
    assert "Envie" in anonymous.json()["message"]


async def test_revoked_token_stops_working_and_last_use_is_recorded(web: Web) -> None:
    user, auth = await web.premium()
    assert (await web.client.get("/api/v1/bots", headers=auth)).status_code == 200
    async with web.app.database.sessions() as session:
        used = await session.scalar(select(ApiToken.last_used_at).where(ApiToken.user_id == user))
    assert used is not None
    assert await revoke_api_tokens(web.app, user) == 1
    answer = await web.client.get("/api/v1/bots", headers=auth)
    assert answer.status_code == 401 and answer.json()["error"] == "api_token_invalid"


async def test_create_list_start_stop_a_bot_with_money_as_strings(web: Web) -> None:
    _, auth = await web.premium()
    created = await web.client.post(
        "/api/v1/bots",
        headers=auth,
        json={"exchange": "binance", "symbols": ["eth-usdt"], "strategy": "rsi",
              "capital": 1500.5, "name": "api-bot", "stop_loss_pct": "5"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    bot = created.json()
    assert bot["capital"] == "1500.5" and bot["stop_loss_pct"] == "5"
    assert bot["symbols"] == ["ETH/USDT"] and bot["status"] == "stopped" and bot["mode"] == "paper"

    listed = await web.client.get("/api/v1/bots", headers=auth)
    assert [b["name"] for b in listed.json()] == ["api-bot"]

    started = await web.client.post(f"/api/v1/bots/{bot['id']}/start", headers=auth)
    assert started.status_code == 200 and started.json()["status"] == "running"
    assert await web.bot_status(bot["id"]) == "running"
    stopped = await web.client.post(f"/api/v1/bots/{bot['id']}/stop", headers=auth)
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    shown = await web.client.get(f"/api/v1/bots/{bot['id']}", headers=auth)
    assert shown.json()["name"] == "api-bot"


async def test_signal_bots_expose_their_webhook_url(web: Web) -> None:
    _, auth = await web.premium()
    created = await web.client.post(
        "/api/v1/bots",
        headers=auth,
        json={"exchange": "bybit", "symbols": ["BTC/USDT"], "strategy": "signal", "capital": "100"},
    )
    assert created.status_code == 201, created.text
    url = created.json()["signal_webhook_url"]
    assert url.startswith("http://127.0.0.1:8000/signals/") and len(url.rsplit("/", 1)[1]) >= 24


async def test_rules_come_from_the_use_cases(web: Web) -> None:
    _, auth = await web.premium()
    base = {"exchange": "binance", "symbols": ["BTC/USDT"], "strategy": "dca", "capital": "100"}
    cases = [
        ({**base, "exchange": "kraken"}, 422, "unknown_exchange"),
        ({**base, "capital": "1"}, 422, "bad_capital"),
        ({**base, "strategy": "martingale"}, 422, "unknown_strategy"),
        ({**base, "symbols": ["not a pair"]}, 422, "bad_symbol"),
        ({**base, "parameters": {"nope": 1}}, 422, "bad_parameter"),
        ({**base, "timeframe": "7m"}, 422, "bad_option"),  # the settings' own rule
        ({**base, "name": "bad/name"}, 422, "bad_bot_name"),
    ]
    for body, status, code in cases:
        answer = await web.client.post("/api/v1/bots", headers=auth, json=body)
        assert (answer.status_code, answer.json()["error"]) == (status, code), body
        assert answer.json()["message"]
    # Control characters are dropped before anything is stored (PostgreSQL refuses NUL).
    first = await web.client.post("/api/v1/bots", headers=auth, json={**base, "name": "tw\x00in"})
    assert first.status_code == 201 and first.json()["name"] == "twin"
    again = await web.client.post("/api/v1/bots", headers=auth, json={**base, "name": "TWIN"})
    assert (again.status_code, again.json()["error"]) == (409, "bot_name_taken")


async def test_plan_limits_are_enforced_as_in_the_chat(web: Web) -> None:
    user, auth = await web.premium()
    from billing.plans import PLANS
    from db.models import Plan

    for i in range(PLANS[Plan.PREMIUM].max_bots):
        await web.bot(user, name=f"b{i}")
    answer = await web.client.post(
        "/api/v1/bots",
        headers=auth,
        json={"exchange": "binance", "symbols": ["BTC/USDT"], "strategy": "dca", "capital": "100"},
    )
    assert answer.status_code == 403
    assert answer.json()["error"] == "limit_reached" and "50" in answer.json()["message"]


async def test_other_users_bots_are_not_found(web: Web) -> None:
    owner = await web.user()
    bot_id = await web.bot(owner, running=True, name="mine")
    _, intruder = await web.premium()
    for path in (f"/api/v1/bots/{bot_id}", f"/api/v1/bots/{bot_id}/stop"):
        method = web.client.get if path.endswith(str(bot_id)) else web.client.post
        answer = await method(path, headers=intruder)
        assert answer.status_code == 404 and answer.json()["error"] == "bot_not_found"
    assert await web.bot_status(bot_id) == "running"
    listed = await web.client.get("/api/v1/bots", headers=intruder)
    assert listed.json() == []


async def test_bad_input_is_422_never_500(web: Web) -> None:
    _, auth = await web.premium()
    bad = [
        ("post", "/api/v1/bots", {"content": b"{not json"}),
        ("post", "/api/v1/bots", {"json": []}),
        ("post", "/api/v1/bots", {"json": {"exchange": "binance"}}),
        ("post", "/api/v1/bots", {"json": {"exchange": "binance", "symbols": ["BTC/USDT"],
                                           "strategy": "dca", "capital": "NaN"}}),
        ("post", "/api/v1/bots", {"json": {"exchange": "binance", "symbols": ["BTC/USDT"],
                                           "strategy": "dca", "capital": "1e999999"}}),
        ("post", "/api/v1/bots", {"json": {"exchange": "binance", "symbols": ["BTC/USDT"],
                                           "strategy": "dca", "capital": "100",
                                           "max_position": "1e40"}}),
        ("post", "/api/v1/bots", {"json": {"exchange": "binance", "symbols": ["BTC/USDT"],
                                           "strategy": "sma_crossover", "capital": "100",
                                           "parameters": {"fast": 10**400}}}),
        ("post", "/api/v1/bots/99999999999999999999/start", {}),
        ("post", "/api/v1/bots/0/start", {}),
        ("post", "/api/v1/bots/abc/stop", {}),
        ("get", "/api/v1/trades?limit=0", {}),
        ("get", "/api/v1/trades?limit=x", {}),
    ]  # fmt: skip
    for method, path, options in bad:
        headers = {**auth, "content-type": "application/json"}
        answer = await getattr(web.client, method)(path, headers=headers, **options)
        assert answer.status_code == 422, (path, options, answer.text)
        body = answer.json()
        assert body["error"] and body["message"], body


async def test_positions_trades_profit_and_balance(web: Web) -> None:
    user, auth = await web.premium()
    bot_id = await web.bot(user, name="hist")
    await web.history(user, bot_id)

    positions = (await web.client.get("/api/v1/positions", headers=auth)).json()
    assert len(positions) == 1
    position = positions[0]
    assert position["amount"] == "0.002" and position["average_entry"] == "95000"
    assert position["bot"] == "hist" and isinstance(position["price"], str)

    trades = (await web.client.get("/api/v1/trades?limit=1", headers=auth)).json()
    assert len(trades) == 1 and trades[0]["pnl"] == "-2.25"  # newest first
    trades = (await web.client.get("/api/v1/trades", headers=auth)).json()
    assert [t["pnl"] for t in trades] == ["-2.25", "12.5"]

    profit = {p["period"]: p for p in (await web.client.get("/api/v1/profit", headers=auth)).json()}
    assert profit["7d"]["pnl"] == "10.25" and profit["7d"]["trades"] == 2
    assert profit["7d"]["win_rate"] == "50" and profit["today"]["trades"] == 0

    balances = (await web.client.get("/api/v1/balance", headers=auth)).json()
    assert balances[0]["account"] == "paper"
    assert all(isinstance(v, str) for v in balances[0]["assets"].values())


async def test_unknown_paths_and_methods_answer_json(web: Web) -> None:
    missing = await web.client.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = await web.client.delete("/api/v1/bots")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


async def test_last_used_is_not_rewritten_on_every_request(web: Web) -> None:
    user, auth = await web.premium()
    await web.client.get("/api/v1/bots", headers=auth)
    past = utcnow() - timedelta(seconds=5)
    async with web.app.database.transaction() as session:
        await session.execute(
            update(ApiToken).where(ApiToken.user_id == user).values(last_used_at=past)
        )
    await web.client.get("/api/v1/bots", headers=auth)
    async with web.app.database.sessions() as session:
        used = await session.scalar(select(ApiToken.last_used_at).where(ApiToken.user_id == user))
    assert used == past


async def test_the_kill_switch_stops_everything_and_is_safe_to_press_again(web: Web) -> None:
    user, auth = await web.premium()
    bot_id = await web.bot(user, running=True)
    first = await web.client.post("/api/v1/kill-switch", headers=auth, json={})
    assert first.status_code == 200, first.text
    assert first.json() == {
        "bots_stopped": 1, "orders_canceled": 0, "positions_sold": 0, "waiting": 0,
    }  # fmt: skip
    assert await web.bot_status(bot_id) == "stopped"
    again = await web.client.post(
        "/api/v1/kill-switch", headers=auth, json={"close_positions": True}
    )
    assert again.status_code == 200 and again.json()["bots_stopped"] == 0
    bad = await web.client.post("/api/v1/kill-switch", headers=auth, json={"close": "yes"})
    assert bad.status_code == 422


async def test_a_deleted_bot_leaves_the_list_and_its_name_is_free_again(web: Web) -> None:
    user, auth = await web.premium()
    bot_id = await web.bot(user, running=True, name="gone")
    refused = await web.client.delete(f"/api/v1/bots/{bot_id}", headers=auth)
    assert (refused.status_code, refused.json()["error"]) == (409, "stop_bot_first")
    await web.client.post(f"/api/v1/bots/{bot_id}/stop", headers=auth)
    deleted = await web.client.delete(f"/api/v1/bots/{bot_id}", headers=auth)
    assert deleted.status_code == 200 and deleted.json()["name"] == "gone"
    assert (await web.client.get("/api/v1/bots", headers=auth)).json() == []
    missing = await web.client.get(f"/api/v1/bots/{bot_id}", headers=auth)
    assert missing.status_code == 404
    assert await web.bot(user, name="gone") != bot_id


async def test_one_bot_shows_what_it_decides_on_in_the_owners_language(web: Web) -> None:
    user, auth = await web.premium(language="pt-BR")
    bot_id = await web.bot(user, running=True, strategy="rsi", name="vivo")
    await run_tick(web.app.database, web.app.feed)
    async with web.app.database.sessions() as session:
        beat = await session.get(EngineHeartbeat, "engine")
    assert beat is not None

    shown = await web.client.get(f"/api/v1/bots/{bot_id}", headers=auth)
    assert shown.status_code == 200, shown.text
    activity = shown.json()["activity"]
    assert datetime.fromisoformat(activity["last_evaluated_at"]) == beat.last_tick_at
    assert datetime.fromisoformat(activity["next_decision_at"]).second == 0
    assert activity["engine_stale"] is False
    (market,) = activity["markets"]
    assert market["symbol"] == "BTC/USDT" and market["source"] == "replay"
    assert isinstance(market["price"], str) and market["position"] is None
    (reading,) = market["readings"]
    key = MarketKey("binance", "BTC/USDT", "1m")
    fetched = await web.app.feed.fetch({key: 16}, set(), int(time.time() * 1000))
    expected = float(rsi(fetched.snapshots[key].candles.close, 14)[-1])
    assert reading["kind"] == "crossing_band"
    assert reading["values"]["line"]["value"] == pytest.approx(expected)
    assert reading["values"]["line"]["label"] == "IFR 14"
    assert reading["text"].startswith("IFR 14: ") and "compra ao cruzar 30" in reading["text"]
    listed = (await web.client.get("/api/v1/bots", headers=auth)).json()
    assert listed[0]["activity"] is None  # lists stay cheap: no market data


async def test_create_with_trailing_stop_targets_and_breakeven(web: Web) -> None:
    _, auth = await web.premium()
    body = {
        "exchange": "binance", "symbols": ["BTC/USDT"], "strategy": "rsi", "capital": "500",
        "timeframe": "1h", "stop_loss_pct": "3", "trailing_stop_pct": 1.5,
        "trailing_arm_pct": "2", "breakeven_after_target": True,
        "take_profit_targets": [{"profit_pct": "2", "share_pct": 50},
                                {"profit_pct": "4", "share_pct": "50"}],
    }  # fmt: skip
    created = await web.client.post("/api/v1/bots", headers=auth, json=body)
    assert created.status_code == 201, created.text
    bot = created.json()
    assert bot["timeframe"] == "1h" and bot["stop_loss_pct"] == "3"
    assert (bot["trailing_stop_pct"], bot["trailing_arm_pct"]) == ("1.5", "2")
    assert bot["take_profit_targets"] == [
        {"profit_pct": "2", "share_pct": "50"}, {"profit_pct": "4", "share_pct": "50"},
    ]  # fmt: skip
    assert bot["breakeven_after_target"] is True and bot["take_profit_pct"] is None
    shown = await web.client.get(f"/api/v1/bots/{bot['id']}", headers=auth)
    assert shown.json()["take_profit_targets"] == bot["take_profit_targets"]

    # The chat's rules, in the caller's words: nothing is created.
    for wrong, fragment in [
        ({"breakeven_after_target": True, "take_profit_targets": []}, "needs take-profit"),
        ({"take_profit_pct": "5"}, "not both"),
        ({"trailing_stop_pct": None}, "needs a trailing distance"),
        ({"stop_loss_pct": "99.5"}, "sl takes 0.1-99 %"),
        ({"timeframe": "2h"}, "tf takes 1m|5m|15m|1h|4h|1d"),
    ]:
        answer = await web.client.post(
            "/api/v1/bots", headers=auth, json={**body, **wrong, "name": "other"}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "bad_option" and fragment in answer.json()["message"]
    assert len((await web.client.get("/api/v1/bots", headers=auth)).json()) == 1
