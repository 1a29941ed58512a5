"""/editbot: change a bot in one line (``/editbot alpha sl=3 capital=500``) or step by step.

Step by step (``/editbot alpha``, or the Edit button on a bot's card): a menu of
Parameters, Capital, Timeframe and Risk & exits; each asks for its new value (typed
``key=value`` words, an amount, or a timeframe button) and the menu comes back with
every pending change before and after, checked by the use case as it would be applied,
and a Confirm button. Cancel discards; nothing is written before Confirm.
"""

from __future__ import annotations

from typing import Any

from bots.core import actions
from bots.core.invocation import Invocation
from bots.core.registry import action, command, dialog
from bots.core.replies import Block, Button, Paragraph, Reply, Table, Title
from robotrader.errors import UserError
from robotrader.reference import get_strategy
from robotrader.settings_text import code_text
from robotrader.use_cases.bot_edits import BotEdit, Change, EditResult, edit_bot
from robotrader.use_cases.bot_settings import TIMEFRAMES, valid_keys
from robotrader.use_cases.bots import MAX_CAPITAL, MIN_CAPITAL

DIALOG = "editbot"
# Menu choice -> the step that waits for its answer (the timeframe is chosen by buttons).
MENU = ("params", "capital", "tf", "risk")
TYPED_STEPS = frozenset({"params", "capital", "risk"})


MAX_WORDS = 60  # pending words kept by a dialog; later words win over earlier ones


def _edit_of(data: dict[str, Any]) -> BotEdit:
    return BotEdit(options=tuple(data["words"]))


def _shown(inv: Invocation, label: str, value: str | None) -> str:
    """A value before or after an edit as the trader reads it (settings in words)."""
    if label.startswith("bot_setting.") and value is not None:
        value = code_text(label.removeprefix("bot_setting."), value, inv.t.language)
    return inv.t("editbot.off") if value is None else value


def _changes_table(inv: Invocation, changes: list[Change]) -> Table:
    return Table(
        [
            [inv.t(c.label), f"{_shown(inv, c.label, c.before)} → {_shown(inv, c.label, c.after)}"]
            for c in changes
        ]
    )


def _now(inv: Invocation, result: EditResult) -> str:
    words = [f"{k}={v}" for k, v in result.settings_before.items() if v is not None]
    return inv.t("editbot.now", settings=" ".join(words))


def _applied(inv: Invocation, result: EditResult) -> Reply:
    if not result.changes:
        return Reply.text(inv.t("editbot.nothing_changed"), edit=True)
    blocks: list[Block] = [
        Title(inv.t("editbot.done", name=result.bot.name)),
        _changes_table(inv, result.changes),
    ]
    if result.from_next_tick:
        blocks.append(Paragraph(inv.t("editbot.next_tick", name=result.bot.name)))
    return Reply(blocks=blocks, edit=True)


def _split(args: list[str]) -> tuple[str, list[str]]:
    """The bot's name or number (words without ``=``) and the ``key=value`` words."""
    return " ".join(a for a in args if "=" not in a), [a for a in args if "=" in a]


def _data(inv: Invocation) -> dict[str, Any]:
    if inv.dialog is None or inv.dialog.name != DIALOG:
        raise UserError("dialog_expired")
    inv.dialogs.touch(inv.ctx.identity_key, inv.dialog)
    return inv.dialog.data


async def _preview(inv: Invocation, data: dict[str, Any]) -> EditResult:
    """The pending edit, checked as it would be applied (a refusal is said now)."""
    return await edit_bot(
        inv.app, inv.user_id, data["bot_id"], _edit_of(data), apply=False,
        platform=str(inv.ctx.platform),
    )  # fmt: skip


async def _menu(inv: Invocation, result: EditResult | None = None) -> Reply:
    assert inv.dialog is not None
    data = inv.dialog.data
    inv.dialog.step = "menu"
    result = result or await _preview(inv, data)
    blocks: list[Block] = [Title(inv.t("editbot.title", name=result.bot.name))]
    blocks.append(Paragraph(_now(inv, result)))
    if result.changes:
        blocks += [Paragraph(inv.t("editbot.pending")), _changes_table(inv, result.changes)]
    blocks.append(Paragraph(inv.t("editbot.choose")))
    last = (
        [
            Button(inv.t("button.edit_confirm"), action=actions.encode("eby")),
            Button(inv.t("button.cancel"), action=actions.encode("cancel")),
        ]
        if result.changes
        else [Button(inv.t("button.done"), action=actions.encode("ebd"))]
    )
    return Reply(
        blocks=blocks,
        buttons=[
            [
                Button(inv.t("button.edit_params"), action=actions.encode("ebm", "params")),
                Button(inv.t("button.edit_capital"), action=actions.encode("ebm", "capital")),
            ],
            [
                Button(inv.t("button.edit_timeframe"), action=actions.encode("ebm", "tf")),
                Button(inv.t("button.edit_risk"), action=actions.encode("ebm", "risk")),
            ],
            last,
        ],
        edit=True,
    )


async def _open(inv: Invocation, bot_ref: str) -> Reply:
    result = await edit_bot(inv.app, inv.user_id, bot_ref, BotEdit(), apply=False)
    inv.start_dialog(DIALOG, "menu", bot_id=result.bot.id, words=[])
    reply = await _menu(inv, result)
    reply.edit = False
    return reply


@command("editbot", private_only=True, args=("bot", "key=value"))
async def editbot(inv: Invocation) -> Reply:
    """``/editbot <bot> [key=value ...]``: applied at once; without changes, step by step."""
    ref, words = _split(inv.args)
    if not ref:
        raise UserError("missing_argument", usage=inv.t("usage.editbot"))
    if not words:
        return await _open(inv, ref)
    result = await edit_bot(
        inv.app, inv.user_id, ref, BotEdit(options=tuple(words)), platform=str(inv.ctx.platform)
    )
    reply = _applied(inv, result)
    reply.edit = False
    return reply


@action("eb")
async def edit_button(inv: Invocation) -> Reply:
    """The Edit button of a bot's card."""
    if not inv.ctx.is_private:
        raise UserError("private_only")
    if not inv.args:
        raise UserError("button_expired")
    return await _open(inv, inv.args[0])


@action("ebm")
async def edit_menu(inv: Invocation) -> Reply:
    data = _data(inv)
    assert inv.dialog is not None
    choice = inv.args[0] if inv.args else ""
    if choice not in MENU:
        raise UserError("dialog_expired")
    result = await _preview(inv, data)
    inv.dialog.step = choice
    if choice == "tf":
        now = result.settings["tf"] or ""
        buttons = [
            [
                Button(("✅ " if tf == now else "") + tf, action=actions.encode("ebt", tf))
                for tf in TIMEFRAMES[i : i + 3]
            ]
            for i in range(0, len(TIMEFRAMES), 3)
        ]
        text = inv.t("editbot.ask_timeframe", timeframe=now)
    elif choice == "params":
        strategy = get_strategy(result.bot.strategy)
        example = " ".join(f"{p.name}={result.bot.parameters.get(p.name, p.default)}"
                           for p in strategy.info.params[:2])  # fmt: skip
        text = inv.t("editbot.ask_params", example=example or "—")
        rows = [
            [p.name, str(result.bot.parameters.get(p.name, p.default)), f"{p.minimum}-{p.maximum}"]
            for p in strategy.info.params
        ]
        reply = Reply(blocks=[Paragraph(text), Table(rows)], edit=True)
        reply.buttons = [[Button(inv.t("button.cancel"), action=actions.encode("cancel"))]]
        return reply
    elif choice == "capital":
        text = inv.t(
            "editbot.ask_capital", minimum=str(MIN_CAPITAL), maximum=str(MAX_CAPITAL),
            capital=format(result.bot.capital.normalize(), "f"),
        )  # fmt: skip
        buttons = []
    else:
        text = inv.t("editbot.ask_risk", valid=valid_keys(None))
        buttons = []
    buttons.append([Button(inv.t("button.cancel"), action=actions.encode("cancel"))])
    return Reply(blocks=[Paragraph(text)], buttons=buttons, edit=True)


@action("ebt")
async def edit_timeframe(inv: Invocation) -> Reply:
    data = _data(inv)
    assert inv.dialog is not None
    if inv.dialog.step != "tf" or not inv.args or inv.args[0] not in TIMEFRAMES:
        raise UserError("dialog_expired")
    return await _pending(inv, data, [f"tf={inv.args[0]}"])


async def _pending(inv: Invocation, data: dict[str, Any], words: list[str]) -> Reply:
    """``words`` added to the pending edit once the use case accepts them; the menu again."""
    pending = {**data, "words": (data["words"] + words)[-MAX_WORDS:]}
    result = await _preview(inv, pending)
    data.update(pending)
    return await _menu(inv, result)


@dialog(DIALOG)
async def edit_text(inv: Invocation) -> Reply:
    """Typed answers: ``key=value`` words (parameters, risk and exits) or an amount."""
    data = _data(inv)
    assert inv.dialog is not None
    text = inv.text.strip()
    if inv.dialog.step not in TYPED_STEPS:
        return Reply.text(inv.t("editbot.use_buttons"))
    words = text.split()
    if inv.dialog.step == "capital" and len(words) == 1 and "=" not in text:
        words = [f"capital={text}"]
    reply = await _pending(inv, data, words)
    reply.edit = False
    return reply


@action("eby")
async def edit_confirm(inv: Invocation) -> Reply:
    data = _data(inv)
    result = await edit_bot(
        inv.app, inv.user_id, data["bot_id"], _edit_of(data), platform=str(inv.ctx.platform)
    )
    inv.end_dialog()
    return _applied(inv, result)


@action("ebd")
async def edit_done(inv: Invocation) -> Reply:
    _data(inv)
    inv.end_dialog()
    return Reply.text(inv.t("editbot.nothing_changed"), edit=True)
