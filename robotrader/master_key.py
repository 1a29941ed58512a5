"""Where the vault's master keys come from.

Production reads ``ROBOTRADER_MASTER_KEY`` (and ``ROBOTRADER_OLD_MASTER_KEYS`` during a
rotation) and refuses to start without it. On a developer's machine, with no key
set, a key is generated once into ``<data dir>/master.key`` (mode 0600, git-ignored):
its first line is the current key, any further lines retired keys still read.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import SecretStr

from db.vault import Vault, generate_master_key
from robotrader.settings import Settings

log = logging.getLogger(__name__)


class MasterKeyMissing(RuntimeError):
    """Production without ``ROBOTRADER_MASTER_KEY``."""


def _write_key_file(path: Path, keys: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(keys) + "\n")
    os.replace(tmp, path)
    path.chmod(0o600)


def _read_key_file(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


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
    if not path.exists():
        _write_key_file(path, [generate_master_key()])
        log.warning("master_key.generated path=%s (development only; back it up)", path)
    keys = _read_key_file(path)
    return SecretStr(keys[0]), [SecretStr(k) for k in keys[1:]] + list(settings.old_master_keys)


def load_vault(settings: Settings) -> Vault:
    current, retired = master_keys(settings)
    return Vault(current, retired)


def rotate_development_key(settings: Settings) -> Vault:
    """Make a new current key in the key file, keeping the old ones as retired."""
    path = settings.master_key_file
    old = _read_key_file(path) if path.exists() else []
    _write_key_file(path, [generate_master_key(), *old])
    return load_vault(settings)
