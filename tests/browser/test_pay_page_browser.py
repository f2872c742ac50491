"""The login-free pay page in a real browser, at phone and desktop widths: a past-due
reminder goes out; its pay-page link (read in the desk's outbox) opens ``/pay/``; the payer
sets up three monthly installments, confirms it is them with an emailed code, saves the
sandbox's test card at the provider's page and agrees to the plan on autopay. Then the
installment job runs on each date and the page shows the installments collected and the
invoices paid down. Every page passes axe and fits 375 px."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core import mail
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from playwright.sync_api import Page
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from factories import Users, fresh, issue_invoice, make_contact
from openar.commitments.models import Plan
from openar.commitments.services import installments_run
from openar.customers.models import Customer
from openar.notifications.services import dispatch_due
from openar.reminders.engine import run
from openar.reminders.models import ReminderSettings
from openar.tenants.models import Organization

from .conftest import ARTIFACTS
from .test_mfa_browser import fits, submit
from .test_outbox_browser import sign_in
from .test_portal_browser import run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]


@pytest.mark.parametrize("width", [375, 1280])
def test_from_a_reminder_a_payer_sets_up_three_installments_on_autopay(
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
    make_contact(customer, "Dana Payables", "dana@bolt.example")
    first = issue_invoice(customer, "INV-L1", "300.00", due_date=today - datetime.timedelta(days=12))
    second = issue_invoice(customer, "INV-L2", "150.00", due_date=today - datetime.timedelta(days=4))
    with scope(organization=supplier):  # whatever the hour the test runs at: no quiet hours
        ReminderSettings.objects.filter(organization=supplier).update(
            quiet_start=datetime.time(0), quiet_end=datetime.time(0)
        )
    assert run(supplier, timezone.now()).created == 1
    dispatch_due()
    axe = Axe()
    findings: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)

    def check(page: Page, where: str, shot: str) -> None:
        findings.extend(run_axe(axe, page, where, width))
        page.screenshot(path=str(ARTIFACTS / f"paypage-{shot}-{width}.png"), full_page=True)
        if width == 375:
            fits(page, where)

    # The reminder, in the desk's outbox: its pay-page link.
    desk = new_page(width, 900)
    sign_in(desk, users.collector.email)
    desk.goto("/desk/outbox/")
    with desk.expect_navigation():
        desk.locator(".message-row", has_text="Bolt Hardware").locator("a").first.click()
    link = desk.locator("section:has(#refs-h) a[href*='/pay/']").first.get_attribute("href")
    assert link and re.search(r"/pay/[A-Za-z0-9_-]{20,}/$", link), link

    # The payer opens it: confirm, then the pay page with what is past due.
    page = new_page(width, 900)
    page.goto(link)
    assert page.url.endswith("/l/confirm/"), page.url
    submit(page)
    assert page.url.endswith("/pay/"), page.url
    assert page.get_by_test_id("past-due-total").inner_text() == "$450.00"
    check(page, "the pay page", "home")

    # Three monthly installments.
    with page.expect_navigation():
        page.click("text=Set up a payment plan")
    check(page, "the plan form", "plan")
    page.select_option("#frequency", "monthly")
    page.fill("#installment_count", "3")
    submit(page)
    assert "$450.00 in 3 payments, every month" in page.locator("main").inner_text()
    check(page, "the plan's schedule and terms", "review")

    # A card for the installments: confirm it is you (emailed code), then the provider's page.
    submit(page, "button[name=kind][value=card]")
    assert "/pay/step-up/" in page.url, page.url
    submit(page, "button[name=send]")
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].subject)
    assert code is not None, mail.outbox[-1].subject
    page.fill("#id_code", code.group(1))
    submit(page)
    assert "/pay/plan/" in page.url, page.url
    submit(page, "button[name=kind][value=card]")
    assert "/sandbox/setup/" in page.url, page.url
    page.fill("#number", "4242 4242 4242 4242")
    page.fill("#expiry", "12/39")
    page.fill("#cvc", "123")
    page.fill("#name", "Dana Payables")
    submit(page, "button.sandbox__pay")
    assert "/pay/plan/method/" in page.url, page.url
    assert page.locator("label", has_text="Charge my Visa ending 4242 on each date").count() == 1
    assert "Visa ending 4242" in page.locator("#terms-text").inner_text()
    check(page, "the plan with a saved card", "review-card")
    page.check("#consent")
    submit(page, "[data-testid=plan-accept]")
    assert "Thank you: your payment plan is set up." in page.locator(".flash").inner_text()
    check(page, "the plan in place", "current")
    with scopes_disabled():
        plan = Plan.objects.get(customer=customer)
    assert plan.state == "active" and plan.saved_method is not None

    # The installments are collected on their dates; the invoices are paid down.
    for months, left in ((0, "300.00"), (1, "150.00"), (2, "0.00")):
        moment = timezone.now() + datetime.timedelta(days=31 * months)
        installments_run(moment)
        assert fresh(first).open_amount + fresh(second).open_amount == Decimal(left), months
    page.reload()
    text = page.locator("main").inner_text()
    assert text.count("Paid") >= 3 or "Completed" in text, text
    check(page, "the plan paid", "paid")

    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)
