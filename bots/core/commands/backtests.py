"""/backtest and /chart: a bot or a strategy over past candles, and a bot's equity as a PNG.

``/backtest <bot> 30d``, ``/backtest sma_crossover BTC/USDT 90d fast=5 slow=20``
(``key=value`` also sets ``capital``, ``tf``, ``exchange``, ``stop_loss``...), or
``/backtest`` alone for buttons: what, which pair, how long. Whatever is missing is
asked with buttons. The engine runs the job (a Celery worker, or a thread of the
embedded mode); the use case ``follow_backtest`` follows its row and this handler
shows the progress in one message that it edits (``ChatContext.progress``), then
answers with the figures and the chart. A front end without progress messages, a
shutdown or a very long job is handed over to the outbox instead (the engine then
notifies), and ``/backtest status`` shows the latest job, following it again while
it runs.

Button payloads carry the whole choice (``btp:<target>:<symbol>:<days>``, a bot as
``b<id>``), so an old button still works after a restart.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

from bots.core import actions
from bots.core.commands.bots import POPULAR_SYMBOLS
from bots.core.commands.comparison import compare_command
from bots.core.invocation import Invocation
from bots.core.registry import action, command
from bots.core.replies import Block, Button, Document, Image, Paragraph, Reply, Table, Title
from robotrader.backtesting import (
    STAGES,
    BacktestSpec,
    BacktestSummary,
    DataCoverage,
    csv_filename,
    trades_csv,
)
from robotrader.enums import BacktestStatus
from robotrader.errors import UserError
from robotrader.formatting import day, money, number, percent, share, signed_money
from robotrader.i18n import Translator, error_text, keywords
from robotrader.reference import STRATEGIES
from robotrader.use_cases.backtests import (
    BACKTEST_PERIODS,
    BacktestJob,
    BacktestRequest,
    BotChoice,
    backtest_chart,
    backtest_choices,
    backtest_target,
    follow_backtest,
    get_backtest,
    research_words,
    start_backtest,
)
from robotrader.use_cases.bots import normalize_symbol
from robotrader.use_cases.equity import bot_equity_chart

EDIT_EVERY_SECONDS = 1.0  # Telegram allows about one edit a second per chat
BAR_CELLS = 10
# Refusals of the plan that another plan lifts: answered with an upgrade button.
UPGRADE_KEYS = frozenset(
    {"backtest_period_limit", "backtest_concurrency_limit", "strategy_not_in_plan"}
)


# --- reading the command ---------------------------------------------------------------------


def parse_request(args: list[str]) -> BacktestRequest:
    """``<bot|strategy> [symbol] [period] [key=value...]`` in any order after the first word."""
    target, words = args[0], research_words(args[1:])
    if words.others:
        raise UserError("backtest_extra_argument", value=words.others[0][:32])
    return BacktestRequest(
        target=target, symbol=words.symbol, period=words.period, options=words.options
    )


def _ref(choice: BotChoice | str) -> str:
    """A target in a button payload: ``b<id>`` for a bot, a strategy's name."""
    return f"b{choice.id}" if isinstance(choice, BotChoice) else choice


def _target_of(ref: str) -> str | int:
    return int(ref[1:]) if ref[:1] == "b" and ref[1:].isdigit() else ref


def _strategy_title(t: Translator, name: str) -> str:
    strategy = STRATEGIES.get(name)
    return t(strategy.info.title_key) if strategy else name


def _target_title(t: Translator, choice: BotChoice | str) -> str:
    if isinstance(choice, BotChoice):
        return t("backtest.bot_target", bot=choice.name)
    return _strategy_title(t, choice)


# --- the guided steps --------------------------------------------------------------------------


async def _ask_target(inv: Invocation) -> Reply:
    choices = await backtest_choices(inv.app, inv.user_id)
    rows = [[Button(f"🤖 {b.name}", action=actions.encode("btt", _ref(b)))] for b in choices.bots]
    rows += [
        [Button(_strategy_title(inv.t, name), action=actions.encode("btt", name))]
        for name in choices.strategies
    ]
    return Reply(
        blocks=[Title(inv.t("backtest.title")), Paragraph(inv.t("backtest.ask_target"))],
        buttons=rows,
        edit=True,
    )


def _ask_symbol(inv: Invocation, choice: BotChoice | str) -> Reply:
    symbols = choice.symbols if isinstance(choice, BotChoice) else list(POPULAR_SYMBOLS)
    ref = _ref(choice)
    rows = [
        [Button(s, action=actions.encode("bty", ref, s)) for s in symbols[i : i + 3]]
        for i in range(0, len(symbols), 3)
    ]
    text = inv.t("backtest.ask_symbol", target=_target_title(inv.t, choice))
    return Reply(blocks=[Paragraph(text)], buttons=rows, edit=True)


async def _ask_period(inv: Invocation, choice: BotChoice | str, symbol: str) -> Reply:
    symbol = normalize_symbol(symbol)  # a well-formed pair, short enough for a button
    choices = await backtest_choices(inv.app, inv.user_id)
    ref = _ref(choice)
    periods = [
        Button(
            ("" if days <= choices.max_days else "🔒 ") + inv.t("backtest.days", days=days),
            action=actions.encode("btp", ref, symbol, days),
        )
        for days in BACKTEST_PERIODS
    ]
    rows = [periods[i : i + 3] for i in range(0, len(periods), 3)]
    text = inv.t(
        "backtest.ask_period",
        target=_target_title(inv.t, choice),
        symbol=symbol,
        plan=inv.t(f"plan.{choices.plan}"),
        maximum=choices.max_days,
    )
    return Reply(blocks=[Paragraph(text)], buttons=rows, edit=True)


async def _next_step(inv: Invocation, request: BacktestRequest) -> Reply | None:
    """The button step for what ``request`` lacks; None when it can run as it is."""
    if request.period is not None and (request.symbol is not None or request.options):
        return None
    choice = await backtest_target(inv.app, inv.user_id, request.target)
    if request.symbol is None and not isinstance(choice, BotChoice):
        return _ask_symbol(inv, choice)
    if request.period is not None or request.options:
        return None  # a bot, with a period or options: its own symbol, 30 days by default
    symbol = request.symbol
    if symbol is None:
        assert isinstance(choice, BotChoice)
        if len(choice.symbols) > 1:
            return _ask_symbol(inv, choice)
        symbol = choice.symbols[0]
    return await _ask_period(inv, choice, symbol)


def _fresh(reply: Reply) -> Reply:
    """A step answered to a typed command: a new message, not an edit of an older one."""
    reply.edit = False
    return reply


@command("backtest", private_only=True, args=("bot|strategy", "symbol", "period"))
async def backtest(inv: Invocation) -> Reply | list[Reply]:
    if not inv.args:
        return _fresh(await _ask_target(inv))
    if inv.args[0].lower() in keywords("command.word.status"):
        return await _status(inv, inv.args[1] if len(inv.args) > 1 else None)
    if inv.args[0].lower() in keywords("command.word.compare"):
        return await compare_command(inv, inv.args[1:])
    request = parse_request(inv.args)
    step = await _next_step(inv, request)
    if step is not None:
        return _fresh(step)
    return await _start(inv, request)


@action("bt")
async def backtest_button(inv: Invocation) -> Reply:
    """"Another backtest", under a result: the result stays, the first step comes below it."""
    return _fresh(await _ask_target(inv))


@action("btt")
async def target_button(inv: Invocation) -> Reply:
    if not inv.args:
        raise UserError("button_expired")
    step = await _next_step(inv, BacktestRequest(target=_target_of(inv.args[0])))
    if step is None:  # a target alone always has a step left (its symbol or its period)
        raise UserError("button_expired")
    return step


@action("bty")
async def symbol_button(inv: Invocation) -> Reply:
    if len(inv.args) < 2:
        raise UserError("button_expired")
    choice = await backtest_target(inv.app, inv.user_id, _target_of(inv.args[0]))
    return await _ask_period(inv, choice, inv.args[1])


@action("btp")
async def period_button(inv: Invocation) -> list[Reply]:
    if len(inv.args) < 3 or not inv.args[2].isdigit():
        raise UserError("button_expired")
    ref, symbol, days = inv.args[0], inv.args[1], int(inv.args[2])
    return await _start(inv, BacktestRequest(_target_of(ref), symbol=symbol, period=days))


@action("btv")
async def show_button(inv: Invocation) -> Reply | list[Reply]:
    """The result (or the progress) of one job, from its notification."""
    return await _status(inv, inv.args[0] if inv.args else None)


# --- running it ----------------------------------------------------------------------------------


def _upgrade_offer(inv: Invocation, exc: UserError) -> Reply:
    buttons = []
    if not exc.key.endswith("_top"):
        buttons = [[Button(inv.t("plan.button_upgrade"), action=actions.encode("up"))]]
    return Reply(blocks=[Paragraph(error_text(inv.t, exc))], buttons=buttons)


async def _start(inv: Invocation, request: BacktestRequest) -> list[Reply]:
    try:
        job = await start_backtest(inv.app, inv.user_id, request, language=inv.t.language)
    except UserError as exc:
        if exc.key in UPGRADE_KEYS or exc.key.removesuffix("_top") in UPGRADE_KEYS:
            return [_upgrade_offer(inv, exc)]
        raise
    return await _follow(inv, job)


def _bar(fraction: float) -> str:
    filled = min(BAR_CELLS, max(0, round(fraction * BAR_CELLS)))
    return "▓" * filled + "░" * (BAR_CELLS - filled)


def _headline(t: Translator, spec: BacktestSpec) -> str:
    target = spec.bot or _strategy_title(t, spec.strategy)
    return t("backtest.progress_title", target=target, symbol=spec.symbol, days=spec.days)


def _progress_reply(t: Translator, job: BacktestJob, *, note: str | None = None) -> Reply:
    if job.status == BacktestStatus.DONE:
        line = f"{_bar(1.0)} 100% — {t('backtest.stage.done')}"
    elif job.status == BacktestStatus.FAILED:
        line = t("backtest.stage.failed")
    else:
        stage = job.stage if job.stage in STAGES else "queued"
        line = f"{_bar(job.progress)} {round(job.progress * 100)}% — {t(f'backtest.stage.{stage}')}"
    blocks: list[Block] = [Paragraph(_headline(t, job.spec)), Paragraph(line)]
    if note:
        blocks.append(Paragraph(note))
    return Reply(blocks=blocks)


async def _follow(inv: Invocation, job: BacktestJob) -> list[Reply]:
    """Show the job's progress in one edited message until it ends; then its outcome."""
    show = inv.ctx.progress
    if show is None:
        followed = await follow_backtest(inv.app, inv.user_id, job)
        if followed.handed_over:
            return [Reply.text(inv.t("backtest.started_background", job=job.short_id))]
        return await _outcome(inv, followed.job)
    shown: str | None = None
    shown_at = 0.0

    async def progress(current: BacktestJob) -> None:
        nonlocal shown, shown_at
        reply = _progress_reply(inv.t, current)
        text = reply.plain()
        if text != shown and time.monotonic() - shown_at >= EDIT_EVERY_SECONDS:
            await show(reply)
            shown, shown_at = text, time.monotonic()

    followed = await follow_backtest(
        inv.app, inv.user_id, job, on_progress=progress, stopping=inv.stopping
    )
    if followed.handed_over:
        note = inv.t("backtest.continues", job=followed.job.short_id)
        await show(_progress_reply(inv.t, followed.job, note=note))
        return []
    await show(_progress_reply(inv.t, followed.job))
    return await _outcome(inv, followed.job)


async def _status(inv: Invocation, job_ref: str | None) -> Reply | list[Reply]:
    job = await get_backtest(inv.app, inv.user_id, job_ref)
    if job.finished:
        return await _outcome(inv, job)
    if inv.ctx.progress is None:
        return _progress_reply(inv.t, job)
    return await _follow(inv, job)


async def _outcome(inv: Invocation, job: BacktestJob) -> list[Reply]:
    again = [[Button(inv.t("backtest.again"), action=actions.encode("bt"))]]
    if job.summary is None:
        reason = inv.t(f"backtest.error.{job.error or 'internal'}")
        return [Reply(blocks=[Paragraph(inv.t("backtest.failed", reason=reason))], buttons=again)]
    png = await backtest_chart(inv.app, inv.user_id, job.id)
    reply = result_reply(inv.t, job.summary, png)
    reply.buttons = again
    return [reply]


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def result_reply(t: Translator, summary: BacktestSummary, png: bytes | None) -> Reply:
    """The figures of a backtest in the user's language, with its chart as a photo."""
    lang = t.language
    spec = summary.spec
    strategy = _strategy_title(t, spec.strategy)
    params = ", ".join(f"{k}={v}" for k, v in spec.parameters.items()) or "—"
    rows = [
        [t("backtest.field.pnl"), signed_money(summary.total_pnl, lang)],
        [t("backtest.field.return"), percent(summary.total_pnl_pct, lang)],
        [t("backtest.field.buy_and_hold"), percent(summary.buy_and_hold_pct, lang)],
        [t("backtest.field.max_drawdown"), percent(-summary.max_drawdown_pct, lang)],
        [t("backtest.field.win_rate"), share(summary.win_rate_pct, lang)],
        [t("backtest.field.sharpe"), number(summary.sharpe, lang)],
        [t("backtest.field.exposure"), share(summary.exposure_pct, lang)],
        [t("backtest.field.trades"), str(summary.trade_count)],
        [t("backtest.field.capital"), money(spec.capital, lang)],
        [t("backtest.field.final_equity"), money(summary.final_equity, lang)],
    ]
    blocks: list[Block] = [
        Title(t("backtest.result_title", target=spec.bot or strategy, symbol=spec.symbol)),
        Paragraph(
            t(
                "backtest.setup",
                strategy=strategy,
                parameters=params,
                exchange=spec.exchange,
                timeframe=spec.timeframe,
                start=day(_when(summary.first_candle_ms), lang),
                end=day(_when(summary.last_candle_ms), lang),
                candles=summary.candles,
            )
        ),
        Table(rows),
        Paragraph(
            t(
                "backtest.fill_rule",
                slippage=share(summary.slippage * 100, lang),
                fee=share(summary.fee_rate * 100, lang),
            )
        ),
    ]
    if summary.synthetic:
        blocks.append(Paragraph(t("backtest.source_replay")))
    if summary.coverage is not None:
        blocks.extend(_coverage_notes(t, summary, summary.coverage))
    image = None
    if png:
        caption = t(
            "backtest.caption",
            target=spec.bot or strategy,
            symbol=spec.symbol,
            days=spec.days,
            pnl_pct=percent(summary.total_pnl_pct, lang),
            hold_pct=percent(summary.buy_and_hold_pct, lang),
        )
        image = Image(png, caption)
    document = None
    if summary.trades:
        data = trades_csv(summary).encode()
        document = Document(data, csv_filename(summary), t("backtest.csv_caption"))
    return Reply(blocks=blocks, image=image, document=document)


def _coverage_notes(
    t: Translator, summary: BacktestSummary, coverage: DataCoverage
) -> list[Block]:
    """What the period really had: a later start than asked, and the gaps in the data."""
    lang = t.language
    spec = summary.spec

    def at(ms: int) -> str:
        return day(_when(ms), lang)

    notes: list[Block] = []
    if coverage.clipped:
        notes.append(
            Paragraph(
                t(
                    "backtest.clipped",
                    exchange=spec.exchange,
                    symbol=spec.symbol,
                    first=at(coverage.first_candle_ms),
                    start=at(coverage.first_candle_ms),
                    end=at(coverage.last_candle_ms),
                )
            )
        )
    if coverage.gaps and coverage.longest_gap_first_ms is not None:
        notes.append(
            Paragraph(
                t(
                    "backtest.gaps",
                    gaps=coverage.gaps,
                    missing=coverage.missing_candles,
                    longest=coverage.longest_gap_candles,
                    gap_start=_moment(coverage.longest_gap_first_ms),
                    gap_end=_moment(coverage.longest_gap_last_ms or coverage.longest_gap_first_ms),
                )
            )
        )
    return notes


def _moment(ms: int) -> str:
    """A candle's open time to the minute, UTC: gaps are often minutes long."""
    return _when(ms).strftime("%Y-%m-%d %H:%M UTC")


# --- /chart ------------------------------------------------------------------------------------


@command("chart", private_only=True, args=("bot",))
async def chart(inv: Invocation) -> Reply:
    """``/chart <bot>``: the bot's equity from its creation to now, a step at each closed trade."""
    if not inv.args:
        choices = await backtest_choices(inv.app, inv.user_id)
        if not choices.bots:
            return Reply.text(inv.t("bots.none"))
        return Reply(
            blocks=[Paragraph(inv.t("chart.ask_bot"))],
            buttons=[[Button(b.name, action=actions.encode("ch", b.id))] for b in choices.bots],
        )
    lang = inv.t.language
    found = await bot_equity_chart(inv.app, inv.user_id, " ".join(inv.args), language=lang)
    rows = [
        [inv.t("field.capital"), money(found.capital, lang)],
        [inv.t("chart.realized"), signed_money(found.realized_pnl, lang)],
        [inv.t("chart.unrealized"), signed_money(found.unrealized_pnl, lang)],
        [inv.t("chart.trades"), str(found.trades)],
    ]
    equity = found.capital + found.realized_pnl + (found.unrealized_pnl or Decimal(0))
    caption = inv.t(
        "chart.caption",
        bot=found.bot,
        mode=inv.t(f"mode.{found.mode}"),
        equity=money(equity, lang),
        trades=found.trades,
    )
    return Reply(
        blocks=[Title(inv.t("chart.title", bot=found.bot)), Table(rows)],
        image=Image(found.png, caption),
    )


@action("ch")
async def chart_button(inv: Invocation) -> Reply:
    return await chart(inv)
