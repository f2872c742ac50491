"""Paying from the portal in a real browser, at phone and desktop widths: a customer signs
in with a sign-in link, pays two invoices with the sandbox's test card, sees them paid and
finds the receipt in the desk's outbox (seen by a collector); then pays a third by bank
account, which shows "Payment processing" on the invoice until the sandbox's settlement
three days later. The pay, review, sandbox and payment pages pass axe and fit 375 px."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from django_scopes import scope
from playwright.sync_api import Page
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from factories import Users, fresh, issue_invoice, make_contact
from openar.customers.models import Customer
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink
from openar.payments.sandbox import deliver_due
from openar.tenants.models import Organization

from .conftest import ARTIFACTS
from .test_mfa_browser import fits, submit
from .test_outbox_browser import sign_in
from .test_portal_browser import run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]


def click_and_wait(page: Page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


@pytest.mark.parametrize("width", [375, 1280])
def test_a_customer_pays_by_card_and_by_bank_from_a_sign_in_link(
    new_page: NewPage,
    users: Users,
    supplier: Organization,
    customer: Customer,
    settings: Settings,
    live_server: LiveServer,
    width: int,
) -> None:
    settings.OPENAR_CHANNELS = {**settings.OPENAR_CHANNELS, "email": "local"}
    settings.SITE_URL = str(live_server)
    today = supplier.today()
    contact = make_contact(customer, "Dana Payables", "dana@bolt.example")
    first = issue_invoice(customer, "INV-P1", "120.00", due_date=today - datetime.timedelta(days=12))
    second = issue_invoice(customer, "INV-P2", "80.00", due_date=today - datetime.timedelta(days=5))
    third = issue_invoice(customer, "INV-P3", "60.00", due_date=today + datetime.timedelta(days=10))
    with scope(organization=supplier):
        issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.ACCOUNT, target="/portal/pay/")
    axe = Axe()
    findings: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)

    def check(page: Page, where: str, shot: str) -> None:
        findings.extend(run_axe(axe, page, where, width))
        page.screenshot(path=str(ARTIFACTS / f"pay-{shot}-{width}.png"), full_page=True)
        if width == 375:
            fits(page, where)

    # Sign in with the link: it lands on the pay page.
    page = new_page(width, 900)
    page.goto(issued.url)
    assert page.url.endswith("/l/confirm/"), page.url
    submit(page)
    assert page.url.endswith("/portal/pay/"), page.url
    assert page.locator("#mode-past-due").is_checked()  # something is past due
    check(page, "the pay page", "choose")

    # Two invoices, by card.
    page.check("#mode-invoices")
    page.check(f"#invoice-{first.pk}")
    page.check(f"#invoice-{second.pk}")
    page.check("#method-card")
    click_and_wait(page, "main button[type=submit]")
    assert page.get_by_test_id("pay-grand").inner_text() == "$200.00"
    check(page, "the review page", "review")
    click_and_wait(page, "[data-testid=pay-confirm]")
    assert "/sandbox/pay/sbx_" in page.url, page.url
    assert "Sandbox payments" in page.locator("header").inner_text()
    assert "$200.00" in page.locator("h1").inner_text()
    check(page, "the sandbox's card page", "sandbox-card")
    page.fill("#number", "4242 4242 4242 4242")
    page.fill("#expiry", "12/39")
    page.fill("#cvc", "123")
    page.fill("#name", "Dana Payables")
    click_and_wait(page, "button.sandbox__pay")
    assert "/portal/pay/" in page.url
    assert page.locator("h1").inner_text() == "Paid, thank you"
    check(page, "the payment's page", "paid")
    assert fresh(first).open_amount == 0 and fresh(second).open_amount == 0
    page.goto("/portal/invoices/?status=paid")
    paid = page.locator("main").inner_text()
    assert "INV-P1" in paid and "INV-P2" in paid

    # The receipt, in the desk's outbox.
    desk = new_page(width, 900)
    sign_in(desk, users.collector.email)
    desk.goto("/desk/outbox/")
    receipt = desk.locator(".message-row", has_text="Receipt: your payment of $200.00 to Acme Supplies")
    assert receipt.count() == 1
    assert "Delivered" in receipt.inner_text() and "dana@bolt.example" in receipt.inner_text()

    # The third invoice, by bank account: "Payment processing" until the money arrives.
    page.goto(f"/portal/pay/?invoice={third.pk}")
    assert page.locator(f"#invoice-{third.pk}").is_checked()
    page.check("#method-ach")
    click_and_wait(page, "main button[type=submit]")
    assert page.get_by_test_id("pay-grand").inner_text() == "$60.00"
    click_and_wait(page, "[data-testid=pay-confirm]")
    assert "Routing number" in page.locator("main").inner_text()
    check(page, "the sandbox's bank page", "sandbox-bank")
    page.fill("#routing", "110000000")
    page.fill("#account", "000123456789")
    page.fill("#holder", "Bolt Hardware")
    click_and_wait(page, "button.sandbox__pay")
    assert page.locator("h1").inner_text() == "Bank payment in progress"
    check(page, "the payment's page (in progress)", "processing")
    page.goto("/portal/invoices/")
    row = page.locator("tr", has_text="INV-P3")
    assert "Payment processing" in row.inner_text()
    check(page, "the invoices with a payment processing", "invoices-processing")
    assert fresh(third).open_amount == third.total

    assert deliver_due(timezone.now() + datetime.timedelta(days=3)) == 1

    page.reload()
    assert "Payment processing" not in page.locator("main").inner_text()
    assert fresh(third).open_amount == 0
    page.goto("/portal/invoices/?status=paid")
    assert "INV-P3" in page.locator("main").inner_text()

    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)
