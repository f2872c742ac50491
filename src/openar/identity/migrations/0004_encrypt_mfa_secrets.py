"""Encrypt the MFA secrets allauth stored in the clear before ``MFAAdapter`` encrypted them.

The TOTP ``secret`` and the recovery codes' ``seed`` (and ``migrated_codes``, codes imported
from an older library) in ``mfa_authenticator.data`` are encrypted with
``openar.core.crypto``; values already encrypted are left alone, so running it over a
database written partly with and partly without encryption is safe. Reversing decrypts them
again (for a downgrade to code that reads plaintext), and fails loudly on a value encrypted
under a key that is no longer configured rather than writing garbage.

The field list is frozen here on purpose: a migration must keep doing what it did when it was
written, whatever ``openar.identity.mfa_adapter`` becomes.
"""

from collections.abc import Callable
from typing import Any

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

from openar.core.crypto import decrypt_text, encrypt_text, is_encrypted

SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "totp": ("secret",),
    "recovery_codes": ("seed", "migrated_codes"),
}


def _converted(kind: str, data: dict[str, Any], convert: Callable[[str], str]) -> dict[str, Any]:
    converted = dict(data)
    for field in SECRET_FIELDS[kind]:
        value = converted.get(field)
        if isinstance(value, str):
            converted[field] = convert(value)
        elif isinstance(value, list):
            converted[field] = [convert(item) if isinstance(item, str) else item for item in value]
    return converted


def _apply(apps: Apps, convert: Callable[[str], str]) -> int:
    """Rewrite the secrets of every TOTP and recovery-code authenticator; returns how many
    rows changed. Rows are locked (where the database can) so that a recovery code used
    meanwhile is not undone by writing back an older ``used_mask``."""
    Authenticator = apps.get_model("mfa", "Authenticator")
    changed = 0
    rows = Authenticator.objects.select_for_update().filter(type__in=list(SECRET_FIELDS)).order_by("pk")
    for row in rows.iterator(chunk_size=500):
        data = row.data if isinstance(row.data, dict) else {}
        converted = _converted(row.type, data, convert)
        if converted != data:
            Authenticator.objects.filter(pk=row.pk).update(data=converted)
            changed += 1
    return changed


def _encrypt(value: str) -> str:
    return value if is_encrypted(value) else encrypt_text(value)


def encrypt_rows(apps: Apps) -> int:
    """Encrypt what is still plaintext; returns how many rows changed."""
    return _apply(apps, _encrypt)


def decrypt_rows(apps: Apps) -> int:
    """Decrypt what is encrypted; returns how many rows changed."""
    return _apply(apps, decrypt_text)


def encrypt_secrets(apps: Apps, schema_editor: BaseDatabaseSchemaEditor | None) -> None:
    encrypt_rows(apps)


def decrypt_secrets(apps: Apps, schema_editor: BaseDatabaseSchemaEditor | None) -> None:
    decrypt_rows(apps)


class Migration(migrations.Migration):

    dependencies = [
        ("identity", "0003_user_must_change_password"),
        ("mfa", "0003_authenticator_type_uniq"),
    ]

    operations = [
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
    ]
