"""The one settings object: environment variables prefixed ``ROBOTRADER_`` or a ``.env`` file.

These names are an interface (README, DESIGN.md): operators and tests point the
product at other servers only through them. Nothing else reads ``os.environ``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ROBOTRADER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    environment: Literal["development", "production"] = "development"
    data_dir: Path = DEFAULT_DATA_DIR
    log_level: str = "INFO"

    database_url: str = ""
    redis_url: str | None = None

    master_key: SecretStr | None = None
    # Retired master keys, comma separated: still read, never written, until
    # `robotrader rotate-key` has moved every secret to the current key.
    old_master_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)

    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_webhook_secret: SecretStr | None = None
    # Send notifications with allow_paid_broadcast: up to 1,000 messages a second bot-wide
    # instead of 30, each paid for in Telegram Stars by the bot's owner.
    telegram_paid_broadcast: bool = False
    # Milliseconds a chat with only fills due waits for more of them (one digest rather
    # than two messages) after the newest; at most five times as long after the oldest.
    # Billing, errors and pauses never wait. 0: send at once.
    digest_hold_ms: int = Field(default=1_000, ge=0)

    discord_token: SecretStr | None = None
    discord_api_url: str = "https://discord.com/api/v10"

    stripe_api_key: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_webhook_secret: SecretStr | None = None
    stripe_price_pro: str | None = None
    stripe_price_premium: str | None = None

    exchange_api_urls: dict[str, str] = Field(default_factory=dict)
    market_data: Literal["exchange", "replay"] = "exchange"

    public_url: str | None = None
    # The addresses the servers reach exchanges from, comma separated: users are told to
    # restrict their keys to them.
    egress_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Set: GET /metrics wants ``Authorization: Bearer <this>`` (Prometheus' bearer_token).
    metrics_token: SecretStr | None = None
    # REST API requests per minute per token (bursts up to as many): one user's script
    # must not spend the server's budget with the exchanges and the database.
    api_rate_limit: int = 120
    web_host: str = "127.0.0.1"
    web_port: int = 8000

    tick_seconds: float = 5.0
    # Shards a tick is split into (a shard: whole users, by a bucket stored with each bot;
    # engine.sharding). Fixed, so a bot keeps its shard however many bots run; each tick
    # enqueues every shard on the ``ticks`` queue and any worker takes any. Each shard
    # costs about 15 ms of worker CPU of its own (its queries and transaction), whatever
    # its size: 16 keeps up to 16 workers busy for 0.25 s of CPU a tick (measured in
    # docs/operations.md); with more workers, about twice their number.
    tick_shards: int = Field(default=16, ge=1, le=1024)
    # Megabytes the backtests' candle cache (DATA_DIR/candles) may take on disk; past it
    # the least recently used series are evicted.
    candle_cache_mb: int = Field(default=512, ge=1)
    # Prefix of every Celery and candle-cache key in Redis: several environments can share
    # one Redis.
    celery_namespace: str = "robotrader"
    # Seconds before Redis hands an unacknowledged task (its worker died) to another worker.
    celery_visibility_timeout: int = 120

    # A blank value (``NAME=`` in an env file) means "not set", never the secret "": a
    # blank webhook secret would accept every forged update.
    @field_validator(
        "master_key", "telegram_token", "telegram_webhook_secret", "discord_token",
        "stripe_api_key", "stripe_webhook_secret", "metrics_token", "public_url",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and not text.strip():
            return None
        return value

    @field_validator("egress_ips", mode="before")
    @classmethod
    def _split_ips(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("old_master_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("exchange_api_urls", mode="before")
    @classmethod
    def _parse_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @property
    def candle_cache_bytes(self) -> int:
        return self.candle_cache_mb * 1024 * 1024

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, or a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'robotrader.db').resolve()}"

    @property
    def chat_log_file(self) -> Path:
        """Where `robotrader chat` logs: its terminal is the chat, so not there."""
        return self.data_dir / "logs" / "chat.log"

    @property
    def master_key_file(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def billing_enabled(self) -> bool:
        """Whether this server sells plans: only with Stripe configured (DESIGN.md,
        "Self-hosted without Stripe": without it there are no plans)."""
        return self.stripe_api_key is not None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process."""
    return Settings()
