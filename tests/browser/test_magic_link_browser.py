"""Magic links in a real browser: ask for a link on /l/request/, read it from a real SMTP
server on loopback, open it in Chromium, confirm, and land on the past-due invoices; the
request, confirm and unusable pages pass axe at phone and desktop widths.

The live server and this test share one process: Django sends through its SMTP backend to
the aiosmtpd server of ``tests/smtp.py``, and the email's link points at the live server
(``SITE_URL``).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.cache import cache
from django_scopes import scope, scopes_disabled
from playwright.sync_api import Page, Request
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from factories import issue_invoice, make_contact, record_payment
from openar.billing.models import Invoice
from openar.customers.models import Contact, Customer
from openar.identity.magic import magic_link_create, magic_link_revoke
from openar.identity.models import MagicLink
from smtp import SMTPServer

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]
PAST_DUE_LIST = "/portal/invoices/?status=past_due"
INVOICE_NUMBERS = "table.table--invoices tbody tr td:first-child a"


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture
def mailbox(smtp_server: SMTPServer, settings: Settings, live_server: LiveServer) -> Iterator[SMTPServer]:
    """The live server sends through the real SMTP backend to the loopback server, and its
    links point at itself. Rate-limit counters start at zero."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    settings.SITE_URL = live_server.url
    cache.clear()
    smtp_server.clear()
    yield smtp_server
    smtp_server.clear()
    cache.clear()


@dataclass
class Account:
    customer: Customer
    contact: Contact
    today: datetime.date


@pytest.fixture
def account(customer: Customer, customer_2: Customer, other_customer: Customer) -> Account:
    """Bolt Hardware, dated from the real clock (the live server's pages use it): two
    invoices past due, one due today, one upcoming, one late but paid; and a past-due invoice
    of another customer of the same supplier and of another supplier."""
    today = customer.organization.today()

    def due_in(days: int) -> datetime.date:
        return today + datetime.timedelta(days=days)

    issue_invoice(customer, "INV-501", "120.00", due_date=due_in(-30), issue_date=due_in(-60))
    issue_invoice(customer, "INV-502", "80.00", due_date=due_in(-3), issue_date=due_in(-33))
    issue_invoice(customer, "INV-503", "60.00", due_date=today, issue_date=due_in(-30))
    issue_invoice(customer, "INV-504", "500.00", due_date=due_in(15), issue_date=due_in(-15))
    paid = issue_invoice(customer, "INV-505", "75.00", due_date=due_in(-20), issue_date=due_in(-50))
    record_payment(customer, "75.00", allocations=[(paid, "75.00")], reference="CHK-505")
    issue_invoice(customer_2, "INV-601", "999.00", due_date=due_in(-10), issue_date=due_in(-40))
    issue_invoice(other_customer, "INV-701", "777.00", due_date=due_in(-10), issue_date=due_in(-40))
    contact = make_contact(customer, "Dana Payables", "dana@bolt.example")
    return Account(customer=customer, contact=contact, today=today)


def past_due_in_database(account: Account) -> list[str]:
    with scope(organization=account.customer.organization):
        return sorted(
            Invoice.objects.filter(
                customer=account.customer, open_amount__gt=0, due_date__lt=account.today
            ).values_list("number", flat=True)
        )


# --- the journey --------------------------------------------------------------------------------


def test_a_contact_asks_for_a_link_reads_the_email_and_lands_on_the_past_due_invoices(
    new_page: NewPage, account: Account, mailbox: SMTPServer, live_server: LiveServer
) -> None:
    page = new_page(1280)
    page.goto("/l/request/")
    page.get_by_label("Email").fill("dana@bolt.example")
    with page.expect_navigation():
        page.get_by_role("button", name="Email me a link").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Check your email"

    (message,) = mailbox.wait_for(1)
    assert message.rcpt_tos == ("dana@bolt.example",)
    assert message.subject == "Your Acme Supplies account: sign-in link"
    (url,) = message.urls()
    token = re.fullmatch(rf"{re.escape(live_server.url)}/l/([A-Za-z0-9_-]{{22}})/", url)
    assert token, url
    assert message.urls("text/html") == [url]

    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))
    response = page.goto(url)
    assert response is not None and response.status == 200
    assert page.url == f"{live_server.url}/l/confirm/"
    assert page.get_by_role("heading", level=1).inner_text() == "Bolt Hardware"
    with scopes_disabled():
        link = MagicLink.objects.get(contact=account.contact)
    assert link.uses == 0  # opening spent nothing

    with page.expect_navigation():
        page.get_by_role("button", name="Continue to my account").click()
    page.wait_for_url(lambda address: address == f"{live_server.url}{PAST_DUE_LIST}")

    listed = page.locator(INVOICE_NUMBERS).all_inner_texts()
    assert sorted(listed) == past_due_in_database(account) == ["INV-501", "INV-502"]
    assert "You opened a sign-in link" in page.locator("main").inner_text()
    with scopes_disabled():
        assert MagicLink.objects.get(pk=link.pk).uses == 1
    # After the link itself, nothing the browser sent carried the token.
    after_link = [r for r in sent if r.url != url]
    assert after_link, "no request after the link was recorded"
    carrying = [
        (r.method, r.url, name)
        for r in after_link
        for name, value in {"url": r.url, **r.all_headers()}.items()
        if token.group(1) in value
    ]
    assert carrying == []


# --- accessibility ------------------------------------------------------------------------------


def describe(violation: dict[str, Any], where: str, width: int) -> str:
    lines = [f"{where} @ {width}px: {violation['id']} ({violation['impact']}) {violation['help']}"]
    for node in violation["nodes"]:
        lines.append(f"    element {' '.join(str(t) for t in node['target'])}: {node['html'][:160]}")
        summary = (node.get("failureSummary") or "").replace("\n", " ")
        if summary:
            lines.append(f"      {summary[:300]}")
    return "\n".join(lines)


def run_axe(axe: Axe, page: Page, where: str, width: int) -> list[str]:
    """Axe's violations on the page as it is; fails if the page is unstyled (contrast would go
    unchecked) or axe checked nothing."""
    rules = page.evaluate("Array.from(document.styleSheets).reduce((n, s) => n + s.cssRules.length, 0)")
    assert rules > 0, f"{where}: no stylesheet loaded"
    response = axe.run(page).response
    assert response["passes"], f"{where}: axe checked nothing"
    return [describe(violation, where, width) for violation in response["violations"]]


@pytest.mark.parametrize("width", [375, 1280])
def test_the_request_confirm_and_unusable_pages_pass_axe(
    new_page: NewPage, account: Account, mailbox: SMTPServer, width: int
) -> None:
    axe = Axe()
    findings: list[str] = []
    organization = account.customer.organization
    with scope(organization=organization):
        valid = magic_link_create(contact=account.contact)
        revoked = magic_link_create(contact=account.contact)
        magic_link_revoke(link=revoked.link)

    pages: list[tuple[str, str, int, str]] = [
        # (what, address opened, status of the page shown, its heading)
        ("request", "/l/request/", 200, "Sign in with a link"),
        ("confirm", f"/l/{valid.token}/", 200, "Bolt Hardware"),
        ("unusable: withdrawn", f"/l/{revoked.token}/", 410, "This link has been withdrawn"),
        ("unusable: not valid", "/l/not-a-real-token-at-all/", 404, "This link is not valid"),
    ]
    for where, address, status, heading in pages:
        page = new_page(width, 812 if width == 375 else 900)
        response = page.goto(address)
        assert response is not None and response.status == status, (where, response and response.status)
        assert page.get_by_role("heading", level=1).inner_text() == heading, where
        findings += run_axe(axe, page, where, width)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width:
            findings.append(f"{where} @ {width}px: the page is {scroll_width}px wide")

    # The request form's two answers: "check your email", and the error for a mistyped address.
    page = new_page(width)
    page.goto("/l/request/")
    page.get_by_label("Email").fill("nobody@nowhere.example")
    with page.expect_navigation():
        page.get_by_role("button", name="Email me a link").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Check your email"
    findings += run_axe(axe, page, "request: sent", width)
    page.goto("/l/request/")
    page.get_by_label("Email").fill("dana.bolt.example")
    with page.expect_navigation():
        page.get_by_role("button", name="Email me a link").click()
    assert page.get_by_label("Email").get_attribute("aria-invalid") == "true"
    findings += run_axe(axe, page, "request: mistyped address", width)

    assert mailbox.messages == []
    with scopes_disabled():
        assert MagicLink.objects.get(pk=valid.link.pk).uses == 0
    assert not findings, f"{len(findings)} finding(s):\n" + "\n".join(findings)
