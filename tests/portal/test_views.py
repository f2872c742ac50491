"""The customer portal, page by page, through the real URLs, with the clock pinned where the
figures depend on the date (the portal counts days in the organization's time zone)."""

from __future__ import annotations

import datetime
import html
import io
import re
import zoneinfo
from dataclasses import dataclass
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
    make_document,
    record_payment,
    signed_in,
    text_of,
)
from openar.billing.models import Document, Invoice
from openar.billing.selectors import BUCKETS, customer_aging
from openar.billing.services import LineInput
from openar.core.money import format_money
from openar.customers.models import Activity, Customer
from openar.customers.services import activity_record
from openar.payments.models import Payment

TORONTO = zoneinfo.ZoneInfo("America/Toronto")


# --- helpers ------------------------------------------------------------------------------------


def by_testid(content: bytes, testid: str) -> str:
    match = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>([^<]*)<', content.decode())
    assert match, f"no element with data-testid={testid!r}"
    return html.unescape(match.group(1)).strip()


def summary_section(content: bytes, currency: str) -> str:
    """The overview's summary section of one currency."""
    page = content.decode()
    start = page.index(f'aria-labelledby="summary-{currency}"')
    end = page.find("</section>", start)
    return page[start:end]


def bucket_figures(section: str) -> dict[str, str]:
    return {
        key: html.unescape(value).strip()
        for key, value in re.findall(r'data-bucket="(\w+)"[^>]*>([^<]*)<', section)
    }


def listed_invoices(content: bytes) -> list[str]:
    """Invoice numbers of the rows linked to an invoice page, in page order."""
    return re.findall(r'href="/portal/invoices/\d+/">([^<]+)</a>', content.decode())


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


# --- data ---------------------------------------------------------------------------------------


@dataclass
class Book:
    invoices: dict[str, Invoice]
    cheque: Payment
    wire: Payment


@pytest.fixture
def book(customer: Customer, customer_2: Customer, users: Users) -> Book:
    """Customer C-1001 on TODAY, in USD: open 1,425.00 of which 925.00 past due
    (current 500, 1–30: 100, 31–60: 150, 61–90: 275, 90+: 400), one paid invoice; in EUR:
    70.00, 5 days late. Customer C-1002 owes 999.00 under the same PO number, never shown."""
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
        "INV-1005": issue_invoice(
            customer, "INV-1005", "500.00", due_date=days_ago(-15), po_number="PO-5000"
        ),
        "INV-1006": issue_invoice(customer, "INV-1006", "60.00", due_date=days_ago(20)),
        "EUR-2001": issue_invoice(customer, "EUR-2001", "70.00", currency="EUR", due_date=days_ago(5)),
    }
    cheque = record_payment(
        customer, "50.00", allocations=[(invoices["INV-1002"], "50.00")], reference="CHK-881"
    )
    issue_credit_note(invoices["INV-1003"], "CN-1003", "25.00", reason="Pricing error")
    wire = record_payment(
        customer,
        "60.00",
        allocations=[(invoices["INV-1006"], "60.00")],
        method=Payment.Method.WIRE,
        reference="WIRE-77",
    )
    issue_invoice(customer_2, "INV-2001", "999.00", due_date=days_ago(10), po_number="PO-4471")
    return Book(invoices=invoices, cheque=cheque, wire=wire)


@pytest.fixture
def portal(users: Users) -> Client:
    return signed_in(users.customer)


USD_BUCKETS = {
    "current": "$500.00",
    "d1_30": "$100.00",
    "d31_60": "$150.00",
    "d61_90": "$275.00",
    "d90_plus": "$400.00",
}
EUR_BUCKETS = {
    "current": "€0.00",
    "d1_30": "€70.00",
    "d31_60": "€0.00",
    "d61_90": "€0.00",
    "d90_plus": "€0.00",
}
OPEN_BY_DUE_DATE = ["INV-1004", "INV-1003", "INV-1002", "INV-1001", "EUR-2001", "INV-1005"]


# --- overview -----------------------------------------------------------------------------------


def test_overview_figures_are_the_selectors_and_the_expected_amounts(
    book: Book, customer: Customer, portal: Client, clock: time_machine.Traveller
) -> None:
    response = portal.get("/portal/")

    assert response.status_code == 200
    content = response.content
    with scope(organization=customer.organization):
        aging = customer_aging(customer, TODAY)
    assert [a.currency for a in aging] == ["USD", "EUR"]
    for a in aging:
        section = summary_section(content, a.currency)
        assert by_testid(content, f"past-due-{a.currency}") == format_money(a.past_due, a.currency)
        assert by_testid(content, f"balance-{a.currency}") == format_money(a.balance, a.currency)
        assert bucket_figures(section) == {
            key: format_money(a.buckets[key], a.currency) for key, _ in BUCKETS
        }
    # the exact figures of the known book, independently of the selector
    assert by_testid(content, "past-due-USD") == "$925.00"
    assert by_testid(content, "balance-USD") == "$1,425.00"
    assert bucket_figures(summary_section(content, "USD")) == USD_BUCKETS
    assert by_testid(content, "past-due-EUR") == "€70.00"
    assert by_testid(content, "balance-EUR") == "€70.00"
    assert bucket_figures(summary_section(content, "EUR")) == EUR_BUCKETS
    usd = text_of(summary_section(content, "USD"))
    assert "4 invoices past due, the oldest since 2 Mar 2025" in usd
    assert "5 open invoices" in usd
    assert "15 Jul 2025" in usd  # next due
    assert "INV-2001" not in content.decode()  # the other customer's invoice


def test_overview_lists_past_due_oldest_first_and_what_comes_next(
    book: Book, portal: Client, clock: time_machine.Traveller
) -> None:
    page = portal.get("/portal/").content.decode()
    late = page[page.index('id="late-h"') : page.index('id="next-h"')]
    coming = page[page.index('id="next-h"') : page.index('id="recent-h"')]

    assert listed_invoices(late.encode()) == ["INV-1004", "INV-1003", "INV-1002", "INV-1001", "EUR-2001"]
    assert "120 days late" in late and "5 days late" in late
    assert listed_invoices(coming.encode()) == ["INV-1005"]
    assert "INV-1006" not in late + coming  # paid


def test_overview_counts_days_in_the_organizations_time_zone(
    customer: Customer, users: Users, clock: time_machine.Traveller
) -> None:
    """An invoice due on 30 June is not late at 23:30 in Toronto (03:30 UTC on 1 July), and is
    one day late half an hour after midnight in Toronto."""
    issue_invoice(customer, "DUE-TODAY", "10.00", due_date=TODAY)
    late_evening = datetime.datetime.combine(TODAY, datetime.time(23, 30), tzinfo=TORONTO)
    after_midnight = late_evening + datetime.timedelta(hours=1)
    assert late_evening.astimezone(datetime.UTC).date() == after_midnight.date()  # 1 July in UTC

    pages = []
    for moment in (late_evening, after_midnight):
        clock.move_to(moment)
        pages.append(signed_in(users.customer).get("/portal/").content)  # sessions last 12 hours
    before, after = pages

    assert (by_testid(before, "past-due-USD"), by_testid(after, "past-due-USD")) == ("$0.00", "$10.00")
    assert bucket_figures(summary_section(before, "USD"))["current"] == "$10.00"
    assert bucket_figures(summary_section(after, "USD"))["d1_30"] == "$10.00"


def test_overview_of_a_customer_with_nothing_open(customer: Customer, portal: Client) -> None:
    response = portal.get("/portal/")

    assert response.status_code == 200
    assert by_testid(response.content, "past-due-USD") == "$0.00"
    assert by_testid(response.content, "balance-USD") == "$0.00"
    assert "Nothing is past due. Thank you!" in text_of(response.content)
    assert "past-due-EUR" not in response.content.decode()


# --- invoices -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", OPEN_BY_DUE_DATE),
        ("?status=open", OPEN_BY_DUE_DATE),
        ("?status=past_due", OPEN_BY_DUE_DATE[:-1]),
        ("?status=paid", ["INV-1006"]),
        ("?status=all", ["INV-1005", "EUR-2001", "INV-1001", "INV-1006", "INV-1002", "INV-1003", "INV-1004"]),
        (
            "?status=all&sort=-open",
            ["INV-1005", "INV-1004", "INV-1003", "INV-1002", "INV-1001", "EUR-2001", "INV-1006"],
        ),
        ("?status=all&sort=number", ["EUR-2001", *(f"INV-100{n}" for n in range(1, 7))]),
        ("?status=all&q=PO-4471", ["INV-1001"]),  # the other customer's INV-2001 has the same PO
        ("?status=all&q=po-50", ["INV-1005"]),  # case-insensitive
        ("?status=all&q=1003", ["INV-1003"]),
        ("?status=all&q=+INV-1002+", ["INV-1002"]),
        ("?status=paid&q=INV-1001", []),
        ("?status=all&q=INV-2001", []),  # another customer's invoice number finds nothing
        ("?status=zzz", OPEN_BY_DUE_DATE),  # unknown status: the default
        ("?sort=;drop", OPEN_BY_DUE_DATE),
    ],
)
def test_invoice_list_filters_searches_and_sorts(
    book: Book, portal: Client, clock: time_machine.Traveller, query: str, expected: list[str]
) -> None:
    response = portal.get(f"/portal/invoices/{query}")

    assert response.status_code == 200
    assert listed_invoices(response.content) == expected
    assert "$999.00" not in response.content.decode()  # the other customer's INV-2001
    if not expected:
        assert "No invoices match." in text_of(response.content)


def test_invoice_list_rows_show_amounts_and_status(
    book: Book, portal: Client, clock: time_machine.Traveller
) -> None:
    text = text_of(portal.get("/portal/invoices/?status=all&q=INV-100").content)

    assert "INV-1002 Due 16 May 2025" in text
    assert "$200.00 $150.00 45 days late" in text
    assert "$500.00 $500.00 Open" in text
    assert "$60.00 $0.00 Paid" in text


@pytest.fixture
def thirty(customer: Customer) -> list[Invoice]:
    """Thirty open invoices P-01…P-30 (P-01 due first), PO numbers PO#77-01…, and one more
    invoice Q-1 whose PO is just "PO"."""
    made = [
        issue_invoice(customer, f"P-{n:02}", "10.00", due_date=days_ago(40 - n), po_number=f"PO#77-{n:02}")
        for n in range(1, 31)
    ]
    issue_invoice(customer, "Q-1", "10.00", due_date=days_ago(90), po_number="PO")
    return made


PAGE_ONE = [f"P-{n:02}" for n in range(1, 26)]
PAGE_TWO = [f"P-{n:02}" for n in range(26, 31)]


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("1", PAGE_ONE),
        ("2", PAGE_TWO),
        ("abc", PAGE_ONE),
        ("99999", PAGE_TWO),
        ("-1", PAGE_TWO),
        ("0", PAGE_TWO),
    ],
)
def test_invoice_list_pages_by_25(
    thirty: list[Invoice], portal: Client, clock: time_machine.Traveller, page: str, expected: list[str]
) -> None:
    response = portal.get(f"/portal/invoices/?q=PO%2377&page={page}")

    assert response.status_code == 200
    assert listed_invoices(response.content) == expected
    assert f"Page {1 if expected == PAGE_ONE else 2} of 2 · 30 in all" in text_of(response.content)


def follow(client: Client, current: str, content: bytes, rel: str) -> bytes:
    """Follow the page's rel=next/prev link the way a browser does (HTML-unescape, resolve,
    drop the fragment)."""
    match = re.search(rf'<a [^>]*href="([^"]*)"[^>]*rel="{rel}"', content.decode())
    assert match, f"no rel={rel} link"
    url, _fragment = urldefrag(urljoin(current, html.unescape(match.group(1))))
    response = client.get(url)
    assert response.status_code == 200
    return response.content


def test_the_next_page_link_keeps_the_search(
    thirty: list[Invoice], portal: Client, clock: time_machine.Traveller
) -> None:
    """PO numbers such as "PO#77" are common; the pager's link must keep the whole search."""
    start = "http://testserver/portal/invoices/?q=PO%2377"
    first = portal.get(start).content
    assert listed_invoices(first) == PAGE_ONE

    second = follow(portal, start, first, "next")

    assert listed_invoices(second) == PAGE_TWO


# --- invoice detail -----------------------------------------------------------------------------


def test_invoice_detail_shows_lines_and_the_payments_applied(
    book: Book, portal: Client, clock: time_machine.Traveller
) -> None:
    invoice = book.invoices["INV-1002"]
    response = portal.get(f"/portal/invoices/{invoice.pk}/")

    assert response.status_code == 200
    text = text_of(response.content)
    assert "Invoice INV-1002 45 days late" in text
    assert "Steel brackets BRK-10 4 $25.00 $10.00 $110.00" in text
    assert "Installation 1 $90.00 $0.00 $90.00" in text
    assert "Subtotal $190.00 Tax $10.00 Total $200.00 Open $150.00" in text
    assert "30 Jun 2025 · Payment by Cheque · ref. CHK-881 −$50.00" in text
    assert "WIRE-77" not in text  # a payment applied to another invoice
    assert "Credit note" not in text
    assert by_testid(response.content, "invoice-open") == "$150.00"


def test_invoice_detail_shows_the_credit_note_applied(
    book: Book, portal: Client, clock: time_machine.Traveller
) -> None:
    text = text_of(portal.get(f"/portal/invoices/{book.invoices['INV-1003'].pk}/").content)

    assert "30 Jun 2025 · Credit note CN-1003 · Pricing error −$25.00" in text
    assert "Payment by" not in text
    assert "Open $275.00" in text


def test_invoice_detail_of_a_paid_invoice(book: Book, portal: Client, clock: time_machine.Traveller) -> None:
    text = text_of(portal.get(f"/portal/invoices/{book.invoices['INV-1006'].pk}/").content)

    assert "Invoice INV-1006 Paid" in text
    assert "Payment by Wire transfer · ref. WIRE-77 −$60.00" in text
    assert "CHK-881" not in text


def test_invoice_detail_lists_only_documents_the_customer_may_see(
    book: Book, customer: Customer, portal: Client
) -> None:
    invoice = book.invoices["INV-1001"]
    make_document(
        customer,
        title="Invoice INV-1001 (PDF)",
        filename="inv-1001.pdf",
        content=b"%PDF-1.4",
        invoice=invoice,
    )
    make_document(
        customer,
        title="Credit check notes",
        filename="notes.pdf",
        content=b"%PDF-1.4",
        invoice=invoice,
        visible_to_customer=False,
    )

    text = text_of(portal.get(f"/portal/invoices/{invoice.pk}/").content)

    assert "Invoice INV-1001 (PDF)" in text
    assert "Credit check notes" not in text


# --- statement ----------------------------------------------------------------------------------


def test_statement_page_lists_every_open_invoice(
    book: Book, portal: Client, clock: time_machine.Traveller
) -> None:
    response = portal.get("/portal/statement/")

    assert response.status_code == 200
    text = text_of(response.content)
    assert "As of 30 June 2025 · Bolt Hardware, account C-1001" in text
    assert "USD: $1,425.00 due, $925.00 past due" in text
    assert "EUR: €70.00 due, €70.00 past due" in text
    rows = re.findall(r"<tr><td>([A-Z]+-\d+)</td>", response.content.decode())
    assert rows == OPEN_BY_DUE_DATE
    assert "INV-1004 2025-01-31 2025-03-02 120 $400.00 $400.00" in text
    assert "INV-1006" not in text and "INV-2001" not in text


def test_statement_pdf_is_a_download_with_the_open_invoices(
    book: Book, portal: Client, clock: time_machine.Traveller
) -> None:
    response = portal.get("/portal/statement.pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="statement-C-1001-2025-06-30.pdf"'
    assert response["Cache-Control"] == "private, no-store"
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    assert "C-1001" in text
    assert "Bolt Hardware" in text
    for number in OPEN_BY_DUE_DATE:
        assert number in text
    assert "$925.00" in text and "$1,425.00" in text
    assert "€70.00" in text
    assert "INV-1006" not in text and "INV-2001" not in text and "Anvil" not in text


def test_statement_pdf_with_nothing_open(
    customer: Customer, portal: Client, clock: time_machine.Traveller
) -> None:
    response = portal.get("/portal/statement.pdf")

    text = pdf_text(response.content)
    assert "Nothing is open. Thank you!" in text
    assert "$0.00" in text


# --- documents ----------------------------------------------------------------------------------


@pytest.fixture
def documents(customer: Customer, customer_2: Customer) -> dict[str, Document]:
    return {
        "pdf": make_document(
            customer,
            title="Bill of lading 77",
            filename="bol-77.pdf",
            content=b"%PDF-1.4 lading",
            kind=Document.Kind.BILL_OF_LADING,
        ),
        "html": make_document(
            customer,
            title="Uploaded page",
            filename="page.html",
            content=b"<script>alert(document.cookie)</script>",
            content_type="text/html",
            kind=Document.Kind.ATTACHMENT,
        ),
        "contract": make_document(
            customer,
            title="Master agreement",
            filename="msa.pdf",
            content=b"%PDF-1.4 msa",
            kind=Document.Kind.CONTRACT,
        ),
        "hidden": make_document(
            customer,
            title="Collections memo",
            filename="memo.pdf",
            content=b"%PDF-1.4 memo",
            kind=Document.Kind.ATTACHMENT,
            visible_to_customer=False,
        ),
        "other": make_document(
            customer_2, title="Anvil contract", filename="anvil.pdf", content=b"%PDF-1.4 a"
        ),
    }


def test_document_download_is_an_attachment_never_sniffed(
    documents: dict[str, Document], portal: Client
) -> None:
    response = portal.get(f"/portal/documents/{documents['pdf'].pk}/download")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="bol-77.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content) == b"%PDF-1.4 lading"


def test_an_html_document_is_still_a_sandboxed_download(
    documents: dict[str, Document], portal: Client
) -> None:
    response = portal.get(f"/portal/documents/{documents['html'].pk}/download")

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


@pytest.mark.parametrize("which", ["hidden", "other"])
def test_a_staff_only_or_foreign_document_is_404(
    documents: dict[str, Document], portal: Client, which: str
) -> None:
    response = portal.get(f"/portal/documents/{documents[which].pk}/download")

    assert response.status_code == 404
    assert documents[which].title not in response.content.decode()
    assert "Content-Disposition" not in response


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["Master agreement", "Uploaded page", "Bill of lading 77"]),
        ("?kind=contract", ["Master agreement"]),
        ("?kind=bill_of_lading", ["Bill of lading 77"]),
        ("?kind=statement", []),
        ("?kind=nope", ["Master agreement", "Uploaded page", "Bill of lading 77"]),
    ],
)
def test_documents_list_shows_the_customers_visible_documents(
    documents: dict[str, Document], portal: Client, query: str, expected: list[str]
) -> None:
    response = portal.get(f"/portal/documents/{query}")

    assert response.status_code == 200
    titles = re.findall(r'/download" download>([^<]+)</a>', response.content.decode())
    assert titles == expected
    assert "Collections memo" not in response.content.decode()
    assert "Anvil contract" not in response.content.decode()


# --- activity -----------------------------------------------------------------------------------


@pytest.fixture
def notes(customer: Customer, users: Users) -> dict[str, Activity]:
    with scope(organization=customer.organization):
        return {
            visibility: activity_record(
                customer=customer,
                kind=Activity.Kind.NOTE,
                summary=f"Note for {visibility}",
                body=f"Body for {visibility}",
                visibility=visibility,
                actor=users.collector,
            )
            for visibility in Activity.Visibility.values
        }


def test_activity_hides_internal_and_creditor_notes_from_the_customer(
    notes: dict[str, Activity], portal: Client
) -> None:
    for path in ("/portal/activity/", "/portal/"):
        page = portal.get(path).content.decode()
        assert "Note for customer" in page, path
        assert "Note for internal" not in page and "Body for internal" not in page, path
        assert "Note for creditor" not in page and "Body for creditor" not in page, path
        assert "Staff only" not in page, path


def test_the_desk_customer_page_shows_every_note(
    notes: dict[str, Activity], customer: Customer, users: Users
) -> None:
    text = text_of(signed_in(users.collector).get(f"/desk/customers/{customer.pk}/").content)

    assert "Note · Staff only Note for internal Body for internal" in text
    assert "Note · Staff and creditor Note for creditor Body for creditor" in text
    assert "Note for customer Body for customer" in text


def test_activity_pages_by_30(customer: Customer, portal: Client) -> None:
    with scope(organization=customer.organization):
        for n in range(35):
            activity_record(
                customer=customer,
                kind=Activity.Kind.PORTAL,
                summary=f"Event {n:02}",
                occurred_at=datetime.datetime(2025, 6, 1, tzinfo=datetime.UTC) + datetime.timedelta(hours=n),
            )

    first = text_of(portal.get("/portal/activity/").content)
    second = text_of(portal.get("/portal/activity/?page=2").content)

    assert "Event 34" in first and "Event 05" in first and "Event 04" not in first
    assert "Event 04" in second and "Event 00" in second and "Event 05" not in second
    assert "Page 2 of 2 · 35 in all" in second


# --- bad input ----------------------------------------------------------------------------------

BAD_QUERIES = [
    "status=zzz",
    "sort=;drop",
    "sort=-balance;DROP TABLE billing_invoice;--",
    "page=abc",
    "page=99999",
    "page=-1",
    "page=0",
    "page=1.5",
    "page=" + "9" * 5000,
    "q=" + "x" * 10_000,
    "q=%ff",
    "q=%ff%fe%c3%28",
    "status=%ff&sort=%fe&kind=%ff&page=%ff",
    "kind=nope",
    "q=%25_%5C",  # LIKE wildcards and a backslash
    "q=%00",  # a NUL character
    "status=open&status=paid&page=1&page=2",
    "%ff=%ff",
    "==&&&",
]
PORTAL_PAGES = [
    "/portal/",
    "/portal/invoices/",
    "/portal/statement/",
    "/portal/documents/",
    "/portal/activity/",
]


@pytest.mark.parametrize("path", PORTAL_PAGES)
def test_bad_query_parameters_never_give_500(
    book: Book, documents: dict[str, Document], users: Users, path: str
) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(users.customer)
    problems = []
    for query in BAD_QUERIES:
        response = client.get(f"{path}?{query}")
        if response.status_code not in (200, 400):
            error = response.exc_info[1] if response.exc_info else None  # type: ignore[attr-defined]
            problems.append(f"?{query[:40]}: {response.status_code} {error!r}")
    assert problems == []


# --- the site around the portal -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_checks_answer_anonymously(db: None, client: Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    if path == "/healthz":
        assert (response["Content-Type"], response.content) == ("text/plain", b"ok\n")
    else:
        assert response.json() == {"status": "ok", "database": "ok"}
    assert "sessionid" not in response.cookies


def test_home_sends_each_person_to_their_door(users: Users, client: Client) -> None:
    assert (client.get("/").status_code, client.get("/")["Location"]) == (302, "/accounts/login/")
    for user, door in [
        (users.customer, "/portal/"),
        (users.admin, "/desk/"),
        (users.manager, "/desk/"),
        (users.collector, "/desk/"),
        (users.creditor, "/client/"),
    ]:
        response = signed_in(user).get("/")
        assert (response.status_code, response["Location"]) == (302, door), user
