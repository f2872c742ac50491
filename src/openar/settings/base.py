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
    "django_scopes",
    "openar.core",
    "openar.tenants",
    "openar.identity",
    "openar.customers",
    "openar.billing",
    "openar.payments",
    "openar.portal",
    "openar.desk",
]

MIDDLEWARE = [
    "openar.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "openar.tenants.middleware.TenantScopeMiddleware",
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
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
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
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "reset_password": "20/m/ip,5/m/key",
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("OPENAR_SESSION_AGE", 12 * 3600)
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

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

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
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
