"""The key vault: nothing readable at rest, bound to owner and row, rotatable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text

from db.credential_secrets import CredentialSecrets, rotate_all, seal, unseal
from db.models import Base, ExchangeCredential, User
from db.models.credentials import new_credential_id
from db.session import Database
from db.vault import Vault, VaultError, generate_master_key

FAKE = CredentialSecrets(
    api_key=SecretStr("FAKEKEY-vault-test-AAAA1111"),
    secret=SecretStr("FAKESECRET-vault-test-BBBB2222"),
    passphrase=SecretStr("FAKEPASS-vault-test-CCCC3333"),
)


def _vault() -> Vault:
    return Vault(SecretStr(generate_master_key()))


async def _store(
    database: Database, vault: Vault, secrets: CredentialSecrets = FAKE
) -> tuple[int, str]:
    async with database.transaction() as session:
        user = User()
        session.add(user)
        await session.flush()
        credential = ExchangeCredential(
            id=new_credential_id(), user_id=user.id, exchange="binance", label=f"k{user.id}"
        )
        seal(vault, credential, secrets)
        session.add(credential)
        return user.id, credential.id


async def _load(database: Database, credential_id: str) -> ExchangeCredential:
    async with database.sessions() as session:
        credential = await session.get(ExchangeCredential, credential_id)
    assert credential is not None
    return credential


async def _all_cells_as_text(database: Database) -> str:
    """Every value of every table, as the database returns it."""
    chunks: list[str] = []
    async with database.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value).decode("latin-1"))
                    else:
                        chunks.append(str(value))
    return "\n".join(chunks)


async def test_round_trip(database: Database) -> None:
    vault = _vault()
    _, credential_id = await _store(database, vault)
    opened = unseal(vault, await _load(database, credential_id))
    assert opened.api_key.get_secret_value() == FAKE.api_key.get_secret_value()
    assert opened.secret.get_secret_value() == FAKE.secret.get_secret_value()
    assert opened.passphrase is not None
    assert opened.passphrase.get_secret_value() == FAKE.passphrase.get_secret_value()  # type: ignore[union-attr]
    assert "FAKESECRET" not in repr(opened) and "FAKESECRET" not in str(opened)


async def test_no_plaintext_at_rest(database: Database, database_url: str) -> None:
    vault = _vault()
    await _store(database, vault)
    dump = await _all_cells_as_text(database)
    for secret in (FAKE.api_key, FAKE.secret, FAKE.passphrase):
        assert secret is not None
        assert secret.get_secret_value() not in dump
    if database.is_sqlite:
        path = database_url.split("///", 1)[1]
        async with database.engine.connect() as conn:
            await conn.execute(text("PRAGMA wal_checkpoint(FULL)"))
        raw = Path(path).read_bytes()  # noqa: ASYNC240
        for secret in (FAKE.api_key, FAKE.secret, FAKE.passphrase):
            assert secret is not None
            assert secret.get_secret_value().encode() not in raw


async def test_wrong_master_key_is_a_clear_error(database: Database) -> None:
    _, credential_id = await _store(database, _vault())
    credential = await _load(database, credential_id)
    with pytest.raises(VaultError, match="not configured") as caught:
        unseal(_vault(), credential)
    assert "FAKE" not in str(caught.value)


async def test_ciphertext_moved_to_another_row_fails(database: Database) -> None:
    vault = _vault()
    _, first_id = await _store(database, vault)
    _, second_id = await _store(
        database,
        vault,
        CredentialSecrets(
            api_key=SecretStr("FAKEKEY-other-user"), secret=SecretStr("FAKESECRET-other-user")
        ),
    )
    async with database.transaction() as session:
        first = await session.get(ExchangeCredential, first_id)
        second = await session.get(ExchangeCredential, second_id)
        assert first is not None and second is not None
        second.secret_enc = first.secret_enc  # an attacker with DB access swaps rows
    with pytest.raises(VaultError, match="moved to another row"):
        unseal(vault, await _load(database, second_id))


async def test_fields_cannot_be_swapped_within_a_row(database: Database) -> None:
    vault = _vault()
    _, credential_id = await _store(database, vault)
    async with database.transaction() as session:
        credential = await session.get(ExchangeCredential, credential_id)
        assert credential is not None
        credential.api_key_enc, credential.secret_enc = (
            credential.secret_enc,
            credential.api_key_enc,
        )
    with pytest.raises(VaultError):
        unseal(vault, await _load(database, credential_id))


async def test_rotation_keeps_every_secret_readable(database: Database) -> None:
    old = SecretStr(generate_master_key())
    new = SecretStr(generate_master_key())
    before = Vault(old)
    ids = [(await _store(database, before))[1] for _ in range(3)]

    during = Vault(new, retired=[old])  # processes restarted with both keys
    assert await rotate_all(database, during) == 3
    assert await rotate_all(database, during) == 0  # idempotent

    after = Vault(new)  # the old key is gone for good
    for credential_id in ids:
        credential = await _load(database, credential_id)
        assert credential.key_id == after.current_key_id
        assert unseal(after, credential).secret.get_secret_value() == FAKE.secret.get_secret_value()
        with pytest.raises(VaultError):
            unseal(before, credential)


def test_bad_master_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(VaultError, match="32 bytes") as caught:
        Vault(SecretStr("c2hvcnQ="))
    assert "c2hvcnQ" not in str(caught.value)
    with pytest.raises(VaultError, match="base64"):
        Vault(SecretStr("not base64 !!"))
