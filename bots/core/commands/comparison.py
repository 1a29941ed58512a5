"""``/backtest compare <pair> <period> <strategy[:name=value,...]> ...``: side by side.

``/backtest compare BTC/USDT 90d rsi sma_crossover sma_crossover:fast=5,slow=30``;
``key=value`` words without a colon (``capital=500``, ``tf=5m``) apply to all.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bots.core import actions
from bots.core.commands.research_progress import finish_progress, progress_reporter
from bots.core.invocation import Invocation
from bots.core.replies import Block, Button, Image, Paragraph, Reply, Table, Title
from robotrader.errors import UserError
from robotrader.formatting import day, money, number, percent, share
from robotrader.use_cases.backtests import research_words
from robotrader.use_cases.comparison import CompareRequest, Comparison, compare_for_user


def parse_compare(args: list[str]) -> CompareRequest:
    """Words after ``compare``: the pair first, a period anywhere, options and contenders."""
    # "sma_crossover:fast=5,slow=30" holds an "=": contenders with parameters aside first.
    words = research_words([word for word in args if ":" not in word])
    others = set(words.others)
    contenders = [word for word in args if ":" in word or word in others]  # in their order
    if words.symbol is None:
        usage = "/backtest compare <pair> <period> <strategy> <strategy> ..."
        raise UserError("missing_argument", usage=usage)
    return CompareRequest(
        symbol=words.symbol, period=words.period, contenders=contenders,
        options=words.options,
    )  # fmt: skip


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def comparison_reply(inv: Invocation, found: Comparison) -> Reply:
    t, lang = inv.t, inv.t.language
    first = found.specs[0]
    header = [
        t("compare.header.strategy"),
        t("compare.header.return"),
        t("compare.header.drawdown"),
        t("compare.header.trades"),
        t("compare.header.win_rate"),
        t("compare.header.profit_factor"),
    ]
    rows = [
        [
            run.label,
            percent(run.result.total_pnl_pct, lang),
            percent(-run.result.max_drawdown_pct, lang),
            str(run.result.trade_count),
            share(run.result.win_rate_pct, lang),
            number(run.profit_factor, lang),
        ]
        for run in found.runs
    ]
    blocks: list[Block] = [
        Title(t("compare.title", symbol=first.symbol, count=len(found.runs), days=first.days)),
        Paragraph(
            t(
                "compare.setup",
                exchange=first.exchange,
                timeframe=first.timeframe,
                start=day(_when(found.first_candle_ms), lang),
                end=day(_when(found.last_candle_ms), lang),
                candles=found.candles,
                capital=money(first.capital, lang),
            )
        ),
        Table(rows, header=header),
    ]
    if found.source == "replay":
        blocks.append(Paragraph(t("backtest.source_replay")))
    best = max(found.runs, key=lambda run: run.result.total_pnl_pct)
    caption = t("compare.caption", symbol=first.symbol, best=best.label,
                pnl_pct=percent(best.result.total_pnl_pct, lang))  # fmt: skip
    again = [[Button(t("backtest.again"), action=actions.encode("bt"))]]
    return Reply(blocks=blocks, image=Image(found.png, caption), buttons=again)


async def compare_command(inv: Invocation, args: list[str]) -> Reply:
    request = parse_compare(args)
    headline = inv.t("compare.progress_title", count=len(request.contenders),
                     symbol=request.symbol.upper(), period=request.period or "30d")  # fmt: skip
    found = await compare_for_user(
        inv.app, inv.user_id, request, progress_reporter(inv, headline), language=inv.t.language
    )
    await finish_progress(inv, headline)
    return comparison_reply(inv, found)
