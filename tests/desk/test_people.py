"""The desk's People page: inviting staff and creditor clients, first passwords chosen by the
person (an emailed link) or assigned by the organization (shown once, changed at first
sign-in), deactivation and reactivation within the seat limits."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_scopes import scopes_disabled
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks

from factories import PASSWORD, Users, make_member, signed_in, text_of
from openar.core.models import AuditEvent
from openar.customers.models import Customer
from openar.identity.models import User
from openar.identity.services import InactiveSweep, deactivate_inactive_users
from openar.tenants.models import Creditor, Membership, Organization, Role
from openar.tenants.services import policy_update

PEOPLE = "/desk/people/"
INVITE = "/desk/people/invite/"
CHANGE_PASSWORD = "/accounts/password/change/"
NEW_PASSWORD = "a brand new passphrase of mine"


def set_policy(organization: Organization, **changes: Any) -> None:
    policy_update(organization=organization, actor=None, changes=changes)


def membership_of(user: User) -> Membership:
    with scopes_disabled():
        return Membership.objects.get(user=user)


def events(action: str) -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def invite(client: Client, capture: DjangoCaptureOnCommitCallbacks, **data: Any) -> Any:
    mail.outbox.clear()
    with capture(execute=True):
        return client.post(INVITE, {"full_name": "", "role": Role.COLLECTOR, **data})


def sign_in(client: Client, email: str, password: str) -> Any:
    return client.post("/accounts/login/", {"login": email, "password": password})


# --- the page ------------------------------------------------------------------------------------


def test_admins_see_everyone_who_may_sign_in(users: Users, customer: Customer) -> None:
    page = text_of(signed_in(users.admin).get(PEOPLE).content)

    for person in (users.admin, users.collector, users.manager, users.customer):
        assert person.email in page
    assert "Collector · the desk, as collector" in page
    assert "Customer contact · the account of Bolt Hardware" in page
    assert users.creditor.email not in page  # a member of the agency, not of Acme
    staff_only = text_of(signed_in(users.admin).get(PEOPLE + "?kind=staff").content)
    assert users.customer.email not in staff_only
    assert users.collector.email in staff_only
    found = text_of(signed_in(users.admin).get(PEOPLE + "?q=manager").content)
    assert users.manager.email in found and users.collector.email not in found


@pytest.mark.parametrize("role", ["collector", "manager"])
def test_only_admins_manage_people(users: Users, role: str) -> None:
    client = signed_in(getattr(users, role))
    target = membership_of(users.customer)

    assert client.get(PEOPLE).status_code == 403
    assert client.post(INVITE, {"email": "x@acme.example", "role": "admin"}).status_code == 403
    assert client.post(f"/desk/people/{target.pk}/deactivate/").status_code == 403
    assert not User.objects.filter(email="x@acme.example").exists()
    assert membership_of(users.customer).is_active


# --- a password the person chooses ---------------------------------------------------------------


def test_an_invited_collector_chooses_a_password_from_the_email_and_signs_in(
    users: Users, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    response = invite(
        signed_in(users.admin),
        django_capture_on_commit_callbacks,
        email="Robin@Acme.example",
        full_name="Robin Park",
    )

    assert response.status_code == 200
    assert "Invitation sent To robin@acme.example ." in text_of(response.content)
    robin = User.objects.get(email="robin@acme.example")
    assert (robin.full_name, robin.has_usable_password(), robin.must_change_password) == (
        "Robin Park",
        False,
        False,
    )
    assert membership_of(robin).role == Role.COLLECTOR
    (message,) = mail.outbox
    assert message.to == ["robin@acme.example"]
    assert "access to the desk, as collector" in message.body
    assert "two-step verification" in message.body  # the default policy asks staff for MFA
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+/)", message.body)
    assert link is not None

    person = Client()
    form = person.get(link.group(1), follow=True)
    set_url = form.redirect_chain[-1][0]
    too_short = person.post(set_url, {"password1": "short", "password2": "short"})
    assert "Use at least" in text_of(too_short.content)
    done = person.post(set_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302
    robin.refresh_from_db()
    assert robin.check_password(NEW_PASSWORD)
    # The link worked once: the token is spent with the password it was made for.
    assert "Bad Token" in text_of(Client().get(link.group(1), follow=True).content)
    assert sign_in(Client(), robin.email, NEW_PASSWORD).status_code == 302


def test_an_agency_invites_a_creditor_client_for_one_creditor(
    agency: Organization,
    agency_clients: tuple[Creditor, Creditor],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    admin = make_member(agency, Role.ADMIN, "admin@northwind.example")
    client = signed_in(admin)
    mercy = agency_clients[0]
    assert mercy.name in text_of(client.get(PEOPLE).content)

    missing = invite(client, django_capture_on_commit_callbacks, email="cfo@mercy.example", role="creditor")
    assert missing.status_code == 400
    assert "Choose the creditor this person works for." in text_of(missing.content)
    assert mail.outbox == []

    done = invite(
        client,
        django_capture_on_commit_callbacks,
        email="cfo@mercy.example",
        role="creditor",
        creditor=mercy.pk,
    )
    assert done.status_code == 200
    membership = membership_of(User.objects.get(email="cfo@mercy.example"))
    assert (membership.role, membership.creditor_id) == (Role.CREDITOR, mercy.pk)
    assert f"the accounts placed by {mercy.name}" in mail.outbox[0].body


def test_a_supplier_offers_no_creditor_role(users: Users) -> None:
    page = signed_in(users.admin).get(PEOPLE).content.decode()
    role_select = page[page.index('name="role"') : page.index("</select>", page.index('name="role"'))]
    assert "collector" in role_select and 'value="creditor"' not in role_select
    assert 'name="creditor"' not in page


# --- a password the organization assigns ----------------------------------------------------------


def test_an_assigned_first_password_is_shown_once_and_must_be_changed_at_first_sign_in(
    users: Users, supplier: Organization, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    set_policy(supplier, password_mode="assigned")

    response = invite(signed_in(users.admin), django_capture_on_commit_callbacks, email="sam@acme.example")

    assert response.status_code == 200
    assert (response["Cache-Control"], response["Referrer-Policy"]) == ("no-store", "no-referrer")
    match = re.search(r'id="first-password"[^>]*value="([a-z0-9-]+)"', response.content.decode())
    assert match is not None
    first = match.group(1)
    assert re.fullmatch(r"[a-z2-9]{5}(-[a-z2-9]{5}){3}", first)
    sam = User.objects.get(email="sam@acme.example")
    assert sam.must_change_password and sam.check_password(first)
    (message,) = mail.outbox
    assert first not in message.body and "will give you your first password separately" in message.body
    with scopes_disabled():
        assert not any(first in str(event.data) for event in AuditEvent.objects.all())
    (invited,) = events("openar.membership.invited")
    assert invited.data["first_password"] == "assigned"

    person = Client()
    assert sign_in(person, sam.email, first).status_code == 302
    for path in ("/desk/", "/desk/customers/", "/accounts/2fa/", "/"):
        redirect = person.get(path)
        assert (redirect.status_code, redirect["Location"]) == (302, CHANGE_PASSWORD), path
    page = text_of(person.get(CHANGE_PASSWORD).content)
    assert "Choose your own password to continue" in page

    same = person.post(CHANGE_PASSWORD, {"oldpassword": first, "password1": first, "password2": first})
    assert "Choose a new password, not the one you were given." in text_of(same.content)
    sam.refresh_from_db()
    assert sam.must_change_password

    changed = person.post(
        CHANGE_PASSWORD, {"oldpassword": first, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert changed.status_code == 302
    sam.refresh_from_db()
    assert (sam.must_change_password, sam.check_password(NEW_PASSWORD)) == (False, True)
    assert person.get("/desk/").status_code == 200


def test_sending_again_replaces_an_assigned_password_that_was_never_used(
    users: Users, supplier: Organization, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    set_policy(supplier, password_mode="assigned")
    admin = signed_in(users.admin)
    first = invite(admin, django_capture_on_commit_callbacks, email="sam@acme.example")
    old = re.search(r'value="([a-z0-9-]{23})"', first.content.decode())
    sam = User.objects.get(email="sam@acme.example")

    again = admin.post(f"/desk/people/{membership_of(sam).pk}/resend/")

    new = re.search(r'value="([a-z0-9-]{23})"', again.content.decode())
    assert old is not None and new is not None and old.group(1) != new.group(1)
    sam.refresh_from_db()
    assert not sam.check_password(old.group(1)) and sam.check_password(new.group(1))
    assert [e.data for e in events("openar.membership.invitation_resent")] == [{"first_password": "assigned"}]


def test_a_person_with_their_own_password_keeps_it_when_invited_elsewhere(
    users: Users,
    supplier: Organization,
    agency: Organization,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    set_policy(supplier, password_mode="assigned")
    response = invite(signed_in(users.admin), django_capture_on_commit_callbacks, email=users.creditor.email)

    assert "They already have a password" in text_of(response.content)
    assert 'id="first-password"' not in response.content.decode()
    users.creditor.refresh_from_db()
    assert users.creditor.check_password(PASSWORD) and not users.creditor.must_change_password
    assert "Sign in with this email address and your usual password" in mail.outbox[0].body


# --- deactivate and reactivate ---------------------------------------------------------------------


def test_deactivating_ends_the_persons_sessions_and_reactivating_lets_them_back(users: Users) -> None:
    admin = signed_in(users.admin)
    person = Client()
    assert sign_in(person, users.collector.email, PASSWORD).status_code == 302
    membership = membership_of(users.collector)

    response = admin.post(f"/desk/people/{membership.pk}/deactivate/")

    assert response.status_code == 302
    assert "can no longer sign in to Acme Supplies (1 session ended)" in text_of(admin.get(PEOPLE).content)
    users.collector.refresh_from_db()
    assert (membership_of(users.collector).is_active, users.collector.is_active) == (False, False)
    assert person.get("/desk/").status_code == 302  # signed out
    refused = sign_in(Client(), users.collector.email, PASSWORD)
    assert (refused.status_code, refused["Location"]) == (302, "/accounts/inactive/")
    assert [e.data["reason"] for e in events("openar.membership.deactivated")] == ["by_admin"]

    admin.post(f"/desk/people/{membership.pk}/reactivate/")

    users.collector.refresh_from_db()
    assert (membership_of(users.collector).is_active, users.collector.is_active) == (True, True)
    assert sign_in(Client(), users.collector.email, PASSWORD).status_code == 302
    assert len(events("openar.membership.reactivated")) == 1


def test_admins_cannot_deactivate_themselves(users: Users) -> None:
    admin = signed_in(users.admin)

    admin.post(f"/desk/people/{membership_of(users.admin).pk}/deactivate/")

    assert "You cannot deactivate yourself." in text_of(admin.get(PEOPLE).content)
    assert membership_of(users.admin).is_active


def test_reactivation_respects_the_seat_limit(
    users: Users, supplier: Organization, customer: Customer
) -> None:
    admin = signed_in(users.admin)
    membership = membership_of(users.customer)
    admin.post(f"/desk/people/{membership.pk}/deactivate/")
    make_member(supplier, Role.CUSTOMER, "second@bolt.example", customer=customer)
    set_policy(supplier, seats_per_customer=1)

    admin.post(f"/desk/people/{membership.pk}/reactivate/")

    assert "Bolt Hardware already has 1 user, the most your organization's policy allows." in text_of(
        admin.get(PEOPLE).content
    )
    assert not membership_of(users.customer).is_active


def test_a_membership_reactivated_by_an_admin_counts_its_inactivity_afresh(
    users: Users, supplier: Organization, agency: Organization
) -> None:
    """Someone active elsewhere loses only the stale membership to the daily sweep; once an
    admin gives it back, the next sweep leaves it alone."""
    both = make_member(supplier, Role.COLLECTOR, "both@acme.example")
    with scopes_disabled():
        Membership.objects.create(organization=agency, user=both, role=Role.COLLECTOR)
    set_policy(supplier, inactive_days=30)
    now = timezone.now()
    User.objects.filter(pk=both.pk).update(last_login=now - datetime.timedelta(days=45))
    assert deactivate_inactive_users(now).memberships == 1
    with scopes_disabled():
        stale = Membership.objects.get(user=both, organization=supplier)
    assert not stale.is_active

    signed_in(users.admin).post(f"/desk/people/{stale.pk}/reactivate/")

    stale.refresh_from_db()
    assert stale.is_active
    assert deactivate_inactive_users(now + datetime.timedelta(days=1)) == InactiveSweep(
        users=0, memberships=0
    )
    stale.refresh_from_db()
    assert stale.is_active


def test_a_deactivation_that_leaves_no_access_is_in_the_organizations_log(users: Users) -> None:
    signed_in(users.admin).post(f"/desk/people/{membership_of(users.collector).pk}/deactivate/")
    assert [e.object_id for e in events("openar.user.deactivated")] == [str(users.collector.pk)]


def test_a_deactivated_person_is_reactivated_not_invited_again(
    users: Users, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    admin = signed_in(users.admin)
    admin.post(f"/desk/people/{membership_of(users.collector).pk}/deactivate/")

    again = invite(admin, django_capture_on_commit_callbacks, email=users.collector.email)

    assert again.status_code == 400
    assert "Reactivate them on the People page" in text_of(again.content)
    assert mail.outbox == []
    before = len(events("openar.membership.reactivated"))
    admin.post(f"/desk/people/{membership_of(users.customer).pk}/reactivate/")  # active already
    assert len(events("openar.membership.reactivated")) == before  # nothing changed, nothing logged
