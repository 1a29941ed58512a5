"""What every use case needs, built once per process: settings, database, vault, clients."""

from __future__ import annotations

from dataclasses import dataclass, field

from db.session import Database
from db.vault import Vault
from engine.backtest.queue import BacktestQueue, CeleryBacktestQueue, ThreadBacktestQueue
from engine.exchanges.clients import ClientPool
from engine.exchanges.cooldowns import Cooldowns, MemoryCooldowns, RedisCooldowns
from engine.live_orders import LiveContext
from engine.market_data.cache import CandleCache, MemoryCandleCache, RedisCandleCache
from engine.market_data.feed import MarketDataFeed
from robotrader.answer_cache import AnswerCache
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
    # Where backtest jobs go: Celery workers with a broker, a thread of this process without.
    backtests: BacktestQueue
    # Live orders settled from this process (the kill switch): exchange waits shared with
    # the engine's workers through Redis where there is one.
    live: LiveContext
    # Webhook updates the web app hands to a chat front end running in this process.
    update_receivers: UpdateReceivers = field(default_factory=UpdateReceivers)
    # Exchange-backed answers (balances) kept a few seconds per user.
    answers: AnswerCache = field(default_factory=AnswerCache)

    @classmethod
    def from_settings(cls, settings: Settings, database: Database | None = None) -> App:
        pool = ClientPool(settings.exchange_api_urls)
        database = database or Database(settings.resolved_database_url)
        vault = load_vault(settings)
        cooldowns: Cooldowns = (
            RedisCooldowns(settings.redis_url) if settings.redis_url else MemoryCooldowns()
        )
        # With Redis, the candles the engine's workers fetched for this candle: a status
        # shows what the tick decided on, and asks the exchange nothing more.
        candles: CandleCache = (
            RedisCandleCache(settings.redis_url) if settings.redis_url else MemoryCandleCache()
        )
        return cls(
            settings=settings,
            database=database,
            vault=vault,
            pool=pool,
            feed=MarketDataFeed(pool, candles, mode=settings.market_data),
            backtests=backtest_queue(settings, database),
            live=LiveContext(database, pool, vault, cooldowns),
        )

    async def close(self) -> None:
        await self.live.cooldowns.close()
        await self.backtests.close()
        await self.pool.close()
        if isinstance(self.feed.cache, RedisCandleCache):
            await self.feed.cache.close()
        await self.database.dispose()


def backtest_queue(settings: Settings, database: Database | None = None) -> BacktestQueue:
    """Celery workers run backtests when a broker is configured; a thread here otherwise."""
    if settings.redis_url:
        return CeleryBacktestQueue(settings.redis_url, namespace=settings.celery_namespace)
    return ThreadBacktestQueue(
        database_url=database.url if database is not None else settings.resolved_database_url,
        exchange_api_urls=dict(settings.exchange_api_urls),
        cache_dir=settings.data_dir / "candles",
        cache_max_bytes=settings.candle_cache_bytes,
        offline=settings.market_data == "replay",
    )
