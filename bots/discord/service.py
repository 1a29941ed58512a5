"""The Discord front end as a service: gateway, interactions and notification delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import discord
from discord.http import Route

from bots.core.core import ChatCore
from bots.core.dialogs import TTL_SECONDS
from bots.discord.client import DiscordFrontEnd
from bots.discord.delivery import DiscordDelivery
from robotrader.app import App
from robotrader.logging_setup import redact

log = logging.getLogger(__name__)


class DiscordService:
    """One bot: log in, sync the slash commands, answer users, deliver the outbox."""

    def __init__(
        self,
        app: App,
        *,
        core: ChatCore | None = None,
        guild_ready_timeout: float = 2.0,
        view_timeout: float = TTL_SECONDS,
    ) -> None:
        token = app.settings.discord_token
        if token is None:
            raise RuntimeError("ROBOTRADER_DISCORD_TOKEN is not set")
        self.app = app
        self.token = token.get_secret_value()
        redact(self.token)
        self.client = DiscordFrontEnd(
            app,
            core or ChatCore(app),
            guild_ready_timeout=guild_ready_timeout,
            view_timeout=view_timeout,
        )
        self.delivery = DiscordDelivery(self.client, app)
        self.ready = asyncio.Event()  # logged in, commands synced, guilds received

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop``; then finish the deliveries in flight and close the gateway."""
        # discord.py reads its REST base from this class attribute (set before login).
        Route.BASE = self.app.settings.discord_api_url.rstrip("/")
        # Gateway events are logged in full at DEBUG, modal answers (API keys) included.
        gateway_log = logging.getLogger("discord.gateway")
        gateway_log.setLevel(max(gateway_log.getEffectiveLevel(), logging.INFO))
        client = self.client
        await client.login(self.token)
        connection = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
        try:
            await self._until_ready(connection, stop)
            if stop.is_set():
                return
            self.ready.set()
            log.info("discord.started bot=%s guilds=%s", client.user, len(client.guilds))
            await self.delivery.run(stop)
        finally:
            # Handlers still following a backtest hand it to the outbox and answer now.
            client.core.shutdown()
            await client.core.wait_idle(timeout=5)
            await client.close()
            with contextlib.suppress(asyncio.CancelledError, discord.ConnectionClosed):
                await asyncio.wait_for(connection, timeout=10)
            log.info("discord.stopped")

    async def _until_ready(self, connection: asyncio.Task[None], stop: asyncio.Event) -> None:
        ready = asyncio.create_task(self.client.wait_until_ready())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({ready, stopping, connection}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (ready, stopping):
                task.cancel()
            await asyncio.gather(ready, stopping, return_exceptions=True)
        if connection.done():
            connection.result()  # the gateway failed before READY: raise why
            raise RuntimeError("the Discord gateway closed before READY")


async def run_discord(app: App, stop: asyncio.Event) -> None:
    """Answer users and deliver notifications until ``stop``; then finish what is in flight."""
    await DiscordService(app).run(stop)
