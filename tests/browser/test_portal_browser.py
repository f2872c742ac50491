"""The customer portal in a real browser: sign in through the form, read the figures, open an
invoice, download the statement, and check every page with axe at phone and desktop widths."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django_scopes import scope
from playwright.sync_api import Page
from pypdf import PdfReader

from factories import PASSWORD, Users
from openar.billing.selectors import customer_aging
from openar.core.money import format_money

from .conftest import ARTIFACTS, Account

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]

# Lists every element that sticks out to the right of the viewport (why a page scrolls sideways).
WIDER_THAN_VIEWPORT = """() => {
  const limit = document.documentElement.clientWidth;
  const classes = (e) =>
    typeof e.className === 'string' ? e.className.trim().split(/\\s+/).filter(Boolean) : [];
  const name = (e) => [e.tagName.toLowerCase() + (e.id ? '#' + e.id : ''), ...classes(e)].join('.');
  return Array.from(document.querySelectorAll('body *'))
    .filter((e) => e.getBoundingClientRect().right > limit + 0.5)
    .slice(0, 12)
    .map((e) => `${name(e)} (right edge ${Math.round(e.getBoundingClientRect().right)}px)`);
}"""


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Through the real sign-in form."""
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/portal/"), f"signing in as {email} landed on {page.url}"


def portal_pages(account: Account) -> dict[str, str]:
    return {
        "overview": "/portal/",
        "invoices": "/portal/invoices/",
        "invoice detail": f"/portal/invoices/{account.invoices['INV-7002'].pk}/",
        "statement": "/portal/statement/",
        "documents": "/portal/documents/",
        "activity": "/portal/activity/",
    }


def run_axe(axe: Axe, page: Page, where: str, width: int) -> list[str]:
    """Axe's violations on the page as it is, described; fails if the page is unstyled or axe
    checked nothing (a vacuous pass)."""
    rules = page.evaluate("Array.from(document.styleSheets).reduce((n, s) => n + s.cssRules.length, 0)")
    assert rules > 0, f"{where}: no stylesheet loaded, so colour contrast would go unchecked"
    response = axe.run(page).response
    assert response["passes"], f"{where}: axe checked nothing"
    return [describe(violation, where, width) for violation in response["violations"]]


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


# --- a customer's visit -------------------------------------------------------------------------


def test_a_customer_signs_in_reads_the_figures_opens_an_invoice_and_downloads_the_statement(
    new_page: NewPage, account: Account, users: Users
) -> None:
    page = new_page(1280)
    sign_in(page, users.customer.email)

    past_due = page.get_by_test_id("past-due-USD").inner_text().strip()
    balance = page.get_by_test_id("balance-USD").inner_text().strip()
    organization = account.customer.organization
    with scope(organization=organization):
        aging = customer_aging(account.customer, organization.today())
    assert [a.currency for a in aging] == ["USD"]
    assert past_due == format_money(aging[0].past_due, "USD")
    assert balance == format_money(aging[0].balance, "USD")
    assert (past_due, balance) == ("$360.00", "$440.00")  # 120 + 200 + 40 late, 80 upcoming

    page.get_by_role("navigation", name="Your account").get_by_role("link", name="Invoices").click()
    page.wait_for_url("**/portal/invoices/")
    numbers = page.locator("table.table--invoices tbody tr td:first-child a").all_inner_texts()
    assert numbers == ["INV-7004", "INV-7002", "INV-7001", "INV-7003"]  # open, oldest due first
    invoice = account.invoices["INV-7002"]
    page.get_by_role("link", name="INV-7002", exact=True).click()
    page.wait_for_url(f"**/portal/invoices/{invoice.pk}/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Invoice INV-7002")
    assert page.get_by_test_id("invoice-open").inner_text().strip() == "$200.00"
    assert page.get_by_role("cell", name="Pallet racking RK-2").count() == 1
    assert "ref. CHK-55" in page.locator("#applied-h + ul").inner_text()

    page.get_by_role("navigation", name="Your account").get_by_role("link", name="Statement").click()
    page.wait_for_url("**/portal/statement/")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download PDF").click()
    download = info.value

    assert download.failure() is None
    assert download.suggested_filename == f"statement-C-1001-{account.today:%Y-%m-%d}.pdf"
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert "C-1001" in text
    for number in ("INV-7001", "INV-7002", "INV-7003", "INV-7004"):
        assert number in text
    assert past_due in text
    assert "INV-7005" not in text  # paid
    assert "INV-8001" not in text  # another customer's


def test_the_portal_never_shows_staff_only_notes(new_page: NewPage, account: Account, users: Users) -> None:
    page = new_page(1280)
    sign_in(page, users.customer.email)
    for path in ("/portal/", "/portal/activity/"):
        page.goto(path)
        body = page.locator("body").inner_text()
        assert "Statement viewed" in body, path
        assert "customer disputes freight" not in body, path


# --- accessibility and layout -------------------------------------------------------------------


def describe(violation: dict[str, Any], where: str, width: int) -> str:
    lines = [f"{where} @ {width}px: {violation['id']} ({violation['impact']}) {violation['help']}"]
    for node in violation["nodes"]:
        target = " ".join(str(t) for t in node["target"])
        lines.append(f"    element {target}: {node['html'][:160]}")
        summary = (node.get("failureSummary") or "").replace("\n", " ")
        if summary:
            lines.append(f"      {summary[:300]}")
    return "\n".join(lines)


@pytest.mark.parametrize("width", [375, 1280])
def test_every_portal_page_and_the_sign_in_page_pass_axe(
    new_page: NewPage, account: Account, users: Users, width: int
) -> None:
    axe = Axe()
    findings: list[str] = []

    visitor = new_page(width)
    visitor.goto("/accounts/login/")
    findings += run_axe(axe, visitor, "sign-in (/accounts/login/)", width)

    page = new_page(width)
    sign_in(page, users.customer.email)
    for where, path in portal_pages(account).items():
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        findings += run_axe(axe, page, f"{where} ({path})", width)

    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)


def test_the_overview_fits_a_375_px_phone(new_page: NewPage, account: Account, users: Users) -> None:
    page = new_page(375, 812)
    sign_in(page, users.customer.email)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "portal-overview-375.png"

    page.screenshot(path=str(shot), full_page=True)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")

    assert shot.stat().st_size > 0
    assert scroll_width <= 375, f"the overview is {scroll_width}px wide: {page.evaluate(WIDER_THAN_VIEWPORT)}"


def test_no_portal_page_scrolls_sideways_at_375_px(new_page: NewPage, account: Account, users: Users) -> None:
    page = new_page(375, 812)
    sign_in(page, users.customer.email)
    too_wide = {}
    for where, path in portal_pages(account).items():
        page.goto(path)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > 375:
            too_wide[where] = f"{scroll_width}px: {page.evaluate(WIDER_THAN_VIEWPORT)}"
    visitor = new_page(375, 812)
    visitor.goto("/accounts/login/")
    if (scroll_width := visitor.evaluate("document.documentElement.scrollWidth")) > 375:
        too_wide["sign-in"] = f"{scroll_width}px: {visitor.evaluate(WIDER_THAN_VIEWPORT)}"

    assert too_wide == {}
