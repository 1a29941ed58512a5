"""Regenerate the shipped replay samples: ``python -m engine.market_data.samples.make_samples``.

The samples are synthetic on purpose: no exchange's data is redistributed,
and the same command always writes the same bytes (seeds from the symbol
names, gzip without a timestamp), so a regenerated file shows no diff unless
the walk itself changed. Each is a week of 1m candles at a realistic price
level and volatility, small enough to ship (~200 kB each).
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

from engine.market_data.replay import (
    SAMPLE_COLUMNS,
    SAMPLES_DIR,
    WALK_MINUTES,
    price_decimals,
    random_walk_candles,
    stable_seed,
)
from engine.strategies.base import Candles


@dataclass(frozen=True)
class SampleSpec:
    symbol: str
    start_price: float
    minute_volatility: float  # long-run stdev of a 1m log return
    quote_volume_per_minute: float


SPECS = (
    SampleSpec("BTC/USDT", 90_000.0, 0.0008, 1_500_000.0),
    SampleSpec("ETH/USDT", 3_000.0, 0.0010, 600_000.0),
    SampleSpec("SOL/USDT", 150.0, 0.0013, 300_000.0),
)


def sample_candles(spec: SampleSpec) -> Candles:
    return random_walk_candles(
        stable_seed(f"sample:{spec.symbol}"),
        spec.start_price,
        WALK_MINUTES,
        minute_volatility=spec.minute_volatility,
        quote_volume_per_minute=spec.quote_volume_per_minute,
    )


def to_csv(candles: Candles, decimals: int) -> str:
    lines = [SAMPLE_COLUMNS]
    for time, open_, high, low, close, volume in zip(
        candles.time.tolist(),
        candles.open.tolist(),
        candles.high.tolist(),
        candles.low.tolist(),
        candles.close.tolist(),
        candles.volume.tolist(),
        strict=True,
    ):
        prices = ",".join(f"{price:.{decimals}f}" for price in (open_, high, low, close))
        lines.append(f"{time},{prices},{volume:.6f}")
    return "\n".join(lines) + "\n"


def write_sample(spec: SampleSpec, directory: Path = SAMPLES_DIR) -> Path:
    path = directory / f"{spec.symbol.replace('/', '_')}_1m.csv.gz"
    text = to_csv(sample_candles(spec), price_decimals(spec.start_price))
    buffer = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of anything that changes per run.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as out:
        out.write(text.encode("ascii"))
    path.write_bytes(buffer.getvalue())
    return path


def main() -> None:
    for spec in SPECS:
        path = write_sample(spec)
        print(f"{path.name}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
