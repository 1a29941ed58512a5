"""Settings -> the engine's configuration (the engine reads no settings itself)."""

from __future__ import annotations

from engine.context import EngineConfig
from robotrader.master_key import load_vault
from robotrader.settings import Settings


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        database_url=settings.resolved_database_url,
        vault=load_vault(settings),
        redis_url=settings.redis_url,
        redis_namespace=settings.celery_namespace,
        exchange_api_urls=dict(settings.exchange_api_urls),
        market_data=settings.market_data,
        tick_seconds=settings.tick_seconds,
        tick_shards=settings.tick_shards,
        backtest_cache_dir=settings.data_dir / "candles",
        backtest_cache_max_bytes=settings.candle_cache_bytes,
    )
