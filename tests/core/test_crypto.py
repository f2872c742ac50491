"""openar.core.crypto: values round-trip and carry their version prefix, plaintext from before
encryption passes through, keys rotate (old values still decrypt, ``rotate_text`` moves them
to the newest key), and anything altered or under an unknown key fails loudly.

No database: the keys are settings, changed per test with pytest-django's ``settings``.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings

from openar.core.crypto import (
    PREFIX,
    DecryptionError,
    check_keys,
    decrypt_text,
    encrypt_text,
    is_encrypted,
    rotate_text,
)

SECRET = "JBSWY3DPEHPK3PXP"  # a TOTP secret, base32


def new_key() -> str:
    return Fernet.generate_key().decode()


def token_of(value: str) -> bytes:
    return value.removeprefix(PREFIX).encode()


@pytest.fixture
def keys(settings: Settings) -> list[str]:
    """Two configured keys, newest first."""
    settings.OPENAR_ENCRYPTION_KEYS = [new_key(), new_key()]
    configured: list[str] = settings.OPENAR_ENCRYPTION_KEYS
    return configured


def test_a_value_round_trips_and_is_stored_with_the_prefix_not_in_the_clear(keys: list[str]) -> None:
    stored = encrypt_text(SECRET)
    assert stored.startswith("enc1:") and is_encrypted(stored)
    assert SECRET not in stored
    assert stored.isascii()
    assert decrypt_text(stored) == SECRET
    assert encrypt_text(SECRET) != stored  # a random IV each time: equal secrets do not show
    assert decrypt_text(encrypt_text("")) == ""
    assert decrypt_text(encrypt_text("naïve ✓")) == "naïve ✓"


def test_the_newest_key_encrypts(keys: list[str]) -> None:
    stored = encrypt_text(SECRET)
    assert Fernet(keys[0]).decrypt(token_of(stored)).decode() == SECRET


def test_plaintext_from_before_encryption_passes_through_unchanged(keys: list[str]) -> None:
    assert decrypt_text(SECRET) == SECRET
    assert decrypt_text("") == ""
    assert not is_encrypted(SECRET)


def test_an_old_key_still_decrypts_and_rotation_moves_values_to_the_new_key(settings: Settings) -> None:
    old, new = new_key(), new_key()
    settings.OPENAR_ENCRYPTION_KEYS = [old]
    under_old = encrypt_text(SECRET)

    settings.OPENAR_ENCRYPTION_KEYS = [new, old]  # the new key put in front
    assert decrypt_text(under_old) == SECRET
    rotated = rotate_text(under_old)
    assert rotated != under_old and is_encrypted(rotated)
    assert Fernet(new).decrypt(token_of(rotated)).decode() == SECRET
    assert rotate_text(rotated) == rotated  # already under the newest key: left as it is
    legacy = rotate_text(SECRET)  # plaintext from before: encrypted
    assert is_encrypted(legacy) and decrypt_text(legacy) == SECRET

    settings.OPENAR_ENCRYPTION_KEYS = [new]  # the old key removed after the rotation
    assert decrypt_text(rotated) == SECRET
    with pytest.raises(DecryptionError, match="not in OPENAR_ENCRYPTION_KEYS"):
        decrypt_text(under_old)  # what was not rotated is lost with its key, loudly
    with pytest.raises(DecryptionError):
        rotate_text(under_old)


def test_an_altered_value_raises_instead_of_decrypting_to_garbage(keys: list[str]) -> None:
    stored = encrypt_text(SECRET)
    token = bytearray(base64.urlsafe_b64decode(token_of(stored)))
    token[-40] ^= 0x01  # one bit of the ciphertext
    altered = PREFIX + base64.urlsafe_b64encode(bytes(token)).decode()
    swapped = stored[:20] + ("A" if stored[20] != "A" else "B") + stored[21:]  # one character
    for bad in (altered, swapped, stored[:-4], PREFIX, PREFIX + "not a token", PREFIX + "é"):
        with pytest.raises(DecryptionError):
            decrypt_text(bad)


def test_a_value_under_an_unknown_key_raises(settings: Settings) -> None:
    settings.OPENAR_ENCRYPTION_KEYS = [new_key()]
    stored = encrypt_text(SECRET)
    settings.OPENAR_ENCRYPTION_KEYS = [new_key()]
    with pytest.raises(DecryptionError):
        decrypt_text(stored)


def test_without_keys_one_is_derived_from_the_secret_key_with_hkdf(settings: Settings) -> None:
    settings.OPENAR_ENCRYPTION_KEYS = []
    settings.SECRET_KEY = "a secret key for this test only"
    stored = encrypt_text(SECRET)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"openar.encryption")
    derived = base64.urlsafe_b64encode(hkdf.derive(b"a secret key for this test only"))
    assert Fernet(derived).decrypt(token_of(stored)).decode() == SECRET

    settings.SECRET_KEY = "another secret key"
    with pytest.raises(DecryptionError):
        decrypt_text(stored)


def test_a_key_that_is_not_a_fernet_key_is_refused_by_position_without_showing_it(
    settings: Settings,
) -> None:
    with pytest.raises(ImproperlyConfigured, match="key number 2") as refused:
        check_keys([new_key(), "hunter2"])
    assert "hunter2" not in str(refused.value)
    settings.OPENAR_ENCRYPTION_KEYS = ["too-short"]
    with pytest.raises(ImproperlyConfigured, match="key number 1"):
        encrypt_text(SECRET)


# --- production settings ------------------------------------------------------------------------


def import_production_settings(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAR_", "DJANGO_"))}
    environment.update(OPENAR_SECRET_KEY="a production secret key", OPENAR_DATA_DIR=str(tmp_path), **extra)
    return subprocess.run(
        [sys.executable, "-c", "import openar.settings.production"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_production_settings_refuse_to_start_without_encryption_keys(tmp_path: Path) -> None:
    missing = import_production_settings(tmp_path)
    assert missing.returncode != 0
    assert "ImproperlyConfigured: OPENAR_ENCRYPTION_KEYS is not set" in missing.stderr

    bad = import_production_settings(tmp_path, OPENAR_ENCRYPTION_KEYS=f"{new_key()},not-a-key")
    assert bad.returncode != 0
    assert "key number 2 is not a Fernet key" in bad.stderr

    good = import_production_settings(tmp_path, OPENAR_ENCRYPTION_KEYS=f"{new_key()}, {new_key()}")
    assert good.returncode == 0, good.stderr
