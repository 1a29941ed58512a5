"""``/optimize <strategy> <pair> <period> [name=low..high] [split=70] [values=8]``.

The use case searches the strategy's parameters (robotrader.use_cases.optimization);
this handler shows the progress in one edited message, then the ranked sets, the
overfitting warnings and a button that starts /newbot with the best set filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

from bots.core import actions
from bots.core.commands.research_progress import finish_progress, progress_reporter
from bots.core.invocation import Invocation
from bots.core.registry import command
from bots.core.replies import Block, Button, Paragraph, Reply, Table, Title
from robotrader.errors import UserError
from robotrader.formatting import day, number, percent
from robotrader.i18n import error_text
from robotrader.reference import STRATEGIES
from robotrader.use_cases.backtests import research_words
from robotrader.use_cases.optimization import (
    OptimizationReport,
    OptimizeRequest,
    optimize_for_user,
)

SHOWN_SETS = 10
UPGRADE_KEYS = frozenset({"backtest_period_limit", "strategy_not_in_plan"})


def parse_optimize(args: list[str]) -> OptimizeRequest:
    if not args:
        raise UserError("missing_argument", usage="/optimize <strategy> <symbol> <period>")
    words = research_words(args[1:])
    if words.others:
        raise UserError("backtest_extra_argument", value=words.others[0][:32])
    return OptimizeRequest(
        strategy=args[0], symbol=words.symbol, period=words.period, options=words.options
    )


def _params(values: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "—"


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def new_bot_button(inv: Invocation, found: OptimizationReport) -> list[list[Button]]:
    """ "Create a bot with these parameters": /newbot with the best set filled in."""
    best = found.result.best
    if best is None:
        return []
    spec = found.setup.spec
    order = [p.name for p in STRATEGIES[spec.strategy].info.params]
    try:
        payload = actions.encode(
            "opb", spec.exchange, spec.symbol, spec.strategy, spec.timeframe,
            *(best.params[n] for n in order),
        )
    except ValueError:  # too long for a button: the parameters are in the table
        return []
    return [[Button(inv.t("optimize.create_bot"), action=payload)]]


def optimization_reply(inv: Invocation, found: OptimizationReport) -> Reply:
    t, lang = inv.t, inv.t.language
    setup, result = found.setup, found.result
    spec = setup.spec
    title = t(STRATEGIES[spec.strategy].info.title_key)
    header = [
        "#",
        t("optimize.header.params"),
        t("optimize.header.out_return"),
        t("optimize.header.out_drawdown"),
        t("optimize.header.out_trades"),
        t("optimize.header.in_return"),
    ]
    rows = [
        [
            str(rank),
            _params({k: c.params[k] for k in setup.grid.searched}),
            percent(c.out_of_sample.return_pct, lang),
            percent(-c.out_of_sample.max_drawdown_pct, lang),
            str(c.out_of_sample.trades),
            percent(c.in_sample.return_pct, lang),
        ]
        for rank, c in enumerate(result.candidates[:SHOWN_SETS], start=1)
    ]
    blocks: list[Block] = [
        Title(t("optimize.title", strategy=title, symbol=spec.symbol, sets=len(result.candidates))),
        Paragraph(
            t(
                "optimize.setup",
                exchange=spec.exchange,
                timeframe=spec.timeframe,
                start=day(_when(found.first_candle_ms), lang),
                split=day(_when(result.split_time), lang),
                end=day(_when(found.last_candle_ms), lang),
                in_pct=round(result.in_sample_share * 100),
                out_pct=100 - round(result.in_sample_share * 100),
            )
        ),
        Table(rows, header=header),
    ]
    best_in = result.best_in_sample
    correlation = (
        None if result.rank_correlation is None else Decimal(f"{result.rank_correlation:.2f}")
    )
    for warning in result.warnings:
        blocks.append(
            Paragraph(
                t(
                    f"optimize.warning.{warning}",
                    params=_params(best_in.params) if best_in else "—",
                    in_pct=percent(best_in.in_sample.return_pct, lang) if best_in else "—",
                    out_pct=percent(best_in.out_of_sample.return_pct, lang) if best_in else "—",
                    correlation=number(correlation, lang),
                    trades=result.best.out_of_sample.trades if result.best else 0,
                )
            )
        )
    grid = setup.grid
    if grid.truncated:
        if setup.more_with is not None:
            note = t("optimize.truncated", plan=t(f"plan.{setup.plan}"), maximum=grid.limit,
                     full=grid.full_size, sets=len(grid.sets), next_plan=setup.more_with.title,
                     next_maximum=setup.more_with.max_optimize_sets)  # fmt: skip
        else:
            note = t("optimize.truncated_top", maximum=grid.limit, full=grid.full_size,
                     sets=len(grid.sets))  # fmt: skip
        blocks.append(Paragraph(note))
    if found.source == "replay":
        blocks.append(Paragraph(t("backtest.source_replay")))
    return Reply(blocks=blocks, buttons=new_bot_button(inv, found))


@command("optimize", private_only=True, args=("strategy", "symbol", "period"))
async def optimize(inv: Invocation) -> Reply:
    request = parse_optimize(inv.args)
    headline = inv.t("optimize.progress_title", strategy=request.strategy,
                     symbol=(request.symbol or "").upper(),
                     period=request.period or "30d")  # fmt: skip
    try:
        found = await optimize_for_user(
            inv.app, inv.user_id, request, progress_reporter(inv, headline)
        )
    except UserError as exc:
        if exc.key in UPGRADE_KEYS:
            buttons = [[Button(inv.t("plan.button_upgrade"), action=actions.encode("up"))]]
            return Reply(blocks=[Paragraph(error_text(inv.t, exc))], buttons=buttons)
        raise
    await finish_progress(inv, headline)
    return optimization_reply(inv, found)
