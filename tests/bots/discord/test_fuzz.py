"""Property-based: any slash command with any option values gets an answer, never an exception.

The options are drawn from the commands as they were synced to the emulator
(types, ranges, choices, lengths), so every command the product declares is
exercised, in a server and in DMs; a key form that opens is filled in too.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.bots.discord.conftest import RunningBot, message_text
from tests.emulators.discord_api import CALLBACK_MODAL, InvocationRefused, Perm

APOLOGY = "(ref "
CHANNEL = 7


def leaf_commands(commands: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]], bool]]:
    """(path, option definitions, guild only) of every command a user can run."""
    leaves = []
    for command in commands:
        guild_only = command.get("dm_permission") is False
        stack = [(command["name"], command.get("options") or [])]
        while stack:
            path, options = stack.pop()
            subs = [o for o in options if o["type"] in (1, 2)]
            if not subs:
                leaves.append((path, options, guild_only))
            stack.extend((f"{path} {o['name']}", o.get("options") or []) for o in subs)
    return sorted(leaves)


def option_value(option: dict[str, Any], channels: list[int]) -> st.SearchStrategy[Any]:
    if option.get("choices"):
        return st.sampled_from([c["value"] for c in option["choices"]])
    kind = option["type"]
    if kind == 3:
        return st.text(
            min_size=int(option.get("min_length") or 0) or 1,
            max_size=int(option.get("max_length") or 100),
        )
    if kind == 4:
        return st.integers(
            min_value=option.get("min_value", -(2**53)), max_value=option.get("max_value", 2**53)
        )
    if kind == 5:
        return st.booleans()
    if kind == CHANNEL:
        return st.sampled_from(channels)
    raise AssertionError(f"option type {kind} has no strategy")


FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def channels(discord_bot: RunningBot) -> list[int]:
    """The server's general channel, and one the bot may not post in (refusals too)."""
    guild = discord_bot.guild
    muted = discord_bot.emulator.add_channel(
        guild.id,
        "no-bots",
        permission_overwrites=[{"id": guild.bot_role_id, "deny": Perm.SEND_MESSAGES}],
    )
    return [discord_bot.general, muted.id]


@pytest.fixture
def users(discord_bot: RunningBot) -> list[int]:
    """A few members (one an admin), so that DM channels are opened once each."""
    return [
        discord_bot.member("admin", permissions=Perm.MANAGE_GUILD),
        discord_bot.member("ana"),
        discord_bot.member("bob", locale="en-US"),
    ]


def components(message: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    """What can be pressed on a message: buttons, and each option of a menu."""
    found: list[tuple[str, list[str] | None]] = []
    for row in message.get("components") or []:
        for component in row.get("components") or []:
            if component.get("type") == 2 and component.get("custom_id"):
                found.append((component["custom_id"], None))
            for option in component.get("options") or []:
                found.append((component["custom_id"], [option["value"]]))
    return found


async def fill_in(bot: RunningBot, user: int, source: Any, data: st.DataObject) -> Any:
    """Type anything into every field of the modal the bot answered ``source`` with."""
    record = bot.emulator.responses(source)
    assert record.modal is not None
    fields = [
        c["component"] if "component" in c else c["components"][0]
        for c in record.modal["components"]
    ]
    answers = {
        f["custom_id"]: data.draw(st.text(min_size=1, max_size=80), label="typed") for f in fields
    }
    return bot.emulator.submit_modal(user, source, answers)


def assert_no_apology(bot: RunningBot, caplog: pytest.LogCaptureFixture, record: Any) -> None:
    texts = [bot.text(record)] + [
        message_text(e["payload"]) for e in record.edits if "embeds" in e["payload"]
    ]
    assert not any(APOLOGY in t for t in texts), texts
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@FUZZ
@given(data=st.data())
async def test_any_options_of_any_command_are_answered(
    discord_bot: RunningBot,
    users: list[int],
    channels: list[int],
    caplog: pytest.LogCaptureFixture,
    data: st.DataObject,
) -> None:
    """A command with drawn options; then, maybe, a press on what it answered."""
    emulator = discord_bot.emulator
    path, options, guild_only = data.draw(
        st.sampled_from(leaf_commands(emulator.commands())), label="command"
    )
    values = {
        o["name"]: data.draw(option_value(o, channels), label=o["name"])
        for o in options
        if o.get("required") or data.draw(st.booleans(), label=f"give {o['name']}")
    }
    in_server = guild_only or data.draw(st.booleans(), label="in server")
    user = data.draw(st.sampled_from(users), label="user")
    event(path)
    try:
        interaction = emulator.invoke(
            user, path, values, guild_id=discord_bot.guild.id if in_server else None
        )
    except InvocationRefused as refused:  # Discord's own client would not send it
        assert refused.reason in ("missing_permissions", "invalid_options"), refused
        event(f"refused by the client: {refused.reason}")
        return
    record = await discord_bot.answered(interaction)
    assert record.callback_delay is not None and record.callback_delay < 3
    if record.callback_type == CALLBACK_MODAL:
        record = await discord_bot.answered(await fill_in(discord_bot, user, interaction, data))
    assert record.followups
    assert all(message_text(m) or m.get("components") for m in discord_bot.replies(record))
    assert_no_apology(discord_bot, caplog, record)

    pressable = [
        (message, target)
        for message in discord_bot.replies(record)
        for target in components(message)
    ]
    if not pressable or not data.draw(st.booleans(), label="press"):
        return
    message, (custom_id, picked) = data.draw(st.sampled_from(pressable), label="press on")
    event("pressed")
    press = emulator.press(user, message, custom_id, picked)
    answer = await emulator.wait_for_response(press, timeout=10)
    assert answer.callback_delay is not None and answer.callback_delay < 3
    if answer.callback_type == CALLBACK_MODAL:
        answer = await discord_bot.answered(await fill_in(discord_bot, user, press, data))
    else:

        def settled() -> bool:
            pressed = emulator.responses(press)
            return bool(pressed.followups or pressed.edits)

        await emulator.wait_for_async(settled, 10)
        answer = emulator.responses(press)
    assert_no_apology(discord_bot, caplog, answer)


async def test_every_command_answers_with_plain_options(
    discord_bot: RunningBot, users: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """The sweep the random draw may miss: each command once, in a server and (if it can) a DM."""
    emulator = discord_bot.emulator
    admin = users[0]
    for path, options, guild_only in leaf_commands(emulator.commands()):
        values = {
            o["name"]: (o["choices"][0]["value"] if o.get("choices") else
                        discord_bot.general if o["type"] == CHANNEL else
                        1 if o["type"] == 4 else True if o["type"] == 5 else "x")
            for o in options if o.get("required")
        }  # fmt: skip
        # A channel option names a channel of the server it is run in: none in a DM.
        needs_channel = any(o["type"] == CHANNEL for o in options if o.get("required"))
        for in_server in (True,) if guild_only or needs_channel else (True, False):
            guild = discord_bot.guild.id if in_server else None
            interaction = emulator.invoke(admin, path, values, guild_id=guild)
            record = await discord_bot.answered(interaction)
            if record.callback_type == CALLBACK_MODAL:
                continue
            assert record.followups, path
            assert_no_apology(discord_bot, caplog, record)
