"""The chat core: one entry point per kind of event, the same for every front end.

A front end turns a platform event into `handle_text` (a message) or
`handle_action` (a button press) and renders the replies. Everything in
between — registration, where a command may run, argument errors, rate limits,
dialogs, secrets posted in public — happens here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import uuid
from collections.abc import Sequence
from functools import partial

import bots.core.commands  # noqa: F401  (importing registers every command)
from bots.core import actions
from bots.core.commands.exchanges import finish_connect
from bots.core.context import ChatContext
from bots.core.dialogs import DialogStore
from bots.core.errors import error_reply
from bots.core.invocation import Invocation
from bots.core.rate_limit import RateLimiter
from bots.core.registry import ACTIONS, COMMANDS, DIALOGS, Handler
from bots.core.replies import Button, Reply
from bots.core.secret_detector import looks_like_secret
from robotrader.app import App
from robotrader.credentials import CredentialSecrets
from robotrader.errors import UserError
from robotrader.i18n import Translator
from robotrader.text import clean_text
from robotrader.use_cases.accounts import Account, register

log = logging.getLogger(__name__)

# Dialogs whose every answer is a secret: the message is deleted before it is read.
SECRET_DIALOGS = frozenset({"connect"})


def split_arguments(text: str) -> list[str]:
    """Words, honouring quotes; an unbalanced quote falls back to plain spaces."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def parse_command(text: str) -> tuple[str, str] | None:
    """``/cmd@botname rest`` -> (``cmd``, ``rest``); None for a plain message."""
    if not text.startswith("/") or len(text) < 2:
        return None
    head, _, rest = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    return name, rest.strip()


class ChatCore:
    def __init__(self, app: App, *, rate_limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.dialogs = DialogStore()
        self.rate_limiter = rate_limiter or RateLimiter()
        self.stopping = asyncio.Event()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def shutdown(self) -> None:
        """The front end is stopping: handlers still waiting for long work stop waiting."""
        self.stopping.set()

    async def wait_idle(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait
        """Wait (at most ``timeout`` seconds) until no handler runs; True if none does."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        return self._idle.is_set()

    async def _account(self, ctx: ChatContext) -> Account:
        return await register(
            self.app,
            ctx.platform,
            ctx.platform_user_id,
            chat_id=ctx.chat_id if ctx.is_private else None,
            display_name=ctx.display_name,
            client_language=ctx.client_language,
        )

    async def _run(self, handler: Handler, inv: Invocation) -> list[Reply]:
        try:
            result = await handler(inv)
        except UserError as exc:
            return [error_reply(inv.t, exc)]
        return result if isinstance(result, list) else [result]

    async def _guarded(
        self, ctx: ChatContext, work: str, run: Handler, inv_args: tuple[list[str], str]
    ) -> list[Reply]:
        """Resolve the account, then run; a bug becomes an apology with a trace id."""
        t = Translator(ctx.client_language)
        self._in_flight += 1
        self._idle.clear()
        try:
            account = await self._account(ctx)
            t = Translator(account.language)
            inv = Invocation(
                self.app, ctx, account, t, inv_args[0], inv_args[1], self.dialogs,
                stopping=self.stopping,
            )  # fmt: skip
            inv.dialog = self.dialogs.get(ctx.identity_key)
            return await self._run(run, inv)
        except Exception:
            trace = uuid.uuid4().hex[:8]
            log.exception("chat.error trace=%s work=%s platform=%s", trace, work, ctx.platform)
            return [Reply.text(t("error.internal", trace=trace))]
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def handle_text(self, ctx: ChatContext, text: str) -> list[Reply]:
        """A message typed by the user (command, dialog answer, or anything else)."""
        text = clean_text(text or "").strip()
        parsed = parse_command(text)
        if not ctx.is_private:
            # A key is a key whether or not a "/command" precedes it (`/connect binance
            # <key>`): only the arguments are looked at, since a bot's @username may
            # itself look random.
            if looks_like_secret(text if parsed is None else parsed[1]):
                return await self._secret_in_public(ctx)
            if parsed is None:
                return []  # ordinary group chatter is none of our business
        if not self.rate_limiter.allow(ctx.identity_key):
            return [Reply.text(Translator(ctx.client_language)("error.rate_limited"))]
        if parsed is None:
            dialog = self.dialogs.get(ctx.identity_key)
            handler = DIALOGS.get(dialog.name) if dialog else None
            if dialog is None or handler is None:
                return await self._guarded(ctx, "hint", _hint, ([], text))
            if dialog.name in SECRET_DIALOGS:
                # Gone from the chat before we even look at it, whatever happens next.
                await ctx.delete_incoming()
            return await self._guarded(ctx, f"dialog:{dialog.name}", handler, ([], text))
        name, rest = parsed
        command = COMMANDS.get(name)
        if command is None:
            return await self._guarded(ctx, "unknown", _unknown_command, ([name], rest))
        if command.private_only and not ctx.is_private:
            return await self._guarded(ctx, "private", _continue_in_private, ([name], rest))
        return await self._guarded(ctx, name, command.handler, (split_arguments(rest), rest))

    async def handle_action(self, ctx: ChatContext, payload: str) -> list[Reply]:
        """A button press; ``payload`` is what the button carried."""
        if not self.rate_limiter.allow(ctx.identity_key):
            return [Reply.text(Translator(ctx.client_language)("error.rate_limited"))]
        decoded = actions.decode(clean_text(payload, max_length=64))
        handler = ACTIONS.get(decoded.verb) if decoded else None
        if decoded is None or handler is None:
            return await self._guarded(ctx, "expired", _expired_button, ([], payload))
        return await self._guarded(
            ctx, f"action:{decoded.verb}", handler, (list(decoded.args), payload)
        )

    async def run(
        self, ctx: ChatContext, work: str, handler: Handler, args: Sequence[str] = ()
    ) -> list[Reply]:
        """Work a front end starts by other means than text or a button (a form, a
        platform-only command), with what every command gets: the rate limit, the
        account, errors in the user's language and an apology with a trace id for bugs.
        """
        if not self.rate_limiter.allow(ctx.identity_key):
            return [Reply.text(Translator(ctx.client_language)("error.rate_limited"))]
        return await self._guarded(ctx, work, handler, (list(args), ""))

    async def connect_with_secrets(
        self, ctx: ChatContext, exchange: str, secrets: CredentialSecrets
    ) -> list[Reply]:
        """Connect a key collected in a private form (Discord's modal), never in a message.

        Answers exactly as the last step of the /connect dialog does.
        """
        handler: Handler = partial(finish_connect, exchange=exchange, secrets=secrets)
        return await self.run(ctx, "connect:form", handler, [exchange])

    async def _secret_in_public(self, ctx: ChatContext) -> list[Reply]:
        t = Translator(ctx.client_language)
        deleted = await ctx.delete_incoming()
        public = t("secret.deleted_public") if deleted else t("secret.seen_public")
        return [
            Reply.text(public, personal=False),
            Reply.text(t("secret.revoke_private"), private=True),
        ]


async def _hint(inv: Invocation) -> Reply:
    return Reply.text(inv.t("hint.use_commands"))


async def _unknown_command(inv: Invocation) -> Reply:
    return Reply.text(inv.t("error.unknown_command", command=inv.args[0][:32]))


async def _expired_button(inv: Invocation) -> Reply:
    return Reply.text(inv.t("error.button_expired"))


async def _continue_in_private(inv: Invocation) -> Reply:
    link = inv.ctx.private_link(inv.args[0])
    buttons = [[Button(inv.t("private.open"), url=link)]] if link else []
    return Reply(
        blocks=Reply.text(inv.t("private.continue")).blocks, buttons=buttons, personal=True
    )
