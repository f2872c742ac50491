"""Magic links: an account with invoices on both sides of "past due", links made through the
real services, a real SMTP server on loopback, and the few steps a visitor takes (open the
link, confirm) as helpers.

The clock is pinned at noon on ``factories.TODAY`` in Toronto (the supplier's time zone),
without ticking, so that "past due", expiry and the fixed rate-limit windows never depend on
the moment the tests run. The cache (rate limits, cached sessions) is cleared around every
test.
"""

from __future__ import annotations

import datetime
import json
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from django_scopes import scope, scopes_disabled
from pytest_django.fixtures import Settings

from factories import TODAY, days_ago, issue_invoice, make_document, record_payment
from openar.billing.models import Document, Invoice
from openar.core.models import AuditEvent
from openar.customers.models import Contact, Customer
from openar.identity.magic import IssuedLink, magic_link_create
from openar.identity.models import MagicLink
from smtp import SMTPServer

if TYPE_CHECKING:  # what the test client returns: a response with .content, .templates, ...
    from django.test.client import _MonkeyPatchedWSGIResponse as Response
else:
    from django.http import HttpResponse as Response

TORONTO = zoneinfo.ZoneInfo("America/Toronto")
NOW = datetime.datetime.combine(TODAY, datetime.time(12, 0), tzinfo=TORONTO)

PAST_DUE_LIST = "/portal/invoices/?status=past_due"
LOGIN = "/accounts/login/"


# --- the environment --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Rate-limit counters and cached sessions never leak from one test into another."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture
def mailbox(smtp_server: SMTPServer, settings: Settings) -> Iterator[SMTPServer]:
    """Django sends through its real SMTP backend to the loopback server; the server starts
    each test empty."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    smtp_server.clear()
    yield smtp_server
    smtp_server.clear()


# --- the data ---------------------------------------------------------------------------------


@dataclass
class Book:
    """Bolt Hardware (C-1001, Acme) with invoices on both sides of "past due" on TODAY, and
    one past-due invoice of another customer of Acme and of a customer of Globex."""

    customer: Customer
    contact: Contact
    invoices: dict[str, Invoice]
    documents: dict[str, Document]
    neighbour: Invoice  # Anvil Works (C-1002, same organization), past due
    foreign: Invoice  # Zeta AG (Globex, another organization), past due

    @property
    def past_due(self) -> list[str]:
        return sorted(PAST_DUE)


# Bolt's invoices: (amount, due days ago, paid). Past due = open and due before today.
BOLT_INVOICES: dict[str, tuple[str, int, str]] = {
    "INV-101": ("100.00", 40, "0"),  # past due
    "INV-102": ("250.00", 5, "50.00"),  # past due, partly paid
    "INV-103": ("80.00", 1, "0"),  # past due since yesterday
    "INV-104": ("60.00", 0, "0"),  # due today: not past due
    "INV-105": ("500.00", -15, "0"),  # due in 15 days
    "INV-106": ("75.00", 20, "75.00"),  # was late, now paid
}
PAST_DUE = frozenset({"INV-101", "INV-102", "INV-103"})
NOT_PAST_DUE = frozenset(BOLT_INVOICES) - PAST_DUE


def pdf(marker: str) -> bytes:
    return f"%PDF-1.4\n% {marker}\n".encode()


@pytest.fixture
def book(
    clock: time_machine.Traveller,
    customer: Customer,
    customer_2: Customer,
    other_customer: Customer,
    contact: Contact,
) -> Book:
    invoices: dict[str, Invoice] = {}
    for number, (amount, late_by, paid) in BOLT_INVOICES.items():
        invoices[number] = issue_invoice(customer, number, amount, due_date=days_ago(late_by))
        if paid != "0":
            record_payment(customer, paid, allocations=[(invoices[number], paid)], reference=f"PAY-{number}")
    neighbour = issue_invoice(customer_2, "INV-201", "999.00", due_date=days_ago(30))
    foreign = issue_invoice(other_customer, "INV-901", "777.00", due_date=days_ago(30))
    documents = {
        "late": make_document(
            customer,
            title="BOL INV-101",
            filename="bol-101.pdf",
            content=pdf("LATE"),
            invoice=invoices["INV-101"],
        ),
        "upcoming": make_document(
            customer,
            title="BOL INV-105",
            filename="bol-105.pdf",
            content=pdf("UPCOMING"),
            invoice=invoices["INV-105"],
        ),
        "hidden": make_document(
            customer,
            title="Memo INV-101",
            filename="memo-101.pdf",
            content=pdf("HIDDEN"),
            invoice=invoices["INV-101"],
            visible_to_customer=False,
        ),
        "account": make_document(
            customer,
            title="Credit application",
            filename="credit.pdf",
            content=pdf("ACCOUNT"),
            kind=Document.Kind.ATTACHMENT,
        ),
        "neighbour": make_document(
            customer_2,
            title="BOL INV-201",
            filename="bol-201.pdf",
            content=pdf("NEIGHBOUR"),
            invoice=neighbour,
        ),
        "foreign": make_document(
            other_customer,
            title="BOL INV-901",
            filename="bol-901.pdf",
            content=pdf("FOREIGN"),
            invoice=foreign,
        ),
    }
    return Book(
        customer=customer,
        contact=contact,
        invoices=invoices,
        documents=documents,
        neighbour=neighbour,
        foreign=foreign,
    )


# --- links and the steps of a visitor ---------------------------------------------------------


def create_link(contact: Contact, **kwargs: Any) -> IssuedLink:
    """``magic_link_create`` in the contact's organization, as the desk would call it."""
    with scope(organization=contact.customer.organization):
        return magic_link_create(contact=contact, **kwargs)


def stored(link: MagicLink) -> MagicLink:
    """The link as the database has it now."""
    with scopes_disabled():
        return MagicLink.objects.get(pk=link.pk)


def events(action: str, obj: Any | None = None) -> list[AuditEvent]:
    """Audit events of ``action`` (about ``obj`` when given), oldest first, across tenants."""
    with scopes_disabled():
        queryset = AuditEvent.objects.filter(action=action)
        if obj is not None:
            queryset = queryset.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
        return list(queryset.order_by("pk"))


def open_link(client: Client, token: str, method: str = "get") -> Response:
    response: Response = getattr(client, method)(f"/l/{token}/")
    return response


def narrow_client(issued: IssuedLink) -> Client:
    """A browser that opened the link and confirmed it: a narrow (magic-link) session."""
    client = Client()
    opened = open_link(client, issued.token)
    assert (opened.status_code, opened["Location"]) == (302, "/l/confirm/")
    confirmed = client.post("/l/confirm/")
    assert confirmed.status_code == 302, confirmed.content[:300]
    assert confirmed["Location"] == issued.link.target
    return client


def listed_invoices(content: bytes) -> list[str]:
    """The invoice numbers of the rows of an invoice list, in page order."""
    return re.findall(r'href="/portal/invoices/\d+/">([^<]+)</a>', content.decode())


def text_of(content: bytes) -> str:
    """The page without tags, whitespace collapsed (good enough for headings and notices)."""
    without_tags = re.sub(r"<[^>]+>", " ", content.decode())
    return " ".join(without_tags.split())


def row_as_text(model: type[Any], pk: int) -> str:
    """Every column of one row, as the database returns it, as one string."""
    with scopes_disabled():
        values = model.objects.filter(pk=pk).values().get()
    return json.dumps(values, default=str)
