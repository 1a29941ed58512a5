"""Outbox notifications rendered for chat, in the user's language.

The engine and billing write facts (a kind and its typed payload,
`robotrader.notifications`); this is the one place that turns them into words,
for every front end.
"""

from __future__ import annotations

from typing import Any, assert_never

from bots.core import actions
from bots.core.replies import Block, Button, Paragraph, Reply, Title
from robotrader.formatting import amount, percent, price, signed_money
from robotrader.i18n import Translator
from robotrader.notifications import (
    BacktestDoneNotice,
    BacktestFailedNotice,
    BotPausedNotice,
    DailySummaryNotice,
    DataFallbackNotice,
    ExchangeConnectedNotice,
    KillSwitchNotice,
    Notice,
    OrderRejectedNotice,
    PaymentFailedNotice,
    PlanChangedNotice,
    SignalExpiredNotice,
    TradeClosedNotice,
    TradeOpenedNotice,
    read_notice,
)
from robotrader.reference import STRATEGIES


def render_notification(kind: str, payload: dict[str, Any], language: str) -> Reply:
    """A stored notification (kind and JSON payload) in ``language``.

    A kind nobody knows, or a payload that does not fit its kind, raises
    `UnreadableNotification`: there is no generic text to fall back on.
    """
    return render_notice(read_notice(kind, payload), language)


def render_notice(notice: Notice, language: str) -> Reply:
    """One notice in ``language``; mypy holds this match to every kind (``assert_never``)."""
    t = Translator(language)
    lang = t.language
    match notice:
        case TradeOpenedNotice():
            mode = t(f"mode.{notice.mode}")
            return Reply(
                blocks=[
                    Title(t("notify.bought_title", symbol=notice.symbol, mode=mode)),
                    Paragraph(
                        t(
                            "notify.bought",
                            amount=amount(notice.amount, lang),
                            symbol=notice.symbol,
                            price=price(notice.price, lang),
                            bot=notice.bot,
                            reason=t(f"reason.{notice.reason}"),
                        )
                    ),
                ]
            )
        case TradeClosedNotice():
            mode = t(f"mode.{notice.mode}")
            title = "notify.sold_title_win" if notice.pnl >= 0 else "notify.sold_title_loss"
            return Reply(
                blocks=[
                    Title(t(title, symbol=notice.symbol, mode=mode)),
                    Paragraph(
                        t(
                            "notify.sold",
                            amount=amount(notice.amount, lang),
                            symbol=notice.symbol,
                            price=price(notice.price, lang),
                            entry=price(notice.entry_price, lang),
                            pnl=signed_money(notice.pnl, lang),
                            pnl_pct=percent(notice.pnl_pct, lang),
                            bot=notice.bot,
                            reason=t(f"reason.{notice.reason}"),
                        )
                    ),
                ]
            )
        case OrderRejectedNotice():
            reason = t(f"rejection.{notice.reason}")
            words = {"bot": notice.bot, "symbol": notice.symbol, "reason": reason}
            if notice.limits:
                return Reply.text(t("notify.rejected_limits", limits=notice.limits, **words))
            return Reply.text(t("notify.rejected", **words))
        case BotPausedNotice():
            return Reply.text(
                t("notify.paused", bot=notice.bot, reason=t(f"pause.{notice.reason}"))
            )
        case DataFallbackNotice():
            return Reply.text(t("notify.data_fallback", bot=notice.bot))
        case SignalExpiredNotice():
            return Reply.text(
                t(
                    "notify.signal_expired",
                    bot=notice.bot,
                    action=notice.action,
                    received=notice.received,
                    minutes=notice.minutes,
                    limit=notice.limit,
                )
            )
        case KillSwitchNotice():
            return Reply.text(
                t("notify.kill_switch", bots=notice.bots, sold=notice.sold, waiting=notice.waiting)
            )
        case DailySummaryNotice():
            return Reply.text(
                t(
                    "notify.daily_summary",
                    pnl=signed_money(notice.pnl, lang),
                    trades=notice.trades,
                    open=notice.open_positions,
                )
            )
        case PlanChangedNotice():
            plan = t(f"plan.{notice.plan}")
            if not notice.downgrade:
                return Reply.text(t("notify.plan_upgraded", plan=plan))
            paused = ", ".join(notice.paused) or "—"
            return Reply.text(t("notify.plan_downgraded", plan=plan, paused=paused))
        case PaymentFailedNotice():
            url = notice.portal_url
            return Reply(
                blocks=[Paragraph(t("notify.payment_failed", url=url))],
                buttons=[[Button(t("billing.open"), url=url)]] if url else [],
            )
        case BacktestDoneNotice() | BacktestFailedNotice():
            return _backtest_notice(t, notice)
        case ExchangeConnectedNotice():
            return _exchange_connected(t, notice)
        case _:
            assert_never(notice)


def _exchange_connected(t: Translator, notice: ExchangeConnectedNotice) -> Reply:
    """A key received on the web form: the reply the chat's /connect ends with."""
    rights = [
        t("connect.right_read"),
        t("connect.right_trade") if notice.trade is not False else t("connect.right_no_trade"),
        t("connect.right_no_withdraw")
        if notice.withdraw is False
        else t("connect.right_withdraw_unknown"),
    ]
    blocks: list[Block] = [
        Title(t("connect.done", exchange=notice.title)),
        Paragraph(t("notify.exchange_connected_web")),
        Paragraph("\n".join(rights)),
    ]
    if notice.egress_ips:
        ips = ", ".join(notice.egress_ips)
        blocks.append(Paragraph(t("connect.restrict_ips", exchange=notice.title, ips=ips)))
    return Reply(
        blocks=blocks, buttons=[[Button(t("start.button_newbot"), action=actions.encode("nb"))]]
    )


def _backtest_notice(t: Translator, notice: BacktestDoneNotice | BacktestFailedNotice) -> Reply:
    """A backtest that ended while nobody waited for it in a chat."""
    strategy = STRATEGIES.get(notice.strategy)
    title = t(strategy.info.title_key) if strategy else ""
    words = {
        "job": notice.job[:8],
        "target": notice.bot or title or notice.strategy,
        "symbol": notice.symbol,
    }
    if isinstance(notice, BacktestFailedNotice):
        reason = t(f"backtest.error.{notice.error}")
        return Reply.text(t("notify.backtest_failed", reason=reason, **words))
    return Reply(
        blocks=[
            Paragraph(
                t(
                    "notify.backtest_done",
                    days=notice.days,
                    pnl_pct=percent(notice.pnl_pct, t.language),
                    trades=notice.trades,
                    **words,
                )
            )
        ],
        buttons=[[Button(t("backtest.show"), action=actions.encode("btv", notice.job))]],
    )
