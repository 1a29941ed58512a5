"""Where a user's notifications go on a platform, when that platform refuses the chat for good."""

from __future__ import annotations

from sqlalchemy import update

from db import outbox
from db.models import ChatIdentity, Platform
from robotrader.app import App


async def chat_refused(app: App, platform: Platform, user_id: int) -> int:
    """The platform refuses to deliver to the user's chat (Discord: DMs closed, 50007).

    The user is marked unreachable there (their pending notifications on it are
    closed, no new ones are queued) and the chat is forgotten, so the next time
    they use a command from a private chat it becomes their notification chat
    again and they are reachable once more (see accounts.register). Returns how
    many pending notifications were closed.
    """
    closed = await outbox.mark_unreachable(app.database, platform, user_id)
    async with app.database.transaction() as session:
        await session.execute(
            update(ChatIdentity)
            .where(ChatIdentity.user_id == user_id, ChatIdentity.platform == platform)
            .values(chat_id=None)
        )
    return closed
