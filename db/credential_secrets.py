"""Sealing and opening an ExchangeCredential's three secrets with the vault."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ExchangeCredential
from db.session import Database
from db.vault import SecretBinding, Vault

FIELDS = ("api_key", "secret", "passphrase")


@dataclass(frozen=True)
class CredentialSecrets:
    api_key: SecretStr
    secret: SecretStr
    passphrase: SecretStr | None = None


def _binding(credential: ExchangeCredential, field: str) -> SecretBinding:
    return SecretBinding(user_id=credential.user_id, credential_id=credential.id, field=field)


def seal(vault: Vault, credential: ExchangeCredential, secrets: CredentialSecrets) -> None:
    """Encrypt ``secrets`` into ``credential`` (its id and user_id must be set)."""
    assert credential.id and credential.user_id, "bind to a row with an id and an owner"
    credential.api_key_enc = vault.encrypt(secrets.api_key, _binding(credential, "api_key"))
    credential.secret_enc = vault.encrypt(secrets.secret, _binding(credential, "secret"))
    credential.passphrase_enc = (
        vault.encrypt(secrets.passphrase, _binding(credential, "passphrase"))
        if secrets.passphrase is not None
        else None
    )
    credential.key_id = vault.current_key_id


def unseal(vault: Vault, credential: ExchangeCredential) -> CredentialSecrets:
    """Decrypt a credential's secrets; raises VaultError if they were tampered with or moved."""
    return CredentialSecrets(
        api_key=vault.decrypt(credential.api_key_enc, _binding(credential, "api_key")),
        secret=vault.decrypt(credential.secret_enc, _binding(credential, "secret")),
        passphrase=(
            vault.decrypt(credential.passphrase_enc, _binding(credential, "passphrase"))
            if credential.passphrase_enc is not None
            else None
        ),
    )


async def _reseal_one(session: AsyncSession, vault: Vault, credential_id: str) -> bool:
    credential = await session.get(ExchangeCredential, credential_id, with_for_update=True)
    if credential is None or credential.key_id == vault.current_key_id:
        return False
    credential.api_key_enc = vault.reencrypt(
        credential.api_key_enc, _binding(credential, "api_key")
    )
    credential.secret_enc = vault.reencrypt(credential.secret_enc, _binding(credential, "secret"))
    if credential.passphrase_enc is not None:
        credential.passphrase_enc = vault.reencrypt(
            credential.passphrase_enc, _binding(credential, "passphrase")
        )
    credential.key_id = vault.current_key_id
    return True


async def rotate_all(database: Database, vault: Vault) -> int:
    """Re-encrypt every credential not yet under the vault's current key.

    One short transaction per row: readers never wait long, and a crash half-way
    leaves every row readable (old rows under the retired key, new under the current).
    """
    async with database.sessions() as session:
        stale = (
            await session.scalars(
                select(ExchangeCredential.id).where(
                    ExchangeCredential.key_id != vault.current_key_id
                )
            )
        ).all()
    rotated = 0
    for credential_id in stale:
        async with database.transaction() as session:
            rotated += await _reseal_one(session, vault, credential_id)
    return rotated
