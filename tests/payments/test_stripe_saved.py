"""Stripe's saved methods for autopay, through the real SDK against the local fake: a
Customer made once, a setup-mode Checkout Session, the saved method read back with what the
customer may see of it, off-session charges with the payment's idempotency key (one charge
however many times it is asked), and declines as the contract's ``Declined``."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from openar.payments.providers.base import (
    ChargeRequest,
    Declined,
    SetupIncomplete,
    SetupRequest,
    saves_methods,
)
from openar.payments.providers.stripe_provider import StripeProvider

from .fake_stripe import FakeStripe

SECRET_KEY = "sk_test_openar_saved_4eC39HqLyjWDarjt"
KEY = "9d1c3a52-1f0b-4b55-8f0e-6c2f1a7e4d10"

SETUP = SetupRequest(
    organization_id=7,
    organization_name="Acme Supplies",
    customer_ref="",
    customer_email="ap@example.com",
    customer_name="Bolt Hardware",
    method="card",
    currency="USD",
    idempotency_key=KEY,
    return_url="https://portal.example.com/portal/autopay/setup/1/",
    cancel_url="https://portal.example.com/portal/autopay/setup/1/?cancelled=1",
    metadata={"openar_setup_id": "1"},
)


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    fake = FakeStripe(SECRET_KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def credentials(fake: FakeStripe) -> dict[str, str]:
    return {"secret_key": SECRET_KEY, "webhook_secret": "whsec_x", "api_base": fake.url}


@pytest.fixture
def provider() -> StripeProvider:
    return StripeProvider(max_network_retries=0)


def charge(
    customer_ref: str, method_ref: str, key: str = "c0ffee00-0000-4000-8000-000000000001"
) -> ChargeRequest:
    return ChargeRequest(
        payment_id=99,
        organization_id=7,
        amount=Decimal("150.00"),
        currency="USD",
        method="card",
        customer_ref=customer_ref,
        method_ref=method_ref,
        description="Acme Supplies, account C-1001",
        idempotency_key=key,
        metadata={"openar_charge": "autopay"},
    )


def test_stripe_saves_methods() -> None:
    assert saves_methods(StripeProvider()) is not None


def test_setup_makes_a_customer_once_and_a_setup_session(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    setup = provider.start_setup(SETUP, credentials)
    again = provider.start_setup(SETUP, credentials)

    assert again == setup  # the same keys: the same customer and session
    assert len(fake.customers) == 1 and setup.customer_ref in fake.customers
    [made, _] = fake.received("POST", "/v1/customers")
    assert made.header("Idempotency-Key") == f"{KEY}:customer"
    assert made.params["email"] == "ap@example.com" and made.params["name"] == "Bolt Hardware"
    [sent, _] = fake.received("POST", "/v1/checkout/sessions")
    assert sent.header("Idempotency-Key") == f"{KEY}:setup"
    assert sent.params["mode"] == "setup" and sent.params["customer"] == setup.customer_ref
    assert sent.params["payment_method_types"] == ["card"]
    assert sent.params["setup_intent_data"]["metadata"]["openar_setup_id"] == "1"
    assert setup.redirect_url.startswith("https://checkout.stripe.com/")

    known = provider.start_setup(
        SetupRequest(**{**SETUP.__dict__, "customer_ref": setup.customer_ref, "idempotency_key": "k2"}),
        credentials,
    )
    assert known.customer_ref == setup.customer_ref and len(fake.customers) == 1


def test_the_saved_card_is_read_back_with_its_label_and_expiry(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    setup = provider.start_setup(SETUP, credentials)
    with pytest.raises(SetupIncomplete):
        provider.complete_setup(setup.provider_setup_id, credentials)
    method_id = fake.save_method(setup.provider_setup_id)

    info = provider.complete_setup(setup.provider_setup_id, credentials)

    assert (info.method_ref, info.customer_ref, info.method) == (method_id, setup.customer_ref, "card")
    assert info.label == "Visa ending 4242" and info.expires == datetime.date(2039, 12, 31)
    [read] = fake.received("GET", f"/v1/checkout/sessions/{setup.provider_setup_id}")[-1:]
    assert read.params["expand"] == ["setup_intent.payment_method"]


def test_a_saved_bank_account(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    setup = provider.start_setup(SetupRequest(**{**SETUP.__dict__, "method": "ach"}), credentials)
    fake.save_method(setup.provider_setup_id, kind="us_bank_account", outcome="processing")
    info = provider.complete_setup(setup.provider_setup_id, credentials)
    assert (info.method, info.label, info.expires) == ("ach", "STRIPE TEST BANK ending 6789", None)


def test_an_off_session_charge_carries_the_payments_key_and_is_made_once(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    setup = provider.start_setup(SETUP, credentials)
    method_id = fake.save_method(setup.provider_setup_id)
    request = charge(setup.customer_ref, method_id)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: provider.charge_saved(request, credentials), range(10)))

    assert len({r.provider_payment_id for r in results}) == 1 and results[0].status == "succeeded"
    assert len(fake.payment_intents) == 1
    [intent] = fake.payment_intents.values()
    assert intent["amount"] == 15000 and intent["currency"] == "usd"
    sent = fake.received("POST", "/v1/payment_intents")
    assert {r.header("Idempotency-Key") for r in sent} == {request.idempotency_key}
    assert sent[0].params["off_session"] == "true" and sent[0].params["confirm"] == "true"
    assert sent[0].params["metadata"] == {
        "openar_charge": "saved",
        "openar_payment_id": "99",
        "organization_id": "7",
    }


def test_a_bank_debit_is_processing(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    setup = provider.start_setup(SetupRequest(**{**SETUP.__dict__, "method": "ach"}), credentials)
    method_id = fake.save_method(setup.provider_setup_id, kind="us_bank_account", outcome="processing")
    result = provider.charge_saved(
        ChargeRequest(**{**charge(setup.customer_ref, method_id).__dict__, "method": "ach"}), credentials
    )
    assert result.status == "processing"


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        ("declined", "Your card has insufficient funds."),
        ("requires_action", "Your bank asks you to confirm this payment: pay it in the portal instead."),
    ],
)
def test_a_refused_charge_is_declined_with_a_message_for_the_customer(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider, outcome: str, message: str
) -> None:
    setup = provider.start_setup(SETUP, credentials)
    method_id = fake.save_method(setup.provider_setup_id, outcome=outcome)
    with pytest.raises(Declined) as refused:
        provider.charge_saved(charge(setup.customer_ref, method_id), credentials)
    assert refused.value.message == message


# --- end to end: autopay through Stripe, settled by its signed webhooks ------------------------


@pytest.fixture
def stripe_autopay(customer: Any, supplier: Any) -> Iterator[tuple[Any, FakeStripe]]:
    """A Stripe account for the organization, a bank account saved at the fake's setup page
    and autopay on with it, and two invoices due."""
    import json

    from django_scopes import scope

    from factories import TODAY, issue_invoice
    from openar.core.crypto import encrypt_text
    from openar.payments.autopay import autopay_enable, consent_text, setup_complete, setup_start
    from openar.payments.models import ProviderAccount

    from .test_provider_webhooks import SECRET_KEY as HOOK_KEY
    from .test_provider_webhooks import WEBHOOK_SECRET

    fake = FakeStripe(HOOK_KEY).start()
    credentials = {"secret_key": HOOK_KEY, "webhook_secret": WEBHOOK_SECRET, "api_base": fake.url}
    with scope(organization=supplier):
        ProviderAccount.objects.create(
            organization=supplier,
            provider="stripe",
            methods=["card", "ach"],
            credentials_encrypted=encrypt_text(json.dumps(credentials)),
        )
        invoices = [
            issue_invoice(customer, "INV-A1", "200.00", due_date=TODAY - datetime.timedelta(days=3)),
            issue_invoice(customer, "INV-A2", "75.50", due_date=TODAY - datetime.timedelta(days=1)),
        ]
        setup, _ = setup_start(customer=customer, contact=None, method="ach", actor=None)
        fake.save_method(setup.provider_setup_id, kind="us_bank_account", outcome="processing")
        method = setup_complete(setup=setup, actor=None)
        assert method is not None
        autopay_enable(
            customer=customer,
            method=method,
            agreed_text=consent_text(customer, method),
            contact=None,
            actor=None,
            ip=None,
        )
    yield invoices, fake
    fake.stop()


def intent_event(payment: Any, type_: str, **fields: Any) -> dict[str, Any]:
    import time
    import uuid

    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "created": int(time.time()),
        "type": type_,
        "data": {
            "object": {
                "id": payment.provider_payment_id,
                "object": "payment_intent",
                "amount": 27550,
                "currency": "usd",
                "metadata": {"openar_payment_id": str(payment.pk), "openar_charge": "saved"},
                **fields,
            }
        },
    }


def test_an_autopay_bank_debit_through_stripe_settles_by_webhook_once(
    supplier: Any,
    customer: Any,
    stripe_autopay: tuple[Any, FakeStripe],
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django_scopes import scopes_disabled

    from openar.payments.autopay import charge_due
    from openar.payments.models import Allocation, Payment

    from .test_provider_webhooks import open_amounts, post

    invoices, fake = stripe_autopay
    with django_capture_on_commit_callbacks(execute=True):
        assert [o.result for o in charge_due()] == ["processing"]
    with scopes_disabled():
        (payment,) = Payment.objects.all()
    assert payment.provider_payment_id.startswith("pi_") and payment.state == "processing"
    assert fake.received("POST", "/v1/payment_intents")[0].header("Idempotency-Key") == str(
        payment.idempotency_key
    )

    settled = intent_event(payment, "payment_intent.succeeded", status="succeeded")
    with django_capture_on_commit_callbacks(execute=True):
        answers = [post(supplier, settled) for _ in range(10)]
    assert {status for status, _ in answers} == {200}
    with scopes_disabled():
        payment.refresh_from_db()
        assert payment.state == "succeeded" and Allocation.objects.filter(payment=payment).count() == 2
    assert open_amounts(invoices) == ["0.0000", "0.0000"] or all(
        a.startswith("0") for a in open_amounts(invoices)
    )


def test_a_failed_stripe_autopay_debit_is_counted_and_told(
    supplier: Any,
    customer: Any,
    stripe_autopay: tuple[Any, FakeStripe],
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django_scopes import scopes_disabled

    from openar.payments.autopay import charge_due
    from openar.payments.models import Autopay, Payment

    from .test_provider_webhooks import post

    with django_capture_on_commit_callbacks(execute=True):
        charge_due()
    with scopes_disabled():
        (payment,) = Payment.objects.all()
    failed = intent_event(
        payment,
        "payment_intent.payment_failed",
        status="requires_payment_method",
        last_payment_error={"message": "The account has insufficient funds (R01)."},
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert post(supplier, failed)[0] == 200
    with scopes_disabled():
        payment.refresh_from_db()
        autopay = Autopay.objects.get(customer=customer)
    assert (
        payment.state == "failed" and payment.failure_message == "The account has insufficient funds (R01)."
    )
    assert autopay.failures == 1 and autopay.next_attempt_at is not None
