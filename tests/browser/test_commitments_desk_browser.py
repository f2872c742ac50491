"""Promises and plans at the desk in a real browser: a collector records a promise on a
customer page (after one refused amount), proposes a payment plan (chosen, reviewed with its
schedule and terms, accepted by the customer), then finds the promise due today on the
promises page and the plan waiting for approval on the plans page, and approves it. Every
page passes axe and nothing scrolls sideways at 375 px."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from django_scopes import scope, scopes_disabled
from playwright.sync_api import Page

from factories import Users
from openar.commitments.models import Plan, Promise
from openar.commitments.services import commitment_policy

from .conftest import ARTIFACTS, Account
from .test_mfa_browser import submit
from .test_people_browser import sign_in
from .test_portal_browser import WIDER_THAN_VIEWPORT, run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]


@pytest.mark.parametrize("width", [375, 1280])
def test_a_collector_records_a_promise_and_proposes_a_plan_then_finds_them_on_the_promises_pages(
    new_page: NewPage, users: Users, account: Account, width: int
) -> None:
    customer = account.customer
    organization = customer.organization
    with scope(organization=organization):
        policy = commitment_policy(organization)
        policy.plan_approval_above = Decimal("200.00")
        policy.save()
    today = account.today
    axe = Axe()
    findings: list[str] = []
    too_wide: dict[str, str] = {}
    ARTIFACTS.mkdir(exist_ok=True)

    def look(page: Page, where: str) -> None:
        findings.extend(run_axe(axe, page, where, width))
        page.screenshot(path=str(ARTIFACTS / f"desk-commitments-{where}-{width}.png"), full_page=True)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if width == 375 and scroll > width:
            too_wide[where] = f"{scroll}px: {page.evaluate(WIDER_THAN_VIEWPORT)}"

    page = new_page(width, 900)
    sign_in(page, users.collector.email)
    page.goto(f"/desk/customers/{customer.pk}/")
    card = page.locator("#commitments")
    assert "No promises yet." in card.inner_text()

    # A promise for today on INV-7001 (120.00 open): first more than is open, then right.
    card.locator("summary", has_text="Record a promise").click()
    form = card.locator("form[action$='/promises/new/']")
    form.locator("input[name=amount]").fill("500.00")
    form.locator("input[name=promised_date]").fill(today.isoformat())
    form.get_by_label("INV-7001").check()
    form.get_by_label("Note for staff").fill("Will pay by card this afternoon")
    look(page, "card-promise-form")
    submit(page, "#commitments form[action$='/promises/new/'] button[type=submit]")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Record a promise to pay")
    error = page.locator("#promise-amount-error").inner_text()
    assert error == "That is more than the $120.00 left to pay on the invoices chosen."
    assert page.locator("#promise-amount").get_attribute("aria-invalid") == "true"
    assert page.input_value("#promise-note") == "Will pay by card this afternoon"  # nothing lost
    look(page, "promise-refused")
    page.fill("#promise-amount", "120.00")
    submit(page, "main form button[type=submit]")
    assert "Promise recorded: $120.00" in page.locator(".flash").inner_text()
    card = page.locator("#commitments")
    assert "$120.00 by" in card.inner_text() and "Will pay by card this afternoon" in card.inner_text()

    # A plan of INV-7002 and INV-7004 (240.00): quoted, reviewed, accepted; above 200.00 it
    # waits for approval.
    card.locator("summary", has_text="Propose a payment plan").click()
    plan_form = card.locator("form[action$='/plans/new/']")
    plan_form.get_by_label("INV-7002").check()
    plan_form.get_by_label("INV-7004").check()
    plan_form.get_by_label("How often").select_option("biweekly")
    plan_form.get_by_label("Installments").fill("4")
    plan_form.get_by_label("First payment on").fill((today + datetime.timedelta(days=7)).isoformat())
    look(page, "card-plan-form")
    submit(page, "#commitments form[action$='/plans/new/'] button[value=review]")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Review the payment plan")
    main = page.locator("main").inner_text()
    assert "$240.00: 4 installments every two weeks" in main
    assert "Installment 4 of 4" in main and "waits for a staff approval" in main
    look(page, "plan-review")
    page.get_by_label("The customer accepted these terms").check()
    submit(page, "main button[value=confirm]")
    assert "waits for approval" in page.locator(".flash").inner_text()
    card = page.locator("#commitments")
    assert "Pending approval" in card.inner_text() and "$240.00" in card.inner_text()
    look(page, "customer")

    submit(page, "nav[aria-label=Desk] >> text=Promises")  # the desk's navigation
    assert page.url.endswith("/desk/promises/")
    due = page.locator("section[aria-labelledby=due-h]").inner_text()
    assert customer.name in due and "$120.00" in due
    assert "Promise-kept rate, last 30 days: no promise resolved yet" in page.locator("main").inner_text()
    look(page, "promises")

    submit(page, "nav[aria-label='Promises and plans'] >> text=Plans and tasks")
    waiting = page.locator("section[aria-labelledby=pending-h]").inner_text()
    assert customer.name in waiting and "$240.00" in waiting
    assert "Payment plan to approve" in page.locator("#tasks").inner_text()
    look(page, "plans")
    submit(page, "section[aria-labelledby=pending-h] button[type=submit]")
    assert "approved" in page.locator(".flash").inner_text()
    assert "No plan is waiting for approval." in page.locator("main").inner_text()

    with scopes_disabled():
        promise = Promise.objects.get(customer=customer)
        plan = Plan.objects.get(customer=customer)
    assert (promise.state, promise.source, plan.state, plan.source) == ("open", "desk", "active", "desk")

    # The pages of changing the plan and cancelling the promise (a refused change first).
    page.goto(f"/desk/customers/{customer.pk}/plans/{plan.pk}/change/")
    page.fill("#change-count", "9")
    submit(page, "main form button[type=submit]")
    assert page.locator("#change-count-error").inner_text() == "Choose at most 6 installments."
    look(page, "plan-change-refused")
    page.goto(f"/desk/customers/{customer.pk}/promises/{promise.pk}/cancel/")
    look(page, "promise-cancel")
    assert too_wide == {}
    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)
