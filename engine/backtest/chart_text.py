"""The words and number formats of a chart, in its reader's language.

The engine knows no catalog (``robotrader.i18n`` sits above it): whoever asks for a
chart hands over the catalog texts it may use (``chart.*``, ``indicator.*``,
``reason.*``, ``strategy.*.title``) in the reader's language with the Babel locale
of their numbers. A backtest job carries them in its spec, from the chat that
queued it to the worker that draws the chart.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from engine import number_text

log = logging.getLogger(__name__)


class _KeepMissing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class ChartText:
    """``text("chart.legend.buy")``: catalog texts of one language, and its number formats."""

    templates: Mapping[str, str] = field(default_factory=dict)
    locale: str = "en_US"

    def __call__(self, key: str, /, **args: Any) -> str:
        template = self.templates.get(key)
        if template is None:
            log.error("chart.missing_text key=%s", key)
            return key
        try:
            return string.Formatter().vformat(template, (), _KeepMissing(args))
        except (ValueError, IndexError):
            log.error("chart.bad_text key=%s", key)
            return template

    def percent(self, value: Decimal) -> str:
        return number_text.signed_percent(value, self.locale)

    def money(self, value: Decimal, currency: str) -> str:
        return number_text.money(value, self.locale, currency)

    def day(self, ms: int) -> str:
        return number_text.medium_date(datetime.fromtimestamp(ms / 1000, UTC), self.locale)

    def to_json(self) -> dict[str, Any]:
        return {"templates": dict(self.templates), "locale": self.locale}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChartText:
        templates = data.get("templates") or {}
        return cls(
            {str(k): str(v) for k, v in templates.items()}, str(data.get("locale") or "en_US")
        )
