"""Magic links end to end through the real URLs: creation (what is stored, what the policy
decides), opening (redirects that consume nothing), confirming (one use, a narrow session),
unusable states, what a narrow session may see, sign-out, and requesting a link by email
through a real SMTP server on loopback.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.backends.cached_db import SessionStore
from django.db import connection
from django.http.response import HttpResponseBase
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks

from factories import Users, make_contact
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.customers.models import Contact, Customer
from openar.identity.magic import (
    IssuedLink,
    LinkNotUsable,
    magic_link_consume,
    magic_link_find,
    magic_link_revoke,
    magic_links_create_bulk,
    magic_links_revoke_contact,
    magic_links_revoke_organization,
)
from openar.identity.models import MagicLink
from openar.identity.views import PENDING_KEY
from openar.tenants.middleware import MAGIC_SESSION_KEY
from openar.tenants.models import Organization, SecurityPolicy
from smtp import SMTPServer

from .conftest import (
    BOLT_INVOICES,
    LOGIN,
    NOT_PAST_DUE,
    NOW,
    PAST_DUE,
    PAST_DUE_LIST,
    Book,
    Response,
    create_link,
    events,
    listed_invoices,
    narrow_client,
    open_link,
    row_as_text,
    stored,
    text_of,
)

CaptureCallbacks = DjangoCaptureOnCommitCallbacks

USED = "openar.magic_link.used"
CREATED = "openar.magic_link.created"
REQUESTED = "openar.magic_link.requested"


def no_magic_link_rows() -> int:
    with scopes_disabled():
        return MagicLink.objects.count()


def audit_count() -> int:
    with scopes_disabled():
        return AuditEvent.objects.count()


def all_audit_text() -> str:
    with scopes_disabled():
        return json.dumps(list(AuditEvent.objects.values()), default=str)


def body(response: HttpResponseBase) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return bytes(response.content)  # type: ignore[attr-defined]


# --- 1. creation --------------------------------------------------------------------------------


def test_a_token_is_128_random_bits_and_only_its_sha256_is_stored(book: Book) -> None:
    issued = create_link(book.contact)
    token = issued.token

    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", token), token
    assert len(base64.urlsafe_b64decode(token + "==")) == 16
    link = stored(issued.link)
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert issued.url == f"{settings.SITE_URL}/l/{token}/"
    assert token not in row_as_text(MagicLink, link.pk)
    assert token not in all_audit_text()
    found = magic_link_find(token)
    assert found is not None and found.pk == link.pk
    assert magic_link_find(link.token_hash) is None  # the stored hash opens nothing
    assert magic_link_find(token[:-1]) is None


def test_all_128_bits_of_the_tokens_vary(book: Book) -> None:
    """Forty-eight tokens: each is new, and every one of the 128 bit positions takes both
    values (a constant bit across 48 random tokens has odds of 2^-47)."""
    with scope(organization=book.customer.organization):
        issued = magic_links_create_bulk([book.contact] * 48)
    raw = [int.from_bytes(base64.urlsafe_b64decode(item.token + "=="), "big") for item in issued]

    assert len(set(raw)) == 48
    constant = [bit for bit in range(128) if len({(value >> bit) & 1 for value in raw}) == 1]
    assert constant == []


@pytest.mark.parametrize(("days", "uses"), [(None, None), (3, 2)], ids=["default policy", "custom policy"])
def test_expiry_and_uses_come_from_the_organizations_security_policy(
    book: Book, other_supplier: Organization, days: int | None, uses: int | None
) -> None:
    if days is not None:
        assert uses is not None
        SecurityPolicy.objects.filter(organization=book.customer.organization).update(
            magic_link_days=days, magic_link_max_uses=uses
        )
    # Another organization's policy plays no part.
    SecurityPolicy.objects.filter(organization=other_supplier).update(
        magic_link_days=90, magic_link_max_uses=50
    )
    days, uses = days or 14, uses or 5

    issued = create_link(book.contact, invoice=book.invoices["INV-101"])  # ignored outside scope invoice

    link = stored(issued.link)
    assert (link.max_uses, link.uses) == (uses, 0)
    assert link.expires_at == NOW + datetime.timedelta(days=days)
    assert (link.scope, link.target, link.invoice_id) == ("past_due", PAST_DUE_LIST, None)
    assert (link.revoked_at, link.last_used_at, link.created_by_id) == (None, None, None)
    assert (link.organization_id, link.contact_id) == (book.customer.organization_id, book.contact.pk)
    (event,) = events(CREATED, link)
    assert event.organization_id == book.customer.organization_id
    assert event.data == {
        "contact": book.contact.pk,
        "scope": "past_due",
        "max_uses": uses,
        "expires_at": (NOW.astimezone(datetime.UTC) + datetime.timedelta(days=days)).isoformat(),
    }


def test_an_explicit_lifetime_and_number_of_uses_win_over_the_policy(book: Book, users: Users) -> None:
    issued = create_link(
        book.contact, ttl=datetime.timedelta(hours=2), max_uses=1, created_by=users.collector
    )

    link = stored(issued.link)
    assert (link.max_uses, link.expires_at) == (1, NOW + datetime.timedelta(hours=2))
    assert link.created_by_id == users.collector.pk
    (event,) = events(CREATED, link)
    assert event.actor_id == users.collector.pk


def test_an_invoice_link_leads_to_one_of_the_contacts_own_invoices(book: Book) -> None:
    invoice = book.invoices["INV-105"]

    issued = create_link(book.contact, scope_="invoice", invoice=invoice)

    link = stored(issued.link)
    assert (link.scope, link.invoice_id, link.target) == (
        "invoice",
        invoice.pk,
        f"/portal/invoices/{invoice.pk}/",
    )


@pytest.mark.parametrize("which", ["no invoice", "another customer's", "another organization's"])
def test_an_invoice_link_refuses_any_invoice_but_the_contacts_own(book: Book, which: str) -> None:
    invoice = {
        "no invoice": None,
        "another customer's": book.neighbour,
        "another organization's": book.foreign,
    }
    rows, audit = no_magic_link_rows(), audit_count()

    with pytest.raises(ServiceError) as refused:
        create_link(book.contact, scope_="invoice", invoice=invoice[which])

    assert (refused.value.field, refused.value.message) == (
        "invoice",
        "A link to one invoice needs one of the contact's own invoices.",
    )
    assert (no_magic_link_rows(), audit_count()) == (rows, audit)


def test_an_unknown_scope_is_refused(book: Book) -> None:
    with pytest.raises(ServiceError) as refused:
        create_link(book.contact, scope_="everything")

    assert refused.value.field == "scope"
    assert no_magic_link_rows() == 0


@pytest.mark.parametrize(
    "target",
    [
        "/desk/",
        "/admin/",
        "/accounts/login/",
        "https://evil.example/portal/",
        "//evil.example/portal/",
        "portal/invoices/",
        "/portal",
        "javascript:alert(1)//portal/",
    ],
)
def test_a_link_cannot_lead_out_of_the_portal(book: Book, target: str) -> None:
    with pytest.raises(ServiceError) as refused:
        create_link(book.contact, target=target)

    assert (refused.value.field, refused.value.message) == (
        "target",
        "A link can only lead into the customer portal.",
    )
    assert (no_magic_link_rows(), len(events(CREATED))) == (0, 0)


@pytest.mark.parametrize("target", ["/portal/../desk/", "/portal/%2e%2e/desk/"])
def test_a_link_cannot_climb_out_of_the_portal_with_dot_segments(book: Book, target: str) -> None:
    """A browser resolves the dot segments of the redirect's Location (``%2e%2e`` included,
    per the URL standard; Chromium's ``new URL("/portal/%2e%2e/desk/", base).pathname`` is
    "/desk/"), so these targets lead out of /portal/ although they start with it."""
    try:
        issued = create_link(book.contact, target=target)
    except ServiceError as refused:
        assert refused.field == "target"
        assert no_magic_link_rows() == 0
        return
    lands = urlsplit(urljoin("http://testserver/", target.replace("%2e", "."))).path
    client = Client()
    open_link(client, issued.token)
    confirmed = client.post("/l/confirm/")
    pytest.fail(
        f"target {target!r} was accepted: confirming answers {confirmed.status_code} "
        f"Location {confirmed.get('Location')!r}, which a browser opens as {lands!r}"
    )


def test_a_link_may_lead_to_any_page_of_the_portal(book: Book) -> None:
    issued = create_link(book.contact, target="/portal/invoices/?status=open&sort=due")

    client = narrow_client(issued)  # asserts the confirm POST redirects to the target

    assert stored(issued.link).target == "/portal/invoices/?status=open&sort=due"
    assert client.get("/portal/invoices/?status=open&sort=due").status_code == 200


def test_bulk_creation_makes_one_link_per_contact_in_one_insert(book: Book, customer_2: Customer) -> None:
    contacts = [
        book.contact,
        make_contact(book.customer, "Lee Ledger", "lee@bolt.example", is_primary=False),
        make_contact(customer_2, "Ann Anvil", "ann@anvil.example"),
    ]
    SecurityPolicy.objects.filter(organization=book.customer.organization).update(
        magic_link_days=7, magic_link_max_uses=3
    )

    with scope(organization=book.customer.organization), CaptureQueriesContext(connection) as queries:
        issued = magic_links_create_bulk(contacts)

    table = MagicLink._meta.db_table
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(f'INSERT INTO "{table}"')]
    assert len(inserts) == 1, inserts
    assert [item.link.contact_id for item in issued] == [c.pk for c in contacts]
    with scopes_disabled():
        rows = list(MagicLink.objects.order_by("pk"))
    assert [row.contact_id for row in rows] == [c.pk for c in contacts]
    assert [row.pk for row in rows] == [item.link.pk for item in issued]
    assert [row.token_hash for row in rows] == [
        hashlib.sha256(item.token.encode()).hexdigest() for item in issued
    ]
    assert len({item.token for item in issued}) == 3
    for row in rows:
        assert (row.scope, row.target, row.max_uses, row.uses) == ("past_due", PAST_DUE_LIST, 3, 0)
        assert row.expires_at == NOW + datetime.timedelta(days=7)
    created = events(CREATED)
    assert [(e.object_id, e.data) for e in created] == [
        (str(row.pk), {"contact": row.contact_id, "scope": "past_due", "bulk": True}) for row in rows
    ]
    audit, texts = all_audit_text(), [row_as_text(MagicLink, row.pk) for row in rows]
    for item in issued:
        assert item.token not in audit
        assert all(item.token not in text for text in texts)
        found = magic_link_find(item.token)
        assert found is not None and found.pk == item.link.pk


# --- 2. opening and confirming -----------------------------------------------------------------


def assert_redirect_without_token(response: HttpResponseBase, token: str, location: str) -> None:
    assert response.status_code == 302
    assert response["Location"] == location
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"
    leaked = {name: value for name, value in response.items() if token in value}
    assert leaked == {}
    assert token.encode() not in body(response)


@pytest.mark.parametrize("method", ["get", "head"])
def test_opening_a_valid_link_redirects_to_the_confirm_page_and_spends_nothing(
    book: Book, method: str
) -> None:
    issued = create_link(book.contact)
    client = Client()

    response = open_link(client, issued.token, method)

    assert_redirect_without_token(response, issued.token, "/l/confirm/")
    assert client.session[PENDING_KEY] == issued.link.pk
    assert MAGIC_SESSION_KEY not in client.session
    link = stored(issued.link)
    assert (link.uses, link.last_used_at) == (0, None)
    assert events(USED) == []


def test_a_hundred_opens_and_views_of_the_confirm_page_spend_nothing(book: Book) -> None:
    """Mail scanners and link previews open links with GET and HEAD, each without cookies."""
    issued = create_link(book.contact, max_uses=1)

    for _ in range(50):
        for method in ("get", "head"):
            response = open_link(Client(), issued.token, method)
            assert (response.status_code, response["Location"]) == (302, "/l/confirm/")
    visitor = Client()
    open_link(visitor, issued.token)
    for _ in range(5):
        assert visitor.get("/l/confirm/").status_code == 200
        assert visitor.head("/l/confirm/").status_code == 200

    link = stored(issued.link)
    assert (link.uses, link.last_used_at) == (0, None)
    assert events(USED) == []
    # The single use is still there for the person who confirms.
    assert visitor.post("/l/confirm/")["Location"] == PAST_DUE_LIST
    assert stored(issued.link).uses == 1


def test_the_confirm_page_names_the_account_and_asks_before_signing_in(book: Book) -> None:
    issued = create_link(book.contact)
    client = Client()
    open_link(client, issued.token)

    response = client.get("/l/confirm/")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    text = text_of(response.content)
    assert "Bolt Hardware" in text
    assert "Acme Supplies sent you this link, Dana Payables." in text
    assert re.search(r'<form method="post">.*name="csrfmiddlewaretoken".*</form>', page, re.S)
    assert "Continue to my account" in text
    assert issued.token not in page
    assert MAGIC_SESSION_KEY not in client.session
    assert stored(issued.link).uses == 0


def test_confirming_spends_exactly_one_use_and_starts_a_narrow_session(book: Book) -> None:
    issued = create_link(book.contact)
    client = Client(enforce_csrf_checks=True, headers={"user-agent": "Mail/1.0 (test)"})
    open_link(client, issued.token)
    page = client.get("/l/confirm/").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert csrf
    anonymous_key = client.cookies[settings.SESSION_COOKIE_NAME].value

    # A cross-site POST (no CSRF token) spends nothing.
    forged = client.post("/l/confirm/")
    assert forged.status_code == 403
    assert stored(issued.link).uses == 0

    response = client.post("/l/confirm/", {"csrfmiddlewaretoken": csrf.group(1)})

    assert response.status_code == 302
    assert response["Location"] == PAST_DUE_LIST
    link = stored(issued.link)
    assert (link.uses, link.last_used_at, link.revoked_at) == (1, NOW, None)
    (event,) = events(USED, link)
    assert event.organization_id == book.customer.organization_id
    assert event.actor_id is None
    assert event.ip == "127.0.0.1"
    assert event.data == {"contact": book.contact.pk, "use": 1, "of": 5, "user_agent": "Mail/1.0 (test)"}
    session = client.session
    assert session[MAGIC_SESSION_KEY] == {"link": link.pk}
    assert PENDING_KEY not in session
    assert "_auth_user_id" not in session  # a narrow session, no user
    assert client.cookies[settings.SESSION_COOKIE_NAME].value != anonymous_key  # no fixation
    assert not SessionStore().exists(anonymous_key)

    listing = client.get(PAST_DUE_LIST)
    assert listing.status_code == 200
    assert sorted(listed_invoices(listing.content)) == sorted(PAST_DUE)

    # Sending the form again spends nothing more.
    again = client.post("/l/confirm/", {"csrfmiddlewaretoken": csrf.group(1)})
    assert again.status_code == 404
    assert stored(issued.link).uses == 1
    assert len(events(USED)) == 1


def test_an_invoice_link_lands_on_that_invoice(book: Book) -> None:
    invoice = book.invoices["INV-105"]
    issued = create_link(book.contact, scope_="invoice", invoice=invoice)

    client = narrow_client(issued)  # asserts the redirect to the link's target
    page = client.get(f"/portal/invoices/{invoice.pk}/")

    assert issued.link.target == f"/portal/invoices/{invoice.pk}/"
    assert page.status_code == 200
    assert "INV-105" in text_of(page.content)


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_confirm_page_without_an_opened_link_shows_the_not_valid_page(book: Book, method: str) -> None:
    issued = create_link(book.contact)
    client = Client()

    response = getattr(client, method)("/l/confirm/")

    assert response.status_code == 404
    assert "This link is not valid" in text_of(response.content)
    assert MAGIC_SESSION_KEY not in client.session
    assert stored(issued.link).uses == 0
    assert events(USED) == []


def test_a_link_signs_in_its_contact_never_on_top_of_someone_else(book: Book, users: Users) -> None:
    issued = create_link(book.contact)
    client = Client()
    client.force_login(users.admin)
    assert client.get("/desk/").status_code == 200
    open_link(client, issued.token)

    response = client.post("/l/confirm/")

    assert response["Location"] == PAST_DUE_LIST
    session = client.session
    assert "_auth_user_id" not in session
    assert session[MAGIC_SESSION_KEY] == {"link": issued.link.pk}
    assert client.get("/desk/").status_code == 403
    assert client.get(PAST_DUE_LIST).status_code == 200


# --- 3. unusable links --------------------------------------------------------------------------


def unusable(book: Book, clock: time_machine.Traveller, state: str) -> tuple[str, IssuedLink | None]:
    """A token in ``state``, and its link (None for a token never issued)."""
    if state == "unknown":
        return secrets.token_urlsafe(16), None
    if state == "expired":
        issued = create_link(book.contact, ttl=datetime.timedelta(hours=1))
        clock.shift(datetime.timedelta(hours=1))  # expires_at <= now: expired
        return issued.token, issued
    if state == "used":
        issued = create_link(book.contact, max_uses=1)
        narrow_client(issued)
        return issued.token, issued
    issued = create_link(book.contact)
    with scope(organization=book.customer.organization):
        if state == "revoked":
            magic_link_revoke(link=issued.link)
        elif state == "revoked with the contact's links":
            magic_links_revoke_contact(contact=book.contact)
        else:
            assert state == "revoked with the organization's links"
            magic_links_revoke_organization(organization=book.customer.organization)
    return issued.token, issued


STATES = {
    # state: (HTTP status, heading, what the page calls the state)
    "expired": (410, "This link has expired"),
    "used": (410, "This link has already been used"),
    "revoked": (410, "This link has been withdrawn"),
    "revoked with the contact's links": (410, "This link has been withdrawn"),
    "revoked with the organization's links": (410, "This link has been withdrawn"),
    "unknown": (404, "This link is not valid"),
}


@pytest.mark.parametrize("method", ["get", "head"])
@pytest.mark.parametrize("state", STATES)
def test_opening_an_unusable_link_redirects_to_the_unusable_page(
    book: Book, clock: time_machine.Traveller, state: str, method: str
) -> None:
    token, issued = unusable(book, clock, state)
    before = stored(issued.link).uses if issued else None
    client = Client()

    response = open_link(client, token, method)

    assert_redirect_without_token(response, token, "/l/unusable/")
    assert PENDING_KEY not in client.session
    if issued is not None:
        assert stored(issued.link).uses == before


@pytest.mark.parametrize("state", STATES)
def test_an_unusable_link_shows_a_clear_page_that_offers_a_fresh_link(
    book: Book, clock: time_machine.Traveller, state: str
) -> None:
    token, _ = unusable(book, clock, state)
    used_before = len(events(USED))
    client = Client()
    open_link(client, token)

    page = client.get("/l/unusable/")

    status, heading = STATES[state]
    assert page.status_code == status
    assert page["Cache-Control"] == "no-store"
    content = page.content.decode()
    assert re.search(rf"<h1>{heading}</h1>", content), text_of(page.content)[:300]
    assert "We can send you a fresh one." in text_of(page.content)
    form = re.search(r'<form method="post" action="/l/request/"[^>]*>(.*?)</form>', content, re.S)
    assert form, "no form to ask for a fresh link"
    assert 'name="email"' in form.group(1)
    assert 'href="/accounts/login/"' in content
    assert token not in content
    # Nothing is pending in this session: confirming spends nothing.
    assert client.post("/l/confirm/").status_code == 404
    assert len(events(USED)) == used_before
    assert MAGIC_SESSION_KEY not in client.session


def test_the_fresh_link_offered_on_the_expired_page_works(
    book: Book,
    clock: time_machine.Traveller,
    mailbox: SMTPServer,
    django_capture_on_commit_callbacks: CaptureCallbacks,
) -> None:
    token, _ = unusable(book, clock, "expired")
    client = Client()
    open_link(client, token)
    assert client.get("/l/unusable/").status_code == 410

    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post("/l/request/", {"email": book.contact.email})

    assert sent.status_code == 200
    (message,) = mailbox.messages
    (url,) = message.urls()
    assert urlsplit(url).path != f"/l/{token}/"
    assert open_link(client, urlsplit(url).path.split("/")[2])["Location"] == "/l/confirm/"
    assert client.post("/l/confirm/")["Location"] == PAST_DUE_LIST


def test_a_link_works_until_the_second_it_expires(book: Book, clock: time_machine.Traveller) -> None:
    issued = create_link(book.contact, ttl=datetime.timedelta(hours=1))
    client = Client()
    clock.shift(datetime.timedelta(minutes=59, seconds=59))
    assert open_link(client, issued.token)["Location"] == "/l/confirm/"
    assert client.get("/l/confirm/").status_code == 200

    clock.shift(datetime.timedelta(seconds=1))
    response = client.post("/l/confirm/")

    assert response.status_code == 410
    assert "This link has expired" in text_of(response.content)
    assert stored(issued.link).uses == 0
    assert events(USED) == []
    assert MAGIC_SESSION_KEY not in client.session


REVOKE: dict[str, Callable[[Book, IssuedLink], object]] = {
    "the link": lambda book, issued: magic_link_revoke(link=issued.link),
    "the contact's links": lambda book, issued: magic_links_revoke_contact(contact=book.contact),
    "the organization's links": lambda book, issued: magic_links_revoke_organization(
        organization=book.customer.organization
    ),
}


@pytest.mark.parametrize("how", REVOKE)
def test_a_link_revoked_after_it_was_opened_cannot_be_confirmed(book: Book, how: str) -> None:
    issued = create_link(book.contact)
    client = Client()
    open_link(client, issued.token)
    with scope(organization=book.customer.organization):
        REVOKE[how](book, issued)

    page = client.get("/l/confirm/")
    confirmed = client.post("/l/confirm/")

    for response in (page, confirmed):
        assert response.status_code == 410
        assert "This link has been withdrawn" in text_of(response.content)
    assert stored(issued.link).uses == 0
    assert events(USED) == []
    assert MAGIC_SESSION_KEY not in client.session


@pytest.mark.parametrize("how", REVOKE)
def test_revoking_ends_an_open_narrow_session_at_its_next_request(
    book: Book, customer_2: Customer, other_customer: Customer, how: str
) -> None:
    issued = create_link(book.contact)
    older = create_link(book.contact)  # another link of the same contact
    neighbour = create_link(make_contact(customer_2, "Ann Anvil", "ann@anvil.example"))
    foreign = create_link(make_contact(other_customer, "Zoe Zeta", "zoe@zeta.example"))
    session, neighbour_session, foreign_session = (
        narrow_client(issued),
        narrow_client(neighbour),
        narrow_client(foreign),
    )
    assert session.get(PAST_DUE_LIST).status_code == 200

    with scope(organization=book.customer.organization):
        REVOKE[how](book, issued)

    for path in ("/portal/", PAST_DUE_LIST, f"/portal/invoices/{book.invoices['INV-101'].pk}/"):
        response = session.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(f"{LOGIN}?next="), path
    assert MAGIC_SESSION_KEY not in session.session
    assert stored(issued.link).revoked_at == NOW
    # Only what was revoked is revoked.
    assert (stored(older.link).revoked_at is None) == (how == "the link")
    assert (stored(neighbour.link).revoked_at is None) == (how != "the organization's links")
    neighbour_alive = neighbour_session.get(PAST_DUE_LIST).status_code == 200
    assert neighbour_alive == (how != "the organization's links")
    assert stored(foreign.link).revoked_at is None
    assert foreign_session.get(PAST_DUE_LIST).status_code == 200


def test_revocations_are_audited_with_what_they_withdrew(
    book: Book, customer_2: Customer, users: Users
) -> None:
    organization = book.customer.organization
    first, second = create_link(book.contact), create_link(book.contact)
    create_link(make_contact(customer_2, "Ann Anvil", "ann@anvil.example"))

    with scope(organization=organization):
        magic_link_revoke(link=first.link, actor=users.admin)
        contact_count = magic_links_revoke_contact(contact=book.contact, actor=users.admin)
        organization_count = magic_links_revoke_organization(organization=organization, actor=users.admin)

    assert (contact_count, organization_count) == (1, 1)  # what was still valid each time
    assert [(e.object_id, e.actor_id) for e in events("openar.magic_link.revoked")] == [
        (str(first.link.pk), users.admin.pk)
    ]
    (by_contact,) = events("openar.magic_link.revoked_for_contact", book.contact)
    assert by_contact.data == {"count": 1}
    (by_organization,) = events("openar.magic_link.revoked_for_organization", organization)
    assert by_organization.data == {"count": 1}
    assert stored(second.link).revoked_at == NOW


# --- 4. what a narrow session sees ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?status=past_due", PAST_DUE),
        ("?status=open", PAST_DUE),
        ("?status=all", PAST_DUE),
        ("", PAST_DUE),
        ("?status=paid", frozenset()),
    ],
)
def test_a_past_due_session_lists_only_the_past_due_invoices(
    book: Book, query: str, expected: frozenset[str]
) -> None:
    client = narrow_client(create_link(book.contact))

    response = client.get(f"/portal/invoices/{query}")

    assert response.status_code == 200
    assert sorted(listed_invoices(response.content)) == sorted(expected)
    text = text_of(response.content)
    for number in [*NOT_PAST_DUE, "INV-201", "INV-901"]:
        assert number not in text
    assert "You opened a sign-in link: it shows what is past due." in text
    assert 'action="/l/sign-out/"' in response.content.decode()


def test_a_past_due_session_overview_shows_only_what_is_past_due(book: Book) -> None:
    client = narrow_client(create_link(book.contact))

    response = client.get("/portal/")

    assert response.status_code == 200
    assert sorted(listed_invoices(response.content)) == sorted(PAST_DUE)
    assert not {*NOT_PAST_DUE, "INV-201", "INV-901"} & set(re.findall(r"INV-\d+", response.content.decode()))


@pytest.mark.parametrize("number", sorted(BOLT_INVOICES))
def test_a_past_due_session_opens_past_due_invoices_only(book: Book, number: str) -> None:
    client = narrow_client(create_link(book.contact))

    response = client.get(f"/portal/invoices/{book.invoices[number].pk}/")

    if number in PAST_DUE:
        assert response.status_code == 200
        assert f"Invoice {number}" in text_of(response.content)
    else:
        assert response.status_code == 404
        assert number not in response.content.decode()


@pytest.mark.parametrize(
    "path", ["/portal/statement/", "/portal/statement.pdf", "/portal/documents/", "/portal/activity/"]
)
@pytest.mark.parametrize("scope_", ["past_due", "invoice", "account"])
def test_full_account_pages_offer_a_narrow_session_a_sign_in(book: Book, path: str, scope_: str) -> None:
    invoice = book.invoices["INV-101"] if scope_ == "invoice" else None
    client = narrow_client(create_link(book.contact, scope_=scope_, invoice=invoice))

    response = client.get(path)

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert "<h1>Sign in to see this page</h1>" in response.content.decode()
    assert f'href="{LOGIN}"' in response.content.decode()
    assert "INV-101" not in response.content.decode()


@pytest.mark.parametrize(
    ("which", "status"),
    [
        ("late", 200),
        ("upcoming", 404),
        ("hidden", 404),
        ("account", 404),
        ("neighbour", 404),
        ("foreign", 404),
    ],
)
def test_a_past_due_session_downloads_only_documents_of_the_invoices_it_shows(
    book: Book, which: str, status: int
) -> None:
    client = narrow_client(create_link(book.contact))
    document = book.documents[which]

    response = client.get(f"/portal/documents/{document.pk}/download")

    assert response.status_code == status
    content = body(response)
    if status == 200:
        assert content == b"%PDF-1.4\n% LATE\n"
        assert response["Content-Disposition"].startswith("attachment")
    else:
        assert b"%PDF" not in content
        assert document.title.encode() not in content


def test_an_invoice_session_shows_that_invoice_and_nothing_else(book: Book) -> None:
    invoice = book.invoices["INV-105"]  # not past due: an invoice link shows it all the same
    client = narrow_client(create_link(book.contact, scope_="invoice", invoice=invoice))

    listed = {
        query: listed_invoices(client.get(f"/portal/invoices/?status={query}").content)
        for query in ("all", "open", "past_due")
    }

    assert listed == {"all": ["INV-105"], "open": ["INV-105"], "past_due": []}
    assert client.get(f"/portal/invoices/{invoice.pk}/").status_code == 200
    for number in sorted(set(BOLT_INVOICES) - {"INV-105"}):
        assert client.get(f"/portal/invoices/{book.invoices[number].pk}/").status_code == 404, number
    downloads = {
        which: client.get(f"/portal/documents/{book.documents[which].pk}/download").status_code
        for which in book.documents
    }
    assert downloads == {
        "late": 404,
        "upcoming": 200,
        "hidden": 404,
        "account": 404,
        "neighbour": 404,
        "foreign": 404,
    }


@pytest.mark.parametrize("scope_", ["past_due", "invoice", "account"])
def test_a_narrow_session_never_reaches_another_customer_or_organization(book: Book, scope_: str) -> None:
    invoice = book.invoices["INV-101"] if scope_ == "invoice" else None
    client = narrow_client(create_link(book.contact, scope_=scope_, invoice=invoice))

    for other in (book.neighbour, book.foreign):
        response = client.get(f"/portal/invoices/{other.pk}/")
        assert response.status_code == 404
        assert other.number not in response.content.decode()
    for which in ("neighbour", "foreign"):
        response = client.get(f"/portal/documents/{book.documents[which].pk}/download")
        assert response.status_code == 404
    everything = client.get("/portal/invoices/?status=all")
    assert set(listed_invoices(everything.content)) <= set(BOLT_INVOICES)
    text = text_of(everything.content)
    for marker in ("INV-201", "INV-901", "Anvil Works", "Zeta AG", "Globex"):
        assert marker not in text


def test_signing_out_ends_the_narrow_session_without_spending_or_revoking_the_link(book: Book) -> None:
    issued = create_link(book.contact)
    client = narrow_client(issued)

    # A GET (a prefetch, an image tag) does not sign out.
    assert client.get("/l/sign-out/").status_code == 405
    assert client.get(PAST_DUE_LIST).status_code == 200

    response = client.post("/l/sign-out/")

    assert (response.status_code, response["Location"]) == (302, LOGIN)
    after = client.get("/portal/")
    assert (after.status_code, after["Location"]) == (302, f"{LOGIN}?next=/portal/")
    assert MAGIC_SESSION_KEY not in client.session
    link = stored(issued.link)
    assert (link.uses, link.revoked_at) == (1, None)


# --- 5. requesting a link by email ----------------------------------------------------------------


def request_link(client: Client, email: str) -> Response:
    response: Response = client.post("/l/request/", {"email": email})
    return response


def the_same_page(a: Response, email_a: str, b: Response, email_b: str) -> bool:
    """The same status and the same page, but for the address it repeats."""
    return a.status_code == b.status_code and a.content.decode().replace(
        email_a, "EMAIL"
    ) == b.content.decode().replace(email_b, "EMAIL")


@pytest.mark.parametrize("typed", ["dana@bolt.example", "  Dana@Bolt.EXAMPLE "])
def test_a_known_address_gets_one_email_with_a_working_link(
    book: Book, mailbox: SMTPServer, django_capture_on_commit_callbacks: CaptureCallbacks, typed: str
) -> None:
    client = Client()

    with django_capture_on_commit_callbacks(execute=True):
        response = request_link(client, typed)

    assert response.status_code == 200
    assert "Check your email" in text_of(response.content)
    (message,) = mailbox.messages
    assert message.rcpt_tos == ("dana@bolt.example",)
    assert message.to == "dana@bolt.example"
    assert message.subject == "Your Acme Supplies account: sign-in link"
    (url,) = message.urls()
    assert message.urls("text/html") == [url]
    token = re.fullmatch(rf"{re.escape(settings.SITE_URL)}/l/([A-Za-z0-9_-]{{22}})/", url)
    assert token, url
    with scopes_disabled():
        (link,) = MagicLink.objects.all()
    assert (link.contact_id, link.scope, link.uses) == (book.contact.pk, "past_due", 0)
    assert link.token_hash == hashlib.sha256(token.group(1).encode()).hexdigest()
    (requested,) = events(REQUESTED, link)
    assert requested.ip == "127.0.0.1"
    assert len(events(CREATED)) == 1

    visitor = Client()
    assert open_link(visitor, token.group(1))["Location"] == "/l/confirm/"
    assert visitor.post("/l/confirm/")["Location"] == PAST_DUE_LIST
    assert sorted(listed_invoices(visitor.get(PAST_DUE_LIST).content)) == sorted(PAST_DUE)


def test_an_unknown_address_gets_the_same_answer_and_nothing_else(
    book: Book, mailbox: SMTPServer, django_capture_on_commit_callbacks: CaptureCallbacks
) -> None:
    audit = audit_count()

    with django_capture_on_commit_callbacks(execute=True):
        unknown = request_link(Client(), "nobody@bolt.example")

    assert mailbox.messages == []
    assert no_magic_link_rows() == 0
    assert audit_count() == audit
    with django_capture_on_commit_callbacks(execute=True):
        known = request_link(Client(), "dana@bolt.example")
    assert len(mailbox.messages) == 1
    assert the_same_page(unknown, "nobody@bolt.example", known, "dana@bolt.example")


def test_a_contact_who_refused_email_gets_no_link(
    book: Book,
    customer_2: Customer,
    mailbox: SMTPServer,
    django_capture_on_commit_callbacks: CaptureCallbacks,
) -> None:
    with scope(organization=book.customer.organization):
        Contact.objects.filter(pk=book.contact.pk).update(consent_email=False)
    audit = audit_count()

    with django_capture_on_commit_callbacks(execute=True):
        refused = request_link(Client(), "dana@bolt.example")

    assert refused.status_code == 200
    assert mailbox.messages == []
    assert (no_magic_link_rows(), audit_count()) == (0, audit)

    # The same address at another customer, who accepts email, gets one link: only theirs.
    other = make_contact(customer_2, "Dana at Anvil", "dana@bolt.example")
    with django_capture_on_commit_callbacks(execute=True):
        accepted = request_link(Client(), "dana@bolt.example")
    assert (accepted.status_code, accepted.content) == (refused.status_code, refused.content)
    (message,) = mailbox.messages
    assert "Anvil Works" in message.text
    with scopes_disabled():
        assert list(MagicLink.objects.values_list("contact_id", flat=True)) == [other.pk]


def test_an_address_without_an_at_sign_is_asked_again(book: Book, mailbox: SMTPServer) -> None:
    response = request_link(Client(), "dana.bolt.example")

    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.content.decode()
    assert "Enter the email address we write to." in text_of(response.content)
    assert (mailbox.messages, no_magic_link_rows()) == ([], 0)


def test_the_eleventh_request_from_one_address_in_a_minute_is_refused(
    book: Book,
    clock: time_machine.Traveller,
    mailbox: SMTPServer,
    django_capture_on_commit_callbacks: CaptureCallbacks,
) -> None:
    client = Client(REMOTE_ADDR="203.0.113.5")
    with django_capture_on_commit_callbacks(execute=True):
        answers = [request_link(client, f"someone{n}@nowhere.example").status_code for n in range(10)]
        throttled = request_link(client, "dana@bolt.example")

    assert answers == [200] * 10
    assert throttled.status_code == 429
    assert "Too many requests from your network." in text_of(throttled.content)
    assert 'value="dana@bolt.example"' in throttled.content.decode()
    assert mailbox.messages == []
    assert (no_magic_link_rows(), events(REQUESTED)) == (0, [])

    # Another address is not held back by this one.
    with django_capture_on_commit_callbacks(execute=True):
        elsewhere = request_link(Client(REMOTE_ADDR="198.51.100.7"), "dana@bolt.example")
    assert elsewhere.status_code == 200
    assert len(mailbox.messages) == 1

    # A minute later the first address may ask again.
    clock.shift(datetime.timedelta(seconds=60))
    with django_capture_on_commit_callbacks(execute=True):
        later = request_link(client, "dana@bolt.example")
    assert later.status_code == 200
    assert len(mailbox.messages) == 2


def test_the_fourth_request_for_one_address_in_15_minutes_sends_nothing_and_says_the_same(
    book: Book,
    clock: time_machine.Traveller,
    mailbox: SMTPServer,
    django_capture_on_commit_callbacks: CaptureCallbacks,
) -> None:
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        responses = [request_link(client, "dana@bolt.example") for _ in range(4)]

    assert [r.status_code for r in responses] == [200] * 4
    assert len({r.content for r in responses}) == 1
    assert len(mailbox.messages) == 3
    with scopes_disabled():
        assert MagicLink.objects.filter(contact=book.contact).count() == 3
    assert len(events(REQUESTED)) == 3

    # The count is per address, whatever its case.
    with django_capture_on_commit_callbacks(execute=True):
        shouted = request_link(client, "DANA@BOLT.EXAMPLE")
        lee = make_contact(book.customer, "Lee Ledger", "lee@bolt.example", is_primary=False)
        other = request_link(client, "lee@bolt.example")
    assert (shouted.status_code, other.status_code) == (200, 200)
    assert [m.rcpt_tos for m in mailbox.messages[3:]] == [("lee@bolt.example",)]
    with scopes_disabled():
        assert MagicLink.objects.filter(contact=lee).count() == 1

    # Fifteen minutes on, the address gets a link again.
    clock.shift(datetime.timedelta(minutes=15))
    with django_capture_on_commit_callbacks(execute=True):
        request_link(client, "dana@bolt.example")
    assert [m.rcpt_tos for m in mailbox.messages[4:]] == [("dana@bolt.example",)]


def test_consuming_a_revoked_expired_or_used_link_through_the_service_raises_why(
    book: Book, clock: time_machine.Traveller
) -> None:
    """The service behind the confirm POST says why a link cannot be used."""
    once = create_link(book.contact, max_uses=1)
    magic_link_consume(link_id=once.link.pk)
    reasons = {}
    for state in ("expired", "revoked"):
        _, issued = unusable(book, clock, state)
        assert issued is not None
        with pytest.raises(LinkNotUsable) as refused:
            magic_link_consume(link_id=issued.link.pk)
        reasons[state] = refused.value.state
    with pytest.raises(LinkNotUsable) as used:
        magic_link_consume(link_id=once.link.pk)
    with pytest.raises(LinkNotUsable) as unknown:
        magic_link_consume(link_id=once.link.pk + 10_000)

    assert reasons == {"expired": "expired", "revoked": "revoked"}
    assert (used.value.state, unknown.value.state) == ("used", "unknown")
    assert stored(once.link).uses == 1
    assert len(events(USED)) == 1
