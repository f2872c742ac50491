"""Every page this round of work added that no other browser test walks: the portal's
messages, the desk's inbox and reminder editors, the unsubscribe page, the staff sign-in link
and the pay page without a provider. Each passes axe and does not scroll sideways, at a
375 px phone width and at 1280 px."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from django_scopes import scope
from playwright.sync_api import Page
from pytest_django.fixtures import Settings

from factories import PASSWORD, Users, issue_invoice, make_contact
from openar.customers.models import Customer
from openar.identity.magic import staff_magic_link_create
from openar.notifications.models import MessageTemplate, Thread
from openar.notifications.services import message_receive
from openar.reminders.engine import unsubscribe_url
from openar.reminders.models import DunningPolicy, DunningStep
from openar.tenants.models import Membership, Organization
from openar.tenants.services import policy_update

from .conftest import ARTIFACTS
from .test_mfa_browser import submit
from .test_portal_browser import WIDER_THAN_VIEWPORT, run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]


def sign_in(page: Page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    submit(page)


def check(page: Page, axe: Axe, pages: dict[str, str], width: int) -> tuple[list[str], dict[str, str]]:
    findings: list[str] = []
    too_wide: dict[str, str] = {}
    for where, path in pages.items():
        response = page.goto(path)
        assert response is not None and response.status in (200, 503), (path, response and response.status)
        findings += run_axe(axe, page, f"{where} ({path})", width)
        page.screenshot(path=str(ARTIFACTS / f"page-{where}-{width}.png"), full_page=True)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if scroll > width:
            too_wide[where] = f"{scroll}px: {page.evaluate(WIDER_THAN_VIEWPORT)}"
    return findings, too_wide


@pytest.mark.parametrize("width", [375, 1280])
def test_the_added_pages_pass_axe_and_fit(
    new_page: NewPage,
    users: Users,
    supplier: Organization,
    customer: Customer,
    settings: Settings,
    width: int,
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    contact = make_contact(customer, "Dana Payables", "dana@bolt.example")
    issue_invoice(customer, "INV-B1", "150.00", due_date=supplier.today() - datetime.timedelta(days=9))
    with scope(organization=supplier):
        message_receive(
            customer=customer,
            channel="portal",
            body="Could you send the proof of delivery for INV-B1, please?",
            subject="Proof of delivery",
            contact=contact,
        )
        thread = Thread.objects.get()
        template = MessageTemplate.objects.get(key="reminder-friendly", channel="email", language="en")
        policy = DunningPolicy.objects.get(segment="")
        step = DunningStep.objects.filter(policy=policy).first()
        assert step is not None
        staff_membership = Membership.objects.get(user=users.collector)
    policy_update(organization=supplier, actor=None, changes={"staff_magic_links": True})
    link = staff_magic_link_create(membership=staff_membership)
    axe = Axe()
    findings: list[str] = []
    too_wide: dict[str, str] = {}

    admin = new_page(width, 900)
    sign_in(admin, users.admin.email)
    found, wide = check(
        admin,
        axe,
        {
            "inbox": "/desk/inbox/",
            "inbox-thread": f"/desk/inbox/{thread.pk}/",
            "reminders": "/desk/reminders/",
            "reminder-template": f"/desk/reminders/templates/{template.pk}/",
            "reminder-policy": f"/desk/reminders/policies/{policy.pk}/",
            "reminder-step": f"/desk/reminders/steps/{step.pk}/",
            "reminder-settings": "/desk/reminders/settings/",
        },
        width,
    )
    findings, too_wide = findings + found, too_wide | wide

    portal = new_page(width, 900)
    sign_in(portal, users.customer.email)
    found, wide = check(
        portal,
        axe,
        {
            "portal-messages": "/portal/messages/",
            "portal-thread": f"/portal/messages/{thread.pk}/",
            "portal-new-message": "/portal/messages/new/",
        },
        width,
    )
    findings, too_wide = findings + found, too_wide | wide
    settings.OPENAR_SANDBOX_PAYMENTS = False
    found, wide = check(portal, axe, {"pay-unavailable": "/portal/pay/"}, width)
    findings, too_wide = findings + found, too_wide | wide

    visitor = new_page(width, 900)
    path = "/" + unsubscribe_url(contact, "email").split("/", 3)[3]
    found, wide = check(visitor, axe, {"unsubscribe": path}, width)
    findings, too_wide = findings + found, too_wide | wide
    staff = new_page(width, 900)
    staff.goto("/l/" + link.url.split("/l/", 1)[1])  # the link's path, on the live server
    assert staff.url.endswith("/l/confirm/"), staff.url
    findings += run_axe(axe, staff, "staff link confirm", width)

    assert too_wide == {}
    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)
