"""Candles for the tick and the backtester: from exchanges, or replayed offline."""
