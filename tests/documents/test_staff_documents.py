"""Documents at the desk: the customer's documents (hidden ones marked) with the portal's
filters, staff uploads, showing and hiding a document, and other organizations' ids."""

from __future__ import annotations

import datetime
import io
import re
from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_scopes import scopes_disabled
from PIL import Image

from factories import Users, signed_in, text_of
from openar.billing.models import Document
from openar.customers.models import Activity, Customer

from .conftest import Library, activities_of, documents_of, events, small_pdf


def pdf_file(name: str = "bol.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, small_pdf(name), content_type="application/pdf")


def titles(content: bytes) -> list[str]:
    return re.findall(r'/download" download>([^<]+)</a>', content.decode())


def reload(document: Document) -> Document:
    with scopes_disabled():
        return Document.objects.get(pk=document.pk)


def test_the_customer_page_has_a_documents_card(library: Library, desk: Client, customer: Customer) -> None:
    page = desk.get(f"/desk/customers/{customer.pk}/").content.decode()

    start = page.index('id="documents"')
    card = page[start : page.index("</section>", start)]
    assert titles(card.encode()) == [
        "Collector memo",
        "Master agreement",
        "Purchase order 7777",
        "Signed delivery receipt",
        "Bill of lading 881",
    ]
    assert text_of(card).count("Staff only") == 1
    assert f'action="/desk/customers/{customer.pk}/documents/upload/"' in card
    assert f'action="/desk/documents/{library.docs["hidden"].pk}/visibility/"' in card
    assert "Anvil contract" not in page and "Zeta contract" not in page


def test_the_desk_list_filters_like_the_portal_and_shows_hidden_ones(
    library: Library, desk: Client, customer: Customer
) -> None:
    url = f"/desk/customers/{customer.pk}/documents/"

    every = desk.get(url)
    by_invoice = desk.get(f"{url}?invoice_id={library.invoices['INV-1001'].pk}")
    by_po = desk.get(f"{url}?po=4471&from=2025-05-15")

    assert every.status_code == 200
    assert titles(every.content) == [
        "Collector memo",
        "Purchase order 7777",
        "Signed delivery receipt",
        "Bill of lading 881",
        "Master agreement",
    ]
    assert "Staff only" in text_of(every.content)
    assert titles(by_invoice.content) == ["Collector memo", "Signed delivery receipt", "Bill of lading 881"]
    assert 'name="invoice" id="upload-invoice" maxlength="40" value="INV-1001"' in by_invoice.content.decode()
    assert titles(by_po.content) == ["Collector memo", "Signed delivery receipt"]


def test_a_collector_adds_a_hidden_bill_of_lading_to_an_invoice(
    library: Library, desk: Client, customer: Customer, users: Users, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = desk.post(
            f"/desk/customers/{customer.pk}/documents/upload/",
            {
                "files": pdf_file("lading-77.pdf"),
                "kind": "bill_of_lading",
                "invoice": " inv-1002 ",
                "title": "Lading 77",
                "po_number": "PO-9",
                "document_date": "2025-06-12",
                "note": "From the carrier",
                "next": f"/desk/customers/{customer.pk}/#documents",
            },
        )

    assert response.status_code == 302
    assert response["Location"] == f"/desk/customers/{customer.pk}/#documents"
    kept = documents_of(customer)[-1]
    assert (kept.kind, kept.title, kept.filename, kept.po_number) == (
        "bill_of_lading",
        "Lading 77",
        "lading-77.pdf",
        "PO-9",
    )
    assert (kept.invoice_id, kept.visible_to_customer, kept.uploaded_by_id) == (
        library.invoices["INV-1002"].pk,
        False,
        users.collector.pk,
    )
    assert kept.document_date == datetime.date(2025, 6, 12)
    activity = activities_of(customer)[-1]
    assert activity.visibility == Activity.Visibility.INTERNAL
    assert activity.summary.endswith("added a file (bill of lading) for invoice INV-1002: lading-77.pdf")
    assert mail.outbox == []  # AR did it: nobody to tell
    portal = signed_in(users.customer)
    assert "Lading 77" not in portal.get("/portal/documents/").content.decode()
    assert portal.get(f"/portal/documents/{kept.pk}/download").status_code == 404


def test_a_visible_upload_reaches_the_portal(
    library: Library, desk: Client, customer: Customer, users: Users
) -> None:
    response = desk.post(
        f"/desk/customers/{customer.pk}/documents/upload/",
        {"files": pdf_file("terms.pdf"), "kind": "contract", "visible": "1"},
    )

    assert response.status_code == 302
    assert response["Location"] == f"/desk/customers/{customer.pk}/documents/"
    kept = documents_of(customer)[-1]
    assert (kept.title, kept.visible_to_customer, kept.invoice_id) == ("Contract: terms.pdf", True, None)
    assert "Contract: terms.pdf" in text_of(signed_in(users.customer).get("/portal/documents/").content)


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"kind": "contract", "invoice": "INV-404"}, 400, "Bolt Hardware has no invoice INV-404."),
        ({"kind": "nonsense"}, 400, "Choose a type."),
        (
            {"kind": "contract", "document_date": "12/06/2025"},
            400,
            "Enter the date as a date, e.g. 2025-06-30.",
        ),
        ({"kind": "contract", "file": "none"}, 400, "Choose a file to upload."),
    ],
)
def test_a_bad_upload_form_is_explained_and_keeps_nothing(
    library: Library, desk: Client, customer: Customer, data: dict[str, str], status: int, message: str
) -> None:
    before = len(documents_of(customer)), len(activities_of(customer))
    payload: dict[str, Any] = dict(data)
    if payload.pop("file", "") != "none":
        payload["files"] = pdf_file()

    response = desk.post(f"/desk/customers/{customer.pk}/documents/upload/", payload)

    assert response.status_code == status
    assert message in text_of(response.content)
    assert (len(documents_of(customer)), len(activities_of(customer))) == before


def test_a_refused_file_at_the_desk(
    library: Library, desk: Client, customer: Customer, settings: Any
) -> None:
    settings.OPENAR_UPLOAD_LIMITS = {**settings.OPENAR_UPLOAD_LIMITS, "document": 1024}
    before = len(documents_of(customer))

    wrong = desk.post(
        f"/desk/customers/{customer.pk}/documents/upload/",
        {"files": SimpleUploadedFile("x.js", b"alert(1)\n"), "kind": "attachment"},
    )
    large = desk.post(
        f"/desk/customers/{customer.pk}/documents/upload/",
        {"files": SimpleUploadedFile("big.pdf", b"%PDF-1.4\n" + b"0" * 3000), "kind": "attachment"},
    )

    assert wrong.status_code == 400
    assert "like a program or a web page" in text_of(wrong.content)
    assert large.status_code == 413
    assert "documents can be at most 1 KB" in text_of(large.content)
    assert len(documents_of(customer)) == before


def test_hiding_and_showing_a_document(
    library: Library, desk: Client, users: Users, customer: Customer
) -> None:
    bol = library.docs["bol"]
    portal = signed_in(users.customer)
    url = f"/desk/documents/{bol.pk}/visibility/"
    back = f"/desk/customers/{customer.pk}/documents/?kind=bill_of_lading"

    hidden = desk.post(url, {"visible": "0", "next": back})
    after_hiding = (
        reload(bol).visible_to_customer,
        portal.get(f"/portal/documents/{bol.pk}/download").status_code,
    )
    again = desk.post(url, {"visible": "0"})
    shown = desk.post(url, {"visible": "1", "next": "https://evil.example/"})

    assert (hidden.status_code, hidden["Location"]) == (302, back)
    assert after_hiding == (False, 404)
    assert again.status_code == 302
    assert (shown.status_code, shown["Location"]) == (302, f"/desk/customers/{customer.pk}/documents/")
    assert reload(bol).visible_to_customer is True
    assert portal.get(f"/portal/documents/{bol.pk}/download").status_code == 200
    assert [
        (e.action, e.actor_id, e.data)
        for e in events("openar.document.hidden") + events("openar.document.shown")
    ] == [
        (
            "openar.document.hidden",
            users.collector.pk,
            {"title": "Bill of lading 881", "visible_to_customer": False},
        ),
        (
            "openar.document.shown",
            users.collector.pk,
            {"title": "Bill of lading 881", "visible_to_customer": True},
        ),
    ]


def test_a_visibility_post_without_a_choice_changes_nothing(library: Library, desk: Client) -> None:
    response = desk.post(f"/desk/documents/{library.docs['bol'].pk}/visibility/", {})

    assert response.status_code == 302
    assert reload(library.docs["bol"]).visible_to_customer is True
    assert events("openar.document.hidden") == []


def test_a_manager_reads_but_cannot_upload_or_hide(
    library: Library, users: Users, customer: Customer
) -> None:
    manager = signed_in(users.manager)
    before = len(documents_of(customer))

    listing = manager.get(f"/desk/customers/{customer.pk}/documents/")
    upload = manager.post(
        f"/desk/customers/{customer.pk}/documents/upload/", {"files": pdf_file(), "kind": "contract"}
    )
    hide = manager.post(f"/desk/documents/{library.docs['bol'].pk}/visibility/", {"visible": "0"})

    assert listing.status_code == 200
    assert "Add a document" not in text_of(listing.content)
    assert (upload.status_code, hide.status_code) == (403, 403)
    assert len(documents_of(customer)) == before
    assert reload(library.docs["bol"]).visible_to_customer is True


def test_another_organizations_customer_and_documents_are_404(
    library: Library, desk: Client, other_customer: Customer
) -> None:
    foreign = library.docs["foreign"]
    before = len(documents_of(other_customer))

    assert desk.get(f"/desk/customers/{other_customer.pk}/documents/").status_code == 404
    upload = desk.post(
        f"/desk/customers/{other_customer.pk}/documents/upload/", {"files": pdf_file(), "kind": "contract"}
    )
    hide = desk.post(f"/desk/documents/{foreign.pk}/visibility/", {"visible": "0"})
    zipped = desk.post(f"/desk/customers/{other_customer.pk}/documents/", {"document": [str(foreign.pk)]})

    assert (upload.status_code, hide.status_code, zipped.status_code) == (404, 404, 404)
    assert len(documents_of(other_customer)) == before
    assert reload(foreign).visible_to_customer is True
    assert events("openar.document.hidden") == []


STAFF_NOTE = "INTERNAL: driver says customer refused goods, escalate to legal"


def test_a_staff_note_on_a_visible_upload_stays_internal(
    library: Library, desk: Client, customer: Customer, users: Users
) -> None:
    invoice = library.invoices["INV-1001"]
    before = len(activities_of(customer))

    response = desk.post(
        f"/desk/customers/{customer.pk}/documents/upload/",
        {
            "files": pdf_file("pod.pdf"),
            "kind": "proof_of_delivery",
            "invoice": "INV-1001",
            "visible": "1",
            "note": STAFF_NOTE,
        },
    )

    assert response.status_code == 302
    added = [
        (a.kind, a.visibility, a.summary, a.body, a.invoice_id) for a in activities_of(customer)[before:]
    ]
    assert added == [
        (
            Activity.Kind.PORTAL,
            Activity.Visibility.CUSTOMER,
            "Document added: Proof of delivery: pod.pdf",
            "",
            invoice.pk,
        ),
        (
            Activity.Kind.NOTE,
            Activity.Visibility.INTERNAL,
            f"{users.collector.get_full_name()} added a file (proof of delivery) "
            "for invoice INV-1001: pod.pdf",
            STAFF_NOTE,
            invoice.pk,
        ),
    ]
    portal = signed_in(users.customer)
    timeline = portal.get("/portal/activity/").content.decode()
    assert "escalate to legal" not in timeline
    assert "Document added: Proof of delivery: pod.pdf" in text_of(timeline)
    for page in ("/portal/documents/", f"/portal/invoices/{invoice.pk}/", "/portal/"):
        assert "escalate to legal" not in portal.get(page, follow=True).content.decode()
    staff_page = desk.get(f"/desk/customers/{customer.pk}/").content.decode()
    assert "escalate to legal" in staff_page  # staff still read it on their timeline


def test_a_staff_upload_of_several_visible_files_without_a_note(
    library: Library, desk: Client, customer: Customer, users: Users
) -> None:
    before = len(activities_of(customer))

    response = desk.post(
        f"/desk/customers/{customer.pk}/documents/upload/",
        {"files": [pdf_file("a.pdf"), pdf_file("b.pdf")], "kind": "contract", "visible": "1"},
    )

    assert response.status_code == 302
    assert [(a.visibility, a.summary, a.body) for a in activities_of(customer)[before:]] == [
        (Activity.Visibility.CUSTOMER, "Documents added: Contract: a.pdf, Contract: b.pdf", ""),
        (
            Activity.Visibility.INTERNAL,
            f"{users.collector.get_full_name()} added 2 files (contract): a.pdf, b.pdf",
            "",
        ),
    ]


def test_a_hidden_staff_upload_tells_the_customer_nothing(
    library: Library, desk: Client, customer: Customer, users: Users
) -> None:
    before = len(activities_of(customer))

    desk.post(
        f"/desk/customers/{customer.pk}/documents/upload/",
        {"files": pdf_file("memo-2.pdf"), "kind": "attachment", "note": STAFF_NOTE},
    )

    added = activities_of(customer)[before:]
    assert [(a.visibility, a.body) for a in added] == [(Activity.Visibility.INTERNAL, STAFF_NOTE)]
    timeline = text_of(signed_in(users.customer).get("/portal/activity/").content)
    assert "memo-2.pdf" not in timeline and "escalate" not in timeline


def test_the_desk_note_field_says_it_is_internal(library: Library, desk: Client, customer: Customer) -> None:
    page = desk.get(f"/desk/customers/{customer.pk}/documents/").content.decode()
    card = desk.get(f"/desk/customers/{customer.pk}/").content.decode()

    assert '<label for="upload-note">Internal note (staff only)</label>' in page
    assert '<label for="card-upload-note">Internal note (staff only)</label>' in card
    assert ">Note (optional)<" not in page


def png_file(name: str = "scan.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def test_an_invoice_uploaded_at_the_desk_must_be_a_pdf(
    library: Library, desk: Client, customer: Customer
) -> None:
    before = len(documents_of(customer)), len(activities_of(customer)), len(events("openar.document.stored"))
    url = f"/desk/customers/{customer.pk}/documents/upload/"

    scan = desk.post(url, {"files": png_file(), "kind": "invoice", "invoice": "INV-1001", "visible": "1"})
    mixed = desk.post(url, {"files": [pdf_file("inv.pdf"), png_file()], "kind": "invoice", "visible": "1"})

    for response in (scan, mixed):
        assert response.status_code == 400
        assert (
            "An invoice is kept as its PDF: scan.png is a PNG image. Upload the invoice as a PDF, "
            "or choose another type (an attachment, say) for this file."
        ) in text_of(response.content)
    after = len(documents_of(customer)), len(activities_of(customer)), len(events("openar.document.stored"))
    assert after == before
    other_type = desk.post(url, {"files": png_file(), "kind": "attachment", "visible": "1"})
    as_pdf = desk.post(url, {"files": pdf_file("inv.pdf"), "kind": "invoice", "invoice": "INV-1001"})
    assert (other_type.status_code, as_pdf.status_code) == (302, 302)
    assert [(d.kind, d.content_type) for d in documents_of(customer)[-2:]] == [
        ("attachment", "image/png"),
        ("invoice", "application/pdf"),
    ]
