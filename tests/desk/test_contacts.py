"""Desk actions on a customer's contacts, through the real URLs: sign-in links (emailed or
shown once, withdrawn per contact) and viewing the portal as the customer sees it."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django_scopes import scope, scopes_disabled
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks

from factories import Users, issue_invoice, make_contact, signed_in, text_of
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Contact, Customer
from openar.identity.magic import IssuedLink, magic_link_create
from openar.identity.models import MagicLink
from openar.tenants.middleware import VIEW_AS_SESSION_KEY
from openar.tenants.services import policy_update

# --- helpers ------------------------------------------------------------------------------------


def links_url(contact: Contact) -> str:
    return f"/desk/customers/{contact.customer_id}/contacts/{contact.pk}/links/"


def customer_url(customer: Customer) -> str:
    return f"/desk/customers/{customer.pk}/"


def all_links() -> list[MagicLink]:
    with scopes_disabled():
        return list(MagicLink.objects.order_by("pk"))


def stored(link: MagicLink) -> MagicLink:
    with scopes_disabled():
        return MagicLink.objects.get(pk=link.pk)


def all_events() -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.order_by("pk"))


def events(action: str) -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def create_link(contact: Contact) -> IssuedLink:
    with scope(organization=contact.customer.organization):
        return magic_link_create(contact=contact)


def tokens_in(text: str) -> list[str]:
    """The tokens of every sign-in link address in ``text``, in order."""
    return re.findall(rf"{re.escape(settings.SITE_URL)}/l/([A-Za-z0-9_-]+)/", text)


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture
def no_address(customer: Customer) -> Contact:
    return make_contact(customer, "Lee Phone", "", is_primary=False)


@pytest.fixture
def no_consent(customer: Customer) -> Contact:
    contact = make_contact(customer, "Nat Optout", "nat@bolt.example", is_primary=False)
    contact.consent_email = False
    contact.save(update_fields=["consent_email"])
    return contact


# --- sign-in links: emailed -------------------------------------------------------------------


def test_an_emailed_link_goes_once_to_the_contacts_address_and_works(
    users: Users,
    contact: Contact,
    customer: Customer,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    client = signed_in(users.collector)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(links_url(contact), {"scope": "past_due", "send": "email"})

    assert response.status_code == 302
    assert response["Location"] == customer_url(customer) + "#contacts"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["dana@bolt.example"]
    assert message.subject == "Your Acme Supplies account: sign-in link"
    (token,) = set(tokens_in(message.body))
    assert set(tokens_in(message.alternatives[0][0])) == {token}
    (link,) = all_links()
    assert link.token_hash == sha256(token)
    assert (link.contact_id, link.scope, link.created_by_id, link.uses) == (
        contact.pk,
        MagicLink.Scope.PAST_DUE,
        users.collector.pk,
        0,
    )
    (event,) = all_events()
    assert (event.action, event.actor_id, event.object_id) == (
        "openar.magic_link.created",
        users.collector.pk,
        str(link.pk),
    )
    assert token not in json.dumps(event.data)
    assert "Sign-in link emailed to dana@bolt.example." in text_of(client.get(response["Location"]).content)

    visitor = Client()
    opened = visitor.get(f"/l/{token}/")
    assert (opened.status_code, opened["Location"]) == (302, "/l/confirm/")
    confirmed = visitor.post("/l/confirm/")
    assert (confirmed.status_code, confirmed["Location"]) == (302, "/portal/invoices/?status=past_due")
    assert "Hello, Bolt Hardware" in text_of(visitor.get("/portal/").content)
    assert stored(link).uses == 1


@pytest.mark.parametrize("who", ["no_address", "no_consent"])
def test_no_email_and_no_link_for_a_contact_we_may_not_write_to(
    users: Users,
    customer: Customer,
    request: pytest.FixtureRequest,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    who: str,
) -> None:
    target: Contact = request.getfixturevalue(who)
    client = signed_in(users.collector)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(links_url(target), {"scope": "past_due", "send": "email"})

    assert response.status_code == 302
    assert response["Location"] == customer_url(customer) + "#contacts"
    assert f"{target.name} has no email address we may write to." in text_of(
        client.get(response["Location"]).content
    )
    assert all_links() == []
    assert mail.outbox == []
    assert callbacks == []
    assert all_events() == []


# --- sign-in links: shown once ----------------------------------------------------------------


def test_a_shown_link_appears_once_on_a_page_nobody_caches(
    users: Users, no_address: Contact, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    """Showing needs no address: the collector passes the link on themselves."""
    client = signed_in(users.collector)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(links_url(no_address), {"scope": "account", "send": "show"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    page = response.content.decode()
    (token,) = tokens_in(page)
    assert page.count(token) == 1
    (link,) = all_links()
    assert link.token_hash == sha256(token)
    assert (link.contact_id, link.scope, link.target) == (no_address.pk, "account", "/portal/")
    assert mail.outbox == []
    (event,) = all_events()
    assert event.action == "openar.magic_link.created"
    assert token not in json.dumps(event.data)
    # Shown once: the desk page the collector goes back to does not show it again.
    assert token not in client.get(customer_url(no_address.customer)).content.decode()


def test_an_invoice_scope_without_an_invoice_is_refused_with_a_message(
    users: Users, contact: Contact, customer: Customer
) -> None:
    """The form accepts "invoice" but has no way to name the invoice: the request must be
    refused with a message (not a server error), creating nothing."""
    client = signed_in(users.collector)
    client.raise_request_exception = False

    response = client.post(links_url(contact), {"scope": "invoice", "send": "show"})

    assert all_links() == []
    assert mail.outbox == []
    assert all_events() == []
    assert response.status_code in (302, 400), response.status_code


@pytest.mark.parametrize(
    "data",
    [{"scope": "everything", "send": "show"}, {"scope": "past_due", "send": "sms"}, {}],
    ids=["unknown-scope", "unknown-delivery", "empty"],
)
def test_a_malformed_link_request_creates_nothing(
    users: Users, contact: Contact, customer: Customer, data: dict[str, str]
) -> None:
    client = signed_in(users.collector)

    response = client.post(links_url(contact), data)

    assert response.status_code == 302
    assert "Choose what the link opens and how to deliver it." in text_of(
        client.get(response["Location"]).content
    )
    assert all_links() == []
    assert mail.outbox == []
    assert all_events() == []


# --- sign-in links: withdrawn per contact -------------------------------------------------------


def test_withdrawing_a_contacts_links_revokes_theirs_only(
    users: Users, contact: Contact, customer: Customer, customer_2: Customer, other_customer: Customer
) -> None:
    colleague = make_contact(customer, "Sam Orders", "sam@bolt.example", is_primary=False)
    neighbour = make_contact(customer_2, "Ann Vil", "ann@anvil.example")
    foreigner = make_contact(other_customer, "Zed Zeta", "zed@zeta.example")
    own = [create_link(contact), create_link(contact)]
    others = [create_link(colleague), create_link(neighbour), create_link(foreigner)]
    client = signed_in(users.collector)

    response = client.post(links_url(contact) + "revoke/")

    assert response.status_code == 302
    assert response["Location"] == customer_url(customer) + "#contacts"
    assert [stored(issued.link).revoked_at is not None for issued in own] == [True, True]
    assert [stored(issued.link).revoked_at for issued in others] == [None, None, None]
    (event,) = events("openar.magic_link.revoked_for_contact")
    assert (event.organization_id, event.actor_id, event.object_type, event.object_id) == (
        customer.organization_id,
        users.collector.pk,
        "customers.contact",
        str(contact.pk),
    )
    assert event.data == {"count": 2}
    assert "Withdrew 2 sign-in links of Dana Payables." in text_of(client.get(response["Location"]).content)


# --- sign-in links: who may --------------------------------------------------------------------


@pytest.mark.parametrize("role", ["manager", "customer", "creditor"])
def test_without_desk_collect_nobody_creates_or_withdraws_links(
    users: Users,
    contact: Contact,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    role: str,
) -> None:
    existing = create_link(contact)
    events_before = all_events()
    client = signed_in(getattr(users, role))

    with django_capture_on_commit_callbacks(execute=True):
        emailed = client.post(links_url(contact), {"scope": "past_due", "send": "email"})
        shown = client.post(links_url(contact), {"scope": "account", "send": "show"})
        revoked = client.post(links_url(contact) + "revoke/")

    assert (emailed.status_code, shown.status_code, revoked.status_code) == (403, 403, 403)
    assert tokens_in(shown.content.decode()) == []
    assert [link.pk for link in all_links()] == [existing.link.pk]
    assert stored(existing.link).revoked_at is None
    assert mail.outbox == []
    assert all_events() == events_before


def test_another_customers_or_organizations_contact_is_not_found(
    users: Users, customer: Customer, customer_2: Customer, other_customer: Customer
) -> None:
    neighbour = make_contact(customer_2, "Ann Vil", "ann@anvil.example")
    foreigner = make_contact(other_customer, "Zed Zeta", "zed@zeta.example")
    client = signed_in(users.collector)

    paths = [
        f"/desk/customers/{customer.pk}/contacts/{neighbour.pk}/links/",  # not Bolt's contact
        links_url(foreigner),  # Globex's customer and contact
        f"/desk/customers/{customer.pk}/contacts/{foreigner.pk}/links/",
    ]
    responses = [client.post(path, {"scope": "account", "send": "show"}) for path in paths]
    revokes = [client.post(path + "revoke/") for path in paths]

    assert [response.status_code for response in responses + revokes] == [404] * 6
    assert all_links() == []
    assert mail.outbox == []
    assert all_events() == []


# --- view as customer -------------------------------------------------------------------------

BANNER = "You are viewing the portal as Bolt Hardware sees it."
PORTAL_PAGES = ["/portal/", "/portal/invoices/", "/portal/activity/", "/portal/details/"]


def contact_rows(customer: Customer) -> list[dict[str, Any]]:
    with scope(organization=customer.organization):
        return list(Contact.objects.filter(customer=customer).order_by("pk").values())


@pytest.mark.parametrize("role", ["collector", "manager", "admin"])
def test_staff_see_the_portal_as_the_customer_and_every_page_is_audited(
    users: Users, customer: Customer, customer_2: Customer, contact: Contact, role: str
) -> None:
    issue_invoice(customer, "INV-101", "100.00")
    issue_invoice(customer_2, "INV-201", "999.00")
    staff = getattr(users, role)
    client = signed_in(staff)
    assert client.get("/portal/").status_code == 403

    started = client.post(f"/desk/customers/{customer.pk}/view-as/")

    assert (started.status_code, started["Location"]) == (302, "/portal/")
    assert client.session[VIEW_AS_SESSION_KEY] == customer.pk
    (start,) = events("openar.view_as.started")
    assert (start.actor_id, start.object_type, start.object_id) == (
        staff.pk,
        "customers.customer",
        str(customer.pk),
    )
    pages = {path: client.get(path) for path in PORTAL_PAGES}
    assert {path: page.status_code for path, page in pages.items()} == dict.fromkeys(PORTAL_PAGES, 200)
    for path, page in pages.items():
        assert BANNER in text_of(page.content), path
        assert 'action="/desk/view-as/stop/"' in page.content.decode(), path
    assert "Hello, Bolt Hardware" in text_of(pages["/portal/"].content)
    invoices = text_of(pages["/portal/invoices/"].content)
    assert "INV-101" in invoices
    assert "INV-201" not in invoices
    seen = events("openar.view_as.page")
    assert [event.data for event in seen] == [{"path": path} for path in PORTAL_PAGES]
    assert {(event.actor_id, event.organization_id, event.object_id) for event in seen} == {
        (staff.pk, customer.organization_id, str(customer.pk))
    }
    # The desk itself stays the desk: no banner, no view-as event.
    desk = client.get(customer_url(customer))
    assert desk.status_code == 200
    assert BANNER not in text_of(desk.content)
    assert len(events("openar.view_as.page")) == len(PORTAL_PAGES)


def test_viewing_as_the_customer_changes_nothing(users: Users, customer: Customer, contact: Contact) -> None:
    client = signed_in(users.collector)
    client.post(f"/desk/customers/{customer.pk}/view-as/")
    contacts_before = contact_rows(customer)
    with scopes_disabled():
        activities_before = Activity.objects.count()

    response = client.post(
        "/portal/details/",
        {"name": "Hijacked", "email": "mallory@evil.example", "phone": "+1 555 0100", "consent_email": "on"},
    )

    assert response.status_code in (200, 302)  # refused or not offered; never a save
    assert contact_rows(customer) == contacts_before
    with scopes_disabled():
        assert Activity.objects.count() == activities_before
    assert events("openar.contact.updated") == []
    assert [event.data for event in events("openar.view_as.page")] == [{"path": "/portal/details/"}]
    assert mail.outbox == []


def test_where_the_policy_allows_staff_act_for_the_customer_under_their_own_name(
    users: Users, customer: Customer, contact: Contact
) -> None:
    policy_update(organization=customer.organization, actor=None, changes={"view_as_can_act": True})
    client = signed_in(users.collector)
    client.post(f"/desk/customers/{customer.pk}/view-as/")
    page = text_of(client.get("/portal/details/").content)
    assert "Your organization lets you act for the customer here" in page
    assert "Nothing can be changed from here" not in page

    response = client.post(
        "/portal/details/",
        {"name": contact.name, "email": "new-ap@bolt.example", "phone": "", "consent_email": "on"},
    )

    assert response.status_code == 302
    assert contact_rows(customer)[0]["email"] == "new-ap@bolt.example"
    (updated,) = events("openar.contact.updated")
    assert (updated.actor_id, updated.data["by_contact"]) == (users.collector.pk, False)
    with scopes_disabled():
        activity = Activity.objects.get(customer=customer)
    assert "updated by" in activity.summary
    assert "by the contact" not in activity.summary


def test_stopping_returns_to_the_desk_and_the_portal_is_closed_again(
    users: Users, customer: Customer
) -> None:
    client = signed_in(users.collector)
    client.post(f"/desk/customers/{customer.pk}/view-as/")
    assert client.get("/portal/").status_code == 200

    stopped = client.post("/desk/view-as/stop/")

    assert (stopped.status_code, stopped["Location"]) == (302, customer_url(customer))
    assert VIEW_AS_SESSION_KEY not in client.session
    (stop,) = events("openar.view_as.stopped")
    assert (stop.actor_id, stop.data) == (users.collector.pk, {"customer": customer.pk})
    pages_before = len(events("openar.view_as.page"))
    assert client.get("/portal/").status_code == 403
    assert client.get("/portal/invoices/").status_code == 403
    assert len(events("openar.view_as.page")) == pages_before == 1


def test_another_organizations_customer_cannot_be_viewed(
    users: Users, customer: Customer, other_customer: Customer
) -> None:
    client = signed_in(users.collector)

    response = client.post(f"/desk/customers/{other_customer.pk}/view-as/")

    assert response.status_code == 404
    assert VIEW_AS_SESSION_KEY not in client.session
    assert all_events() == []
    assert client.get("/portal/").status_code == 403
    assert all_events() == []


@pytest.mark.parametrize("role", ["customer", "creditor"])
def test_people_without_desk_view_as_cannot_start_it(users: Users, customer: Customer, role: str) -> None:
    client = signed_in(getattr(users, role))

    response = client.post(f"/desk/customers/{customer.pk}/view-as/")

    assert response.status_code == 403
    assert VIEW_AS_SESSION_KEY not in client.session
    assert all_events() == []


def test_starting_to_view_as_needs_a_post(users: Users, customer: Customer) -> None:
    client = signed_in(users.collector)

    response = client.get(f"/desk/customers/{customer.pk}/view-as/")

    assert response.status_code == 405
    assert VIEW_AS_SESSION_KEY not in client.session
    assert all_events() == []


def test_a_customers_own_session_ignores_a_view_as_flag(
    users: Users, customer: Customer, customer_2: Customer
) -> None:
    """The flag only ever turns staff into a read-only customer; a customer user keeps their
    own account even if the session carries one."""
    issue_invoice(customer_2, "INV-201", "999.00")
    client = signed_in(users.customer)
    session = client.session
    session[VIEW_AS_SESSION_KEY] = customer_2.pk
    session.save()
    events_before = all_events()

    page = client.get("/portal/invoices/")

    assert page.status_code == 200
    assert "INV-201" not in text_of(page.content)
    assert "You are viewing the portal as" not in text_of(page.content)
    assert all_events() == events_before
