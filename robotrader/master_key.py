"""Where the vault's master keys come from.

Production reads ``ROBOTRADER_MASTER_KEY`` (and ``ROBOTRADER_OLD_MASTER_KEYS`` during a
rotation) and refuses to start without it. On a developer's machine, with no key
set, a key is generated once into ``<data dir>/master.key`` (mode 0600, git-ignored):
its first line is the current key, any further lines retired keys still read.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path

from pydantic import SecretStr

from db.vault import Vault, generate_master_key
from robotrader.logging_setup import redact
from robotrader.settings import Settings

log = logging.getLogger(__name__)


class MasterKeyMissing(RuntimeError):
    """Production without ``ROBOTRADER_MASTER_KEY``."""


def _private_temp(path: Path, keys: list[str]) -> Path:
    """``keys`` written and synced to a temporary file of this process only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(keys) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def _write_key_file(path: Path, keys: list[str]) -> None:
    """Replace the key file (rotation: one process, on purpose)."""
    tmp = _private_temp(path, keys)
    os.replace(tmp, path)
    path.chmod(0o600)


def _create_key_file(path: Path, keys: list[str]) -> bool:
    """Create the key file unless it exists; True if this call created it.

    Several processes may start at once on a fresh data dir: exactly one must win and
    all must then use its key. The file appears complete or not at all: written to a
    private temporary file, then hard-linked into place, which like ``O_EXCL`` fails
    when the name exists. Where hard links are not supported, ``O_EXCL`` on the name
    itself, and readers wait for the first line (``_read_key_file``).
    """
    tmp = _private_temp(path, keys)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(keys) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _read_key_file(path: Path) -> list[str]:
    # A key file created by O_EXCL (no hard links) may be read before its writer has
    # written it: wait a little for the complete first line rather than read nothing.
    for _ in range(100):
        text = path.read_text()
        if text.endswith("\n"):
            break
        time.sleep(0.02)
    keys = [line.strip() for line in text.splitlines() if line.strip()]
    if not keys:
        raise RuntimeError(f"the development key file {path} is empty: delete it to start over")
    return keys


def master_keys(settings: Settings) -> tuple[SecretStr, list[SecretStr]]:
    """(current, retired) master keys; generates the development key file if needed."""
    if settings.master_key is not None:
        return settings.master_key, list(settings.old_master_keys)
    if settings.is_production:
        raise MasterKeyMissing(
            "ROBOTRADER_MASTER_KEY is not set; production refuses to start without it. "
            "Generate one with `robotrader generate-key` and keep it in your secret store."
        )
    path = settings.master_key_file
    if not path.exists() and _create_key_file(path, [generate_master_key()]):
        log.warning("master_key.generated path=%s (development only; back it up)", path)
    keys = _read_key_file(path)  # ours, or the one a process started at the same time made
    return SecretStr(keys[0]), [SecretStr(k) for k in keys[1:]] + list(settings.old_master_keys)


def load_vault(settings: Settings) -> Vault:
    current, retired = master_keys(settings)
    # Every process that decrypts keys (chat, web, workers) loads its vault here.
    return Vault(current, retired, on_decrypt=redact)


def rotate_development_key(settings: Settings) -> Vault:
    """Make a new current key in the key file, keeping the old ones as retired."""
    path = settings.master_key_file
    old = _read_key_file(path) if path.exists() else []
    _write_key_file(path, [generate_master_key(), *old])
    return load_vault(settings)
