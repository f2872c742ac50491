"""Encryption of secrets kept in the database (MFA secrets today, payment-provider credentials
next), so that a copy of the database (a backup, a replica, a leaked dump) does not hand out
what it protects.

Values are encrypted with Fernet (AES-128-CBC and HMAC-SHA256, from ``cryptography``): a value
that was altered, or encrypted under a key we no longer have, fails to decrypt loudly instead
of turning into garbage. Keys come from ``settings.OPENAR_ENCRYPTION_KEYS`` (the environment
variable of the same name, comma-separated), newest first: the first one encrypts, every one
decrypts, so a new key is rolled out by putting it in front, running
``openar manage encryption_rotate`` and only then dropping the old one.

Without any key (the demo, the tests), one key is derived from ``SECRET_KEY`` with HKDF, so
that nothing is ever stored in the clear; production settings refuse to start without
``OPENAR_ENCRYPTION_KEYS``, so that the database key is not the same secret as the one that
signs cookies.

What is stored is ``enc1:`` followed by the Fernet token: the prefix says the value is
encrypted (and, were the scheme ever to change, with which version of it). A value without it
is taken as plaintext written before encryption existed and is returned as it is, so those
rows keep working until a migration or ``encryption_rotate`` encrypts them.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "enc1:"
# Binds the derived key to this use: the same SECRET_KEY never yields the same bytes
# anywhere else (Django's signing derives its own keys with other salts).
HKDF_INFO = b"openar.encryption"
KEYS_SETTING = "OPENAR_ENCRYPTION_KEYS"
GENERATE_KEY_HINT = (
    "Generate a key with: python -c 'from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())'"
)


class DecryptionError(ValueError):
    """An encrypted value that cannot be read: encrypted under a key that is no longer
    configured, or altered. Never silently turned into an empty or wrong value."""


def check_keys(keys: Sequence[str]) -> list[Fernet]:
    """One ``Fernet`` per configured key, newest first; ``ImproperlyConfigured`` naming the
    position (never the key itself, which would end up in logs) of any that is not a Fernet
    key (32 bytes, urlsafe base64). Production settings call it so that a bad key stops the
    start instead of the first sign-in with an authenticator app."""
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.strip()))
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"{KEYS_SETTING}: key number {position} is not a Fernet key (32 bytes, urlsafe "
                f"base64, 44 characters). {GENERATE_KEY_HINT}"
            ) from exc
    return fernets


def derived_key(secret_key: str) -> bytes:
    """The key used when none is configured: HKDF-SHA256 of ``SECRET_KEY``, as a Fernet key."""
    if not secret_key:
        raise ImproperlyConfigured(
            f"Encryption needs {KEYS_SETTING} or, failing that, a SECRET_KEY to derive a key from."
        )
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


@functools.lru_cache(maxsize=8)
def _multi_fernet(keys: tuple[str, ...], secret_key: str) -> tuple[MultiFernet, Fernet]:
    """The keyring and its newest key, built once per configuration (the arguments are the
    cache key, so tests overriding the settings get their own)."""
    fernets = check_keys(keys) if keys else [Fernet(derived_key(secret_key))]
    return MultiFernet(fernets), fernets[0]


def _keyring() -> tuple[MultiFernet, Fernet]:
    keys = tuple(getattr(settings, KEYS_SETTING, None) or ())
    return _multi_fernet(keys, "" if keys else str(settings.SECRET_KEY))


def is_encrypted(value: str) -> bool:
    """Whether ``value`` is one of ours (carries the version prefix)."""
    return value.startswith(PREFIX)


def encrypt_text(text: str) -> str:
    """``text`` encrypted under the newest key, as ``enc1:<Fernet token>`` (ASCII, so it fits
    in a JSON or text column). Encrypting twice gives two different values (random IV)."""
    keyring, _newest = _keyring()
    return PREFIX + keyring.encrypt(text.encode()).decode("ascii")


def _token(value: str) -> bytes:
    try:
        return value[len(PREFIX) :].encode("ascii")
    except UnicodeEncodeError as exc:  # a Fernet token is ASCII: this one was altered
        raise DecryptionError("An encrypted value is malformed: it has been altered.") from exc


def decrypt_text(value: str) -> str:
    """The text ``value`` encrypts, under any configured key. A value without the prefix is
    plaintext from before encryption and comes back unchanged. ``DecryptionError`` when the
    value cannot be decrypted (unknown key, altered value)."""
    if not is_encrypted(value):
        return value
    keyring, _newest = _keyring()
    try:
        return keyring.decrypt(_token(value)).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            f"An encrypted value could not be decrypted: it was encrypted under a key that is not "
            f"in {KEYS_SETTING}, or it has been altered."
        ) from exc


def rotate_text(value: str) -> str:
    """``value`` encrypted under the newest key: the same value when it already is (so a
    sweep can count what it changed and rewrites nothing twice), re-encrypted when it is
    under an older key, encrypted when it is legacy plaintext. ``DecryptionError`` as for
    ``decrypt_text``."""
    if not is_encrypted(value):
        return encrypt_text(value)
    keyring, newest = _keyring()
    token = _token(value)
    try:
        newest.decrypt(token)
    except InvalidToken:
        pass
    else:
        return value
    try:
        return PREFIX + keyring.rotate(token).decode("ascii")
    except InvalidToken as exc:
        raise DecryptionError(
            f"An encrypted value could not be re-encrypted: it was encrypted under a key that is "
            f"not in {KEYS_SETTING}, or it has been altered."
        ) from exc
