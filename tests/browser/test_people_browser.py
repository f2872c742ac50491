"""People in a real browser: an admin whose policy assigns first passwords invites a collector
and reads the first password off the page; the collector signs in with it on a phone, is
held on "change your password" until they choose their own, then reaches the desk and ends
an old session from the sessions page. Every page passes axe and fits 375 px.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from django_scopes import scopes_disabled
from playwright.sync_api import Page

from factories import PASSWORD, Users
from openar.identity.models import User
from openar.tenants.models import Membership, Organization
from openar.tenants.services import policy_update

from .conftest import ARTIFACTS
from .test_mfa_browser import fits, submit
from .test_portal_browser import run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]
OWN_PASSWORD = "my own passphrase for the desk"


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    submit(page)


@pytest.mark.parametrize("width", [375, 1280])
def test_an_assigned_first_password_is_handed_over_and_replaced_at_first_sign_in(
    new_page: NewPage, users: Users, supplier: Organization, width: int
) -> None:
    policy_update(
        organization=supplier, actor=None, changes={"password_mode": "assigned", "mfa_staff": False}
    )
    axe = Axe()
    findings: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)

    admin = new_page(width, 900)
    sign_in(admin, users.admin.email)
    admin.goto("/desk/people/")
    findings += run_axe(axe, admin, "People (/desk/people/)", width)
    admin.click("summary:has-text('Invite a person')")
    admin.fill("#id_email", "robin@acme.example")
    admin.fill("#id_full_name", "Robin Park")
    admin.select_option("#id_role", "collector")
    admin.screenshot(path=str(ARTIFACTS / f"people-{width}.png"), full_page=True)
    submit(admin, "form[action='/desk/people/invite/'] button[type=submit]")
    assert admin.get_by_role("heading", level=1).inner_text() == "Invitation sent"
    assert "To robin@acme.example." in admin.locator("main").inner_text()
    first = admin.input_value("#first-password")
    findings += run_axe(axe, admin, "invitation sent (first password shown)", width)
    admin.screenshot(path=str(ARTIFACTS / f"invitation-sent-{width}.png"), full_page=True)
    if width == 375:
        fits(admin, "the invitation page")

    robin = new_page(width, 900)
    robin.goto("/accounts/login/")
    robin.fill("input[name=login]", "robin@acme.example")
    robin.fill("input[name=password]", first)
    submit(robin)
    assert robin.url.endswith("/accounts/password/change/"), robin.url
    assert "Choose your own password to continue" in robin.locator(".flash").inner_text()
    findings += run_axe(axe, robin, "forced password change", width)
    robin.screenshot(path=str(ARTIFACTS / f"password-change-forced-{width}.png"), full_page=True)
    robin.goto("/desk/")
    assert robin.url.endswith("/accounts/password/change/"), robin.url
    robin.fill("input[name=oldpassword]", first)
    robin.fill("input[name=password1]", OWN_PASSWORD)
    robin.fill("input[name=password2]", OWN_PASSWORD)
    submit(robin)
    robin.goto("/desk/")
    assert robin.url.endswith("/desk/"), robin.url
    assert User.objects.get(email="robin@acme.example").must_change_password is False

    robin.goto("/accounts/sessions/")
    findings += run_axe(axe, robin, "sessions (/accounts/sessions/)", width)
    robin.screenshot(path=str(ARTIFACTS / f"sessions-{width}.png"), full_page=True)
    if width == 375:
        fits(robin, "the sessions page")

    admin.goto("/desk/people/?q=robin")
    assert "Active" in admin.locator("main .people").inner_text()
    with scopes_disabled():
        membership = Membership.objects.get(user__email="robin@acme.example")
    submit(admin, f"form[action='/desk/people/{membership.pk}/deactivate/'] button")
    assert "can no longer sign in" in admin.locator(".flash").inner_text()
    robin.goto("/desk/")
    assert "/accounts/login/" in robin.url, robin.url
    if width == 375:
        fits(admin, "the People page")

    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)
