"""Settings shared by every environment. Values come from OPENAR_* environment variables."""

from __future__ import annotations

import contextlib
from pathlib import Path

from openar.settings.env import (
    data_dir,
    database_from_url,
    default_database_url,
    env_bool,
    env_int,
    env_list,
    env_str,
)

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = data_dir()

SECRET_KEY = env_str("OPENAR_SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = env_list("OPENAR_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("OPENAR_CSRF_TRUSTED_ORIGINS", [])
# Proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated).
OPENAR_TRUSTED_PROXIES = env_list("OPENAR_TRUSTED_PROXIES", [])
SITE_URL = env_str("OPENAR_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Keys that encrypt secrets kept in the database (openar.core.crypto): Fernet keys, newest
# first, comma-separated. Without any, one is derived from SECRET_KEY (demo and tests only:
# production settings refuse to start without them).
OPENAR_ENCRYPTION_KEYS = env_list("OPENAR_ENCRYPTION_KEYS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "django_scopes",
    "openar.core",
    "openar.tenants",
    "openar.identity",
    "openar.customers",
    "openar.billing",
    "openar.payments",
    "openar.notifications",
    "openar.reminders",
    "openar.commitments",
    "openar.disputes",
    "openar.contracts",
    "openar.client",
    "django_tasks",
    "django_tasks_db",
    "openar.portal",
    "openar.pay",
    "openar.desk",
]

MIDDLEWARE = [
    "openar.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Refuses a too-large upload (413) before the CSRF check reads its body.
    "openar.core.uploads.UploadLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # A change of authenticators or password and its audit row commit together, or neither.
    "openar.identity.middleware.AtomicAccountChangesMiddleware",
    "openar.tenants.middleware.TenantScopeMiddleware",
    "openar.identity.mfa.MFAEnrolmentMiddleware",
]

ROOT_URLCONF = "openar.urls"
WSGI_APPLICATION = "openar.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "openar.core.context_processors.site",
            ],
            "builtins": ["openar.core.templatetags.openar"],
        },
    }
]

DATABASES = {"default": database_from_url(env_str("OPENAR_DATABASE_URL") or default_database_url())}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "identity.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Length by second factor, common and breached passwords, company and product names: all
    # from each organization's security policy.
    {"NAME": "openar.identity.passwords.PolicyPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
ACCOUNT_ADAPTER = "openar.identity.adapter.AccountAdapter"
# Brute-force defence, on the shared cache (CACHES below). "login_failed": every sign-in
# attempt takes a slot per client IP (10 a minute) and per account (5 in 5 minutes) before
# the password is checked, and only a success gives its slot back; so once an account has 5
# failures in the window, even the right password is refused until the window passes. The
# code step of MFA has the same limits per user; "login" bounds every sign-in POST per IP.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "reset_password": "20/m/ip,5/m/key",
}
# A password reset never signs anyone in: the next sign-in asks for the password and, where
# the person has an authenticator, for the code too.
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
# Changing the password keeps this session and ends the others (openar.identity.signals).
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False

# The client address allauth counts rate limits by: X-Forwarded-For is read only when
# OPENAR_TRUSTED_PROXIES names the proxies in front (one entry per proxy hop), and then the
# address the outermost of them saw; with none, REMOTE_ADDR alone.
ALLAUTH_TRUSTED_PROXY_COUNT = len(OPENAR_TRUSTED_PROXIES)
ALLAUTH_TRUSTED_CLIENT_IP_HEADER = None

# MFA (allauth.mfa): authenticator apps (TOTP), security keys and passkeys (WebAuthn) as a
# second factor, and recovery codes. Whether a person must have one is the organization's
# policy, enforced by openar.identity.mfa.MFAEnrolmentMiddleware. Passkey-only sign-in stays
# off until the sign-in page offers it.
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_PASSKEY_LOGIN_ENABLED = False
MFA_TOTP_TOLERANCE = 0  # a code is good for its own 30 seconds only, and only once
OPENAR_MFA_ENFORCE = True
# TOTP secrets and recovery-code seeds are stored encrypted (openar.core.crypto).
MFA_ADAPTER = "openar.identity.mfa_adapter.MFAAdapter"

# Sessions (allauth.usersessions): people see their signed-in sessions and end them.
USERSESSIONS_TRACK_ACTIVITY = False  # no write on every request; sessions are recorded at sign-in

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("OPENAR_SESSION_AGE", 12 * 3600)
# Sessions are cached in Redis when there is one; otherwise they stay in their own table (see
# CACHES: the database cache would only add writes, and crowd out the lockouts).
SESSION_ENGINE = (
    "django.contrib.sessions.backends.cached_db"
    if env_str("OPENAR_REDIS_URL")
    else "django.contrib.sessions.backends.db"
)

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("OPENAR_STATIC_ROOT", str(DATA_DIR / "static")))
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise expects it, even when empty
MEDIA_ROOT = Path(env_str("OPENAR_MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "/media/"  # never served directly: documents go through an access-checked view
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False

# One cache shared by every process and machine: rate limits, lockouts and used TOTP codes
# live here. The database (its table is made by ``migrate``, see IdentityConfig) unless Redis
# is configured; the tests use local memory. The database cache, once past MAX_ENTRIES live
# entries, evicts a third of them in key order, lockouts first: hence a high ceiling, and the
# sessions kept out of it (in their own table: caching them in the same database gains nothing).
CACHES: dict[str, dict[str, object]] = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "openar_cache",
        "OPTIONS": {"MAX_ENTRIES": 200_000},
    }
}
if env_str("OPENAR_REDIS_URL"):
    CACHES["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("OPENAR_REDIS_URL"),
    }

EMAIL_BACKEND = env_str("OPENAR_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("OPENAR_EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("OPENAR_EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("OPENAR_EMAIL_USER")
EMAIL_HOST_PASSWORD = env_str("OPENAR_EMAIL_PASSWORD")
EMAIL_USE_TLS = env_bool("OPENAR_EMAIL_TLS")
EMAIL_FILE_PATH = str(DATA_DIR / "outbox")
DEFAULT_FROM_EMAIL = env_str("OPENAR_FROM_EMAIL", "OpenAR <no-reply@openar.invalid>")

# Background work: Django's task API (the django-tasks backport), queued in the database
# (django-tasks-db): ``openar worker`` runs the queue and the periodic jobs; several workers
# may run at once, on one machine or many.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# Payment providers' webhooks only store their events when this is on, and the workers
# apply them in batches within a second (openar.payments.events); off, each request applies
# its events before it answers (the demo and the tests).
OPENAR_PAYMENT_EVENTS_QUEUED = env_bool("OPENAR_PAYMENT_EVENTS_QUEUED", False)

# Channels of outbound messages (openar.notifications.channels): which backend sends each.
# "local" keeps messages in the desk's outbox (the demo); "smtp" hands email to the email
# backend above (any django-anymail ESP works there too); "twilio" sends SMS; "pdf" renders
# letters for printing.
OPENAR_CHANNELS = {
    "email": env_str("OPENAR_EMAIL_CHANNEL", "smtp"),
    "sms": env_str("OPENAR_SMS_CHANNEL", "twilio" if env_str("OPENAR_TWILIO_ACCOUNT_SID") else "local"),
    "letter": "pdf",
    "portal": "portal",
}
OPENAR_TWILIO_ACCOUNT_SID = env_str("OPENAR_TWILIO_ACCOUNT_SID")
OPENAR_TWILIO_AUTH_TOKEN = env_str("OPENAR_TWILIO_AUTH_TOKEN")
OPENAR_TWILIO_FROM = env_str("OPENAR_TWILIO_FROM")  # a Twilio number, or a messaging service SID (MG...)
OPENAR_TWILIO_API_BASE = env_str("OPENAR_TWILIO_API_BASE")  # tests: a local fake of Twilio's API
# Replies to emails reach their thread at reply+<token>@OPENAR_REPLY_DOMAIN (inbound parse).
OPENAR_REPLY_DOMAIN = env_str("OPENAR_REPLY_DOMAIN")
# The sandbox payment provider (test cards, no money) when an organization has set up no
# real provider: on in the demo and the tests, never in production unless asked for.
OPENAR_SANDBOX_PAYMENTS = env_bool("OPENAR_SANDBOX_PAYMENTS", False)
# Connections to the mail server used at once when a batch of messages is sent.
OPENAR_SMTP_CONNECTIONS = env_int("OPENAR_SMTP_CONNECTIONS", 4)
# The inbound parse posts those replies to /hooks/email/inbound/ with HTTP Basic credentials
# equal to this shared secret ("user:password", as django-anymail's WEBHOOK_SECRET); empty
# turns the endpoint off (404).
OPENAR_INBOUND_EMAIL_SECRET = env_str("OPENAR_INBOUND_EMAIL_SECRET")

# Uploads (openar.core.uploads): the largest file of each kind, in MB; archives (ZIP, and the
# zip-based office files) at most this many entries and this many MB once unpacked. clamd
# (openar.core.clamd) scans every upload when OPENAR_CLAMD says where it listens
# ("unix:/run/clamav/clamd.ctl" or "tcp://127.0.0.1:3310"); configured but unreachable, uploads
# are refused. Its StreamMaxLength must be at least the largest limit here.
OPENAR_UPLOAD_LIMITS = {
    "document": env_int("OPENAR_UPLOAD_MAX_DOCUMENT_MB", 20) * 1024 * 1024,
    "attachment": env_int("OPENAR_UPLOAD_MAX_ATTACHMENT_MB", 10) * 1024 * 1024,
    "contract": env_int("OPENAR_UPLOAD_MAX_CONTRACT_MB", 20) * 1024 * 1024,
    "import": env_int("OPENAR_UPLOAD_MAX_IMPORT_MB", 50) * 1024 * 1024,
}
OPENAR_ARCHIVE_MAX_MEMBERS = env_int("OPENAR_ARCHIVE_MAX_MEMBERS", 1000)
OPENAR_ARCHIVE_MAX_SIZE = env_int("OPENAR_ARCHIVE_MAX_UNPACKED_MB", 200) * 1024 * 1024
OPENAR_CLAMD = env_str("OPENAR_CLAMD")
OPENAR_CLAMD_TIMEOUT = env_int("OPENAR_CLAMD_TIMEOUT", 60)  # seconds for one scan
# Files above 2.5 MB wait in FILE_UPLOAD_TEMP_DIR, not memory, until checked and stored.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750
DATA_UPLOAD_MAX_NUMBER_FILES = 20

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "openar.core.logging.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "openar.core.logging.JsonFormatter"},
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": env_str("OPENAR_LOG_FORMAT", "json"),
        }
    },
    "root": {"handlers": ["console"], "level": env_str("OPENAR_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
    },
}
