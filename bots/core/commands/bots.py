"""/newbot, /bots, /startbot, /stopbot, /deletebot, /live, /status (/editbot: bot_edits)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bots.core import actions
from bots.core.invocation import Invocation
from bots.core.registry import action, command, dialog
from bots.core.replies import Block, Button, Code, Paragraph, Reply, Table, Title
from robotrader import activity_text
from robotrader.enums import BotMode, BotStatus
from robotrader.errors import UserError
from robotrader.formatting import age, money
from robotrader.i18n import error_text, keywords
from robotrader.public_links import signal_url
from robotrader.reference import EXCHANGES, STRATEGIES, get_strategy
from robotrader.settings_text import setting_rows
from robotrader.use_cases.bot_settings import (
    OPTIONS,
    RISK_PRESETS,
    TIMEFRAMES,
    BotSettings,
    one_line,
    option_values,
    parameter_ranges,
    parse_options,
    valid_keys,
    with_changes,
    with_preset,
)
from robotrader.use_cases.bot_status import BotActivity, bot_activity, bots_activity
from robotrader.use_cases.bots import (
    BotSpec,
    BotSummary,
    check_pairs_in_plan,
    check_room_for_bot,
    check_strategy_in_plan,
    create_bot,
    delete_bot,
    list_bots,
    normalize_symbol,
    parse_capital,
    set_mode,
    show_bot,
    start_bot,
    stop_bot,
    strategy_choices,
    suggested_parameters,
    validated_parameters,
)

POPULAR_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT")
CAPITAL_CHOICES = ("100", "500", "1000", "5000")
# The one-line form with every kind of setting, as /help newbot shows it first.
EXAMPLE = " ".join(
    [
        "/newbot binance BTC/USDT rsi 500",
        "tf=1h sl=3 tp=2:50,4:50 trail=1.5@2 be=1",
        "period=7 oversold=25",
    ]
)
STATUS_ICON = {BotStatus.RUNNING: "🟢", BotStatus.STOPPED: "⚪", BotStatus.PAUSED: "🟠"}


# --- /newbot: a guided dialog ------------------------------------------------------------


class Step(StrEnum):
    """The /newbot dialog's steps, in the order it asks them; ``Dialog.step`` is the current one.

    Each button answers one step. A button of the current or an earlier step (the
    user scrolled back) is taken, and the dialog goes on from there with the other
    answers kept; so is one of the next step once the current one is answered
    (``ANSWERED``: a strategy picked without pressing "next"). A button of a later
    step is stale (``dialog_expired``). Typed text answers the steps of ``TYPED``;
    elsewhere the user is asked to use the buttons.
    """

    EXCHANGE = "exchange"
    SYMBOLS = "symbols"
    STRATEGY = "strategy"
    PARAMS = "params"
    TIMEFRAME = "timeframe"
    RISK = "risk"
    CAPITAL = "capital"
    MODE = "mode"
    CONFIRM = "confirm"


STEPS = list(Step)
BUTTON_STEP = {
    "nbx": Step.EXCHANGE,
    "nbs": Step.SYMBOLS,
    "nbt": Step.STRATEGY,
    "nbp": Step.PARAMS,
    "nbf": Step.TIMEFRAME,
    "nbr": Step.RISK,
    "nbk": Step.CAPITAL,
    "nbm": Step.MODE,
    "nbc": Step.CONFIRM,
}
ANSWERED: dict[Step, Callable[[dict[str, Any]], bool]] = {
    Step.EXCHANGE: lambda data: "exchange" in data,
    Step.SYMBOLS: lambda data: bool(data.get("symbols")),
    Step.STRATEGY: lambda data: "strategy" in data,
    Step.PARAMS: lambda data: "parameters" in data,
    # Both have defaults (1m, no stops) from the moment a strategy is picked.
    Step.TIMEFRAME: lambda data: "settings" in data,
    Step.RISK: lambda data: "settings" in data,
    Step.CAPITAL: lambda data: "capital" in data,
    Step.MODE: lambda data: "mode" in data,
    Step.CONFIRM: lambda data: False,  # the bot is created: the dialog ends
}
# Typed text: more symbols (while choosing them or the strategy); settings and parameters
# as key=value (``period=7 tf=1h sl=3``) from the parameters to the capital; an amount
# while the capital is asked.
TYPED = {
    Step.SYMBOLS: "symbols",
    Step.STRATEGY: "symbols",
    Step.PARAMS: "options",
    Step.TIMEFRAME: "options",
    Step.RISK: "options",
    Step.CAPITAL: "options_or_capital",
}


def _ask(inv: Invocation, step: Step) -> Reply:
    """Move the dialog to ``step`` and show it."""
    assert inv.dialog is not None
    data = inv.dialog.data
    if step == Step.PARAMS and not get_strategy(data["strategy"]).info.params:
        step = Step.TIMEFRAME  # nothing to set
    inv.dialog.step = step
    views = {
        Step.EXCHANGE: _step_exchange,
        Step.SYMBOLS: _step_symbols,
        Step.STRATEGY: _step_strategy,
        Step.PARAMS: _step_params,
        Step.TIMEFRAME: _step_timeframe,
        Step.RISK: _step_risk,
        Step.CAPITAL: _step_capital,
        Step.MODE: _step_mode,
        Step.CONFIRM: _step_confirm,
    }
    return views[step](inv, data)


def _step_exchange(inv: Invocation, data: dict[str, Any]) -> Reply:
    return Reply(
        blocks=[Title(inv.t("newbot.title")), Paragraph(inv.t("newbot.ask_exchange"))],
        buttons=[[Button(s.title, action=actions.encode("nbx", s.id))] for s in EXCHANGES.values()]
        + [[Button(inv.t("button.cancel"), action=actions.encode("cancel"))]],
        edit=True,
    )


def _step_symbols(inv: Invocation, data: dict[str, Any]) -> Reply:
    chosen: list[str] = data.setdefault("symbols", [])
    rows = [
        [
            Button(("✅ " if s in chosen else "") + s, action=actions.encode("nbs", s))
            for s in POPULAR_SYMBOLS[i : i + 3]
        ]
        for i in range(0, len(POPULAR_SYMBOLS), 3)
    ]
    rows.append([Button(inv.t("button.next"), action=actions.encode("nbs", "next"))])
    text = inv.t("newbot.ask_symbols", chosen=", ".join(chosen) or "—")
    return Reply(blocks=[Paragraph(text)], buttons=rows, edit=True)


def _step_strategy(inv: Invocation, data: dict[str, Any]) -> Reply:
    rows = [
        [
            Button(
                ("🔒 " if choice.locked else "") + _strategy_title(inv, choice.name),
                action=actions.encode("nbt", choice.name),
            )
        ]
        for choice in strategy_choices(inv.account.plan)
    ]
    return Reply(blocks=[Paragraph(inv.t("newbot.ask_strategy"))], buttons=rows, edit=True)


def _strategy_title(inv: Invocation, name: str) -> str:
    return inv.t(STRATEGIES[name].info.title_key)


async def _suggested_params(
    inv: Invocation, data: dict[str, Any], given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    strategy = get_strategy(data["strategy"])
    suggested = await suggested_parameters(
        inv.app, data["exchange"], data["symbols"][0], data["strategy"], given
    )
    return validated_parameters(strategy, suggested)


def _value(value: Any) -> str:
    """A parameter's value as typed: ``25`` rather than ``25.0``, never ``1E+1``."""
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value)


def _step_params(inv: Invocation, data: dict[str, Any]) -> Reply:
    strategy = get_strategy(data["strategy"])
    params = strategy.info.params
    rows = [
        [
            p.name,
            _value(data["parameters"].get(p.name, p.default)),
            f"{_value(p.minimum)}–{_value(p.maximum)}",
            inv.t(strategy.info.help_key(p.name)),
        ]
        for p in params
    ]
    example = " ".join(f"{p.name}={_value(p.minimum)}" for p in params[:2])
    return Reply(
        blocks=[
            Paragraph(inv.t("newbot.ask_params", strategy=inv.t(strategy.info.title_key))),
            Table(rows),
            Paragraph(inv.t("newbot.params_hint", example=example)),
        ],
        buttons=[[Button(inv.t("button.use_these"), action=actions.encode("nbp"))]],
        edit=True,
    )


def _step_timeframe(inv: Invocation, data: dict[str, Any]) -> Reply:
    current = data["settings"].timeframe
    rows = [
        [
            Button(("✅ " if tf == current else "") + tf, action=actions.encode("nbf", tf))
            for tf in TIMEFRAMES[i : i + 3]
        ]
        for i in range(0, len(TIMEFRAMES), 3)
    ]
    rows.append([Button(inv.t("button.skip"), action=actions.encode("nbf", "skip"))])
    return Reply(
        blocks=[Paragraph(inv.t("newbot.ask_timeframe", timeframe=current))],
        buttons=rows,
        edit=True,
    )


def _exits(settings: BotSettings) -> str:
    """The settings but the timeframe, as typed (``sl=3 trail=1.5@2``)."""
    values = option_values(settings)
    return " ".join(f"{key}={value}" for key, value in values.items() if value and key != "tf")


def _step_risk(inv: Invocation, data: dict[str, Any]) -> Reply:
    exits = _exits(data["settings"])
    rows = [
        [Button(inv.t(f"newbot.risk_preset.{name}"), action=actions.encode("nbr", name))]
        for name in RISK_PRESETS
    ]
    done = inv.t("button.done") if exits else inv.t("button.skip")
    rows.append([Button(done, action=actions.encode("nbr", "done"))])
    return Reply(
        blocks=[
            Paragraph(inv.t("newbot.ask_risk")),
            Paragraph(inv.t("newbot.risk_now", settings=exits or inv.t("newbot.risk_none"))),
            Paragraph(inv.t("newbot.risk_keys", valid=valid_keys(None))),
        ],
        buttons=rows,
        edit=True,
    )


def _step_capital(inv: Invocation, data: dict[str, Any]) -> Reply:
    return Reply(
        blocks=[Paragraph(inv.t("newbot.ask_capital"))],
        buttons=[[Button(f"{c} USDT", action=actions.encode("nbk", c)) for c in CAPITAL_CHOICES]],
        edit=True,
    )


def _step_mode(inv: Invocation, data: dict[str, Any]) -> Reply:
    return Reply(
        blocks=[Paragraph(inv.t("newbot.ask_mode"))],
        buttons=[
            [
                Button(inv.t("mode.paper"), action=actions.encode("nbm", "paper")),
                Button(inv.t("mode.live"), action=actions.encode("nbm", "live")),
            ]
        ],
        edit=True,
    )


def one_line_command(data: dict[str, Any]) -> str:
    """The /newbot dialog's answers as the one-line form: what to type next time."""
    strategy = get_strategy(data["strategy"])
    defaults = strategy.defaults()
    changed = [
        f"{name}={_value(value)}"
        for name, value in data["parameters"].items()
        if value != defaults.get(name)
    ]
    words = [
        "/newbot", data["exchange"], ",".join(data["symbols"]), data["strategy"],
        data["capital"], one_line(data["settings"]), *changed,
    ]  # fmt: skip
    return " ".join(words)


def _step_confirm(inv: Invocation, data: dict[str, Any]) -> Reply:
    strategy = get_strategy(data["strategy"])
    params = ", ".join(f"{k}={_value(v)}" for k, v in data["parameters"].items()) or "—"
    rows = [
        [inv.t("field.exchange"), EXCHANGES[data["exchange"]].title],
        [inv.t("field.symbols"), ", ".join(data["symbols"])],
        [inv.t("field.strategy"), inv.t(strategy.info.title_key)],
        [inv.t("field.parameters"), params],
        *([label, value] for label, value in setting_rows(data["settings"], inv.t.language)),
        [inv.t("field.capital"), money(Decimal(data["capital"]), inv.t.language)],
        [inv.t("field.mode"), inv.t(f"mode.{data['mode']}")],
    ]
    return Reply(
        blocks=[
            Title(inv.t("newbot.confirm")),
            Table(rows),
            Paragraph(inv.t("newbot.one_line")),
            Code(one_line_command(data)),
        ],
        buttons=[
            [
                Button(inv.t("button.create"), action=actions.encode("nbc")),
                Button(inv.t("button.cancel"), action=actions.encode("cancel")),
            ]
        ],
        edit=True,
    )


def _dialog_data(inv: Invocation, answering: Step | None = None) -> dict[str, Any]:
    """The /newbot dialog's answers so far, for a button of step ``answering`` (or typed text).

    A button of a step the dialog cannot be at yet is stale (see `Step`).
    """
    if inv.dialog is None or inv.dialog.name != "newbot":
        raise UserError("dialog_expired")
    if answering is not None:
        current = Step(inv.dialog.step)
        ahead = STEPS.index(answering) - STEPS.index(current)
        if ahead > 1 or (ahead == 1 and not ANSWERED[current](inv.dialog.data)):
            raise UserError("dialog_expired")
    inv.dialogs.touch(inv.ctx.identity_key, inv.dialog)
    return inv.dialog.data


def _apply_options(data: dict[str, Any], words: list[str]) -> None:
    """Settings and parameters typed as key=value, all or none of them (UserError)."""
    strategy = get_strategy(data["strategy"])
    options = parse_options(words, strategy)
    parameters = validated_parameters(strategy, {**data["parameters"], **options.parameters})
    data["settings"] = with_changes(data["settings"], options.settings)
    data["parameters"] = parameters


@command(
    "newbot", private_only=True,
    args=("exchange", "symbols", "strategy", "capital", "key=value..."),
)  # fmt: skip
async def newbot(inv: Invocation) -> Reply:
    """Guided with buttons; or in one line:
    /newbot binance BTC/USDT,ETH/USDT rsi 500 tf=1h sl=3 tp=2:50,4:50 period=7 (/help newbot).
    """
    await check_room_for_bot(inv.app, inv.user_id)
    if len(inv.args) >= 4:
        exchange, symbols, strategy, capital = inv.args[:4]
        data: dict[str, Any] = {
            "exchange": exchange.lower(),
            "symbols": list(
                dict.fromkeys(normalize_symbol(s) for s in symbols.split(",") if s.strip())
            ),
            "strategy": strategy.lower(),
            "capital": str(parse_capital(capital)),
            "mode": "paper",
        }
        if data["exchange"] not in EXCHANGES:
            raise UserError(
                "unknown_exchange", exchange=exchange[:32], choices=", ".join(EXCHANGES)
            )
        if data["strategy"] not in STRATEGIES:
            raise UserError(
                "unknown_strategy", strategy=strategy[:32], choices=", ".join(STRATEGIES)
            )
        check_strategy_in_plan(inv.account.plan, data["strategy"])
        await check_pairs_in_plan(inv.app, inv.user_id, [], data["symbols"])
        options = parse_options(inv.args[4:], get_strategy(data["strategy"]))
        data["settings"] = with_changes(BotSettings(), options.settings)
        data["parameters"] = await _suggested_params(inv, data, options.parameters)
        inv.start_dialog("newbot", Step.CONFIRM, **data)
        reply = _ask(inv, Step.CONFIRM)
        reply.edit = False
        return reply
    inv.start_dialog("newbot", Step.EXCHANGE)
    reply = _ask(inv, Step.EXCHANGE)
    reply.edit = False
    return reply


@action("nb")
async def newbot_button(inv: Invocation) -> Reply:
    if not inv.ctx.is_private:
        raise UserError("private_only")
    inv.args = []
    return await newbot(inv)


@action("opb")
async def newbot_prefilled(inv: Invocation) -> Reply:
    """"Create a bot with these parameters" under an /optimize result: /newbot with the
    exchange, the pair, the strategy, the timeframe searched and the parameters found filled
    in; it asks the rest, from the exits on.
    """
    if not inv.ctx.is_private:
        raise UserError("private_only")
    if (
        len(inv.args) < 4 or inv.args[0] not in EXCHANGES or inv.args[2] not in STRATEGIES
        or inv.args[3] not in TIMEFRAMES
    ):  # fmt: skip
        raise UserError("button_expired")
    exchange, symbol, name = inv.args[0], normalize_symbol(inv.args[1]), inv.args[2]
    strategy = get_strategy(name)
    names = [p.name for p in strategy.info.params]
    if len(inv.args) != 4 + len(names):
        raise UserError("button_expired")
    check_strategy_in_plan(inv.account.plan, name)
    parameters = validated_parameters(strategy, dict(zip(names, inv.args[4:], strict=True)))
    inv.start_dialog(
        "newbot", Step.RISK, exchange=exchange, symbols=[symbol], strategy=name,
        parameters=parameters, settings=BotSettings(timeframe=inv.args[3]),
    )  # fmt: skip
    reply = _ask(inv, Step.RISK)
    summary = inv.t(
        "newbot.prefilled", strategy=inv.t(strategy.info.title_key), symbol=symbol,
        exchange=EXCHANGES[exchange].title, timeframe=inv.args[3],
        parameters=", ".join(f"{k}={v}" for k, v in parameters.items()) or "—",
    )  # fmt: skip
    reply.blocks.insert(0, Paragraph(summary))
    reply.edit = False  # below the result, which stays
    return reply


@action("nbx")
async def newbot_exchange(inv: Invocation) -> Reply:
    data = _dialog_data(inv, BUTTON_STEP["nbx"])
    if not inv.args or inv.args[0] not in EXCHANGES:
        raise UserError("dialog_expired")
    data["exchange"] = inv.args[0]
    return _ask(inv, Step.SYMBOLS)


@action("nbs")
async def newbot_symbol(inv: Invocation) -> Reply:
    data = _dialog_data(inv, BUTTON_STEP["nbs"])
    choice = inv.args[0] if inv.args else ""
    if choice == "next":
        return _ask(inv, Step.STRATEGY if data.get("symbols") else Step.SYMBOLS)
    symbols: list[str] = data.setdefault("symbols", [])
    symbol = normalize_symbol(":".join(inv.args))
    if symbol in symbols:
        symbols.remove(symbol)
    else:
        await check_pairs_in_plan(inv.app, inv.user_id, symbols, [symbol])
        symbols.append(symbol)
    return _ask(inv, Step.SYMBOLS)


@action("nbt")
async def newbot_strategy(inv: Invocation) -> Reply:
    data = _dialog_data(inv, BUTTON_STEP["nbt"])
    name = inv.args[0] if inv.args else ""
    if name not in STRATEGIES:
        raise UserError("dialog_expired")
    check_strategy_in_plan(inv.account.plan, name)
    if data.get("strategy") != name:
        data["strategy"] = name
        data["parameters"] = await _suggested_params(inv, data)
    data.setdefault("settings", BotSettings())
    return _ask(inv, Step.PARAMS)


@action("nbp")
async def newbot_params_ok(inv: Invocation) -> Reply:
    _dialog_data(inv, BUTTON_STEP["nbp"])
    return _ask(inv, Step.TIMEFRAME)


@action("nbf")
async def newbot_timeframe(inv: Invocation) -> Reply:
    data = _dialog_data(inv, BUTTON_STEP["nbf"])
    choice = inv.args[0] if inv.args else ""
    if choice != "skip":
        timeframe = parse_options([f"tf={choice}"], None).settings
        data["settings"] = with_changes(data["settings"], timeframe)
    return _ask(inv, Step.RISK)


@action("nbr")
async def newbot_risk(inv: Invocation) -> Reply:
    data = _dialog_data(inv, BUTTON_STEP["nbr"])
    choice = inv.args[0] if inv.args else ""
    if choice != "done":
        if choice not in RISK_PRESETS:
            raise UserError("dialog_expired")
        data["settings"] = with_preset(data["settings"], choice)
    return _ask(inv, Step.CAPITAL)


@action("nbk")
async def newbot_capital(inv: Invocation) -> Reply:
    data = _dialog_data(inv, BUTTON_STEP["nbk"])
    data["capital"] = str(parse_capital(inv.args[0] if inv.args else ""))
    return _ask(inv, Step.MODE)


@action("nbm")
async def newbot_mode(inv: Invocation) -> Reply:
    data = _dialog_data(inv, BUTTON_STEP["nbm"])
    data["mode"] = "live" if inv.args and inv.args[0] == "live" else "paper"
    return _ask(inv, Step.CONFIRM)


@dialog("newbot")
async def newbot_text(inv: Invocation) -> Reply:
    """Typed answers: symbols, settings and parameters (``tf=1h period=7``) or the capital.

    A typed answer that is wrong re-asks the same step, with what was wrong above it.
    """
    data = _dialog_data(inv)
    assert inv.dialog is not None
    step = Step(inv.dialog.step)
    text = inv.text.strip()
    answer = TYPED.get(step)
    try:
        if answer == "symbols":
            typed = [normalize_symbol(raw) for raw in text.replace(",", " ").split()]
            chosen = data.setdefault("symbols", [])
            await check_pairs_in_plan(inv.app, inv.user_id, chosen, typed)
            chosen.extend(s for s in dict.fromkeys(typed) if s not in chosen)
            step = Step.SYMBOLS
        elif answer == "options_or_capital" and "=" not in text:
            data["capital"] = str(parse_capital(text))
            step = Step.MODE
        elif answer is not None:
            words = [word.rstrip(",") for word in text.split()]
            if step == Step.TIMEFRAME and text.lower() in TIMEFRAMES:
                words, step = [f"tf={text}"], Step.RISK
            _apply_options(data, words)
        else:
            return Reply.text(inv.t("newbot.use_buttons"))
    except UserError as exc:
        reply = _ask(inv, step)
        reply.blocks.insert(0, Paragraph(error_text(inv.t, exc)))
    else:
        reply = _ask(inv, step)
    reply.edit = False
    return reply


@action("nbc")
async def newbot_create(inv: Invocation) -> Reply:
    data = _dialog_data(inv, BUTTON_STEP["nbc"])
    bot = await create_bot(
        inv.app,
        inv.user_id,
        BotSpec(
            exchange=data["exchange"],
            symbols=data["symbols"],
            strategy=data["strategy"],
            capital=data["capital"],
            parameters=data["parameters"],
            settings=data["settings"],
        ),
    )
    inv.end_dialog()
    buttons = [[Button(inv.t("button.start_now"), action=actions.encode("bs", bot.id))]]
    if data.get("mode") == "live":
        buttons.insert(0, [Button(inv.t("button.go_live"), action=actions.encode("lv", bot.id))])
    blocks: list[Block] = [
        Title(inv.t("newbot.created", name=bot.name)),
        Paragraph(inv.t("newbot.paper_first")),
    ]
    if bot.signal_secret:
        url = signal_url(inv.app.settings, bot.signal_secret)
        blocks.append(Paragraph(inv.t("newbot.signal_url", url=url)))
    return Reply(blocks=blocks, buttons=buttons, edit=True)


def newbot_help(inv: Invocation) -> Reply:
    """``/help newbot``: the one-line form, examples, every setting and parameter with its range."""
    examples = [EXAMPLE] + [
        " ".join(
            [f"/newbot binance BTC/USDT {name} 500",
             *(f"{p.name}={_value(p.default)}" for p in strategy.info.params)]
        )
        for name, strategy in STRATEGIES.items()
    ]  # fmt: skip
    settings = [
        f"{option.key}={option.range} — {inv.t(f'bot_setting.{option.key}')}: "
        f"{inv.t(f'bot_setting.{option.key}.help')}"
        for option in OPTIONS.values()
    ]
    parameters = [
        f"{name}: {', '.join(parameter_ranges(strategy))}"
        for name, strategy in STRATEGIES.items()
        if strategy.info.params
    ]
    return Reply(
        blocks=[
            Title(inv.t("help.newbot.title")),
            Paragraph(inv.t("help.newbot.usage")),
            Paragraph(inv.t("help.newbot.examples")),
            Code("\n".join(examples)),
            Paragraph(inv.t("help.newbot.settings") + "\n" + "\n".join(settings)),
            Paragraph(inv.t("help.newbot.parameters") + "\n" + "\n".join(parameters)),
        ],
        personal=not inv.ctx.is_private,
    )


# --- bot list and lifecycle ----------------------------------------------------------------


def _bot_line(inv: Invocation, bot: BotSummary) -> str:
    state = inv.t(f"status.{bot.status}")
    mode = inv.t(f"mode.{bot.mode}")
    parts = [bot.name, bot.strategy, ", ".join(bot.symbols), mode, state]
    return f"{STATUS_ICON.get(bot.status, '')} " + " · ".join(parts)


def _bot_buttons(inv: Invocation, bot: BotSummary) -> list[Button]:
    toggle = (
        Button(inv.t("button.stop"), action=actions.encode("bp", bot.id))
        if bot.status == BotStatus.RUNNING
        else Button(inv.t("button.start"), action=actions.encode("bs", bot.id))
    )
    return [toggle, Button(inv.t("button.details"), action=actions.encode("bd", bot.id))]


@command("bots", private_only=True)
async def bots_list(inv: Invocation) -> Reply:
    bots = await list_bots(inv.app, inv.user_id)
    if not bots:
        return Reply(
            blocks=[Paragraph(inv.t("bots.none"))],
            buttons=[[Button(inv.t("start.button_newbot"), action=actions.encode("nb"))]],
        )
    return Reply(
        blocks=[Title(inv.t("bots.title")), Paragraph("\n".join(_bot_line(inv, b) for b in bots))],
        buttons=[_bot_buttons(inv, b) for b in bots],
    )


def _exchange_title(exchange: str) -> str:
    return EXCHANGES[exchange].title if exchange in EXCHANGES else exchange


def _details(inv: Invocation, activity: BotActivity) -> Reply:
    bot = activity.bot
    lang = inv.t.language
    status = inv.t(f"status.{bot.status}")
    if bot.pause_reason:
        status += f" ({inv.t(f'pause.{bot.pause_reason}')})"
    params = ", ".join(f"{k}={v}" for k, v in bot.parameters.items()) or "—"
    rows = [
        [inv.t("field.status"), status],
        [inv.t("field.mode"), inv.t(f"mode.{bot.mode}")],
        [inv.t("field.exchange"), _exchange_title(bot.exchange)],
        [inv.t("field.symbols"), ", ".join(bot.symbols)],
        [inv.t("field.strategy"), bot.strategy],
        [inv.t("field.parameters"), params],
        [inv.t("field.capital"), money(bot.capital, lang)],
        *([label, value] for label, value in setting_rows(bot.settings, lang, with_off=True)),
        [inv.t("field.source"), inv.t(f"source.{bot.market_data_source or 'none'}")],
    ]
    if bot.status == BotStatus.RUNNING:
        rows.append([inv.t("field.last_evaluated"), activity_text.last_evaluated(activity, lang)])
        rows.append([inv.t("field.next_decision"), activity_text.next_decision(activity, lang)])
    if bot.in_flight:
        rows.append([inv.t("field.waiting"), "; ".join(_waiting(inv, bot))])
    blocks: list[Block] = [Title(bot.name), Table(rows)]
    blocks.extend(_activity_blocks(inv, activity))
    buttons = [_bot_buttons(inv, bot)[:1]]
    if bot.mode == BotMode.PAPER:
        buttons[0].append(Button(inv.t("button.go_live"), action=actions.encode("lv", bot.id)))
    else:
        buttons[0].append(Button(inv.t("button.go_paper"), action=actions.encode("lvn", bot.id)))
    buttons[0].append(Button(inv.t("button.delete"), action=actions.encode("bx", bot.id)))
    buttons.append([Button(inv.t("button.edit"), action=actions.encode("eb", bot.id))])
    return Reply(blocks=blocks, buttons=buttons)


def _activity_blocks(inv: Invocation, activity: BotActivity) -> list[Block]:
    """Per symbol: the values the bot decides on and what it holds; a stalled engine said."""
    blocks: list[Block] = [
        Paragraph("\n".join(activity_text.market(market, inv.t.language)))
        for market in activity.markets
        if market.candle_closed_at is not None or market.position or market.waiting_for
        or activity.bot.status == BotStatus.RUNNING
    ]  # fmt: skip
    if activity.engine_stale:
        blocks.append(Paragraph(inv.t("alive.engine_stale")))
    return blocks


def _waiting(inv: Invocation, bot: BotSummary) -> list[str]:
    """Each order waiting for the exchange: what it is and for how long."""
    return [
        inv.t(
            "bots.waiting_order",
            side=inv.t(f"side.{order.side}"),
            symbol=order.symbol,
            order=order.id,
            age=age(order.created_at, inv.t.language),
        )
        for order in bot.in_flight
    ]


def _bot_ref(inv: Invocation, usage: str) -> str:
    if not inv.args:
        raise UserError("missing_argument", usage=inv.t(usage))
    return " ".join(inv.args)


@action("bd")
async def details_button(inv: Invocation) -> Reply:
    return _details(inv, await bot_activity(inv.app, inv.user_id, _bot_ref(inv, "usage.bot")))


@command("startbot", private_only=True, args=("bot",))
async def startbot(inv: Invocation) -> Reply:
    bot = await start_bot(inv.app, inv.user_id, _bot_ref(inv, "usage.startbot"))
    return Reply.text(inv.t("bots.started", name=bot.name, mode=inv.t(f"mode.{bot.mode}")))


@action("bs")
async def start_button(inv: Invocation) -> Reply:
    reply = await startbot(inv)
    reply.edit = False
    return reply


@command("stopbot", private_only=True, args=("bot",))
async def stopbot(inv: Invocation) -> Reply:
    bot = await stop_bot(inv.app, inv.user_id, _bot_ref(inv, "usage.stopbot"))
    return Reply.text(inv.t("bots.stopped", name=bot.name))


@action("bp")
async def stop_button(inv: Invocation) -> Reply:
    return await stopbot(inv)


@command("deletebot", private_only=True, args=("bot",))
async def deletebot(inv: Invocation) -> Reply:
    bot = await show_bot(inv.app, inv.user_id, _bot_ref(inv, "usage.deletebot"))
    return Reply(
        blocks=[Paragraph(inv.t("bots.delete_confirm", name=bot.name))],
        buttons=[
            [
                Button(inv.t("button.delete"), action=actions.encode("bxy", bot.id)),
                Button(inv.t("button.cancel"), action=actions.encode("cancel")),
            ]
        ],
    )


@action("bx")
async def delete_button(inv: Invocation) -> Reply:
    return await deletebot(inv)


@action("bxy")
async def delete_confirmed(inv: Invocation) -> Reply:
    bot = await delete_bot(inv.app, inv.user_id, _bot_ref(inv, "usage.deletebot"))
    return Reply.text(inv.t("bots.deleted", name=bot.name), edit=True)


@command("live", private_only=True, args=("bot", "off"))
async def live(inv: Invocation) -> Reply:
    """``/live <bot>`` asks to confirm going live; ``/live <bot> off`` goes back to paper."""
    if inv.args and inv.args[-1].lower() in keywords("command.word.off") | {"paper"}:
        inv.args = inv.args[:-1]
        bot = await set_mode(
            inv.app, inv.user_id, _bot_ref(inv, "usage.live"), BotMode.PAPER, confirmed=True
        )
        return Reply.text(inv.t("live.back_to_paper", name=bot.name))
    bot = await show_bot(inv.app, inv.user_id, _bot_ref(inv, "usage.live"))
    return Reply(
        blocks=[
            Title(inv.t("live.title", name=bot.name)),
            Paragraph(inv.t("live.warning", capital=money(bot.capital, inv.t.language))),
        ],
        buttons=[
            [
                Button(inv.t("button.confirm_live"), action=actions.encode("lvy", bot.id)),
                Button(inv.t("button.cancel"), action=actions.encode("cancel")),
            ]
        ],
    )


@action("lv")
async def live_button(inv: Invocation) -> Reply:
    return await live(inv)


@action("lvy")
async def live_confirmed(inv: Invocation) -> Reply:
    bot = await set_mode(
        inv.app, inv.user_id, _bot_ref(inv, "usage.live"), BotMode.LIVE, confirmed=True
    )
    return Reply(
        blocks=[Paragraph(inv.t("live.done", name=bot.name))],
        buttons=[[Button(inv.t("button.start_now"), action=actions.encode("bs", bot.id))]]
        if bot.status != BotStatus.RUNNING
        else [],
        edit=True,
    )


@action("lvn")
async def paper_button(inv: Invocation) -> Reply:
    bot = await set_mode(
        inv.app, inv.user_id, _bot_ref(inv, "usage.live"), BotMode.PAPER, confirmed=True
    )
    return Reply.text(inv.t("live.back_to_paper", name=bot.name))


@command("status", private_only=True)
async def status(inv: Invocation) -> Reply:
    activities = await bots_activity(inv.app, inv.user_id)
    if not activities:
        return Reply.text(inv.t("bots.none"))
    lang = inv.t.language
    rows = []
    for activity in activities:
        bot = activity.bot
        held = [m.position for m in activity.markets if m.position is not None]
        unrealized = sum((p.unrealized_pnl or Decimal(0) for p in held), Decimal(0))
        source = inv.t(f"source.{bot.market_data_source or 'none'}")
        rows.append(
            [
                f"{STATUS_ICON.get(bot.status, '')} {bot.name}",
                inv.t(f"mode.{bot.mode}"),
                source,
                str(len(held)),
                money(unrealized, lang) if held else "—",
            ]
        )
    header = [
        inv.t("field.bot"),
        inv.t("field.mode"),
        inv.t("field.source"),
        inv.t("field.positions"),
        inv.t("field.unrealized"),
    ]
    blocks: list[Block] = [Title(inv.t("status.title")), Table(rows, header=header)]
    for activity in activities:
        if activity.bot.status != BotStatus.RUNNING:
            continue
        lines = [f"{STATUS_ICON[BotStatus.RUNNING]} {activity_text.summary(activity, lang)}"]
        for market in activity.markets:
            lines.extend(f"   {line}" for line in activity_text.market(market, lang))
        blocks.append(Paragraph("\n".join(lines)))
    if any(activity.engine_stale for activity in activities):
        blocks.append(Paragraph(inv.t("alive.engine_stale")))
    bots = [activity.bot for activity in activities]
    waiting = [f"⏳ {bot.name}: {line}" for bot in bots for line in _waiting(inv, bot)]
    if waiting:
        blocks.append(Paragraph(inv.t("status.waiting") + "\n" + "\n".join(waiting)))
    return Reply(blocks=blocks)
