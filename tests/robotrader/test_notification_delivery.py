"""The outbox as a chat process sees it: a claimed notification is settled once, or released."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db import outbox
from db.models import Platform
from db.notifications import KillSwitchNotice
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings
from robotrader.use_cases.accounts import register
from robotrader.use_cases.notification_delivery import (
    acknowledge_notifications,
    claim_notifications,
    release_notifications,
)

LEASE = timedelta(seconds=60)


@pytest.fixture
async def app(settings: Settings, database: Database) -> App:
    return App.from_settings(settings, database)


async def _notify(app: App, key: str) -> None:
    account = await register(app, Platform.TELEGRAM, "42", chat_id="42", client_language="en")
    async with app.database.transaction() as session:
        await outbox.add_notification(
            session, user_id=account.user_id, notice=KillSwitchNotice(bots=1, sold=0, waiting=0),
            dedupe_key=key,
        )


async def test_a_claim_is_leased_to_one_worker_and_an_acknowledged_one_never_returns(
    app: App,
) -> None:
    await _notify(app, "n1")
    [claimed] = await claim_notifications(app, Platform.TELEGRAM, "a", limit=10, lease=LEASE)
    assert claimed.kind == "kill_switch"
    assert await claim_notifications(app, Platform.TELEGRAM, "b", limit=10, lease=LEASE) == []
    assert await claim_notifications(app, Platform.DISCORD, "b", limit=10, lease=LEASE) == []
    await acknowledge_notifications(app, [claimed.delivery_id])
    assert await outbox.pending_count(app.database, Platform.TELEGRAM) == 0


async def test_a_released_notification_is_claimable_again(app: App) -> None:
    await _notify(app, "n2")
    [claimed] = await claim_notifications(app, Platform.TELEGRAM, "a", limit=10, lease=LEASE)
    await release_notifications(app, [claimed.delivery_id], error="429", retry_in=timedelta(0))
    [again] = await claim_notifications(app, Platform.TELEGRAM, "b", limit=10, lease=LEASE)
    assert again.delivery_id == claimed.delivery_id
