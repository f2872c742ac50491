"""Staff sign-in links: only where the organization's policy allows them, single use, short
lived, never a way around a second factor, and refused once the policy or the person's
access changes."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django_scopes import scopes_disabled
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks

from factories import Users, make_contact, text_of
from openar.customers.models import Customer
from openar.identity.models import MagicLink
from openar.tenants.models import Membership, Organization

from .test_mfa import MFA_AUTHENTICATE, NOON, add_totp, events, set_policy, signed_in_user_id, totp_code

REQUEST = "/l/request/"
LINK = re.compile(r"https?://[^/\s]+(/l/[A-Za-z0-9_-]+/)")


@pytest.fixture
def frozen() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


@pytest.fixture
def allowed(supplier: Organization) -> None:
    set_policy(supplier, staff_magic_links=True)


def request_link(
    email: str, capture: DjangoCaptureOnCommitCallbacks, client: Client | None = None
) -> str | None:
    """Ask for a link on the sign-in page; the link path from the email, if one came."""
    mail.outbox.clear()
    with capture(execute=True):
        response = (client or Client()).post(REQUEST, {"email": email})
    assert response.status_code == 200
    assert "Check your email" in text_of(response.content)
    links = [match.group(1) for message in mail.outbox for match in LINK.finditer(message.body)]
    assert len(links) <= 1
    return links[0] if links else None


def staff_links() -> list[MagicLink]:
    with scopes_disabled():
        return list(MagicLink.objects.filter(user__isnull=False).order_by("pk"))


@pytest.mark.usefixtures("frozen", "allowed")
def test_a_staff_link_signs_in_once_and_lands_on_the_desk(
    users: Users, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    path = request_link(users.collector.email, django_capture_on_commit_callbacks)
    assert path is not None
    (message,) = mail.outbox
    assert (message.to, message.subject) == ([users.collector.email], "Sign in to Acme Supplies's desk")
    assert "It works once, for 15 minutes." in message.body
    (link,) = staff_links()
    assert (link.user_id, link.max_uses, link.uses, link.contact_id) == (users.collector.pk, 1, 0, None)
    assert link.expires_at == NOON + datetime.timedelta(minutes=15)

    client = Client()
    opened = client.get(path)
    assert (opened.status_code, opened["Location"], opened["Referrer-Policy"]) == (
        302,
        "/l/confirm/",
        "no-referrer",
    )
    confirm = client.get("/l/confirm/")
    assert "Sign in to the desk as collector@acme.example" in text_of(confirm.content)
    assert staff_links()[0].uses == 0  # opening and looking consume nothing
    assert signed_in_user_id(client) is None

    response = client.post("/l/confirm/")

    assert (response.status_code, response["Location"]) == (302, "/desk/")
    assert signed_in_user_id(client) == str(users.collector.pk)
    assert client.get("/desk/").status_code == 200
    (signed_in,) = events("openar.identity.signed_in", users.collector)
    assert signed_in.data["methods"] == ["magic_link"]
    # Single use: the same link again shows the "used" page and signs no one in.
    again = Client()
    reopened = again.get(path)
    assert reopened["Location"] == "/l/unusable/"
    refused = again.get("/l/unusable/")
    assert refused.status_code == 410
    assert "This link has already been used" in text_of(refused.content)
    assert again.post("/l/confirm/").status_code == 404
    assert signed_in_user_id(again) is None


@pytest.mark.usefixtures("frozen", "allowed")
def test_a_staff_link_never_skips_the_second_factor(
    users: Users, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    secret = add_totp(users.collector)
    path = request_link(users.collector.email, django_capture_on_commit_callbacks)
    assert path is not None
    client = Client()
    client.get(path)

    response = client.post("/l/confirm/")

    assert (response.status_code, response["Location"]) == (302, MFA_AUTHENTICATE)
    assert signed_in_user_id(client) is None
    assert client.get("/desk/").status_code == 302  # to the sign-in page
    done = client.post(MFA_AUTHENTICATE, {"code": totp_code(secret)})
    assert (done.status_code, done["Location"]) == (302, "/desk/")
    assert signed_in_user_id(client) == str(users.collector.pk)
    (signed_in,) = events("openar.identity.signed_in", users.collector)
    assert (signed_in.data["methods"], signed_in.data["mfa"]) == (["magic_link", "mfa"], ["totp"])


@pytest.mark.usefixtures("frozen")
def test_without_the_policy_staff_get_no_link(
    users: Users, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    assert request_link(users.collector.email, django_capture_on_commit_callbacks) is None
    assert mail.outbox == []
    assert staff_links() == []


@pytest.mark.usefixtures("frozen", "allowed")
def test_creditor_clients_and_customer_users_get_no_staff_link(
    users: Users, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    for person in (users.creditor, users.customer):
        assert request_link(person.email, django_capture_on_commit_callbacks) is None
    assert staff_links() == []


@pytest.mark.usefixtures("allowed")
def test_a_staff_link_expires_after_15_minutes(
    users: Users, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    with time_machine.travel(NOON, tick=False) as clock:
        path = request_link(users.admin.email, django_capture_on_commit_callbacks)
        assert path is not None
        clock.move_to(NOON + datetime.timedelta(minutes=14))
        client = Client()
        client.get(path)  # opened in time...
        clock.move_to(NOON + datetime.timedelta(minutes=15, seconds=1))

        response = client.post("/l/confirm/")  # ...confirmed too late

        late = Client()
        reopened = late.get(path)
        late_page = text_of(late.get("/l/unusable/").content)

    assert response.status_code == 410
    assert "This link has expired" in text_of(response.content)
    assert signed_in_user_id(client) is None
    assert reopened["Location"] == "/l/unusable/"
    assert "This link has expired" in late_page
    assert staff_links()[0].uses == 0


@pytest.mark.usefixtures("frozen", "allowed")
def test_turning_the_policy_off_or_leaving_the_organization_withdraws_open_links(
    users: Users, supplier: Organization, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    path = request_link(users.collector.email, django_capture_on_commit_callbacks)
    assert path is not None
    set_policy(supplier, staff_magic_links=False)
    client = Client()
    client.get(path)
    assert client.post("/l/confirm/").status_code == 410

    set_policy(supplier, staff_magic_links=True)
    path = request_link(users.manager.email, django_capture_on_commit_callbacks)
    assert path is not None
    with scopes_disabled():
        Membership.objects.filter(user=users.manager).update(is_active=False)
    client = Client()
    client.get(path)
    response = client.post("/l/confirm/")
    assert response.status_code == 410
    assert "This link has been withdrawn" in text_of(response.content)
    assert signed_in_user_id(client) is None


@pytest.mark.usefixtures("frozen", "allowed")
def test_a_person_who_is_staff_and_a_customer_contact_gets_both_links(
    users: Users, customer: Customer, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    make_contact(customer, "Collector at home", email=users.collector.email)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(REQUEST, {"email": users.collector.email})

    subjects = sorted(message.subject for message in mail.outbox)
    assert subjects == ["Sign in to Acme Supplies's desk", "Your Acme Supplies account: sign-in link"]


@pytest.mark.usefixtures("frozen", "allowed")
def test_staff_and_contact_links_are_made_by_one_helper(
    users: Users, customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One place makes a token and its hash (``_new_link``): a change to how tokens are made
    reaches staff links too. A staff link is for the user, to the desk, once, 15 minutes."""
    from openar.identity import magic

    made: list[str] = []
    real = magic._new_link

    def spy(**kwargs: object) -> magic.IssuedLink:
        issued = real(**kwargs)  # type: ignore[arg-type]
        made.append("staff" if issued.link.user_id else "contact")
        return issued

    monkeypatch.setattr(magic, "_new_link", spy)
    with scopes_disabled():
        membership = Membership.objects.select_related("organization", "user").get(user=users.collector)
    staff = magic.staff_magic_link_create(membership=membership)
    contact = magic.magic_link_create(contact=make_contact(customer, "Pat", "pat@bolt.example"))

    assert made == ["staff", "contact"]
    link = staff.link
    assert (link.user_id, link.contact_id, link.scope, link.target, link.max_uses) == (
        users.collector.pk,
        None,
        "account",
        "/desk/",
        1,
    )
    assert link.expires_at == NOON + datetime.timedelta(minutes=15)
    assert link.token_hash == magic.token_hash(staff.token) and len(staff.token) == len(contact.token)
    with scopes_disabled():
        assert MagicLink.objects.get(token_hash=magic.token_hash(staff.token)).pk == link.pk
