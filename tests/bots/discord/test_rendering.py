"""Replies as Discord embeds and components, and the slash commands' names (no server needed)."""

from __future__ import annotations

import discord
import pytest

from bots.core import actions
from bots.core.context import ChatContext
from bots.core.core import split_arguments
from bots.core.registry import COMMANDS
from bots.core.replies import Button, Code, Image, Paragraph, Reply, Table, Title
from bots.discord.commands import SLASH_PATHS, command_label, core_text, slash_path
from bots.discord.key_form import form_values, key_form_exchange
from bots.discord.localization import CatalogTranslator, text, texts
from bots.discord.rendering import (
    MAX_DESCRIPTION,
    PICK_PREFIX,
    ReplyView,
    layout,
    render_embeds,
    render_files,
)
from db.models import Platform
from robotrader.i18n import catalog


def _buttons(count: int) -> list[list[Button]]:
    return [[Button(f"choice {i}", action=actions.encode("x", i))] for i in range(count)]


def test_a_reply_becomes_an_embed_with_escaped_markdown_and_monospace_tables() -> None:
    reply = Reply(
        blocks=[
            Title("Your *bots*"),
            Paragraph("sma_crossover-1 · running"),
            Table([["BTC/USDT", "1`000"]], header=["Pair", "Amount"]),
            Code("a`b"),
        ]
    )
    [embed] = render_embeds(reply)
    assert embed.title == "Your *bots*"
    assert embed.description is not None
    assert "sma\\_crossover-1" in embed.description
    assert "```\nPair      Amount\nBTC/USDT  1ˋ000\n```" in embed.description
    assert embed.description.endswith("`aˋb`")


def test_long_replies_are_split_within_discords_limits() -> None:
    reply = Reply(blocks=[Paragraph("x" * 3000) for _ in range(5)])
    embeds = render_embeds(reply)
    assert len(embeds) > 1
    assert all(len(e.description or "") <= MAX_DESCRIPTION for e in embeds)
    assert sum(len(e.description or "") + len(e.title or "") for e in embeds) <= 6000


def test_an_image_is_attached_and_shown_in_the_embed() -> None:
    reply = Reply(blocks=[Title("Chart")], image=Image(b"\x89PNG", caption="BTC"))
    [embed] = render_embeds(reply)
    [file] = render_files(reply)
    assert embed.image.url == f"attachment://{file.filename}"
    assert embed.footer.text == "BTC"


def test_few_choices_are_buttons_many_are_a_select_menu() -> None:
    rows = layout([*_buttons(3), [Button("Cancel", action="v1:cancel")]])
    assert [r.kind for r in rows] == ["buttons"] * 4
    rows = layout(_buttons(5))
    assert [r.kind for r in rows] == ["select"] and len(rows[0].buttons) == 5


def test_discords_component_limits_are_kept() -> None:
    wide = [[Button(f"b{i}", action=f"v1:w:{i}") for i in range(7)]]
    assert [len(r.buttons) for r in layout(wide)] == [5, 2]
    # Eight bots with two buttons each: too many rows, so everything becomes menus.
    many = [
        [Button("Start", action=f"v1:bs:{i}"), Button("Details", action=f"v1:bd:{i}")]
        for i in range(8)
    ]
    rows = layout(many)
    assert len(rows) <= 5 and all(r.kind == "select" for r in rows)
    assert sum(len(r.buttons) for r in rows) == 16
    # The same payload twice would be refused by Discord: it is shown once.
    rows = layout([[Button("a", action="v1:x")], [Button("b", action="v1:x")]])
    assert [b.label for r in rows for b in r.buttons] == ["a"]


async def test_the_view_carries_the_core_payloads() -> None:
    reply_rows = layout([[Button("Go", action="v1:bs:7"), Button("Docs", url="https://x.test")]])
    view = ReplyView(reply_rows + layout(_buttons(6)), timeout=1)
    [go, docs, menu] = view.children
    assert isinstance(go, discord.ui.Button) and go.custom_id == "v1:bs:7"
    assert isinstance(docs, discord.ui.Button) and docs.url == "https://x.test"
    assert isinstance(menu, discord.ui.Select) and menu.custom_id == f"{PICK_PREFIX}1"
    assert [o.value for o in menu.options][:2] == ["v1:x:0", "v1:x:1"]
    view.stop()


def test_every_slash_command_maps_to_a_core_command() -> None:
    designed = {c.name for c in COMMANDS.values()} & set(SLASH_PATHS)
    assert designed >= {"newbot", "connect", "status", "plan", "link", "help"}
    assert all(slash_path(c.name) for c in COMMANDS.values() if c.menu and c.name != "start")
    assert command_label("newbot", "en") == "/bot create"
    assert command_label("newbot", "pt-BR") == "/robô criar"
    assert command_label("start", "en") is None
    ctx = ChatContext(Platform.DISCORD, "1", "2", True, command_label=command_label)
    assert ctx.command_label("status", "pt-BR") == "/carteira situação"


@pytest.mark.parametrize("name", ["my bot", 'it\'s "quoted"', "a;b", "x" * 64])
def test_option_values_reach_the_core_as_one_argument(name: str) -> None:
    text_ = core_text("startbot", name)
    assert split_arguments(text_.split(" ", 1)[1]) == [name]


async def test_names_and_descriptions_come_from_the_catalog() -> None:
    translator = CatalogTranslator()
    name = text("discord.cmd.portfolio.status")
    assert name.message == "status"
    context = discord.app_commands.TranslationContext(
        discord.app_commands.TranslationContextLocation.command_name, None
    )
    pt = discord.Locale.brazil_portuguese
    assert await translator.translate(name, pt, context) == "situação"
    assert await translator.translate(name, discord.Locale.french, context) is None
    titled = texts({"en": "Grid", "pt-BR": "Grade"})
    assert titled.message == "Grid" and await translator.translate(titled, pt, context) == "Grade"
    for key, value in catalog("pt-BR").items():  # Discord's naming rules
        if key.startswith(("discord.cmd.", "discord.opt.")) and not key.endswith(".desc"):
            assert value == value.lower() and " " not in value and len(value) <= 32, key


def test_the_connect_button_opens_the_key_form_and_the_form_is_read() -> None:
    assert key_form_exchange("v1:cx:binance") == "binance"
    assert key_form_exchange("v1:cx") is None and key_form_exchange("v1:nb") is None
    submitted = {
        "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "api_key", "value": "K"}]},
            {"type": 18, "component": {"type": 4, "custom_id": "secret", "value": "S"}},
        ]
    }
    assert form_values(submitted) == {"api_key": "K", "secret": "S"}
