"""/language and /settings: how and what we tell the user."""

from __future__ import annotations

from bots.core import actions
from bots.core.invocation import Invocation
from bots.core.registry import action, command
from bots.core.replies import Button, Paragraph, Reply, Title
from robotrader import languages
from robotrader.i18n import Translator
from robotrader.use_cases.accounts import set_language
from robotrader.use_cases.preferences import (
    MUTABLE_KINDS,
    get_preferences,
    set_summary_hour,
    toggle_kind,
)


@command("language", args=("language",))
async def language(inv: Invocation) -> Reply:
    if not inv.args:
        return Reply(
            blocks=[Paragraph(inv.t("language.choose"))],
            buttons=[
                [
                    Button(language.name, action=actions.encode("lang", language.tag))
                    for language in languages.LANGUAGES
                ]
            ],
        )
    chosen = await set_language(inv.app, inv.user_id, inv.args[0])
    return Reply.text(Translator(chosen)("language.set"))


@action("lang")
async def language_button(inv: Invocation) -> Reply:
    reply = await language(inv)
    reply.edit = True
    return reply


async def _settings_reply(inv: Invocation) -> Reply:
    prefs = await get_preferences(inv.app, inv.user_id)
    rows = [
        [
            Button(
                ("🔕 " if kind in prefs.muted else "🔔 ") + inv.t(f"kind.{kind}"),
                action=actions.encode("mute", kind),
            )
        ]
        for kind in MUTABLE_KINDS
    ]
    hour = prefs.daily_summary_hour
    rows.append(
        [
            Button("−1h", action=actions.encode("hour", (hour - 1) % 24)),
            Button(
                inv.t("settings.summary_at", hour=f"{hour:02d}:00 UTC"),
                action=actions.encode("hour", hour),
            ),
            Button("+1h", action=actions.encode("hour", (hour + 1) % 24)),
        ]
    )
    return Reply(
        blocks=[Title(inv.t("settings.title")), Paragraph(inv.t("settings.explain"))], buttons=rows
    )


@command("settings", private_only=True, args=("hour",))
async def settings(inv: Invocation) -> Reply:
    if len(inv.args) == 2 and inv.args[0] == "hour":
        await set_summary_hour(inv.app, inv.user_id, inv.args[1])
    return await _settings_reply(inv)


@action("mute")
async def mute_button(inv: Invocation) -> Reply:
    await toggle_kind(inv.app, inv.user_id, inv.args[0] if inv.args else "")
    reply = await _settings_reply(inv)
    reply.edit = True
    return reply


@action("hour")
async def hour_button(inv: Invocation) -> Reply:
    await set_summary_hour(inv.app, inv.user_id, inv.args[0] if inv.args else "")
    reply = await _settings_reply(inv)
    reply.edit = True
    return reply
