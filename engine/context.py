"""What the engine needs to run, built once per process.

The engine does not read settings itself (it imports only db/): the process
that hosts it (robotrader's runtime, or the Celery worker bootstrap) turns the
settings into an EngineConfig.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from db.session import Database
from db.vault import Vault
from engine.backtest.candles import DEFAULT_MAX_BYTES
from engine.computed_signals import ComputedSignals
from engine.exchanges.clients import ClientPool
from engine.exchanges.cooldowns import Cooldowns, MemoryCooldowns, RedisCooldowns
from engine.live_orders import LiveContext
from engine.market_data.cache import CandleCache, MemoryCandleCache, RedisCandleCache
from engine.market_data.feed import MarketDataFeed


@dataclass(frozen=True)
class EngineConfig:
    database_url: str
    vault: Vault
    redis_url: str | None = None
    # Prefix of the engine's keys in Redis (the candle cache): environments sharing one
    # Redis, each with exchanges of its own, never read each other's candles.
    redis_namespace: str = "robotrader"
    exchange_api_urls: dict[str, str] = field(default_factory=dict)
    market_data: Literal["exchange", "replay"] = "exchange"
    tick_seconds: float = 5.0
    # Shards of every tick, fixed (engine.sharding): a bot's shard never changes.
    tick_shards: int = 16
    # Where backtests keep the historical candles they fetched (a SQLite file).
    backtest_cache_dir: Path = Path("var/candles")
    # How much of the disk that file may take; least recently used series go first.
    backtest_cache_max_bytes: int = DEFAULT_MAX_BYTES


@dataclass
class EngineContext:
    config: EngineConfig
    database: Database
    pool: ClientPool
    cache: CandleCache
    feed: MarketDataFeed
    live: LiveContext
    # Signals computed on the newest candles, reused by this process's next shards and ticks.
    computed: ComputedSignals = field(default_factory=ComputedSignals)

    @classmethod
    def build(cls, config: EngineConfig, database: Database | None = None) -> EngineContext:
        database = database or Database(config.database_url)
        pool = ClientPool(config.exchange_api_urls)
        cache: CandleCache = (
            RedisCandleCache(config.redis_url, prefix=f"{config.redis_namespace}:candles:")
            if config.redis_url
            else MemoryCandleCache()
        )
        feed = MarketDataFeed(pool, cache, mode=config.market_data)
        cooldowns: Cooldowns = (
            RedisCooldowns(config.redis_url) if config.redis_url else MemoryCooldowns()
        )
        live = LiveContext(database, pool, config.vault, cooldowns)
        return cls(config, database, pool, cache, feed, live)

    async def close(self, *, dispose_database: bool = True) -> None:
        await self.pool.close()
        await self.live.cooldowns.close()
        if isinstance(self.cache, RedisCandleCache):
            await self.cache.close()
        if dispose_database:
            await self.database.dispose()
