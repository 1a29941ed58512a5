"""The console front end: commands typed, buttons as numbers, notifications printed."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

from bots.console.console import Console
from db.session import Database
from db.vault import generate_master_key
from engine.market_data.cache import MemoryCandleCache
from engine.market_data.feed import MarketDataFeed
from engine.tick import run_tick
from robotrader.app import App
from robotrader.settings import Settings


async def test_a_session_in_the_terminal(settings: Settings, database: Database) -> None:
    app = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    out = io.StringIO()
    console = Console(app, out=out, user="tester")
    await console.handle_line("/start")
    assert "Welcome to RoboTrader" in out.getvalue()
    assert "[1]" in out.getvalue()  # buttons become numbers

    await console.handle_line("newbot binance BTC/USDT sma_crossover 500")
    assert "Create this bot?" in out.getvalue()
    await console.handle_line("1")  # [1] Create
    assert "created" in out.getvalue()
    await console.handle_line("1")  # [1] Start now
    assert "sma_crossover-1 started" in out.getvalue()
    await console.handle_line("bots")
    assert "running" in out.getvalue().rsplit("Your bots", 1)[1]
    feed = MarketDataFeed(app.pool, MemoryCandleCache(), mode="replay")
    await run_tick(app.database, feed)
    await console.deliver_notifications()
    assert "synthetic market data" in out.getvalue()
    await app.pool.close()


async def test_a_backtest_in_the_terminal_prints_its_progress_and_saves_its_chart(
    settings: Settings, database: Database
) -> None:
    app = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    out = io.StringIO()
    console = Console(app, out=out, user="quant")
    await console.handle_line("backtest rsi ETH/USDT 3d")
    text = out.getvalue()
    assert "⏳ Backtest: RSI reversion on ETH/USDT, 3 days" in text
    assert "100% — done ✅" in text and "Win rate" in text and "Sharpe ratio" in text
    saved = [line.split(": ")[-1] for line in text.splitlines() if line.startswith("🖼")]
    assert len(saved) == 1
    assert (await asyncio.to_thread(Path(saved[0]).read_bytes))[:4] == b"\x89PNG"
    await app.backtests.close()
    await app.pool.close()


def test_robotrader_chat_reads_commands_from_stdin(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTRADER_")}
    env.update(
        ROBOTRADER_DATA_DIR=str(tmp_path / "data"),
        ROBOTRADER_MARKET_DATA="replay",
        ROBOTRADER_MASTER_KEY=generate_master_key(),
        ROBOTRADER_EXCHANGE_API_URLS='{"binance": "http://127.0.0.1:9", "bybit": "http://127.0.0.1:9"}',
    )
    result = subprocess.run(
        [sys.executable, "-m", "robotrader", "chat"],
        input="help\nnewbot binance ETH/USDT rsi 250\n1\nbots\n/quit\n",
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "What I can do" in result.stdout
    assert "rsi-1" in result.stdout
    assert "Traceback" not in result.stderr
