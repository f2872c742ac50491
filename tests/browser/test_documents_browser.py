"""Documents in a real browser: the customer filters the document center, downloads two
documents as one ZIP (its entries checked), opens an invoice's PDF and uploads a proof of
delivery from the invoice's page; a collector then finds it on the customer's page, hides
another document and adds one. Every page passes axe and nothing scrolls sideways at 375 px."""

from __future__ import annotations

import datetime
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django_scopes import scope, scopes_disabled
from playwright.sync_api import FilePayload, Page
from pypdf import PdfReader
from reportlab.pdfgen import canvas

from factories import Users
from openar.billing.models import Document
from openar.billing.services import document_store

from .conftest import ARTIFACTS, Account
from .test_mfa_browser import submit
from .test_people_browser import sign_in as staff_sign_in
from .test_portal_browser import WIDER_THAN_VIEWPORT, run_axe, sign_in

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]


def small_pdf(text: str) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 720, text)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


@pytest.mark.parametrize("width", [375, 1280])
def test_a_customer_filters_zips_and_uploads_and_staff_see_it(
    new_page: NewPage, users: Users, account: Account, width: int, tmp_path: Path
) -> None:
    customer = account.customer
    organization = customer.organization
    inv_7001, inv_7002 = account.invoices["INV-7001"], account.invoices["INV-7002"]
    day = account.today - datetime.timedelta(days=20)
    with scope(organization=organization):
        for title, filename, kind, invoice, po in (
            ("Purchase order 9001", "po-9001.pdf", Document.Kind.PURCHASE_ORDER, inv_7001, "PO-9001"),
            ("Delivery note 7002", "delivery-7002.pdf", Document.Kind.PROOF_OF_DELIVERY, inv_7002, ""),
            ("Master agreement", "msa.pdf", Document.Kind.CONTRACT, None, ""),
        ):
            document_store(
                customer=customer,
                kind=kind,
                title=title,
                filename=filename,
                content=small_pdf(title),
                content_type="application/pdf",
                invoice=invoice,
                po_number=po,
                document_date=day,
            )
    axe = Axe()
    findings: list[str] = []
    too_wide: dict[str, str] = {}
    ARTIFACTS.mkdir(exist_ok=True)

    def look(page: Page, where: str) -> None:
        findings.extend(run_axe(axe, page, where, width))
        page.screenshot(path=str(ARTIFACTS / f"documents-{where}-{width}.png"), full_page=True)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if width == 375 and scroll > width:
            too_wide[where] = f"{scroll}px: {page.evaluate(WIDER_THAN_VIEWPORT)}"

    page = new_page(width, 900)
    sign_in(page, users.customer.email)
    page.goto("/portal/documents/")
    rows = page.locator("main table tbody tr")
    assert rows.count() == 4  # three stored here and the bill of lading of the account fixture
    look(page, "center")

    # Only the proofs of delivery, then everything about PO-9001 (the invoice's or its own).
    page.select_option("#kind", "proof_of_delivery")
    submit(page, "form[aria-label='Filter documents'] button[type=submit]")
    listed = page.locator("main table tbody tr td:nth-child(2) > a")
    assert listed.all_inner_texts() == ["Delivery note 7002"]
    page.select_option("#kind", "")
    page.fill("#po", "PO-9001")
    submit(page, "form[aria-label='Filter documents'] button[type=submit]")
    assert listed.all_inner_texts() == ["Bill of lading INV-7001", "Purchase order 9001"]  # newest first
    look(page, "center-filtered")

    # Both, as one ZIP.
    page.get_by_label("Select Purchase order 9001").check()
    page.get_by_label("Select Bill of lading INV-7001").check()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download selected as ZIP").click()
    download = info.value
    assert download.suggested_filename.startswith(f"documents-{customer.number}-")
    saved = tmp_path / "documents.zip"
    download.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert archive.namelist() == ["bol-7001.pdf", "po-9001.pdf"]
        assert archive.read("po-9001.pdf").startswith(b"%PDF")

    # The invoice's PDF, drawn from its data, from its row.
    with page.expect_download() as info:
        page.get_by_role("link", name="PDF of invoice INV-7001").first.click()
    pdf = PdfReader(info.value.path())
    text = "\n".join(p.extract_text() for p in pdf.pages)
    assert "Invoice INV-7001" in text and "$120.00" in text

    # A proof of delivery, sent from the invoice's page.
    page.goto(f"/portal/invoices/{inv_7001.pk}/")
    assert page.get_by_test_id("invoice-pdf").inner_text() == "Invoice INV-7001 (PDF)"
    page.locator("summary", has_text="Send us a document about this invoice").click()
    form = page.locator("#docs-h ~ details form")
    look(page, "invoice-upload-form")
    form.locator("input[type=file]").set_input_files(
        files=[FilePayload(name="signed-pod.pdf", mimeType="application/pdf", buffer=small_pdf("Signed POD"))]
    )
    form.get_by_label("What is it?").select_option("proof_of_delivery")
    form.get_by_label("Note for us (optional)").fill("Signed at the dock")
    submit(page, "#docs-h ~ details form button[type=submit]")
    assert "we received signed-pod.pdf" in page.locator(".flash").inner_text()
    assert "Proof of delivery: signed-pod.pdf" in page.locator("section[aria-labelledby=docs-h]").inner_text()
    look(page, "invoice-after-upload")

    # A file that is not a document is refused, with the reason, on the upload page.
    page.goto("/portal/documents/upload/")
    page.locator("input[type=file]").set_input_files(
        files=[FilePayload(name="tool.exe", mimeType="application/octet-stream", buffer=b"MZ" + b"\0" * 64)]
    )
    submit(page)
    assert "This file is a Windows program" in page.locator("[role=alert]").inner_text()
    look(page, "upload-refused")
    with scopes_disabled():
        assert not Document.objects.filter(filename__startswith="tool").exists()

    # The collector sees the customer's upload on the customer page, hides the contract.
    staff = new_page(width, 900)
    staff_sign_in(staff, users.collector.email)
    staff.goto(f"/desk/customers/{customer.pk}/")
    card = staff.locator("#documents")
    assert "Proof of delivery: signed-pod.pdf" in card.inner_text()
    look(staff, "desk-customer")
    with scopes_disabled():
        contract = Document.objects.get(customer=customer, title="Master agreement")
    submit(staff, f"#documents form[action='/desk/documents/{contract.pk}/visibility/'] button")
    assert "hidden from the customer" in staff.locator(".flash").inner_text()
    assert "Staff only" in staff.locator("#documents").inner_text()
    staff.goto(f"/desk/customers/{customer.pk}/documents/?invoice_id={inv_7001.pk}")
    listing = staff.locator("main table").inner_text()
    assert "Proof of delivery: signed-pod.pdf" in listing and "Master agreement" not in listing
    look(staff, "desk-documents")
    page.goto("/portal/documents/")
    assert "Master agreement" not in page.locator("main").inner_text()

    assert findings == []
    assert too_wide == {}
