"""The closed sets of values a front end reads and passes back (platforms, bot and job states).

Defined with the models (db/models/enums.py); front ends take them from here,
since they import robotrader/ only (DESIGN.md, "Who may import whom").
"""

from __future__ import annotations

from db.models import BacktestStatus, BotMode, BotStatus, Platform

__all__ = ["BacktestStatus", "BotMode", "BotStatus", "Platform"]
