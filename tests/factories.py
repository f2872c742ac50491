"""Plain helpers that build test data through the real services, so that every invoice,
credit note and payment a test sees is one the application itself could have written and
the ledger stays consistent.

Every helper enters the tenant scope of the organization it writes to; tests that query
afterwards enter it themselves (``with scope(organization=org)``).
"""

from __future__ import annotations

import datetime
import threading
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django_scopes import scope, scopes_disabled

from openar.billing.ledger import ledger_check
from openar.billing.models import CreditNote, Document, Invoice, InvoiceLine
from openar.billing.services import LineInput, credit_note_issue, document_store, invoice_issue
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Contact, Customer
from openar.identity.models import User
from openar.payments.models import Allocation, Payment
from openar.payments.services import AllocationInput, payment_record
from openar.tenants.models import Creditor, Membership, Organization, Role

# A fixed "today": tests never depend on the day they run.
TODAY = datetime.date(2025, 6, 30)
RECEIVED_AT = datetime.datetime(2025, 6, 30, 15, 0, tzinfo=datetime.UTC)
TORONTO = zoneinfo.ZoneInfo("America/Toronto")  # the test supplier's time zone
NOON_ON_TODAY = datetime.datetime.combine(TODAY, datetime.time(12, 0), tzinfo=TORONTO)
PASSWORD = "correct horse battery staple"


def dec(value: str | int) -> Decimal:
    return Decimal(value)


def days_ago(n: int, today: datetime.date = TODAY) -> datetime.date:
    return today - datetime.timedelta(days=n)


# --- tenants, people --------------------------------------------------------------------------


def make_organization(
    slug: str,
    *,
    name: str = "",
    kind: str = Organization.Kind.SUPPLIER,
    currency: str = "USD",
    timezone: str = "UTC",
) -> Organization:
    return Organization.objects.create(
        slug=slug,
        name=name or slug.replace("-", " ").title(),
        kind=kind,
        default_currency=currency,
        timezone=timezone,
    )


def make_creditor(
    organization: Organization, code: str, *, name: str = "", is_self: bool = False
) -> Creditor:
    return Creditor.objects.create(
        organization=organization,
        code=code,
        name=name or code.replace("-", " ").title(),
        is_self=is_self,
    )


def make_customer(
    creditor: Creditor,
    number: str,
    *,
    name: str = "",
    currency: str = "USD",
    email: str = "",
    terms: int = 30,
) -> Customer:
    return Customer.objects.create(
        organization_id=creditor.organization_id,
        creditor=creditor,
        number=number,
        name=name or f"Customer {number}",
        currency=currency,
        email=email,
        payment_terms_days=terms,
    )


def make_contact(
    customer: Customer, name: str, email: str, *, is_primary: bool = True, user: User | None = None
) -> Contact:
    return Contact.objects.create(
        organization_id=customer.organization_id,
        customer=customer,
        name=name,
        email=email,
        is_primary=is_primary,
        user=user,
    )


def make_user(email: str, *, full_name: str = "", password: str = PASSWORD) -> User:
    return User.objects.create_user(email, password, full_name=full_name)


def make_member(
    organization: Organization,
    role: str,
    email: str,
    *,
    creditor: Creditor | None = None,
    customer: Customer | None = None,
) -> User:
    """A user with one membership of ``role`` in ``organization``."""
    user = make_user(email, full_name=f"{role.title()} of {organization.name}")
    Membership.objects.create(
        organization=organization, user=user, role=Role(role), creditor=creditor, customer=customer
    )
    return user


@dataclass(frozen=True)
class Users:
    """One user per role (see the ``users`` fixture)."""

    admin: User
    manager: User
    collector: User
    customer: User
    creditor: User


# --- ledger documents, through the real services ----------------------------------------------


def issue_invoice(
    customer: Customer,
    number: str,
    amount: Decimal | str = "100.00",
    *,
    issue_date: datetime.date | None = None,
    due_date: datetime.date | None = None,
    currency: str | None = None,
    po_number: str = "",
    lines: Sequence[LineInput] | None = None,
    actor: User | None = None,
) -> Invoice:
    """An invoice of one untaxed line of ``amount`` (or of ``lines``). By default it is due
    on TODAY and issued 30 days before."""
    due = due_date or TODAY
    issued = issue_date or min(due, TODAY) - datetime.timedelta(days=30)
    with scope(organization=customer.organization):
        return invoice_issue(
            customer=customer,
            number=number,
            issue_date=issued,
            due_date=due,
            lines=list(lines) if lines is not None else [LineInput("Goods", Decimal(1), Decimal(amount))],
            currency=currency,
            po_number=po_number,
            actor=actor,
        )


def issue_credit_note(
    invoice: Invoice, number: str, amount: Decimal | str, *, reason: str = "Damaged in transit"
) -> CreditNote:
    with scope(organization=invoice.customer.organization):
        return credit_note_issue(
            invoice=invoice, number=number, amount=Decimal(amount), reason=reason, issue_date=TODAY
        )


def record_payment(
    customer: Customer,
    amount: Decimal | str,
    *,
    allocations: Sequence[tuple[Invoice, Decimal | str]] | None = None,
    currency: str | None = None,
    method: str = Payment.Method.CHECK,
    reference: str = "",
    received_at: datetime.datetime = RECEIVED_AT,
    actor: User | None = None,
) -> Payment:
    with scope(organization=customer.organization):
        return payment_record(
            customer=customer,
            amount=Decimal(amount),
            method=method,
            received_at=received_at,
            currency=currency,
            reference=reference,
            allocations=None
            if allocations is None
            else [AllocationInput(invoice, Decimal(part)) for invoice, part in allocations],
            actor=actor,
        )


def fresh(invoice: Invoice) -> Invoice:
    """The invoice as the database has it now."""
    with scopes_disabled():
        return Invoice.objects.get(pk=invoice.pk)


# --- the ledger -------------------------------------------------------------------------------


def assert_ledger_clean(organization_id: int | None = None) -> None:
    """Fail, listing every mismatch, unless ``ledger_check`` finds the ledger consistent."""
    mismatches = ledger_check(organization_id)
    if mismatches:
        listing = "\n".join(f"  - {mismatch}" for mismatch in mismatches)
        pytest.fail(f"the ledger has {len(mismatches)} mismatch(es):\n{listing}", pytrace=False)


def row_counts() -> dict[str, int]:
    """How many rows each ledger table holds, across tenants: a refused request must leave
    every figure as it was."""
    with scopes_disabled():
        return {
            "invoices": Invoice.objects.count(),
            "invoice_lines": InvoiceLine.objects.count(),
            "credit_notes": CreditNote.objects.count(),
            "payments": Payment.objects.count(),
            "allocations": Allocation.objects.count(),
            "activities": Activity.objects.count(),
            "audit_events": AuditEvent.objects.count(),
        }


def make_document(
    customer: Customer,
    *,
    title: str,
    filename: str,
    content: bytes,
    invoice: Invoice | None = None,
    kind: str = Document.Kind.BILL_OF_LADING,
    visible_to_customer: bool = True,
    content_type: str = "application/pdf",
) -> Document:
    """A document kept through the real service (the file goes to the default storage)."""
    with scope(organization=customer.organization):
        return document_store(
            customer=customer,
            invoice=invoice,
            kind=kind,
            title=title,
            filename=filename,
            content=content,
            content_type=content_type,
            visible_to_customer=visible_to_customer,
        )


# --- front-door helpers -----------------------------------------------------------------------


def signed_in(user: User) -> Client:
    """A test client with ``user`` signed in (a full session)."""
    client = Client()
    client.force_login(user)
    return client


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style", "title")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style", "title")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def text_of(content: bytes | str) -> str:
    """The visible text of a page: no tags, no title or script, entities decoded, whitespace
    collapsed."""
    parser = _Text()
    parser.feed(content.decode() if isinstance(content, bytes) else content)
    return " ".join(" ".join(parser.parts).split())


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(n)`` for n in range(count), in threads released together, each with its own
    database connection (PostgreSQL concurrency tests). Each result, or the exception it
    raised, in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(n: int) -> None:
        try:
            barrier.wait(30)
            results[n] = work(n)
        except Exception as exc:  # the test inspects it
            results[n] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    return results
