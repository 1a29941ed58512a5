"""`robotrader optimize` and `robotrader compare` on the shipped data: the engine's figures."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from engine.backtest.compare import compare
from engine.backtest.optimize import optimize, parameter_grid
from engine.market_data.replay import ReplayFeed
from engine.risk import RiskSettings
from engine.strategies.registry import get_strategy
from tests.robotrader.test_cli import ROBOTRADER, _env

START, END = 1_735_689_600_000, 1_736_553_600_000  # the 10 days up to --end 2025-01-10


def run(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ROBOTRADER, *arguments, "--end", "2025-01-10", "--offline"],
        env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_optimize_json_is_the_engine_search_ranked_out_of_sample(tmp_path: Path) -> None:
    result = run(tmp_path, "optimize", "sma_crossover", "BTC/USDT", "10d", "--values", "4",
                 "--split", "60", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["source"] == "replay" and found["candles"] == 10 * 1440
    assert found["in_sample_share"] == 0.6 and not found["truncated"]

    strategy = get_strategy("sma_crossover")
    candles = ReplayFeed().history("BTC/USDT", "1m", START, END)
    grid = parameter_grid(strategy, limit=1000, values=4)
    direct = optimize(candles, strategy, grid.sets, capital=Decimal(1000),
                      risk=RiskSettings(), in_sample_share=0.6)  # fmt: skip
    assert found["sets"] == len(direct.candidates) == len(grid.sets)
    assert [c["params"] for c in found["ranked"]] == [c.params for c in direct.candidates]
    top = found["ranked"][0]["out_of_sample"]
    assert Decimal(top["return_pct"]) == direct.candidates[0].out_of_sample.return_pct
    assert found["warnings"] == list(direct.warnings)


def test_optimize_with_a_small_limit_says_it_cut_the_grid(tmp_path: Path) -> None:
    result = run(tmp_path, "optimize", "rsi", "BTC/USDT", "10d", "--max-sets", "5", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["truncated"] and found["sets"] <= 5 < found["grid_size"]


def test_compare_json_and_chart_are_each_strategy_on_the_same_candles(tmp_path: Path) -> None:
    png = tmp_path / "compare.png"
    result = run(tmp_path, "compare", "BTC/USDT", "10d", "rsi", "sma_crossover:fast=5,slow=30",
                 "--json", "--chart", str(png))  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    candles = ReplayFeed().history("BTC/USDT", "1m", START, END)
    direct = compare(
        candles, [(get_strategy("rsi"), {}), (get_strategy("sma_crossover"),
                                              {"fast": 5, "slow": 30})],
        capital=Decimal(1000), risk=RiskSettings(),
    )  # fmt: skip
    assert [r["label"] for r in found["runs"]] == [r.label for r in direct]
    assert [Decimal(r["return_pct"]) for r in found["runs"]] == [
        r.result.total_pnl_pct for r in direct
    ]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["optimize", "sma_crossover", "BTC/USDT", "10d", "--split", "95"], "from 50 to 90"),
        (["optimize", "sma_crossover", "BTC/USDT", "10d", "-p", "fast=9..3"], "not a range"),
        (["compare", "BTC/USDT", "10d", "rsi"], "Compare 2 to 6 strategies (you gave 1)"),
        (["compare", "BTC/USDT", "10d", "rsi", "sma_crossover:fast"], "is not a strategy with"),
    ],
)
def test_bad_input_is_refused_with_exit_code_2(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    result = run(tmp_path, *arguments)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and result.stdout == ""
