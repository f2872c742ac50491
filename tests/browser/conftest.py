"""Browser tests: Debian's Chromium driven by Playwright's sync API against pytest-django's
live server (a thread of this process, on 127.0.0.1).

Playwright's sync API runs an event loop in the main thread, which trips Django's
async-unsafe guard on every ORM call the test itself makes; the live server thread is not
affected. Hence DJANGO_ALLOW_ASYNC_UNSAFE for this test run.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from django_scopes import scope
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from factories import Users, issue_credit_note, issue_invoice, make_document, record_payment
from openar.billing.models import Invoice
from openar.billing.services import LineInput
from openar.customers.models import Activity, Customer
from openar.customers.services import activity_record

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_configure(config: pytest.Config) -> None:
    registered = [line.split(":", 1)[0].strip() for line in config.getini("markers")]
    if "browser" not in registered:
        config.addinivalue_line("markers", "browser: drives Chromium through Playwright")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install chromium (Playwright's own browsers are never used)"
        )
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_page(chromium: Browser, live_server: object) -> Iterator[Callable[..., Page]]:
    """A factory of pages, each in a fresh browser context (no cookies) of the given width."""
    contexts = []

    def make(width: int = 1280, height: int = 900) -> Page:
        context = chromium.new_context(
            viewport={"width": width, "height": height},
            accept_downloads=True,
            base_url=str(live_server),
            locale="en-CA",
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


# --- data ---------------------------------------------------------------------------------------


@dataclass
class Account:
    customer: Customer
    today: datetime.date
    invoices: dict[str, Invoice]
    paid: Invoice


@pytest.fixture
def account(users: Users, customer: Customer, customer_2: Customer) -> Account:
    """The signed-in customer's account, dated from the real clock (the live server's pages
    compute "today" from it): late, partly paid, credited, upcoming and paid invoices, a
    document, and a timeline with a staff-only note."""
    today = customer.organization.today()

    def invoice(number: str, amount: str, due_in: int, **kwargs: Any) -> Invoice:
        due = today + datetime.timedelta(days=due_in)
        issued = due - datetime.timedelta(days=30)
        return issue_invoice(customer, number, amount, due_date=due, issue_date=issued, **kwargs)

    invoices = {
        "INV-7001": invoice("INV-7001", "120.00", -12, po_number="PO-9001"),
        "INV-7002": invoice(
            "INV-7002",
            "0",  # the lines make the total: 2 × 125.00 + 13% tax, + 17.50 = 300.00
            -40,
            lines=[
                LineInput("Pallet racking", Decimal(2), Decimal("125.00"), Decimal("0.13"), sku="RK-2"),
                LineInput("Assembly", Decimal(1), Decimal("17.50")),
            ],
        ),
        "INV-7004": invoice("INV-7004", "45.00", -70),
        "INV-7003": invoice("INV-7003", "80.00", 20),
    }
    paid = invoice("INV-7005", "50.00", -5)
    now = timezone.now()
    record_payment(
        customer,
        "100.00",
        allocations=[(invoices["INV-7002"], "100.00")],
        reference="CHK-55",
        received_at=now,
    )
    record_payment(customer, "50.00", allocations=[(paid, "50.00")], reference="EFT-9", received_at=now)
    issue_credit_note(invoices["INV-7004"], "CN-7004", "5.00", reason="Short shipment")
    make_document(
        customer,
        title="Bill of lading INV-7001",
        filename="bol-7001.pdf",
        content=b"%PDF-1.4\n% a tiny file\n",
        invoice=invoices["INV-7001"],
    )
    with scope(organization=customer.organization):
        activity_record(
            customer=customer,
            kind=Activity.Kind.NOTE,
            summary="Staff only: customer disputes freight",
            visibility=Activity.Visibility.INTERNAL,
        )
        activity_record(customer=customer, kind=Activity.Kind.PORTAL, summary="Statement viewed")
    issue_invoice(customer_2, "INV-8001", "999.00", due_date=today, issue_date=today)
    return Account(customer=customer, today=today, invoices=invoices, paid=paid)
