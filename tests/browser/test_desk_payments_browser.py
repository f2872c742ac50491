"""The desk's payment pages in a real browser: the payments list, one payment, recording a
cheque and the admins' payment setup pass axe and fit a 375 px phone."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

from factories import Users, issue_invoice, record_payment
from openar.customers.models import Customer

from .conftest import ARTIFACTS
from .test_mfa_browser import submit
from .test_portal_browser import WIDER_THAN_VIEWPORT, run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]


@pytest.mark.parametrize("width", [375, 1280])
def test_the_desk_payment_pages_pass_axe_and_fit(
    new_page: NewPage, users: Users, customer: Customer, width: int
) -> None:
    invoice = issue_invoice(customer, "INV-D1", "300.00")
    payment = record_payment(customer, "350.00", allocations=[(invoice, "300.00")], reference="CHK-77")
    page = new_page(width, 900)
    page.goto("/accounts/login/")
    page.fill("input[name=login]", users.admin.email)
    page.fill("input[name=password]", "correct horse battery staple")
    submit(page)
    axe = Axe()
    findings: list[str] = []
    too_wide = {}
    for where, path in {
        "payments": "/desk/payments/",
        "payment": f"/desk/payments/{payment.pk}/",
        "record": f"/desk/customers/{customer.pk}/payments/new/",
        "setup": "/desk/payments/setup/",
    }.items():
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        findings += run_axe(axe, page, f"{where} ({path})", width)
        page.screenshot(path=str(ARTIFACTS / f"desk-{where}-{width}.png"), full_page=True)
        if width == 375 and (scroll := page.evaluate("document.documentElement.scrollWidth")) > width:
            too_wide[where] = f"{scroll}px: {page.evaluate(WIDER_THAN_VIEWPORT)}"
    assert too_wide == {}
    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)
