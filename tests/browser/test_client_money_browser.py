"""A creditor client's money in a real browser: the client reports a payment the debtor made to
it directly (after one refused amount), places new accounts from a CSV file and reads the
line-by-line report, opens the recovery reports; then the collector finds the payment in the
desk's queue with the commission, confirms it with chosen amounts, and the client sees it
confirmed. Every page passes axe and nothing scrolls sideways at 375 px."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from django_scopes import scopes_disabled
from playwright.sync_api import FilePayload, Page

from client.money_book import build_money_book
from factories import Users
from openar.client.models import DirectPaymentReport
from openar.payments.models import Payment
from openar.tenants.models import Creditor, Organization

from .conftest import ARTIFACTS
from .test_mfa_browser import submit
from .test_people_browser import sign_in
from .test_portal_browser import WIDER_THAN_VIEWPORT, run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]
CSV = (
    "account_number,name,email,invoice_number,amount,invoice_date,due_date\n"
    "NEW-1,Avery Stone,avery@stone.example,NEW-INV-1,250.00,2025-03-01,2025-03-31\n"
    "NEW-2,Blair Moss,,NEW-INV-2,12.345,2025-03-01,2025-03-31\n"
)


@pytest.mark.parametrize("width", [375, 1280])
def test_a_creditor_reports_a_payment_and_the_collector_confirms_it(
    new_page: NewPage,
    users: Users,
    agency: Organization,
    agency_clients: tuple[Creditor, Creditor],
    width: int,
) -> None:
    book = build_money_book(users, agency, agency_clients)
    axe = Axe()
    findings: list[str] = []
    too_wide: dict[str, str] = {}
    ARTIFACTS.mkdir(exist_ok=True)

    def look(page: Page, where: str) -> None:
        findings.extend(run_axe(axe, page, where, width))
        page.screenshot(path=str(ARTIFACTS / f"client-money-{where}-{width}.png"), full_page=True)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if width == 375 and scroll > width:
            too_wide[where] = f"{scroll}px: {page.evaluate(WIDER_THAN_VIEWPORT)}"

    client = new_page(width, 900)
    sign_in(client, book.client.email)
    client.goto(f"/client/accounts/{book.pat.pk}/payments/report/")
    assert "The account owes $150.00" in client.locator("main").inner_text()
    look(client, "report-form")
    client.get_by_label("Amount received (USD)").fill("500.00")
    client.get_by_label("How it was paid").select_option("cheque")
    client.get_by_label("Reference").fill("CHQ 5521")
    client.get_by_label("Note for the collector").fill("Paid at our front desk")
    submit(client, "main form button[type=submit]")
    error = client.locator("#id_amount_error").inner_text()
    assert error == "That is more than the $150.00 the account owes (less payments already reported)."
    assert client.get_by_label("Amount received (USD)").get_attribute("aria-invalid") == "true"
    assert client.input_value("#id_reference") == "CHQ 5521"  # nothing lost
    look(client, "report-refused")
    client.get_by_label("Amount received (USD)").fill("120.00")
    submit(client, "main form button[type=submit]")
    assert "Payment of $120.00 reported" in client.locator(".flash").inner_text()
    reported = client.locator("#reported").inner_text()
    assert "Waiting for confirmation" in reported and "you keep $90.00" in reported
    look(client, "reported")

    # New accounts from a file: one placed, one refused with its reason.
    client.goto("/client/placements/")
    client.get_by_label("CSV file of accounts").set_input_files(
        files=FilePayload(name="june.csv", mimeType="text/csv", buffer=CSV.encode())
    )
    look(client, "placements")
    submit(client, "main form button[type=submit]")
    assert "1 of 2 lines placed; 1 refused" in client.locator(".flash").inner_text()
    table = client.locator("table.placement-report").inner_text()
    assert "NEW-INV-1" in table and "bad amount “12.345”: Enter at most 2 decimals for USD" in table
    look(client, "placement-report")

    submit(client, "nav[aria-label='Creditor portal'] >> text=Reports")
    assert client.locator("svg.recovery-chart").count() == 1
    assert "Pat Jones" in client.locator("main").inner_text()
    look(client, "reports")

    # The collector confirms it in the desk, with amounts chosen per invoice.
    desk = new_page(width, 900)
    sign_in(desk, book.collector.email)
    desk.goto("/desk/client-payments/")
    queue = desk.locator("main").inner_text()
    assert "1 waiting." in queue and "Commission 25%: $30.00 owed by the client" in queue
    look(desk, "desk-queue")
    submit(desk, "main .payment-row a")
    desk.get_by_label("The amounts I enter for each invoice").check()
    desk.get_by_label("Amount for CW-INV-1").fill("100.00")
    desk.get_by_label("Amount for CW-INV-2").fill("20.00")
    look(desk, "desk-confirm")
    submit(desk, "main form button:has-text('Confirm the payment')")
    assert (
        "Confirmed: $120.00 recorded as a payment made directly to City Water Utility"
        in desk.locator(".flash").inner_text()
    )
    assert "CW-INV-1: $100.00" in desk.locator("main").inner_text()
    look(desk, "desk-confirmed")

    client.goto(f"/client/accounts/{book.pat.pk}/payments/report/")
    assert "Confirmed" in client.locator("#reported").inner_text()
    assert "The account owes $30.00" in client.locator("main").inner_text()
    with scopes_disabled():
        assert DirectPaymentReport.objects.get().state == "confirmed"
        assert Payment.objects.filter(method="direct").count() == 1

    assert not findings, "\n".join(findings)
    assert not too_wide, too_wide
