"""A reminder in the demo's outbox, in a real browser: the reminder engine runs with the
demo's local channel, a collector finds the reminder in the desk's outbox and opens it, and
its sign-in link, opened by the customer in another browser, lands on the past-due invoices
after the confirm step. The outbox, the message and tomorrow's reminders pass axe and fit
375 px."""

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

from factories import PASSWORD, Users, issue_invoice, make_contact
from openar.customers.models import Customer
from openar.notifications.services import dispatch_due
from openar.reminders.engine import run
from openar.reminders.models import ReminderSettings
from openar.tenants.models import Organization

from .conftest import ARTIFACTS
from .test_mfa_browser import fits, submit
from .test_portal_browser import run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]


def sign_in(page: Page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    submit(page)


@pytest.mark.parametrize("width", [375, 1280])
def test_a_reminder_in_the_outbox_opens_the_past_due_invoices(
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
    issue_invoice(customer, "INV-LATE-1", "420.00", due_date=today - datetime.timedelta(days=4))
    issue_invoice(customer, "INV-NEXT-2", "99.00", due_date=today + datetime.timedelta(days=20))
    with scope(organization=supplier):  # whatever the hour the test runs at: no quiet hours
        ReminderSettings.objects.filter(organization=supplier).update(
            quiet_start=datetime.time(0), quiet_end=datetime.time(0)
        )
    assert run(supplier, timezone.now()).created == 1
    dispatch_due()
    axe = Axe()
    findings: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)

    desk = new_page(width, 900)
    sign_in(desk, users.collector.email)
    desk.goto("/desk/outbox/")
    findings += run_axe(axe, desk, "outbox (/desk/outbox/)", width)
    desk.screenshot(path=str(ARTIFACTS / f"outbox-{width}.png"), full_page=True)
    row = desk.locator(".message-row", has_text="Bolt Hardware")
    assert "Delivered" in row.inner_text()
    with desk.expect_navigation():
        row.locator("a").first.click()
    assert "A friendly reminder: $420.00 is now past due" in desk.locator("h1").inner_text()
    findings += run_axe(axe, desk, "message (/desk/messages/...)", width)
    desk.screenshot(path=str(ARTIFACTS / f"message-{width}.png"), full_page=True)
    # The first link the message carried opens the invoices (the second, Easy Pay, the pay page).
    link = desk.locator("section:has(#refs-h) a[href*='/l/']").first.get_attribute("href")
    assert link and link.startswith(str(live_server))
    if width == 375:
        fits(desk, "the message page")
    desk.goto("/desk/reminders/upcoming/")
    findings += run_axe(axe, desk, "tomorrow's reminders", width)

    customer_page = new_page(width, 900)
    customer_page.goto(link)
    assert customer_page.url.endswith("/l/confirm/"), customer_page.url
    submit(customer_page)
    assert customer_page.url.endswith("/portal/invoices/?status=past_due"), customer_page.url
    listed = customer_page.locator("main").inner_text()
    assert "INV-LATE-1" in listed and "INV-NEXT-2" not in listed

    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)
