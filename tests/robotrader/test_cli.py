"""The `robotrader` command: migrate, rotate-key, and run stopping cleanly on signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from db.vault import generate_master_key

ROOT = Path(__file__).resolve().parents[2]
ROBOTRADER = [sys.executable, "-m", "robotrader"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTRADER_")}
    env["LANG"] = "C.UTF-8"  # English messages, whatever the machine's shell says
    env.update(
        ROBOTRADER_DATA_DIR=str(tmp_path / "data"),
        ROBOTRADER_MARKET_DATA="replay",
        ROBOTRADER_WEB_PORT="0",
        **extra,
    )
    return env


def test_migrate_then_downgrade(tmp_path: Path) -> None:
    env = _env(tmp_path)
    up = subprocess.run(
        [*ROBOTRADER, "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert up.returncode == 0, up.stderr
    assert "database at revision" in up.stdout and "None" not in up.stdout
    down = subprocess.run(
        [*ROBOTRADER, "migrate", "--down", "--revision", "base"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert down.returncode == 0, down.stderr
    assert "revision None" in down.stdout


def test_rotate_key_on_a_development_machine(tmp_path: Path) -> None:
    env = _env(tmp_path)
    subprocess.run([*ROBOTRADER, "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True)
    key_file = tmp_path / "data" / "master.key"
    history: list[list[str]] = []
    for _ in range(2):
        result = subprocess.run(
            [*ROBOTRADER, "rotate-key"], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        history.append(key_file.read_text().split())
    assert len(history[1]) == len(history[0]) + 1
    assert history[1][1:] == history[0], "older keys are kept as retired, newest first"


def test_production_without_master_key_refuses_to_run(tmp_path: Path) -> None:
    env = _env(tmp_path, ROBOTRADER_ENVIRONMENT="production")
    result = subprocess.run(
        [*ROBOTRADER, "run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "ROBOTRADER_MASTER_KEY" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_stops_cleanly_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    env = _env(tmp_path, ROBOTRADER_MASTER_KEY=generate_master_key())
    proc = subprocess.Popen(
        [*ROBOTRADER, "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        started = False
        assert proc.stdout is not None
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "runtime.started" in line:
                started = True
                break
            if not line and proc.poll() is not None:
                break
        assert started, "".join(lines)
        time.sleep(1)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(lines) + out
    assert "runtime.stopped" in out


def test_backtest_json_on_the_shipped_data_matches_the_backtester(tmp_path: Path) -> None:
    import json
    from decimal import Decimal

    from engine.backtest import run_backtest
    from engine.market_data.replay import ReplayFeed
    from engine.risk import RiskSettings
    from engine.strategies.registry import get_strategy

    env = _env(tmp_path)
    env.pop("ROBOTRADER_MARKET_DATA")  # --offline alone must keep it off the exchange
    result = subprocess.run(
        [*ROBOTRADER, "backtest", "sma_crossover", "BTC/USDT", "--period", "10d",
         "-p", "fast=5", "-p", "slow=20", "--stop-loss", "2", "--end", "2025-01-10",
         "--offline", "--json", "--chart", str(tmp_path / "chart.png")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    spec = figures["spec"]
    assert (spec["start_ms"], spec["end_ms"]) == (1_735_689_600_000, 1_736_553_600_000)
    assert figures["source"] == "replay" and figures["candles"] == 10 * 1440
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    candles = ReplayFeed().history("BTC/USDT", "1m", spec["start_ms"], spec["end_ms"])
    direct = run_backtest(
        candles, get_strategy("sma_crossover"), {"fast": 5, "slow": 20}, capital=Decimal(1000),
        risk=RiskSettings(stop_loss_pct=Decimal(2)),
    )  # fmt: skip
    assert figures["trade_count"] == direct.trade_count > 0
    assert Decimal(figures["total_pnl"]) == direct.total_pnl
    assert Decimal(figures["max_drawdown_pct"]) == direct.max_drawdown_pct
    assert "i+1's open" in figures["fill_rule"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["sma_crossover", "BTC/USDT", "--period", "7x"], "isn't a period"),
        (["nope", "BTC/USDT"], "There's no strategy 'nope'. Choose one of: sma_crossover,"),
        (["sma_crossover", "BTC", "--offline"], "BTC"),
        (["sma_crossover", "BTC/USDT", "-p", "fast"], "is not name=value"),
        (["sma_crossover", "BTC/USDT", "-p", "fast=50"], "fast must be smaller than slow"),
        (["sma_crossover", "BTC/USDT", "--end", "yesterday"], "not a date"),
        (["sma_crossover", "BTC/USDT", "--end", "2999-01-01"], "can't end in the future"),
        (["rsi", "FOO/USDT"], "binance doesn't list FOO/USDT"),
    ],
)
def test_backtest_refuses_bad_input_with_exit_code_2(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    result = subprocess.run(
        [*ROBOTRADER, "backtest", *arguments, "--offline"],
        env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    ("before", "env", "message"),
    [
        ([], {}, "error: --param 'fast' is not name=value"),
        (["--lang", "pt-BR"], {}, "erro: --param 'fast' não está no formato nome=valor"),
        ([], {"LANG": "pt_BR.UTF-8"}, "erro: --param 'fast' não está no formato nome=valor"),
        (["--lang", "en"], {"LANG": "pt_BR.UTF-8"}, "error: --param 'fast' is not name=value"),
    ],
)
def test_errors_speak_the_language_of_lang_or_the_shell(
    tmp_path: Path, before: list[str], env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [*ROBOTRADER, *before, "backtest", "sma_crossover", "BTC/USDT", "-p", "fast", "--offline"],
        env=_env(tmp_path, **env), cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == message


def _offline_backtest(
    tmp_path: Path, *extra: str, lang: str = "C.UTF-8"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ROBOTRADER, "backtest", "sma_crossover", "BTC/USDT", "--period", "3d",
         "--timeframe", "15m", "-p", "fast=3", "-p", "slow=8", "--end", "2025-01-10",
         "--offline", *extra],
        env=_env(tmp_path, LANG=lang), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_backtest_exports_the_trades_as_csv_and_json(tmp_path: Path) -> None:
    import csv
    import json

    out = tmp_path / "trades.csv"
    result = _offline_backtest(tmp_path, "--json", "--csv", str(out))
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["synthetic"] is True and figures["trade_count"] == len(figures["trades"]) > 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == figures["trade_count"]
    assert rows[0]["pnl"] == figures["trades"][0]["pnl"]
    assert rows[0]["entry_time"].endswith("Z") and rows[0]["symbol"] == "BTC/USDT"

    text = _offline_backtest(tmp_path, "--csv", str(out))
    assert text.returncode == 0, text.stderr
    assert "data: SYNTHETIC" in text.stdout and f"trades (CSV): {out}" in text.stdout
    # A drawdown is a loss: it reads with its minus sign, as in chat and on the chart.
    drawdown = Decimal(str(figures["max_drawdown_pct"]))
    assert drawdown > 0
    assert f"max drawdown    -{drawdown:.2f} %" in text.stdout


@pytest.mark.parametrize("option", ["--csv", "--chart"])
def test_an_unwritable_file_is_reported_after_the_figures(tmp_path: Path, option: str) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "out.file"
    result = _offline_backtest(tmp_path, option, str(missing))
    assert result.returncode == 2
    assert "profit/loss" in result.stdout  # the figures were printed, not lost
    assert "Traceback" not in result.stderr
    assert f"could not be written to {missing} (No such file or directory)" in result.stderr
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        denied = _offline_backtest(tmp_path, "--json", option, str(locked / "out.file"))
    finally:
        locked.chmod(0o700)
    if os.geteuid() != 0:  # root writes anywhere
        assert denied.returncode == 2 and "Permission denied" in denied.stderr
        assert denied.stdout.startswith("{")  # the JSON came out whole first
    portuguese = _offline_backtest(tmp_path, option, str(missing), lang="pt_BR.UTF-8")
    assert portuguese.returncode == 2 and "não foi possível gravar" in portuguese.stderr
