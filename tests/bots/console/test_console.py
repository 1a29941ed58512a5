"""The console front end: commands typed, buttons as numbers, notifications printed."""

from __future__ import annotations

import asyncio
import io
import os
import re
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
from robotrader.i18n import translate
from robotrader.settings import Settings

# A log record as the formatter writes it: "2026-01-01 12:00:00,000 INFO name event ..."
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


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
        env={**env, "LANG": "C.UTF-8"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "What I can do" in result.stdout
    assert "rsi-1" in result.stdout
    assert "Traceback" not in result.stderr
    # The terminal is the chat: logs go to a file under DATA_DIR, said once at start.
    log_file = (tmp_path / "data" / "logs" / "chat.log").resolve()
    assert [line for line in result.stdout.splitlines() if str(log_file) in line] == [
        translate("en", "cli.chat_log", path=str(log_file))
    ]
    for said in (result.stdout, result.stderr):
        assert not LOG_LINE.search(said), said
    logged = log_file.read_text(encoding="utf-8")
    assert "runtime.started services=console,engine" in logged
    assert "alembic.runtime.migration" in logged and "runtime.stopped" in logged


def _since(out: io.StringIO, mark: int) -> str:
    return out.getvalue()[mark:]


async def test_a_bad_answer_asks_the_same_step_again_and_its_buttons_still_press(
    settings: Settings, database: Database
) -> None:
    app = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    out = io.StringIO()
    console = Console(app, out=out, user="typo")
    # exchange [1] Binance; pairs [1] BTC/USDT, [7] next; strategy [1] SMA; [1] use these;
    # timeframe [7] skip; exits [5] skip
    for line in ("newbot", "1", "1", "7", "1", "1", "7", "5"):
        await console.handle_line(line)
    assert "Step 7/8" in out.getvalue()

    for bad in ("abc", "5"):  # not a number; a number under the minimum
        mark = len(out.getvalue())
        await console.handle_line(bad)
        said = _since(out, mark)
        assert "capital" in said.splitlines()[0].lower()  # the refusal first
        assert "Step 7/8" in said and "[2] 500 USDT" in said  # then the same step, buttons on
        assert "Step 6/8" not in said and "Step 8/8" not in said

    mark = len(out.getvalue())
    await console.handle_line("2")  # [2] 500 USDT, pressed by its number after the errors
    assert "Step 8/8" in _since(out, mark)
    mark = len(out.getvalue())
    await console.handle_line("maybe")  # typed where only buttons answer
    said = _since(out, mark)
    assert "Step 8/8" in said and "Step 7/8" not in said
    await console.handle_line("1")  # [1] Paper
    await console.handle_line("1")  # [1] Create
    assert "sma_crossover-1 created" in out.getvalue()
    await app.pool.close()


async def test_a_refused_button_keeps_the_dialog_at_its_step(
    settings: Settings, database: Database
) -> None:
    """A Free user (billing on, as in the suite) presses a locked strategy: the strategy step
    is asked again and a number still presses its button, never typed as pairs (step 2)."""
    app = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    out = io.StringIO()
    console = Console(app, out=out, user="locked")
    for line in ("newbot", "1", "1", "7"):  # Binance, BTC/USDT, next
        await console.handle_line(line)
    mark = len(out.getvalue())
    await console.handle_line("3")  # [3] 🔒 Grid trading
    said = _since(out, mark)
    assert "isn't in the Free plan" in said and "Pro unlocks it" in said
    assert "Step 3/8" in said and "[2] RSI reversion" in said
    mark = len(out.getvalue())
    await console.handle_line("2")  # [2] RSI reversion
    said = _since(out, mark)
    assert "Step 4/8" in said and "Step 2/8" not in said
    await app.pool.close()
