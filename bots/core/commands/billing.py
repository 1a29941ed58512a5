"""/plan, /upgrade and /billing."""

from __future__ import annotations

from bots.core import actions
from bots.core.invocation import Invocation
from bots.core.registry import action, command
from bots.core.replies import Button, Paragraph, Reply, Table, Title
from robotrader.formatting import when
from robotrader.use_cases.billing import billing_portal, plan_overview, start_upgrade


def _limit(value: int | None, t_unlimited: str) -> str:
    return t_unlimited if value is None else str(value)


@command("plan", private_only=True)
async def plan(inv: Invocation) -> Reply:
    overview = await plan_overview(inv.app, inv.user_id)
    limits, usage, t = overview.limits, overview.usage, inv.t
    unlimited = t("plan.unlimited")
    rows = [
        [t("limit.bots"), f"{usage.bots} / {limits.max_bots}"],
        [t("limit.symbols"), f"{usage.symbols} / {_limit(limits.max_symbols, unlimited)}"],
        [t("limit.exchanges"), f"{usage.exchanges} / {_limit(limits.max_exchanges, unlimited)}"],
        [t("plan.strategies"), t("plan.all") if limits.all_strategies else t("plan.basic")],
        [t("plan.rest_api"), t("plan.yes") if limits.rest_api else t("plan.no")],
    ]
    blocks: list[Title | Paragraph | Table] = [
        Title(t("plan.title", plan=t(f"plan.{overview.plan}"))),
        Table(rows),
    ]
    if overview.renews_at:
        key = "plan.ends" if overview.cancel_at_period_end else "plan.renews"
        blocks.append(Paragraph(t(key, date=when(overview.renews_at, t.language))))
    buttons = []
    if overview.plan != "premium":
        buttons.append([Button(t("plan.button_upgrade"), action=actions.encode("up"))])
    else:
        buttons.append([Button(t("plan.button_billing"), action=actions.encode("bill"))])
    return Reply(blocks=list(blocks), buttons=buttons)


def _choose_plan(inv: Invocation) -> Reply:
    return Reply(
        blocks=[Title(inv.t("upgrade.title")), Paragraph(inv.t("upgrade.plans"))],
        buttons=[
            [Button("Pro — $29/mo", action=actions.encode("up", "pro"))],
            [Button("Premium — $99/mo", action=actions.encode("up", "premium"))],
        ],
    )


@command("upgrade", private_only=True, args=("plan",))
async def upgrade(inv: Invocation) -> Reply:
    if not inv.args:
        return _choose_plan(inv)
    url = await start_upgrade(inv.app, inv.user_id, inv.args[0])
    name = inv.t(f"plan.{inv.args[0].strip().lower()}")
    return Reply(
        blocks=[Paragraph(inv.t("upgrade.link", plan=name))],
        buttons=[[Button(inv.t("upgrade.pay", plan=name), url=url)]],
    )


@action("up")
async def upgrade_button(inv: Invocation) -> Reply:
    return await upgrade(inv)


@command("billing", private_only=True)
async def billing(inv: Invocation) -> Reply:
    url = await billing_portal(inv.app, inv.user_id)
    return Reply(
        blocks=[Paragraph(inv.t("billing.portal"))],
        buttons=[[Button(inv.t("billing.open"), url=url)]],
    )


@action("bill")
async def billing_button(inv: Invocation) -> Reply:
    return await billing(inv)
