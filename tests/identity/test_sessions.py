"""Sessions: people see theirs and end the others; a new password or a change of
authenticators ends the others; deactivating a user ends them all and shuts every door; the
daily sweep deactivates exactly the users inactive for longer than their organizations allow.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django_scopes import scopes_disabled

from factories import PASSWORD, Users, make_member, make_user
from openar.identity.models import User
from openar.identity.services import (
    deactivate_inactive_users,
    sessions_end,
    user_deactivate,
    user_reactivate,
)
from openar.tenants.models import Membership, Organization, Role

from .test_mfa import (
    NOON,
    activate_totp,
    events,
    reauthenticate,
    set_policy,
    sign_in,
    signed_in_user_id,
)

SESSIONS = "/accounts/sessions/"


@pytest.fixture
def frozen() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def browser(agent: str, ip: str) -> Client:
    return Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)


def session_keys(user: User) -> set[str]:
    return set(UserSession.objects.filter(user=user).values_list("session_key", flat=True))


def live_sessions(user: User) -> int:
    """Sessions in the session store that still sign ``user`` in."""
    return sum(1 for s in Session.objects.all() if str(s.get_decoded().get("_auth_user_id")) == str(user.pk))


def shut_out(client: Client, path: str = "/desk/") -> bool:
    response = client.get(path)
    return response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- seeing and ending sessions ---------------------------------------------------------------------


@pytest.mark.usefixtures("frozen")
def test_a_person_sees_their_sessions_and_signs_out_the_others(users: Users) -> None:
    user = users.collector
    laptop = browser("Laptop Firefox/128.0", "198.51.100.20")
    phone = browser("Phone Safari/17.0", "198.51.100.21")
    sign_in(laptop, user.email)
    sign_in(phone, user.email)
    sign_in(browser("Someone else", "198.51.100.22"), users.manager.email)

    page = laptop.get(SESSIONS).content.decode()
    assert "Laptop Firefox/128.0" in page and "Phone Safari/17.0" in page
    assert "198.51.100.20" in page and "198.51.100.21" in page
    assert "Someone else" not in page
    assert page.count("This device") == 1
    assert page.count(">End<span") == 2  # one button per session
    assert "<table" not in page  # stacked cards: no sideways scrolling on a phone

    assert laptop.post(SESSIONS).status_code == 302  # "Sign out other sessions"
    assert shut_out(phone)
    assert laptop.get("/desk/").status_code == 200
    assert session_keys(user) == {laptop.session.session_key}
    assert live_sessions(user) == 1
    assert live_sessions(users.manager) == 1  # nobody else's

    # With one session left, the page offers to sign out of it.
    assert 'action="/accounts/logout/"' in laptop.get(SESSIONS).content.decode()


@pytest.mark.usefixtures("frozen")
def test_a_new_password_ends_the_other_sessions(users: Users) -> None:
    user = users.collector
    here, there = browser("Here", "198.51.100.30"), browser("There", "198.51.100.31")
    sign_in(here, user.email)
    sign_in(there, user.email)
    new = "another passphrase for the collector"

    response = here.post(
        "/accounts/password/change/", {"oldpassword": PASSWORD, "password1": new, "password2": new}
    )
    assert response.status_code == 302, response.content[:400]
    assert here.get("/desk/").status_code == 200  # this session carries on
    assert shut_out(there)
    assert live_sessions(user) == 1
    assert [e.data["other_sessions_ended"] for e in events("openar.identity.password_changed", user)] == [1]
    sign_in(browser("There", "198.51.100.31"), user.email, password=new)


@pytest.mark.usefixtures("frozen")
def test_adding_and_removing_an_authenticator_ends_the_other_sessions(
    users: Users, django_capture_on_commit_callbacks: Any
) -> None:
    user = users.admin
    here, there = browser("Here", "198.51.100.40"), browser("There", "198.51.100.41")
    sign_in(here, user.email)
    sign_in(there, user.email)
    reauthenticate(here)
    with django_capture_on_commit_callbacks(execute=True):
        secret = activate_totp(here)
    assert shut_out(there)
    assert here.get("/desk/").status_code == 200
    assert live_sessions(user) == 1

    again = browser("Again", "198.51.100.42")
    sign_in(again, user.email, secret=secret)
    reauthenticate(here)
    with django_capture_on_commit_callbacks(execute=True):
        assert here.post("/accounts/2fa/totp/deactivate/").status_code == 302
    assert not Authenticator.objects.filter(user=user).exists()
    assert shut_out(again)
    assert here.get("/desk/").status_code == 200


# --- deactivation ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("frozen")
def test_deactivating_a_user_ends_every_session_and_shuts_the_desk_and_the_portal(
    users: Users, supplier: Organization
) -> None:
    staff_a, staff_b = browser("A", "198.51.100.50"), browser("B", "198.51.100.51")
    sign_in(staff_a, users.collector.email)
    sign_in(staff_b, users.collector.email)
    direct = Client()
    direct.force_login(users.collector)  # a sign-in by another door (recorded too)
    customer = browser("C", "198.51.100.52")
    sign_in(customer, users.customer.email)
    assert len(session_keys(users.collector)) == 3

    ended = user_deactivate(user=users.collector, actor=users.admin)
    assert ended == 3
    assert session_keys(users.collector) == set()
    assert live_sessions(users.collector) == 0
    for client in (staff_a, staff_b, direct):
        assert shut_out(client)
        assert shut_out(client, "/portal/")
    refused = Client().post("/accounts/login/", {"login": users.collector.email, "password": PASSWORD})
    assert refused.status_code == 302 and refused["Location"] == "/accounts/inactive/"
    assert customer.get("/portal/").status_code == 200  # nobody else is touched

    [event] = events("openar.user.deactivated", users.collector)
    assert (event.organization_id, event.actor_id, event.data) == (
        supplier.pk,
        users.admin.pk,
        {"sessions_ended": 3, "reason": "deactivated"},
    )

    user_deactivate(user=users.customer, actor=users.admin)
    assert shut_out(customer, "/portal/")

    assert user_reactivate(user=users.collector, actor=users.admin) is True
    assert user_reactivate(user=users.collector, actor=users.admin) is False
    assert len(events("openar.user.reactivated", users.collector)) == 1
    back = Client()
    sign_in(back, users.collector.email)
    assert back.get("/desk/").status_code == 200


@pytest.mark.usefixtures("frozen")
def test_deactivating_an_inactive_user_still_ends_stray_sessions_and_audits_nothing(users: Users) -> None:
    client = Client()
    sign_in(client, users.manager.email)
    User.objects.filter(pk=users.manager.pk).update(is_active=False)
    assert user_deactivate(user=users.manager, actor=None) == 1
    assert events("openar.user.deactivated") == []


def test_sessions_end_keeps_only_the_session_asked_for(users: Users, frozen: time_machine.Traveller) -> None:
    one, two = Client(), Client()
    sign_in(one, users.customer.email)
    sign_in(two, users.customer.email)
    assert sessions_end(user=users.customer, keep_session_key=one.session.session_key) == 1
    assert signed_in_user_id(one) == str(users.customer.pk)
    assert shut_out(two, "/portal/")


# --- the daily sweep -----------------------------------------------------------------------------------


TODAY_NOON = datetime.datetime(2025, 9, 1, 12, 0, tzinfo=datetime.UTC)


def person(
    email: str,
    memberships: list[tuple[Organization, str]],
    *,
    last_login_days: int | None,
    joined_days: int = 400,
) -> User:
    """A user with memberships; last signed in (or joined) that many days before TODAY_NOON."""
    user = make_user(email)
    for organization, role in memberships:
        Membership.objects.create(organization=organization, user=user, role=role)
    User.objects.filter(pk=user.pk).update(
        date_joined=TODAY_NOON - datetime.timedelta(days=joined_days),
        last_login=None if last_login_days is None else TODAY_NOON - datetime.timedelta(days=last_login_days),
    )
    user.refresh_from_db()
    return user


def test_the_daily_sweep_deactivates_exactly_the_users_inactive_beyond_every_organizations_limit(
    supplier: Organization, other_supplier: Organization, agency: Organization
) -> None:
    set_policy(other_supplier, inactive_days=30)  # Acme keeps the default, 90
    set_policy(agency, inactive_days=0)  # never
    staff = Role.COLLECTOR
    acme, globex, agency_ = [(supplier, staff)], [(other_supplier, staff)], [(agency, staff)]
    people = {
        "acme_91_days": person("a91@acme.example", acme, last_login_days=91),
        "acme_89_days": person("a89@acme.example", acme, last_login_days=89),
        "acme_never_joined_100_days_ago": person(
            "n100@acme.example", acme, last_login_days=None, joined_days=100
        ),
        "acme_never_joined_10_days_ago": person(
            "n10@acme.example", acme, last_login_days=None, joined_days=10
        ),
        "globex_45_days": person("g45@globex.example", globex, last_login_days=45),
        "globex_29_days": person("g29@globex.example", globex, last_login_days=29),
        "agency_400_days": person("x400@northwind.example", agency_, last_login_days=400),
        "acme_and_agency_200_days": person("ax@both.example", acme + agency_, last_login_days=200),
        "acme_and_globex_60_days": person("ag@both.example", acme + globex, last_login_days=60),
        "acme_and_globex_120_days": person("ag120@both.example", acme + globex, last_login_days=120),
        "acme_reactivated_5_days_ago": person("r@acme.example", acme, last_login_days=200),
        "acme_already_inactive": person("i@acme.example", acme, last_login_days=200),
        "operator_without_membership": person("op@openar.example", [], last_login_days=999),
    }
    User.objects.filter(pk=people["acme_already_inactive"].pk).update(is_active=False)
    with time_machine.travel(TODAY_NOON - datetime.timedelta(days=5), tick=False):
        reactivated = people["acme_reactivated_5_days_ago"]
        User.objects.filter(pk=reactivated.pk).update(is_active=False)
        assert user_reactivate(user=reactivated, actor=None)
    # A session of one of the users to deactivate, to be ended.
    with time_machine.travel(TODAY_NOON - datetime.timedelta(days=91), tick=False):
        sign_in(Client(), "a91@acme.example")

    with time_machine.travel(TODAY_NOON, tick=False):
        out = io.StringIO()
        call_command("deactivate_inactive", stdout=out)
        assert out.getvalue().strip() == (
            "Deactivated 4 inactive users and 2 memberships (of people still active in another organization)."
        )
        assert deactivate_inactive_users(TODAY_NOON).users == 0  # a second run finds nobody

    active = {name for name, user in people.items() if User.objects.get(pk=user.pk).is_active}
    assert active == {
        "acme_89_days",
        "acme_never_joined_10_days_ago",
        "globex_29_days",
        "agency_400_days",
        "acme_and_agency_200_days",
        "acme_and_globex_60_days",
        "acme_reactivated_5_days_ago",
        "operator_without_membership",
    }
    with scopes_disabled():
        inactive_memberships = set(
            Membership.objects.filter(is_active=False).values_list("user__email", "organization__slug")
        )
    assert inactive_memberships == {("ax@both.example", "acme"), ("ag@both.example", "globex")}
    assert session_keys(people["acme_91_days"]) == set()
    deactivated = {int(e.object_id) for e in events("openar.user.deactivated")}
    assert deactivated == {
        people[name].pk
        for name in (
            "acme_91_days",
            "acme_never_joined_100_days_ago",
            "globex_45_days",
            "acme_and_globex_120_days",
        )
    }
    assert {e.data["reason"] for e in events("openar.user.deactivated")} == {"inactive"}
    # The user of two organizations is deactivated once, audited in both.
    assert sorted(
        e.organization_id for e in events("openar.user.deactivated", people["acme_and_globex_120_days"])
    ) == sorted([supplier.pk, other_supplier.pk])
    assert len(events("openar.membership.deactivated")) == 2


def test_an_organization_that_never_deactivates_keeps_everyone(agency: Organization) -> None:
    set_policy(agency, inactive_days=0)
    make_member(agency, Role.ADMIN, "old@northwind.example")
    User.objects.update(last_login=TODAY_NOON - datetime.timedelta(days=3650))
    assert deactivate_inactive_users(TODAY_NOON).users == 0
    assert User.objects.filter(is_active=False).count() == 0


def test_the_security_page_links_to_the_sessions(users: Users, frozen: time_machine.Traveller) -> None:
    client = Client()
    sign_in(client, users.customer.email)
    assert 'href="/accounts/sessions/"' in client.get("/accounts/2fa/").content.decode()
    assert client.get(SESSIONS).status_code == 200
