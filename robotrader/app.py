"""What every use case needs, built once per process: settings, database, vault, clients."""

from __future__ import annotations

from dataclasses import dataclass, field

from db.session import Database
from db.vault import Vault
from engine.exchanges.clients import ClientPool
from engine.market_data.cache import MemoryCandleCache
from engine.market_data.feed import MarketDataFeed
from robotrader.master_key import load_vault
from robotrader.settings import Settings
from robotrader.update_receivers import UpdateReceivers


@dataclass
class App:
    settings: Settings
    database: Database
    vault: Vault
    pool: ClientPool
    feed: MarketDataFeed
    # Webhook updates the web app hands to a chat front end running in this process.
    update_receivers: UpdateReceivers = field(default_factory=UpdateReceivers)

    @classmethod
    def from_settings(cls, settings: Settings, database: Database | None = None) -> App:
        pool = ClientPool(settings.exchange_api_urls)
        return cls(
            settings=settings,
            database=database or Database(settings.resolved_database_url),
            vault=load_vault(settings),
            pool=pool,
            feed=MarketDataFeed(pool, MemoryCandleCache(), mode=settings.market_data),
        )

    async def close(self) -> None:
        await self.pool.close()
        await self.database.dispose()
