"""The creditor-client portal in a real browser: a creditor client finds an account, reads
its call attempts and letter dates, adds a note, places a hold, reports a payment it received
directly and writes to the collector; then the collector sees the note, the hold and the
message on the desk's customer page, answers the message from the desk, and confirms the
reported payment (applied to the debtor's invoice, the ledger clean); the client reads the
answer. Every page passes axe and nothing scrolls sideways at 375 px."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from playwright.sync_api import Page

from factories import Users, assert_ledger_clean, issue_invoice, make_contact, make_customer, make_member
from openar.billing.models import Invoice
from openar.client.models import DirectPaymentReport
from openar.customers.models import Activity, Customer, Hold
from openar.customers.services import activity_record
from openar.notifications.models import Message, Thread
from openar.payments.models import Payment
from openar.tenants.models import Creditor, Organization, Role

from .conftest import ARTIFACTS
from .test_mfa_browser import submit
from .test_people_browser import sign_in
from .test_portal_browser import WIDER_THAN_VIEWPORT, run_axe

pytestmark = pytest.mark.browser

NewPage = Callable[..., Page]


@pytest.mark.parametrize("width", [375, 1280])
def test_a_creditor_client_follows_an_account_and_the_collector_sees_it(
    new_page: NewPage,
    users: Users,
    agency: Organization,
    agency_clients: tuple[Creditor, Creditor],
    width: int,
) -> None:
    city_water, mercy = agency_clients
    today = agency.today()
    collector = make_member(agency, Role.COLLECTOR, "casey@northwind.example")
    with scope(organization=agency):
        Creditor.objects.filter(pk=city_water.pk).update(commission_rate=Decimal("0.2000"))
        pat = make_customer(city_water, "CW-100", name="Pat Jones", email="pat@jones.example")
        make_customer(city_water, "CW-200", name="Lee Chan")
        make_customer(mercy, "MH-100", name="Sam Rivers")
        Customer.objects.filter(pk=pat.pk).update(assigned_collector=collector, placed_at=timezone.now())
        make_contact(pat, "Pat Jones", "pat.jones@home.example")
    issue_invoice(pat, "CW-INV-1", "240.00", due_date=today - datetime.timedelta(days=45))
    with scope(organization=agency):
        call = activity_record(
            customer=pat,
            kind=Activity.Kind.CALL,
            summary="Called the home number",
            visibility=Activity.Visibility.CREDITOR,
            actor=collector,
            occurred_at=timezone.now() - datetime.timedelta(days=1),
        )
        Activity.objects.filter(pk=call.pk).update(
            outcome=Activity.Outcome.NO_ANSWER, next_action_date=today + datetime.timedelta(days=2)
        )
        activity_record(
            customer=pat,
            kind=Activity.Kind.LETTER,
            summary="First demand letter mailed",
            visibility=Activity.Visibility.CREDITOR,
            occurred_at=datetime.datetime(2025, 6, 2, 15, tzinfo=datetime.UTC),
        )
        activity_record(
            customer=pat,
            kind=Activity.Kind.NOTE,
            summary="Staff only: skip-trace pending",
            visibility=Activity.Visibility.INTERNAL,
        )
    axe = Axe()
    findings: list[str] = []
    too_wide: dict[str, str] = {}
    ARTIFACTS.mkdir(exist_ok=True)

    def look(page: Page, where: str) -> None:
        findings.extend(run_axe(axe, page, where, width))
        page.screenshot(path=str(ARTIFACTS / f"client-{where}-{width}.png"), full_page=True)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if width == 375 and scroll > width:
            too_wide[where] = f"{scroll}px: {page.evaluate(WIDER_THAN_VIEWPORT)}"

    # The creditor client signs in, lands on its accounts and finds Pat.
    page = new_page(width, 900)
    sign_in(page, users.creditor.email)
    assert page.url.endswith("/client/")
    main = page.locator("main").inner_text()
    assert "Pat Jones" in main and "Lee Chan" in main and "Sam Rivers" not in main
    look(page, "accounts")
    page.fill("#q", "CW-100")
    submit(page, "form[role=search] button[type=submit]")
    assert "Lee Chan" not in page.locator("main").inner_text()
    submit(page, "main table >> text=Pat Jones")

    # Its call attempts and letter dates, and no staff-only note.
    timeline = page.locator("#timeline").inner_text()
    next_try = (today + datetime.timedelta(days=2)).strftime("%-d %b %Y")
    assert f"Call attempt · No answer · next action {next_try}" in timeline
    assert "Called the home number" in timeline
    assert "2 Jun 2025" in timeline and "First demand letter mailed" in timeline
    assert "skip-trace" not in page.locator("main").inner_text()
    look(page, "account")

    # A note for the collectors.
    page.get_by_label("Note for the collectors").fill("Debtor phoned us: paying on Friday.")
    submit(page, "#note button[type=submit]")
    assert "Your note is on the account's timeline" in page.locator(".flash").inner_text()
    assert "Debtor phoned us: paying on Friday." in page.locator("#timeline").inner_text()

    # A hold until a date.
    until = today + datetime.timedelta(days=14)
    holds = page.locator("#holds")
    if holds.locator("details[open]").count() == 0:
        holds.locator("summary", has_text="Place a hold").click()
    holds.get_by_label("Reason").fill("Debtor is in hospital")
    holds.get_by_label("Until (optional)").fill(until.isoformat())
    submit(page, "#holds button[type=submit]")
    assert "is on hold until" in page.locator(".flash").inner_text()
    assert "Debtor is in hospital" in page.locator("#holds").inner_text()
    look(page, "account-on-hold")

    # A payment the debtor made to the client directly, from the account's page.
    submit(page, "main .page__head a:has-text('Report a payment')")
    assert "The account owes $240.00" in page.locator("main").inner_text()
    page.get_by_label("Amount received (USD)").fill("90.00")
    page.get_by_label("How it was paid").select_option("cheque")
    page.get_by_label("Reference").fill("CHQ 5521")
    look(page, "payment-report")
    submit(page, "main form button[type=submit]")
    assert "Payment of $90.00 reported" in page.locator(".flash").inner_text()
    reported = page.locator("#reported").inner_text()
    assert "Waiting for confirmation" in reported and "commission $18.00, you keep $72.00" in reported

    # A message to the collector.
    page.goto(f"/client/accounts/{pat.pk}/")
    submit(page, "main .page__head a:has-text('Message the collector')")
    page.get_by_label("Subject").fill("Settlement offer")
    page.get_by_label("Message").fill("Would the debtor settle for 80%?")
    submit(page, "main form button[type=submit]")
    assert "Sent to the collectors" in page.locator(".flash").inner_text()
    client_thread_url = page.url.split("#")[0]

    with scopes_disabled():
        hold = Hold.objects.get(customer=pat)
        note = Activity.objects.get(customer=pat, kind=Activity.Kind.NOTE, actor=users.creditor)
        report = DirectPaymentReport.objects.get(customer=pat)
        thread = Thread.creditor_threads.get(customer=pat)
    assert hold.placed_by_id == users.creditor.pk and note.staff_unread
    assert (report.state, report.amount, report.reference) == ("reported", Decimal("90.00"), "CHQ 5521")
    assert thread.unread_by_staff == 1

    # The collector sees the note, the hold and the message on the customer's page.
    desk = new_page(width, 900)
    sign_in(desk, collector.email)
    desk.goto(f"/desk/customers/{pat.pk}/")
    assert "Debtor is in hospital" in desk.locator("#collection").inner_text()
    assert "Debtor phoned us: paying on Friday." in desk.locator("main").inner_text()
    card = desk.locator("#creditor-messages").inner_text()
    assert "Messages with City Water Utility" in card and "Settlement offer" in card and "1 unread" in card
    nav = desk.locator("nav[aria-label=Desk]").inner_text()
    assert "Client messages (1)" in nav and "Client payments (1)" in nav
    look(desk, "desk-customer")

    # ... and answers the message from the desk.
    submit(desk, "#creditor-messages a:has-text('Settlement offer')")
    assert "Would the debtor settle for 80%?" in desk.locator("main").inner_text()
    assert "Client messages (1)" not in desk.locator("nav[aria-label=Desk]").inner_text()  # read now
    desk.get_by_label("Your answer").fill("They offered 70%; I will call back Friday.")
    look(desk, "desk-creditor-thread")
    submit(desk, "#reply button[type=submit]")
    assert (
        "Your answer is in City Water Utility's portal; told by email: client@citywater.example."
        in desk.locator(".flash").inner_text()
    )
    assert "They offered 70%; I will call back Friday." in desk.locator("main").inner_text()

    # ... then confirms the reported payment, applied to the oldest invoice.
    submit(desk, "nav[aria-label=Desk] >> text=Client payments")
    queue = desk.locator("main").inner_text()
    assert "1 waiting." in queue and "Commission 20%: $18.00 owed by the client" in queue
    look(desk, "desk-client-payments")
    submit(desk, "main .payment-row a")
    assert desk.get_by_label("To the oldest open invoices first").is_checked()
    submit(desk, "main form button:has-text('Confirm the payment')")
    assert (
        "Confirmed: $90.00 recorded as a payment made directly to City Water Utility"
        in desk.locator(".flash").inner_text()
    )
    assert "CW-INV-1: $90.00" in desk.locator("main").inner_text()
    look(desk, "desk-client-payment-confirmed")
    with scopes_disabled():
        report.refresh_from_db()
        assert report.state == "confirmed" and report.payment is not None
        payment = Payment.objects.get(pk=report.payment.pk)
        assert (payment.amount, payment.state) == (Decimal("90.00"), "succeeded")
        assert Invoice.objects.get(customer=pat, number="CW-INV-1").open_amount == Decimal("150.00")
        answer = Message.objects.get(thread=thread, direction="out")
        assert answer.created_by_id == collector.pk and answer.read_at is None
    assert_ledger_clean(agency.pk)

    # The client reads the answer, and sees the payment confirmed.
    page.goto(client_thread_url)
    assert "They offered 70%; I will call back Friday." in page.locator("main").inner_text()
    look(page, "client-thread-answered")
    page.goto(f"/client/accounts/{pat.pk}/payments/report/")
    assert "Confirmed" in page.locator("#reported").inner_text()
    assert "The account owes $150.00" in page.locator("main").inner_text()

    assert too_wide == {}
    assert not findings, f"{len(findings)} axe violation(s):\n" + "\n".join(findings)
