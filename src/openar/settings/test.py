"""The test suite: SQLite or PostgreSQL from OPENAR_TEST_DATABASE_URL, fast hashing, mail in memory."""

from __future__ import annotations

from typing import Any

from openar.settings.base import *  # noqa: F403
from openar.settings.env import database_from_url, env_str

SECRET_KEY = "test-only-secret-key-not-for-production"  # noqa: S105
_database: dict[str, Any] = database_from_url(env_str("OPENAR_TEST_DATABASE_URL") or "sqlite:///:memory:")
_database["CONN_MAX_AGE"] = 0
DATABASES = {"default": _database}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGGING: dict[str, Any] = {  # type: ignore[no-redef]
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "openar.core.logging.RequestIdFilter"}},
    "formatters": {"text": {"format": "%(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["request_id"], "formatter": "text"}
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ACCOUNT_RATE_LIMITS: dict[str, str] | bool = False  # type: ignore[no-redef]
CACHES: dict[str, dict[str, object]] = {  # type: ignore[no-redef]
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = True  # the live server is plain http
# Tests about other things sign staff in with force_login under the default policy (MFA
# required for staff) and would all land on the enrolment page; the tests of MFA
# (tests/identity/test_mfa.py, tests/browser/test_mfa_browser.py) turn this back on.
OPENAR_MFA_ENFORCE = False

# Tasks run where they are enqueued (on commit); the worker's own tests use the database queue.
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
OPENAR_CHANNELS = {"email": "smtp", "sms": "local", "letter": "pdf", "portal": "portal"}
OPENAR_REPLY_DOMAIN = "reply.openar.test"

# Uploads are scanned only in the tests that ask for a clamd (the ``clamd`` fixture).
OPENAR_CLAMD = ""

OPENAR_SANDBOX_PAYMENTS = True  # test payments (no money) where no real provider is set up
