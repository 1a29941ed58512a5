"""Which candles of the period asked for a backtest actually exist, and which are missing.

Exchanges serve no candle before a market was listed, and simply leave out the
minutes they have none for (a halt, an outage): a backtest over such a period
runs on fewer candles than the period holds. That is said, not hidden:

- missing candles before the first one are a *clipped* period: the market's
  data starts later, and the period actually tested starts with it;
- missing candles after the first one (between two candles, or after the last
  one up to the period's end) are *gaps*: how many, how many candles they miss,
  and the longest with its first and last missing candle.

Times are candle open times in milliseconds (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class DataCoverage:
    requested_first_ms: int  # the first candle the period holds
    requested_last_ms: int  # the last candle the period holds
    first_candle_ms: int  # the first candle there is
    last_candle_ms: int
    gaps: int
    missing_candles: int  # inside the tested period (not those before the first candle)
    longest_gap_candles: int = 0
    longest_gap_first_ms: int | None = None  # first missing candle of the longest gap
    longest_gap_last_ms: int | None = None  # last missing candle of the longest gap

    @property
    def clipped(self) -> bool:
        """Whether the data starts after the period did (a market listed later)."""
        return self.first_candle_ms > self.requested_first_ms

    def to_json(self) -> dict[str, Any]:
        return {
            "requested_first_ms": self.requested_first_ms,
            "requested_last_ms": self.requested_last_ms,
            "first_candle_ms": self.first_candle_ms,
            "last_candle_ms": self.last_candle_ms,
            "clipped": self.clipped,
            "gaps": self.gaps,
            "missing_candles": self.missing_candles,
            "longest_gap_candles": self.longest_gap_candles,
            "longest_gap_first_ms": self.longest_gap_first_ms,
            "longest_gap_last_ms": self.longest_gap_last_ms,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DataCoverage:
        def optional(name: str) -> int | None:
            value = data.get(name)
            return None if value is None else int(value)

        return cls(
            requested_first_ms=int(data["requested_first_ms"]),
            requested_last_ms=int(data["requested_last_ms"]),
            first_candle_ms=int(data["first_candle_ms"]),
            last_candle_ms=int(data["last_candle_ms"]),
            gaps=int(data["gaps"]),
            missing_candles=int(data["missing_candles"]),
            longest_gap_candles=int(data.get("longest_gap_candles") or 0),
            longest_gap_first_ms=optional("longest_gap_first_ms"),
            longest_gap_last_ms=optional("longest_gap_last_ms"),
        )


def coverage_of(
    times: npt.NDArray[np.int64], start_ms: int, end_ms: int, step_ms: int
) -> DataCoverage:
    """What ``times`` (open times, ascending, at least one) cover of the whole ``step_ms``
    candles inside ``[start_ms, end_ms]`` (opened at or after the start, closed by the end).
    """
    if not len(times):
        raise ValueError("no candles")
    requested_first = -(-start_ms // step_ms) * step_ms
    requested_last = (end_ms // step_ms) * step_ms - step_ms
    # Each stretch of missing candles: (first missing, count).
    starts = times[:-1] + step_ms
    counts = (np.diff(times) // step_ms - 1).astype(np.int64)
    holes = [(int(s), int(c)) for s, c in zip(starts[counts > 0], counts[counts > 0], strict=True)]
    last = int(times[-1])
    if requested_last > last:
        holes.append((last + step_ms, (requested_last - last) // step_ms))
    longest = max(holes, key=lambda hole: hole[1], default=None)
    return DataCoverage(
        requested_first_ms=requested_first,
        requested_last_ms=requested_last,
        first_candle_ms=int(times[0]),
        last_candle_ms=last,
        gaps=len(holes),
        missing_candles=sum(count for _, count in holes),
        longest_gap_candles=longest[1] if longest else 0,
        longest_gap_first_ms=longest[0] if longest else None,
        longest_gap_last_ms=longest[0] + (longest[1] - 1) * step_ms if longest else None,
    )
