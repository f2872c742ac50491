"""The provider-event path, beyond the basics of ``test_online``: a refund the provider could
not make (``refund.failed``), a return of part of a payment (a partial dispute), and what the
faster path (one transaction per event) must still guarantee: an event that fails to apply is
kept, nothing of it is applied, and the receipt is queued with the payment or not at all.

Events reach the service as a provider's do: a signed body through
``openar.payments.webhooks.receive`` (the sandbox's signature), or Stripe's and PayPal's own
events, verified by their providers, against the local fakes."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import stripe
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled

from factories import TODAY, assert_ledger_clean, dec, fresh, in_threads, issue_invoice, record_payment
from openar.billing.models import Invoice
from openar.core.crypto import encrypt_text
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Customer
from openar.payments import online, writes
from openar.payments.credit import credit_available
from openar.payments.models import Allocation, Payment, ProviderAccount, ProviderEvent, Refund
from openar.payments.online import choose_lines, payment_refund, payment_start
from openar.payments.providers import base
from openar.payments.providers.base import RefundResult
from openar.payments.providers.paypal import PayPalProvider, TokenCache
from openar.payments.providers.sandbox import SIGNATURE_HEADER, SandboxProvider, event_body, sign
from openar.payments.providers.stripe_provider import StripeProvider
from openar.payments.sandbox import card_outcome
from openar.payments.webhooks import receive
from openar.tenants.models import Organization

from .fake_paypal import AUTH_ALGO, CERT_URL, FakePayPal
from .fake_paypal import sign as paypal_sign
from .fake_stripe import FakeStripe

# --- the sandbox's events --------------------------------------------------------------------


@pytest.fixture
def two(customer: Customer) -> list[Invoice]:
    return [
        issue_invoice(customer, "INV-1", "100.00", due_date=TODAY - datetime.timedelta(days=10)),
        issue_invoice(customer, "INV-2", "50.00", due_date=TODAY - datetime.timedelta(days=5)),
    ]


def start(customer: Customer, invoices: list[Invoice], *, method: str = "card") -> Payment:
    with scope(organization=customer.organization):
        started = payment_start(
            customer=customer,
            lines=choose_lines(customer, TODAY, invoice_ids=[invoice.pk for invoice in invoices]),
            method=method,
            provider_name="sandbox",
            checkout_token=uuid.uuid4().hex,
            return_url="http://testserver/portal/pay/",
            cancel_url="http://testserver/portal/pay/",
        )
    return started.payment


def settled(customer: Customer, invoices: list[Invoice]) -> Payment:
    payment = start(customer, invoices)
    with scope(organization=customer.organization):
        assert card_outcome(payment, "4242 4242 4242 4242") == "paid"
    return current(payment)


def current(payment: Payment) -> Payment:
    with scopes_disabled():
        return Payment.objects.get(pk=payment.pk)


def event(payment: Payment, kind: str, **extra: object) -> dict[str, object]:
    return {
        "id": f"sbe_{uuid.uuid4().hex}",
        "type": kind,
        "payment": payment.provider_payment_id,
        "at": datetime.datetime.now(datetime.UTC).isoformat(),
        "openar_payment_id": str(payment.pk),
        **extra,
    }


def send(organization: Organization, *events: dict[str, object]) -> list[str]:
    body = event_body(list(events))
    return receive("sandbox", organization, body, {SIGNATURE_HEADER: sign(body)})


def open_amounts(invoices: list[Invoice]) -> list[Decimal]:
    return [fresh(invoice).open_amount for invoice in invoices]


def active_allocations(payment: Payment) -> list[tuple[str, Decimal]]:
    with scopes_disabled():
        return [
            (number, amount)
            for number, amount in Allocation.objects.filter(payment=payment, reversed_at__isnull=True)
            .order_by("invoice__number", "pk")
            .values_list("invoice__number", "amount")
        ]


def audit(action: str) -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def timeline(customer: Customer) -> list[Activity]:
    with scopes_disabled():
        return list(Activity.objects.filter(customer=customer).order_by("pk"))


def pending_refund(payment: Payment, amount: str, provider_refund_id: str) -> Refund:
    """A refund the provider accepted but has not made yet (it answered "pending")."""
    with scopes_disabled():
        return Refund.objects.create(
            organization_id=payment.organization_id,
            payment=payment,
            amount=dec(amount),
            reason="Damaged box",
            provider_refund_id=provider_refund_id,
        )


def refund_state(refund: Refund) -> str:
    with scopes_disabled():
        return str(Refund.objects.get(pk=refund.pk).state)


# --- a refund the provider could not make -------------------------------------------------------


def test_a_failed_refund_is_recorded_and_the_amount_can_be_refunded_again(
    customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    payment = settled(customer, two)
    refund = pending_refund(payment, "150.00", "sbr_pending_1")
    with scope(organization=supplier), pytest.raises(ServiceError, match=r"Refund at most \$0\.00"):
        payment_refund(payment=payment, amount=dec("150.00"), reason="Again", actor=None)  # it is pending

    failed = event(payment, base.REFUND_FAILED, refund="sbr_pending_1", message="The card has expired.")
    assert send(supplier, failed) == ["refund failed"]

    assert refund_state(refund) == "failed"
    after = current(payment)  # the payment, its allocations and its invoices are unchanged
    assert (after.state, after.refunded_amount) == ("succeeded", Decimal(0))
    assert active_allocations(payment) == [("INV-1", dec("100.00")), ("INV-2", dec("50.00"))]
    assert open_amounts(two) == [Decimal(0), Decimal(0)]
    entry = timeline(customer)[-1]
    assert entry.summary == "Refund of $150.00 on the payment of $150.00 failed: The card has expired."
    assert entry.visibility == Activity.Visibility.INTERNAL  # staff see it; the customer got nothing
    [logged] = audit("openar.refund.failed")
    assert (logged.object_type, logged.object_id) == ("payments.refund", str(refund.pk))
    assert logged.data == {"payment": payment.pk, "amount": "150.0000", "message": "The card has expired."}

    # Replayed, sent again under another id, or followed by a late success: nothing changes.
    assert send(supplier, failed) == ["duplicate"]
    again = event(payment, base.REFUND_FAILED, refund="sbr_pending_1")
    assert send(supplier, again) == ["ignored: the refund has failed"]
    late = event(payment, base.REFUND_SUCCEEDED, refund="sbr_pending_1", amount="150.00")
    assert send(supplier, late) == ["ignored: the refund has failed"]
    assert refund_state(refund) == "failed"
    assert current(payment).refunded_amount == Decimal(0)
    assert len(audit("openar.refund.failed")) == 1

    # A failed refund is no longer pending: staff can make the refund again (the sandbox
    # refunds at once).
    with scope(organization=supplier):
        made = payment_refund(payment=after, amount=dec("150.00"), reason="Again", actor=None)
    assert made.state == "succeeded"
    assert (current(payment).state, current(payment).refunded_amount) == ("refunded", dec("150.00"))
    assert open_amounts(two) == [dec("100.00"), dec("50.00")]
    assert_ledger_clean()


def test_a_refund_failure_that_comes_before_the_refund_id_is_known_waits_for_it(
    customer: Customer, two: list[Invoice], supplier: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = settled(customer, two)
    failed = event(payment, base.REFUND_FAILED, refund="sbr_slow", message="Declined by the bank.")
    assert send(supplier, failed) == ["waiting: no refund with this id yet"]

    # The provider answers the refund call late, "pending", with the id the event named.
    monkeypatch.setattr(
        SandboxProvider, "refund", lambda self, request, credentials: RefundResult("sbr_slow", False)
    )
    with scope(organization=supplier):
        refund = payment_refund(payment=payment, amount=dec("30.00"), reason="Late", actor=None)

    assert refund_state(refund) == "failed"
    with scopes_disabled():
        stored = ProviderEvent.objects.get(event_id=failed["id"])
    assert stored.processed_at is not None and stored.outcome == "refund failed"
    assert (current(payment).state, current(payment).refunded_amount) == ("succeeded", Decimal(0))
    assert open_amounts(two) == [Decimal(0), Decimal(0)]
    assert_ledger_clean()


# --- a return of part of a payment ----------------------------------------------------------------


def test_a_partial_return_takes_back_its_amount_only_latest_allocation_first(
    customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    payment = settled(customer, two)
    returned = event(
        payment, base.PAYMENT_RETURNED, amount="30.00", currency="USD", message="Disputed in part"
    )

    assert send(supplier, returned) == ["partly returned"]

    assert current(payment).state == "succeeded"
    assert open_amounts(two) == [Decimal(0), dec("30.00")]
    assert active_allocations(payment) == [("INV-1", dec("100.00")), ("INV-2", dec("20.00"))]
    entry = timeline(customer)[-1]
    assert entry.summary == "$30.00 of the payment of $150.00 was returned: Disputed in part"
    assert entry.body == "$30.00 is due again on the invoices it had paid."
    [logged] = audit("openar.payment.partly_returned")
    assert logged.data["amount"] == "30.00" and logged.data["reversed"] == "30.00"
    assert not audit("openar.payment.returned")
    assert_ledger_clean()

    assert send(supplier, returned) == ["duplicate"]  # replayed: nothing more
    assert open_amounts(two) == [Decimal(0), dec("30.00")]
    assert len(audit("openar.payment.partly_returned")) == 1
    assert_ledger_clean()


def test_partial_returns_add_up_and_the_last_part_returns_the_payment(
    customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    payment = settled(customer, two)

    assert send(supplier, event(payment, base.PAYMENT_RETURNED, amount="30.00")) == ["partly returned"]
    assert send(supplier, event(payment, base.PAYMENT_RETURNED, amount="100.00")) == ["partly returned"]
    assert open_amounts(two) == [dec("80.00"), dec("50.00")]
    assert current(payment).state == "succeeded"
    assert_ledger_clean()

    # 20.00 is all the provider still held of it: the payment is returned.
    assert send(supplier, event(payment, base.PAYMENT_RETURNED, amount="20.00")) == ["returned"]
    assert current(payment).state == "returned"
    assert open_amounts(two) == [dec("100.00"), dec("50.00")]
    assert active_allocations(payment) == []
    assert send(supplier, event(payment, base.PAYMENT_RETURNED, amount="5.00")) == [
        "ignored: the payment is returned"
    ]
    assert_ledger_clean()


def test_a_partial_return_takes_unapplied_credit_first(
    customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    payment = start(customer, two)
    record_payment(customer, "50.00", allocations=[(two[1], "50.00")], reference="CHK-9")  # paid meanwhile
    with scope(organization=supplier):
        card_outcome(payment, "4242424242424242")  # 100.00 to INV-1, 50.00 kept as credit

    assert send(supplier, event(payment, base.PAYMENT_RETURNED, amount="30.00")) == ["partly returned"]
    assert open_amounts(two) == [Decimal(0), Decimal(0)]  # the credit went back, no invoice reopens
    assert timeline(customer)[-1].body == "$30.00 of its credit was taken back."

    # 20.00 of credit is left: 20.00 from it, 20.00 from the invoice.
    assert send(supplier, event(payment, base.PAYMENT_RETURNED, amount="40.00")) == ["partly returned"]
    assert open_amounts(two) == [dec("20.00"), Decimal(0)]
    assert active_allocations(payment) == [("INV-1", dec("80.00"))]
    assert_ledger_clean()


def test_the_returned_part_of_a_payment_is_not_credit(
    customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    payment = settled(customer, two)
    send(supplier, event(payment, base.PAYMENT_RETURNED, amount="30.00"))
    with scope(organization=supplier):
        assert online.unapplied(current(payment)) == Decimal(0)
        assert current(payment).returned_amount == Decimal("30.00")
        assert credit_available(customer) == Decimal(0)
        refused = pytest.raises(ServiceError, match=r"Refund at most \$120\.00")
        with refused:
            online.payment_refund(payment=current(payment), amount=Decimal("150.00"), reason="", actor=None)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(None, ""), ("150.00", "USD"), ("500.00", "USD"), ("30.00", "EUR")],
    ids=["no amount", "all of it", "more than it", "another currency"],
)
def test_a_return_of_all_of_it_or_of_an_amount_that_cannot_be_compared_returns_the_payment(
    customer: Customer, two: list[Invoice], supplier: Organization, amount: str | None, currency: str
) -> None:
    payment = settled(customer, two)
    extra = {"amount": amount, "currency": currency} if amount else {}

    assert send(supplier, event(payment, base.PAYMENT_RETURNED, message="R01", **extra)) == ["returned"]

    assert current(payment).state == "returned"
    assert open_amounts(two) == [dec("100.00"), dec("50.00")]
    assert len(audit("openar.payment.returned")) == 1
    assert_ledger_clean()


def test_a_partial_return_before_the_success_waits_then_takes_its_part(
    customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    payment = start(customer, two, method="ach")
    returned = event(payment, base.PAYMENT_RETURNED, amount="10.00", currency="USD")
    assert send(supplier, returned) == ["waiting: the payment has not settled yet"]

    assert send(supplier, event(payment, base.PAYMENT_SUCCEEDED)) == ["succeeded"]

    assert current(payment).state == "succeeded"
    assert open_amounts(two) == [Decimal(0), dec("10.00")]
    with scopes_disabled():
        assert ProviderEvent.objects.get(event_id=returned["id"]).outcome == "partly returned"
    assert_ledger_clean()


@pytest.mark.postgresql
def test_a_partial_return_sent_ten_times_at_once_takes_its_part_once(
    transactional_db: None, customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    payment = settled(customer, two)
    body = event_body([event(payment, base.PAYMENT_RETURNED, amount="30.00", currency="USD")])

    results = in_threads(10, lambda n: receive("sandbox", supplier, body, {SIGNATURE_HEADER: sign(body)}))

    assert sorted(str(r) for r in results) == ["['duplicate']"] * 9 + ["['partly returned']"], results
    assert open_amounts(two) == [Decimal(0), dec("30.00")]
    assert_ledger_clean()


@pytest.mark.postgresql
def test_two_partial_returns_at_once_take_both_parts(
    transactional_db: None, customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    payment = settled(customer, two)
    bodies = [event_body([event(payment, base.PAYMENT_RETURNED, amount="30.00")]) for _ in range(2)]

    results = in_threads(
        2, lambda n: receive("sandbox", supplier, bodies[n], {SIGNATURE_HEADER: sign(bodies[n])})
    )

    assert results == [["partly returned"], ["partly returned"]], results
    assert open_amounts(two) == [dec("10.00"), dec("50.00")]
    assert_ledger_clean()


# --- what one transaction per event must keep ------------------------------------------------------


def test_an_event_that_fails_to_apply_is_kept_and_none_of_it_is_applied(
    customer: Customer, two: list[Invoice], supplier: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = start(customer, two)
    succeeded = event(payment, base.PAYMENT_SUCCEEDED)
    real_log_events = writes.log_events

    def broken(events: list[AuditEvent]) -> None:
        # Written last of the batch: after the allocations, the invoices and the payment.
        if any(one.action == "openar.payment.succeeded" for one in events):
            raise RuntimeError("the audit log is full")
        real_log_events(events)

    monkeypatch.setattr(writes, "log_events", broken)
    with pytest.raises(RuntimeError):
        send(supplier, succeeded)

    with scopes_disabled():
        stored = ProviderEvent.objects.get(event_id=succeeded["id"])
        assert not Allocation.objects.filter(payment=payment).exists()
    assert (stored.processed_at, stored.outcome, stored.organization_id) == (None, "", supplier.pk)
    assert current(payment).state == "pending"
    assert open_amounts(two) == [dec("100.00"), dec("50.00")]

    monkeypatch.setattr(writes, "log_events", real_log_events)
    assert send(supplier, succeeded) == ["succeeded"]  # delivered again: applied once
    assert send(supplier, succeeded) == ["duplicate"]
    assert open_amounts(two) == [Decimal(0), Decimal(0)]
    assert len(audit("openar.payment.succeeded")) == 1
    assert_ledger_clean()


DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def test_the_database_queue_takes_the_receipt_with_the_payment_or_not_at_all(
    customer: Customer, two: list[Invoice], supplier: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_tasks_db.models import DBTaskResult

    first, second = start(customer, [two[0]]), start(customer, [two[1]])
    with override_settings(TASKS=DATABASE_QUEUE):
        assert send(supplier, event(first, base.PAYMENT_SUCCEEDED)) == ["succeeded"]
        # Queued in the event's own transaction (not once it commits: this test's transaction
        # never does, and the task is there).
        [queued] = DBTaskResult.objects.all()
        assert queued.task_path == "openar.payments.tasks.send_receipts"
        assert queued.args_kwargs == {"args": [[first.pk]], "kwargs": {}}

        monkeypatch.setattr(online, "_timeline", lambda *args, **kwargs: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            send(supplier, event(second, base.PAYMENT_SUCCEEDED))
        assert DBTaskResult.objects.count() == 1  # rolled back with the payment
    assert current(second).state == "pending"
    assert_ledger_clean()


def test_an_event_is_stored_and_applied_in_a_few_queries(
    customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    """One transaction per event (no separate one to store it), the payment read once with
    what it needs, the invoices locked as they are read; the organization's credentials are
    not read for the sandbox, which needs none."""
    payment = start(customer, two, method="ach")
    with CaptureQueriesContext(connection) as processing:
        assert send(supplier, event(payment, base.PAYMENT_PROCESSING)) == ["processing"]
    with CaptureQueriesContext(connection) as succeeding:
        assert send(supplier, event(payment, base.PAYMENT_SUCCEEDED)) == ["succeeded"]

    def statements(captured: CaptureQueriesContext) -> list[str]:
        return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]

    # The event, the payment, its state, the timeline, the event's outcome.
    assert len(statements(processing)) == 5, statements(processing)
    # The event, the payment, its targets with their invoices (locked), the invoices' open
    # amounts (one conditional update for both), the allocations (one insert), the payment's
    # state, the timeline, the audit log, the event's outcome, and the look for events
    # waiting for the success. (The receipt is queued once the test's transaction commits:
    # the tests' task backend runs it at once.)
    assert len(statements(succeeding)) == 10, statements(succeeding)
    assert not [sql for sql in statements(processing) if "provideraccount" in sql]
    assert_ledger_clean()


# --- Stripe: refunds that fail, disputes of part of a payment ---------------------------------------

SECRET_KEY = "sk_test_openar_eventfixes_0001"
WEBHOOK_SECRET = "whsec_openar_eventfixes"


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe(SECRET_KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def stripe_paid(
    customer: Customer, supplier: Organization, fake_stripe: FakeStripe
) -> tuple[Payment, list[Invoice]]:
    """A card payment of two invoices (200.00 and 75.50) through Stripe, paid."""
    credentials = {"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET, "api_base": fake_stripe.url}
    invoices = [
        issue_invoice(customer, "INV-S1", "200.00", due_date=TODAY - datetime.timedelta(days=3)),
        issue_invoice(customer, "INV-S2", "75.50", due_date=TODAY - datetime.timedelta(days=1)),
    ]
    with scope(organization=supplier):
        ProviderAccount.objects.create(
            organization=supplier,
            provider="stripe",
            methods=["card"],
            credentials_encrypted=encrypt_text(json.dumps(credentials)),
        )
        payment = payment_start(
            customer=customer,
            lines=choose_lines(customer, TODAY, past_due=True),
            method="card",
            provider_name="stripe",
            checkout_token=uuid.uuid4().hex,
            return_url="http://testserver/portal/pay/",
            cancel_url="http://testserver/portal/pay/",
        ).payment
    fake_stripe.mark_paid(payment.provider_payment_id)
    session = fake_stripe.sessions[payment.provider_payment_id]
    assert post_stripe(supplier, "checkout.session.completed", session) == ["succeeded"]
    return current(payment), invoices


def stripe_event(type_: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": int(time.time()),
        "livemode": False,
        "type": type_,
        "data": {"object": obj},
    }


def signed_stripe(event_: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event_)
    header = stripe.WebhookSignature.generate_signature_header(
        body, WEBHOOK_SECRET, timestamp=int(time.time())
    )
    return body.encode(), {"Stripe-Signature": header}


def post_stripe(organization: Organization, type_: str, obj: dict[str, Any]) -> list[str]:
    body, headers = signed_stripe(stripe_event(type_, obj))
    response = Client().post(
        f"/hooks/payments/stripe/{organization.slug}/", body, content_type="application/json", headers=headers
    )
    assert response.status_code == 200, response.content
    outcomes: list[str] = json.loads(response.content)["outcomes"]
    return outcomes


def test_a_refund_stripe_could_not_make_is_failed_and_another_can_be_made(
    supplier: Organization, fake_stripe: FakeStripe, stripe_paid: tuple[Payment, list[Invoice]]
) -> None:
    payment, invoices = stripe_paid
    fake_stripe.refund_status = "pending"
    with scope(organization=supplier):
        refund = payment_refund(payment=payment, amount=dec("75.50"), reason="Returned goods", actor=None)
    assert refund.state == "pending"
    stripe_refund = fake_stripe.refunds[refund.provider_refund_id]

    failed = {**stripe_refund, "status": "failed", "failure_reason": "expired_or_canceled_card"}
    assert post_stripe(supplier, "refund.failed", failed) == ["refund failed"]

    assert refund_state(refund) == "failed"
    assert (current(payment).state, current(payment).refunded_amount) == ("succeeded", Decimal(0))
    assert open_amounts(invoices) == [Decimal(0), Decimal(0)]
    assert timeline(payment.customer)[-1].summary == (
        "Refund of $75.50 on the payment of $275.50 failed: "
        "Stripe could not make the refund: expired or canceled card."
    )

    fake_stripe.refund_status = "succeeded"
    with scope(organization=supplier):
        again = payment_refund(payment=current(payment), amount=dec("75.50"), reason="Again", actor=None)
    assert again.state == "succeeded" and again.pk != refund.pk
    assert open_amounts(invoices) == [Decimal(0), dec("75.50")]
    assert_ledger_clean()


def test_a_stripe_dispute_of_part_of_the_payment_takes_back_that_part(
    supplier: Organization, fake_stripe: FakeStripe, stripe_paid: tuple[Payment, list[Invoice]]
) -> None:
    payment, invoices = stripe_paid
    payment_intent = fake_stripe.sessions[payment.provider_payment_id]["payment_intent"]
    dispute = {
        "id": "dp_part",
        "object": "dispute",
        "amount": 5000,
        "currency": "usd",
        "charge": "ch_1",
        "payment_intent": payment_intent,
        "reason": "product_unacceptable",
        "status": "needs_response",
        "metadata": {},
    }

    assert post_stripe(supplier, "charge.dispute.created", dispute) == ["partly returned"]

    assert current(payment).state == "succeeded"
    assert open_amounts(invoices) == [Decimal(0), dec("50.00")]
    [logged] = audit("openar.payment.partly_returned")
    assert logged.data["amount"] == "50.00"
    assert_ledger_clean()


@pytest.mark.parametrize(
    ("type_", "status", "reason", "message"),
    [
        (
            "refund.failed",
            "failed",
            "expired_or_canceled_card",
            "Stripe could not make the refund: expired or canceled card.",
        ),
        ("refund.updated", "failed", None, "Stripe could not make the refund."),
        ("refund.updated", "canceled", None, "The refund was cancelled at Stripe."),
        (
            "charge.refund.updated",
            "failed",
            "lost_or_stolen_card",
            "Stripe could not make the refund: lost or stolen card.",
        ),
    ],
)
def test_stripe_refunds_that_failed_or_were_cancelled_are_failed_refunds(
    type_: str, status: str, reason: str | None, message: str
) -> None:
    refund = {
        "id": "re_9",
        "object": "refund",
        "amount": 2500,
        "currency": "usd",
        "payment_intent": "pi_9",
        "status": status,
        "failure_reason": reason,
        "metadata": {"checkout_session_id": "cs_test_9", "openar_payment_id": "42"},
    }
    credentials = {"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET}

    [parsed] = StripeProvider(max_network_retries=0).parse_events(
        *signed_stripe(stripe_event(type_, refund)), credentials
    )

    assert (parsed.type, parsed.refund_id, parsed.provider_payment_id) == (
        base.REFUND_FAILED,
        "re_9",
        "cs_test_9",
    )
    assert (parsed.amount, parsed.message) == (dec("25.00"), message)


@pytest.mark.parametrize(
    ("status", "expected"), [("succeeded", base.REFUND_SUCCEEDED), ("pending", "charge.refund.updated")]
)
def test_stripes_charge_refund_updated_is_read_as_the_refund_it_carries(status: str, expected: str) -> None:
    refund = {
        "id": "re_9",
        "object": "refund",
        "amount": 2500,
        "currency": "usd",
        "status": status,
        "metadata": {"checkout_session_id": "cs_test_9"},
    }
    credentials = {"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET}

    [parsed] = StripeProvider(max_network_retries=0).parse_events(
        *signed_stripe(stripe_event("charge.refund.updated", refund)), credentials
    )

    assert parsed.type == expected


# --- PayPal: a refund that failed or was cancelled --------------------------------------------------

PAYPAL_CLIENT = ("AeA1QIZXiflr1_eventfixes", "ECYYrrSHdKfk_eventfixes")
PAYPAL_WEBHOOK_ID = "1JE4291016473214C"


@pytest.mark.parametrize(
    ("status", "expected", "message"),
    [
        ("FAILED", base.REFUND_FAILED, "PayPal could not make the refund."),
        ("CANCELLED", base.REFUND_FAILED, "The refund was cancelled at PayPal."),
        ("COMPLETED", base.REFUND_SUCCEEDED, ""),
        ("PENDING", "PAYMENT.CAPTURE.REFUNDED", ""),
    ],
)
def test_a_paypal_refund_is_read_by_its_status(status: str, expected: str, message: str) -> None:
    fake = FakePayPal(*PAYPAL_CLIENT, webhook_ids=(PAYPAL_WEBHOOK_ID,)).start()
    try:
        credentials = {
            "client_id": PAYPAL_CLIENT[0],
            "client_secret": PAYPAL_CLIENT[1],
            "webhook_id": PAYPAL_WEBHOOK_ID,
            "api_base": fake.url,
        }
        refund = {
            "id": "1JU08902781691411",
            "status": status,
            "amount": {"currency_code": "USD", "value": "25.00"},
            "links": [{"href": "https://api.paypal.com/v2/payments/captures/2GG279541U471931P", "rel": "up"}],
        }
        paypal_event = {
            "id": f"WH-{uuid.uuid4().hex[:20]}",
            "event_version": "1.0",
            "create_time": "2026-01-01T00:00:00Z",
            "resource_type": "refund",
            "resource_version": "2.0",
            "event_type": "PAYMENT.CAPTURE.REFUNDED",
            "resource": refund,
        }
        body = json.dumps(paypal_event).encode()
        transmission_id = str(uuid.uuid4())
        sent_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "Paypal-Transmission-Id": transmission_id,
            "Paypal-Transmission-Time": sent_at,
            "Paypal-Transmission-Sig": paypal_sign(transmission_id, sent_at, PAYPAL_WEBHOOK_ID, body),
            "Paypal-Cert-Url": CERT_URL,
            "Paypal-Auth-Algo": AUTH_ALGO,
        }

        [parsed] = PayPalProvider(max_retries=0, tokens=TokenCache()).parse_events(body, headers, credentials)
    finally:
        fake.stop()

    assert (parsed.type, parsed.message) == (expected, message)
    if expected != "PAYMENT.CAPTURE.REFUNDED":
        assert (parsed.refund_id, parsed.amount) == ("1JU08902781691411", dec("25.00"))
