"""The demo: DEBUG on, a generated secret key kept in the data folder, mail to a local outbox."""

from __future__ import annotations

from openar.settings.base import *  # noqa: F403
from openar.settings.base import SECRET_KEY
from openar.settings.env import env_str, generated_secret_key

DEBUG = True
SECRET_KEY = SECRET_KEY or generated_secret_key()
EMAIL_BACKEND = env_str("OPENAR_EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
AUTH_PASSWORD_VALIDATORS: list[dict[str, object]] = []  # type: ignore[no-redef]

OPENAR_DEMO = True
OPENAR_DEMO_PASSWORD = "openar-demo"  # noqa: S105  (printed for people trying the demo)
# WebAuthn on http://localhost (browsers refuse passkeys on a bare IP such as 127.0.0.1).
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = True
# Reminders and messages stay on this machine: the desk's outbox (/desk/outbox/) shows them,
# links and all. Letters are rendered to PDF as in production.
OPENAR_CHANNELS = {
    "email": env_str("OPENAR_EMAIL_CHANNEL", "local"),
    "sms": "local",
    "letter": "pdf",
    "portal": "portal",
}

OPENAR_SANDBOX_PAYMENTS = True  # test payments (no money) where no real provider is set up
