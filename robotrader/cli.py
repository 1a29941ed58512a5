"""The `robotrader` command."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from db import migrate as migrations
from db.credential_secrets import rotate_all
from db.session import Database
from db.vault import generate_master_key
from robotrader import languages
from robotrader.app import App
from robotrader.i18n import Translator, chart_text
from robotrader.languages import DEFAULT_LANGUAGE
from robotrader.logging_setup import configure_logging
from robotrader.master_key import MasterKeyMissing, load_vault, rotate_development_key
from robotrader.runtime import Service
from robotrader.settings import Settings, get_settings

if TYPE_CHECKING:
    from engine.backtest.jobs import Execution
    from engine.backtest.summary import BacktestSummary
    from robotrader.errors import UserError

app = typer.Typer(no_args_is_help=True, add_completion=False)
T = TypeVar("T")
log = logging.getLogger("robotrader")
# The messages' language, as --lang or the shell's LANG chose it (English until then).
_language: ContextVar[str] = ContextVar("language", default=DEFAULT_LANGUAGE)


@app.callback()
def main(
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            envvar="LANG",
            show_envvar=True,
            help="Language of the messages, e.g. en or pt-BR (default: the shell's, else English)",
        ),
    ] = None,
) -> None:
    """RoboTrader: chat-first trading bots."""
    _language.set(languages.resolve(lang))


def _t() -> Translator:
    return Translator(_language.get())


def _fail(key: str, /, **args: object) -> typer.Exit:
    """A message of the catalog on stderr, and the exit (status 2: bad input) to raise."""
    typer.echo(_t()(key, **args), err=True)
    return typer.Exit(2)


def _settings(*, log_to_file: bool = False) -> Settings:
    """The settings, and logging set up: to stderr, or with ``log_to_file`` to the chat's
    log file (said once, on stdout)."""
    settings = get_settings()
    if log_to_file:
        path = settings.chat_log_file.resolve()
        configure_logging(settings.log_level, file=path)
        typer.echo(_t()("cli.chat_log", path=str(path)))
    else:
        configure_logging(settings.log_level)
    return settings


def _require_vault(settings: Settings) -> None:
    try:
        load_vault(settings)
    except MasterKeyMissing:
        raise _fail("cli.master_key_missing", setting="ROBOTRADER_MASTER_KEY") from None


@app.command()
def migrate(
    revision: Annotated[str, typer.Option(help="Target revision")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to REVISION")] = False,
) -> None:
    """Upgrade (or with --down, downgrade) the database schema."""
    settings = _settings()
    url = settings.resolved_database_url
    if down:
        migrations.downgrade(url, revision)
    else:
        migrations.upgrade(url, revision)
    typer.echo(f"database at revision {asyncio.run(migrations.current_revision(url))}")


@app.command("generate-key")
def generate_key() -> None:
    """Print a new random master key (base64, 32 bytes) for ROBOTRADER_MASTER_KEY."""
    typer.echo(generate_master_key())


@app.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored secret under the current master key.

    With keys from the environment: set ROBOTRADER_MASTER_KEY to the new key and
    ROBOTRADER_OLD_MASTER_KEYS to the old one(s), restart the processes (they read
    both), then run this. On a development machine without a key in the
    environment, a new key is generated into the key file first.
    """
    settings = _settings()
    _require_vault(settings)
    vault = (
        load_vault(settings)
        if settings.master_key is not None
        else rotate_development_key(settings)
    )

    async def _rotate() -> int:
        database = Database(settings.resolved_database_url)
        try:
            return await rotate_all(database, vault)
        finally:
            await database.dispose()

    count = asyncio.run(_rotate())
    typer.echo(f"re-encrypted {count} credential(s) under key {vault.current_key_id}")


def _serve(settings: Settings, build: Callable[[App], list[Service]]) -> None:
    """Migrate, then run the services ``build`` picks until Ctrl-C or SIGTERM."""
    from robotrader.runtime import run_services

    _require_vault(settings)
    migrations.upgrade(settings.resolved_database_url)

    async def _main() -> None:
        application = App.from_settings(settings)
        try:
            await run_services(build(application))
        finally:
            await application.close()

    asyncio.run(_main())


@app.command()
def run() -> None:
    """Migrate, then run the whole product in this process until Ctrl-C."""
    from robotrader.services import embedded_services

    _serve(_settings(), embedded_services)


@app.command()
def telegram() -> None:
    """Run only the Telegram front end (replies and notification delivery).

    In webhook mode (PUBLIC_URL set) the web app runs in this process too: Telegram posts
    updates to its /telegram/webhook, which hands them to this front end.
    """
    from robotrader.services import telegram_service, web_service

    settings = _settings()
    if settings.telegram_token is None:
        raise _fail("cli.not_set", setting="ROBOTRADER_TELEGRAM_TOKEN")

    def build(application: App) -> list[Service]:
        services = [telegram_service(application)]
        if settings.public_url:
            services.append(web_service(application))
        return services

    _serve(settings, build)


@app.command()
def discord() -> None:
    """Run only the Discord front end (slash commands and notification delivery)."""
    from robotrader.services import discord_service

    settings = _settings()
    if settings.discord_token is None:
        raise _fail("cli.not_set", setting="ROBOTRADER_DISCORD_TOKEN")
    _serve(settings, lambda application: [discord_service(application)])


@app.command()
def web() -> None:
    """Run only the web app (webhooks, REST API, dashboard, health, metrics)."""
    from robotrader.services import web_service

    _serve(_settings(), lambda application: [web_service(application)])


@app.command()
def chat() -> None:
    """Try the product in this terminal: the chat commands for one local user, and the engine."""
    from robotrader.services import console_service, engine_service

    settings = _settings(log_to_file=True)
    _serve(
        settings, lambda application: [console_service(application), engine_service(application)]
    )


@app.command()
def worker(
    beat: Annotated[
        bool, typer.Option("--beat", help="Also schedule ticks (one per cluster)")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="Worker processes")] = 2,
    queues: Annotated[
        str, typer.Option(help="Queues to consume, comma separated (ticks, orders, backtests)")
    ] = "ticks,orders,backtests",
) -> None:
    """A Celery engine worker (needs ROBOTRADER_REDIS_URL); --beat to also schedule the ticks."""
    from robotrader.worker import build_app

    settings = _settings()
    _require_vault(settings)
    celery = build_app()
    argv = ["worker", "-Q", queues, f"--concurrency={concurrency}", "--loglevel=INFO"]
    if beat:
        argv.append("--beat")
    celery.worker_main(argv)


# What backtest, optimize and compare share, declared once.
StrategyArgument = Annotated[str, typer.Argument(help="Strategy: sma_crossover, rsi, dca, grid")]
SymbolArgument = Annotated[str, typer.Argument(help="Pair, e.g. BTC/USDT")]
PeriodArgument = Annotated[str, typer.Argument(help="How far back: 7d, 30d, 12w, 1y")]
ExchangeOption = Annotated[str, typer.Option(help="Exchange whose history to use")]
TimeframeOption = Annotated[str, typer.Option(help="Candle length: 1m, 5m, 15m, 1h, 4h, 1d")]
CapitalOption = Annotated[
    str, typer.Option(help="The bot's capital, in the quote currency (each one's in compare)")
]
StopLossOption = Annotated[str | None, typer.Option(help="Stop loss, in percent")]
TakeProfitOption = Annotated[str | None, typer.Option(help="Take profit, in percent")]
EndOption = Annotated[
    str | None, typer.Option(help="Last day of the period (YYYY-MM-DD, UTC); default now")
]
OfflineOption = Annotated[
    bool, typer.Option("--offline", help="Use the shipped sample data, not the exchange")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts)")]
ChartOption = Annotated[Path | None, typer.Option(help="Also write the chart to this PNG")]


@app.command()
def backtest(
    strategy: StrategyArgument,
    symbol: SymbolArgument,
    period: Annotated[str, typer.Option(help="How far back: 7d, 30d, 12w, 1y")] = "30d",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="A strategy parameter, name=value (repeatable)"),
    ] = None,
    exchange: ExchangeOption = "binance",
    timeframe: TimeframeOption = "1m",
    capital: CapitalOption = "1000",
    stop_loss: StopLossOption = None,
    take_profit: TakeProfitOption = None,
    end: EndOption = None,
    offline: OfflineOption = False,
    json_output: JsonOption = False,
    chart: ChartOption = None,
    csv_path: Annotated[
        Path | None,
        typer.Option("--csv", help="Also write the trades to this CSV file, one row per trade"),
    ] = None,
) -> None:
    """Backtest a strategy on one pair here, in this process: the figures the chat shows.

    The figures are printed first; a --chart or --csv file that cannot be written is then
    reported (exit status 2) without losing them.
    """
    import json
    from datetime import UTC, datetime

    from engine.backtest.candles import HistoricalCandles
    from engine.backtest.jobs import JobFailed, execute
    from engine.backtest.summary import BacktestSummary
    from engine.exchanges.clients import ClientPool
    from engine.risk import RiskSettings
    from robotrader.errors import UserError
    from robotrader.use_cases.backtests import (
        backtest_spec,
        check_listed,
        parse_period,
        period_end,
    )
    from robotrader.use_cases.bots import positive_pct

    settings = get_settings()
    configure_logging("WARNING")
    end_ms = None
    try:
        if end is not None:
            try:
                last_day = datetime.strptime(end, "%Y-%m-%d").replace(tzinfo=UTC).date()
            except ValueError:
                raise _fail("cli.bad_end", end=repr(end)) from None
            end_ms = period_end(last_day)
        parameters: dict[str, str] = {}
        for pair in param or []:
            name, sep, value = pair.partition("=")
            if not sep or not name.strip():
                raise _fail("cli.bad_param", param=repr(pair))
            parameters[name.strip()] = value.strip()
        risk = RiskSettings(
            stop_loss_pct=positive_pct(stop_loss, "stop_loss"),
            take_profit_pct=positive_pct(take_profit, "take_profit"),
        )
        spec = backtest_spec(
            strategy, symbol, parse_period(period), parameters=parameters, exchange=exchange,
            timeframe=timeframe, capital=capital, risk=risk, end_ms=end_ms,
            offline=offline or settings.market_data == "replay",
        )  # fmt: skip
    except UserError as exc:
        raise _user_error(exc) from None

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        console=Console(stderr=True),
        disable=json_output or not sys.stderr.isatty(),
        transient=True,
    )
    t = _t()
    stages = {"candles": t("cli.backtest.loading"), "simulating": t("cli.backtest.simulating")}

    async def _run() -> Execution:
        pool = ClientPool(settings.exchange_api_urls)
        try:
            history = HistoricalCandles(
                pool, settings.data_dir / "candles", max_bytes=settings.candle_cache_bytes
            )
            task = bar.add_task(stages["candles"], total=1.0)

            def progress(stage: str, fraction: float) -> None:
                bar.update(task, description=stages.get(stage, stage), completed=fraction)

            await check_listed(pool, spec)
            return await execute(spec, history, progress)
        finally:
            await pool.close()

    try:
        with bar:
            execution = asyncio.run(_run())
    except UserError as exc:
        raise _user_error(exc) from None
    except JobFailed as failed:
        where = {"timeframe": spec.timeframe, "symbol": spec.symbol, "exchange": spec.exchange}
        if failed.key == "no_candles":
            raise _fail("cli.backtest.no_candles", **where) from None
        if failed.key == "exchange_error":
            raise _fail("cli.backtest.history_refused", **where) from None
        typer.echo(t("cli.backtest.failed", key=failed.key), err=True)
        raise typer.Exit(1) from None
    summary = BacktestSummary.of(spec, execution.result, execution.source, execution.candles)
    # Files are written after the figures are out: a bad path never costs the results.
    files: list[tuple[str, Path, Callable[[], bytes]]] = []
    if chart is not None:
        from engine.backtest.chart import render_chart

        files.append(
            ("cli.backtest.chart", chart, lambda: render_chart(
                execution.candles, execution.result, summary, chart_text(t.language)
            ))
        )
    if csv_path is not None:
        from robotrader.backtesting import trades_csv

        files.append(("cli.backtest.trades", csv_path, lambda: trades_csv(summary).encode()))
    if json_output:
        typer.echo(json.dumps(summary.to_json(), indent=2))
    else:
        _print_summary(summary)
    failed_any = False
    for what, path, render in files:
        try:
            path.write_bytes(render())
        except OSError as exc:
            failed_any = True
            reason = exc.strerror or type(exc).__name__
            typer.echo(t("cli.cannot_write", what=t(what), path=str(path), reason=reason), err=True)
        else:
            if not json_output:
                typer.echo(t("cli.backtest.written", what=t(what), path=str(path)))
    if failed_any:
        raise typer.Exit(2)


def _user_error(exc: UserError) -> typer.Exit:
    """A UserError as the chat would say it, in the command line's language."""
    from robotrader.i18n import error_text

    typer.echo(_t()("cli.error", message=error_text(_t(), exc)), err=True)
    return typer.Exit(2)


def _print_summary(summary: BacktestSummary) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    spec = summary.spec

    def day(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")

    def pct(value: Decimal | None) -> str:
        return "—" if value is None else f"{value + 0:+.2f} %"  # + 0: never "-0.00"

    params = ", ".join(f"{k}={v}" for k, v in spec.parameters.items()) or "-"
    lines = [
        f"{spec.strategy} ({params}) on {spec.symbol}, {spec.exchange}, {spec.timeframe} candles",
        f"{day(summary.first_candle_ms)} -> {day(summary.last_candle_ms)} UTC, "
        f"{summary.candles} candles from {summary.source}",
        "",
        f"  profit/loss     {summary.total_pnl:+,.2f} ({pct(summary.total_pnl_pct)})",
        f"  buy and hold    {pct(summary.buy_and_hold_pct)}",
        f"  max drawdown    {pct(-summary.max_drawdown_pct)}",
        "  win rate        "
        + ("—" if summary.win_rate_pct is None else f"{summary.win_rate_pct:.2f} %"),
        f"  sharpe          {'—' if summary.sharpe is None else f'{summary.sharpe:.2f}'}",
        f"  exposure        {summary.exposure_pct:.2f} %",
        f"  trades          {summary.trade_count}",
        f"  capital         {spec.capital:,.2f} -> {summary.final_equity:,.2f}",
        "",
        f"fills: {summary.fill_rule}",
    ]
    t = _t()
    if summary.synthetic:
        lines.append(t("cli.backtest.synthetic"))
    coverage = summary.coverage
    if coverage is not None:
        if coverage.clipped:
            lines.append(
                t(
                    "cli.backtest.clipped",
                    symbol=spec.symbol,
                    first=day(coverage.first_candle_ms),
                    start=day(coverage.first_candle_ms),
                    end=day(coverage.last_candle_ms),
                )
            )
        if coverage.gaps and coverage.longest_gap_first_ms is not None:
            lines.append(
                t(
                    "cli.backtest.gaps",
                    gaps=coverage.gaps,
                    missing=coverage.missing_candles,
                    longest=coverage.longest_gap_candles,
                    gap_start=day(coverage.longest_gap_first_ms),
                    gap_end=day(coverage.longest_gap_last_ms or coverage.longest_gap_first_ms),
                )
            )
        elif not summary.synthetic:
            lines.append(t("cli.backtest.no_gaps"))
    typer.echo("\n".join(lines))


def _end_ms(end: str | None) -> int | None:
    from datetime import UTC, datetime

    if end is None:
        return None
    try:
        last_day = datetime.strptime(end, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise _fail("cli.bad_end", end=repr(end)) from None
    return int(last_day.timestamp() * 1000) + 86_400_000


def _research_progress(disabled: bool) -> tuple[Any, Callable[[str, float], Awaitable[None]]]:
    """A rich progress bar on stderr, and the report the use cases call with each stage."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
        console=Console(stderr=True), disable=disabled or not sys.stderr.isatty(),
        transient=True,
    )  # fmt: skip
    task = bar.add_task("", total=1.0)
    t = _t()

    async def report(stage: str, fraction: float) -> None:
        bar.update(task, description=t(f"research.stage.{stage}"), completed=fraction)

    return bar, report


def _research(work: Callable[[Any, Callable[[str, float], Awaitable[None]]], Awaitable[T]],
              json_output: bool) -> T:  # fmt: skip
    """Run ``work(history, report)`` with the candle cache of this machine and a progress bar."""
    from engine.backtest.candles import HistoricalCandles
    from engine.exchanges.clients import ClientPool
    from robotrader.errors import UserError

    settings = get_settings()
    bar, report = _research_progress(json_output)

    async def _run() -> T:
        pool = ClientPool(settings.exchange_api_urls)
        try:
            history = HistoricalCandles(
                pool, settings.data_dir / "candles", max_bytes=settings.candle_cache_bytes
            )
            return await work(history, report)
        finally:
            await pool.close()

    try:
        with bar:
            return asyncio.run(_run())
    except UserError as exc:
        raise _user_error(exc) from None


def _money_json(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _money_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_money_json(v) for v in value]
    return value


@app.command()
def optimize(
    strategy: StrategyArgument,
    symbol: SymbolArgument,
    period: PeriodArgument = "30d",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Fix one (fast=9) or narrow its range (fast=5..30)"),
    ] = None,
    split: Annotated[int, typer.Option(help="In-sample percent (the rest judges)")] = 70,
    values: Annotated[int, typer.Option(help="Values tried per parameter")] = 8,
    max_sets: Annotated[int, typer.Option(help="At most this many parameter sets")] = 1000,
    exchange: ExchangeOption = "binance",
    timeframe: TimeframeOption = "1m",
    capital: CapitalOption = "1000",
    stop_loss: StopLossOption = None,
    take_profit: TakeProfitOption = None,
    end: EndOption = None,
    offline: OfflineOption = False,
    json_output: JsonOption = False,
) -> None:
    """Search a strategy's parameters on one pair: fitted in-sample, ranked out-of-sample."""
    import json

    from robotrader.errors import UserError
    from robotrader.use_cases.backtests import parse_period
    from robotrader.use_cases.optimization import optimization_setup, run_optimization

    configure_logging("WARNING")
    options = {"split": str(split), "values": str(values), "exchange": exchange,
               "tf": timeframe, "capital": capital}  # fmt: skip
    for name, value in (("stop_loss", stop_loss), ("take_profit", take_profit)):
        if value is not None:
            options[name] = value
    for pair in param or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise _fail("cli.bad_param", param=repr(pair))
        options[name.strip().lower()] = value.strip()
    strategy_name = strategy.strip().lower()
    try:
        from engine.strategies.registry import STRATEGIES
        from robotrader.use_cases.bots import PRICE_RELATIVE_DEFAULTS

        known = STRATEGIES.get(strategy_name)
        start_from = {
            name: known.defaults()[name] for name in PRICE_RELATIVE_DEFAULTS.get(strategy_name, {})
        } if known else {}  # fmt: skip
        setup = optimization_setup(
            strategy, symbol, parse_period(period), options=options, limit=max(1, max_sets),
            start_from=start_from, end_ms=_end_ms(end),
            offline=offline or get_settings().market_data == "replay",
        )  # fmt: skip
    except UserError as exc:
        raise _user_error(exc) from None
    found = _research(lambda history, report: run_optimization(history, setup, report),
                      json_output)  # fmt: skip
    result = found.result
    if json_output:
        figures = [
            {"params": c.params, "in_sample": c.in_sample.__dict__,
             "out_of_sample": c.out_of_sample.__dict__}
            for c in result.candidates
        ]  # fmt: skip
        typer.echo(json.dumps(_money_json({
            "spec": setup.spec.to_json(), "source": found.source, "candles": found.candles,
            "in_sample_share": result.in_sample_share, "split_ms": result.split_time,
            "sets": len(result.candidates), "grid_size": setup.grid.full_size,
            "truncated": setup.grid.truncated, "rank_correlation": result.rank_correlation,
            "warnings": list(result.warnings), "ranked": figures,
        }), indent=2))  # fmt: skip
        return
    t = _t()
    lines = [
        f"{result.strategy} on {setup.spec.symbol}: {len(result.candidates)} parameter sets, "
        f"{result.in_sample_candles} candles in-sample, {result.out_of_sample_candles} "
        f"out-of-sample ({found.source})",
        "",
        f"  {'#':>3}  {'parameters':32s} {'out %':>9} {'out DD %':>9} {'out tr':>7} {'in %':>9}",
    ]
    for rank, c in enumerate(result.candidates[:20], start=1):
        params = ", ".join(f"{k}={v}" for k, v in c.params.items())
        lines.append(
            f"  {rank:>3}  {params:32s} {c.out_of_sample.return_pct:>+9.2f} "
            f"{-c.out_of_sample.max_drawdown_pct:>+9.2f} {c.out_of_sample.trades:>7} "
            f"{c.in_sample.return_pct:>+9.2f}"
        )
    best = result.best
    best_params = ", ".join(f"{k}={v}" for k, v in best.params.items()) if best else "—"
    lines += ["", f"{t('cli.optimize.best')}: {best_params}"]
    lines += [f"warning: {w}" for w in result.warnings]
    typer.echo("\n".join(lines))


@app.command()
def compare(
    symbol: SymbolArgument,
    period: PeriodArgument,
    contenders: Annotated[
        list[str], typer.Argument(help="Strategies: rsi sma_crossover sma_crossover:fast=5,slow=30")
    ],
    exchange: ExchangeOption = "binance",
    timeframe: TimeframeOption = "1m",
    capital: CapitalOption = "1000",
    stop_loss: StopLossOption = None,
    take_profit: TakeProfitOption = None,
    end: EndOption = None,
    offline: OfflineOption = False,
    json_output: JsonOption = False,
    chart: ChartOption = None,
) -> None:
    """Backtest several strategies or parameter sets on the same candles, side by side."""
    import json

    from robotrader.errors import UserError
    from robotrader.use_cases.backtests import parse_period
    from robotrader.use_cases.comparison import comparison_specs, run_comparison

    configure_logging("WARNING")
    options = {"exchange": exchange, "tf": timeframe, "capital": capital}
    for name, value in (("stop_loss", stop_loss), ("take_profit", take_profit)):
        if value is not None:
            options[name] = value
    try:
        specs = comparison_specs(
            symbol, parse_period(period), contenders, options=options, end_ms=_end_ms(end),
            offline=offline or get_settings().market_data == "replay",
        )  # fmt: skip
    except UserError as exc:
        raise _user_error(exc) from None
    found = _research(
        lambda history, report: run_comparison(history, specs, report, language=_t().language),
        json_output,
    )
    if chart is not None:
        chart.write_bytes(found.png)
    rows = [
        {"label": run.label, "strategy": run.result.strategy, "params": dict(run.result.params),
         "return_pct": run.result.total_pnl_pct, "max_drawdown_pct": run.result.max_drawdown_pct,
         "trades": run.result.trade_count, "win_rate_pct": run.result.win_rate_pct,
         "profit_factor": run.profit_factor, "final_equity": run.result.final_equity}
        for run in found.runs
    ]  # fmt: skip
    if json_output:
        typer.echo(json.dumps(_money_json({
            "symbol": specs[0].symbol, "exchange": specs[0].exchange,
            "timeframe": specs[0].timeframe, "source": found.source, "candles": found.candles,
            "first_candle_ms": found.first_candle_ms, "last_candle_ms": found.last_candle_ms,
            "runs": rows,
        }), indent=2))  # fmt: skip
        return
    lines = [f"{specs[0].symbol}, {found.candles} candles ({found.source})", ""]
    lines.append(f"  {'strategy':36s} {'return %':>9} {'max DD %':>9} {'trades':>7} "
                 f"{'win %':>7} {'PF':>6}")  # fmt: skip
    for run in found.runs:
        result = run.result
        win = "—" if result.win_rate_pct is None else f"{result.win_rate_pct:.2f}"
        pf = "—" if run.profit_factor is None else f"{run.profit_factor:.2f}"
        lines.append(
            f"  {run.label:36s} {result.total_pnl_pct:>+9.2f} {-result.max_drawdown_pct:>+9.2f} "
            f"{result.trade_count:>7} {win:>7} {pf:>6}"
        )
    if chart is not None:
        lines.append(f"chart: {chart}")
    typer.echo("\n".join(lines))
