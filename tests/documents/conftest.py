"""Data for the document tests: a customer with invoices, documents of every kind (dated, with
PO numbers, one hidden from the customer), a neighbour's and another organization's, and
the ways to reach them (a full portal session, a narrow one from a sign-in link, the desk)."""

from __future__ import annotations

import datetime
import io
import zipfile
from dataclasses import dataclass

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled
from reportlab.pdfgen import canvas

from factories import Users, days_ago, issue_invoice, make_contact, signed_in
from openar.billing.models import Document, Invoice
from openar.billing.services import document_store
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Contact, Customer
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink


def small_pdf(text: str) -> bytes:
    """A real one-page PDF saying ``text``."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 720, text)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def store(
    customer: Customer,
    title: str,
    filename: str,
    *,
    kind: str = Document.Kind.ATTACHMENT,
    invoice: Invoice | None = None,
    day: datetime.date | None = None,
    po_number: str = "",
    visible: bool = True,
    content: bytes | None = None,
    content_type: str = "application/pdf",
) -> Document:
    with scope(organization=customer.organization):
        return document_store(
            customer=customer,
            kind=kind,
            title=title,
            filename=filename,
            content=content if content is not None else small_pdf(title),
            content_type=content_type,
            invoice=invoice,
            visible_to_customer=visible,
            po_number=po_number,
            document_date=day,
        )


@dataclass
class Library:
    invoices: dict[str, Invoice]
    docs: dict[str, Document]
    contact: Contact


@pytest.fixture
def library(users: Users, customer: Customer, customer_2: Customer, other_customer: Customer) -> Library:
    """Bolt Hardware (C-1001): INV-1001 (PO-4471, past due), INV-1002 (PO-5000, not due),
    INV-1003; its documents, newest first by their own date:

    ======== ================== ========== ========= ==========================
    key      kind               date       invoice   PO (own) / file
    ======== ================== ========== ========= ==========================
    hidden   attachment         2025-06-20 INV-1001  staff only
    po       purchase_order     2025-06-01 INV-1002  PO-7777 / po-7777.pdf
    pod      proof_of_delivery  2025-05-20 INV-1001  bol.pdf (the same name)
    bol      bill_of_lading     2025-05-10 INV-1001  bol.pdf
    contract contract           2025-01-15 —         msa.pdf
    ======== ================== ========== ========= ==========================

    plus Anvil Works' (the neighbour) and Globex's (another organization) documents."""
    invoices = {
        "INV-1001": issue_invoice(customer, "INV-1001", "100.00", due_date=days_ago(10), po_number="PO-4471"),
        "INV-1002": issue_invoice(
            customer, "INV-1002", "250.00", due_date=days_ago(-20), po_number="PO-5000"
        ),
        "INV-1003": issue_invoice(customer, "INV-1003", "75.00", due_date=days_ago(40)),
    }
    docs = {
        "bol": store(
            customer,
            "Bill of lading 881",
            "bol.pdf",
            kind=Document.Kind.BILL_OF_LADING,
            invoice=invoices["INV-1001"],
            day=datetime.date(2025, 5, 10),
        ),
        "pod": store(
            customer,
            "Signed delivery receipt",
            "bol.pdf",
            kind=Document.Kind.PROOF_OF_DELIVERY,
            invoice=invoices["INV-1001"],
            day=datetime.date(2025, 5, 20),
        ),
        "po": store(
            customer,
            "Purchase order 7777",
            "po-7777.pdf",
            kind=Document.Kind.PURCHASE_ORDER,
            invoice=invoices["INV-1002"],
            day=datetime.date(2025, 6, 1),
            po_number="PO-7777",
        ),
        "contract": store(
            customer,
            "Master agreement",
            "msa.pdf",
            kind=Document.Kind.CONTRACT,
            day=datetime.date(2025, 1, 15),
        ),
        "hidden": store(
            customer,
            "Collector memo",
            "memo.pdf",
            invoice=invoices["INV-1001"],
            day=datetime.date(2025, 6, 20),
            visible=False,
        ),
        "neighbour": store(customer_2, "Anvil contract", "anvil.pdf", kind=Document.Kind.CONTRACT),
        "foreign": store(other_customer, "Zeta contract", "zeta.pdf", kind=Document.Kind.CONTRACT),
    }
    contact = make_contact(customer, "Dana Payables", "payables@bolt.example")
    return Library(invoices=invoices, docs=docs, contact=contact)


@pytest.fixture
def portal(users: Users) -> Client:
    return signed_in(users.customer)


@pytest.fixture
def desk(users: Users) -> Client:
    return signed_in(users.collector)


def narrow_client(contact: Contact, *, scope_: str, invoice: Invoice | None = None) -> Client:
    """A browser that opened a sign-in link of ``contact`` and confirmed it."""
    with scope(organization=contact.customer.organization):
        issued = magic_link_create(contact=contact, scope_=scope_, invoice=invoice)
    client = Client()
    assert client.get(f"/l/{issued.token}/").status_code == 302
    assert client.post("/l/confirm/").status_code == 302
    return client


@pytest.fixture
def invoice_link(library: Library) -> Client:
    """A narrow session from a link to INV-1002 only."""
    return narrow_client(
        library.contact, scope_=MagicLink.Scope.INVOICE, invoice=library.invoices["INV-1002"]
    )


def zip_entries(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


def body(response: object) -> bytes:
    streaming = getattr(response, "streaming_content", None)
    if streaming is not None:
        return b"".join(streaming)
    content: bytes = response.content  # type: ignore[attr-defined]
    return content


def events(action: str) -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def documents_of(customer: Customer) -> list[Document]:
    with scopes_disabled():
        return list(Document.objects.filter(customer=customer).order_by("pk"))


def activities_of(customer: Customer) -> list[Activity]:
    with scopes_disabled():
        return list(Activity.objects.filter(customer=customer).order_by("pk"))
