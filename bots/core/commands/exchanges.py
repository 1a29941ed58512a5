"""/connect, /exchanges, /disconnect: API keys, only ever in a private chat.

/connect asks for the key, the secret (and the passphrase where the exchange
has one) in follow-up messages; each of those messages is deleted right after
it is read, before anything else happens, and the values live only in this
process's memory until the key is validated and encrypted.
"""

from __future__ import annotations

from pydantic import SecretStr

from bots.core import actions
from bots.core.invocation import Invocation
from bots.core.registry import action, command, dialog
from bots.core.replies import Block, Button, Paragraph, Reply, Table, Title
from robotrader.credentials import CredentialSecrets
from robotrader.errors import UserError
from robotrader.formatting import when
from robotrader.reference import EXCHANGES
from robotrader.use_cases.exchanges import (
    connect_exchange,
    disconnect_exchange,
    list_exchanges,
    supported_exchange,
)
from robotrader.use_cases.key_intake import KEY_LINK_TTL, issue_key_link


async def _web_form(inv: Invocation, exchange: str | None = None) -> tuple[Paragraph, Button]:
    """The private link to the web form, offered first: the key never crosses the chat."""
    link = await issue_key_link(inv.app, inv.user_id, exchange)
    minutes = int(KEY_LINK_TTL.total_seconds() // 60)
    return Paragraph(inv.t("connect.web_link", minutes=minutes)), Button(
        inv.t("connect.web_open"), url=link
    )


async def _choose_exchange(inv: Invocation) -> Reply:
    offer, open_form = await _web_form(inv)
    return Reply(
        blocks=[offer, Paragraph(inv.t("connect.choose"))],
        buttons=[[open_form]]
        + [
            [Button(spec.title, action=actions.encode("cx", spec.id))]
            for spec in EXCHANGES.values()
        ],
    )


async def _ask_key(inv: Invocation, exchange: str) -> Reply:
    spec = supported_exchange(exchange)
    offer, open_form = await _web_form(inv, spec.id)
    inv.start_dialog("connect", "api_key", exchange=spec.id)
    return Reply(
        blocks=[
            Title(inv.t("connect.title", exchange=spec.title)),
            offer,
            Paragraph(inv.t("connect.ask_key")),
        ],
        buttons=[
            [open_form],
            [Button(inv.t("button.cancel"), action=actions.encode("cancel"))],
        ],
    )


@command("connect", private_only=True, args=("exchange",))
async def connect(inv: Invocation) -> Reply:
    if not inv.args:
        return await _choose_exchange(inv)
    return await _ask_key(inv, inv.args[0])


@action("cx")
async def connect_button(inv: Invocation) -> Reply:
    if not inv.ctx.is_private:
        raise UserError("private_only")
    if not inv.args:
        return await _choose_exchange(inv)
    return await _ask_key(inv, inv.args[0])


@action("cancel")
async def cancel(inv: Invocation) -> Reply:
    inv.end_dialog()
    return Reply.text(inv.t("dialog.canceled"), edit=True)


@dialog("connect")
async def connect_step(inv: Invocation) -> list[Reply]:
    """Each answer is deleted first; the next question follows."""
    assert inv.dialog is not None
    data, value = inv.dialog.data, inv.text.strip()
    spec = supported_exchange(data["exchange"])
    if not value or " " in value or len(value) > 512:
        return [Reply.text(inv.t("connect.bad_value"))]
    if inv.dialog.step == "api_key":
        data["api_key"] = value
        inv.dialog.step = "secret"
        inv.dialogs.touch(inv.ctx.identity_key, inv.dialog)
        return [Reply.text(inv.t("connect.ask_secret"))]
    if inv.dialog.step == "secret":
        data["secret"] = value
        if spec.needs_passphrase:
            inv.dialog.step = "passphrase"
            inv.dialogs.touch(inv.ctx.identity_key, inv.dialog)
            return [Reply.text(inv.t("connect.ask_passphrase"))]
    else:
        data["passphrase"] = value
    secrets = CredentialSecrets(
        api_key=SecretStr(data["api_key"]),
        secret=SecretStr(data["secret"]),
        passphrase=SecretStr(data["passphrase"]) if "passphrase" in data else None,
    )
    inv.end_dialog()  # whatever happens next, the typed secrets leave memory with the dialog
    return [await finish_connect(inv, spec.id, secrets)]


async def finish_connect(inv: Invocation, exchange: str, secrets: CredentialSecrets) -> Reply:
    """Validate and store the key; the reply every way of handing over a key ends with.

    Shared by the typed dialog above and by front ends that collect the secrets
    in a form of their own (Discord's modal, see ChatCore.connect_with_secrets).
    """
    spec = supported_exchange(exchange)
    connected = await connect_exchange(inv.app, inv.user_id, spec.id, secrets)
    can = connected.permissions
    rights = [
        inv.t("connect.right_read"),
        inv.t("connect.right_trade")
        if can.get("trade") is not False
        else inv.t("connect.right_no_trade"),
        inv.t("connect.right_no_withdraw")
        if can.get("withdraw") is False
        else inv.t("connect.right_withdraw_unknown"),
    ]
    blocks: list[Block] = [
        Title(inv.t("connect.done", exchange=spec.title)),
        Paragraph("\n".join(rights)),
    ]
    if connected.egress_ips:
        # A stolen key restricted to our addresses is useless anywhere else.
        blocks.append(
            Paragraph(
                inv.t(
                    "connect.restrict_ips", exchange=spec.title,
                    ips=", ".join(connected.egress_ips),
                )
            )
        )  # fmt: skip
    return Reply(
        blocks=blocks,
        buttons=[[Button(inv.t("start.button_newbot"), action=actions.encode("nb"))]],
    )


@command("exchanges", private_only=True)
async def exchanges(inv: Invocation) -> Reply:
    connected = await list_exchanges(inv.app, inv.user_id)
    if not connected:
        return Reply(
            blocks=[Paragraph(inv.t("exchanges.none"))],
            buttons=[[Button(inv.t("start.button_connect"), action=actions.encode("cx"))]],
        )
    rows = [
        [
            c.title,
            c.label,
            inv.t(f"exchanges.status_{c.status}"),
            when(c.validated_at, inv.t.language),
        ]
        for c in connected
    ]
    return Reply(blocks=[Title(inv.t("exchanges.title")), Table(rows)])


@command("disconnect", private_only=True, usage_key="disconnect.usage", args=("exchange",))
async def disconnect(inv: Invocation) -> Reply:
    if not inv.args:
        connected = await list_exchanges(inv.app, inv.user_id)
        if not connected:
            return Reply.text(inv.t("exchanges.none"))
        return Reply(
            blocks=[Paragraph(inv.t("disconnect.choose"))],
            buttons=[[Button(c.title, action=actions.encode("dx", c.exchange))] for c in connected],
        )
    spec = supported_exchange(inv.args[0])
    return Reply(
        blocks=[Paragraph(inv.t("disconnect.confirm", exchange=spec.title))],
        buttons=[
            [
                Button(inv.t("button.confirm_disconnect"), action=actions.encode("dxy", spec.id)),
                Button(inv.t("button.cancel"), action=actions.encode("cancel")),
            ]
        ],
    )


@action("dx")
async def disconnect_button(inv: Invocation) -> Reply:
    return await disconnect(inv)


@action("dxy")
async def disconnect_confirmed(inv: Invocation) -> Reply:
    if not inv.ctx.is_private:
        raise UserError("private_only")
    spec = supported_exchange(inv.args[0] if inv.args else "")
    await disconnect_exchange(inv.app, inv.user_id, spec.id)
    return Reply.text(inv.t("disconnect.done", exchange=spec.title), edit=True)
