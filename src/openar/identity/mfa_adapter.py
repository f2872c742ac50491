"""allauth.mfa's adapter, with the secrets it stores encrypted (``settings.MFA_ADAPTER``).

allauth keeps the TOTP secret (``Authenticator.data["secret"]``) and the seed every recovery
code is derived from (``data["seed"]``, and ``data["migrated_codes"]`` for codes imported
from an older library) in the database, and passes each through the adapter's ``encrypt`` /
``decrypt`` hooks, which by default do nothing. Anyone who could read the table could then
compute every code. Here they go through ``openar.core.crypto``: encrypted at rest under
``OPENAR_ENCRYPTION_KEYS``, and plaintext rows from before keep working until migration
``identity.0004_encrypt_mfa_secrets`` (or ``openar manage encryption_rotate``) encrypts them.

WebAuthn authenticators store only the public key of the credential: nothing to hide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from allauth.mfa.adapter import DefaultMFAAdapter

from openar.core.crypto import decrypt_text, encrypt_text

# Which values of ``Authenticator.data`` allauth passes through encrypt/decrypt, by type: a
# single string, or a list of them.
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "totp": ("secret",),
    "recovery_codes": ("seed", "migrated_codes"),
}


class MFAAdapter(DefaultMFAAdapter):
    def encrypt(self, text: str) -> str:
        return encrypt_text(text)

    def decrypt(self, encrypted_text: str) -> str:
        return decrypt_text(encrypted_text)


def map_secrets(kind: str, data: dict[str, Any], convert: Callable[[str], str]) -> dict[str, Any]:
    """A copy of an authenticator's ``data`` with ``convert`` applied to each of its secrets
    (encrypt, decrypt, rotate); the rest (used codes, timestamps) as it was. Used by the
    rotation command; the migration keeps a frozen copy of the field list."""
    converted = dict(data)
    for field in SECRET_FIELDS.get(kind, ()):
        value = converted.get(field)
        if isinstance(value, str):
            converted[field] = convert(value)
        elif isinstance(value, list):
            converted[field] = [convert(item) if isinstance(item, str) else item for item in value]
    return converted
