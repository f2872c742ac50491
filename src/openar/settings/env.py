"""Reading settings from environment variables, with safe defaults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {value!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def data_dir() -> Path:
    """Where the demo keeps its database, generated secret key, uploads and outbox."""
    path = Path(env_str("OPENAR_DATA_DIR", str(Path.cwd() / "var"))).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_from_url(url: str) -> dict[str, Any]:
    config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True))
    engine = config["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        config["CONN_MAX_AGE"] = 0
        config.setdefault("OPTIONS", {}).update(
            {
                # WAL lets readers proceed while one writer writes; IMMEDIATE makes a
                # write transaction take the lock up front instead of failing midway.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                " PRAGMA busy_timeout=5000;",
                "transaction_mode": "IMMEDIATE",
            }
        )
    elif engine == "django.db.backends.postgresql" and env_bool("OPENAR_DB_POOL"):
        # A pool suits threaded servers; sync workers keep one persistent connection each.
        config["CONN_MAX_AGE"] = 0
        config.setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": 4}
    return config


def default_database_url() -> str:
    return f"sqlite:///{data_dir() / 'openar.sqlite3'}"


def generated_secret_key() -> str:
    """A secret key generated once and kept in the data folder (demo and first look only)."""
    path = data_dir() / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(50)
    path.write_text(key)
    path.chmod(0o600)
    return key
