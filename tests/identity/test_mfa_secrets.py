"""MFA secrets at rest: the TOTP secret and the recovery-code seed allauth stores are encrypted
(openar.identity.mfa_adapter), and yet codes computed from the plaintext secret sign in;
plaintext rows from before keep working, the data migration encrypts them (and its reverse
decrypts them), and ``encryption_rotate`` moves every secret to the newest key.

Activation goes through allauth's real pages with Django's test client, at a clock pinned by
time-machine (a code is accepted once per 30-second period: the clock moves on between uses).
"""

from __future__ import annotations

import datetime
import importlib
import io
from collections.abc import Iterator

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import generate_totp_secret
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import CommandError, call_command
from django.test import Client
from pytest_django.fixtures import Settings

from factories import Users
from openar.core.crypto import DecryptionError, decrypt_text, encrypt_text, is_encrypted
from openar.identity.models import User

from .test_mfa import NOON, activate_totp, reauthenticate, recovery_codes_of, sign_in

migration = importlib.import_module("openar.identity.migrations.0004_encrypt_mfa_secrets")

NEXT_PERIOD = datetime.timedelta(seconds=30)


@pytest.fixture
def frozen() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def stored(user: User, kind: str) -> dict[str, object]:
    """``Authenticator.data`` as the database holds it."""
    data: dict[str, object] = Authenticator.objects.values_list("data", flat=True).get(user=user, type=kind)
    return data


def secret_of(user: User) -> str:
    value = stored(user, Authenticator.Type.TOTP)["secret"]
    assert isinstance(value, str)
    return value


def plaintext_authenticators(user: User, secret: str, seed: str) -> None:
    """Rows as allauth wrote them before the adapter encrypted anything."""
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": secret})
    Authenticator.objects.create(
        user=user, type=Authenticator.Type.RECOVERY_CODES, data={"seed": seed, "used_mask": 0}
    )


def test_an_activated_authenticator_app_is_stored_encrypted_and_its_codes_sign_in(
    users: Users, frozen: time_machine.Traveller
) -> None:
    user = users.collector
    client = Client()
    sign_in(client, user.email)
    reauthenticate(client)
    secret = activate_totp(client)

    at_rest = secret_of(user)
    assert at_rest != secret and secret not in at_rest
    assert is_encrypted(at_rest) and decrypt_text(at_rest) == secret
    seed = stored(user, Authenticator.Type.RECOVERY_CODES)["seed"]
    assert isinstance(seed, str) and is_encrypted(seed)
    assert len(recovery_codes_of(user)) == 10  # derived from the decrypted seed, as before

    frozen.shift(NEXT_PERIOD)
    sign_in(Client(), user.email, secret=secret)  # the code of the plaintext secret


@pytest.mark.usefixtures("frozen")
def test_a_plaintext_row_from_before_still_signs_in(users: Users) -> None:
    user = users.manager
    secret = generate_totp_secret()
    plaintext_authenticators(user, secret, RecoveryCodes.generate_seed())
    sign_in(Client(), user.email, secret=secret)


def test_the_migration_encrypts_plaintext_rows_and_its_reverse_decrypts_them(
    users: Users, frozen: time_machine.Traveller
) -> None:
    user, other = users.manager, users.admin
    secret, seed = generate_totp_secret(), RecoveryCodes.generate_seed()
    plaintext_authenticators(user, secret, seed)
    Authenticator.objects.filter(user=user, type=Authenticator.Type.RECOVERY_CODES).update(
        data={"seed": seed, "used_mask": 0b101, "migrated_codes": ["12345678", "87654321"]}
    )
    already = encrypt_text(generate_totp_secret())
    Authenticator.objects.create(user=other, type=Authenticator.Type.TOTP, data={"secret": already})

    migration.encrypt_secrets(apps, None)  # as ``migrate`` calls it

    assert is_encrypted(secret_of(user)) and decrypt_text(secret_of(user)) == secret
    codes = stored(user, Authenticator.Type.RECOVERY_CODES)
    assert isinstance(codes["seed"], str) and decrypt_text(codes["seed"]) == seed
    assert codes["used_mask"] == 0b101
    assert isinstance(codes["migrated_codes"], list)
    assert [decrypt_text(code) for code in codes["migrated_codes"]] == ["12345678", "87654321"]
    assert secret_of(other) == already
    assert migration.encrypt_rows(apps) == 0  # running it again changes nothing
    sign_in(Client(), user.email, secret=secret)

    migration.decrypt_secrets(apps, None)  # as ``migrate`` calls it backwards
    assert secret_of(user) == secret
    assert stored(user, Authenticator.Type.RECOVERY_CODES) == {
        "seed": seed,
        "used_mask": 0b101,
        "migrated_codes": ["12345678", "87654321"],
    }
    frozen.shift(NEXT_PERIOD)
    sign_in(Client(), user.email, secret=secret)  # plaintext again, read as such


def test_rotation_moves_every_secret_to_the_newest_key(
    users: Users, settings: Settings, frozen: time_machine.Traveller
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.OPENAR_ENCRYPTION_KEYS = [old]
    user = users.collector
    client = Client()
    sign_in(client, user.email)
    reauthenticate(client)
    secret = activate_totp(client)
    codes = recovery_codes_of(user)
    legacy = generate_totp_secret()
    Authenticator.objects.create(user=users.admin, type=Authenticator.Type.TOTP, data={"secret": legacy})

    settings.OPENAR_ENCRYPTION_KEYS = [new, old]
    out = io.StringIO()
    call_command("encryption_rotate", stdout=out)
    assert out.getvalue().strip() == "Re-encrypted 3 of 3 MFA authenticator rows under the newest key."
    out = io.StringIO()
    call_command("encryption_rotate", stdout=out)
    assert out.getvalue().strip() == "Re-encrypted 0 of 3 MFA authenticator rows under the newest key."

    settings.OPENAR_ENCRYPTION_KEYS = [new]  # the old key gone: everything still reads
    assert decrypt_text(secret_of(user)) == secret
    assert decrypt_text(secret_of(users.admin)) == legacy
    assert recovery_codes_of(user) == codes
    frozen.shift(NEXT_PERIOD)
    sign_in(Client(), user.email, secret=secret)

    settings.OPENAR_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # a key never used
    with pytest.raises(DecryptionError):
        decrypt_text(secret_of(user))
    with pytest.raises(CommandError, match=r"MFA authenticator \d+: .* not in OPENAR_ENCRYPTION_KEYS"):
        call_command("encryption_rotate", stdout=io.StringIO())
