"""The API key form: on Discord a key is typed into a modal, never posted as a message.

The chat core's connect button (``cx:<exchange>``) opens it; its submit comes
back as an interaction whose custom_id names the exchange, answered from that
alone, like every component.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from pydantic import SecretStr

from bots.core import actions
from bots.core.invocation import Invocation
from bots.core.replies import Reply
from bots.discord.commands import Interaction
from bots.discord.interactions import respond
from robotrader.credentials import CredentialSecrets
from robotrader.errors import UserError
from robotrader.i18n import Translator
from robotrader.use_cases.exchanges import supported_exchange

if TYPE_CHECKING:
    from bots.discord.client import DiscordFrontEnd

log = logging.getLogger(__name__)

KEY_FORM_PREFIX = "rt:key:"
# The one core button answered here: on Discord a key goes into a modal, never a message.
CONNECT_VERB = "cx"
KEY_FIELDS = ("api_key", "secret", "passphrase")
MAX_MODAL_TITLE = 45


def key_form_exchange(payload: str) -> str | None:
    """The exchange a ``cx:<exchange>`` button asks a key for, else None."""
    decoded = actions.decode(payload)
    if decoded is not None and decoded.verb == CONNECT_VERB and decoded.args:
        return decoded.args[0]
    return None


class KeyForm(discord.ui.Modal):
    """The API key form: what is typed here reaches the bot only, never a channel.

    Its submit is answered by ``DiscordFrontEnd.on_interaction`` (from the
    custom_id), like every component.
    """

    def __init__(
        self, exchange_id: str, exchange_title: str, t: Translator, timeout: float
    ) -> None:
        title = t("connect.title", exchange=exchange_title)[:MAX_MODAL_TITLE]
        super().__init__(title=title, custom_id=f"{KEY_FORM_PREFIX}{exchange_id}", timeout=timeout)
        for name in ("api_key", "secret"):
            self.add_item(
                discord.ui.TextInput(
                    label=t(f"discord.modal.{name}"),
                    custom_id=name,
                    style=discord.TextStyle.short,
                    max_length=512,
                )
            )

    def ask_passphrase(self, t: Translator) -> None:
        self.add_item(
            discord.ui.TextInput(
                label=t("discord.modal.passphrase"),
                custom_id="passphrase",
                style=discord.TextStyle.short,
                max_length=512,
            )
        )


def form_values(data: dict[str, Any]) -> dict[str, str]:
    """custom_id -> value of a submitted modal (action rows and labels alike)."""
    values: dict[str, str] = {}
    for row in data.get("components") or []:
        children = row.get("components") or ([row["component"]] if "component" in row else [])
        for child in children:
            if child.get("custom_id") and child.get("value") is not None:
                values[str(child["custom_id"])] = str(child["value"])
    return values


async def open_key_form(client: DiscordFrontEnd, interaction: Interaction, exchange: str) -> None:
    """Answer with the key form at once (a modal must be the first answer)."""
    t = Translator(str(interaction.locale))
    try:
        spec = supported_exchange(exchange)
    except UserError:  # unknown exchange: let the core say so, in the user's language
        await respond(
            client,
            interaction,
            lambda ctx: client.core.run(ctx, "connect:form", _refuse_exchange, [exchange]),
        )
        return
    form = KeyForm(spec.id, spec.title, t, client.view_timeout)
    if spec.needs_passphrase:
        form.ask_passphrase(t)
    try:
        await interaction.response.send_modal(form)
    except discord.HTTPException:
        log.warning("discord.modal_failed exchange=%s", spec.id, exc_info=True)


async def submit_key_form(
    client: DiscordFrontEnd, interaction: Interaction, exchange: str, data: dict[str, Any]
) -> None:
    """The submitted form: its secrets go to the chat core's connect, and nowhere else."""
    values = form_values(data)
    passphrase = values.get("passphrase", "").strip()
    secrets = CredentialSecrets(
        api_key=SecretStr(values.get("api_key", "").strip()),
        secret=SecretStr(values.get("secret", "").strip()),
        passphrase=SecretStr(passphrase) if passphrase else None,
    )
    del values, data  # the secrets live on only in ``secrets``
    await respond(
        client, interaction, lambda ctx: client.core.connect_with_secrets(ctx, exchange, secrets)
    )


async def _refuse_exchange(inv: Invocation) -> Reply:
    supported_exchange(inv.args[0] if inv.args else "")  # raises the catalog's error
    return Reply.text(inv.t("error.button_expired"))
