"""The slash commands: each one is a chat-core command written the Discord way.

``/bot start bot:alpha`` is ``/startbot alpha`` for the chat core, which holds
every rule; a callback here only turns options into that text (each argument
quoted, so a name with spaces stays one argument). Names and descriptions come
from the message catalog, in English and Brazilian Portuguese.

Four commands are Discord's own: ``/exchange connect`` opens a modal (a key
is never typed into a message), ``/community`` and ``/share`` run the
community use cases, and ``/notify`` picks where notifications go (DMs or a
server channel). ``/community`` needs Manage Server: declared with
``default_permissions`` so Discord itself hides it from members (Discord sets
permissions per top-level command, so its leaderboard is for admins to post),
and checked again by the use case.
"""

from __future__ import annotations

import shlex
from functools import partial
from typing import Any, Protocol

import discord
from discord import app_commands

from bots.core.commands.account import HELP_TOPICS
from bots.core.registry import COMMANDS, Command, Handler
from bots.discord.community import set_channel, share, show_leaderboard
from bots.discord.localization import text, texts
from bots.discord.notification_channel import back_to_dm, channel_access, pick_channel, show_target
from robotrader import languages
from robotrader.i18n import catalog, translate
from robotrader.languages import DEFAULT_LANGUAGE
from robotrader.reference import EXCHANGES, STRATEGIES
from robotrader.use_cases.backtests import BACKTEST_PERIODS
from robotrader.use_cases.bots import MAX_CAPITAL, MIN_CAPITAL
from robotrader.use_cases.community import LEADERBOARD_DAYS

Interaction = discord.Interaction[discord.Client]

# core command -> its slash command path, as catalog keys (discord.cmd.<key>)
SLASH_PATHS: dict[str, tuple[str, ...]] = {
    "newbot": ("bot", "bot.create"),
    "bots": ("bot", "bot.list"),
    "startbot": ("bot", "bot.start"),
    "stopbot": ("bot", "bot.stop"),
    "deletebot": ("bot", "bot.delete"),
    "editbot": ("bot", "bot.edit"),
    "live": ("bot", "bot.live"),
    "chart": ("bot", "bot.chart"),
    "backtest": ("backtest",),
    "connect": ("exchange", "exchange.connect"),
    "exchanges": ("exchange", "exchange.list"),
    "disconnect": ("exchange", "exchange.disconnect"),
    "status": ("portfolio", "portfolio.status"),
    "positions": ("portfolio", "portfolio.positions"),
    "trades": ("portfolio", "portfolio.trades"),
    "profit": ("portfolio", "portfolio.profit"),
    "balance": ("portfolio", "portfolio.balance"),
    "plan": ("plan",),
    "upgrade": ("upgrade",),
    "billing": ("billing",),
    "panic": ("panic",),
    "settings": ("settings",),
    "language": ("language",),
    "link": ("link",),
    "help": ("help",),
}


# Core commands with no slash command: Discord's onboarding is the first command itself.
NOT_ON_DISCORD = frozenset({"start"})


def slash_path(name: str) -> tuple[str, ...] | None:
    """The slash command of a core command: mapped above, or a plain ``/name`` of its own."""
    if name in SLASH_PATHS:
        return SLASH_PATHS[name]
    command = COMMANDS.get(name)
    if command is None or not command.menu or name in NOT_ON_DISCORD:
        return None
    return (name,)


def command_label(name: str, language: str) -> str | None:
    """How a core command is typed on Discord, e.g. ``/robô criar``; None if it has no slash."""
    path = slash_path(name)
    if path is None:
        return None
    words = catalog(language)
    return "/" + " ".join(words.get(f"discord.cmd.{key}", key) for key in path)


def core_text(command: str, *args: str) -> str:
    """The chat-core text of a command; every argument quoted as one word."""
    return " ".join([f"/{command}", *(shlex.quote(a) for a in args)])


class CommandRunner(Protocol):
    """What the commands need from the front end (see client.DiscordFrontEnd)."""

    async def run_text(self, interaction: Interaction, text: str) -> None: ...

    async def run_work(
        self, interaction: Interaction, work: str, handler: Handler, *, public: bool = False
    ) -> None: ...

    async def open_key_form(self, interaction: Interaction, exchange: str) -> None: ...


EXCHANGE_CHOICES = [app_commands.Choice(name=s.title, value=s.id) for s in EXCHANGES.values()]
STRATEGY_CHOICES = [
    app_commands.Choice(name=text(s.info.title_key), value=name) for name, s in STRATEGIES.items()
]
LANGUAGE_CHOICES = [
    app_commands.Choice(name=language.name, value=language.tag) for language in languages.LANGUAGES
]
# /help <topic>: the commands explained in detail, under their Discord names.
HELP_TOPIC_CHOICES = [
    app_commands.Choice(
        name=texts({lang: command_label(name, lang) or name for lang in languages.tags()}),
        value=name,
    )
    for name in HELP_TOPICS
]
PLAN_CHOICES = [app_commands.Choice(name=text(f"plan.{p}"), value=p) for p in ("pro", "premium")]
PERIOD_CHOICES = [
    app_commands.Choice(name=text(f"period.{days}d"), value=days) for days in LEADERBOARD_DAYS
]

BotName = app_commands.Range[str, 1, 64]


def _bot_group(runner: CommandRunner) -> app_commands.Group:
    group = app_commands.Group(
        name=text("discord.cmd.bot"), description=text("discord.cmd.bot.desc")
    )

    @group.command(name=text("discord.cmd.bot.create"), description=text("help.newbot"))
    @app_commands.rename(
        exchange=text("discord.opt.exchange"),
        symbols=text("discord.opt.symbols"),
        strategy=text("discord.opt.strategy"),
        capital=text("discord.opt.capital"),
        options=text("discord.opt.options"),
    )
    @app_commands.describe(
        exchange=text("discord.opt.exchange.desc"),
        symbols=text("discord.opt.symbols.desc"),
        strategy=text("discord.opt.strategy.desc"),
        capital=text("discord.opt.capital.desc"),
        options=text("discord.opt.options.desc"),
    )
    @app_commands.choices(exchange=EXCHANGE_CHOICES, strategy=STRATEGY_CHOICES)
    async def create(
        interaction: Interaction,
        exchange: str | None = None,
        symbols: app_commands.Range[str, 1, 200] | None = None,
        strategy: str | None = None,
        capital: app_commands.Range[int, int(MIN_CAPITAL), int(MAX_CAPITAL)] | None = None,
        options: app_commands.Range[str, 1, 300] | None = None,
    ) -> None:
        """Guided with buttons, or in one go when every option is given (as /newbot takes it);
        ``options`` is the one-line form's key=value part (``tf=1h sl=3 period=7``)."""
        if exchange is None or symbols is None or strategy is None or capital is None:
            await runner.run_text(interaction, "/newbot")
            return
        pairs = ",".join(symbols.replace(",", " ").split())
        words = (options or "").split()
        await runner.run_text(
            interaction, core_text("newbot", exchange, pairs, strategy, str(capital), *words)
        )

    @group.command(name=text("discord.cmd.bot.list"), description=text("help.bots"))
    async def list_(interaction: Interaction) -> None:
        await runner.run_text(interaction, "/bots")

    def bot_command(core: str, key: str) -> None:
        @group.command(name=text(f"discord.cmd.bot.{key}"), description=text(f"help.{core}"))
        @app_commands.rename(bot=text("discord.opt.bot"))
        @app_commands.describe(bot=text("discord.opt.bot.desc"))
        async def run(interaction: Interaction, bot: BotName) -> None:
            await runner.run_text(interaction, core_text(core, bot))

    bot_command("startbot", "start")
    bot_command("stopbot", "stop")
    bot_command("deletebot", "delete")
    bot_command("chart", "chart")

    @group.command(name=text("discord.cmd.bot.edit"), description=text("help.editbot"))
    @app_commands.rename(bot=text("discord.opt.bot"), changes=text("discord.opt.changes"))
    @app_commands.describe(
        bot=text("discord.opt.bot.desc"), changes=text("discord.opt.changes.desc")
    )
    async def edit(
        interaction: Interaction,
        bot: BotName,
        changes: app_commands.Range[str, 1, 300] | None = None,
    ) -> None:
        """``/bot edit bot:alpha changes:sl=3 tp=2:50,4:50``; without changes, step by step."""
        await runner.run_text(interaction, core_text("editbot", bot, *(changes or "").split()))

    @group.command(name=text("discord.cmd.bot.live"), description=text("help.live"))
    @app_commands.rename(bot=text("discord.opt.bot"), paper=text("discord.opt.paper"))
    @app_commands.describe(bot=text("discord.opt.bot.desc"), paper=text("discord.opt.paper.desc"))
    async def live(interaction: Interaction, bot: BotName, paper: bool = False) -> None:
        args = [bot, "off"] if paper else [bot]
        await runner.run_text(interaction, core_text("live", *args))

    return group


def _exchange_group(runner: CommandRunner) -> app_commands.Group:
    group = app_commands.Group(
        name=text("discord.cmd.exchange"), description=text("discord.cmd.exchange.desc")
    )

    @group.command(
        name=text("discord.cmd.exchange.connect"),
        description=text("discord.cmd.exchange.connect.desc"),
    )
    @app_commands.rename(exchange=text("discord.opt.exchange"))
    @app_commands.describe(exchange=text("discord.opt.exchange.desc"))
    @app_commands.choices(exchange=EXCHANGE_CHOICES)
    async def connect(interaction: Interaction, exchange: str) -> None:
        await runner.open_key_form(interaction, exchange)

    @group.command(name=text("discord.cmd.exchange.list"), description=text("help.exchanges"))
    async def list_(interaction: Interaction) -> None:
        await runner.run_text(interaction, "/exchanges")

    @group.command(
        name=text("discord.cmd.exchange.disconnect"), description=text("help.disconnect")
    )
    @app_commands.rename(exchange=text("discord.opt.exchange"))
    @app_commands.describe(exchange=text("discord.opt.exchange.desc"))
    @app_commands.choices(exchange=EXCHANGE_CHOICES)
    async def disconnect(interaction: Interaction, exchange: str | None = None) -> None:
        await runner.run_text(
            interaction, core_text("disconnect", *([exchange] if exchange else []))
        )

    return group


def _portfolio_group(runner: CommandRunner) -> app_commands.Group:
    group = app_commands.Group(
        name=text("discord.cmd.portfolio"), description=text("discord.cmd.portfolio.desc")
    )

    def simple(core: str, key: str) -> None:
        @group.command(name=text(f"discord.cmd.portfolio.{key}"), description=text(f"help.{core}"))
        async def run(interaction: Interaction) -> None:
            await runner.run_text(interaction, f"/{core}")

    simple("status", "status")
    simple("positions", "positions")
    simple("profit", "profit")
    simple("balance", "balance")

    @group.command(name=text("discord.cmd.portfolio.trades"), description=text("help.trades"))
    @app_commands.rename(count=text("discord.opt.count"))
    @app_commands.describe(count=text("discord.opt.count.desc"))
    async def trades(
        interaction: Interaction, count: app_commands.Range[int, 1, 50] | None = None
    ) -> None:
        await runner.run_text(interaction, core_text("trades", *([str(count)] if count else [])))

    return group


def _account_commands(runner: CommandRunner) -> list[app_commands.Command[Any, Any, Any]]:
    def simple(core: str) -> app_commands.Command[Any, Any, Any]:
        @app_commands.command(name=text(f"discord.cmd.{core}"), description=text(f"help.{core}"))
        async def run(interaction: Interaction) -> None:
            await runner.run_text(interaction, f"/{core}")

        return run

    @app_commands.command(name=text("discord.cmd.upgrade"), description=text("help.upgrade"))
    @app_commands.rename(plan=text("discord.opt.plan"))
    @app_commands.describe(plan=text("discord.opt.plan.desc"))
    @app_commands.choices(plan=PLAN_CHOICES)
    async def upgrade(interaction: Interaction, plan: str | None = None) -> None:
        await runner.run_text(interaction, core_text("upgrade", *([plan] if plan else [])))

    @app_commands.command(name=text("discord.cmd.settings"), description=text("help.settings"))
    @app_commands.rename(hour=text("discord.opt.hour"))
    @app_commands.describe(hour=text("discord.opt.hour.desc"))
    async def settings(
        interaction: Interaction, hour: app_commands.Range[int, 0, 23] | None = None
    ) -> None:
        args = ["hour", str(hour)] if hour is not None else []
        await runner.run_text(interaction, core_text("settings", *args))

    @app_commands.command(name=text("discord.cmd.language"), description=text("help.language"))
    @app_commands.rename(language=text("discord.opt.language"))
    @app_commands.describe(language=text("discord.opt.language.desc"))
    @app_commands.choices(language=LANGUAGE_CHOICES)
    async def language(interaction: Interaction, language: str | None = None) -> None:
        await runner.run_text(interaction, core_text("language", *([language] if language else [])))

    @app_commands.command(name=text("discord.cmd.link"), description=text("help.link"))
    @app_commands.rename(code=text("discord.opt.code"))
    @app_commands.describe(code=text("discord.opt.code.desc"))
    async def link(
        interaction: Interaction, code: app_commands.Range[str, 1, 64] | None = None
    ) -> None:
        await runner.run_text(interaction, core_text("link", *([code] if code else [])))

    @app_commands.command(name=text("discord.cmd.help"), description=text("help.help"))
    @app_commands.rename(topic=text("discord.opt.topic"))
    @app_commands.describe(topic=text("discord.opt.topic.desc"))
    @app_commands.choices(topic=HELP_TOPIC_CHOICES)
    async def help_(interaction: Interaction, topic: str | None = None) -> None:
        await runner.run_text(interaction, core_text("help", *([topic] if topic else [])))

    return [
        simple("plan"),
        upgrade,
        simple("billing"),
        simple("panic"),
        settings,
        language,
        link,
        help_,
    ]


BACKTEST_PERIOD_CHOICES = [
    app_commands.Choice(
        name=texts({lang: translate(lang, "backtest.days", days=d) for lang in languages.tags()}),
        value=d,
    )
    for d in BACKTEST_PERIODS
]


def _backtest_command(runner: CommandRunner) -> app_commands.Command[Any, Any, Any]:
    @app_commands.command(name=text("discord.cmd.backtest"), description=text("help.backtest"))
    @app_commands.rename(
        target=text("discord.opt.target"),
        pair=text("discord.opt.pair"),
        period=text("discord.opt.days"),
        parameters=text("discord.opt.parameters"),
    )
    @app_commands.describe(
        target=text("discord.opt.target.desc"),
        pair=text("discord.opt.pair.desc"),
        period=text("discord.opt.days.desc"),
        parameters=text("discord.opt.parameters.desc"),
    )
    @app_commands.choices(period=BACKTEST_PERIOD_CHOICES)
    async def backtest(
        interaction: Interaction,
        target: app_commands.Range[str, 1, 64] | None = None,
        pair: app_commands.Range[str, 1, 32] | None = None,
        period: int | None = None,
        parameters: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        """Guided with buttons for what is not given (as /backtest takes it)."""
        if target is None:
            await runner.run_text(interaction, "/backtest")
            return
        args = [target, *([pair] if pair else []), *([f"{period}d"] if period else [])]
        extra = " ".join(shlex.quote(word) for word in (parameters or "").split())
        await runner.run_text(interaction, f"{core_text('backtest', *args)} {extra}".rstrip())

    return backtest


def _community_commands(runner: CommandRunner) -> list[app_commands.Group]:
    community = app_commands.Group(
        name=text("discord.cmd.community"),
        description=text("discord.cmd.community.desc"),
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    @community.command(
        name=text("discord.cmd.community.channel"),
        description=text("discord.cmd.community.channel.desc"),
    )
    @app_commands.rename(channel=text("discord.opt.channel"))
    @app_commands.describe(channel=text("discord.opt.channel.desc"))
    async def channel(interaction: Interaction, channel: discord.TextChannel) -> None:
        handler = partial(
            set_channel,
            community_id=str(interaction.guild_id or ""),
            channel_id=str(channel.id),
            # Discord already hides the command from members; the use case checks again.
            can_manage=interaction.permissions.manage_guild,
        )
        await runner.run_work(interaction, "community:channel", handler)

    @community.command(
        name=text("discord.cmd.community.leaderboard"),
        description=text("discord.cmd.community.leaderboard.desc"),
    )
    @app_commands.rename(period=text("discord.opt.period"))
    @app_commands.describe(period=text("discord.opt.period.desc"))
    @app_commands.choices(period=PERIOD_CHOICES)
    async def leaderboard(interaction: Interaction, period: int = 7) -> None:
        handler = partial(
            show_leaderboard,
            community_id=str(interaction.guild_id or ""),
            days=period,
            language=str(interaction.guild_locale or interaction.locale),
        )
        await runner.run_work(interaction, "community:leaderboard", handler, public=True)

    sharing = app_commands.Group(
        name=text("discord.cmd.share"), description=text("discord.cmd.share.desc"), guild_only=True
    )

    def toggle(on: bool) -> None:
        key = "on" if on else "off"

        @sharing.command(
            name=text(f"discord.cmd.share.{key}"), description=text(f"discord.cmd.share.{key}.desc")
        )
        async def run(interaction: Interaction) -> None:
            handler = partial(
                share,
                community_id=str(interaction.guild_id or ""),
                platform_user_id=str(interaction.user.id),
                on=on,
            )
            await runner.run_work(interaction, f"community:share_{key}", handler)

    toggle(True)
    toggle(False)
    return [community, sharing]


def _notify_group(runner: CommandRunner) -> app_commands.Group:
    """Where the user's notifications go: DMs, or a channel of a server they picked."""
    group = app_commands.Group(
        name=text("discord.cmd.notify"), description=text("discord.cmd.notify.desc")
    )

    @group.command(
        name=text("discord.cmd.notify.show"), description=text("discord.cmd.notify.show.desc")
    )
    async def show(interaction: Interaction) -> None:
        await runner.run_work(interaction, "notify:show", show_target)

    @group.command(
        name=text("discord.cmd.notify.channel"),
        description=text("discord.cmd.notify.channel.desc"),
    )
    @app_commands.rename(channel=text("discord.opt.channel"))
    @app_commands.describe(channel=text("discord.opt.notify_channel.desc"))
    async def channel(interaction: Interaction, channel: discord.TextChannel) -> None:
        user_can_post, bot_can_post = channel_access(channel, interaction.user)
        handler = partial(
            pick_channel,
            channel_id=str(channel.id),
            guild_id=str(interaction.guild_id or ""),
            user_can_post=user_can_post,
            bot_can_post=bot_can_post,
        )
        await runner.run_work(interaction, "notify:channel", handler)

    @group.command(
        name=text("discord.cmd.notify.dm"), description=text("discord.cmd.notify.dm.desc")
    )
    async def dm(interaction: Interaction) -> None:
        await runner.run_work(interaction, "notify:dm", back_to_dm)

    return group


def _plain_command(runner: CommandRunner, command: Command) -> app_commands.Command[Any, Any, Any]:
    """``/name [arguments]`` for a core command without a slash command designed for it."""
    key = f"discord.cmd.{command.name}"
    name = text(key) if key in catalog(DEFAULT_LANGUAGE) else command.name
    core = command.name
    if not command.args:

        @app_commands.command(name=name, description=text(command.help_key))
        async def bare(interaction: Interaction) -> None:
            await runner.run_text(interaction, f"/{core}")

        return bare

    @app_commands.command(name=name, description=text(command.help_key))
    @app_commands.rename(arguments=text("discord.opt.arguments"))
    @app_commands.describe(arguments=text("discord.opt.arguments.desc"))
    async def with_arguments(
        interaction: Interaction, arguments: app_commands.Range[str, 1, 200] | None = None
    ) -> None:
        await runner.run_text(interaction, f"/{core} {arguments or ''}".rstrip())

    return with_arguments


def slash_commands(
    runner: CommandRunner,
) -> list[app_commands.Group | app_commands.Command[Any, Any, Any]]:
    """Every slash command of the product, wired to ``runner``.

    A core command added later without a slash command designed for it still
    gets a plain one, so nothing the product can do is missing on Discord.
    """
    designed: list[app_commands.Group | app_commands.Command[Any, Any, Any]] = [
        _bot_group(runner),
        _exchange_group(runner),
        _portfolio_group(runner),
        *_account_commands(runner),
        _backtest_command(runner),
        *_community_commands(runner),
        _notify_group(runner),
    ]
    plain = [
        _plain_command(runner, command)
        for command in COMMANDS.values()
        if slash_path(command.name) == (command.name,) and command.name not in SLASH_PATHS
    ]
    return designed + plain
