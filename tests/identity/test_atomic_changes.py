"""A change of authenticators or password commits together with its audit row, or not at all
(openar.identity.middleware.AtomicAccountChangesMiddleware).

These tests use ``transactional_db``: the database commits as it would in production, so
"the row is not there" means it was rolled back, not merely never committed by a test
transaction. The audit writer is made to fail by replacing ``log_event`` in
``openar.identity.signals``; Django's test client re-raises the exception of the request.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from django.test import Client
from pytest_django.fixtures import Settings

from factories import PASSWORD, Users
from openar.identity.middleware import account_change_prefixes
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


def test_the_wrapped_pages_are_the_mfa_pages_and_the_password_change_and_set_pages() -> None:
    assert account_change_prefixes() == (
        "/accounts/2fa/",
        "/accounts/password/change/",
        "/accounts/password/set/",
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
