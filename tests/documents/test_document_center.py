"""The portal's document center: what it lists, each filter alone and combined, bad filter
values, and who may open it."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from factories import Users, signed_in, text_of

from .conftest import Library, narrow_client

ALL_VISIBLE = ["Purchase order 7777", "Signed delivery receipt", "Bill of lading 881", "Master agreement"]


def titles(content: bytes) -> list[str]:
    return re.findall(r'/download" download>([^<]+)</a>', content.decode())


def test_the_center_lists_the_customers_visible_documents_newest_first(
    library: Library, portal: Client
) -> None:
    response = portal.get("/portal/documents/")

    assert response.status_code == 200
    assert titles(response.content) == ALL_VISIBLE
    page = response.content.decode()
    for hidden in ("Collector memo", "memo.pdf", "Anvil contract", "Zeta contract"):
        assert hidden not in page
    text = text_of(response.content)
    # Type, title, invoice (with its PDF), PO (the document's own, else the invoice's), date, size.
    row = re.search(rf"<tr>\s*<td><input[^>]*value=\"{library.docs['po'].pk}\".*?</tr>", page, re.S)
    assert row is not None
    row_text = text_of(row.group(0))
    assert "Purchase order 7777" in row_text and "INV-1002" in row_text and "PO-7777" in row_text
    assert "1 Jun 2025" in row_text
    assert f'href="/portal/invoices/{library.invoices["INV-1002"].pk}/invoice.pdf"' in row.group(0)
    bol_row = re.search(rf"<tr>\s*<td><input[^>]*value=\"{library.docs['bol'].pk}\".*?</tr>", page, re.S)
    assert bol_row is not None and "PO-4471" in text_of(bol_row.group(0))  # the invoice's PO
    assert "Download all 4 matching as ZIP" in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kind=bill_of_lading", ["Bill of lading 881"]),
        ("kind=proof_of_delivery", ["Signed delivery receipt"]),
        ("kind=statement", []),
        ("kind=nope", ALL_VISIBLE),
        ("from=2025-05-20", ["Purchase order 7777", "Signed delivery receipt"]),
        ("to=2025-05-10", ["Bill of lading 881", "Master agreement"]),
        ("from=2025-05-10&to=2025-05-20", ["Signed delivery receipt", "Bill of lading 881"]),
        ("from=2025-05-11&to=2025-05-19", []),
        ("invoice=INV-1001", ["Signed delivery receipt", "Bill of lading 881"]),
        ("invoice=1002", ["Purchase order 7777"]),
        ("invoice=INV-9", []),
        ("po=PO-7777", ["Purchase order 7777"]),  # the document's own PO
        ("po=4471", ["Signed delivery receipt", "Bill of lading 881"]),  # the invoice's PO
        ("po=PO-5000", ["Purchase order 7777"]),  # its invoice's PO, though it has its own
        (
            "kind=bill_of_lading&invoice=INV-1001&from=2025-05-01&to=2025-05-31&po=4471",
            ["Bill of lading 881"],
        ),
        ("kind=proof_of_delivery&po=PO-7777", []),
        ("invoice=INV-1001&to=2025-05-15", ["Bill of lading 881"]),
    ],
)
def test_filters_alone_and_combined(
    library: Library, portal: Client, query: str, expected: list[str]
) -> None:
    response = portal.get(f"/portal/documents/?{query}")

    assert response.status_code == 200
    assert titles(response.content) == expected
    assert "Collector memo" not in response.content.decode()


def test_a_filter_matching_nothing_says_so(library: Library, portal: Client) -> None:
    text = text_of(portal.get("/portal/documents/?kind=statement").content)

    assert "No documents match these filters." in text
    assert "Clear filters" in text
    assert "Download selected as ZIP" not in text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=30/06/2025", "Enter the from date as a date, e.g. 2025-06-30."),
        ("to=yesterday", "Enter the to date as a date, e.g. 2025-06-30."),
        (
            "from=2025-06-30&to=2025-01-01",
            "The from date is after the to date: nothing can match. Swap them?",
        ),
    ],
)
def test_a_bad_date_is_explained_and_nothing_breaks(
    library: Library, portal: Client, query: str, message: str
) -> None:
    response = portal.get(f"/portal/documents/?{query}")

    assert response.status_code == 400
    assert message in text_of(response.content)


@pytest.mark.parametrize(
    ("query", "status", "shown"),
    [
        ("from=%ff", 400, ALL_VISIBLE),  # not a date: said so, and not applied
        ("invoice=%00", 200, ALL_VISIBLE),  # nothing printable left: no filter
        ("po=" + "x" * 5000, 200, []),  # cut to 60 characters; no PO has them
        ("invoice_id=abc", 200, ALL_VISIBLE),
        ("invoice_id=" + "9" * 40, 200, ALL_VISIBLE),
        ("page=-1", 200, ALL_VISIBLE),
        ("kind=%ff", 200, ALL_VISIBLE),
    ],
)
def test_odd_query_values_never_give_500(
    library: Library, users: Users, query: str, status: int, shown: list[str]
) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(users.customer)

    response = client.get(f"/portal/documents/?{query}")

    assert response.status_code == status
    assert titles(response.content) == shown
    assert ("Enter the from date as a date" in text_of(response.content)) is (status == 400)


@pytest.mark.parametrize("scope_", ["invoice", "past_due", "account"])
def test_a_narrow_session_is_offered_a_full_sign_in(library: Library, scope_: str) -> None:
    invoice = library.invoices["INV-1002"] if scope_ == "invoice" else None
    client = narrow_client(library.contact, scope_=scope_, invoice=invoice)

    response = client.get("/portal/documents/")

    assert response.status_code == 403
    assert "<h1>Sign in to see this page</h1>" in response.content.decode()
    assert "Bill of lading 881" not in response.content.decode()


def test_staff_and_other_customers_have_no_center_of_this_customer(
    library: Library, users: Users, customer_2: object
) -> None:
    assert signed_in(users.collector).get("/portal/documents/").status_code == 403
