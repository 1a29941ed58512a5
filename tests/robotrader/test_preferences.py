"""robotrader.use_cases.preferences on the real databases: muted kinds and summary hour."""

from __future__ import annotations

import pytest

from db.notifications import NotificationKind
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.use_cases.preferences import get_preferences, set_summary_hour, toggle_kind
from tests.engine.conftest import make_user


async def test_toggling_a_kind_mutes_then_unmutes_it(app: App) -> None:
    user, other = await make_user(app, "u1"), await make_user(app, "u2")
    assert (await get_preferences(app, user)).muted == frozenset()
    muted = await toggle_kind(app, user, NotificationKind.TRADE_OPENED)
    assert muted.muted == {"trade_opened"}
    assert (await get_preferences(app, user)).muted == {"trade_opened"}
    assert (await get_preferences(app, other)).muted == frozenset()
    await toggle_kind(app, user, NotificationKind.TRADE_OPENED)
    assert (await get_preferences(app, user)).muted == frozenset()


@pytest.mark.parametrize("kind", ["kill_switch", "bot_paused", "nonsense"])
async def test_safety_and_unknown_kinds_cannot_be_muted(app: App, kind: str) -> None:
    user = await make_user(app)
    with pytest.raises(UserError) as raised:
        await toggle_kind(app, user, kind)
    assert raised.value.key == "unknown_notification_kind"


@pytest.mark.parametrize(("given", "hour"), [("7", 7), (" 21h", 21), ("08:30", 8), (0, 0)])
async def test_the_summary_hour_is_stored(app: App, given: str | int, hour: int) -> None:
    user = await make_user(app)
    assert (await set_summary_hour(app, user, given)).daily_summary_hour == hour
    assert (await get_preferences(app, user)).daily_summary_hour == hour


@pytest.mark.parametrize("given", ["24", "-1", "", "٣", "abc", "007"])
async def test_bad_hours_are_refused(app: App, given: str) -> None:
    user = await make_user(app)
    before = (await get_preferences(app, user)).daily_summary_hour
    with pytest.raises(UserError) as raised:
        await set_summary_hour(app, user, given)
    assert raised.value.key == "bad_hour"
    assert (await get_preferences(app, user)).daily_summary_hour == before
