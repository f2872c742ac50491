"""The staff desk: the customer list (search, sort, pages, the book totals) and the account
360, through the real URLs, with the clock pinned where the figures depend on the date."""

from __future__ import annotations

import html
import io
import re
from decimal import Decimal
from urllib.parse import urldefrag, urljoin

import pytest
import time_machine
from django.test import Client
from django_scopes import scope
from pypdf import PdfReader

from factories import (
    TODAY,
    Users,
    days_ago,
    issue_credit_note,
    issue_invoice,
    make_customer,
    make_document,
    record_payment,
    signed_in,
    text_of,
)
from openar.billing.models import Invoice
from openar.billing.selectors import BUCKETS, book_aging, customer_aging
from openar.billing.services import LineInput
from openar.core.money import format_money
from openar.customers.models import Customer
from openar.tenants.models import Creditor, Organization

# --- helpers ------------------------------------------------------------------------------------


def listed_customers(content: bytes) -> list[str]:
    return [
        html.unescape(name)
        for name in re.findall(r'href="/desk/customers/\d+/">([^<]+)</a>', content.decode())
    ]


def listed_invoices(content: bytes, customer: Customer) -> list[str]:
    return re.findall(rf'href="/desk/customers/{customer.pk}/invoices/\d+/">([^<]+)</a>', content.decode())


def table_rows(content: bytes) -> list[list[str]]:
    """The cells' text of each row of the page's last table body."""
    page = content.decode()
    body = page[page.rindex("<tbody>") : page.rindex("</tbody>")]
    return [
        [text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


# --- data ---------------------------------------------------------------------------------------


@pytest.fixture
def crane(creditor: Creditor) -> Customer:
    return make_customer(creditor, "C-1003", name="Crane Logistics", email="ap@crane.example")


@pytest.fixture
def book(
    customer: Customer, customer_2: Customer, crane: Customer, other_customer: Customer, users: Users
) -> dict[str, Invoice]:
    """Acme's receivables on TODAY, all in USD:
    Bolt Hardware C-1001 owes 1,425.00, 925.00 past due (current 500, 1–30: 100, 31–60: 150,
    61–90: 275, 90+: 400); Anvil Works C-1002 owes 80.00, not yet due; Crane Logistics C-1003
    paid everything. Globex's customer (another tenant, also numbered C-1001) owes 999.00."""
    invoices = {
        "INV-1001": issue_invoice(customer, "INV-1001", "100.00", due_date=days_ago(10), po_number="PO-4471"),
        "INV-1002": issue_invoice(
            customer,
            "INV-1002",
            due_date=days_ago(45),
            lines=[
                LineInput("Steel brackets", Decimal(4), Decimal("25.00"), Decimal("0.10"), sku="BRK-10"),
                LineInput("Installation", Decimal(1), Decimal("90.00")),
            ],
        ),
        "INV-1003": issue_invoice(customer, "INV-1003", "300.00", due_date=days_ago(75)),
        "INV-1004": issue_invoice(customer, "INV-1004", "400.00", due_date=days_ago(120)),
        "INV-1005": issue_invoice(customer, "INV-1005", "500.00", due_date=days_ago(-15)),
        "A-1": issue_invoice(customer_2, "A-1", "80.00", due_date=days_ago(-5)),
        "Q-1": issue_invoice(crane, "Q-1", "10.00", due_date=days_ago(3)),
    }
    record_payment(customer, "50.00", allocations=[(invoices["INV-1002"], "50.00")], reference="CHK-881")
    issue_credit_note(invoices["INV-1003"], "CN-1003", "25.00", reason="Pricing error")
    record_payment(crane, "10.00", reference="CHK-CRANE")
    issue_invoice(other_customer, "X-1", "999.00", due_date=days_ago(5))
    return invoices


@pytest.fixture
def desk(users: Users) -> Client:
    return signed_in(users.collector)


# --- the customer list --------------------------------------------------------------------------


def test_the_book_totals_are_the_organizations_receivables(
    book: dict[str, Invoice], desk: Client, supplier: Organization, clock: time_machine.Traveller
) -> None:
    response = desk.get("/desk/")

    assert response.status_code == 200
    with scope(organization=supplier):
        expected = book_aging(TODAY)
    assert response.context["book"] == expected
    (usd,) = expected
    assert (usd.currency, usd.balance, usd.past_due, usd.open_count, usd.past_due_count) == (
        "USD",
        Decimal("1505.00"),
        Decimal("925.00"),
        6,
        4,
    )
    text = text_of(response.content)
    assert "Receivables (USD) $1,505.00 6 open invoices" in text
    assert "Past due $925.00 4 invoices" in text
    figures = dict(re.findall(r'data-bucket="(\w+)"[^>]*>([^<]*)<', response.content.decode()))
    assert figures == {
        "current": "$580.00",
        "d1_30": "$100.00",
        "d31_60": "$150.00",
        "d61_90": "$275.00",
        "d90_plus": "$400.00",
    }
    assert "999.00" not in text and "Zeta" not in text and "EUR" not in text  # another tenant's book


def test_each_customer_row_has_its_balance_and_aging(
    book: dict[str, Invoice],
    desk: Client,
    customer: Customer,
    customer_2: Customer,
    crane: Customer,
    clock: time_machine.Traveller,
) -> None:
    rows = table_rows(desk.get("/desk/").content)

    # customer, balance, past due, current, 1–30, 31–60, 61–90, 90+ (blank when nothing)
    assert rows == [
        ["Anvil Works C-1002", "$80.00", "", "$80.00", "", "", "", ""],
        [
            "Bolt Hardware C-1001",
            "$1,425.00",
            "$925.00",
            "$500.00",
            "$100.00",
            "$150.00",
            "$275.00",
            "$400.00",
        ],
        ["Crane Logistics C-1003", "$0.00", "", "", "", "", "", ""],
    ]
    with scope(organization=customer.organization):
        for row, c in zip(rows, (customer_2, customer, crane), strict=True):
            (aging,) = customer_aging(c, TODAY)
            assert row[1] == format_money(aging.balance, "USD")
            assert row[2] == (format_money(aging.past_due, "USD") if aging.past_due else "")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["Anvil Works", "Bolt Hardware", "Crane Logistics"]),
        ("?sort=name", ["Anvil Works", "Bolt Hardware", "Crane Logistics"]),
        ("?sort=-name", ["Crane Logistics", "Bolt Hardware", "Anvil Works"]),
        ("?sort=-balance", ["Bolt Hardware", "Anvil Works", "Crane Logistics"]),
        ("?sort=balance", ["Crane Logistics", "Anvil Works", "Bolt Hardware"]),
        ("?sort=-past_due", ["Bolt Hardware", "Crane Logistics", "Anvil Works"]),  # ties: newest first
        ("?sort=number", ["Bolt Hardware", "Anvil Works", "Crane Logistics"]),
        ("?sort=;drop", ["Anvil Works", "Bolt Hardware", "Crane Logistics"]),
        ("?q=anvil", ["Anvil Works"]),
        ("?q=C-1003", ["Crane Logistics"]),
        ("?q=crane.example", ["Crane Logistics"]),  # by email
        ("?q=C-1001", ["Bolt Hardware"]),  # not Globex's C-1001
        ("?q=Zeta", []),
        ("?q=an&sort=-balance", ["Anvil Works", "Crane Logistics"]),
    ],
)
def test_customer_list_searches_and_sorts(
    book: dict[str, Invoice], desk: Client, clock: time_machine.Traveller, query: str, expected: list[str]
) -> None:
    response = desk.get(f"/desk/{query}")

    assert response.status_code == 200
    assert listed_customers(response.content) == expected
    assert "Zeta AG" not in response.content.decode()
    if not expected:
        assert "No customers match." in text_of(response.content)


@pytest.fixture
def many(creditor: Creditor) -> None:
    """51 customers "Smith & Sons 01…51" and 10 "Smith Tools 01…10"."""
    for n in range(1, 52):
        make_customer(creditor, f"S-{n:03}", name=f"Smith & Sons {n:02}")
    for n in range(1, 11):
        make_customer(creditor, f"T-{n:03}", name=f"Smith Tools {n:02}")


@pytest.mark.parametrize(("page", "count"), [("1", 50), ("2", 11), ("abc", 50), ("99999", 11), ("-1", 11)])
def test_customer_list_pages_by_50(many: None, desk: Client, page: str, count: int) -> None:
    response = desk.get(f"/desk/?q=smith&page={page}")  # (Bolt Hardware, the users' customer, too)

    assert response.status_code == 200
    names = listed_customers(response.content)
    assert len(names) == count
    assert names[0] == ("Smith & Sons 01" if count == 50 else "Smith & Sons 51")
    assert f"Page {1 if count == 50 else 2} of 2 · 61 in all" in text_of(response.content)


def test_the_next_page_link_keeps_the_search(many: None, desk: Client) -> None:
    """Names such as "Smith & Sons" are common; the pager's link must keep the whole search."""
    start = "http://testserver/desk/?q=Smith+%26+Sons"
    first = desk.get(start).content
    assert len(listed_customers(first)) == 50
    match = re.search(r'<a [^>]*href="([^"]*)"[^>]*rel="next"', first.decode())
    assert match
    url, _ = urldefrag(urljoin(start, html.unescape(match.group(1))))

    second = desk.get(url).content

    assert listed_customers(second) == ["Smith & Sons 51"]


# --- the account 360 ----------------------------------------------------------------------------


def test_customer_page_shows_figures_invoices_payments_and_credits(
    book: dict[str, Invoice], desk: Client, customer: Customer, clock: time_machine.Traveller
) -> None:
    response = desk.get(f"/desk/customers/{customer.pk}/")

    assert response.status_code == 200
    text = text_of(response.content)
    with scope(organization=customer.organization):
        (aging,) = customer_aging(customer, TODAY)
    assert (
        f"Past due {format_money(aging.past_due, 'USD')} Balance {format_money(aging.balance, 'USD')}" in text
    )
    assert "Past due $925.00 Balance $1,425.00 Next due 15 Jul 2025" in text
    figures = dict(re.findall(r'data-bucket="(\w+)"[^>]*>([^<]*)<', response.content.decode()))
    assert figures == {key: format_money(aging.buckets[key], "USD") for key, _ in BUCKETS}
    assert listed_invoices(response.content, customer) == [
        "INV-1004",
        "INV-1003",
        "INV-1002",
        "INV-1001",
        "INV-1005",
    ]
    assert "30 Jun 2025 · Cheque · CHK-881 · Succeeded $50.00" in text
    assert "30 Jun 2025 · CN-1003 on INV-1003 · Pricing error $25.00" in text
    assert "CHK-CRANE" not in text and "A-1" not in text  # other customers'


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?status=past_due", ["INV-1004", "INV-1003", "INV-1002", "INV-1001"]),
        ("?status=paid", []),
        ("?status=all&q=PO-4471", ["INV-1001"]),
        ("?status=all&q=inv-1002", ["INV-1002"]),
        ("?status=zzz", ["INV-1004", "INV-1003", "INV-1002", "INV-1001", "INV-1005"]),
    ],
)
def test_customer_page_filters_invoices(
    book: dict[str, Invoice],
    desk: Client,
    customer: Customer,
    clock: time_machine.Traveller,
    query: str,
    expected: list[str],
) -> None:
    response = desk.get(f"/desk/customers/{customer.pk}/{query}")

    assert response.status_code == 200
    assert listed_invoices(response.content, customer) == expected


def test_desk_invoice_page_shows_lines_payments_and_staff_documents(
    book: dict[str, Invoice], desk: Client, customer: Customer, clock: time_machine.Traveller
) -> None:
    invoice = book["INV-1002"]
    make_document(customer, title="Signed POD", filename="pod.pdf", content=b"%PDF-1.4 pod", invoice=invoice)
    make_document(
        customer,
        title="Collector memo",
        filename="memo.pdf",
        content=b"%PDF-1.4 memo",
        invoice=invoice,
        visible_to_customer=False,
    )

    response = desk.get(f"/desk/customers/{customer.pk}/invoices/{invoice.pk}/")

    assert response.status_code == 200
    text = text_of(response.content)
    assert "Steel brackets BRK-10 4 $25.00 $10.00 $110.00" in text
    assert "Payment by Cheque · ref. CHK-881 −$50.00" in text
    assert "Open $150.00" in text
    assert "Signed POD" in text and "Collector memo" in text  # staff see staff-only documents


def test_desk_downloads_a_staff_only_document_as_an_attachment(customer: Customer, desk: Client) -> None:
    memo = make_document(
        customer, title="Memo", filename="memo.pdf", content=b"%PDF-1.4 m", visible_to_customer=False
    )

    response = desk.get(f"/desk/documents/{memo.pk}/download")

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="memo.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == b"%PDF-1.4 m"


def test_desk_statement_pdf_is_the_customers(
    book: dict[str, Invoice], desk: Client, customer: Customer, clock: time_machine.Traveller
) -> None:
    response = desk.get(f"/desk/customers/{customer.pk}/statement.pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="statement-C-1001-2025-06-30.pdf"'
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    for number in ("INV-1001", "INV-1002", "INV-1003", "INV-1004", "INV-1005", "$925.00"):
        assert number in text
    assert "A-1" not in text and "X-1" not in text


# --- bad input ----------------------------------------------------------------------------------

BAD_QUERIES = [
    "status=zzz",
    "sort=;drop",
    "sort=-balance;DROP TABLE customers_customer;--",
    "page=abc",
    "page=99999",
    "page=-1",
    "page=0",
    "page=" + "9" * 5000,
    "q=" + "x" * 10_000,
    "q=%ff",
    "q=%ff%fe%c3%28",
    "status=%ff&sort=%fe&kind=%ff&page=%ff",
    "kind=nope",
    "q=%25_%5C",
    "q=%00",
    "sort=name&sort=-balance&page=1&page=2",
    "%ff=%ff",
    "==&&&",
]


@pytest.mark.parametrize("page", ["customers", "customer"])
def test_bad_query_parameters_never_give_500(
    book: dict[str, Invoice], users: Users, customer: Customer, page: str
) -> None:
    path = "/desk/" if page == "customers" else f"/desk/customers/{customer.pk}/"
    client = Client(raise_request_exception=False)
    client.force_login(users.admin)
    problems = []
    for query in BAD_QUERIES:
        response = client.get(f"{path}?{query}")
        if response.status_code not in (200, 400):
            error = response.exc_info[1] if response.exc_info else None  # type: ignore[attr-defined]
            problems.append(f"?{query[:40]}: {response.status_code} {error!r}")
    assert problems == []
