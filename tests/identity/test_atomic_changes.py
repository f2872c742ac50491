"""A change of authenticators or password commits together with its audit row, or not at all
(openar.identity.middleware.AtomicAccountChangesMiddleware).

These tests use ``transactional_db``: the database commits as it would in production, so
"the row is not there" means it was rolled back, not merely never committed by a test
transaction. The audit writer is made to fail by replacing ``log_event`` in
``openar.identity.signals``; Django's test client re-raises the exception of the request.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any, NoReturn

import django
import pytest
import time_machine
from allauth.mfa.models import Authenticator
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import Client
from pytest_django.fixtures import Settings

from factories import PASSWORD, Users
from openar.identity import middleware
from openar.identity.middleware import (
    AtomicAccountChangesMiddleware,
    account_change_prefixes,
    run_allauth_commit_hooks_now,
)
from openar.identity.models import User

from .test_mfa import NOON, TOTP_ACTIVATE, activate_totp, events, reauthenticate, sign_in, totp_code

MIDDLEWARE = "openar.identity.middleware.AtomicAccountChangesMiddleware"
ADDED = "openar.identity.authenticator_added"


class AuditDown(RuntimeError):
    pass


def audit_down(*args: Any, **kwargs: Any) -> NoReturn:
    raise AuditDown("the audit log cannot be written")


@pytest.fixture
def frozen() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def ready_to_activate(user: User) -> tuple[Client, str]:
    """Signed in, password re-entered, the set-up page open: the client and the secret the
    page shows."""
    client = Client()
    sign_in(client, user.email)
    reauthenticate(client)
    assert client.get(TOTP_ACTIVATE).status_code == 200
    secret: str = client.session["mfa.totp.secret"]
    return client, secret


def test_the_wrapped_pages_are_the_mfa_pages_and_the_password_change_set_and_reset_pages() -> None:
    assert account_change_prefixes() == (
        "/accounts/2fa/",
        "/accounts/password/change/",
        "/accounts/password/set/",
        "/accounts/password/reset/key/",
    )


@pytest.mark.usefixtures("transactional_db")
def test_an_authenticator_app_is_not_added_when_its_audit_row_cannot_be_written(
    users: Users, frozen: time_machine.Traveller, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = users.collector
    client, secret = ready_to_activate(user)

    with monkeypatch.context() as patch:
        patch.setattr("openar.identity.signals.log_event", audit_down)
        with pytest.raises(AuditDown):
            client.post(TOTP_ACTIVATE, {"code": totp_code(secret)})

    assert not Authenticator.objects.filter(user=user).exists()  # neither the app nor the codes
    assert events(ADDED, user) == []

    # With the audit back, the same person sets it up (the next period's code).
    frozen.shift(datetime.timedelta(seconds=30))
    activate_totp(client)
    assert Authenticator.objects.filter(user=user).count() == 2


@pytest.mark.usefixtures("transactional_db")
def test_an_activation_commits_the_authenticators_and_their_audit_rows(users: Users) -> None:
    with time_machine.travel(NOON, tick=False):
        user = users.collector
        client, secret = ready_to_activate(user)
        response = client.post(TOTP_ACTIVATE, {"code": totp_code(secret)})

    assert response.status_code == 302, response.content[:300]
    assert set(Authenticator.objects.filter(user=user).values_list("type", flat=True)) == {
        Authenticator.Type.TOTP,
        Authenticator.Type.RECOVERY_CODES,
    }
    # No on_commit capturing here: the audit rows were written in the request's transaction.
    assert sorted(e.data["type"] for e in events(ADDED, user)) == ["recovery_codes", "totp"]


@pytest.mark.usefixtures("transactional_db", "frozen")
def test_without_the_middleware_the_authenticator_outlives_its_failed_audit(
    users: Users, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the middleware exists: allauth commits the authenticator before our handler runs."""
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != MIDDLEWARE]
    user = users.collector
    client, secret = ready_to_activate(user)

    monkeypatch.setattr("openar.identity.signals.log_event", audit_down)
    with pytest.raises(AuditDown):
        client.post(TOTP_ACTIVATE, {"code": totp_code(secret)})

    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


@pytest.mark.usefixtures("transactional_db", "frozen")
def test_a_password_is_not_changed_when_its_audit_row_cannot_be_written(
    users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = users.collector
    client = Client()
    sign_in(client, user.email)
    new = "another passphrase for the collector"

    monkeypatch.setattr("openar.identity.signals.log_event", audit_down)
    with pytest.raises(AuditDown):
        client.post(
            "/accounts/password/change/", {"oldpassword": PASSWORD, "password1": new, "password2": new}
        )

    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not user.check_password(new)


# --- a new password from a reset link -------------------------------------------------------------


def reset_form(user: User) -> tuple[Client, str]:
    """The reset link emailed to ``user``, opened: the client and the form's address."""
    client = Client()
    mail.outbox.clear()
    assert client.post("/accounts/password/reset/", {"email": user.email}).status_code == 302
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+/)", mail.outbox[0].body)
    assert link is not None, mail.outbox[0].body
    opened = client.get(link.group(1))
    assert opened.status_code == 302  # allauth moves the key out of the address
    return client, opened["Location"]


@pytest.mark.usefixtures("transactional_db", "frozen")
def test_a_password_reset_is_not_kept_when_its_audit_row_cannot_be_written(
    users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = users.collector
    client, form = reset_form(user)
    assert form.startswith("/accounts/password/reset/key/")
    new = "a brand new passphrase for the collector"

    with monkeypatch.context() as patch:
        patch.setattr("openar.identity.signals.log_event", audit_down)
        with pytest.raises(AuditDown):
            client.post(form, {"password1": new, "password2": new})

    user.refresh_from_db()
    assert user.check_password(PASSWORD) and not user.check_password(new)
    assert events("openar.identity.password_reset", user) == []


@pytest.mark.usefixtures("transactional_db", "frozen")
def test_a_password_reset_commits_with_its_audit_row(users: Users) -> None:
    user = users.collector
    client, form = reset_form(user)
    new = "a brand new passphrase for the collector"

    done = client.post(form, {"password1": new, "password2": new})

    assert done.status_code == 302, done.content[:300]
    user.refresh_from_db()
    assert user.check_password(new)
    assert len(events("openar.identity.password_reset", user)) == 1


# --- Django's internal list of pending callbacks: it works, or it fails loudly ---------------------


@pytest.mark.django_db(transaction=True)
def test_allauths_callbacks_run_before_the_commit_on_this_django() -> None:
    """What the middleware reads is what this Django keeps: an allauth callback registered
    in the block runs before it ends; anybody else's waits for the commit."""
    ran: list[str] = []

    def allauths() -> None:
        ran.append("allauth")

    def others() -> None:
        ran.append("other")

    allauths.__module__ = "allauth.mfa.fake"
    with transaction.atomic():
        connection = transaction.get_connection()
        start = len(middleware._pending(connection))
        transaction.on_commit(allauths)
        transaction.on_commit(others)
        run_allauth_commit_hooks_now(connection, start)
        assert ran == ["allauth"]
    assert ran == ["allauth", "other"]


def test_a_django_it_was_not_checked_against_stops_it_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(django, "VERSION", (6, 1, 0, "final", 0))
    with pytest.raises(ImproperlyConfigured, match=r"checked for Django 4\.2 to 5\.2; this is Django 6\.1"):
        AtomicAccountChangesMiddleware(lambda request: None)  # type: ignore[arg-type,return-value]


@pytest.mark.django_db
def test_a_list_that_is_not_djangos_triples_stops_the_request() -> None:
    """Were Django to change what it keeps, the callbacks must not be passed over quietly
    (they would run after the commit again): the request fails, and rolls back."""
    with transaction.atomic():
        connection = transaction.get_connection()
        connection.run_on_commit.append((lambda: None, False))  # type: ignore[arg-type]
        try:
            with pytest.raises(RuntimeError, match="no longer holds"):
                run_allauth_commit_hooks_now(connection, 0)
        finally:
            connection.run_on_commit.pop()
