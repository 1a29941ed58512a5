"""The key vault: AES-256-GCM for exchange secrets, bound to their owner and row.

Ciphertext layout: ``b"RT1" | key id (8 ASCII chars) | nonce (12 bytes) | ciphertext+tag``.
The associated data names the user, the credential row and the field, so a
ciphertext copied to another row or field fails to decrypt. The key id says
which master key wrote it, so ``robotrader rotate-key`` can re-encrypt rows
while every process still reads both the old and the new key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

MAGIC = b"RT1"
KEY_ID_LENGTH = 8
NONCE_LENGTH = 12


class VaultError(Exception):
    """A secret could not be decrypted; the message never contains secret material."""


def generate_master_key() -> str:
    """A new random master key, base64 of 32 bytes."""
    return base64.b64encode(os.urandom(32)).decode("ascii")


def _decode_key(encoded: str) -> bytes:
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VaultError("master key is not valid base64") from exc
    if len(raw) != 32:
        raise VaultError(f"master key must be 32 bytes, got {len(raw)}")
    return raw


def key_id_of(raw_key: bytes) -> str:
    """A short public fingerprint of a master key (not reversible)."""
    return hashlib.sha256(b"robotrader-key-id:" + raw_key).hexdigest()[:KEY_ID_LENGTH]


@dataclass(frozen=True)
class SecretBinding:
    """What a ciphertext is bound to: the owner, the credential row and the field name."""

    user_id: int
    credential_id: str
    field: str

    def associated_data(self) -> bytes:
        return f"robotrader/credential/{self.user_id}/{self.credential_id}/{self.field}".encode()


class Vault:
    """Encrypts under the current master key; decrypts under any key it holds."""

    def __init__(
        self,
        current: SecretStr,
        retired: list[SecretStr] | None = None,
        *,
        on_decrypt: Callable[[str], None] | None = None,
    ) -> None:
        # Told every plaintext this vault reveals: the process's log redactor, so a
        # worker or the web app never logs a key it decrypted (db/ imports no logging).
        self.on_decrypt = on_decrypt
        current_raw = _decode_key(current.get_secret_value())
        self.current_key_id = key_id_of(current_raw)
        self._keys: dict[str, AESGCM] = {self.current_key_id: AESGCM(current_raw)}
        for old in retired or []:
            raw = _decode_key(old.get_secret_value())
            self._keys.setdefault(key_id_of(raw), AESGCM(raw))

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def encrypt(self, plaintext: SecretStr, binding: SecretBinding) -> bytes:
        nonce = os.urandom(NONCE_LENGTH)
        sealed = self._keys[self.current_key_id].encrypt(
            nonce, plaintext.get_secret_value().encode("utf-8"), binding.associated_data()
        )
        return MAGIC + self.current_key_id.encode("ascii") + nonce + sealed

    def decrypt(self, blob: bytes, binding: SecretBinding) -> SecretStr:
        key_id = self.key_id_of_ciphertext(blob)
        aead = self._keys.get(key_id)
        if aead is None:
            raise VaultError(
                f"secret was encrypted with master key {key_id}, which is not configured"
            )
        start = len(MAGIC) + KEY_ID_LENGTH
        nonce, sealed = blob[start : start + NONCE_LENGTH], blob[start + NONCE_LENGTH :]
        try:
            plain = aead.decrypt(nonce, sealed, binding.associated_data())
        except InvalidTag:
            raise VaultError(
                "secret failed authentication: wrong master key or moved to another row"
            ) from None
        revealed = plain.decode("utf-8")
        if self.on_decrypt is not None:
            self.on_decrypt(revealed)
        return SecretStr(revealed)

    def reencrypt(self, blob: bytes, binding: SecretBinding) -> bytes:
        """The same secret under the current key (unchanged if already there)."""
        if self.key_id_of_ciphertext(blob) == self.current_key_id:
            return blob
        return self.encrypt(self.decrypt(blob, binding), binding)

    @staticmethod
    def key_id_of_ciphertext(blob: bytes) -> str:
        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + KEY_ID_LENGTH + NONCE_LENGTH + 16:
            raise VaultError("not a vault ciphertext")
        return blob[len(MAGIC) : len(MAGIC) + KEY_ID_LENGTH].decode("ascii", "replace")
