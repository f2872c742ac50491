"""Autopay in a real browser, at phone and desktop widths: a customer opens a sign-in link,
asks to save a card, confirms it is them with an emailed code, saves the sandbox's test card
at the provider's page, reads the terms and turns automatic payments on; the periodic job
then charges what is due, and the page lists the payment. Every page passes axe and fits
375 px."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core import mail
from django_scopes import scope, scopes_disabled
from playwright.sync_api import Page
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from factories import fresh, issue_invoice, make_contact
from openar.customers.models import Customer
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink
from openar.payments.autopay import charge_due
from openar.payments.models import Autopay
from openar.tenants.models import Organization

from .conftest import ARTIFACTS
from .test_mfa_browser import fits, submit
from .test_portal_browser import run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]


@pytest.mark.parametrize("width", [375, 1280])
def test_a_customer_saves_a_card_and_turns_autopay_on(
    new_page: NewPage,
    supplier: Organization,
    customer: Customer,
    settings: Settings,
    live_server: LiveServer,
    width: int,
) -> None:
    settings.SITE_URL = str(live_server)
    today = supplier.today()
    contact = make_contact(customer, "Dana Payables", "dana@bolt.example")
    late = issue_invoice(customer, "INV-A1", "120.00", due_date=today - datetime.timedelta(days=3))
    with scope(organization=supplier):
        issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.ACCOUNT, target="/portal/autopay/")
    axe = Axe()
    findings: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)

    def check(page: Page, where: str, shot: str) -> None:
        findings.extend(run_axe(axe, page, where, width))
        page.screenshot(path=str(ARTIFACTS / f"autopay-{shot}-{width}.png"), full_page=True)
        if width == 375:
            fits(page, where)

    page = new_page(width, 900)
    page.goto(issued.url)
    submit(page)
    assert page.url.endswith("/portal/autopay/"), page.url
    assert page.locator("#state-h").inner_text() == "Off"
    check(page, "the autopay page (off)", "off")

    # Saving a card from a sign-in link: confirm it is you first, with an emailed code.
    submit(page, "button[name=kind][value=card]")
    assert "/portal/step-up/" in page.url, page.url
    submit(page, "button[name=send]")
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].subject)
    assert code is not None, mail.outbox[-1].subject
    page.fill("#id_code", code.group(1))
    submit(page)
    assert page.url.endswith("/portal/autopay/"), page.url
    submit(page, "button[name=kind][value=card]")
    assert "/sandbox/setup/sbs_" in page.url, page.url
    check(page, "the sandbox's page for saving a card", "sandbox-setup")
    page.fill("#number", "4242 4242 4242 4242")
    page.fill("#expiry", "12/39")
    page.fill("#cvc", "123")
    page.fill("#name", "Dana Payables")
    submit(page, "button.sandbox__pay")
    assert "/portal/autopay/setup/" in page.url, page.url
    assert "Visa ending 4242 is saved." in page.locator(".flash").inner_text()
    assert (
        "I authorize Acme Supplies to charge my Visa ending 4242" in page.locator("#terms-text").inner_text()
    )
    check(page, "the terms", "terms")

    # The terms must be agreed to: unticked, the page says so next to the box.
    submit(page, "#terms-h ~ form button[type=submit]")
    assert "Tick the box to agree to the terms above." in page.locator("#consent-error").inner_text()
    check(page, "the terms with an error", "terms-error")
    page.check("#consent")
    submit(page, "#terms-h ~ form button[type=submit]")
    assert page.locator("#state-h").inner_text() == "On"
    assert "Automatic payments are on with Visa ending 4242." in page.locator(".flash").inner_text()
    check(page, "the autopay page (on)", "on")
    with scopes_disabled():
        autopay = Autopay.objects.get(customer=customer)
    assert autopay.consent_contact_id == contact.pk and autopay.consent_ip

    # The periodic job charges what is due; the page lists it.
    with scopes_disabled():
        outcomes = charge_due()
    assert [o.result for o in outcomes] == ["succeeded"]
    assert fresh(late).open_amount == 0
    page.reload()
    history = page.locator("#history-h ~ table").inner_text()
    assert "$120.00" in history and "Succeeded" in history
    check(page, "the autopay page with a payment", "charged")

    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)
