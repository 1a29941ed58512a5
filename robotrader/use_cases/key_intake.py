"""The key intake form: exchange API keys handed over on our own web page, not in a chat.

A chat message passes through the platform's servers, deleted or not. So /connect
offers first a private link (single use, ten minutes, like /dashboard's) to a form of
the web app. Opening the link spends it and opens a form session of ten minutes (a
random token in an HttpOnly cookie, kept here only as a hash, and a CSRF token derived
from it); the key posted there goes through `connect_exchange`, exactly as a key typed
in the chat, and the chat is told through the outbox. A refused key leaves the session
open to try again; a stored one closes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import SecretStr

from db.credential_secrets import CredentialSecrets
from db.models import AuditEntry, User
from db.types import utcnow
from engine.exchanges.catalog import EXCHANGES
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.public_links import public_url
from robotrader.use_cases import one_time_codes
from robotrader.use_cases.exchanges import (
    ConnectedExchange,
    connect_exchange,
    supported_exchange,
)
from robotrader.use_cases.web_access import _user_language

KEY_LINK_TTL = timedelta(minutes=10)
KEY_FORM_TTL = timedelta(minutes=10)
CODE_LENGTH = 32  # 32 characters of a 32-letter alphabet: 160 bits
LINK_PURPOSE = "key_link"
FORM_PURPOSE = "key_form"
LINK_PATH = "/connect/open/"


@dataclass(frozen=True)
class ExchangeChoice:
    """An exchange the form offers."""

    id: str
    title: str
    needs_passphrase: bool


def exchange_choices() -> list[ExchangeChoice]:
    return [ExchangeChoice(s.id, s.title, s.needs_passphrase) for s in EXCHANGES.values()]


@dataclass(frozen=True)
class KeyFormSession:
    """A freshly opened form: the cookie's token (shown once) and the page's CSRF token."""

    token: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class KeyFormUser:
    """Who an open form session belongs to."""

    user_id: int
    language: str
    csrf_token: str


def _csrf_of(token: str) -> str:
    # Derived from the cookie's secret, which a cross-site page can neither read nor send
    # along with a forged form of its own; the database keeps neither.
    return hashlib.sha256(b"robotrader/key-form/csrf\0" + token.upper().encode()).hexdigest()


async def issue_key_link(app: App, user_id: int, exchange: str | None = None) -> str:
    """A single-use link to the key form, valid for ten minutes (``exchange`` preselected)."""
    spec = supported_exchange(exchange) if exchange else None
    code = one_time_codes.new_code(CODE_LENGTH)
    async with app.database.transaction() as session:
        await one_time_codes.issue(session, user_id, LINK_PURPOSE, ttl=KEY_LINK_TTL, code=code)
    link = public_url(app.settings, f"{LINK_PATH}{code}")
    return f"{link}?exchange={spec.id}" if spec else link


async def open_key_form(app: App, code: str) -> KeyFormSession:
    """Spend a link's code (once, within ten minutes) and open a form session."""
    if not 0 < len(code) <= 64:
        raise UserError("key_link_invalid")
    token = one_time_codes.new_code(CODE_LENGTH)
    async with app.database.transaction() as session:
        row = await one_time_codes.consume(session, LINK_PURPOSE, code)
        if row is None:
            raise UserError("key_link_invalid")
        await one_time_codes.issue(session, row.user_id, FORM_PURPOSE, ttl=KEY_FORM_TTL, code=token)
        session.add(AuditEntry(user_id=row.user_id, platform="web", action="key_form.open"))
    return KeyFormSession(token, _csrf_of(token), utcnow() + KEY_FORM_TTL)


async def key_form_user(app: App, token: str) -> KeyFormUser | None:
    """The owner of an open form session; None when unknown, used or expired."""
    if not 0 < len(token) <= 64:
        return None
    async with app.database.sessions() as session:
        row = await one_time_codes.peek(session, FORM_PURPOSE, token)
        if row is None:
            return None
        user = await session.get(User, row.user_id)
        if user is None:
            return None
        return KeyFormUser(user.id, await _user_language(session, user), _csrf_of(token))


async def submit_key_form(
    app: App, token: str, exchange: str, api_key: str, secret: str, passphrase: str = ""
) -> ConnectedExchange:
    """Connect the key posted on the form, as the chat would; the chat is told in the outbox.

    Raises the chat's own UserErrors (a malformed or refused key, one that may withdraw,
    the plan's limit...) and ``key_form_expired`` when the session is gone.
    """
    user = await key_form_user(app, token)
    if user is None:
        raise UserError("key_form_expired")
    passphrase = passphrase.strip()
    secrets = CredentialSecrets(
        api_key=SecretStr(api_key.strip()),
        secret=SecretStr(secret.strip()),
        passphrase=SecretStr(passphrase) if passphrase else None,
    )
    connected = await connect_exchange(app, user.user_id, exchange, secrets, tell_chat=True)
    async with app.database.transaction() as session:
        await one_time_codes.consume(session, FORM_PURPOSE, token)  # the form is done
    return connected
