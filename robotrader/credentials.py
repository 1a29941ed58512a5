"""The secrets a user hands over to connect an exchange, as the front end collects them.

Sealed by the vault (db/credential_secrets.py); front ends build them from here,
since they import robotrader/ only.
"""

from __future__ import annotations

from db.credential_secrets import CredentialSecrets

__all__ = ["CredentialSecrets"]
