"""Exchange API keys: connect (validated, encrypted), list, disconnect."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from billing.plans import LimitReached, check_exchange_allowed
from db.credential_secrets import CredentialSecrets, seal
from db.models import (
    AuditEntry,
    Bot,
    BotMode,
    BotStatus,
    CredentialStatus,
    ExchangeCredential,
    User,
)
from db.models.credentials import new_credential_id
from db.notifications import ExchangeConnectedNotice
from db.outbox import add_notification
from db.types import utcnow
from engine.exchanges.catalog import EXCHANGES, ExchangeSpec, exchange_spec
from engine.exchanges.errors import (
    ExchangeAuthError,
    ExchangeUnavailable,
    KeyAllowsWithdrawals,
    KeyPermissionsUnknown,
)
from engine.exchanges.key_check import check_key
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.logging_setup import redact
from robotrader.plans import limits_in_force
from robotrader.use_cases.usage import plan_usage


@dataclass(frozen=True)
class ConnectedExchange:
    exchange: str
    title: str
    label: str
    permissions: dict[str, Any]
    validated_at: datetime | None
    status: CredentialStatus
    # The addresses our requests leave from (EGRESS_IPS): the key can be restricted to them.
    egress_ips: tuple[str, ...] = ()


MAX_SECRET_LENGTH = 512


def valid_secret(value: str) -> bool:
    """Exchange keys are printable ASCII: anything else would only break the signed request."""
    return (
        0 < len(value) <= MAX_SECRET_LENGTH
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


# What an exchange's name looks like. Anything else is not repeated in the refusal: where a
# name is asked beside an API key, what was typed there may be the key (or its secret).
EXCHANGE_NAME = re.compile(r"[A-Za-z][A-Za-z.\-]{0,11}")


def supported_exchange(name: str) -> ExchangeSpec:
    spec = exchange_spec(name)
    if spec is None:
        typed = name.strip()
        raise UserError(
            "unknown_exchange",
            exchange=typed if EXCHANGE_NAME.fullmatch(typed) else "…",
            choices=", ".join(EXCHANGES),
        )
    return spec


async def connect_exchange(
    app: App,
    user_id: int,
    exchange: str,
    secrets: CredentialSecrets,
    *,
    label: str = "default",
    tell_chat: bool = False,
) -> ConnectedExchange:
    """Validate a key with a real call, refuse keys that may withdraw, store it encrypted.

    Connecting the same exchange and label again replaces the stored key. Every way of
    handing over a key (chat dialog, Discord modal, web form) ends here, so each is
    checked alike. ``tell_chat``: the key came from outside the chat (the web form),
    so the chat is told through the outbox, in the transaction that stores the key.
    """
    spec = supported_exchange(exchange)
    redact(secrets.api_key.get_secret_value(), secrets.secret.get_secret_value(),
           secrets.passphrase.get_secret_value() if secrets.passphrase else None)  # fmt: skip
    given = (secrets.api_key, secrets.secret, secrets.passphrase)
    if not all(valid_secret(value.get_secret_value()) for value in given if value is not None):
        raise UserError("key_malformed")
    if spec.needs_passphrase and secrets.passphrase is None:
        raise UserError("passphrase_required", exchange=spec.title)
    async with app.database.sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        usage = await plan_usage(session, user_id)
        has_exchange = await session.scalar(
            select(func.count()).where(
                ExchangeCredential.user_id == user_id, ExchangeCredential.exchange == spec.id
            )
        )
        try:
            check_exchange_allowed(
                limits_in_force(app.settings, user.plan), usage,
                is_new_exchange=not has_exchange,
            )  # fmt: skip
        except LimitReached as exc:
            raise UserError("limit_reached", limit=exc.limit, plan=str(exc.plan),
                            maximum=exc.maximum, current=exc.current) from None  # fmt: skip
    try:
        permissions = await check_key(app.pool, spec.id, secrets)
    except KeyAllowsWithdrawals:
        raise UserError(
            "key_allows_withdrawals", exchange=spec.title, help_url=spec.key_help_url
        ) from None
    except KeyPermissionsUnknown:
        raise UserError(
            "key_permissions_unknown", exchange=spec.title, help_url=spec.key_help_url
        ) from None
    except ExchangeAuthError:
        raise UserError("key_refused", exchange=spec.title) from None
    except ExchangeUnavailable:
        raise UserError("exchange_unavailable", exchange=spec.title) from None
    async with app.database.transaction() as session:
        existing = await session.scalar(
            select(ExchangeCredential)
            .where(
                ExchangeCredential.user_id == user_id,
                ExchangeCredential.exchange == spec.id,
                ExchangeCredential.label == label,
            )
            .with_for_update()
        )
        credential = existing or ExchangeCredential(
            id=new_credential_id(), user_id=user_id, exchange=spec.id, label=label
        )
        seal(app.vault, credential, secrets)
        credential.permissions = permissions.as_dict()
        validated_at = credential.validated_at = utcnow()
        credential.status = CredentialStatus.ACTIVE
        if existing is None:
            session.add(credential)
        session.add(AuditEntry(user_id=user_id, platform="web" if tell_chat else "api",
                               action="exchange.connect",
                               detail={"exchange": spec.id, "label": label}))  # fmt: skip
        if tell_chat:
            await add_notification(
                session,
                user_id=user_id,
                notice=ExchangeConnectedNotice(
                    exchange=spec.id,
                    title=spec.title,
                    trade=credential.permissions.get("trade"),
                    withdraw=credential.permissions.get("withdraw"),
                    egress_ips=tuple(app.settings.egress_ips),
                ),
                # One notice per stored key: a key connected again is a new fact.
                dedupe_key=f"exchange_connected:{credential.id}:{validated_at.isoformat()}",
            )
        return ConnectedExchange(spec.id, spec.title, label, credential.permissions,
                                 credential.validated_at, credential.status,
                                 tuple(app.settings.egress_ips))  # fmt: skip


async def list_exchanges(app: App, user_id: int) -> list[ConnectedExchange]:
    async with app.database.sessions() as session:
        rows = await session.scalars(
            select(ExchangeCredential)
            .where(ExchangeCredential.user_id == user_id)
            .order_by(ExchangeCredential.exchange, ExchangeCredential.label)
        )
        return [
            ConnectedExchange(c.exchange, EXCHANGES[c.exchange].title if c.exchange in EXCHANGES
                              else c.exchange, c.label, c.permissions, c.validated_at, c.status)
            for c in rows
        ]  # fmt: skip


async def disconnect_exchange(
    app: App, user_id: int, exchange: str, *, label: str | None = None
) -> int:
    """Forget the key(s) of an exchange; live bots on it are paused. Returns keys removed."""
    spec = supported_exchange(exchange)
    async with app.database.transaction() as session:
        query = select(ExchangeCredential).where(
            ExchangeCredential.user_id == user_id, ExchangeCredential.exchange == spec.id
        )
        if label:
            query = query.where(ExchangeCredential.label == label)
        credentials = (await session.scalars(query)).all()
        if not credentials:
            raise UserError("exchange_not_connected", exchange=spec.title)
        await session.execute(
            update(Bot)
            .where(
                Bot.user_id == user_id, Bot.is_active, Bot.exchange == spec.id,
                Bot.mode == BotMode.LIVE,
                Bot.status == BotStatus.RUNNING,
            )
            .values(status=BotStatus.PAUSED, pause_reason="exchange_disconnected")
        )  # fmt: skip
        for credential in credentials:
            await session.delete(credential)
        session.add(AuditEntry(user_id=user_id, platform="api", action="exchange.disconnect",
                               detail={"exchange": spec.id}))  # fmt: skip
        return len(credentials)
