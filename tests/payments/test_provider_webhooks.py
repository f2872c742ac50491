"""Stripe and PayPal end to end through OpenAR's own services: a payment started with the
organization's (encrypted) Stripe credentials against the local fake of Stripe's API, then
Stripe's events signed by the real SDK, posted to ``/hooks/payments/stripe/<organization>/``:
each event sent 10 times in a row, 10 times at once (PostgreSQL), and out of order gives
exactly one ledger entry; forged, tampered and stale events are refused; the ledger is clean
after every test."""

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
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import TODAY, assert_ledger_clean, in_threads, issue_invoice
from openar.billing.models import Invoice
from openar.core.crypto import encrypt_text
from openar.customers.models import Customer
from openar.payments.models import Allocation, Payment, ProviderAccount, ProviderEvent
from openar.payments.online import choose_lines, payment_start
from openar.tenants.models import Organization

from .fake_stripe import FakeStripe

SECRET_KEY = "sk_test_openar_endtoend_0001"
WEBHOOK_SECRET = "whsec_openar_endtoend"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    fake = FakeStripe(SECRET_KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def stripe_account(supplier: Organization, fake: FakeStripe) -> ProviderAccount:
    credentials = {"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET, "api_base": fake.url}
    with scope(organization=supplier):
        return ProviderAccount.objects.create(
            organization=supplier,
            provider="stripe",
            methods=["card", "ach"],
            credentials_encrypted=encrypt_text(json.dumps(credentials)),
        )


@pytest.fixture
def paying(customer: Customer, stripe_account: ProviderAccount) -> tuple[Payment, list[Invoice]]:
    invoices = [
        issue_invoice(customer, "INV-S1", "200.00", due_date=TODAY - datetime.timedelta(days=3)),
        issue_invoice(customer, "INV-S2", "75.50", due_date=TODAY - datetime.timedelta(days=1)),
    ]
    with scope(organization=customer.organization):
        started = payment_start(
            customer=customer,
            lines=choose_lines(customer, TODAY, past_due=True),
            method="card",
            provider_name="stripe",
            checkout_token=uuid.uuid4().hex,
            return_url="http://testserver/portal/pay/",
            cancel_url="http://testserver/portal/pay/",
        )
    return started.payment, invoices


def stripe_event(payment: Payment, type_: str, *, event_id: str = "", **session: Any) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": int(time.time()),
        "livemode": False,
        "type": type_,
        "data": {
            "object": {
                "id": payment.provider_payment_id,
                "object": "checkout.session",
                "payment_intent": "pi_endtoend",
                "amount_total": 27550,
                "currency": "usd",
                "payment_status": "paid",
                "status": "complete",
                "metadata": {"openar_payment_id": str(payment.pk)},
                **session,
            }
        },
    }


def post(
    organization: Organization,
    event: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
) -> tuple[int, dict[str, Any]]:
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(
        body, secret, timestamp=int(time.time()) if timestamp is None else timestamp
    )
    response = Client().post(
        f"/hooks/payments/stripe/{organization.slug}/",
        body,
        content_type="application/json",
        headers={"Stripe-Signature": header},
    )
    return response.status_code, json.loads(response.content or b"{}")


def open_amounts(invoices: list[Invoice]) -> list[str]:
    with scopes_disabled():
        return [str(Invoice.objects.get(pk=i.pk).open_amount) for i in invoices]


def test_the_checkout_goes_to_stripe_with_the_payments_idempotency_key(
    fake: FakeStripe, paying: tuple[Payment, list[Invoice]]
) -> None:
    payment, _ = paying
    (request,) = fake.received("POST", "/v1/checkout/sessions")
    assert request.header("Idempotency-Key") == str(payment.idempotency_key)
    assert payment.provider_payment_id.startswith("cs_")
    assert payment.amount == Decimal("275.50")


def test_an_event_sent_ten_times_in_a_row_counts_once(
    supplier: Organization, paying: tuple[Payment, list[Invoice]]
) -> None:
    payment, invoices = paying
    event = stripe_event(payment, "checkout.session.completed")

    answers = [post(supplier, event) for _ in range(10)]

    assert [status for status, _ in answers] == [200] * 10
    assert [data["outcomes"] for _, data in answers] == [["succeeded"]] + [["duplicate"]] * 9
    assert open_amounts(invoices) == ["0.0000", "0.0000"]
    with scopes_disabled():
        assert Allocation.objects.filter(payment=payment).count() == 2
    assert_ledger_clean()


def test_ach_events_out_of_order(supplier: Organization, paying: tuple[Payment, list[Invoice]]) -> None:
    """The async success arrives before the "completed, unpaid" (in flight) event: the
    payment succeeds once, and the late in-flight event changes nothing."""
    payment, invoices = paying
    late_in_flight = stripe_event(payment, "checkout.session.completed", payment_status="unpaid")
    success = stripe_event(payment, "checkout.session.async_payment_succeeded")

    assert post(supplier, success)[1]["outcomes"] == ["succeeded"]
    assert post(supplier, late_in_flight)[1]["outcomes"] == ["ignored: the payment is succeeded"]
    with scopes_disabled():
        assert Payment.objects.get(pk=payment.pk).state == "succeeded"
    assert open_amounts(invoices) == ["0.0000", "0.0000"]
    assert_ledger_clean()


@pytest.mark.parametrize("how", ["forged", "tampered", "stale"])
def test_forged_tampered_and_stale_events_are_refused(
    supplier: Organization, paying: tuple[Payment, list[Invoice]], how: str
) -> None:
    payment, invoices = paying
    event = stripe_event(payment, "checkout.session.completed")
    if how == "forged":
        status, _ = post(supplier, event, secret="whsec_someone_else")
    elif how == "stale":
        status, _ = post(supplier, event, timestamp=int(time.time()) - 3600)
    else:
        body = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)
        tampered = body.replace('"amount_total": 27550', '"amount_total": 1')
        status = (
            Client()
            .post(
                f"/hooks/payments/stripe/{supplier.slug}/",
                tampered,
                content_type="application/json",
                headers={"Stripe-Signature": header},
            )
            .status_code
        )
    assert status == 400
    with scopes_disabled():
        assert not ProviderEvent.objects.exists()
        assert Payment.objects.get(pk=payment.pk).state == "pending"
    assert open_amounts(invoices) == ["200.0000", "75.5000"]
    assert_ledger_clean()


@pytest.mark.postgresql
def test_an_event_sent_ten_times_at_once_counts_once(
    transactional_db: None, supplier: Organization, paying: tuple[Payment, list[Invoice]]
) -> None:
    payment, invoices = paying
    event = stripe_event(payment, "checkout.session.completed")

    results = in_threads(10, lambda n: post(supplier, event))

    assert all(isinstance(r, tuple) and r[0] == 200 for r in results), results
    assert sorted(str(r[1]["outcomes"]) for r in results).count("['succeeded']") == 1
    with scopes_disabled():
        assert Allocation.objects.filter(payment=payment).count() == 2
    assert open_amounts(invoices) == ["0.0000", "0.0000"]
    assert_ledger_clean()


# --- PayPal: the money is taken when the buyer comes back ----------------------------------------


def test_a_paypal_payment_is_captured_when_the_buyer_returns(
    customer: Customer, supplier: Organization
) -> None:
    from openar.payments.online import payment_return
    from openar.payments.providers.paypal import PayPalProvider

    from .fake_paypal import FakePayPal

    fake = FakePayPal("client-id", "client-secret", webhook_ids=("WH-1",)).start()
    try:
        credentials = {
            "client_id": "client-id",
            "client_secret": "client-secret",
            "webhook_id": "WH-1",
            "api_base": fake.url,
        }
        invoice = issue_invoice(customer, "INV-PP", "64.00", due_date=TODAY - datetime.timedelta(days=2))
        with scope(organization=supplier):
            ProviderAccount.objects.create(
                organization=supplier,
                provider="paypal",
                methods=["paypal"],
                credentials_encrypted=encrypt_text(json.dumps(credentials)),
            )
            started = payment_start(
                customer=customer,
                lines=choose_lines(customer, TODAY, past_due=True),
                method="paypal",
                provider_name="paypal",
                checkout_token=uuid.uuid4().hex,
                return_url="http://testserver/portal/pay/",
                cancel_url="http://testserver/portal/pay/",
            )
            payment = started.payment
            assert payment_return(payment=payment) == "pending"  # not approved by the buyer yet
            fake.approve(payment.provider_payment_id)
            assert payment_return(payment=payment) == "succeeded"
            payment.refresh_from_db()
            assert payment_return(payment=payment) == "succeeded"  # coming back twice changes nothing
        assert open_amounts([invoice]) == ["0.0000"]
        with scopes_disabled():
            assert Allocation.objects.filter(payment=payment).count() == 1
        assert isinstance(PayPalProvider(), PayPalProvider)
        assert_ledger_clean()
    finally:
        fake.stop()


def test_a_refund_that_could_not_reach_stripe_is_sent_again_with_the_same_key(
    fake: FakeStripe, supplier: Organization, paying: tuple[Payment, list[Invoice]]
) -> None:
    from openar.core.errors import ServiceError
    from openar.payments.models import Refund
    from openar.payments.online import payment_refund
    from openar.payments.providers.base import ProviderUnavailable

    payment, invoices = paying
    assert post(supplier, stripe_event(payment, "checkout.session.completed"))[1]["outcomes"] == ["succeeded"]
    fake.mark_paid(payment.provider_payment_id)
    fake.fail_next(500, times=10)  # more than the SDK's retries
    with scope(organization=supplier):
        with pytest.raises(ProviderUnavailable):
            payment_refund(payment=payment, amount=Decimal("75.50"), reason="Returned goods", actor=None)
        with pytest.raises(ServiceError, match="could not be sent yet"):
            payment_refund(payment=payment, amount=Decimal("10.00"), reason="Other", actor=None)
        fake._failures.clear()
        refund = payment_refund(payment=payment, amount=Decimal("75.50"), reason="Returned goods", actor=None)
        assert Refund.objects.count() == 1  # the same refund, sent again
    keys = {r.header("Idempotency-Key") for r in fake.received("POST", "/v1/refunds")}
    assert keys == {str(refund.idempotency_key)}
    assert refund.state == "succeeded"
    assert open_amounts(invoices) == ["0.0000", "75.5000"]
    assert_ledger_clean()


@pytest.mark.postgresql
def test_fifty_clicks_on_pay_make_one_stripe_checkout(
    transactional_db: None, fake: FakeStripe, customer: Customer, stripe_account: ProviderAccount
) -> None:
    """Fifty confirms of the same pay form at once, as the portal's confirm does them: one
    Payment row, one idempotency key, one Checkout Session at Stripe."""
    from openar.payments.online import payment_resume

    issue_invoice(customer, "INV-C1", "90.00", due_date=TODAY - datetime.timedelta(days=3))
    token = uuid.uuid4().hex

    def click(n: int) -> tuple[int, str]:
        with scope(organization=customer.organization):
            again = payment_resume(customer=customer, checkout_token=token, return_url="x", cancel_url="x")
            if again is None:
                lines = choose_lines(customer, TODAY, past_due=True, checkout_token=token)
                again = payment_start(
                    customer=customer,
                    lines=lines,
                    method="card",
                    provider_name="stripe",
                    checkout_token=token,
                    return_url="x",
                    cancel_url="x",
                )
            return again.payment.pk, again.redirect_url

    results = in_threads(50, click)

    assert not [r for r in results if not isinstance(r, tuple)], results
    assert len({r[0] for r in results}) == 1 and len({r[1] for r in results}) == 1
    with scopes_disabled():
        assert Payment.objects.count() == 1
    sessions = {r.header("Idempotency-Key") for r in fake.received("POST", "/v1/checkout/sessions")}
    assert len(sessions) == 1
    assert len(fake.sessions) == 1
