"""Every notification the engine, billing and the use cases write reads well in both languages."""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

import pytest

from bots.core.notifications import render_notification
from robotrader.i18n import catalog, placeholders
from robotrader.languages import tags

ROOT = Path(__file__).resolve().parents[3]
# Kinds passed on positionally or through a variable, which the scan below cannot see.
INDIRECT_KINDS = {"trade_opened", "trade_closed", "backtest_done", "backtest_failed"}


def _written_kinds() -> set[str]:
    """Every ``kind="..."`` given to a call in the writers of the outbox."""
    kinds = set()
    for folder in ("engine", "billing", "robotrader", "db"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call):
                    for keyword in node.keywords:
                        value = keyword.value
                        if keyword.arg == "kind" and isinstance(value, ast.Constant):
                            kinds.add(str(value.value))
    return kinds | INDIRECT_KINDS


# Payload fields the renderer looks up in the catalog take real values; any other field
# reads "7".
REASONS = {
    "bot_paused": "daily_loss_limit",
    "order_rejected": "insufficient_funds",
    "trade_closed": "stop_loss",
}


class _AnyPayload(dict[str, Any]):
    """A payload holding whatever the renderer asks for."""

    def __missing__(self, key: str) -> str:
        return "7"

    def get(self, key: str, default: Any = None) -> Any:
        return self[key]


@pytest.mark.parametrize("language", tags())
def test_every_written_kind_renders_without_a_missing_key(
    language: str, caplog: pytest.LogCaptureFixture
) -> None:
    kinds = _written_kinds()
    assert {"bot_paused", "signal_expired", "plan_changed"} <= kinds  # the scan works
    caplog.set_level(logging.ERROR, logger="robotrader.i18n")
    for kind in sorted(kinds):
        payload = _AnyPayload(
            mode="paper", plan="pro", strategy="sma_crossover", error="no_candles",
            reason=REASONS.get(kind, "entry"), paused=["alpha"],
        )  # fmt: skip
        # Kinds rendered from their payload alone carry the fields their text names.
        own_text = catalog(language).get(f"notify.{kind}", "")
        payload.update({name: "7" for name in placeholders(own_text) if name not in payload})
        text = render_notification(kind, payload, language).plain()
        assert text.strip() and "{" not in text, (kind, text)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
