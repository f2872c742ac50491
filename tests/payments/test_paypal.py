"""The PayPal provider against a local fake of PayPal's REST API (``fake_paypal``), over real
HTTP: the token asked once and reused, what PayPal receives for an order, a capture and a
refund, one PayPal order for one request id however concurrently it is asked, PayPal's errors
as the contract's, and webhooks verified by PayPal (with the event's exact bytes) before they
are read, then normalized."""

from __future__ import annotations

import base64
import datetime
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

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
    RedirectRequired,
    RefundRequest,
)
from openar.payments.providers.paypal import DECLINED_MESSAGE, PayPalProvider, TokenCache, to_value

from .fake_paypal import AUTH_ALGO, CERT_URL, FakePayPal, sign

CLIENT_ID = "AeA1QIZXiflr1_-r0U2UbWTziOWX1GRQer5jkUq4ZfWT5qwb6qQRPq7jDtv57TL4POEEezGLdutcxnkJ"
CLIENT_SECRET = "ECYYrrSHdKfk_Q0EdvzdGkzj58a66kKaUQ5dZAEv4HvvtDId2_DpSuYDB088BZxGuMji7G4OFUnPog6p"
WEBHOOK_ID = "1JE4291016473214C"
KEY = "5b0c8f0e-3f4b-4f7e-9a43-2a0f3c1d9e11"

REQUEST = CheckoutRequest(
    payment_id=42,
    organization_id=7,
    amount=Decimal("1234.56"),
    currency="USD",
    method="paypal",
    description="Acme Supplies",
    customer_email="ap@example.com",
    idempotency_key=KEY,
    return_url="https://portal.example.com/pay/return/42",
    cancel_url="https://portal.example.com/pay/cancel/42",
)


@pytest.fixture
def fake() -> Iterator[FakePayPal]:
    fake = FakePayPal(CLIENT_ID, CLIENT_SECRET, webhook_ids=(WEBHOOK_ID, "9XL90610J3647323C")).start()
    yield fake
    fake.stop()


@pytest.fixture
def credentials(fake: FakePayPal) -> dict[str, str]:
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "webhook_id": WEBHOOK_ID,
        "api_base": fake.url,
    }


@pytest.fixture
def provider() -> PayPalProvider:
    """No retries (an error the fake answers is seen at once), and a token cache of its own,
    so that no token of an earlier test's fake is offered to this one's."""
    return PayPalProvider(max_retries=0, tokens=TokenCache())


def test_the_registry_names_paypal() -> None:
    paypal = registry.provider("paypal")
    assert isinstance(paypal, PayPalProvider)
    assert paypal.methods == frozenset({"paypal"})
    assert "paypal" in registry.names()


# --- access tokens ----------------------------------------------------------------------------


def test_one_token_serves_many_calls(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    order_id = provider.create_checkout(REQUEST, credentials).provider_payment_id
    provider.create_checkout(replace(REQUEST, idempotency_key="other"), credentials)
    fake.approve(order_id)
    provider.capture(order_id, "capture-key", credentials)
    provider.refund(_refund_request(order_id), credentials)

    [asked] = fake.received("POST", "/v1/oauth2/token")
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert asked.header("Authorization") == f"Basic {basic}"
    assert asked.body == "grant_type=client_credentials"
    [token] = fake.tokens
    used = [r for r in fake.requests if r.path != "/v1/oauth2/token"]
    assert len(used) == 5
    assert {r.header("Authorization") for r in used} == {f"Bearer {token}"}


def test_a_token_is_renewed_shortly_before_it_expires(fake: FakePayPal, credentials: dict[str, str]) -> None:
    now = [1000.0]
    provider = PayPalProvider(max_retries=0, tokens=TokenCache(clock=lambda: now[0]))
    fake.expires_in = 3600

    provider.create_checkout(REQUEST, credentials)
    now[0] += 3600 - 301  # still good: renewed five minutes before the end
    provider.create_checkout(REQUEST, credentials)
    assert len(fake.received("POST", "/v1/oauth2/token")) == 1
    now[0] += 2
    provider.create_checkout(REQUEST, credentials)
    assert len(fake.received("POST", "/v1/oauth2/token")) == 2


def test_a_token_paypal_no_longer_accepts_is_replaced_once(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    first = provider.create_checkout(REQUEST, credentials)
    fake.revoke_tokens()

    again = provider.create_checkout(REQUEST, credentials)

    assert again == first
    assert len(fake.received("POST", "/v1/oauth2/token")) == 2
    assert len(fake.received("POST", "/v2/checkout/orders")) == 3  # refused once, then replayed


def test_a_cached_token_is_never_handed_to_a_wrong_secret(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    """Another organization typing this one's client id must not ride on its token."""
    provider.create_checkout(REQUEST, credentials)

    with pytest.raises(ProviderUnavailable) as raised:
        provider.create_checkout(REQUEST, {**credentials, "client_secret": "someone-elses-guess"})

    assert raised.value.retryable is False
    assert "client id and secret" in raised.value.message
    assert len(fake.received("POST", "/v1/oauth2/token")) == 2
    assert len(fake.received("POST", "/v2/checkout/orders")) == 1


# --- checkout ---------------------------------------------------------------------------------


def test_checkout_sends_paypal_the_order_with_a_decimal_string_and_the_request_id(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    checkout = provider.create_checkout(REQUEST, credentials)

    [sent] = fake.received("POST", "/v2/checkout/orders")
    order = fake.orders[checkout.provider_payment_id]
    assert checkout.redirect_url == f"https://www.sandbox.paypal.com/checkoutnow?token={order['id']}"
    assert sent.header("PayPal-Request-Id") == KEY
    assert sent.header("Content-Type") == "application/json"
    assert '"value": "1234.56"' in sent.body  # a string in the JSON, never a number
    assert sent.json == {
        "intent": "CAPTURE",
        "purchase_units": [
            {
                "reference_id": "42",
                "custom_id": "42",
                "invoice_id": "42",
                "description": "Payment to Acme Supplies",
                "amount": {"currency_code": "USD", "value": "1234.56"},
            }
        ],
        "payment_source": {
            "paypal": {
                "experience_context": {
                    "return_url": REQUEST.return_url,
                    "cancel_url": REQUEST.cancel_url,
                    "user_action": "PAY_NOW",
                    "shipping_preference": "NO_SHIPPING",
                },
                "email_address": "ap@example.com",
            }
        },
    }


@pytest.mark.parametrize(
    ("amount", "currency", "value"),
    [
        ("12.5", "USD", "12.50"),
        ("7", "EUR", "7.00"),
        ("5000", "JPY", "5000"),
        ("1500", "HUF", "1500"),  # two decimals in ISO 4217, none at PayPal
    ],
)
def test_the_amount_has_the_currencys_places(
    fake: FakePayPal,
    credentials: dict[str, str],
    provider: PayPalProvider,
    amount: str,
    currency: str,
    value: str,
) -> None:
    provider.create_checkout(replace(REQUEST, amount=Decimal(amount), currency=currency), credentials)

    [sent] = fake.received("POST", "/v2/checkout/orders")
    assert sent.json["purchase_units"][0]["amount"] == {"currency_code": currency, "value": value}


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("10.005", "USD"),
        ("12.5", "JPY"),
        ("99.5", "TWD"),
        ("0", "USD"),
        ("-5", "USD"),
        ("NaN", "USD"),
        ("1.250", "KWD"),  # not a PayPal currency
    ],
)
def test_an_amount_paypal_cannot_carry_is_refused_not_rounded(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider, amount: str, currency: str
) -> None:
    with pytest.raises(ProviderUnavailable) as raised:
        provider.create_checkout(replace(REQUEST, amount=Decimal(amount), currency=currency), credentials)

    assert raised.value.retryable is False
    assert fake.requests == []


def test_a_float_is_never_money() -> None:
    with pytest.raises(ProviderUnavailable):
        to_value(12.34, "USD")  # type: ignore[arg-type]


def test_thirty_concurrent_checkouts_with_one_request_id_create_one_order(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    start = threading.Barrier(30)

    def checkout() -> str:
        start.wait()
        return provider.create_checkout(REQUEST, credentials).provider_payment_id

    with ThreadPoolExecutor(max_workers=30) as pool:
        ids = list(pool.map(lambda _: checkout(), range(30)))

    assert len(fake.orders) == 1
    assert set(ids) == set(fake.orders)
    sent = fake.received("POST", "/v2/checkout/orders")
    assert len(sent) == 30
    assert {r.header("PayPal-Request-Id") for r in sent} == {KEY}
    assert len(fake.received("POST", "/v1/oauth2/token")) == 1  # the others waited for it


def test_the_same_request_id_later_returns_the_same_order_and_another_a_new_one(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    first = provider.create_checkout(REQUEST, credentials)
    again = provider.create_checkout(REQUEST, credentials)
    other = provider.create_checkout(replace(REQUEST, idempotency_key="another-payment"), credentials)

    assert again == first
    assert other.provider_payment_id != first.provider_payment_id
    assert len(fake.orders) == 2


def test_a_paypal_failure_is_retried_with_the_same_request_id(
    fake: FakePayPal, credentials: dict[str, str]
) -> None:
    fake.fail_next(500, path="/v2/checkout/orders")
    fake.fail_next(429, path="/v2/checkout/orders")

    checkout = PayPalProvider(backoff=0, tokens=TokenCache()).create_checkout(REQUEST, credentials)

    sent = fake.received("POST", "/v2/checkout/orders")
    assert [r.header("PayPal-Request-Id") for r in sent] == [KEY, KEY, KEY]
    assert list(fake.orders) == [checkout.provider_payment_id]


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (429, True),
        (500, True),
        (503, True),
        (409, True),
        (401, False),
        (403, False),
        (400, False),
        (422, False),
    ],
)
def test_paypal_errors_become_the_contracts(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider, status: int, retryable: bool
) -> None:
    issue = "INVALID_PARAMETER_VALUE" if status == 422 else ""
    # A 401 is taken for an expired token once: a new one is asked for and the order sent again.
    fake.fail_next(status, path="/v2/checkout/orders", issue=issue, times=2 if status == 401 else 1)

    with pytest.raises(ProviderUnavailable) as raised:
        provider.create_checkout(REQUEST, credentials)

    assert raised.value.retryable is retryable
    assert raised.value.message
    assert fake.orders == {}


def test_a_declined_instrument_is_declined_for_the_customer(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    fake.fail_next(422, path="/v2/checkout/orders", issue="INSTRUMENT_DECLINED")

    with pytest.raises(Declined) as raised:
        provider.create_checkout(REQUEST, credentials)

    assert raised.value.message == DECLINED_MESSAGE


def test_a_payer_action_sends_the_customer_to_paypal(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    url = "https://www.sandbox.paypal.com/checkoutnow?token=5O190127TN364715T"
    fake.fail_next(422, path="/v2/checkout/orders", issue="PAYER_ACTION_REQUIRED", links=(url,))

    with pytest.raises(RedirectRequired) as raised:
        provider.create_checkout(REQUEST, credentials)

    assert raised.value.url == url


def test_refused_credentials_are_for_staff_and_not_retried(
    fake: FakePayPal, credentials: dict[str, str]
) -> None:
    provider = PayPalProvider(backoff=0, tokens=TokenCache())  # with retries: none for a 401

    with pytest.raises(ProviderUnavailable) as raised:
        provider.create_checkout(REQUEST, {**credentials, "client_secret": "wrong"})

    assert raised.value.retryable is False
    assert len(fake.received("POST", "/v1/oauth2/token")) == 1
    assert fake.orders == {}


def _nobody_listening() -> str:
    """The address of a port nobody listens on (once the socket that had it is closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_paypal_out_of_reach_may_be_retried(credentials: dict[str, str], provider: PayPalProvider) -> None:
    with pytest.raises(ProviderUnavailable) as raised:
        provider.create_checkout(REQUEST, {**credentials, "api_base": _nobody_listening()})

    assert raised.value.retryable is True


@pytest.mark.parametrize(
    "changed",
    [{"client_id": ""}, {"client_secret": ""}, {"api_base": "http://api-m.paypal.example.com"}],
    ids=["no client id", "no secret", "plain http"],
)
def test_unusable_credentials_are_refused_before_any_request(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider, changed: dict[str, str]
) -> None:
    with pytest.raises(ProviderUnavailable) as raised:
        provider.create_checkout(REQUEST, {**credentials, **changed})

    assert raised.value.retryable is False
    assert fake.requests == []


def test_a_method_other_than_paypal_is_refused(credentials: dict[str, str], provider: PayPalProvider) -> None:
    with pytest.raises(ProviderUnavailable):
        provider.create_checkout(replace(REQUEST, method="card"), credentials)


# --- capture ----------------------------------------------------------------------------------


def _approved(fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider, outcome: str) -> str:
    order_id = provider.create_checkout(REQUEST, credentials).provider_payment_id
    fake.approve(order_id, capture=outcome)
    return order_id


def test_a_completed_capture_is_a_succeeded_payment(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    order_id = _approved(fake, credentials, provider, "COMPLETED")

    event = provider.capture(order_id, "capture-key", credentials)

    [sent] = fake.received("POST", f"/v2/checkout/orders/{order_id}/capture")
    [capture_id] = fake.captures
    assert sent.header("PayPal-Request-Id") == "capture-key"
    assert sent.header("Prefer") == "return=representation"
    assert event.type == PAYMENT_SUCCEEDED
    assert event.event_id == f"capture:{capture_id}:COMPLETED"
    assert event.provider_payment_id == order_id
    assert (event.amount, event.currency) == (Decimal("1234.56"), "USD")
    assert event.payload["openar_payment_id"] == "42"
    assert event.payload["capture_id"] == capture_id
    assert event.occurred_at.tzinfo is not None
    json.dumps(event.payload)  # stored as it is


def test_a_pending_capture_is_a_payment_in_flight(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    order_id = _approved(fake, credentials, provider, "PENDING")

    event = provider.capture(order_id, "capture-key", credentials)

    assert event.type == PAYMENT_PROCESSING
    assert "pending review" in event.message


def test_a_declined_capture_is_a_failed_payment(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    order_id = _approved(fake, credentials, provider, "DECLINED")

    event = provider.capture(order_id, "capture-key", credentials)

    [capture_id] = fake.captures
    assert (event.type, event.event_id) == (PAYMENT_FAILED, f"capture:{capture_id}:DECLINED")
    assert event.message == DECLINED_MESSAGE


def test_a_declined_instrument_at_capture_is_a_failed_payment_for_the_customer(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    order_id = _approved(fake, credentials, provider, "INSTRUMENT_DECLINED")

    event = provider.capture(order_id, "capture-key", credentials)

    assert event.type == PAYMENT_FAILED
    assert event.event_id == f"capture:{order_id}:declined"
    assert event.provider_payment_id == order_id
    assert event.message == DECLINED_MESSAGE
    assert fake.captures == {}


def test_capturing_again_gives_the_same_outcome_once_and_a_later_one_apart(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    order_id = _approved(fake, credentials, provider, "PENDING")
    first = provider.capture(order_id, "capture-key", credentials)

    replayed = provider.capture(order_id, "capture-key", credentials)  # a reload of the return page
    read_back = provider.capture(order_id, "another-key", credentials)  # already captured: read
    [capture_id] = fake.captures
    fake.complete(capture_id)
    later = provider.capture(order_id, "yet-another-key", credentials)

    assert replayed == first
    assert read_back.event_id == first.event_id  # stored once
    assert (later.type, later.event_id) == (PAYMENT_SUCCEEDED, f"capture:{capture_id}:COMPLETED")
    assert len(fake.captures) == 1


def test_a_capture_before_the_buyer_approved_sends_them_to_paypal(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    checkout = provider.create_checkout(REQUEST, credentials)

    with pytest.raises(RedirectRequired) as raised:
        provider.capture(checkout.provider_payment_id, "capture-key", credentials)

    assert raised.value.url == checkout.redirect_url
    assert fake.captures == {}


def test_a_second_payment_of_the_same_invoice_id_is_refused(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    """After PayPal forgot the request id, the invoice id still stops a second payment."""
    first = _approved(fake, credentials, provider, "COMPLETED")
    provider.capture(first, "capture-1", credentials)
    second = provider.create_checkout(replace(REQUEST, idempotency_key="forgotten"), credentials)
    fake.approve(second.provider_payment_id)

    with pytest.raises(ProviderUnavailable) as raised:
        provider.capture(second.provider_payment_id, "capture-2", credentials)

    assert raised.value.retryable is False
    assert len(fake.captures) == 1


def test_capturing_an_unknown_order_is_for_staff(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    with pytest.raises(ProviderUnavailable) as raised:
        provider.capture("5O190127TN364715T", "capture-key", credentials)

    assert raised.value.retryable is False


# --- refunds ----------------------------------------------------------------------------------


def _captured(fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider) -> str:
    order_id = _approved(fake, credentials, provider, "COMPLETED")
    provider.capture(order_id, "capture-key", credentials)
    return order_id


def _refund_request(order_id: str, **changes: Any) -> RefundRequest:
    request = RefundRequest(
        provider_payment_id=order_id,
        amount=Decimal("100.00"),
        currency="USD",
        idempotency_key="0d7c1f7e-refund-1",
        reason="Damaged goods",
    )
    return replace(request, **changes)


def test_a_refund_refunds_the_orders_capture_once_per_request_id(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    order_id = _captured(fake, credentials, provider)
    [capture_id] = fake.captures

    result = provider.refund(_refund_request(order_id), credentials)
    again = provider.refund(_refund_request(order_id), credentials)

    [refund] = fake.refunds.values()
    assert result.provider_refund_id == refund["id"]
    assert result.succeeded is True
    assert again == result
    sent = fake.received("POST", f"/v2/payments/captures/{capture_id}/refund")
    assert [r.header("PayPal-Request-Id") for r in sent] == ["0d7c1f7e-refund-1"] * 2
    assert sent[0].json == {"amount": {"currency_code": "USD", "value": "100.00"}, "custom_id": "42"}
    assert len(fake.received("GET", f"/v2/checkout/orders/{order_id}")) == 2
    assert fake.captures[capture_id]["status"] == "PARTIALLY_REFUNDED"


def test_a_pending_refund_is_not_yet_succeeded(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    fake.refund_status = "PENDING"
    order_id = _captured(fake, credentials, provider)

    result = provider.refund(_refund_request(order_id), credentials)

    assert result.provider_refund_id in fake.refunds
    assert result.succeeded is False


@pytest.mark.parametrize("case", ["not captured", "unknown order", "too much", "other currency"])
def test_a_refund_paypal_cannot_make_is_for_staff(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider, case: str
) -> None:
    if case == "not captured":
        order_id = provider.create_checkout(REQUEST, credentials).provider_payment_id
    else:
        order_id = _captured(fake, credentials, provider)
    request = {
        "not captured": _refund_request(order_id),
        "unknown order": _refund_request("5O190127TN364715T"),
        "too much": _refund_request(order_id, amount=Decimal("2000.00")),
        "other currency": _refund_request(order_id, currency="CAD"),
    }[case]

    with pytest.raises(ProviderUnavailable) as raised:
        provider.refund(request, credentials)

    assert raised.value.retryable is False
    assert fake.refunds == {}


# --- webhooks ---------------------------------------------------------------------------------

ORDER_ID = "5O190127TN364715T"
CAPTURE_ID = "3C679366HH908993F"
CREATE_TIME = "2026-01-01T00:00:00.000Z"


def _event(type_: str, resource: dict[str, Any], resource_type: str = "capture") -> dict[str, Any]:
    return {
        "id": "WH-58D329510W468432D-8HN650336L201105X",
        "event_version": "1.0",
        "create_time": CREATE_TIME,
        "resource_type": resource_type,
        "resource_version": "2.0",
        "event_type": type_,
        "summary": "Payment completed for $ 1234.56 USD",
        "resource": resource,
    }


def _capture(**fields: Any) -> dict[str, Any]:
    return {
        "id": CAPTURE_ID,
        "status": "COMPLETED",
        "amount": {"currency_code": "USD", "value": "1234.56"},
        "final_capture": True,
        "custom_id": "42",
        "invoice_id": "42",
        "supplementary_data": {"related_ids": {"order_id": ORDER_ID}},
        "create_time": "2026-01-01T00:00:00Z",
        "update_time": "2026-01-01T00:00:00Z",
        **fields,
    }


def _refund(refund_id: str, capture_id: str, value: str = "100.00", **fields: Any) -> dict[str, Any]:
    """A refund as PayPal's webhooks carry it: it names its capture by its ``up`` link only."""
    return {
        "id": refund_id,
        "status": "COMPLETED",
        "amount": {"currency_code": "USD", "value": value},
        "links": [
            {
                "href": f"https://api.paypal.com/v2/payments/refunds/{refund_id}",
                "rel": "self",
                "method": "GET",
            },
            {
                "href": f"https://api.paypal.com/v2/payments/captures/{capture_id}",
                "rel": "up",
                "method": "GET",
            },
        ],
        **fields,
    }


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def _delivered(
    event: dict[str, Any], *, webhook_id: str = WEBHOOK_ID, sent_at: datetime.datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of PayPal's delivery of ``event``. The body is deliberately not
    compact JSON (indented, unescaped non-ASCII): only its exact bytes verify."""
    body = json.dumps(event, indent=2, ensure_ascii=False).encode()
    transmission_id = str(uuid.uuid4())
    transmission_time = (sent_at or _now()).strftime("%Y-%m-%dT%H:%M:%SZ")
    return body, {
        "Content-Type": "application/json",
        "Paypal-Transmission-Id": transmission_id,
        "Paypal-Transmission-Time": transmission_time,
        "Paypal-Transmission-Sig": sign(transmission_id, transmission_time, webhook_id, body),
        "Paypal-Cert-Url": CERT_URL,
        "Paypal-Auth-Algo": AUTH_ALGO,
    }


def _parse(event: dict[str, Any], credentials: dict[str, str], provider: PayPalProvider) -> list[Event]:
    return provider.parse_events(*_delivered(event), credentials)


def test_a_verified_event_is_read_after_paypal_said_so(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    event = _event("PAYMENT.CAPTURE.COMPLETED", _capture(note="Zahlung für Rechnung"))
    body, headers = _delivered(event)

    [parsed] = provider.parse_events(body, headers, credentials)

    [asked] = fake.received("POST", "/v1/notifications/verify-webhook-signature")
    assert asked.json == {
        "auth_algo": AUTH_ALGO,
        "cert_url": CERT_URL,
        "transmission_id": headers["Paypal-Transmission-Id"],
        "transmission_sig": headers["Paypal-Transmission-Sig"],
        "transmission_time": headers["Paypal-Transmission-Time"],
        "webhook_id": WEBHOOK_ID,
        "webhook_event": event,
    }
    assert body.decode() in asked.body  # the exact bytes, not serialized again
    assert parsed.type == PAYMENT_SUCCEEDED
    assert parsed.event_id == event["id"]


@pytest.mark.parametrize(
    ("type_", "fields", "expected", "message"),
    [
        ("PAYMENT.CAPTURE.COMPLETED", {}, PAYMENT_SUCCEEDED, ""),
        (
            "PAYMENT.CAPTURE.PENDING",
            {"status": "PENDING", "status_details": {"reason": "PENDING_REVIEW"}},
            PAYMENT_PROCESSING,
            "PayPal holds the payment for now: pending review.",
        ),
        ("PAYMENT.CAPTURE.DENIED", {"status": "DECLINED"}, PAYMENT_FAILED, "PayPal denied the payment."),
    ],
)
def test_capture_events_are_normalized_and_name_the_order(
    credentials: dict[str, str],
    provider: PayPalProvider,
    type_: str,
    fields: dict[str, Any],
    expected: str,
    message: str,
) -> None:
    [event] = _parse(_event(type_, _capture(**fields)), credentials, provider)

    assert event.type == expected
    assert event.event_id == "WH-58D329510W468432D-8HN650336L201105X"  # not the capture's own
    assert event.provider_payment_id == ORDER_ID
    assert event.occurred_at == datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert event.message == message
    assert event.payload["openar_payment_id"] == "42"
    assert event.payload["capture_id"] == CAPTURE_ID
    assert event.payload["paypal_type"] == type_
    json.dumps(event.payload)  # stored as it is


def test_an_approval_reversed_before_capture_is_a_failed_payment(
    credentials: dict[str, str], provider: PayPalProvider
) -> None:
    resource = {
        "order_id": ORDER_ID,
        "purchase_units": [{"reference_id": "42", "custom_id": "42", "invoice_id": "42"}],
        "payment_source": {"paypal": {}},
    }

    [event] = _parse(
        _event("CHECKOUT.PAYMENT-APPROVAL.REVERSED", resource, resource_type="checkout-order"),
        credentials,
        provider,
    )

    assert (event.type, event.provider_payment_id) == (PAYMENT_FAILED, ORDER_ID)
    assert event.payload["openar_payment_id"] == "42"
    assert "reversed" in event.message


def test_a_refund_made_here_comes_back_as_a_refund_of_its_order(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    order_id = _captured(fake, credentials, provider)
    [capture_id] = fake.captures
    result = provider.refund(_refund_request(order_id), credentials)

    [event] = _parse(
        _event("PAYMENT.CAPTURE.REFUNDED", _refund(result.provider_refund_id, capture_id), "refund"),
        credentials,
        provider,
    )

    assert (event.type, event.provider_payment_id, event.refund_id) == (
        REFUND_SUCCEEDED,
        order_id,
        result.provider_refund_id,
    )
    assert (event.amount, event.currency) == (Decimal("100.00"), "USD")
    assert event.payload["openar_payment_id"] == "42"
    assert len(fake.received("GET", f"/v2/payments/captures/{capture_id}")) == 1


def test_a_reversal_is_a_return_of_the_order_found_through_its_capture(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    order_id = _captured(fake, credentials, provider)
    [capture_id] = fake.captures
    reversal = _refund("09E71677NS257044M", capture_id, "1234.56", note_to_payer="Payment reversed")

    [event] = _parse(_event("PAYMENT.CAPTURE.REVERSED", reversal, "refund"), credentials, provider)

    assert (event.type, event.provider_payment_id) == (PAYMENT_RETURNED, order_id)
    assert event.amount == Decimal("1234.56")
    assert event.payload["openar_payment_id"] == "42"
    assert event.message == "PayPal took the payment back (a chargeback or reversal): Payment reversed."


def test_a_refund_of_a_capture_paypal_does_not_know_here_keeps_the_capture(
    credentials: dict[str, str], provider: PayPalProvider
) -> None:
    [event] = _parse(
        _event("PAYMENT.CAPTURE.REFUNDED", _refund("1JU08902781691411", CAPTURE_ID), "refund"),
        credentials,
        provider,
    )

    assert (event.type, event.provider_payment_id) == (REFUND_SUCCEEDED, CAPTURE_ID)
    assert "openar_payment_id" not in event.payload


def test_a_refund_event_while_paypal_is_out_of_reach_is_not_accepted(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    """Nothing is stored; the webhook fails and PayPal sends the event again later."""
    fake.fail_next(503, path="/v2/payments/captures/")

    with pytest.raises(ProviderUnavailable) as raised:
        _parse(_event("PAYMENT.CAPTURE.REFUNDED", _refund("R1", CAPTURE_ID), "refund"), credentials, provider)

    assert raised.value.retryable is True


@pytest.mark.parametrize(
    ("type_", "resource_type"),
    [("CHECKOUT.ORDER.APPROVED", "checkout-order"), ("PAYMENT.CAPTURE.DECLINED", "capture")],
)
def test_other_events_keep_paypals_name(
    credentials: dict[str, str], provider: PayPalProvider, type_: str, resource_type: str
) -> None:
    resource = _capture() if resource_type == "capture" else {"id": ORDER_ID, "status": "APPROVED"}

    [event] = _parse(_event(type_, resource, resource_type), credentials, provider)

    assert event.type == type_
    assert event.provider_payment_id == ORDER_ID


def test_the_transmission_headers_are_found_whatever_their_case(
    credentials: dict[str, str], provider: PayPalProvider
) -> None:
    body, headers = _delivered(_event("PAYMENT.CAPTURE.COMPLETED", _capture()))

    [event] = provider.parse_events(body, {k.upper(): v for k, v in headers.items()}, credentials)

    assert event.type == PAYMENT_SUCCEEDED


def _tampered() -> tuple[bytes, dict[str, str]]:
    body, headers = _delivered(_event("PAYMENT.CAPTURE.COMPLETED", _capture()))
    tampered = body.replace(b'"value": "1234.56"', b'"value": "9999.99"')
    assert tampered != body
    return tampered, headers


def _reformatted() -> tuple[bytes, dict[str, str]]:
    """The same event, compacted: the signature covers the bytes, not the meaning."""
    body, headers = _delivered(_event("PAYMENT.CAPTURE.COMPLETED", _capture()))
    return json.dumps(json.loads(body)).encode(), headers


def _for_another_webhook() -> tuple[bytes, dict[str, str]]:
    return _delivered(_event("PAYMENT.CAPTURE.COMPLETED", _capture()), webhook_id="9XL90610J3647323C")


def _forged() -> tuple[bytes, dict[str, str]]:
    body, headers = _delivered(_event("PAYMENT.CAPTURE.COMPLETED", _capture()))
    return body, {**headers, "Paypal-Transmission-Sig": base64.b64encode(b"x" * 32).decode()}


def _stale() -> tuple[bytes, dict[str, str]]:
    return _delivered(
        _event("PAYMENT.CAPTURE.COMPLETED", _capture()), sent_at=_now() - datetime.timedelta(seconds=301)
    )


def _from_the_future() -> tuple[bytes, dict[str, str]]:
    return _delivered(
        _event("PAYMENT.CAPTURE.COMPLETED", _capture()), sent_at=_now() + datetime.timedelta(seconds=301)
    )


def _without(header: str) -> Any:
    def make() -> tuple[bytes, dict[str, str]]:
        body, headers = _delivered(_event("PAYMENT.CAPTURE.COMPLETED", _capture()))
        return body, {k: v for k, v in headers.items() if k.lower() != header.lower()}

    return make


def _with_header(header: str, value: str) -> Any:
    def make() -> tuple[bytes, dict[str, str]]:
        body, headers = _delivered(_event("PAYMENT.CAPTURE.COMPLETED", _capture()))
        return body, {**headers, header: value}

    return make


def _signed_text(text: bytes) -> tuple[bytes, dict[str, str]]:
    _, headers = _delivered(_event("PAYMENT.CAPTURE.COMPLETED", _capture()))
    signature = sign(headers["Paypal-Transmission-Id"], headers["Paypal-Transmission-Time"], WEBHOOK_ID, text)
    return text, {**headers, "Paypal-Transmission-Sig": signature}


REFUSED = {
    "tampered": _tampered,
    "reformatted": _reformatted,
    "for another webhook": _for_another_webhook,
    "forged signature": _forged,
    "other algorithm": _with_header("Paypal-Auth-Algo", "SHA1withRSA"),
    "not json": lambda: _signed_text(b"not json"),
    "not an object": lambda: _signed_text(b"[]"),
    "no event type": lambda: _signed_text(b'{"id": "WH-1"}'),
    "not utf-8": lambda: _signed_text('{"id": "WH-1", "event_type": "é"}'.encode("latin-1")),
}


@pytest.mark.parametrize("make", REFUSED.values(), ids=REFUSED.keys())
def test_an_event_that_does_not_verify_is_refused(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider, make: Any
) -> None:
    body, headers = make()

    with pytest.raises(InvalidEvent):
        provider.parse_events(body, headers, credentials)


MISSING = ["Paypal-Transmission-Id", "Paypal-Transmission-Time", "Paypal-Transmission-Sig"]
MISSING += ["Paypal-Cert-Url", "Paypal-Auth-Algo"]
MALFORMED = {"bad time": _with_header("Paypal-Transmission-Time", "yesterday")}
MALFORMED |= {"stale": _stale, "from the future": _from_the_future}


@pytest.mark.parametrize(
    "make", [*map(_without, MISSING), *MALFORMED.values()], ids=[*MISSING, *MALFORMED.keys()]
)
def test_a_delivery_without_its_transmission_headers_is_refused_without_asking_paypal(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider, make: Any
) -> None:
    body, headers = make()

    with pytest.raises(InvalidEvent):
        provider.parse_events(body, headers, credentials)

    assert fake.requests == []


@pytest.mark.parametrize("missing", ["webhook_id", "client_id", "client_secret"])
def test_without_the_apps_credentials_nothing_verifies(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider, missing: str
) -> None:
    body, headers = _delivered(_event("PAYMENT.CAPTURE.COMPLETED", _capture()))

    with pytest.raises(InvalidEvent):
        provider.parse_events(body, headers, {**credentials, missing: ""})

    assert fake.requests == []


def test_an_event_when_paypal_cannot_verify_it_now_may_be_sent_again(
    fake: FakePayPal, credentials: dict[str, str], provider: PayPalProvider
) -> None:
    body, headers = _delivered(_event("PAYMENT.CAPTURE.COMPLETED", _capture()))

    fake.fail_next(503, path="/v1/notifications/")
    with pytest.raises(ProviderUnavailable) as busy:
        provider.parse_events(body, headers, credentials)
    with pytest.raises(ProviderUnavailable) as unreachable:
        provider.parse_events(body, headers, {**credentials, "api_base": _nobody_listening()})

    assert busy.value.retryable is True
    assert unreachable.value.retryable is True


def test_an_event_just_inside_the_tolerance_is_accepted(
    credentials: dict[str, str], provider: PayPalProvider
) -> None:
    body, headers = _delivered(
        _event("PAYMENT.CAPTURE.COMPLETED", _capture()), sent_at=_now() - datetime.timedelta(seconds=290)
    )

    [event] = provider.parse_events(body, headers, credentials)

    assert event.type == PAYMENT_SUCCEEDED
