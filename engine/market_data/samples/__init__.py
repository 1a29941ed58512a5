"""Shipped 1m sample candles for the replay feed (see make_samples.py)."""
