"""Settings names are an interface; the development master key is made once, privately."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from db.vault import generate_master_key
from robotrader.master_key import MasterKeyMissing, load_vault
from robotrader.settings import Settings


def test_environment_prefix_and_types(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ROBOTRADER_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1/x")
    monkeypatch.setenv("ROBOTRADER_TELEGRAM_TOKEN", "123:FAKE-TOKEN-settings")
    monkeypatch.setenv("ROBOTRADER_EXCHANGE_API_URLS", '{"binance": "http://127.0.0.1:9001"}')
    monkeypatch.setenv("ROBOTRADER_OLD_MASTER_KEYS", "a,b")
    monkeypatch.setenv("ROBOTRADER_MARKET_DATA", "replay")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.resolved_database_url == "postgresql+asyncpg://u@127.0.0.1/x"
    assert settings.exchange_api_urls == {"binance": "http://127.0.0.1:9001"}
    assert [k.get_secret_value() for k in settings.old_master_keys] == ["a", "b"]
    assert settings.market_data == "replay"
    assert settings.telegram_token is not None
    assert "FAKE-TOKEN" not in repr(settings) and "FAKE-TOKEN" not in str(settings)


def test_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "ROBOTRADER_WEB_PORT=9123\nROBOTRADER_PUBLIC_URL=https://x.test\n"
    )
    settings = Settings()
    assert settings.web_port == 9123
    assert settings.public_url == "https://x.test"


def test_default_database_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert (
        settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/robotrader.db"
    )


def test_development_key_generated_once_with_0600(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    first = load_vault(settings)
    path = settings.master_key_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_vault(settings).current_key_id == first.current_key_id


def test_production_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, environment="production", data_dir=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(MasterKeyMissing, match="ROBOTRADER_MASTER_KEY"):
        load_vault(settings)
    assert not settings.master_key_file.exists()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="production",
        data_dir=tmp_path,
        master_key=generate_master_key(),
    )
    assert load_vault(settings).current_key_id


SECRET_SETTINGS = (
    "MASTER_KEY", "TELEGRAM_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "DISCORD_TOKEN",
    "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "METRICS_TOKEN",
)  # fmt: skip


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_secret_is_unset(monkeypatch: pytest.MonkeyPatch, blank: str) -> None:
    """The example file ships ``ROBOTRADER_TELEGRAM_WEBHOOK_SECRET=``: that is no secret,
    not the secret "" (which every forged webhook update would carry)."""
    for name in SECRET_SETTINGS:
        monkeypatch.setenv(f"ROBOTRADER_{name}", blank)
    monkeypatch.setenv("ROBOTRADER_PUBLIC_URL", blank)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    for name in SECRET_SETTINGS:
        assert getattr(settings, name.lower()) is None, name
    assert settings.public_url is None


def test_the_production_example_leaves_the_webhook_secret_unset_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    example = Path(__file__).resolve().parents[2] / ".env.production.example"
    text = example.read_text()
    line = next(x for x in text.splitlines() if x.startswith("ROBOTRADER_TELEGRAM_WEBHOOK_SECRET"))
    comment = text[: text.index(line)].rsplit("\n\n", 1)[-1]
    assert "refuses to start" in comment and "blank" in comment.lower()
    settings = Settings(_env_file=example)  # type: ignore[call-arg]
    assert settings.telegram_webhook_secret is None and settings.public_url
