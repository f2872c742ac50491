"""The organization's idle timeout and absolute session lifetime end sessions, full and
magic-link alike; activity within the idle window keeps a session alive."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.test import Client
from django_scopes import scope

from factories import Users
from openar.customers.models import Contact
from openar.identity.magic import magic_link_create
from openar.tenants.models import Organization, SecurityPolicy

START = datetime.datetime(2025, 6, 30, 12, 0, tzinfo=datetime.UTC)


def _policy(organization: Organization, *, idle: int, hours: int) -> None:
    SecurityPolicy.objects.filter(organization=organization).update(
        session_idle_minutes=idle, session_max_hours=hours
    )


def _at(minutes: float) -> time_machine.travel:
    return time_machine.travel(START + datetime.timedelta(minutes=minutes), tick=False)


@pytest.mark.django_db
def test_every_organization_gets_a_policy_when_created(supplier: Organization) -> None:
    assert SecurityPolicy.objects.filter(organization=supplier).count() == 1


@pytest.mark.django_db
def test_a_full_session_ends_after_the_idle_timeout(supplier: Organization, users: Users) -> None:
    _policy(supplier, idle=30, hours=12)
    client = Client()
    with _at(0):
        client.force_login(users.customer)
        assert client.get("/portal/").status_code == 200
    with _at(29):
        assert client.get("/portal/").status_code == 200  # activity: the idle clock restarts
    with _at(58):
        assert client.get("/portal/").status_code == 200
    with _at(58 + 31):
        response = client.get("/portal/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?expired=1")
    with _at(58 + 32):
        assert client.get("/portal/").status_code == 302  # signed out for good
        assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_busy_session_still_ends_at_its_absolute_lifetime(supplier: Organization, users: Users) -> None:
    _policy(supplier, idle=60, hours=2)
    client = Client()
    with _at(0):
        client.force_login(users.admin)
        assert client.get("/desk/").status_code == 200
    for minute in range(20, 120, 20):
        with _at(minute):
            assert client.get("/desk/").status_code == 200
    with _at(121):
        response = client.get("/desk/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?expired=1")


@pytest.mark.django_db
def test_a_magic_link_session_ends_after_the_idle_timeout(supplier: Organization, contact: Contact) -> None:
    _policy(supplier, idle=15, hours=12)
    client = Client()
    with _at(0):
        with scope(organization=supplier):
            issued = magic_link_create(contact=contact)
        client.get(f"/l/{issued.token}/")
        assert client.post("/l/confirm/").status_code == 302
        assert client.get("/portal/").status_code == 200
    with _at(16):
        response = client.get("/portal/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?expired=1")
    assert "openar_magic" not in client.session


@pytest.mark.django_db
def test_the_sign_in_page_says_why(supplier: Organization) -> None:
    body = Client().get("/accounts/login/?expired=1").content.decode()
    assert "Your session ended after a while without activity" in body
