"""PATCH /api/v1/bots/{id}: the chat's edit over HTTP, with its statuses."""

from __future__ import annotations

from sqlalchemy import select

from db.models import AuditEntry
from tests.web.conftest import Web


async def test_patch_changes_settings_and_answers_before_and_after(web: Web) -> None:
    user, auth = await web.premium(language="pt-br")
    bot_id = await web.bot(user, running=True, strategy="sma_crossover", stop_loss_pct="5")
    answer = await web.client.patch(
        f"/api/v1/bots/{bot_id}", headers=auth,
        json={"stop_loss_pct": None, "breakeven_after_target": True, "capital": 800,
              "take_profit_targets": [{"profit_pct": 2, "share_pct": 50},
                                      {"profit_pct": "4", "share_pct": 50}],
              "trailing_stop_pct": "1.5", "trailing_arm_pct": 2},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["bot"]["capital"] == "800" and body["bot"]["stop_loss_pct"] is None
    # The bot answers in the same fields as POST /api/v1/bots takes.
    assert body["bot"]["take_profit_targets"] == [
        {"profit_pct": "2", "share_pct": "50"}, {"profit_pct": "4", "share_pct": "50"},
    ]  # fmt: skip
    assert (body["bot"]["trailing_stop_pct"], body["bot"]["trailing_arm_pct"]) == ("1.5", "2")
    assert body["bot"]["breakeven_after_target"] is True
    assert body["from_next_tick"] is True
    assert body["settings"] == {
        "tf": "1m", "sl": None, "tp": "2:50,4:50", "trail": "1.5@2", "be": "1", "max": None,
        "dll": None,
    }  # fmt: skip
    changes = {c["setting"]: c for c in body["changes"]}
    assert changes["bot_setting.sl"] == {
        "setting": "bot_setting.sl", "label": "Stop loss", "before": "5", "after": None,
    }  # fmt: skip
    assert changes["bot_setting.trail"]["label"] == "Stop móvel"
    assert changes["field.capital"]["before"] == "1000"
    async with web.app.database.sessions() as session:
        actions = list(await session.scalars(select(AuditEntry.platform).where(
            AuditEntry.action == "bot.edit")))  # fmt: skip
    assert actions == ["api"]

    # Nothing to change: the bot as it is, no changes.
    again = await web.client.patch(f"/api/v1/bots/{bot_id}", headers=auth, json={"capital": 800})
    assert again.status_code == 200 and again.json()["changes"] == []

    # One take-profit replaces the targets; null switches the trailing stop off whole.
    single = await web.client.patch(
        f"/api/v1/bots/{bot_id}", headers=auth,
        json={"take_profit_pct": "3", "breakeven_after_target": False, "trailing_stop_pct": None},
    )  # fmt: skip
    assert single.status_code == 200, single.text
    shown = single.json()["bot"]
    assert shown["take_profit_pct"] == "3" and shown["take_profit_targets"] == []
    assert shown["trailing_stop_pct"] is None and shown["trailing_arm_pct"] is None


async def test_patch_refusals_have_their_statuses(web: Web) -> None:
    user, auth = await web.premium()
    bot_id = await web.bot(user, running=True)
    path = f"/api/v1/bots/{bot_id}"
    unknown = await web.client.patch(path, headers=auth, json={"stop_los": 3})
    assert unknown.status_code == 422 and unknown.json()["error"] == "invalid_request"
    running = await web.client.patch(path, headers=auth, json={"timeframe": "1h"})
    assert running.status_code == 409 and running.json()["error"] == "edit_needs_stop"
    assert "/stopbot" in running.json()["message"]
    out_of_range = await web.client.patch(path, headers=auth, json={"stop_loss_pct": 150})
    assert out_of_range.status_code == 422 and out_of_range.json()["error"] == "bad_option"
    no_off = await web.client.patch(path, headers=auth, json={"timeframe": None})
    assert no_off.status_code == 422 and no_off.json()["error"] == "bad_option"

    _, intruder = await web.premium()
    theirs = await web.client.patch(path, headers=intruder, json={"stop_loss_pct": 3})
    assert theirs.status_code == 404 and theirs.json()["error"] == "bot_not_found"
    stopped = await web.client.post(f"{path}/stop", headers=auth)
    assert stopped.status_code == 200
    moved = await web.client.patch(path, headers=auth, json={"timeframe": "1h"})
    assert moved.status_code == 200 and moved.json()["bot"]["timeframe"] == "1h"
    assert moved.json()["from_next_tick"] is False


async def test_patch_is_in_the_openapi_schema(web: Web) -> None:
    schema = (await web.client.get("/openapi.json")).json()
    patch = schema["paths"]["/api/v1/bots/{bot_id}"]["patch"]
    assert {"200", "404", "409", "422"} <= set(patch["responses"])
    body = schema["components"]["schemas"]["BotPatch"]
    assert body["additionalProperties"] is False and "required" not in body
