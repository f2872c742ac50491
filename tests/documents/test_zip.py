"""Several documents as one ZIP: what it holds and how its entries are named, the refusals
(a foreign or hidden id, nothing ticked, over the limits), the audit event, and what a
narrow session may pack."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.test import Client
from django_scopes import scopes_disabled

from factories import Users, signed_in, text_of
from openar.billing import archives
from openar.billing.models import Document

from .conftest import Library, body, events, store, zip_entries


def post_zip(client: Client, *ids: int, **data: str) -> Any:
    return client.post("/portal/documents/", {"document": [str(i) for i in ids], **data})


def content_of(document: Document) -> bytes:
    with scopes_disabled():
        fresh = Document.objects.get(pk=document.pk)
    with fresh.file.open("rb") as handle:
        return handle.read()


def test_the_documents_ticked_come_as_one_zip_named_safely(
    library: Library, portal: Client, clock: time_machine.Traveller
) -> None:
    bol, pod, po = library.docs["bol"], library.docs["pod"], library.docs["po"]

    response = post_zip(portal, bol.pk, pod.pk, po.pk)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="documents-C-1001-2025-06-30.zip"'
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    entries = zip_entries(body(response))
    # In the list's order (newest first); the second "bol.pdf" is numbered.
    assert list(entries) == ["po-7777.pdf", "bol.pdf", "bol (2).pdf"]
    assert entries["po-7777.pdf"] == content_of(po)
    assert entries["bol.pdf"] == content_of(pod)
    assert entries["bol (2).pdf"] == content_of(bol)
    [event] = events("openar.document.zip_downloaded")
    assert event.data == {"ids": [po.pk, pod.pk, bol.pk], "count": 3, "generated": []}
    assert event.object_id == str(library.docs["bol"].customer_id)


def test_all_matching_the_filters(library: Library, portal: Client) -> None:
    response = portal.post("/portal/documents/", {"all": "1", "invoice": "INV-1001"})

    assert response.status_code == 200
    assert list(zip_entries(body(response))) == ["bol.pdf", "bol (2).pdf"]  # not the hidden memo


@pytest.mark.parametrize("which", ["hidden", "neighbour", "foreign"])
def test_an_id_the_customer_may_not_see_refuses_the_whole_zip(
    library: Library, portal: Client, which: str
) -> None:
    response = post_zip(portal, library.docs["bol"].pk, library.docs[which].pk)

    assert response.status_code == 404
    assert b"PK\x03\x04" not in response.content
    assert library.docs[which].title not in response.content.decode()
    assert events("openar.document.zip_downloaded") == []


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "9" * 20])
def test_a_tampered_id_is_404(library: Library, portal: Client, value: str) -> None:
    response = portal.post("/portal/documents/", {"document": [value]})

    assert response.status_code == 404
    assert events("openar.document.zip_downloaded") == []


def test_nothing_ticked_is_explained(library: Library, portal: Client) -> None:
    response = portal.post("/portal/documents/", {"kind": "contract"})

    assert response.status_code == 400
    text = text_of(response.content)
    assert "Tick the documents to download first, or download all that match." in text
    assert "Master agreement" in text  # the page, filtered as it was
    assert "Bill of lading 881" not in text
    assert events("openar.document.zip_downloaded") == []


def test_more_documents_than_a_zip_holds(
    library: Library, portal: Client, customer: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archives, "MAX_FILES", 3)
    monkeypatch.setattr("openar.portal.documents.MAX_FILES", 3)

    every = portal.post("/portal/documents/", {"all": "1"})
    ticked = post_zip(portal, *(library.docs[k].pk for k in ("bol", "pod", "po", "contract")))
    page = portal.get("/portal/documents/")
    fits = portal.post("/portal/documents/", {"all": "1", "invoice": "INV-1001"})

    assert every.status_code == 400
    assert "4 documents match; one ZIP holds at most 3." in text_of(every.content)
    assert ticked.status_code == 400
    assert "That is 4 documents; one ZIP holds at most 3." in text_of(ticked.content)
    assert "4 documents match: narrow the filters to 3 or fewer" in text_of(page.content)
    assert "Download all" not in text_of(page.content)
    assert fits.status_code == 200
    assert len(events("openar.document.zip_downloaded")) == 1


def test_more_megabytes_than_a_zip_holds(
    library: Library, portal: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archives, "MAX_BYTES", library.docs["bol"].size + library.docs["pod"].size - 1)

    response = post_zip(portal, library.docs["bol"].pk, library.docs["pod"].pk)

    assert response.status_code == 400
    assert "one ZIP holds at most" in text_of(response.content)
    assert events("openar.document.zip_downloaded") == []


def test_entry_names_never_carry_a_folder_or_clash() -> None:
    assert archives.entry_names(["a.pdf", "A.pdf", "a.pdf", "b", "a (2).pdf"]) == [
        "a.pdf",
        "A (2).pdf",
        "a (3).pdf",
        "b",
        "a (2) (2).pdf",
    ]


def test_a_stored_name_with_folders_is_packed_without_them(
    library: Library, customer: object, portal: Client
) -> None:
    odd = store(customer, "Odd", "../../etc/pass:wd.pdf", day=library.docs["po"].document_date)  # type: ignore[arg-type]
    dotted = store(customer, "Dotted", "..hidden", day=library.docs["po"].document_date)  # type: ignore[arg-type]

    entries = zip_entries(body(post_zip(portal, odd.pk, dotted.pk)))

    assert sorted(entries) == ["hidden.pdf", "pass_wd.pdf"]


def test_a_narrow_session_packs_only_the_invoices_its_link_shows(
    library: Library, invoice_link: Client
) -> None:
    shown = library.invoices["INV-1002"]
    other = library.invoices["INV-1001"]

    mine = invoice_link.get(f"/portal/invoices/{shown.pk}/documents.zip")
    theirs = invoice_link.get(f"/portal/invoices/{other.pk}/documents.zip")
    center = invoice_link.post("/portal/documents/", {"document": [str(library.docs["bol"].pk)]})

    assert mine.status_code == 200
    assert mine["X-Content-Type-Options"] == "nosniff"
    entries = zip_entries(body(mine))
    assert list(entries) == ["invoice-INV-1002.pdf", "po-7777.pdf"]  # the drawn PDF first
    assert entries["invoice-INV-1002.pdf"].startswith(b"%PDF")
    assert theirs.status_code == 404
    assert center.status_code == 403  # the document center needs a full sign-in
    [event] = events("openar.document.zip_downloaded")
    assert event.data == {
        "ids": [library.docs["po"].pk],
        "count": 2,
        "generated": ["invoice-INV-1002.pdf"],
        "contact": library.contact.pk,  # the sign-in link's: there is no user
    }
    assert event.actor_id is None


def test_an_invoice_zip_leaves_out_what_is_hidden_and_uses_the_erp_pdf(
    library: Library, portal: Client, customer: object
) -> None:
    invoice = library.invoices["INV-1001"]
    erp = store(customer, "Invoice INV-1001", "INV-1001.pdf", kind=Document.Kind.INVOICE, invoice=invoice)  # type: ignore[arg-type]

    entries = zip_entries(body(portal.get(f"/portal/invoices/{invoice.pk}/documents.zip")))

    assert sorted(entries) == ["INV-1001.pdf", "bol (2).pdf", "bol.pdf"]
    assert entries["INV-1001.pdf"] == content_of(erp)


def test_the_desk_packs_hidden_documents_too_but_never_another_customers(
    library: Library, users: Users, customer: object
) -> None:
    desk = signed_in(users.manager)
    url = f"/desk/customers/{library.docs['bol'].customer_id}/documents/"

    mine = desk.post(url, {"document": [str(library.docs["hidden"].pk), str(library.docs["bol"].pk)]})
    neighbour = desk.post(url, {"document": [str(library.docs["neighbour"].pk)]})
    foreign = desk.post(url, {"document": [str(library.docs["foreign"].pk)]})

    assert mine.status_code == 200
    assert list(zip_entries(body(mine))) == ["memo.pdf", "bol.pdf"]
    assert neighbour.status_code == 404
    assert foreign.status_code == 404
    assert len(events("openar.document.zip_downloaded")) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"all": "1", "from": "30/06/2025"}, "Enter the from date as a date, e.g. 2025-06-30."),
        (
            {"all": "1", "invoice": "INV-1001", "to": "yesterday"},
            "Enter the to date as a date, e.g. 2025-06-30.",
        ),
        (
            {"all": "1", "from": "2025-06-30", "to": "2025-01-01"},
            "The from date is after the to date: nothing can match. Swap them?",
        ),
        ({"document": "TICKED", "from": "30/06/2025"}, "Enter the from date as a date, e.g. 2025-06-30."),
    ],
)
def test_a_bad_filter_refuses_the_zip_instead_of_widening_it(
    library: Library, portal: Client, users: Users, data: dict[str, str], message: str
) -> None:
    payload = dict(data)
    if payload.get("document") == "TICKED":
        payload["document"] = str(library.docs["bol"].pk)
    desk_url = f"/desk/customers/{library.docs['bol'].customer_id}/documents/"

    mine = portal.post("/portal/documents/", payload)
    staff = signed_in(users.collector).post(desk_url, payload)

    for response in (mine, staff):
        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/html")
        text = text_of(response.content)
        assert message in text
        assert "Nothing was downloaded: correct the filters first." in text
    assert events("openar.document.zip_downloaded") == []
