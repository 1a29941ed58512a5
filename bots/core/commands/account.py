"""/start, /help and /link: first contact, what can I do, one account on two platforms."""

from __future__ import annotations

from collections.abc import Callable

from bots.core import actions
from bots.core.commands.bots import newbot_help
from bots.core.invocation import Invocation
from bots.core.registry import COMMANDS, action, command
from bots.core.replies import Block, Button, Paragraph, Reply, Title
from robotrader.use_cases.linking import (
    PLATFORM_NAMES,
    cancel_link_code,
    create_link_code,
    normalize_code,
    preview_link_code,
    redeem_link_code,
)


def _onboarding(inv: Invocation) -> Reply:
    t = inv.t
    return Reply(
        blocks=[
            Title(t("start.welcome", name=inv.ctx.display_name or t("start.someone"))),
            Paragraph(t("start.pitch")),
            Paragraph(t("start.steps")),
        ],
        buttons=[
            [Button(t("start.button_newbot"), action=actions.encode("nb"))],
            [Button(t("start.button_connect"), action=actions.encode("cx"))],
            [Button(t("start.button_help"), action=actions.encode("help"))],
        ],
    )


@command("start", menu=True)
async def start(inv: Invocation) -> Reply | list[Reply]:
    if not inv.ctx.is_private:
        url = inv.ctx.private_link("start")
        buttons = [[Button(inv.t("private.open"), url=url)]] if url else []
        return Reply(blocks=[Paragraph(inv.t("start.group"))], buttons=buttons, personal=False)
    payload = inv.args[0] if inv.args else ""
    if payload.startswith("link-"):
        inv.args = [payload.removeprefix("link-")]
        return await link(inv)
    if payload in COMMANDS and payload not in ("start",) and inv.account.created is False:
        # Deep link from a group ("continue in private"): run what they wanted.
        return await COMMANDS[payload].handler(inv)
    return _onboarding(inv)


def _help(inv: Invocation) -> Reply:
    labels = {c.name: inv.ctx.command_label(c.name, inv.t.language) for c in COMMANDS.values()}
    lines = [
        f"{labels[c.name]} — {inv.t(c.help_key)}"
        for c in COMMANDS.values()
        if c.menu and (inv.ctx.is_private or not c.private_only) and labels[c.name]
    ]
    blocks: list[Block] = [
        Title(inv.t("help.title")),
        Paragraph("\n".join(lines)),
        Paragraph(inv.t("help.footer") + "\n" + inv.t("help.topics")),
    ]
    return Reply(blocks=blocks, personal=not inv.ctx.is_private)


# Commands explained in detail by ``/help <command>``.
HELP_TOPICS: dict[str, Callable[[Invocation], Reply]] = {"newbot": newbot_help}


@command("help", args=("command",))
async def help_command(inv: Invocation) -> Reply:
    """Every command in a line; ``/help newbot``: that command in detail."""
    if not inv.args:
        return _help(inv)
    topic = inv.args[0].lstrip("/").lower()
    if topic not in HELP_TOPICS:
        return Reply.text(
            inv.t("help.unknown_topic", topic=topic[:32], topics=", ".join(HELP_TOPICS)),
            personal=not inv.ctx.is_private,
        )
    return HELP_TOPICS[topic](inv)


@action("help")
async def help_button(inv: Invocation) -> Reply:
    return _help(inv)


@command("link", args=("code",))
async def link(inv: Invocation) -> Reply:
    """No code: make one for the other platform. With a code: join that account."""
    if not inv.args:
        code = await create_link_code(inv.app, inv.user_id)
        return Reply(
            blocks=[Title(inv.t("link.title")), Paragraph(inv.t("link.instructions", code=code))],
            private=not inv.ctx.is_private,
        )
    # Never linked on the code alone (a deep link anyone can send): the identity being
    # linked confirms with a button that names the account it joins.
    target = await preview_link_code(
        inv.app, inv.ctx.platform, inv.ctx.platform_user_id, inv.args[0]
    )
    if target.already_linked:
        return Reply.text(inv.t("link.already"))
    code = normalize_code(inv.args[0])
    here = PLATFORM_NAMES.get(inv.ctx.platform, str(inv.ctx.platform))
    return Reply(
        blocks=[
            Title(inv.t("link.confirm_title")),
            Paragraph(
                inv.t("link.confirm", name=target.name, platform=target.platform, here=here)
            ),
        ],
        buttons=[
            [Button(inv.t("link.confirm_button", name=target.name),
                    action=actions.encode("lk", code))],
            [Button(inv.t("link.cancel_button"), action=actions.encode("lkx", code))],
        ],
    )  # fmt: skip


@action("lk")
async def link_confirmed(inv: Invocation) -> Reply:
    if not inv.args:
        return Reply.text(inv.t("error.button_expired"))
    await redeem_link_code(inv.app, inv.ctx.platform, inv.ctx.platform_user_id, inv.args[0])
    return Reply(blocks=[Paragraph(inv.t("link.done"))], edit=True)


@action("lkx")
async def link_cancelled(inv: Invocation) -> Reply:
    if inv.args:
        await cancel_link_code(inv.app, inv.args[0])
    return Reply(blocks=[Paragraph(inv.t("link.cancelled"))], edit=True)
