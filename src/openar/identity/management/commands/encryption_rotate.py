"""``openar manage encryption_rotate``: re-encrypt every MFA secret under the newest key.

Rolling out a new key (``openar.core.crypto``): put it first in ``OPENAR_ENCRYPTION_KEYS``
(the old ones stay after it, so everything still decrypts), restart, run this, and only then
remove the old key. Secrets already under the newest key are left as they are, so running it
twice changes nothing the second time; plaintext left over from before encryption is
encrypted. Prints how many rows changed.
"""

from __future__ import annotations

from typing import Any

from allauth.mfa.models import Authenticator
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from openar.core.crypto import DecryptionError, rotate_text
from openar.identity.mfa_adapter import SECRET_FIELDS, map_secrets


class Command(BaseCommand):
    help = (
        "Re-encrypt every MFA secret (TOTP secrets, recovery-code seeds) under the newest key of "
        "OPENAR_ENCRYPTION_KEYS. Run it after putting a new key first, before removing the old one."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with_secrets = Authenticator.objects.filter(type__in=list(SECRET_FIELDS)).order_by("pk")
        ids = list(with_secrets.values_list("pk", flat=True))
        changed = sum(self._rotate(pk) for pk in ids)
        rows = "row" if len(ids) == 1 else "rows"
        self.stdout.write(
            f"Re-encrypted {changed} of {len(ids)} MFA authenticator {rows} under the newest key."
        )

    @staticmethod
    def _rotate(pk: int) -> bool:
        """One row, locked for the time it takes: a recovery code used at the same moment
        (which rewrites ``data``) waits, instead of being undone by an older copy. A row
        that cannot be decrypted stops the command, naming the row (its key is still needed,
        or the row was altered); rows already done stay done."""
        with transaction.atomic():
            authenticator = Authenticator.objects.select_for_update().filter(pk=pk).first()
            if authenticator is None:  # removed since the list was taken
                return False
            data = authenticator.data if isinstance(authenticator.data, dict) else {}
            try:
                rotated = map_secrets(authenticator.type, data, rotate_text)
            except DecryptionError as exc:
                raise CommandError(f"MFA authenticator {pk}: {exc}") from exc
            if rotated == data:
                return False
            authenticator.data = rotated
            authenticator.save(update_fields=["data"])
            return True
