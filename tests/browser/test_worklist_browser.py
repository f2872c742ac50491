"""The collector's worklist in a real browser: the collector opens the worklist, logs a call
with "no answer" in two clicks, finds the callback for tomorrow on the callbacks tab, and
works the list from the keyboard (? shows the shortcuts, j moves to a row and the row is
announced, c opens its call form, a never posts, keys on a control outside the rows do
nothing, the single-key shortcuts can be switched off and stay off, Enter opens the
account). Every page passes axe and nothing scrolls sideways at 375 px."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from django_scopes import scope, scopes_disabled
from playwright.sync_api import Page, expect

from factories import Users
from openar.customers.models import Activity, Customer, Task

from .conftest import ARTIFACTS, Account
from .test_mfa_browser import submit
from .test_people_browser import sign_in
from .test_portal_browser import WIDER_THAN_VIEWPORT, run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]


@pytest.mark.parametrize("width", [375, 1280])
def test_a_collector_logs_a_call_in_two_clicks_and_works_the_list_from_the_keyboard(
    new_page: NewPage, users: Users, account: Account, customer_2: Customer, width: int
) -> None:
    customer = account.customer
    with scope(organization=customer.organization):
        Customer.objects.filter(pk__in=[customer.pk, customer_2.pk]).update(
            assigned_collector=users.collector
        )
    axe = Axe()
    findings: list[str] = []
    too_wide: dict[str, str] = {}
    ARTIFACTS.mkdir(exist_ok=True)

    def look(page: Page, where: str) -> None:
        findings.extend(run_axe(axe, page, where, width))
        page.screenshot(path=str(ARTIFACTS / f"desk-worklist-{where}-{width}.png"), full_page=True)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if width == 375 and scroll > width:
            too_wide[where] = f"{scroll}px: {page.evaluate(WIDER_THAN_VIEWPORT)}"

    page = new_page(width, 900)
    sign_in(page, users.collector.email)
    page.goto("/desk/")
    submit(page, "nav[aria-label=Desk] >> text=Worklist")
    assert page.url.endswith("/desk/worklist/")
    rows = page.locator("[data-worklist-row]")
    assert rows.count() == 1  # the other customer's invoice is due today: nothing to work yet
    assert customer_2.name not in page.locator("main").inner_text()
    first = rows.nth(0)
    assert customer.name in first.inner_text() and "Past due" in first.inner_text()
    look(page, "list")

    # Two clicks: "Log call", then "No answer".
    first.locator("summary", has_text="Log call").click()
    look(page, "call-form")
    submit(page, f"#wl-{customer.pk} button[value=no_answer]")
    flash = page.locator(".flash").inner_text()
    tomorrow = account.today + datetime.timedelta(days=1)
    assert f"Call logged on {customer.name}: no answer; callback on {tomorrow:%a %d %b %Y}" in flash
    assert page.url.endswith("/desk/worklist/")
    with scopes_disabled():
        call = Activity.objects.get(customer=customer, kind=Activity.Kind.CALL)
        task = Task.objects.get(customer=customer, kind=Task.Kind.CALLBACK, done_at__isnull=True)
    assert (call.outcome, call.visibility, task.due_date) == ("no_answer", "creditor", tomorrow)

    submit(page, "nav[aria-label='Worklist and callbacks'] >> text=Callbacks")
    upcoming = page.locator("#callbacks-upcoming").inner_text()
    assert customer.name in upcoming and f"{tomorrow:%a} {tomorrow.day} {tomorrow:%b %Y}" in upcoming
    look(page, "callbacks")

    # The keyboard: ? shows the shortcuts, j moves to the first row, c opens its call form.
    page.goto("/desk/worklist/")
    page.keyboard.press("?")
    assert page.locator("#worklist-keys").get_attribute("open") is not None
    assert page.locator("#worklist-keys").inner_text().count("log a call") == 1
    page.keyboard.press("Escape")
    page.locator("h1").click()
    page.keyboard.press("j")
    focused = page.evaluate("document.activeElement.id")
    assert focused == page.locator("[data-worklist-row]").nth(0).get_attribute("id")
    page.keyboard.press("c")
    details = page.locator(f"#{focused} details[data-call]")
    assert details.get_attribute("open") is not None
    assert page.evaluate("document.activeElement.value") == "spoke"  # the first outcome button
    look(page, "keyboard-call-form")
    page.keyboard.press("Escape")  # back to the row, the form closed
    assert page.evaluate("document.activeElement.id") == focused
    assert details.get_attribute("open") is None
    # The current row is announced in a polite live region.
    live = page.locator("#worklist-live")
    assert live.get_attribute("aria-live") == "polite"
    expect(live).to_contain_text(f"Account 1 of 1: {customer.name}")
    # "a" never posts: the account is the collector's already, so it only says so.
    page.keyboard.press("a")
    expect(live).to_have_text("This account is yours already.")
    assert page.url.endswith("/desk/worklist/")
    # Keys on a control outside the rows are left alone.
    page.locator("#bulk button[type=submit]").focus()
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.textContent") == "Apply to selected"
    # The single-key shortcuts can be switched off, and stay off in this browser.
    page.locator("#worklist-keys summary").click()
    switch = page.locator("#worklist-keys-on")
    assert switch.is_checked()
    switch.uncheck()
    look(page, "keys-switch")
    page.reload()
    assert not page.locator("#worklist-keys-on").is_checked()
    page.locator(f"#{focused}").focus()
    page.keyboard.press("c")
    assert details.get_attribute("open") is None
    page.keyboard.press("?")
    assert page.locator("#worklist-keys").get_attribute("open") is None
    page.locator("#worklist-keys summary").click()
    page.locator("#worklist-keys-on").check()
    page.locator(f"#{focused}").focus()
    page.keyboard.press("c")
    assert details.get_attribute("open") is not None
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.id") == focused
    page.keyboard.press("Enter")
    page.wait_for_url("**/desk/customers/*/")
    assert "Work this account" in page.locator("main").inner_text()
    look(page, "customer")
    assert too_wide == {}
    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)
