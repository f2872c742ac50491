"""A customer sends a supporting document from the portal: what is kept, who hears of it,
and what is refused (with the reason and the status, keeping nothing)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_scopes import scopes_disabled

from factories import Users, text_of
from openar.billing.models import Document
from openar.customers.models import Activity, Customer
from openar.tenants.models import Organization

from .conftest import (
    Library,
    activities_of,
    documents_of,
    events,
    small_pdf,
)

UPLOAD = "/portal/documents/upload/"


def pdf_file(name: str = "pod.pdf", text: str = "Delivered in full") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, small_pdf(text), content_type="application/pdf")


@pytest.fixture
def ar_address(supplier: Organization) -> str:
    supplier.email = "ar@acme.example"
    supplier.save()
    return supplier.email


def snapshot(customer: Customer) -> tuple[int, int, int, int]:
    return (
        len(documents_of(customer)),
        len(activities_of(customer)),
        len(events("openar.document.stored")),
        len(mail.outbox),
    )


def test_a_proof_of_delivery_is_kept_shown_and_ar_is_told(
    library: Library,
    portal: Client,
    users: Users,
    customer: Customer,
    ar_address: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    invoice = library.invoices["INV-1001"]
    content = small_pdf("Delivered in full")
    upload = SimpleUploadedFile("pod.pdf", content, content_type="application/pdf")
    before = len(documents_of(customer))

    with django_capture_on_commit_callbacks(execute=True):
        response = portal.post(
            UPLOAD,
            {
                "files": upload,
                "kind": "proof_of_delivery",
                "invoice": str(invoice.pk),
                "note": "Signed by Sam",
            },
        )

    assert response.status_code == 302
    assert response["Location"] == "/portal/documents/"
    documents = documents_of(customer)
    assert len(documents) == before + 1
    kept = documents[-1]
    assert (kept.kind, kept.title, kept.filename) == (
        Document.Kind.PROOF_OF_DELIVERY,
        "Proof of delivery: pod.pdf",
        "pod.pdf",
    )
    assert (kept.invoice_id, kept.visible_to_customer, kept.uploaded_by_id) == (
        invoice.pk,
        True,
        users.customer.pk,
    )
    assert (kept.content_type, kept.size, kept.sha256) == (
        "application/pdf",
        len(content),
        hashlib.sha256(content).hexdigest(),
    )
    assert kept.note == "Signed by Sam"
    assert kept.document_date == customer.organization.today()
    with kept.file.open("rb") as stored:
        assert stored.read() == content
    assert not str(kept.file.name).endswith("pod.pdf")  # stored under a name the server made
    activity = activities_of(customer)[-1]
    assert activity.kind == Activity.Kind.PORTAL
    assert activity.visibility == Activity.Visibility.CUSTOMER
    assert (
        activity.summary == f"{users.customer.get_full_name()} uploaded a file (proof of delivery) "
        "for invoice INV-1001: pod.pdf"
    )
    assert activity.body == "Signed by Sam"
    assert activity.invoice_id == invoice.pk
    [stored_event] = [e for e in events("openar.document.stored") if e.object_id == str(kept.pk)]
    assert stored_event.actor_id == users.customer.pk
    [notice] = [m for m in mail.outbox if m.to == [ar_address]]
    assert notice.subject == "Bolt Hardware uploaded a file for invoice INV-1001"
    assert "Their note: Signed by Sam" in notice.body
    assert f"/desk/customers/{customer.pk}/" in notice.body
    listing = text_of(portal.get("/portal/documents/").content)
    assert "Proof of delivery: pod.pdf" in listing
    assert "Thank you: we received pod.pdf. We have told your account team." in listing


def test_a_remittance_advice_with_a_title_from_the_invoice_page_returns_there(
    library: Library, portal: Client, customer: Customer
) -> None:
    invoice = library.invoices["INV-1002"]

    response = portal.post(
        UPLOAD,
        {
            "files": pdf_file("remit.pdf"),
            "kind": "remittance_advice",
            "invoice": str(invoice.pk),
            "from": "invoice",
            "title": "June remittance",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == f"/portal/invoices/{invoice.pk}/#docs-h"
    kept = documents_of(customer)[-1]
    assert (kept.kind, kept.title, kept.invoice_id) == (
        Document.Kind.ATTACHMENT,
        "June remittance",
        invoice.pk,
    )


def test_several_files_at_once(library: Library, portal: Client, customer: Customer) -> None:
    response = portal.post(
        UPLOAD, {"files": [pdf_file("a.pdf", "A"), pdf_file("b.pdf", "B")], "kind": "purchase_order"}
    )

    assert response.status_code == 302
    kept = documents_of(customer)[-2:]
    assert [(d.title, d.kind, d.invoice_id) for d in kept] == [
        ("Purchase order: a.pdf", Document.Kind.PURCHASE_ORDER, None),
        ("Purchase order: b.pdf", Document.Kind.PURCHASE_ORDER, None),
    ]
    assert activities_of(customer)[-1].summary.endswith("uploaded 2 files (purchase order): a.pdf, b.pdf")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("run.exe", b"MZ\x90\x00" + b"\x00" * 200, "This file is a Windows program"),
        ("page.html", b"<html><script>alert(1)</script></html>", "documents can be PDF files"),
        (
            "invoice.pdf",
            b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
            "This file is named “invoice.pdf”, like a PDF file, but contains a PNG image",
        ),
        ("empty.pdf", b"", "This file is empty."),
    ],
)
def test_a_refused_file_says_why_and_keeps_nothing(
    library: Library,
    portal: Client,
    customer: Customer,
    ar_address: str,
    name: str,
    content: bytes,
    message: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    before = snapshot(customer)

    with django_capture_on_commit_callbacks(execute=True):
        response = portal.post(
            UPLOAD,
            {
                "files": SimpleUploadedFile(name, content),
                "kind": "proof_of_delivery",
                "note": "Please file this",
            },
        )

    assert response.status_code == 400
    text = text_of(response.content)
    assert message in text
    assert "Please file this" in response.content.decode()  # what was typed is kept
    assert snapshot(customer) == before


def test_one_bad_file_among_several_keeps_none(library: Library, portal: Client, customer: Customer) -> None:
    before = snapshot(customer)

    response = portal.post(
        UPLOAD,
        {
            "files": [pdf_file("good.pdf"), SimpleUploadedFile("bad.exe", b"MZ" + b"\x00" * 100)],
            "kind": "other",
        },
    )

    assert response.status_code == 400
    assert "bad.exe:" in text_of(response.content)
    assert snapshot(customer) == before


def test_too_large_is_413_and_keeps_nothing(
    library: Library, portal: Client, customer: Customer, settings: Any
) -> None:
    settings.OPENAR_UPLOAD_LIMITS = {**settings.OPENAR_UPLOAD_LIMITS, "document": 1024}
    before = snapshot(customer)

    response = portal.post(
        UPLOAD,
        {"files": SimpleUploadedFile("big.pdf", b"%PDF-1.4\n" + b"0" * 4000), "kind": "other"},
    )

    assert response.status_code == 413
    assert "documents can be at most 1 KB" in text_of(response.content)
    assert snapshot(customer) == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "other"}, "Choose a file to upload."),
        ({"kind": "contract", "files": "x"}, "Say what the document is."),
        ({"kind": "other", "invoice": "999999", "files": "x"}, "Choose one of your invoices."),
    ],
)
def test_a_bad_form_is_explained(
    library: Library, portal: Client, customer: Customer, data: dict[str, str], message: str
) -> None:
    before = snapshot(customer)
    if data.get("files"):
        data = {**data, "files": pdf_file()}  # type: ignore[dict-item]

    response = portal.post(UPLOAD, data)

    assert response.status_code == 400
    assert message in text_of(response.content)
    assert snapshot(customer) == before


def test_another_customers_invoice_cannot_be_chosen(
    library: Library, portal: Client, customer: Customer, customer_2: Customer
) -> None:
    from factories import issue_invoice

    neighbour = issue_invoice(customer_2, "INV-8001", "10.00")
    before = snapshot(customer), len(documents_of(customer_2))

    response = portal.post(UPLOAD, {"files": pdf_file(), "kind": "other", "invoice": str(neighbour.pk)})

    assert response.status_code == 400
    assert "INV-8001" not in response.content.decode()
    assert (snapshot(customer), len(documents_of(customer_2))) == before


def test_a_narrow_session_attaches_only_to_the_invoices_its_link_shows(
    library: Library, invoice_link: Client, customer: Customer
) -> None:
    shown, other = library.invoices["INV-1002"], library.invoices["INV-1001"]
    page = invoice_link.get(UPLOAD).content.decode()
    before = snapshot(customer)

    elsewhere = invoice_link.post(UPLOAD, {"files": pdf_file(), "kind": "other", "invoice": str(other.pk)})
    nowhere = invoice_link.post(UPLOAD, {"files": pdf_file(), "kind": "other"})
    unchanged = snapshot(customer)
    allowed = invoice_link.post(
        UPLOAD, {"files": pdf_file(), "kind": "proof_of_delivery", "invoice": str(shown.pk)}
    )

    assert "INV-1002" in page and "INV-1001" not in page and "No invoice in particular" in page
    assert elsewhere.status_code == 400
    assert "Choose one of your invoices." in text_of(elsewhere.content)
    assert nowhere.status_code == 400
    assert "Choose the invoice it is about." in text_of(nowhere.content)
    assert unchanged == before
    assert allowed.status_code == 302
    assert allowed["Location"] == f"/portal/invoices/{shown.pk}/#docs-h"
    kept = documents_of(customer)[-1]
    assert (kept.invoice_id, kept.uploaded_by_id, kept.visible_to_customer) == (shown.pk, None, True)
    assert activities_of(customer)[-1].summary.startswith("Dana Payables uploaded a file (proof of delivery)")


def test_the_upload_form_is_on_the_documents_page_and_the_invoice_page(
    library: Library, portal: Client
) -> None:
    invoice = library.invoices["INV-1001"]

    center = portal.get("/portal/documents/").content.decode()
    invoice_page = portal.get(f"/portal/invoices/{invoice.pk}/").content.decode()

    for page in (center, invoice_page):
        assert 'action="/portal/documents/upload/" enctype="multipart/form-data"' in page
    assert f'<input type="hidden" name="invoice" value="{invoice.pk}">' in invoice_page


def test_staff_viewing_as_the_customer_upload_nothing(
    library: Library, users: Users, customer: Customer
) -> None:
    client = Client()
    client.force_login(users.collector)
    assert client.post(f"/desk/customers/{customer.pk}/view-as/").status_code == 302
    before = snapshot(customer)

    response = client.post(UPLOAD, {"files": pdf_file(), "kind": "other"})

    assert response.status_code == 302
    assert snapshot(customer) == before
    with scopes_disabled():
        assert not Document.objects.filter(title__startswith="Document").exists()
