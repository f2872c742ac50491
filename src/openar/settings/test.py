"""The test suite: SQLite or PostgreSQL from OPENAR_TEST_DATABASE_URL, fast hashing, mail in memory."""

from __future__ import annotations

from openar.settings.base import *  # noqa: F403
from openar.settings.env import database_from_url, env_str

SECRET_KEY = "test-only-secret-key-not-for-production"  # noqa: S105
DATABASES = {
    "default": database_from_url(
        env_str("OPENAR_TEST_DATABASE_URL") or "sqlite:///:memory:"
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["TEST"] = {"NAME": None}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGGING["handlers"]["console"]["formatter"] = "text"  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ACCOUNT_RATE_LIMITS = False
