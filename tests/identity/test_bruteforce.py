"""Brute-force defence: allauth's per-account and per-IP limits on the shared cache, with the
production values (the test settings switch rate limits off for tests about other things).

The account lock is tested the way an attacker with many addresses would meet it: every
attempt from another IP, so that only the per-account limit stands in the way, with the right
password mixed in. Once the fifth failure is in, no attempt succeeds until the window has
passed, with the local-memory cache of the tests and with the database cache of the demo and
of production (Redis behaves like the latter); on PostgreSQL also under concurrent attempts.
"""

from __future__ import annotations

import datetime
import os
import secrets
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import time_machine
from cryptography.fernet import Fernet
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from pytest_django.fixtures import Settings

from factories import PASSWORD, Users
from openar.identity.models import User
from openar.settings import base

from .test_mfa import (
    MFA_AUTHENTICATE,
    NOON,
    add_totp,
    assert_no_secret_in_audit,
    events,
    post_password,
    signed_in_user_id,
    totp_code,
)

LOCKED = "Too many failed login attempts"
WINDOW = datetime.timedelta(minutes=5)


@pytest.fixture(autouse=True)
def rate_limits(settings: Settings) -> Iterator[None]:
    """Production's limits, on an empty cache."""
    settings.ACCOUNT_RATE_LIMITS = base.ACCOUNT_RATE_LIMITS
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def frozen() -> Iterator[time_machine.Traveller]:
    """The clock starts at NOON and runs: allauth gives back a successful attempt's slot by
    its timestamp, so two attempts must never share one (as on a real clock)."""
    with time_machine.travel(NOON, tick=True) as traveller:
        yield traveller


@pytest.fixture(params=["locmem", "database"])
def shared_cache(request: pytest.FixtureRequest, settings: Settings) -> str:
    """The tests' local memory, and the database cache of the demo and production."""
    if request.param == "database":
        use_the_database_cache(settings)
    return str(request.param)


def use_the_database_cache(settings: Settings) -> None:
    """The cache of the demo and of production without Redis, as base settings configure it."""
    assert base.CACHES["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    settings.CACHES = {"default": base.CACHES["default"]}
    call_command("createcachetable", verbosity=0)
    cache.clear()


@pytest.fixture
def password_checks() -> Iterator[list[str]]:
    """The emails of every failed password check (Django's signal: the password was tried)."""
    seen: list[str] = []
    lock = threading.Lock()

    def record(sender: Any, credentials: dict[str, Any], **kwargs: Any) -> None:
        with lock:
            seen.append(str(credentials.get("email")))

    user_login_failed.connect(record, dispatch_uid="test_bruteforce.password_checks")
    yield seen
    user_login_failed.disconnect(dispatch_uid="test_bruteforce.password_checks")


def attacker_ip(n: int) -> str:
    """A different address for each attempt (a botnet)."""
    return f"10.{n // 250 % 250}.{n % 250 + 1}.7"


_browsers = threading.local()


def fresh_browser() -> Client:
    """A browser without cookies. One test client per thread, reused: building a client's
    handler loads the middleware, and WhiteNoise then walks every static file."""
    client: Client | None = getattr(_browsers, "client", None)
    if client is None:
        client = _browsers.client = Client()
    client.cookies.clear()
    return client


def attempt(email: str, password: str, *, ip: str, **extra: Any) -> tuple[bool, str]:
    """One sign-in from a fresh browser: (signed in?, the page's text)."""
    client = fresh_browser()
    response = post_password(client, email, password, REMOTE_ADDR=ip, **extra)
    return signed_in_user_id(client) is not None, response.content.decode()


# --- the account lock -----------------------------------------------------------------------------


def run_attack(email: str, *, attempts: int, right_every: int) -> dict[str, Any]:
    """``attempts`` sign-ins with wrong passwords, the right one every ``right_every``-th."""
    failures = 0
    successes_before_lock: list[int] = []
    successes_after_lock: list[int] = []
    locked_answers = 0
    for n in range(attempts):
        right = n % right_every == right_every - 1
        ok, page = attempt(email, PASSWORD if right else f"guess-{n}", ip=attacker_ip(n))
        if ok:
            (successes_after_lock if failures >= 5 else successes_before_lock).append(n)
        elif LOCKED in page:
            locked_answers += 1
        else:
            failures += 1
    return {
        "failures": failures,
        "successes_before_lock": successes_before_lock,
        "successes_after_lock": successes_after_lock,
        "locked_answers": locked_answers,
    }


@pytest.mark.usefixtures("shared_cache")
def test_1000_attempts_from_1000_addresses_get_5_guesses_and_no_sign_in_once_locked(
    users: Users, frozen: time_machine.Traveller, password_checks: list[str]
) -> None:
    email = users.admin.email
    result = run_attack(email, attempts=1000, right_every=4)

    # n = 3 (the right password, after 3 failures) signs in; a success gives back only its
    # own slot, so failures 4 and 5 (n = 4, 5) lock the account for the rest of the window.
    assert result["successes_before_lock"] == [3]
    assert result["failures"] == 5
    assert result["successes_after_lock"] == []
    assert result["locked_answers"] == 1000 - 6
    assert password_checks == [email] * 5  # no password was even checked while locked

    # Still locked just before the window of the first failures ends (they were made in the
    # first second after NOON), with the right password; once it has passed, the password works.
    frozen.move_to(NOON + WINDOW - datetime.timedelta(seconds=2))
    ok, page = attempt(email, PASSWORD, ip="192.0.2.10")
    assert not ok and LOCKED in page
    frozen.move_to(NOON + WINDOW + datetime.timedelta(seconds=2))
    assert attempt(email, PASSWORD, ip="192.0.2.13")[0] is True


def test_a_full_database_cache_keeps_the_lock(
    users: Users, frozen: time_machine.Traveller, settings: Settings
) -> None:
    """Django's database cache, past MAX_ENTRIES, evicts a third of its entries in key order,
    allauth's counters first ("allauth:" sorts before most): with Django's default of 300
    entries, a few hundred signed-in sessions or attacker addresses would unlock accounts."""
    use_the_database_cache(settings)
    for n in range(5):
        attempt(users.admin.email, "wrong", ip=attacker_ip(n))
    cache.set_many({f"zz-filler-{n}": n for n in range(1000)}, timeout=3600)
    for n in range(400):  # and 400 more attacker addresses, each with its own counters
        attempt(users.manager.email if n % 2 else users.customer.email, "wrong", ip=attacker_ip(100 + n))
    ok, page = attempt(users.admin.email, PASSWORD, ip=attacker_ip(999))
    assert not ok and LOCKED in page


def test_the_lock_is_per_account(users: Users, frozen: time_machine.Traveller) -> None:
    for n in range(5):
        attempt(users.admin.email, "wrong", ip=attacker_ip(n))
    assert LOCKED in attempt(users.admin.email, PASSWORD, ip=attacker_ip(10))[1]
    assert attempt(users.collector.email, PASSWORD, ip=attacker_ip(11))[0] is True


def test_clearing_allauths_counter_unlocks_the_account(users: Users, frozen: time_machine.Traveller) -> None:
    """The key allauth counts an account's failures under (an operator may clear it)."""
    from allauth.account.adapter import get_adapter
    from allauth.core import ratelimit

    email = users.admin.email
    for n in range(5):
        attempt(email, "wrong", ip=attacker_ip(n))
    assert LOCKED in attempt(email, PASSWORD, ip=attacker_ip(9))[1]

    client = Client()
    request = client.get("/accounts/login/").wsgi_request
    key = get_adapter()._get_login_attempts_cache_key(request, email=email)
    ratelimit.clear(request, action="login_failed", key=key)
    assert attempt(email, PASSWORD, ip=attacker_ip(10))[0] is True


def test_changing_the_port_in_the_host_header_gives_no_fresh_guesses(
    users: Users, frozen: time_machine.Traveller, settings: Settings, password_checks: list[str]
) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    for n in range(20):
        attempt(users.admin.email, f"guess-{n}", ip=attacker_ip(n), HTTP_HOST=f"testserver:{1000 + n}")
    assert len(password_checks) == 5


# --- per client address -----------------------------------------------------------------------------


def test_one_address_gets_10_failures_a_minute_then_a_form_error_then_429(
    users: Users, frozen: time_machine.Traveller
) -> None:
    ip = "198.51.100.7"
    spread = [users.admin, users.manager, users.collector, users.customer, users.creditor]
    for n in range(10):  # two failures on each of five accounts: no account is locked
        ok, page = attempt(spread[n % 5].email, "wrong", ip=ip)
        assert not ok and LOCKED not in page
    ok, page = attempt(users.collector.email, PASSWORD, ip=ip)
    assert not ok and LOCKED in page  # the address is over its allowance, even with a right password
    assert attempt(users.collector.email, PASSWORD, ip="198.51.100.8")[0] is True  # not the account

    # Every sign-in POST counts towards 30 a minute per address: past that, 429.
    statuses = [
        fresh_browser()
        .post("/accounts/login/", {"login": "x@y.example", "password": "p"}, REMOTE_ADDR=ip)
        .status_code
        for _ in range(25)
    ]
    assert statuses[:19] == [200] * 19 and statuses[19:] == [429] * 6

    frozen.shift(datetime.timedelta(minutes=1, seconds=1))
    assert attempt(users.collector.email, PASSWORD, ip=ip)[0] is True


def test_x_forwarded_for_is_not_believed_without_trusted_proxies(
    users: Users, frozen: time_machine.Traveller
) -> None:
    assert base.ALLAUTH_TRUSTED_PROXY_COUNT == 0  # no OPENAR_TRUSTED_PROXIES in the test run
    for n in range(10):
        attempt(
            users.manager.email if n % 2 else users.customer.email,
            "wrong",
            ip="203.0.113.9",
            HTTP_X_FORWARDED_FOR=attacker_ip(n),
        )
    ok, page = attempt(users.collector.email, PASSWORD, ip="203.0.113.9", HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert not ok and LOCKED in page


def test_x_forwarded_for_is_read_behind_one_trusted_proxy(
    users: Users, frozen: time_machine.Traveller, settings: Settings
) -> None:
    settings.OPENAR_TRUSTED_PROXIES = ["10.9.9.9"]  # the adapter reads it via core.http.client_ip
    proxy = "10.9.9.9"
    for n in range(10):
        attempt(
            users.manager.email if n % 2 else users.customer.email,
            "wrong",
            ip=proxy,
            HTTP_X_FORWARDED_FOR="203.0.113.50",
        )
    # The client behind the proxy is over its allowance; another client behind the same proxy is not.
    assert (
        LOCKED in attempt(users.collector.email, PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.50")[1]
    )
    assert attempt(users.collector.email, PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="203.0.113.51")[0] is True


def test_x_forwarded_for_from_a_peer_that_is_not_a_trusted_proxy_is_ignored(
    users: Users, frozen: time_machine.Traveller, settings: Settings
) -> None:
    settings.OPENAR_TRUSTED_PROXIES = ["10.9.9.9"]
    stranger = "198.51.100.99"
    for n in range(10):
        # A client making up a new address each time is still counted by its own address.
        attempt(
            users.manager.email if n % 2 else users.customer.email,
            "wrong",
            ip=stranger,
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        )
    assert (
        LOCKED
        in attempt(users.collector.email, PASSWORD, ip=stranger, HTTP_X_FORWARDED_FOR="203.0.113.77")[1]
    )


def settings_value(name: str, **env: str) -> str:
    """``name`` from openar.settings.base as a fresh process with ``env`` reads it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENAR_")}
    environment.update(env, OPENAR_DATA_DIR=str(Path(tempfile.gettempdir()) / "openar-test-settings"))
    code = f"from openar.settings import base; print(base.{name})"
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip()


def test_the_trusted_proxy_count_follows_openar_trusted_proxies() -> None:
    assert settings_value("ALLAUTH_TRUSTED_PROXY_COUNT") == "0"
    assert settings_value("ALLAUTH_TRUSTED_PROXY_COUNT", OPENAR_TRUSTED_PROXIES="10.0.0.1") == "1"
    assert (
        settings_value("ALLAUTH_TRUSTED_PROXY_COUNT", OPENAR_TRUSTED_PROXIES="10.0.0.1, 10.0.1.0/24") == "2"
    )
    assert settings_value("ALLAUTH_TRUSTED_CLIENT_IP_HEADER") == "None"
    assert settings_value("CACHES['default']['BACKEND']") == "django.core.cache.backends.db.DatabaseCache"
    assert (
        settings_value("CACHES['default']['BACKEND']", OPENAR_REDIS_URL="redis://127.0.0.1:6379/0")
        == "django.core.cache.backends.redis.RedisCache"
    )


# --- the code step ------------------------------------------------------------------------------------


def test_wrong_codes_lock_the_code_step_too(users: Users, frozen: time_machine.Traveller) -> None:
    user = users.collector
    secret = add_totp(user)
    client = Client()
    post_password(client, user.email, REMOTE_ADDR=attacker_ip(1))
    for n in range(5):
        response = client.post(MFA_AUTHENTICATE, {"code": f"{n:06d}"}, REMOTE_ADDR=attacker_ip(2 + n))
        assert "Incorrect code" in response.content.decode()
    response = client.post(MFA_AUTHENTICATE, {"code": totp_code(secret)}, REMOTE_ADDR=attacker_ip(9))
    assert response.status_code == 200 and LOCKED in response.content.decode()
    assert signed_in_user_id(client) is None
    assert [e.data["factor"] for e in events("openar.identity.sign_in_locked", user)] == ["code"]

    frozen.shift(WINDOW + datetime.timedelta(seconds=1))
    fresh = Client()
    post_password(fresh, user.email, REMOTE_ADDR=attacker_ip(20))
    assert (
        fresh.post(MFA_AUTHENTICATE, {"code": totp_code(secret)}, REMOTE_ADDR=attacker_ip(21)).status_code
        == 302
    )
    assert signed_in_user_id(fresh) == str(user.pk)


# --- audit --------------------------------------------------------------------------------------------


def test_failures_and_the_lock_are_audited_once_each_without_the_guesses(
    users: Users, frozen: time_machine.Traveller
) -> None:
    user = users.admin
    guesses = [f"guess-{secrets.token_hex(4)}" for _ in range(8)]
    for n, guess in enumerate(guesses):
        attempt(user.email, guess, ip=attacker_ip(n))
    attempt(user.email, PASSWORD, ip=attacker_ip(50))

    failed = events("openar.identity.sign_in_failed", user)
    locked = events("openar.identity.sign_in_locked", user)
    assert len(failed) == 5  # the three guesses made while locked were never checked
    assert [e.ip for e in failed] == [attacker_ip(n) for n in range(5)]
    assert [(e.data, e.ip) for e in locked] == [
        ({"factor": "password", "attempts": 5, "window_seconds": 300}, attacker_ip(4))
    ]
    assert events("openar.identity.signed_in", user) == []
    assert_no_secret_in_audit(PASSWORD, *guesses)


# --- PostgreSQL: concurrent attempts --------------------------------------------------------------------


def in_threads(jobs: list[Callable[[], bool]], *, workers: int = 16) -> list[bool]:
    def run(job: Callable[[], bool]) -> bool:
        try:
            return job()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, jobs))


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["locmem", "database"])
def test_concurrent_attempts_get_5_guesses_and_none_signs_in_while_locked(
    users: Users, settings: Settings, password_checks: list[str], backend: str
) -> None:
    if backend == "database":
        use_the_database_cache(settings)
    cache.clear()
    email = users.admin.email

    def try_(n: int, password: str) -> Callable[[], bool]:
        return lambda: attempt(email, password, ip=attacker_ip(n))[0]

    # 60 wrong guesses at once: exactly 5 reach the password check.
    results = in_threads([try_(n, f"guess-{n}") for n in range(60)])
    assert not any(results)
    assert len(password_checks) == 5

    # While locked, 200 attempts at once, every fourth with the right password: none signs in.
    results = in_threads([try_(100 + n, PASSWORD if n % 4 == 3 else f"more-{n}") for n in range(200)])
    assert sum(results) == 0
    assert len(password_checks) == 5
    assert User.objects.get(pk=users.admin.pk).last_login is None


# --- the deployment check ----------------------------------------------------------------------------


@pytest.mark.parametrize("preload", ["", "1"], ids=["hsts", "hsts-preload"])
def test_openar_manage_check_deploy_reports_nothing_with_production_settings(
    tmp_path: Path, preload: str
) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAR_", "DJANGO_"))}
    environment.update(
        OPENAR_SECRET_KEY=secrets.token_urlsafe(50),  # picks openar.settings.production
        OPENAR_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        OPENAR_HSTS_SECONDS="31536000",
        OPENAR_HSTS_PRELOAD=preload,
        OPENAR_DATA_DIR=str(tmp_path),
        OPENAR_CLAMD="unix:/run/clamav/clamd.ctl",  # uploads scanned (openar.W001 otherwise)
    )
    result = subprocess.run(
        [sys.executable, "-m", "openar", "manage", "check", "--deploy", "--fail-level", "WARNING"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
