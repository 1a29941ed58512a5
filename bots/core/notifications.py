"""Outbox notifications rendered for chat, in the user's language.

The engine and billing write facts (kind + payload of plain strings); this is
the one place that turns them into words, for every front end.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from bots.core import actions
from bots.core.replies import Button, Paragraph, Reply, Title
from engine.strategies.registry import STRATEGIES
from robotrader.formatting import amount, percent, price, signed_money
from robotrader.i18n import Translator


def _dec(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def render_notification(kind: str, payload: dict[str, Any], language: str) -> Reply:
    t = Translator(language)
    lang = t.language
    mode = t(f"mode.{payload.get('mode', 'paper')}")
    bot = str(payload.get("bot", ""))
    if kind == "trade_opened":
        return Reply(
            blocks=[
                Title(t("notify.bought_title", symbol=payload["symbol"], mode=mode)),
                Paragraph(
                    t(
                        "notify.bought",
                        amount=amount(_dec(payload.get("amount")), lang),
                        symbol=payload["symbol"],
                        price=price(_dec(payload.get("price")), lang),
                        bot=bot,
                        reason=t(f"reason.{payload.get('reason', 'entry')}"),
                    )
                ),
            ]
        )
    if kind == "trade_closed":
        pnl = _dec(payload.get("pnl")) or Decimal(0)
        title = "notify.sold_title_win" if pnl >= 0 else "notify.sold_title_loss"
        return Reply(
            blocks=[
                Title(t(title, symbol=payload["symbol"], mode=mode)),
                Paragraph(
                    t(
                        "notify.sold",
                        amount=amount(_dec(payload.get("amount")), lang),
                        symbol=payload["symbol"],
                        price=price(_dec(payload.get("price")), lang),
                        entry=price(_dec(payload.get("entry_price")), lang),
                        pnl=signed_money(pnl, lang),
                        pnl_pct=percent(_dec(payload.get("pnl_pct")), lang),
                        bot=bot,
                        reason=t(f"reason.{payload.get('reason', 'exit')}"),
                    )
                ),
            ]
        )
    if kind == "order_rejected":
        reason = t(f"rejection.{payload.get('reason', 'invalid_order')}")
        symbol = payload.get("symbol", "")
        if payload.get("limits"):
            return Reply.text(
                t("notify.rejected_limits", bot=bot, symbol=symbol, reason=reason,
                  limits=payload["limits"])
            )  # fmt: skip
        return Reply.text(t("notify.rejected", bot=bot, symbol=symbol, reason=reason))
    if kind == "bot_paused":
        return Reply.text(
            t("notify.paused", bot=bot, reason=t(f"pause.{payload.get('reason', 'unknown')}"))
        )
    if kind == "data_fallback":
        return Reply.text(t("notify.data_fallback", bot=bot))
    if kind == "kill_switch":
        return Reply.text(
            t(
                "notify.kill_switch",
                bots=payload.get("bots", 0),
                sold=payload.get("sold", 0),
                waiting=payload.get("waiting", 0),
            )
        )
    if kind == "daily_summary":
        return Reply.text(
            t(
                "notify.daily_summary",
                pnl=signed_money(_dec(payload.get("pnl")), lang),
                trades=payload.get("trades", 0),
                open=payload.get("open_positions", 0),
            )
        )
    if kind == "plan_changed":
        plan = t(f"plan.{payload.get('plan', 'free')}")
        if not payload.get("downgrade"):
            return Reply.text(t("notify.plan_upgraded", plan=plan))
        paused = ", ".join(payload.get("paused") or []) or "—"
        return Reply.text(t("notify.plan_downgraded", plan=plan, paused=paused))
    if kind == "payment_failed":
        return Reply(
            blocks=[Paragraph(t("notify.payment_failed", url=payload.get("portal_url", "")))],
            buttons=[[Button(t("billing.open"), url=str(payload.get("portal_url", "")))]]
            if payload.get("portal_url")
            else [],
        )
    if kind in ("backtest_done", "backtest_failed"):
        return _backtest_notice(t, kind, payload)
    return Reply.text(t(f"notify.{kind}", **{k: str(v) for k, v in payload.items()}))


def _backtest_notice(t: Translator, kind: str, payload: dict[str, Any]) -> Reply:
    """A backtest that ended while nobody waited for it in a chat."""
    strategy = STRATEGIES.get(str(payload.get("strategy", "")))
    title = t(strategy.info.title_key) if strategy else ""
    words = {
        "job": str(payload.get("job", ""))[:8],
        "target": str(payload.get("bot") or title or payload.get("strategy", "")),
        "symbol": str(payload.get("symbol", "")),
    }
    if kind == "backtest_failed":
        reason = t(f"backtest.error.{payload.get('error', 'internal')}")
        return Reply.text(t("notify.backtest_failed", reason=reason, **words))
    return Reply(
        blocks=[
            Paragraph(
                t(
                    "notify.backtest_done",
                    days=payload.get("days", ""),
                    pnl_pct=percent(_dec(payload.get("pnl_pct")), t.language),
                    trades=payload.get("trades", 0),
                    **words,
                )
            )
        ],
        buttons=[
            [Button(t("backtest.show"), action=actions.encode("btv", payload.get("job", "")))]
        ],
    )
