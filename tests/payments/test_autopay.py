"""Saved methods and autopay with the sandbox provider: saving a card or bank account at the
provider's page (step-up first for a sign-in link), the consent kept as it was read,
invoices charged on their due date by the periodic job, failures told and retried on a
schedule, then autopay suspended; bank debits in flight; one payment however many workers
run the job."""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import (
    NOON_ON_TODAY,
    TODAY,
    Users,
    dec,
    fresh,
    in_threads,
    issue_invoice,
    make_contact,
    signed_in,
    text_of,
)
from openar.billing.models import Invoice
from openar.core.models import AuditEvent
from openar.customers.models import Contact, Customer, Hold
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink
from openar.identity.stepup import DONE_KEY
from openar.notifications.models import Message
from openar.payments import autopay as autopay_service
from openar.payments.autopay import MAX_FAILURES, charge_due, consent_text
from openar.payments.models import Autopay, Payment, SavedMethod
from openar.payments.providers import base
from openar.payments.providers.sandbox import SandboxProvider
from openar.payments.sandbox import deliver_due

PAGE = "/portal/autopay/"
CARD_OK = "4242 4242 4242 4242"
CARD_SAVED_DECLINES = "4000 0000 0000 0341"
BANK_OK = "000123456789"
BANK_RETURNED = "000111111113"
Capture = Callable[..., Any]


@pytest.fixture
def payer(users: Users, customer: Customer) -> Contact:
    """The customer's contact, linked to the portal user."""
    return make_contact(customer, "Dana Payables", "dana@bolt.example", user=users.customer)


@pytest.fixture
def client(users: Users, payer: Contact, clock: time_machine.Traveller) -> Client:
    return signed_in(users.customer)


@pytest.fixture
def invoices(customer: Customer, clock: time_machine.Traveller) -> dict[str, Invoice]:
    return {
        "late": issue_invoice(customer, "INV-1", "100.00", due_date=TODAY - datetime.timedelta(days=10)),
        "today": issue_invoice(customer, "INV-2", "50.00", due_date=TODAY),
        "later": issue_invoice(customer, "INV-3", "80.00", due_date=TODAY + datetime.timedelta(days=20)),
    }


def save_method(client: Client, number: str = CARD_OK, kind: str = "card") -> SavedMethod:
    """Press "Save a card" (or bank account), type it at the sandbox's page, come back."""
    started = client.post(PAGE, {"action": "save", "kind": kind})
    assert started.status_code == 302, text_of(started.content)
    path = urlsplit(started["Location"]).path
    assert re.fullmatch(r"/sandbox/setup/sbs_[0-9a-f]{24}/", path), path
    assert client.get(path).status_code == 200
    if kind == "ach":
        typed = {"routing": "110000000", "account": number, "holder": "Bolt Hardware"}
    else:
        typed = {"number": number, "expiry": "12/39", "cvc": "123", "name": "Dana Payables"}
    saved = client.post(path, typed)
    assert saved.status_code == 302, text_of(saved.content)
    back = client.get(urlsplit(saved["Location"]).path)
    assert back.status_code == 200, text_of(back.content)
    assert "is saved." in text_of(back.content)
    with scopes_disabled():
        return SavedMethod.objects.order_by("-pk").first()  # type: ignore[return-value]


def turn_on(client: Client, method: SavedMethod) -> Any:
    page = client.get(f"{PAGE}?method={method.pk}")
    terms = re.search(r'<input type="hidden" name="terms" value="([^"]*)">', page.content.decode())
    assert terms is not None, text_of(page.content)
    text = terms.group(1).replace("&#x27;", "'").replace("&amp;", "&").replace("&quot;", '"')
    return client.post(PAGE, {"action": "enable", "method_id": method.pk, "terms": text, "consent": "yes"})


def autopay_of(customer: Customer) -> Autopay:
    with scopes_disabled():
        return Autopay.objects.get(customer=customer)


def payments_of(customer: Customer) -> list[Payment]:
    with scopes_disabled():
        return list(Payment.objects.filter(customer=customer).order_by("pk"))


def emails_to(address: str) -> list[Any]:
    return [m for m in mail.outbox if address in m.to]


def run(capture: Capture) -> list[autopay_service.Outcome]:
    with capture(execute=True):
        return charge_due()


# --- saving and consent ------------------------------------------------------------------------


def test_saving_a_card_and_turning_autopay_on_keeps_the_consent_as_read(
    client: Client,
    customer: Customer,
    payer: Contact,
    invoices: dict[str, Invoice],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    assert "Off" in text_of(client.get(PAGE).content)
    method = save_method(client)
    assert (method.label, method.method, method.customer_id) == ("Visa ending 4242", "card", customer.pk)
    assert method.expires == datetime.date(2039, 12, 31)
    with django_capture_on_commit_callbacks(execute=True):
        enabled = turn_on(client, method)
        assert enabled.status_code == 302, text_of(enabled.content)

    autopay = autopay_of(customer)
    with scope(organization=customer.organization):
        expected = consent_text(customer, method)
    assert autopay.state == Autopay.State.ACTIVE and autopay.method_id == method.pk
    assert autopay.consent_text == expected and "Acme Supplies" in expected and "Visa ending 4242" in expected
    assert autopay.consent_ip == "127.0.0.1" and autopay.consent_contact_id == payer.pk
    page = text_of(client.get(PAGE).content)
    assert "Your Visa ending 4242 is charged for each invoice on its due date" in page
    with scopes_disabled():
        audit = AuditEvent.objects.filter(action="openar.autopay.enabled").get()
    assert audit.data["consent_text"] == expected
    confirmation = emails_to("dana@bolt.example")
    assert confirmation and "Automatic payments are on" in confirmation[-1].subject
    assert expected in confirmation[-1].body
    assert not payments_of(customer)  # nothing is charged when saving or agreeing


def test_consent_must_be_ticked_and_the_text_must_be_the_one_shown(
    client: Client, customer: Customer, invoices: dict[str, Invoice]
) -> None:
    method = save_method(client)
    unticked = client.post(PAGE, {"action": "enable", "method_id": method.pk, "terms": "whatever"})
    altered = client.post(
        PAGE, {"action": "enable", "method_id": method.pk, "terms": "I agree to nothing", "consent": "yes"}
    )

    assert unticked.status_code == 400
    assert "Tick the box to agree to the terms above." in text_of(unticked.content)
    assert altered.status_code == 400
    assert "The terms changed while you were reading them" in text_of(altered.content)
    with scopes_disabled():
        assert not Autopay.objects.exists()


def test_a_card_that_cannot_be_saved_is_refused_at_the_providers_page(client: Client) -> None:
    started = client.post(PAGE, {"action": "save", "kind": "card"})
    refused = client.post(
        urlsplit(started["Location"]).path,
        {"number": "4000 0000 0000 0002", "expiry": "12/39", "cvc": "123", "name": "Dana"},
    )
    assert refused.status_code == 400
    assert "Your card was declined." in text_of(refused.content)
    with scopes_disabled():
        assert not SavedMethod.objects.exists()


def test_coming_back_twice_saves_the_method_once(client: Client) -> None:
    started = client.post(PAGE, {"action": "save", "kind": "card"})
    path = urlsplit(started["Location"]).path
    saved = client.post(path, {"number": CARD_OK, "expiry": "12/39", "cvc": "123", "name": "Dana"})
    back = urlsplit(saved["Location"]).path
    client.get(back)
    client.get(back)
    assert client.get(path).status_code == 302  # the provider's page is used up
    with scopes_disabled():
        assert SavedMethod.objects.count() == 1


def test_a_sign_in_link_must_step_up_before_saving_or_agreeing(
    payer: Contact, invoices: dict[str, Invoice]
) -> None:
    with scope(organization=payer.customer.organization):
        issued = magic_link_create(contact=payer, scope_=MagicLink.Scope.PAST_DUE)
    client = Client()
    client.get(f"/l/{issued.token}/")
    assert client.post("/l/confirm/").status_code == 302

    asked = client.post(PAGE, {"action": "save", "kind": "card"})
    assert asked.status_code == 302 and asked["Location"].startswith("/portal/step-up/")
    session = client.session
    session[DONE_KEY] = {"contact": payer.pk, "at": time.time()}
    session.save()
    method = save_method(client)
    assert turn_on(client, method).status_code == 302
    assert autopay_of(payer.customer).consent_contact_id == payer.pk


def test_turning_off_and_removing_the_method(
    client: Client,
    customer: Customer,
    invoices: dict[str, Invoice],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    method = save_method(client)
    turn_on(client, method)
    assert client.post(PAGE, {"action": "disable"}).status_code == 302
    assert autopay_of(customer).state == Autopay.State.OFF
    turn_on(client, method)
    assert autopay_of(customer).state == Autopay.State.ACTIVE
    assert client.post(PAGE, {"action": "remove", "method_id": method.pk}).status_code == 302

    with scopes_disabled():
        assert SavedMethod.objects.get(pk=method.pk).removed_at is not None
    assert autopay_of(customer).state == Autopay.State.OFF
    assert run(django_capture_on_commit_callbacks) == []
    assert not payments_of(customer)


def test_staff_viewing_as_the_customer_cannot_change_autopay(
    users: Users, customer: Customer, invoices: dict[str, Invoice]
) -> None:
    staff = signed_in(users.collector)
    assert staff.post(f"/desk/customers/{customer.pk}/view-as/").status_code == 302
    assert staff.get(PAGE).status_code == 200
    refused = staff.post(PAGE, {"action": "save", "kind": "card"})
    assert refused.status_code == 403


def test_another_customers_setup_is_a_404(client: Client, customer_2: Customer, users: Users) -> None:
    make_contact(customer_2, "Other", "other@anvil.example")
    started = client.post(PAGE, {"action": "save", "kind": "card"})
    assert started.status_code == 302
    with scopes_disabled():
        from openar.payments.models import MethodSetup

        setup = MethodSetup.objects.get()
    other = Client()
    with scope(organization=customer_2.organization):
        contact = Contact.objects.get(customer=customer_2)
        issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.ACCOUNT)
    other.get(f"/l/{issued.token}/")
    other.post("/l/confirm/")
    assert other.get(f"/portal/autopay/setup/{setup.pk}/").status_code == 404


# --- charging -----------------------------------------------------------------------------------


@pytest.fixture
def on_autopay(
    client: Client, customer: Customer, invoices: dict[str, Invoice]
) -> Callable[..., SavedMethod]:
    def make(number: str = CARD_OK, kind: str = "card") -> SavedMethod:
        method = save_method(client, number, kind)
        assert turn_on(client, method).status_code == 302
        mail.outbox.clear()
        return method

    return make


def test_invoices_are_charged_on_their_due_date_once(
    on_autopay: Callable[..., SavedMethod],
    customer: Customer,
    invoices: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    method = on_autopay()
    first = run(django_capture_on_commit_callbacks)
    again = run(django_capture_on_commit_callbacks)

    assert [o.result for o in first] == ["succeeded"]
    assert [o.result for o in again] == ["skipped: today's payment is succeeded"]
    (payment,) = payments_of(customer)
    assert (payment.state, payment.amount, payment.saved_method_id) == ("succeeded", dec("150.00"), method.pk)
    assert fresh(invoices["late"]).open_amount == 0 and fresh(invoices["today"]).open_amount == 0
    assert fresh(invoices["later"]).open_amount == dec("80.00")
    receipts = [m for m in emails_to("dana@bolt.example") if m.subject.startswith("Receipt")]
    assert len(receipts) == 1

    clock.move_to(NOON_ON_TODAY + datetime.timedelta(days=10))
    assert [o.result for o in run(django_capture_on_commit_callbacks)] == ["nothing due"]
    clock.move_to(NOON_ON_TODAY + datetime.timedelta(days=20))
    assert [o.result for o in run(django_capture_on_commit_callbacks)] == ["succeeded"]
    assert fresh(invoices["later"]).open_amount == 0
    assert len(payments_of(customer)) == 2


def test_a_failing_card_is_told_retried_on_schedule_then_autopay_is_suspended(
    on_autopay: Callable[..., SavedMethod],
    customer: Customer,
    users: Users,
    invoices: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    customer.assigned_collector = users.collector
    customer.save(update_fields=["assigned_collector"])
    on_autopay(CARD_SAVED_DECLINES)
    schedule = []
    for attempt in range(1, MAX_FAILURES + 1):
        assert [o.result for o in run(django_capture_on_commit_callbacks)] == ["failed"], attempt
        autopay = autopay_of(customer)
        assert autopay.failures == attempt and autopay.last_failure == "Your card was declined."
        assert run(django_capture_on_commit_callbacks) == []  # not again before the retry is due
        schedule.append(autopay.next_attempt_at)
        if autopay.next_attempt_at is not None:
            clock.move_to(autopay.next_attempt_at)

    now = NOON_ON_TODAY
    gaps = [(at - now).days for at in schedule[:-1] if at is not None]
    assert [gaps[0], gaps[1] - gaps[0], gaps[2] - gaps[1]] == [1, 3, 7]
    autopay = autopay_of(customer)
    assert autopay.state == Autopay.State.SUSPENDED and autopay.next_attempt_at is None
    assert [p.state for p in payments_of(customer)] == ["failed"] * MAX_FAILURES
    assert fresh(invoices["late"]).open_amount == dec("100.00")  # a failed charge never pays
    told = [m.subject for m in emails_to("dana@bolt.example")]
    assert told.count("Your automatic payment of $150.00 did not go through") == MAX_FAILURES
    ar = emails_to("collector@acme.example")
    assert len(ar) == MAX_FAILURES and "Autopay failed: Bolt Hardware" in ar[0].subject
    with scopes_disabled():
        last = Message.objects.filter(customer=customer).order_by("-pk").first()
    assert last is not None and "paused after 4 failed attempts" in last.body_text
    clock.move_to(NOON_ON_TODAY + datetime.timedelta(days=30))
    assert run(django_capture_on_commit_callbacks) == []


def test_paying_by_hand_after_a_failure_stops_the_retries(
    on_autopay: Callable[..., SavedMethod],
    customer: Customer,
    invoices: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    from factories import record_payment

    on_autopay(CARD_SAVED_DECLINES)
    run(django_capture_on_commit_callbacks)
    record_payment(
        customer, "150.00", allocations=[(invoices["late"], "100.00"), (invoices["today"], "50.00")]
    )
    clock.move_to(autopay_of(customer).next_attempt_at)
    assert [o.result for o in run(django_capture_on_commit_callbacks)] == ["nothing due"]
    autopay = autopay_of(customer)
    assert (autopay.failures, autopay.next_attempt_at) == (0, None)


def test_a_bank_debit_is_processing_until_it_settles_and_is_not_charged_twice(
    on_autopay: Callable[..., SavedMethod],
    customer: Customer,
    invoices: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    on_autopay(BANK_OK, "ach")
    assert [o.result for o in run(django_capture_on_commit_callbacks)] == ["processing"]
    clock.move_to(NOON_ON_TODAY + datetime.timedelta(days=1))
    assert [o.result for o in run(django_capture_on_commit_callbacks)] == ["nothing due"]
    assert fresh(invoices["late"]).open_amount == dec("100.00")

    clock.move_to(NOON_ON_TODAY + datetime.timedelta(days=3, minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due()
    (payment,) = payments_of(customer)
    assert payment.state == "succeeded"
    assert fresh(invoices["late"]).open_amount == 0 and fresh(invoices["today"]).open_amount == 0


def test_a_returned_bank_debit_counts_as_a_failure(
    on_autopay: Callable[..., SavedMethod],
    customer: Customer,
    invoices: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    on_autopay(BANK_RETURNED, "ach")
    run(django_capture_on_commit_callbacks)
    clock.move_to(NOON_ON_TODAY + datetime.timedelta(days=5, minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due()
    (payment,) = payments_of(customer)
    assert payment.state == "returned"
    assert fresh(invoices["late"]).open_amount == dec("100.00")
    autopay = autopay_of(customer)
    assert autopay.failures == 1 and "insufficient funds" in autopay.last_failure
    assert any("did not go through" in m.subject for m in emails_to("dana@bolt.example"))


def test_a_hold_stops_autopay(
    on_autopay: Callable[..., SavedMethod],
    customer: Customer,
    invoices: dict[str, Invoice],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    on_autopay()
    with scope(organization=customer.organization):
        Hold.objects.create(
            organization=customer.organization,
            customer=customer,
            invoice=invoices["late"],
            reason="Checking the delivery",
            placed_at=NOON_ON_TODAY,
        )
    run(django_capture_on_commit_callbacks)
    (payment,) = payments_of(customer)
    assert payment.amount == dec("50.00")  # only the invoice not on hold
    with scope(organization=customer.organization):
        Hold.objects.create(
            organization=customer.organization,
            customer=customer,
            reason="Account review",
            placed_at=NOON_ON_TODAY,
        )
        issue_invoice(customer, "INV-4", "10.00", due_date=TODAY - datetime.timedelta(days=1))
    with time_machine.travel(NOON_ON_TODAY + datetime.timedelta(days=1), tick=False):
        assert [o.result for o in run(django_capture_on_commit_callbacks)] == ["nothing due"]


def test_an_unreachable_provider_charges_the_same_payment_later_with_the_same_key(
    on_autopay: Callable[..., SavedMethod],
    customer: Customer,
    invoices: dict[str, Invoice],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    on_autopay()
    keys: list[str] = []
    real = SandboxProvider.charge_saved

    def down(self: SandboxProvider, request: base.ChargeRequest, credentials: object) -> base.Charge:
        keys.append(request.idempotency_key)
        raise base.ProviderUnavailable("down", retryable=True)

    monkeypatch.setattr(SandboxProvider, "charge_saved", down)
    assert [o.result for o in run(django_capture_on_commit_callbacks)] == ["retry later"]
    assert autopay_of(customer).failures == 0  # the provider's trouble is not the customer's
    monkeypatch.setattr(SandboxProvider, "charge_saved", real)
    assert [o.result for o in run(django_capture_on_commit_callbacks)] == ["succeeded"]
    (payment,) = payments_of(customer)
    assert keys == [str(payment.idempotency_key)] and payment.state == "succeeded"


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_workers_running_the_job_together_make_one_payment(
    on_autopay: Callable[..., SavedMethod], customer: Customer, invoices: dict[str, Invoice]
) -> None:
    on_autopay()
    results = in_threads(8, lambda n: charge_due())
    assert not [r for r in results if isinstance(r, Exception)], results
    (payment,) = payments_of(customer)
    assert payment.state == "succeeded" and payment.amount == dec("150.00")
    assert fresh(invoices["late"]).open_amount == 0


def test_credit_on_the_account_is_used_before_charging(
    on_autopay: Callable[..., SavedMethod],
    customer: Customer,
    invoices: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    from factories import record_payment

    on_autopay()
    record_payment(customer, "90.00", allocations=[])  # a cheque applied to nothing: credit
    assert [o.result for o in run(django_capture_on_commit_callbacks)] == ["succeeded"]
    charged = [p for p in payments_of(customer) if p.saved_method_id]
    assert [p.amount for p in charged] == [dec("60.00")]
    assert fresh(invoices["late"]).open_amount == 0 and fresh(invoices["today"]).open_amount == 0

    record_payment(customer, "80.00", allocations=[])
    clock.move_to(NOON_ON_TODAY + datetime.timedelta(days=20))
    assert [o.result for o in run(django_capture_on_commit_callbacks)] == ["paid by credit"]
    assert fresh(invoices["later"]).open_amount == 0
    assert len([p for p in payments_of(customer) if p.saved_method_id]) == 1


def test_the_desk_shows_autopay_and_staff_can_turn_it_off_with_a_reason(
    on_autopay: Callable[..., SavedMethod],
    customer: Customer,
    users: Users,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    on_autopay()
    staff = signed_in(users.collector)
    page = text_of(staff.get(f"/desk/customers/{customer.pk}/").content)
    assert "Autopay On Visa ending 4242" in page and "by Dana Payables" in page
    assert "I authorize Acme Supplies to charge my Visa ending 4242" in page

    no_reason = staff.post(f"/desk/customers/{customer.pk}/autopay/off/", {"reason": " "}, follow=True)
    assert "Say why automatic payments are turned off" in text_of(no_reason.content)
    assert autopay_of(customer).state == Autopay.State.ACTIVE
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(f"/desk/customers/{customer.pk}/autopay/off/", {"reason": "Asked by phone"})
    assert autopay_of(customer).state == Autopay.State.OFF
    told = emails_to("dana@bolt.example")
    assert told and "Automatic payments turned off: Asked by phone" in told[-1].body
    assert signed_in(users.customer).get(PAGE).status_code == 200
