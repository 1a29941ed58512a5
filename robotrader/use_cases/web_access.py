"""Access from outside the chat: personal API tokens (REST API) and dashboard logins.

Tokens and session cookies are random, shown to their owner once and stored
only as SHA-256 hashes, found again by the unique hash column (an index lookup
of a hash leaks nothing useful about the secret through timing).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiToken, AuditEntry, ChatIdentity, Plan, User, WebSession
from db.types import utcnow
from robotrader import languages
from robotrader.app import App
from robotrader.errors import UserError
from robotrader.plans import limits_in_force, plan_in_force
from robotrader.public_links import public_url
from robotrader.use_cases import one_time_codes

TOKEN_PREFIX = "rt_"  # noqa: S105 - a marker that tells our tokens apart, not a secret
PREFIX_LENGTH = 10  # "rt_" and 7 characters: enough to tell a user's tokens apart
MAX_ACTIVE_TOKENS = 10
# last_used_at is written at most this often, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
DASHBOARD_LINK_TTL = timedelta(minutes=10)
DASHBOARD_CODE_LENGTH = 32  # 32 characters of a 32-letter alphabet: 160 bits
SESSION_TTL = timedelta(hours=12)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def _user_language(session: AsyncSession, user: User) -> str:
    if user.language:
        return user.language
    client = await session.scalar(
        select(ChatIdentity.client_language)
        .where(ChatIdentity.user_id == user.id, ChatIdentity.client_language.is_not(None))
        .order_by(ChatIdentity.id)
        .limit(1)
    )
    return languages.from_client(client)


def _require_rest_api(app: App, user: User) -> None:
    if not limits_in_force(app.settings, user.plan).rest_api:
        raise UserError("rest_api_not_in_plan", plan=str(user.plan))


# --- personal API tokens -------------------------------------------------------------------


@dataclass(frozen=True)
class NewApiToken:
    token: str  # shown to the user once, never stored
    prefix: str
    created_at: datetime


@dataclass(frozen=True)
class ApiTokenInfo:
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class ApiUser:
    """Who a valid token belongs to."""

    user_id: int
    plan: Plan
    language: str


async def create_api_token(app: App, user_id: int) -> NewApiToken:
    """A new personal API token (Premium only). The caller shows it once; we keep its hash."""
    async with app.database.transaction() as session:
        user = await session.get(User, user_id, with_for_update=True)
        assert user is not None
        _require_rest_api(app, user)
        active = await session.scalar(
            select(func.count())
            .select_from(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        )
        if (active or 0) >= MAX_ACTIVE_TOKENS:
            raise UserError("too_many_tokens", maximum=MAX_ACTIVE_TOKENS)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiToken(user_id=user_id, token_hash=_sha256(token), prefix=token[:PREFIX_LENGTH])
        session.add(row)
        await session.flush()
        session.add(
            AuditEntry(
                user_id=user_id, platform="api", action="api_token.create",
                detail={"prefix": row.prefix},
            )
        )  # fmt: skip
        return NewApiToken(token, row.prefix, row.created_at)


async def list_api_tokens(app: App, user_id: int) -> list[ApiTokenInfo]:
    """The user's tokens that still work, oldest first (prefixes only: the rest is not stored).

    Open to every plan: a user who left Premium can still see what to revoke.
    """
    async with app.database.sessions() as session:
        rows = await session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.id)
        )
        return [ApiTokenInfo(r.prefix, r.created_at, r.last_used_at) for r in rows]


async def revoke_api_tokens(app: App, user_id: int) -> int:
    """Revoke every token of the user at once; returns how many were active.

    Open to every plan: revoking must never depend on paying.
    """
    async with app.database.transaction() as session:
        result = await session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        count = int(getattr(result, "rowcount", 0) or 0)
        session.add(
            AuditEntry(
                user_id=user_id, platform="api", action="api_token.revoke_all",
                detail={"count": count},
            )
        )  # fmt: skip
        return count


async def authenticate_api_token(app: App, token: str) -> ApiUser:
    """The owner of a valid, unrevoked token whose plan includes the REST API.

    Raises UserError ``api_token_invalid`` (unknown or revoked) or
    ``rest_api_not_in_plan`` (the owner left Premium; the token works again after
    an upgrade).
    """
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        raise UserError("api_token_invalid")
    async with app.database.transaction() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == _sha256(token)))
        if row is None or row.revoked_at is not None:
            raise UserError("api_token_invalid")
        user = await session.get(User, row.user_id)
        assert user is not None
        _require_rest_api(app, user)
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            row.last_used_at = now
        return ApiUser(
            user.id, plan_in_force(app.settings, user.plan), await _user_language(session, user)
        )


# --- dashboard logins -----------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardLogin:
    """A fresh dashboard session: the cookie's token (shown once) and its CSRF token."""

    session_token: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class DashboardUser:
    """Who an open dashboard session belongs to."""

    user_id: int
    plan: Plan  # the plan in force (robotrader/plans.py)
    language: str
    csrf_token: str
    plans_apply: bool  # False: this server sells no plans (no Stripe), every feature is on


async def issue_dashboard_link(app: App, user_id: int) -> str:
    """A single-use login link to the dashboard, valid for ten minutes."""
    code = one_time_codes.new_code(DASHBOARD_CODE_LENGTH)
    async with app.database.transaction() as session:
        await one_time_codes.issue(session, user_id, "dashboard", ttl=DASHBOARD_LINK_TTL, code=code)
    return public_url(app.settings, f"/dashboard/login/{code}")


async def redeem_dashboard_link(app: App, code: str) -> DashboardLogin:
    """Open a dashboard session with a login link's code (once; within ten minutes)."""
    if not 0 < len(code) <= 64:
        raise UserError("dashboard_link_invalid")
    async with app.database.transaction() as session:
        row = await one_time_codes.consume(session, "dashboard", code)
        if row is None:
            raise UserError("dashboard_link_invalid")
        now = utcnow()
        await session.execute(
            delete(WebSession).where(WebSession.user_id == row.user_id, WebSession.expires_at < now)
        )
        token = secrets.token_urlsafe(32)
        login = DashboardLogin(token, secrets.token_urlsafe(32), now + SESSION_TTL)
        session.add(
            WebSession(
                user_id=row.user_id, token_hash=_sha256(token), csrf_token=login.csrf_token,
                expires_at=login.expires_at,
            )
        )  # fmt: skip
        session.add(AuditEntry(user_id=row.user_id, platform="web", action="dashboard.login"))
        return login


async def dashboard_user(app: App, session_token: str) -> DashboardUser | None:
    """The user of an open session; None when the token is unknown or the session expired."""
    if not 0 < len(session_token) <= 128:
        return None
    async with app.database.sessions() as session:
        row = await session.scalar(
            select(WebSession).where(WebSession.token_hash == _sha256(session_token))
        )
        if row is None or row.expires_at <= utcnow():
            return None
        user = await session.get(User, row.user_id)
        if user is None:
            return None
        return DashboardUser(
            user.id, plan_in_force(app.settings, user.plan), await _user_language(session, user),
            row.csrf_token, plans_apply=app.settings.billing_enabled,
        )  # fmt: skip


async def end_dashboard_session(app: App, session_token: str) -> None:
    """Log out: the session is deleted, the cookie no longer opens anything."""
    async with app.database.transaction() as session:
        await session.execute(
            delete(WebSession).where(WebSession.token_hash == _sha256(session_token))
        )
