"""A contract signed online, in a real browser at phone and desktop widths: a collector
fills a credit application for a customer and sends it; the customer opens the emailed
link, reads the key terms and the hash, confirms it is them with an emailed code, signs
with a typed name, downloads the signed copy (the original pages and a certificate page),
and checks it and a changed copy on the contract's page; the collector sees the evidence.
A customer whose second factor was used more than 15 minutes ago is asked for it again
(allauth's re-authentication) before signing. Every page passes axe and fits 375 px."""

from __future__ import annotations

import datetime
import io
import re
from collections.abc import Callable, Iterator

import pytest
import time_machine
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from axe_playwright_python.sync_playwright import Axe
from django.core import mail
from django_scopes import scope, scopes_disabled
from playwright.sync_api import FilePayload, Page
from pypdf import PdfReader
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from factories import Users, make_contact
from openar.contracts.models import Contract, Signature
from openar.contracts.services import contract_send, contract_upload
from openar.customers.models import Customer

from .conftest import ARTIFACTS
from .test_mfa_browser import code_for, submit
from .test_people_browser import sign_in
from .test_portal_browser import WIDER_THAN_VIEWPORT, run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]


@pytest.mark.parametrize("width", [375, 1280])
def test_staff_send_a_contract_and_the_customer_steps_up_signs_downloads_and_verifies(
    new_page: NewPage,
    users: Users,
    customer: Customer,
    settings: Settings,
    live_server: LiveServer,
    width: int,
) -> None:
    settings.SITE_URL = str(live_server)
    make_contact(customer, "Dana Payables", "dana@bolt.example")
    axe = Axe()
    findings: list[str] = []
    too_wide: dict[str, str] = {}
    ARTIFACTS.mkdir(exist_ok=True)

    def look(page: Page, where: str) -> None:
        findings.extend(run_axe(axe, page, where, width))
        page.screenshot(path=str(ARTIFACTS / f"contracts-{where}-{width}.png"), full_page=True)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if width == 375 and scroll > width:
            too_wide[where] = f"{scroll}px: {page.evaluate(WIDER_THAN_VIEWPORT)}"

    # Staff: a credit application from the customer page, checked, then sent.
    desk = new_page(width, 900)
    sign_in(desk, users.collector.email)
    desk.goto(f"/desk/customers/{customer.pk}/")
    card = desk.locator("#contracts")
    assert "No contracts yet." in card.inner_text()
    look(desk, "customer-card")
    submit(desk, "#contracts a.button")
    look(desk, "new")
    credit = desk.locator("#credit form")
    assert credit.get_by_label("Legal name").input_value() == "Bolt Hardware"
    credit.get_by_label("Address").fill("1 Main St\nToronto ON")
    credit.get_by_label("Credit limit requested (USD)").fill("12,50")
    credit.get_by_label("Payment terms (days)").fill("45")
    submit(desk, "#credit form button[type=submit]")
    assert "Use a point before the decimals" in desk.locator("#credit-credit_limit-error").inner_text()
    assert desk.locator("#credit-credit_limit").get_attribute("aria-invalid") == "true"
    look(desk, "new-refused")
    desk.locator("#credit-credit_limit").fill("25,000.00")
    submit(desk, "#credit form button[type=submit]")
    assert desk.locator("#contract-state").inner_text() == "Draft"
    assert "Credit limit requested: $25,000.00." in desk.locator(".terms").first.inner_text()
    look(desk, "draft")
    submit(desk, "main form[action$='/send/'] button")
    assert "Emailed a link to Dana Payables (dana@bolt.example)." in desk.locator(".flash").inner_text()
    assert desk.locator("#contract-state").inner_text() == "Waiting for signature"
    with scopes_disabled():
        contract = Contract.objects.get()
    (invitation,) = [m for m in mail.outbox if m.subject.startswith("Please sign:")]
    link = re.search(r"http://\S+/l/\S+/", str(invitation.body))
    assert link is not None, invitation.body

    # The customer: the emailed link opens the contract's page.
    portal = new_page(width, 900)
    portal.goto(link.group(0))
    submit(portal)
    assert portal.url.endswith(f"/portal/contracts/{contract.pk}/"), portal.url
    assert portal.locator("#document-sha256").inner_text() == contract.sha256
    assert "Payment terms: net 45 days." in portal.locator(".terms").inner_text()
    assert portal.locator("nav[aria-label='Your account'] a[aria-current=page]").inner_text() == "Contracts"
    look(portal, "portal-contract")
    with portal.expect_download() as original_download:
        portal.click("text=Download the PDF to read")
    original = open(original_download.value.path(), "rb").read()  # noqa: SIM115
    assert len(original) == contract.size

    # Signing from a sign-in link needs an emailed code first.
    submit(portal, "text=Confirm it is you to sign")
    assert "/portal/step-up/" in portal.url
    submit(portal, "button[name=send]")
    code = re.search(r"\b(\d{6})\b", str(mail.outbox[-1].subject))
    assert code is not None
    portal.fill("#id_code", code.group(1))
    look(portal, "step-up")
    submit(portal)
    assert portal.url.endswith(f"/portal/contracts/{contract.pk}/"), portal.url
    assert "sign-in link + emailed code" in portal.locator("#sign").inner_text()

    # Unticked, the page says so and keeps the name.
    portal.fill("#typed-name", "Dana Payables")
    submit(portal, "#sign button[type=submit]")
    assert "Tick the box to agree to sign electronically." in portal.locator("#consent-error").inner_text()
    assert portal.input_value("#typed-name") == "Dana Payables"
    look(portal, "sign-refused")
    portal.check("#consent")
    submit(portal, "#sign button[type=submit]")
    assert "Signed." in portal.locator(".flash").inner_text()
    assert portal.locator("#contract-state").inner_text() == "Signed"
    look(portal, "signed")
    with scopes_disabled():
        contract = Contract.objects.get()
        signature = Signature.objects.get()
    assert portal.locator("#signed-sha256").inner_text() == contract.signed_sha256

    with portal.expect_download() as signed_download:
        portal.click("text=Download the signed copy")
    path = signed_download.value.path()
    signed = open(path, "rb").read()  # noqa: SIM115
    reader = PdfReader(io.BytesIO(signed))
    assert len(reader.pages) == len(PdfReader(io.BytesIO(original)).pages) + 1
    certificate = " ".join(reader.pages[-1].extract_text().split())
    for expected in (
        "Certificate of electronic signature",
        contract.sha256,
        "Dana Payables <dana@bolt.example>",
        "sign-in link + emailed code",
        f"Signature id {signature.pk}",
    ):
        assert expected in certificate, expected

    # Verify: the signed copy matches; a copy with one byte changed does not.
    portal.set_input_files("#verify-file", str(path))
    submit(portal, "#verify button[type=submit]")
    assert "This file matches the signed copy." in portal.locator("#verify-result").inner_text()
    look(portal, "verified")
    changed = signed[:200] + bytes([signed[200] ^ 1]) + signed[201:]
    copy: FilePayload = {"name": "copy.pdf", "mimeType": "application/pdf", "buffer": changed}
    portal.set_input_files("#verify-file", files=[copy])
    submit(portal, "#verify button[type=submit]")
    assert "does not match this contract" in portal.locator("#verify-result").inner_text()

    # Staff see the evidence.
    desk.goto(f"/desk/contracts/{contract.pk}/")
    evidence = desk.locator("#evidence").inner_text()
    assert "Dana Payables" in evidence and "sign-in link + emailed code" in evidence
    look(desk, "evidence")
    desk.goto("/desk/contracts/?state=signed")
    assert "Credit application: Bolt Hardware" in desk.locator("main table").inner_text()
    look(desk, "list")

    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)
    assert not too_wide, f"wider than {width}px: {too_wide}"


@pytest.fixture
def running_clock() -> Iterator[time_machine.Traveller]:
    """Real time, running, from 5 seconds into a 30-second period (a code never expires
    between reading and typing it); the test moves it on past the 15 minutes."""
    now = datetime.datetime.now(datetime.UTC)
    with time_machine.travel(now.replace(second=5 if now.second < 30 else 35, microsecond=0)) as traveller:
        yield traveller


@pytest.mark.parametrize("width", [375, 1280])
def test_a_second_factor_used_long_ago_is_asked_for_again_before_signing(
    new_page: NewPage,
    users: Users,
    customer: Customer,
    running_clock: time_machine.Traveller,
    width: int,
) -> None:
    contact = make_contact(customer, "Dana Payables", "dana@bolt.example", user=users.customer)
    secret = generate_totp_secret()
    TOTP.activate(users.customer, secret)
    RecoveryCodes.activate(users.customer)
    with scope(organization=customer.organization):
        contract = contract_upload(
            customer=customer,
            title="Service agreement 2025",
            content=_pdf(),
            filename="service agreement.pdf",
            summary="Delivery within 5 days; net 30.",
            actor=users.collector,
        )
        contract_send(contract=contract, actor=users.collector)
    axe = Axe()
    findings: list[str] = []
    page = new_page(width, 900)

    # Signed in with the password and the app; the second factor is 20 minutes old.
    sign_in(page, users.customer.email)
    assert page.url.endswith("/accounts/2fa/authenticate/"), page.url
    page.fill("#id_code", code_for(secret))
    submit(page, "main form[action='/accounts/2fa/authenticate/'] button[type=submit]")
    running_clock.shift(datetime.timedelta(minutes=20, seconds=30))
    page.goto(f"/portal/contracts/{contract.pk}/")
    assert page.locator("#typed-name").count() == 0
    submit(page, "text=Confirm it is you to sign")
    assert page.url.endswith(f"/portal/contracts/{contract.pk}/confirm/"), page.url
    assert "used in the last 15 minutes" in page.locator("main").inner_text()
    findings += run_axe(axe, page, "confirm with a second factor", width)
    page.screenshot(path=str(ARTIFACTS / f"contracts-confirm-mfa-{width}.png"), full_page=True)
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{scroll}px: {page.evaluate(WIDER_THAN_VIEWPORT)}"

    # The app's code again, through the sign-in's own re-authentication, and back to sign.
    submit(page, "text=Use your second factor")
    assert "/accounts/2fa/reauthenticate/" in page.url, page.url
    page.fill("#id_code", code_for(secret))
    submit(page)
    assert page.url.endswith(f"/portal/contracts/{contract.pk}/"), page.url
    assert "password + authenticator app" in page.locator("#sign").inner_text()
    page.fill("#typed-name", "Dana Payables")
    page.check("#consent")
    submit(page, "#sign button[type=submit]")
    assert page.locator("#contract-state").inner_text() == "Signed"
    with scopes_disabled():
        signature = Signature.objects.get()
    assert (signature.auth_method, signature.contact_id) == ("password + authenticator app", contact.pk)
    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)


def _pdf() -> bytes:
    buffer = io.BytesIO()
    drawing = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    drawing.drawString(72, 750, "Service agreement between Acme Supplies and Bolt Hardware")
    drawing.showPage()
    drawing.save()
    return buffer.getvalue()
