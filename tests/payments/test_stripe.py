"""The Stripe provider against a local fake of Stripe's API (``fake_stripe``), through the real
SDK: what Stripe receives for a checkout and a refund, one Stripe payment for one idempotency
key however many times and however concurrently it is asked, Stripe's errors as the
contract's, and webhooks verified with the SDK's own signature scheme before they are read."""

from __future__ import annotations

import datetime
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
import stripe

from openar.payments.providers import registry
from openar.payments.providers.base import (
    PAYMENT_FAILED,
    PAYMENT_PROCESSING,
    PAYMENT_RETURNED,
    PAYMENT_SUCCEEDED,
    REFUND_SUCCEEDED,
    CheckoutRequest,
    Declined,
    Event,
    InvalidEvent,
    ProviderUnavailable,
    RefundRequest,
)
from openar.payments.providers.stripe_provider import StripeProvider, from_minor_units, to_minor_units

from .fake_stripe import FakeStripe

SECRET_KEY = "sk_test_openar_4eC39HqLyjWDarjtT1zdp7dc"
WEBHOOK_SECRET = "whsec_openar_test_secret"
KEY = "5b0c8f0e-3f4b-4f7e-9a43-2a0f3c1d9e11"

REQUEST = CheckoutRequest(
    payment_id=42,
    organization_id=7,
    amount=Decimal("1234.56"),
    currency="USD",
    method="card",
    description="Acme Supplies",
    customer_email="ap@example.com",
    idempotency_key=KEY,
    return_url="https://portal.example.com/pay/return/42",
    cancel_url="https://portal.example.com/pay/cancel/42",
    metadata={"invoices": "INV-1001,INV-1002"},
)


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    fake = FakeStripe(SECRET_KEY).start()
    yield fake
    fake.stop()


@pytest.fixture
def credentials(fake: FakeStripe) -> dict[str, str]:
    return {"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET, "api_base": fake.url}


@pytest.fixture
def webhook_credentials() -> dict[str, str]:
    """Webhooks are verified without calling Stripe: no fake needed."""
    return {"secret_key": SECRET_KEY, "webhook_secret": WEBHOOK_SECRET}


@pytest.fixture
def provider() -> StripeProvider:
    """No SDK retries: an error the fake answers is seen at once."""
    return StripeProvider(max_network_retries=0)


def test_the_registry_names_stripe() -> None:
    stripe_provider = registry.provider("stripe")
    assert isinstance(stripe_provider, StripeProvider)
    assert stripe_provider.methods == frozenset({"card", "ach"})
    assert "stripe" in registry.names()


# --- checkout -----------------------------------------------------------------------------------


def test_checkout_sends_stripe_the_session_with_amount_in_cents_and_the_idempotency_key(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    checkout = provider.create_checkout(REQUEST, credentials)

    [sent] = fake.received("POST", "/v1/checkout/sessions")
    session = fake.sessions[checkout.provider_payment_id]
    assert checkout.provider_payment_id.startswith("cs_test_")
    assert checkout.redirect_url == session["url"]
    assert sent.header("Authorization") == f"Bearer {SECRET_KEY}"
    assert sent.header("Idempotency-Key") == KEY
    assert sent.header("Stripe-Version")
    params = sent.params
    assert params["mode"] == "payment"
    assert params["payment_method_types"] == ["card"]
    assert params["line_items"] == [
        {
            "quantity": "1",
            "price_data": {
                "currency": "usd",
                "unit_amount": "123456",
                "product_data": {"name": "Payment to Acme Supplies"},
            },
        }
    ]
    metadata = {"invoices": "INV-1001,INV-1002", "openar_payment_id": "42", "organization_id": "7"}
    assert params["metadata"] == metadata
    assert params["payment_intent_data"] == {"metadata": metadata}
    assert params["client_reference_id"] == "42"
    assert params["customer_email"] == "ap@example.com"
    assert params["success_url"] == REQUEST.return_url
    assert params["cancel_url"] == REQUEST.cancel_url
    assert session["amount_total"] == 123456


def test_a_zero_decimal_currency_is_sent_in_whole_units_and_ach_as_a_us_bank_account(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    provider.create_checkout(replace(REQUEST, amount=Decimal("5000"), currency="JPY"), credentials)
    provider.create_checkout(replace(REQUEST, method="ach", idempotency_key="ach-key"), credentials)

    yen, ach = fake.received("POST", "/v1/checkout/sessions")
    assert yen.params["line_items"][0]["price_data"]["unit_amount"] == "5000"
    assert yen.params["line_items"][0]["price_data"]["currency"] == "jpy"
    assert ach.params["payment_method_types"] == ["us_bank_account"]
    assert ach.params["line_items"][0]["price_data"]["unit_amount"] == "123456"


def test_the_callers_metadata_cannot_replace_the_ids_webhooks_are_matched_by(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    provider.create_checkout(replace(REQUEST, metadata={"openar_payment_id": "999"}), credentials)

    [sent] = fake.received("POST", "/v1/checkout/sessions")
    assert sent.params["metadata"]["openar_payment_id"] == "42"


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.34", "USD", 1234),
        ("0.5", "EUR", 50),
        ("5000", "JPY", 5000),
        ("1.25", "KWD", 1250),  # Stripe: thousandths, ending in 0
        ("500", "ISK", 50000),  # Stripe: zero-decimal, sent in hundredths
    ],
)
def test_minor_units_follow_the_currency(amount: str, currency: str, minor: int) -> None:
    assert to_minor_units(Decimal(amount), currency) == minor
    assert from_minor_units(minor, currency) == Decimal(amount)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("10.005", "USD"), ("12.5", "JPY"), ("1.235", "KWD"), ("0", "USD"), ("-5", "USD"), ("NaN", "USD")],
)
def test_an_amount_the_currency_cannot_carry_is_refused_not_rounded(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider, amount: str, currency: str
) -> None:
    with pytest.raises(ProviderUnavailable) as raised:
        provider.create_checkout(replace(REQUEST, amount=Decimal(amount), currency=currency), credentials)

    assert raised.value.retryable is False
    assert fake.requests == []


def test_a_float_is_never_money() -> None:
    with pytest.raises(ProviderUnavailable):
        to_minor_units(12.34, "USD")  # type: ignore[arg-type]


def test_fifty_concurrent_checkouts_with_one_key_create_one_session(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    start = threading.Barrier(50)

    def checkout() -> str:
        start.wait()
        return provider.create_checkout(REQUEST, credentials).provider_payment_id

    with ThreadPoolExecutor(max_workers=50) as pool:
        ids = list(pool.map(lambda _: checkout(), range(50)))

    assert len(fake.sessions) == 1
    assert set(ids) == set(fake.sessions)
    sent = fake.received("POST", "/v1/checkout/sessions")
    assert len(sent) == 50
    assert {r.header("Idempotency-Key") for r in sent} == {KEY}


def test_the_same_key_later_returns_the_same_session_and_another_key_a_new_one(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    first = provider.create_checkout(REQUEST, credentials)
    again = provider.create_checkout(REQUEST, credentials)
    other = provider.create_checkout(replace(REQUEST, idempotency_key="another-payment"), credentials)

    assert again == first
    assert other.provider_payment_id != first.provider_payment_id
    assert len(fake.sessions) == 2


def test_the_sdk_retries_a_stripe_failure_with_the_same_key(
    fake: FakeStripe, credentials: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe.RequestsClient, "_sleep_time_seconds", lambda self, retries: 0.0)
    fake.fail_next(500)

    checkout = StripeProvider().create_checkout(REQUEST, credentials)

    sent = fake.received("POST", "/v1/checkout/sessions")
    assert [r.header("Idempotency-Key") for r in sent] == [KEY, KEY]
    assert list(fake.sessions) == [checkout.provider_payment_id]


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(429, True), (500, True), (503, True), (409, True), (401, False), (403, False), (400, False)],
)
def test_stripe_errors_become_the_contracts(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider, status: int, retryable: bool
) -> None:
    fake.fail_next(status)

    with pytest.raises(ProviderUnavailable) as raised:
        provider.create_checkout(REQUEST, credentials)

    assert raised.value.retryable is retryable
    assert raised.value.message


def test_a_declined_card_is_declined_with_stripes_message_for_the_customer(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    fake.fail_next(402)

    with pytest.raises(Declined) as raised:
        provider.create_checkout(REQUEST, credentials)

    assert raised.value.message == "Your card was declined."


def test_a_wrong_secret_key_is_for_staff_and_not_retried(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    with pytest.raises(ProviderUnavailable) as raised:
        provider.create_checkout(REQUEST, {**credentials, "secret_key": "sk_test_wrong"})

    assert raised.value.retryable is False
    assert "secret key" in raised.value.message
    assert fake.sessions == {}


def _nobody_listening() -> str:
    """The address of a port nobody listens on (once the socket that had it is closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_stripe_out_of_reach_may_be_retried(credentials: dict[str, str], provider: StripeProvider) -> None:
    with pytest.raises(ProviderUnavailable) as raised:
        provider.create_checkout(REQUEST, {**credentials, "api_base": _nobody_listening()})

    assert raised.value.retryable is True


@pytest.mark.parametrize(
    "changed", [{"secret_key": ""}, {"api_base": "http://stripe.example.com"}], ids=["no key", "plain http"]
)
def test_unusable_credentials_are_refused_before_any_request(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider, changed: dict[str, str]
) -> None:
    with pytest.raises(ProviderUnavailable) as raised:
        provider.create_checkout(REQUEST, {**credentials, **changed})

    assert raised.value.retryable is False
    assert fake.requests == []


def test_a_method_stripe_does_not_take_here_is_refused(
    credentials: dict[str, str], provider: StripeProvider
) -> None:
    with pytest.raises(ProviderUnavailable):
        provider.create_checkout(replace(REQUEST, method="paypal"), credentials)
    with pytest.raises(ProviderUnavailable):
        provider.create_checkout(replace(REQUEST, method="ach", currency="CAD"), credentials)


# --- refunds ------------------------------------------------------------------------------------


def _paid_checkout(fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider) -> str:
    session_id = provider.create_checkout(REQUEST, credentials).provider_payment_id
    fake.mark_paid(session_id)
    return session_id


def _refund_request(session_id: str, **changes: Any) -> RefundRequest:
    request = RefundRequest(
        provider_payment_id=session_id,
        amount=Decimal("100.00"),
        currency="USD",
        idempotency_key="0d7c1f7e-refund-1",
        reason="Damaged goods",
    )
    return replace(request, **changes)


def test_a_refund_refunds_the_sessions_payment_intent_once_per_key(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    session_id = _paid_checkout(fake, credentials, provider)

    result = provider.refund(_refund_request(session_id), credentials)
    again = provider.refund(_refund_request(session_id), credentials)

    [refund] = fake.refunds.values()
    assert result.provider_refund_id == refund["id"]
    assert result.succeeded is True
    assert again == result
    sent = fake.received("POST", "/v1/refunds")
    assert [r.header("Idempotency-Key") for r in sent] == ["0d7c1f7e-refund-1"] * 2
    assert sent[0].params == {
        "payment_intent": fake.sessions[session_id]["payment_intent"],
        "amount": "10000",
        "metadata": {
            "checkout_session_id": session_id,
            "openar_payment_id": "42",
            "organization_id": "7",
            "reason": "Damaged goods",
        },
    }
    assert len(fake.received("GET", f"/v1/checkout/sessions/{session_id}")) == 2


def test_a_pending_refund_is_not_yet_succeeded(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    fake.refund_status = "pending"
    session_id = _paid_checkout(fake, credentials, provider)

    result = provider.refund(_refund_request(session_id), credentials)

    assert result.provider_refund_id.startswith("re_")
    assert result.succeeded is False


@pytest.mark.parametrize("case", ["unpaid", "unknown session", "too much", "other currency"])
def test_a_refund_stripe_cannot_make_is_for_staff(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider, case: str
) -> None:
    session_id = provider.create_checkout(REQUEST, credentials).provider_payment_id
    if case != "unpaid":
        fake.mark_paid(session_id)
    request = {
        "unpaid": _refund_request(session_id),
        "unknown session": _refund_request("cs_test_unknown"),
        "too much": _refund_request(session_id, amount=Decimal("2000.00")),
        "other currency": _refund_request(session_id, currency="CAD"),
    }[case]

    with pytest.raises(ProviderUnavailable) as raised:
        provider.refund(request, credentials)

    assert raised.value.retryable is False
    assert fake.refunds == {}


# --- webhooks -----------------------------------------------------------------------------------

SESSION_ID = "cs_test_a1b2c3"
PAYMENT_INTENT = "pi_3Pq1"
CREATED = 1_767_225_600  # 2026-01-01 00:00:00 UTC


def _event(type_: str, obj: dict[str, Any], event_id: str = "evt_1") -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": CREATED,
        "livemode": False,
        "type": type_,
        "data": {"object": obj},
    }


def _session(**fields: Any) -> dict[str, Any]:
    return {
        "id": SESSION_ID,
        "object": "checkout.session",
        "payment_intent": PAYMENT_INTENT,
        "amount_total": 123456,
        "currency": "usd",
        "payment_status": "paid",
        "status": "complete",
        "metadata": {"openar_payment_id": "42", "organization_id": "7"},
        **fields,
    }


def _signed(
    event: dict[str, Any], secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(
        body, secret, timestamp=int(time.time()) if timestamp is None else timestamp
    )
    return body.encode(), {"Stripe-Signature": header, "Content-Type": "application/json"}


def _parse(event: dict[str, Any], credentials: dict[str, str]) -> list[Event]:
    return StripeProvider(max_network_retries=0).parse_events(*_signed(event), credentials)


@pytest.mark.parametrize(
    ("type_", "fields", "expected", "message"),
    [
        ("checkout.session.completed", {}, PAYMENT_SUCCEEDED, ""),
        ("checkout.session.completed", {"payment_status": "unpaid"}, PAYMENT_PROCESSING, ""),
        ("checkout.session.async_payment_succeeded", {}, PAYMENT_SUCCEEDED, ""),
        (
            "checkout.session.async_payment_failed",
            {"payment_status": "unpaid"},
            PAYMENT_FAILED,
            "The bank payment failed.",
        ),
        (
            "checkout.session.expired",
            {"payment_status": "unpaid", "status": "expired", "payment_intent": None},
            PAYMENT_FAILED,
            "The payment page expired before payment.",
        ),
    ],
)
def test_session_events_are_normalized_and_name_the_session(
    webhook_credentials: dict[str, str], type_: str, fields: dict[str, Any], expected: str, message: str
) -> None:
    [event] = _parse(_event(type_, _session(**fields)), webhook_credentials)

    assert event.type == expected
    assert event.event_id == "evt_1"
    assert event.provider_payment_id == SESSION_ID
    assert event.occurred_at == datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert event.message == message
    assert event.payload["openar_payment_id"] == "42"
    assert event.payload["stripe_type"] == type_
    json.dumps(event.payload)  # stored as it is


def _dispute(payment_intent: str) -> dict[str, Any]:
    return {
        "id": "dp_1",
        "object": "dispute",
        "amount": 123456,
        "currency": "usd",
        "charge": "ch_1",
        "payment_intent": payment_intent,
        "reason": "debit_not_authorized",
        "status": "needs_response",
        "metadata": {},  # Stripe copies nothing onto a dispute
    }


def test_a_dispute_is_a_return_on_the_session_that_owns_its_payment_intent(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    session_id = _paid_checkout(fake, credentials, provider)
    payment_intent = fake.sessions[session_id]["payment_intent"]

    [event] = _parse(_event("charge.dispute.created", _dispute(payment_intent)), credentials)

    assert event.type == PAYMENT_RETURNED
    assert event.provider_payment_id == session_id
    assert event.payload["payment_intent"] == payment_intent
    assert event.payload["openar_payment_id"] == "42"
    assert "debit not authorized" in event.message
    assert event.amount == Decimal("1234.56")
    [asked] = fake.received("GET", "/v1/checkout/sessions")
    assert asked.params == {"payment_intent": payment_intent, "limit": "1"}


def test_a_dispute_on_no_checkout_of_ours_keeps_its_payment_intent(
    fake: FakeStripe, credentials: dict[str, str]
) -> None:
    [event] = _parse(_event("charge.dispute.created", _dispute(PAYMENT_INTENT)), credentials)

    assert (event.type, event.provider_payment_id) == (PAYMENT_RETURNED, PAYMENT_INTENT)
    assert "openar_payment_id" not in event.payload


def test_a_dispute_while_stripe_is_out_of_reach_is_not_accepted(credentials: dict[str, str]) -> None:
    """Nothing is stored; the webhook fails and Stripe sends the event again later."""
    with pytest.raises(ProviderUnavailable) as raised:
        _parse(
            _event("charge.dispute.created", _dispute(PAYMENT_INTENT)),
            {**credentials, "api_base": _nobody_listening()},
        )

    assert raised.value.retryable is True


def _refund(**fields: Any) -> dict[str, Any]:
    return {
        "id": "re_1",
        "object": "refund",
        "amount": 1000,
        "currency": "usd",
        "payment_intent": PAYMENT_INTENT,
        "status": "succeeded",
        "metadata": {"checkout_session_id": SESSION_ID, "openar_payment_id": "42"},
        **fields,
    }


@pytest.mark.parametrize("type_", ["refund.updated", "refund.created"])
def test_a_succeeded_refund_names_its_session_amount_and_id(
    webhook_credentials: dict[str, str], type_: str
) -> None:
    [event] = _parse(_event(type_, _refund()), webhook_credentials)

    assert event.type == REFUND_SUCCEEDED
    assert event.provider_payment_id == SESSION_ID
    assert event.refund_id == "re_1"
    assert event.amount == Decimal("10.00")
    assert event.currency == "USD"
    assert event.payload["openar_payment_id"] == "42"


def test_a_refund_in_yen_is_in_whole_yen(webhook_credentials: dict[str, str]) -> None:
    [event] = _parse(_event("refund.updated", _refund(amount=500, currency="jpy")), webhook_credentials)

    assert event.amount == Decimal("500")


def test_a_pending_refund_event_is_not_a_succeeded_refund(webhook_credentials: dict[str, str]) -> None:
    [event] = _parse(_event("refund.updated", _refund(status="pending")), webhook_credentials)

    assert event.type == "refund.updated"


def test_charge_refunded_reports_each_succeeded_refund_once_with_its_own_event_id(
    webhook_credentials: dict[str, str],
) -> None:
    charge = {
        "id": "ch_1",
        "object": "charge",
        "amount": 123456,
        "amount_refunded": 3000,
        "currency": "usd",
        "payment_intent": PAYMENT_INTENT,
        "metadata": {"openar_payment_id": "42", "organization_id": "7"},
        "refunds": {
            "object": "list",
            "data": [
                {"id": "re_2", "amount": 2000, "currency": "usd", "status": "succeeded"},
                {"id": "re_1", "amount": 1000, "currency": "usd", "status": "succeeded"},
                {"id": "re_3", "amount": 500, "currency": "usd", "status": "pending"},
            ],
        },
    }

    events = _parse(_event("charge.refunded", charge, event_id="evt_9"), webhook_credentials)

    assert [(e.type, e.event_id, e.refund_id, e.amount) for e in events] == [
        (REFUND_SUCCEEDED, "evt_9:re_2", "re_2", Decimal("20.00")),
        (REFUND_SUCCEEDED, "evt_9:re_1", "re_1", Decimal("10.00")),
    ]
    assert {e.provider_payment_id for e in events} == {PAYMENT_INTENT}
    assert {e.payload["openar_payment_id"] for e in events} == {"42"}


def test_charge_refunded_without_its_refunds_is_left_to_the_refund_events(
    webhook_credentials: dict[str, str],
) -> None:
    charge = {"id": "ch_1", "object": "charge", "payment_intent": PAYMENT_INTENT, "amount_refunded": 1000}

    [event] = _parse(_event("charge.refunded", charge), webhook_credentials)

    assert event.type == "charge.refunded"


@pytest.mark.parametrize("type_", ["payment_intent.created", "charge.failed", "charge.dispute.closed"])
def test_other_events_keep_stripes_name(webhook_credentials: dict[str, str], type_: str) -> None:
    obj = {"id": "pi_9", "object": "payment_intent", "metadata": {"openar_payment_id": "42"}}

    [event] = _parse(_event(type_, obj), webhook_credentials)

    assert event.type == type_
    assert event.provider_payment_id == "pi_9"
    assert event.payload["openar_payment_id"] == "42"


def test_the_signature_header_is_found_whatever_its_case(webhook_credentials: dict[str, str]) -> None:
    body, headers = _signed(_event("checkout.session.completed", _session()))

    [event] = StripeProvider().parse_events(
        body, {"stripe-signature": headers["Stripe-Signature"]}, webhook_credentials
    )

    assert event.type == PAYMENT_SUCCEEDED


def test_a_refund_made_here_comes_back_as_an_event_on_its_session(
    fake: FakeStripe, credentials: dict[str, str], provider: StripeProvider
) -> None:
    session_id = _paid_checkout(fake, credentials, provider)
    result = provider.refund(_refund_request(session_id), credentials)

    [event] = _parse(_event("refund.updated", fake.refunds[result.provider_refund_id]), credentials)

    assert (event.type, event.provider_payment_id, event.refund_id) == (
        REFUND_SUCCEEDED,
        session_id,
        result.provider_refund_id,
    )
    assert event.amount == Decimal("100.00")
    assert event.payload["openar_payment_id"] == "42"


def _forged() -> tuple[bytes, dict[str, str]]:
    return _signed(_event("checkout.session.completed", _session()), secret="whsec_someone_else")


def _tampered() -> tuple[bytes, dict[str, str]]:
    body, headers = _signed(_event("checkout.session.completed", _session(amount_total=100)))
    tampered = body.replace(b'"amount_total": 100', b'"amount_total": 999999')
    assert tampered != body
    return tampered, headers


def _stale() -> tuple[bytes, dict[str, str]]:
    return _signed(_event("checkout.session.completed", _session()), timestamp=int(time.time()) - 301)


def _unsigned() -> tuple[bytes, dict[str, str]]:
    body, _ = _signed(_event("checkout.session.completed", _session()))
    return body, {"Content-Type": "application/json"}


def _garbled_header() -> tuple[bytes, dict[str, str]]:
    body, _ = _signed(_event("checkout.session.completed", _session()))
    return body, {"Stripe-Signature": "not a signature"}


def _signed_text(text: bytes) -> tuple[bytes, dict[str, str]]:
    header = stripe.WebhookSignature.generate_signature_header(text.decode(), WEBHOOK_SECRET)
    return text, {"Stripe-Signature": header}


@pytest.mark.parametrize(
    "make",
    [
        _forged,
        _tampered,
        _stale,
        _unsigned,
        _garbled_header,
        lambda: _signed_text(b"not json"),
        lambda: _signed_text(b"[]"),
        lambda: _signed_text(b'{"id": "evt_1", "type": "checkout.session.completed"}'),
        lambda: (b"\xff\xfe", {"Stripe-Signature": f"t={int(time.time())},v1=00"}),
    ],
    ids=[
        "forged",
        "tampered",
        "stale",
        "unsigned",
        "garbled header",
        "not json",
        "not an object",
        "no data",
        "not utf-8",
    ],
)
def test_an_event_that_does_not_verify_is_refused(webhook_credentials: dict[str, str], make: Any) -> None:
    body, headers = make()

    with pytest.raises(InvalidEvent):
        StripeProvider().parse_events(body, headers, webhook_credentials)


def test_without_a_webhook_secret_nothing_verifies(webhook_credentials: dict[str, str]) -> None:
    body, headers = _signed(_event("checkout.session.completed", _session()), secret="")

    with pytest.raises(InvalidEvent):
        StripeProvider().parse_events(body, headers, {**webhook_credentials, "webhook_secret": ""})


def test_an_event_just_inside_the_tolerance_is_accepted(webhook_credentials: dict[str, str]) -> None:
    body, headers = _signed(
        _event("checkout.session.completed", _session()), timestamp=int(time.time()) - 290
    )

    [event] = StripeProvider().parse_events(body, headers, webhook_credentials)

    assert event.type == PAYMENT_SUCCEEDED
