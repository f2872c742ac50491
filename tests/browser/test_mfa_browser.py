"""MFA in a real browser, at a 375 px phone width: a collector whose organization requires MFA
signs in, is sent to set up an authenticator app, does so, signs out, signs in again with the
password and a code, and lands on the desk. The set-up and code pages pass axe and fit the
screen.

Codes are computed from the secret the page shows, with allauth's own HOTP helper, at the
live server's clock (the same process: time-machine moves both, so the second sign-in uses
the next 30-second period instead of waiting for it).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page
from pytest_django.fixtures import Settings

from factories import PASSWORD, Users
from openar.tenants.models import Organization, policy_for

from .conftest import ARTIFACTS
from .test_portal_browser import WIDER_THAN_VIEWPORT, run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]
WIDTH = 375


def code_for(secret: str) -> str:
    now = datetime.datetime.now(datetime.UTC).timestamp()
    return format_hotp_value(hotp_value(secret, int(now) // 30))


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """Real time, running, starting 5 seconds into a 30-second period (a code never expires
    between reading and typing it)."""
    now = datetime.datetime.now(datetime.UTC)
    start = now.replace(second=5 if now.second < 30 else 35, microsecond=0)
    with time_machine.travel(start, tick=True) as traveller:
        yield traveller


def fits(page: Page, where: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{where} is {width}px wide: {page.evaluate(WIDER_THAN_VIEWPORT)}"


def submit(page: Page, selector: str = "main button[type=submit]") -> None:
    with page.expect_navigation():
        page.click(selector)


def test_a_collector_enrols_signs_out_and_signs_in_with_a_code(
    new_page: NewPage, users: Users, supplier: Organization, settings: Settings, clock: time_machine.Traveller
) -> None:
    settings.OPENAR_MFA_ENFORCE = True
    user = users.collector
    assert policy_for(supplier).mfa_staff  # the default policy requires MFA for staff
    axe = Axe()
    findings: list[str] = []
    page = new_page(WIDTH, 812)

    # Sign in with the password: the desk is not open yet; allauth asks for the password once
    # more before an authenticator is added, then shows the set-up page.
    page.goto("/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    submit(page)
    assert "/accounts/reauthenticate/" in page.url, page.url
    assert "requires two-step verification" in page.locator(".flash").inner_text()  # says why
    page.fill("input[name=password]", PASSWORD)
    submit(page)
    assert page.url.endswith("/accounts/2fa/totp/activate/"), page.url
    assert page.get_by_role("heading", level=1).inner_text() == "Set up two-step verification"
    assert "requires two-step verification" in page.locator("main .notice").inner_text()
    findings += run_axe(axe, page, "TOTP set-up (/accounts/2fa/totp/activate/)", WIDTH)
    fits(page, "the set-up page")
    page.screenshot(path=str(ARTIFACTS / "mfa-activate-375.png"), full_page=True)

    # The key behind "Can't scan the code?", typed as the app would show it.
    page.click("summary")
    secret = page.locator("#totp-secret").inner_text().strip()
    page.fill("#id_code", code_for(secret))
    submit(page)
    assert page.url.endswith("/accounts/2fa/recovery-codes/"), page.url
    assert page.locator("main li code").count() == 10
    with page.expect_navigation():
        page.click("text=Continue")
    assert page.url.endswith("/desk/"), page.url
    assert set(Authenticator.objects.filter(user=user).values_list("type", flat=True)) == {
        "totp",
        "recovery_codes",
    }

    # Sign out, and in again: password, then the code of the next period.
    with page.expect_navigation():
        page.click("header button:has-text('Sign out')")
    assert "/accounts/login/" in page.url, page.url
    clock.shift(datetime.timedelta(seconds=30))
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    submit(page)
    assert page.url.endswith("/accounts/2fa/authenticate/"), page.url
    assert page.get_by_role("heading", level=1).inner_text() == "Two-step verification"
    findings += run_axe(axe, page, "code entry (/accounts/2fa/authenticate/)", WIDTH)
    fits(page, "the code page")
    page.screenshot(path=str(ARTIFACTS / "mfa-authenticate-375.png"), full_page=True)

    page.fill("#id_code", "000000" if code_for(secret) != "000000" else "111111")
    submit(page, "main form[action='/accounts/2fa/authenticate/'] button[type=submit]")
    assert page.url.endswith("/accounts/2fa/authenticate/")
    assert "Incorrect code" in page.locator("#code-error").inner_text()
    findings += run_axe(axe, page, "code entry with an error", WIDTH)

    page.fill("#id_code", code_for(secret))
    submit(page, "main form[action='/accounts/2fa/authenticate/'] button[type=submit]")
    assert page.url.endswith("/desk/"), page.url
    assert page.locator("header a", has_text="Security").count() == 1

    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)
