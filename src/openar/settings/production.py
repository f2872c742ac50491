"""Production: every secret from the environment, HTTPS assumed behind a proxy."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from openar.core.crypto import GENERATE_KEY_HINT, check_keys
from openar.settings.base import *  # noqa: F403
from openar.settings.base import OPENAR_ENCRYPTION_KEYS, SECRET_KEY
from openar.settings.env import env_bool, env_int

if not SECRET_KEY:
    raise ImproperlyConfigured(
        "OPENAR_SECRET_KEY is not set. Generate one with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
# Secrets in the database are encrypted under keys of their own, not a key derived from
# SECRET_KEY (openar.core.crypto): a leaked SECRET_KEY must not also open the database.
if not OPENAR_ENCRYPTION_KEYS:
    raise ImproperlyConfigured(
        "OPENAR_ENCRYPTION_KEYS is not set: it holds the keys that encrypt secrets in the database "
        f"(comma-separated, newest first). {GENERATE_KEY_HINT}"
    )
check_keys(OPENAR_ENCRYPTION_KEYS)

# Webhooks store provider events and the workers apply them in batches (openar.payments.events).
OPENAR_PAYMENT_EVENTS_QUEUED = env_bool("OPENAR_PAYMENT_EVENTS_QUEUED", True)

SECURE_SSL_REDIRECT = env_bool("OPENAR_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("OPENAR_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = env_bool("OPENAR_SECURE_COOKIES", True)
SECURE_HSTS_SECONDS = env_int("OPENAR_HSTS_SECONDS", 0)
# HSTS covers the portal's own subdomains (it is served from one host of its own).
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("OPENAR_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading binds the whole registrable domain and is slow to undo, so it is the operator's
# explicit choice; without it, Django's reminder (security.W021) is silenced on purpose.
SECURE_HSTS_PRELOAD = env_bool("OPENAR_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
