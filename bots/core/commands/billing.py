"""/plan, /upgrade and /billing."""

from __future__ import annotations

from bots.core import actions
from bots.core.invocation import Invocation
from bots.core.registry import action, command
from bots.core.replies import Button, Paragraph, Reply, Table, Title
from robotrader.formatting import when
from robotrader.use_cases.billing import (
    billing_portal,
    plan_overview,
    start_upgrade,
    upgrade_offers,
)


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
    if not overview.plans_apply:  # self-hosted without Stripe: nothing to sell, no buttons
        return Reply(
            blocks=[
                Title(t("plan.self_hosted_title")),
                Paragraph(t("plan.self_hosted")),
                Table(rows),
            ]
        )
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
    """Every paid plan's price and limits come from the plan table (billing/plans.py)."""
    t = inv.t
    offers = upgrade_offers(inv.app)
    limits_text: dict[str, str] = {}
    for offer in offers:
        plan = str(offer.plan)
        limits_text[f"{plan}_exchanges"] = (
            t("upgrade.exchanges_unlimited")
            if offer.max_exchanges is None
            else t("upgrade.exchanges", count=offer.max_exchanges)
        )
        limits_text[f"{plan}_symbols"] = (
            t("upgrade.symbols_unlimited")
            if offer.max_symbols is None
            else t("upgrade.symbols", count=offer.max_symbols)
        )
        limits_text[f"{plan}_bots"] = t("upgrade.bots", count=offer.max_bots)
    return Reply(
        blocks=[Title(t("upgrade.title")), Paragraph(t("upgrade.plans", **limits_text))],
        buttons=[
            [
                Button(
                    t(
                        "upgrade.plan_button",
                        plan=t(f"plan.{offer.plan}"),
                        price=offer.price_usd_month,
                    ),
                    action=actions.encode("up", str(offer.plan)),
                )
            ]
            for offer in offers
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
