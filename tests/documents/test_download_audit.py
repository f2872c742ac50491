"""Who downloaded which document, and from where: every single download (a document, an
invoice's PDF, the ERP's or one drawn) and every upload is audited with the user, or for a
sign-in link's session the contact, and the client's address."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from factories import Users, signed_in
from openar.billing.models import Document
from openar.customers.models import Customer

from .conftest import Library, body, documents_of, events, small_pdf, store

ADDRESS = "203.0.113.7"


def downloads() -> list[tuple[int | None, str, str, dict[str, object], str | None]]:
    return [
        (e.actor_id, e.object_type, e.object_id, e.data, e.ip) for e in events("openar.document.downloaded")
    ]


def test_a_portal_download_is_audited_with_the_user(library: Library, portal: Client, users: Users) -> None:
    bol = library.docs["bol"]

    response = portal.get(f"/portal/documents/{bol.pk}/download", REMOTE_ADDR=ADDRESS)

    assert response.status_code == 200
    assert body(response) != b""
    assert downloads() == [
        (
            users.customer.pk,
            "billing.document",
            str(bol.pk),
            {"document": bol.pk, "invoice": bol.invoice_id},
            ADDRESS,
        )
    ]


def test_a_sign_in_link_download_is_audited_with_the_contact(library: Library, invoice_link: Client) -> None:
    po = library.docs["po"]

    ok = invoice_link.get(f"/portal/documents/{po.pk}/download", REMOTE_ADDR=ADDRESS)
    refused = invoice_link.get(f"/portal/documents/{library.docs['bol'].pk}/download", REMOTE_ADDR=ADDRESS)

    assert (ok.status_code, refused.status_code) == (200, 404)
    assert downloads() == [
        (
            None,
            "billing.document",
            str(po.pk),
            {"document": po.pk, "invoice": po.invoice_id, "contact": library.contact.pk},
            ADDRESS,
        )
    ]


def test_a_desk_download_is_audited_with_the_staff_member(library: Library, users: Users) -> None:
    hidden = library.docs["hidden"]
    desk = signed_in(users.collector)

    ok = desk.get(f"/desk/documents/{hidden.pk}/download", REMOTE_ADDR=ADDRESS)
    foreign = desk.get(f"/desk/documents/{library.docs['foreign'].pk}/download", REMOTE_ADDR=ADDRESS)

    assert (ok.status_code, foreign.status_code) == (200, 404)
    assert downloads() == [
        (
            users.collector.pk,
            "billing.document",
            str(hidden.pk),
            {"document": hidden.pk, "invoice": hidden.invoice_id},
            ADDRESS,
        )
    ]


def test_invoice_pdfs_drawn_or_the_erps_are_audited(
    library: Library, portal: Client, invoice_link: Client, users: Users, customer: Customer
) -> None:
    drawn_for = library.invoices["INV-1002"]
    erp_for = library.invoices["INV-1001"]
    erp = store(customer, "Invoice INV-1001", "erp.pdf", kind=Document.Kind.INVOICE, invoice=erp_for)

    assert (
        invoice_link.get(f"/portal/invoices/{drawn_for.pk}/invoice.pdf", REMOTE_ADDR=ADDRESS).status_code
        == 200
    )
    assert portal.get(f"/portal/invoices/{erp_for.pk}/invoice.pdf", REMOTE_ADDR=ADDRESS).status_code == 200
    desk = signed_in(users.collector)
    url = f"/desk/customers/{customer.pk}/invoices/{drawn_for.pk}/invoice.pdf"
    assert desk.get(url, REMOTE_ADDR=ADDRESS).status_code == 200

    assert downloads() == [
        (
            None,
            "billing.invoice",
            str(drawn_for.pk),
            {
                "document": None,
                "invoice": drawn_for.pk,
                "invoice_pdf": "drawn",
                "contact": library.contact.pk,
            },
            ADDRESS,
        ),
        (
            users.customer.pk,
            "billing.document",
            str(erp.pk),
            {"document": erp.pk, "invoice": erp_for.pk, "invoice_pdf": "erp"},
            ADDRESS,
        ),
        (
            users.collector.pk,
            "billing.invoice",
            str(drawn_for.pk),
            {"document": None, "invoice": drawn_for.pk, "invoice_pdf": "drawn"},
            ADDRESS,
        ),
    ]


def test_a_refused_download_is_not_audited(library: Library, portal: Client) -> None:
    assert portal.get(f"/portal/documents/{library.docs['hidden'].pk}/download").status_code == 404
    assert portal.get(f"/portal/documents/{library.docs['neighbour'].pk}/download").status_code == 404
    assert downloads() == []


def test_an_upload_from_a_sign_in_link_is_audited_with_the_contact_and_address(
    library: Library, invoice_link: Client, customer: Customer
) -> None:
    shown = library.invoices["INV-1002"]
    upload = SimpleUploadedFile("pod.pdf", small_pdf("Delivered"), content_type="application/pdf")

    response = invoice_link.post(
        "/portal/documents/upload/",
        {"files": upload, "kind": "proof_of_delivery", "invoice": str(shown.pk)},
        REMOTE_ADDR=ADDRESS,
    )

    assert response.status_code == 302
    kept = documents_of(customer)[-1]
    [event] = [e for e in events("openar.document.stored") if e.object_id == str(kept.pk)]
    assert (event.actor_id, event.ip) == (None, ADDRESS)
    assert event.data == {
        "kind": "proof_of_delivery",
        "size": kept.size,
        "sha256": kept.sha256,
        "contact": library.contact.pk,
    }


def test_an_upload_in_a_full_session_is_audited_with_the_user_and_address(
    library: Library, portal: Client, users: Users, customer: Customer
) -> None:
    upload = SimpleUploadedFile("po.pdf", small_pdf("PO"), content_type="application/pdf")

    response = portal.post(
        "/portal/documents/upload/", {"files": upload, "kind": "purchase_order"}, REMOTE_ADDR=ADDRESS
    )

    assert response.status_code == 302
    kept = documents_of(customer)[-1]
    [event] = [e for e in events("openar.document.stored") if e.object_id == str(kept.pk)]
    assert (event.actor_id, event.ip) == (users.customer.pk, ADDRESS)
    assert event.data == {"kind": "purchase_order", "size": kept.size, "sha256": kept.sha256}


def test_a_staff_upload_is_audited_with_the_address(
    library: Library, users: Users, customer: Customer
) -> None:
    upload = SimpleUploadedFile("terms.pdf", small_pdf("Terms"), content_type="application/pdf")

    response = signed_in(users.collector).post(
        f"/desk/customers/{customer.pk}/documents/upload/",
        {"files": upload, "kind": "contract"},
        REMOTE_ADDR=ADDRESS,
    )

    assert response.status_code == 302
    kept = documents_of(customer)[-1]
    [event] = [e for e in events("openar.document.stored") if e.object_id == str(kept.pk)]
    assert (event.actor_id, event.ip) == (users.collector.pk, ADDRESS)
