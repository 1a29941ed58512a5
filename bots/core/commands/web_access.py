"""/token (personal REST API tokens) and /dashboard (a one-time login link to the web dashboard)."""

from __future__ import annotations

from bots.core.invocation import Invocation
from bots.core.registry import command
from bots.core.replies import Block, Button, Code, Paragraph, Reply, Table, Title
from robotrader.formatting import when
from robotrader.public_links import public_url
from robotrader.use_cases.web_access import (
    DASHBOARD_LINK_TTL,
    create_api_token,
    issue_dashboard_link,
    list_api_tokens,
    revoke_api_tokens,
)

CREATE, LIST, REVOKE = ("new", "create"), ("list", "ls"), ("revoke",)


@command("token", private_only=True, args=("list|revoke",))
async def token(inv: Invocation) -> Reply:
    """No argument: a new token, shown this once. ``list``: prefixes. ``revoke``: all of them."""
    sub = inv.args[0].strip().lower() if inv.args else "new"
    t = inv.t
    if sub in LIST:
        tokens = await list_api_tokens(inv.app, inv.user_id)
        if not tokens:
            return Reply.text(t("token.none"))
        rows = [
            [f"{i.prefix}…", when(i.created_at, t.language), when(i.last_used_at, t.language)]
            for i in tokens
        ]
        header = [t("token.col_prefix"), t("token.col_created"), t("token.col_used")]
        return Reply(
            blocks=[Title(t("token.list_title")), Table(rows, header=header)],
        )
    if sub in REVOKE:
        count = await revoke_api_tokens(inv.app, inv.user_id)
        return Reply.text(t("token.revoked", count=count))
    if sub not in CREATE:
        return Reply.text(t("token.usage"))
    new = await create_api_token(inv.app, inv.user_id)
    docs = public_url(inv.app.settings, "/docs")
    blocks: list[Block] = [
        Title(t("token.created_title")),
        Paragraph(t("token.created")),
        Code(new.token),
        Paragraph(t("token.how", docs=docs)),
    ]
    return Reply(blocks=blocks)


@command("dashboard", private_only=True)
async def dashboard(inv: Invocation) -> Reply:
    """A button that opens the web dashboard: single use, valid for ten minutes."""
    link = await issue_dashboard_link(inv.app, inv.user_id)
    minutes = int(DASHBOARD_LINK_TTL.total_seconds() // 60)
    return Reply(
        blocks=[Paragraph(inv.t("dashboard.link", minutes=minutes))],
        buttons=[[Button(inv.t("dashboard.open"), url=link)]],
    )
