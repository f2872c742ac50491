"""Disputes in a real browser: the customer disputes two lines of an invoice with a photo
attached, a collector finds the dispute in the desk's queue and resolves it with a credit
note, and the customer sees the new balance in the portal. Every page passes axe and
nothing scrolls sideways at 375 px."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from django_scopes import scopes_disabled
from playwright.sync_api import FilePayload, Page

from factories import Users
from openar.billing.models import CreditNote, Invoice
from openar.disputes.models import Dispute, DisputeAttachment

from .conftest import ARTIFACTS, Account
from .test_mfa_browser import submit
from .test_people_browser import sign_in
from .test_portal_browser import WIDER_THAN_VIEWPORT, run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]


def png_bytes(width: int, height: int) -> bytes:
    """A small, valid PNG photo (reddish), made here: what a phone camera would send."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + b"\xcc\x22\x22" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("width", [375, 1280])
def test_a_customer_disputes_two_lines_with_a_photo_and_staff_resolve_it_with_a_credit_note(
    new_page: NewPage, users: Users, account: Account, width: int
) -> None:
    invoice = account.invoices["INV-7002"]  # 300.00: racking 282.50 and assembly 17.50; 200.00 open
    axe = Axe()
    findings: list[str] = []
    too_wide: dict[str, str] = {}
    ARTIFACTS.mkdir(exist_ok=True)

    def look(page: Page, where: str) -> None:
        findings.extend(run_axe(axe, page, where, width))
        page.screenshot(path=str(ARTIFACTS / f"disputes-{where}-{width}.png"), full_page=True)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if width == 375 and scroll > width:
            too_wide[where] = f"{scroll}px: {page.evaluate(WIDER_THAN_VIEWPORT)}"

    # The customer disputes both lines, with a photo of the damage.
    portal = new_page(width, 900)
    sign_in(portal, users.customer.email)
    portal.goto(f"/portal/invoices/{invoice.pk}/")
    assert portal.get_by_test_id("invoice-open").first.inner_text() == "$200.00"
    look(portal, "invoice")
    submit(portal, "a:has-text('Dispute lines')")
    assert portal.get_by_role("heading", level=1).inner_text() == "Dispute lines of invoice INV-7002"
    form = portal.locator("main form")
    form.get_by_role("checkbox", name="Pallet racking").check()
    form.get_by_label("Reason for “Pallet racking”").select_option(label="Goods arrived damaged")
    form.get_by_label("Amount disputed (USD)").first.fill("150.00")
    form.get_by_label("What is wrong with “Pallet racking”?").fill("One of the two racks arrived bent.")
    form.get_by_role("checkbox", name="Assembly").check()
    form.get_by_label("Reason for “Assembly”").select_option(label="Price is wrong")
    form.get_by_label("Amount disputed (USD)").nth(1).fill("17.50")
    form.get_by_label("Photos or documents").set_input_files(
        files=[FilePayload(name="bent-rack.png", mimeType="image/png", buffer=png_bytes(40, 30))]
    )
    look(portal, "form")
    submit(portal, "main form button[type=submit]")
    assert "Your dispute of $167.50 is sent." in portal.locator(".flash").inner_text()
    assert portal.get_by_test_id("dispute-state").inner_text() == "Open"
    main = portal.locator("main").inner_text()
    assert "bent-rack.png" in main and "One of the two racks arrived bent." in main
    look(portal, "dispute")
    with scopes_disabled():
        dispute = Dispute.objects.get(invoice=invoice)
        assert dispute.disputed_total == Decimal("167.50")
        assert (
            DisputeAttachment.objects.filter(dispute=dispute, document__content_type="image/png").count() == 1
        )

    # A collector finds it in the queue and resolves it: the racking accepted, the price not.
    desk = new_page(width, 900)
    sign_in(desk, users.collector.email)
    desk.goto("/desk/")
    submit(desk, "nav[aria-label=Desk] >> text=Disputes")
    row = desk.locator(".dispute-row", has_text="INV-7002")
    assert "$167.50" in row.inner_text() and "Open 0 days" in row.inner_text()
    look(desk, "queue")
    submit(desk, ".dispute-row a:has-text('INV-7002')")
    assert desk.get_by_test_id("dispute-state").inner_text() == "Open"
    look(desk, "desk-dispute")
    submit(desk, "button:has-text('Start review')")
    assert desk.get_by_test_id("dispute-state").inner_text() == "In review"
    resolve = desk.locator("form[action$='/resolve/']")
    resolve.locator("fieldset", has_text="Pallet racking").get_by_label("Accept (USD)").fill("150.00")
    resolve.locator("fieldset", has_text="Assembly").get_by_label("Accept (USD)").fill("0")
    resolve.get_by_label("Why what is not accepted stands").fill("The assembly price is the one quoted.")
    submit(desk, "form[action$='/resolve/'] button[type=submit]")
    assert "Credit note CN-D" in desk.locator(".flash").inner_text()
    assert "$150.00" in desk.get_by_test_id("credit-note").inner_text()
    look(desk, "desk-resolved")

    # The customer sees the new balance.
    portal.goto(f"/portal/invoices/{invoice.pk}/")
    assert portal.get_by_test_id("invoice-open").first.inner_text() == "$50.00"
    disputes = portal.locator("#disputes").inner_text()
    assert "Resolved" in disputes and "Partly accepted" in disputes and "credit note CN-D" in disputes
    look(portal, "invoice-after")
    with scopes_disabled():
        assert Invoice.objects.get(pk=invoice.pk).open_amount == Decimal("50.00")
        assert CreditNote.objects.get(invoice=invoice, number__startswith="CN-D").amount == Decimal("150.00")

    assert findings == [], "\n".join(findings)
    assert too_wide == {}, too_wide
