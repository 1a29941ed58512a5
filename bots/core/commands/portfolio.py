"""/positions, /trades, /profit, /balance and /panic."""

from __future__ import annotations

from bots.core import actions
from bots.core.invocation import Invocation
from bots.core.registry import action, command
from bots.core.replies import Button, Paragraph, Reply, Table, Title
from robotrader.formatting import amount, money, percent, price, signed_money, when
from robotrader.use_cases.bots import kill_switch
from robotrader.use_cases.portfolio import balances, positions, profit, trades


@command("positions", private_only=True)
async def positions_command(inv: Invocation) -> Reply:
    held = await positions(inv.app, inv.user_id)
    if not held:
        return Reply.text(inv.t("positions.none"))
    lang = inv.t.language
    rows = [
        [
            p.bot,
            p.symbol,
            amount(p.amount, lang),
            price(p.average_entry, lang),
            price(p.price, lang),
            f"{signed_money(p.unrealized_pnl, lang)} ({percent(p.unrealized_pct, lang)})",
        ]
        for p in held
    ]
    header = [
        inv.t(k)
        for k in (
            "field.bot",
            "field.symbol",
            "field.amount",
            "field.entry",
            "field.price",
            "field.unrealized",
        )
    ]
    return Reply(blocks=[Title(inv.t("positions.title")), Table(rows, header=header)])


@command("trades", private_only=True, args=("count",))
async def trades_command(inv: Invocation) -> Reply:
    # ASCII digits only ('²'.isdigit() is True and int('²') raises); the use case clamps.
    typed = inv.args[0] if inv.args else ""
    count = int(typed) if typed.isascii() and typed.isdigit() and len(typed) < 4 else 10
    done = await trades(inv.app, inv.user_id, limit=count)
    if not done:
        return Reply.text(inv.t("trades.none"))
    lang = inv.t.language
    rows = [
        [
            when(t.closed_at, lang),
            inv.t("bots.deleted_marker", name=t.bot) if t.bot_deleted else t.bot,
            t.symbol,
            price(t.entry_price, lang),
            price(t.exit_price, lang),
            f"{signed_money(t.pnl, lang)} ({percent(t.pnl_pct, lang)})",
            inv.t(f"reason.{t.exit_reason}"),
        ]
        for t in done
    ]
    header = [
        inv.t(k)
        for k in (
            "field.closed",
            "field.bot",
            "field.symbol",
            "field.entry",
            "field.exit",
            "field.pnl",
            "field.reason",
        )
    ]
    return Reply(blocks=[Title(inv.t("trades.title", count=len(done))), Table(rows, header=header)])


@command("profit", private_only=True)
async def profit_command(inv: Invocation) -> Reply:
    lang = inv.t.language
    rows = [
        [
            inv.t(f"period.{p.period}"),
            signed_money(p.pnl, lang),
            str(p.trades),
            percent(p.win_rate, lang) if p.win_rate is not None else "—",
        ]
        for p in await profit(inv.app, inv.user_id)
    ]
    header = [
        inv.t("field.period"),
        inv.t("field.pnl"),
        inv.t("field.trades"),
        inv.t("field.win_rate"),
    ]
    return Reply(blocks=[Title(inv.t("profit.title")), Table(rows, header=header)])


@command("balance", private_only=True)
async def balance_command(inv: Invocation) -> Reply:
    lang = inv.t.language
    blocks: list[Title | Paragraph | Table] = [Title(inv.t("balance.title"))]
    for account in await balances(inv.app, inv.user_id):
        name = inv.t("balance.paper") if account.account == "paper" else account.account.title()
        if account.error:
            blocks.append(Paragraph(f"{name}: {inv.t(f'error.{account.error}', exchange=name)}"))
            continue
        rows = [[asset, amount(value, lang)] for asset, value in sorted(account.assets.items())]
        blocks.append(Paragraph(name))
        blocks.append(Table(rows or [["—", money(None, lang)]]))
    return Reply(blocks=list(blocks))


@command("panic", private_only=True)
async def panic(inv: Invocation) -> Reply:
    return Reply(
        blocks=[Title(inv.t("panic.title")), Paragraph(inv.t("panic.explain"))],
        buttons=[
            [Button(inv.t("panic.stop_only"), action=actions.encode("pn", "stop"))],
            [Button(inv.t("panic.stop_and_close"), action=actions.encode("pn", "close"))],
            [Button(inv.t("button.cancel"), action=actions.encode("cancel"))],
        ],
    )


@action("pn")
async def panic_confirmed(inv: Invocation) -> Reply:
    close = bool(inv.args) and inv.args[0] == "close"
    result = await kill_switch(inv.app, inv.user_id, close_positions=close)
    lines = [
        inv.t(
            "panic.done",
            bots=result.bots_stopped,
            orders=result.orders_canceled,
            sold=result.positions_sold,
        )
    ]
    if result.waiting:
        lines.append(inv.t("panic.waiting", waiting=result.waiting))
    return Reply.text("\n".join(lines), edit=True)
