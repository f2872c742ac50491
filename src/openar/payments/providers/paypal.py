"""PayPal: payments from a PayPal account (or what the buyer funds it with) through PayPal
Checkout, with the Orders v2 REST API.

Why it is built this way:

- **Plain HTTPS, no SDK.** PayPal keeps no maintained server SDK for Orders v2 in Python, so
  the few calls OpenAR needs are made with ``requests``: a new ``requests.Session`` for every
  provider call (nothing of one organization's call, cookies or connections, is shared with
  another's), 30 seconds per HTTP request because a customer is waiting on the page.
- **Redirect, then capture.** ``create_checkout`` creates an order (``intent=CAPTURE``) and
  answers PayPal's page for it (the ``payer-action`` link). The buyer approves there and comes
  back to ``return_url``; the money only moves when OpenAR then *captures* the order:
  :meth:`PayPalProvider.capture`, which the return page calls. Its answer is a normalized
  event, processed like a webhook's. PayPal also sends ``PAYMENT.CAPTURE.*`` webhooks for the
  same capture; they carry PayPal's own event id (``WH-...``), so both are stored, and the
  service's state machine ignores whichever comes second. Card and bank numbers are typed at
  PayPal only.
- **Idempotency.** Every request that creates something (an order, a capture, a refund)
  carries the OpenAR row's idempotency key as ``PayPal-Request-Id``: a double click, a
  retried task or two workers racing reach PayPal with the same id and get the one object
  PayPal created first. PayPal keeps those ids for a limited time only, so the purchase unit
  also carries our payment id as ``invoice_id``: a PayPal account that blocks duplicate
  invoice ids (the default) refuses to take the same OpenAR payment twice, however late.
  Retries (connection errors, 409, 429, 5xx; ``max_retries`` of them) resend the same id.
- **Per-organization credentials.** Each organization has its own PayPal REST app: the
  ``client_id``, ``client_secret``, ``webhook_id`` (and optionally ``api_base``: the sandbox's
  ``https://api-m.sandbox.paypal.com``, or a local fake in tests) come with every call.
- **Access tokens.** PayPal's OAuth2 tokens (client credentials) live for hours, and asking
  for one on every call doubles the calls and meets PayPal's rate limits, so they are kept in
  this process (:class:`TokenCache`) until a few minutes before they expire. The cache key
  is the API address, the client id *and a hash of the secret*: an organization that types
  another's client id with a wrong secret must not be handed the other's token. One token
  request per key at a time (the others wait for it), and a token PayPal no longer accepts
  (401) is dropped and fetched again once.
- **Amounts.** Decimal amounts go to PayPal as decimal strings with the currency's places
  (``"1234.56"`` USD, ``"5000"`` JPY), never through a float; an amount with more decimals
  than the currency has is refused, not rounded. PayPal takes its own list of currencies,
  and HUF and TWD without decimals although ISO 4217 gives them two.

Webhooks. ``parse_events`` checks that PayPal's transmission headers are all there and that
the transmission is no older (and no further in the future) than five minutes, then asks
PayPal whether the message is genuine (``POST /v1/notifications/verify-webhook-signature``)
and only reads it when PayPal answers ``SUCCESS``. The event is sent to PayPal as the exact
bytes received, embedded in the verification request rather than parsed and serialized
again: PayPal's signature covers a CRC32 of those bytes, and a re-serialized body (other
spacing, key order or escapes) would not verify. PayPal out of reach is
``ProviderUnavailable``: the webhook answers 503 and PayPal delivers it again later (each
delivery is signed with its own transmission time). PayPal's events map to OpenAR's:

======================================  =====================
``PAYMENT.CAPTURE.COMPLETED``           ``payment.succeeded``
``PAYMENT.CAPTURE.PENDING``             ``payment.processing``
``PAYMENT.CAPTURE.DENIED``              ``payment.failed``
``CHECKOUT.PAYMENT-APPROVAL.REVERSED``  ``payment.failed``
``PAYMENT.CAPTURE.REVERSED``            ``payment.returned`` (a chargeback or reversal)
``PAYMENT.CAPTURE.REFUNDED``            ``refund.succeeded`` (the refund ``COMPLETED``)
``PAYMENT.CAPTURE.REFUNDED``            ``refund.failed`` (the refund ``FAILED`` or
                                        ``CANCELLED``)
======================================  =====================

Anything else keeps PayPal's own name; the service stores it and ignores it. PayPal has no
webhook of its own for a refund that failed: ``PAYMENT.CAPTURE.REFUNDED`` reports the refund
as it is, and one whose status is ``FAILED`` or ``CANCELLED`` gave nothing back
(``refund.failed``); one still ``PENDING`` keeps PayPal's name until another event says how
it ended. A reversal carries its amount, which may be part of the payment only.

Matching events to payments. ``Payment.provider_payment_id`` holds the order id. Capture
events name it in ``supplementary_data.related_ids.order_id``, the approval reversal in
``order_id``; the capture's ``custom_id`` (our payment id) goes to
``Event.payload["openar_payment_id"]``. Refunds and reversals are refund objects that name
neither: their capture (the ``up`` link) is read from PayPal to find both, which is why such
an event may need PayPal to answer before it is accepted. Capture outcomes answered by
:meth:`PayPalProvider.capture` have the event id ``capture:<capture id>:<capture status>``
(``capture:<order id>:declined`` when PayPal declined before any capture existed): the same
outcome asked twice is stored once, and a later, different outcome of the same capture (a
pending capture found completed) is not mistaken for a duplicate.

The PayPal app's webhook should send: ``PAYMENT.CAPTURE.COMPLETED``,
``PAYMENT.CAPTURE.PENDING``, ``PAYMENT.CAPTURE.DENIED``, ``PAYMENT.CAPTURE.REVERSED``,
``PAYMENT.CAPTURE.REFUNDED`` and ``CHECKOUT.PAYMENT-APPROVAL.REVERSED``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from openar.core.money import exponent
from openar.payments.providers.base import (
    EVENT_TYPES,
    PAYMENT_FAILED,
    PAYMENT_PROCESSING,
    PAYMENT_RETURNED,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_SUCCEEDED,
    Checkout,
    CheckoutRequest,
    Declined,
    Event,
    InvalidEvent,
    PaymentProvider,
    ProviderUnavailable,
    RedirectRequired,
    RefundRequest,
    RefundResult,
)
from openar.payments.providers.registry import register

DEFAULT_API_BASE = "https://api-m.paypal.com"
SANDBOX_API_BASE = "https://api-m.sandbox.paypal.com"
DEFAULT_TIMEOUT = 30.0  # seconds per HTTP request
DEFAULT_MAX_RETRIES = 2
DEFAULT_BACKOFF = 0.5  # seconds before the first retry, doubled for each next one
TRANSMISSION_TOLERANCE = 300  # seconds a webhook's transmission time may be off, either way
TOKEN_MARGIN = 300  # seconds before its expiry a token is no longer used

# The headers PayPal signs a webhook delivery with (all needed to verify it).
TRANSMISSION_HEADERS = {
    "auth_algo": "PAYPAL-AUTH-ALGO",
    "cert_url": "PAYPAL-CERT-URL",
    "transmission_id": "PAYPAL-TRANSMISSION-ID",
    "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
    "transmission_time": "PAYPAL-TRANSMISSION-TIME",
}

# The currencies PayPal takes (https://developer.paypal.com/api/rest/reference/currency-codes/).
PAYPAL_CURRENCIES = frozenset(
    {
        "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "ILS",
        "JPY", "MXN", "MYR", "NOK", "NZD", "PHP", "PLN", "SEK", "SGD", "THB", "TWD", "USD",
    }
)  # fmt: skip
_NO_DECIMALS = frozenset({"HUF", "TWD"})  # two in ISO 4217, none at PayPal
_DESCRIPTION_MAX = 127  # PayPal's limit on a purchase unit's description
_RETRIED = frozenset({409, 429, 500, 502, 503, 504})

DECLINED_MESSAGE = "PayPal declined this way of paying. Please choose another at PayPal, or pay another way."
FAILED_MESSAGES = {
    "PAYMENT.CAPTURE.DENIED": "PayPal denied the payment.",
    "CHECKOUT.PAYMENT-APPROVAL.REVERSED": "PayPal reversed the payment after it was approved, before it was "
    "taken.",
}
RETURNED_MESSAGE = "PayPal took the payment back (a chargeback or reversal)"
REFUND_FAILED_MESSAGES = {
    "FAILED": "PayPal could not make the refund.",
    "CANCELLED": "The refund was cancelled at PayPal.",
}

# A capture's status → our event type (``capture`` answers and ``PAYMENT.CAPTURE.*`` alike).
_CAPTURE_TYPES = {
    "COMPLETED": PAYMENT_SUCCEEDED,
    "PARTIALLY_REFUNDED": PAYMENT_SUCCEEDED,  # it was completed before it was refunded
    "REFUNDED": PAYMENT_SUCCEEDED,
    "PENDING": PAYMENT_PROCESSING,
    "DECLINED": PAYMENT_FAILED,
    "FAILED": PAYMENT_FAILED,
}
_REFUND_RESOURCES = frozenset({"PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"})
_WEBHOOK_TYPES = {
    "PAYMENT.CAPTURE.COMPLETED": PAYMENT_SUCCEEDED,
    "PAYMENT.CAPTURE.PENDING": PAYMENT_PROCESSING,
    "PAYMENT.CAPTURE.DENIED": PAYMENT_FAILED,
    "CHECKOUT.PAYMENT-APPROVAL.REVERSED": PAYMENT_FAILED,
    "PAYMENT.CAPTURE.REVERSED": PAYMENT_RETURNED,
    "PAYMENT.CAPTURE.REFUNDED": REFUND_SUCCEEDED,
}


# --- access tokens -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    value: str
    good_until: float  # on the cache's clock


@dataclass
class TokenCache:
    """PayPal access tokens of this process, by (API address, client id, hash of the secret).

    ``clock`` is monotonic (a changed wall clock must not keep an expired token alive); tests
    pass their own."""

    clock: Callable[[], float] = time.monotonic
    _tokens: dict[tuple[str, str, str], _Token] = field(default_factory=dict)
    _fetching: dict[tuple[str, str, str], threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: tuple[str, str, str], fetch: Callable[[], tuple[str, int]]) -> str:
        """The key's token, fetched (``fetch`` answers the token and its ``expires_in``) only
        when there is none still good. Callers of one key wait for one fetch, not make one each;
        other keys are not held up by it."""
        with self._lock:
            token = self._good(key)
            if token:
                return token
            fetch_lock = self._fetching.setdefault(key, threading.Lock())
        with fetch_lock:
            with self._lock:
                token = self._good(key)
            if token:  # fetched by another caller while this one waited
                return token
            value, expires_in = fetch()
            lifetime = expires_in - min(TOKEN_MARGIN, expires_in // 2)
            with self._lock:
                self._tokens[key] = _Token(value, self.clock() + lifetime)
            return value

    def forget(self, key: tuple[str, str, str], value: str) -> None:
        """Drop a token PayPal refused (only that one: another caller may have replaced it)."""
        with self._lock:
            if (token := self._tokens.get(key)) is not None and token.value == value:
                del self._tokens[key]

    def _good(self, key: tuple[str, str, str]) -> str:
        token = self._tokens.get(key)
        return token.value if token is not None and self.clock() < token.good_until else ""


_TOKENS = TokenCache()


# --- the provider ------------------------------------------------------------------------------


class PayPalProvider:
    """PayPal Checkout payments, with one PayPal REST app per organization.

    ``max_retries``, ``backoff``, ``timeout`` and ``tokens`` exist for tests (no retries, so
    that an error answered by a fake is seen at once; a token cache with a clock they move);
    production uses the defaults and the process's token cache."""

    name = "paypal"
    methods: frozenset[str] = frozenset({"paypal"})

    def __init__(
        self,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        timeout: float = DEFAULT_TIMEOUT,
        tokens: TokenCache | None = None,
    ) -> None:
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout
        self.tokens = tokens if tokens is not None else _TOKENS

    # --- checkout --------------------------------------------------------------------------

    def create_checkout(self, request: CheckoutRequest, credentials: Mapping[str, str]) -> Checkout:
        if request.method not in self.methods:
            raise ProviderUnavailable(f"PayPal does not take {request.method!r} payments.", retryable=False)
        currency = request.currency.upper()
        ours = str(request.payment_id)
        experience: dict[str, str] = {
            "return_url": request.return_url,
            "cancel_url": request.cancel_url,
            "user_action": "PAY_NOW",  # the buyer's approval is the payment: we capture at once
            "shipping_preference": "NO_SHIPPING",  # invoices: nothing is shipped
        }
        paypal: dict[str, Any] = {"experience_context": experience}
        if request.customer_email:
            paypal["email_address"] = request.customer_email  # prefills PayPal's login
        order = {
            "intent": "CAPTURE",
            "purchase_units": [
                {
                    "reference_id": ours,
                    "custom_id": ours,  # comes back on the capture and its webhooks
                    "invoice_id": ours,  # PayPal refuses a second payment of the same invoice id
                    "description": f"Payment to {request.description}"[:_DESCRIPTION_MAX],
                    "amount": {"currency_code": currency, "value": to_value(request.amount, currency)},
                }
            ],
            "payment_source": {"paypal": paypal},
        }
        with self._session(credentials) as session:
            answer = session.call(
                "POST", "/v2/checkout/orders", body=order, request_id=request.idempotency_key
            )
        if answer.status == 422 and "INSTRUMENT_DECLINED" in answer.issues:
            raise Declined(DECLINED_MESSAGE)
        if answer.status == 422 and "PAYER_ACTION_REQUIRED" in answer.issues:
            raise _redirect(answer.data)
        answer.raise_for_status("create the payment")
        order_id = str(answer.data.get("id") or "")
        url = _link(answer.data, "payer-action", "approve")
        if not order_id or not url:
            raise ProviderUnavailable("PayPal created the order without a payment page.", retryable=False)
        return Checkout(provider_payment_id=order_id, redirect_url=url)

    def capture(self, order_id: str, idempotency_key: str, credentials: Mapping[str, str]) -> Event:
        """Take the money of an order the buyer approved; the return page calls this when the
        buyer comes back from PayPal. The answer is the outcome as a normalized event, to be
        stored and processed like a webhook's:

        - ``payment.succeeded``: PayPal completed the capture;
        - ``payment.processing``: the capture is pending (PayPal reviews it, an eCheck);
          ``PAYMENT.CAPTURE.COMPLETED`` or ``DENIED`` follows by webhook;
        - ``payment.failed``: PayPal declined the buyer's funding (``INSTRUMENT_DECLINED``) or
          the capture; ``Event.message`` is for the customer.

        Calling it again with the same key replays PayPal's first answer; with another key, an
        order already captured is read back instead (the same outcome, or a later one). The same
        outcome also arrives by webhook under PayPal's own event id; the service ignores the
        second. Raises ``RedirectRequired`` when the buyer has not approved the order (yet)."""
        path = f"/v2/checkout/orders/{_segment(order_id)}"
        with self._session(credentials) as session:
            answer = session.call("POST", f"{path}/capture", body={}, request_id=idempotency_key)
            if answer.status == 422 and "ORDER_ALREADY_CAPTURED" in answer.issues:
                answer = session.call("GET", path)
            elif answer.status == 422 and answer.issues & {"ORDER_NOT_APPROVED", "PAYER_ACTION_REQUIRED"}:
                if _link(answer.data, "payer-action", "approve", "redirect"):
                    raise _redirect(answer.data)
                raise _redirect(session.call("GET", path).data)
        if answer.status == 422 and "INSTRUMENT_DECLINED" in answer.issues:
            return Event(
                event_id=f"capture:{order_id}:declined",
                type=PAYMENT_FAILED,
                provider_payment_id=order_id,
                occurred_at=_now(),
                message=DECLINED_MESSAGE,
                payload={"paypal_type": "capture", "order_id": order_id, "issue": "INSTRUMENT_DECLINED"},
            )
        if answer.status == 404:
            raise ProviderUnavailable(f"PayPal has no order {order_id}.", retryable=False)
        answer.raise_for_status("take the payment")
        capture = _capture_of(answer.data)
        if capture is None:
            raise ProviderUnavailable(f"PayPal has not captured order {order_id}.", retryable=False)
        return _capture_event(order_id, capture)

    # --- refunds ---------------------------------------------------------------------------

    def refund(self, request: RefundRequest, credentials: Mapping[str, str]) -> RefundResult:
        """Refund part or all of a captured order. PayPal refunds a capture, which only the
        order knows, so the order is read first (a plain read, safe to repeat); the refund
        itself carries the refund row's idempotency key."""
        currency = request.currency.upper()
        value = to_value(request.amount, currency)
        order_id = request.provider_payment_id
        with self._session(credentials) as session:
            answer = session.call("GET", f"/v2/checkout/orders/{_segment(order_id)}")
            if answer.status == 404:
                raise ProviderUnavailable(f"PayPal has no order {order_id}.", retryable=False)
            answer.raise_for_status("read the payment")
            capture = _capture_of(answer.data, refundable=True)
            if capture is None:
                raise ProviderUnavailable(
                    "PayPal has no completed payment for this order; there is nothing to refund.",
                    retryable=False,
                )
            paid_in = str(_dict(capture.get("amount")).get("currency_code") or "").upper()
            if paid_in and paid_in != currency:
                raise ProviderUnavailable(
                    f"The order was paid in {paid_in}, not {currency}.", retryable=False
                )
            body: dict[str, Any] = {"amount": {"currency_code": currency, "value": value}}
            if capture.get("custom_id"):
                body["custom_id"] = str(capture["custom_id"])  # names our payment in its webhook
            answer = session.call(
                "POST",
                f"/v2/payments/captures/{_segment(str(capture['id']))}/refund",
                body=body,
                request_id=request.idempotency_key,
            )
        answer.raise_for_status("refund the payment")
        refund_id = str(answer.data.get("id") or "")
        if not refund_id:
            raise ProviderUnavailable("PayPal answered the refund without its id.", retryable=False)
        return RefundResult(provider_refund_id=refund_id, succeeded=answer.data.get("status") == "COMPLETED")

    # --- webhooks --------------------------------------------------------------------------

    def parse_events(
        self, body: bytes, headers: Mapping[str, str], credentials: Mapping[str, str]
    ) -> list[Event]:
        webhook_id = credentials.get("webhook_id") or ""
        if not webhook_id:
            raise InvalidEvent("No PayPal webhook id is configured; the event cannot be verified.")
        if not credentials.get("client_id") or not credentials.get("client_secret"):
            raise InvalidEvent("No PayPal client id and secret are configured; the event cannot be verified.")
        transmission = {key: _header(headers, name) for key, name in TRANSMISSION_HEADERS.items()}
        missing = [TRANSMISSION_HEADERS[key] for key, value in transmission.items() if not value]
        if missing:
            raise InvalidEvent(f"The request lacks PayPal's headers: {', '.join(missing)}.")
        sent_at = _parse_time(transmission["transmission_time"])
        if sent_at is None:
            raise InvalidEvent("The PayPal transmission time is not a time.")
        if abs((_now() - sent_at).total_seconds()) > TRANSMISSION_TOLERANCE:
            raise InvalidEvent("The PayPal transmission time is too far from now (a replay?).")
        try:
            text = body.decode("utf-8")
            data = json.loads(text)
            if not isinstance(data, dict) or not data.get("id") or not data.get("event_type"):
                raise TypeError("not a PayPal event")
        except (ValueError, TypeError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise InvalidEvent("The body is not a PayPal event.") from exc
        # The other fields serialized, then the event exactly as received (see the module's doc).
        fields = json.dumps({**transmission, "webhook_id": webhook_id})
        verification = f'{fields[:-1]}, "webhook_event": {text}}}'.encode()
        with self._session(credentials) as session:
            answer = session.call("POST", "/v1/notifications/verify-webhook-signature", raw=verification)
            if answer.status in (401, 403, 429) or answer.status >= 500:
                answer.raise_for_status("verify the event")
            if answer.status >= 300:
                raise InvalidEvent(f"PayPal could not verify the event: {answer.message}")
            if answer.data.get("verification_status") != "SUCCESS":
                raise InvalidEvent("PayPal says the event's signature does not verify.")
            events = _normalize(data, sent_at)
            return _with_order(events, session)

    # --- the HTTP session ------------------------------------------------------------------

    def _session(self, credentials: Mapping[str, str]) -> _Session:
        return _Session(self, credentials)


@register("paypal")
def _factory() -> PaymentProvider:
    return PayPalProvider()


# --- amounts -----------------------------------------------------------------------------------


def places(currency: str) -> int:
    """How many decimals PayPal takes in ``currency``."""
    code = currency.upper()
    return 0 if code in _NO_DECIMALS else exponent(code)


def to_value(amount: Decimal, currency: str) -> str:
    """``amount`` as PayPal's decimal string for ``currency``; refused (not rounded) when it has
    more decimals than PayPal takes in that currency, or the currency is not PayPal's."""
    code = currency.upper()
    if code not in PAYPAL_CURRENCIES:
        raise ProviderUnavailable(f"PayPal does not take payments in {code}.", retryable=False)
    if not isinstance(amount, Decimal | int) or isinstance(amount, bool) or not Decimal(amount).is_finite():
        raise ProviderUnavailable(f"{amount!r} is not an amount of money.", retryable=False)
    value = Decimal(amount)
    try:
        exact = value.quantize(Decimal(1).scaleb(-places(code)))
    except InvalidOperation:
        exact = None
    if value <= 0 or exact is None or exact != value:
        raise ProviderUnavailable(f"{amount} is not a payable amount of {code}.", retryable=False)
    return f"{exact:.{places(code)}f}"


def from_value(value: object) -> Decimal | None:
    """PayPal's decimal string back as a Decimal (``None`` when it is not one)."""
    if not isinstance(value, str):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


# --- HTTP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    status: int
    data: dict[str, Any]

    @property
    def issues(self) -> set[str]:
        """PayPal's error codes (``details[].issue``; the OAuth2 endpoint's ``error``)."""
        found = {d.get("issue") for d in self.data.get("details") or [] if isinstance(d, dict)}
        found.add(self.data.get("error"))
        return {issue for issue in found if isinstance(issue, str) and issue}

    @property
    def message(self) -> str:
        """PayPal's explanation, for staff, with the id PayPal's support asks for."""
        details = [d for d in self.data.get("details") or [] if isinstance(d, dict)]
        text = str(
            (details[0].get("description") if details else "")
            or self.data.get("message")
            or self.data.get("error_description")
            or f"HTTP {self.status}"
        )
        debug_id = self.data.get("debug_id")
        return f"{text} (PayPal debug id {debug_id})" if debug_id else text

    def raise_for_status(self, doing: str) -> None:
        """PayPal's refusal → the contract's error: for staff, and whether trying later may work."""
        if self.status < 300:
            return
        if self.status == 401:
            raise ProviderUnavailable(
                "PayPal refused the organization's client id and secret; check the PayPal settings.",
                retryable=False,
            )
        if self.status == 403:
            raise ProviderUnavailable(
                f"The organization's PayPal app is not allowed to {doing}; check its permissions. "
                f"{self.message}",
                retryable=False,
            )
        if self.status == 429:
            raise ProviderUnavailable("PayPal is limiting requests; try again shortly.", retryable=True)
        if self.status >= 500 or self.status == 409:
            raise ProviderUnavailable("PayPal failed to answer; try again shortly.", retryable=True)
        raise ProviderUnavailable(f"PayPal refused to {doing}: {self.message}", retryable=False)


class _Session:
    """One provider call's HTTP session, with the organization's credentials and token."""

    def __init__(self, provider: PayPalProvider, credentials: Mapping[str, str]) -> None:
        self.client_id = credentials.get("client_id") or ""
        self.client_secret = credentials.get("client_secret") or ""
        if not self.client_id or not self.client_secret:
            raise ProviderUnavailable(
                "The organization's PayPal account has no client id and secret.", retryable=False
            )
        self.api_base = _api_base(credentials.get("api_base") or "")
        self.provider = provider
        secret_hash = hashlib.sha256(self.client_secret.encode()).hexdigest()
        self.key = (self.api_base, self.client_id, secret_hash)
        self.http = requests.Session()

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        raw: bytes | None = None,
        request_id: str = "",
    ) -> _Answer:
        """An API request with the organization's token. A token PayPal refuses (it expired
        early or was revoked) is replaced and the request made once more."""
        headers = {"Content-Type": "application/json", "Prefer": "return=representation"}
        if request_id:
            headers["PayPal-Request-Id"] = request_id
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        token = self.provider.tokens.get(self.key, self._fetch_token)
        answer = self._send(method, path, {**headers, "Authorization": f"Bearer {token}"}, data)
        if answer.status == 401:
            self.provider.tokens.forget(self.key, token)
            token = self.provider.tokens.get(self.key, self._fetch_token)
            answer = self._send(method, path, {**headers, "Authorization": f"Bearer {token}"}, data)
        return answer

    def _fetch_token(self) -> tuple[str, int]:
        answer = self._send(
            "POST",
            "/v1/oauth2/token",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"grant_type=client_credentials",
            auth=(self.client_id, self.client_secret),
        )
        answer.raise_for_status("issue an access token")
        token, expires_in = answer.data.get("access_token"), answer.data.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int) or expires_in <= 0:
            raise ProviderUnavailable("PayPal answered the token request without a token.", retryable=True)
        return token, expires_in

    def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        data: bytes | None,
        auth: tuple[str, str] | None = None,
    ) -> _Answer:
        """One request, retried on connection errors, 409, 429 and 5xx with the same headers
        (so the same ``PayPal-Request-Id``): every request this provider makes is either a read,
        a verification or carries one, so a retry never creates a second object."""
        url = self.api_base + path
        provider = self.provider
        unreachable: Exception | None = None
        for attempt in range(provider.max_retries + 1):
            if attempt:
                time.sleep(provider.backoff * 2 ** (attempt - 1))
            try:
                response = self.http.request(
                    method,
                    url,
                    headers={"Accept": "application/json", **headers},
                    data=data,
                    auth=auth,
                    timeout=provider.timeout,
                    allow_redirects=False,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                unreachable = exc
                continue
            except requests.RequestException as exc:
                raise ProviderUnavailable(f"PayPal could not be asked: {exc}", retryable=False) from exc
            unreachable = None
            if response.status_code in _RETRIED and attempt < provider.max_retries:
                continue
            return _Answer(response.status_code, _json(response))
        error = ProviderUnavailable("PayPal could not be reached; try again shortly.", retryable=True)
        raise error from unreachable


def _json(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object; a successful answer that is not one is PayPal failing (a proxy's
    error page), an error answer without one keeps just its status."""
    try:
        data = response.json() if response.content else {}
    except ValueError:
        data = None
    if isinstance(data, dict):
        return data
    if response.status_code < 300:
        raise ProviderUnavailable("PayPal's answer was not JSON; try again shortly.", retryable=True)
    return {}


def _redirect(data: Mapping[str, Any]) -> ProviderUnavailable | RedirectRequired:
    url = _link(data, "payer-action", "approve", "redirect")
    if not url:
        return ProviderUnavailable(
            "PayPal needs the buyer at its page but did not say where.", retryable=False
        )
    return RedirectRequired("Please finish the payment at PayPal.", url)


# --- events ------------------------------------------------------------------------------------


def _capture_of(order: Mapping[str, Any], *, refundable: bool = False) -> dict[str, Any] | None:
    """The order's capture (an order with ``intent=CAPTURE`` has one); with ``refundable``,
    only one that completed and is not fully refunded."""
    captures = [
        c
        for unit in order.get("purchase_units") or []
        if isinstance(unit, dict)
        for c in _dict(unit.get("payments")).get("captures") or []
        if isinstance(c, dict) and c.get("id")
    ]
    if refundable:
        captures = [c for c in captures if c.get("status") in ("COMPLETED", "PARTIALLY_REFUNDED")]
    return captures[-1] if captures else None


def _capture_event(order_id: str, capture: Mapping[str, Any]) -> Event:
    status = str(capture.get("status") or "")
    type_ = _CAPTURE_TYPES.get(status, f"capture.{status.lower()}")
    amount = _dict(capture.get("amount"))
    payload: dict[str, Any] = {
        "paypal_type": "capture",
        "order_id": order_id,
        "capture_id": str(capture["id"]),
        "status": status,
        "capture": dict(capture),
    }
    if capture.get("custom_id"):
        payload["openar_payment_id"] = str(capture["custom_id"])
    return Event(
        event_id=f"capture:{capture['id']}:{status}",
        type=type_,
        provider_payment_id=order_id,
        occurred_at=_parse_time(capture.get("update_time") or capture.get("create_time")) or _now(),
        amount=from_value(amount.get("value")),
        currency=str(amount.get("currency_code") or "").upper(),
        message=_capture_message(type_, capture),
        payload=payload,
    )


def _capture_message(type_: str, capture: Mapping[str, Any]) -> str:
    reason = str(_dict(capture.get("status_details")).get("reason") or "").replace("_", " ").lower()
    if type_ == PAYMENT_FAILED:
        return DECLINED_MESSAGE
    if type_ == PAYMENT_PROCESSING:
        return (
            f"PayPal holds the payment for now: {reason}." if reason else "PayPal holds the payment for now."
        )
    return ""


def _normalize(data: Mapping[str, Any], sent_at: datetime.datetime) -> list[Event]:
    event_id, event_type = str(data["id"]), str(data["event_type"])
    resource = _dict(data.get("resource"))
    occurred_at = _parse_time(data.get("create_time")) or sent_at
    related = _dict(_dict(resource.get("supplementary_data")).get("related_ids"))
    units = [u for u in resource.get("purchase_units") or [] if isinstance(u, dict)]
    order_id = str(related.get("order_id") or resource.get("order_id") or "")
    custom_id = str(resource.get("custom_id") or (units[0].get("custom_id") if units else "") or "")
    refund_like = data.get("resource_type") == "refund" or event_type in _REFUND_RESOURCES
    if refund_like:  # a refund (or reversal) names its capture in its "up" link only
        up = _link(resource, "up")
        capture_id = up.rstrip("/").rpartition("/")[2] if "/captures/" in up else ""
    elif data.get("resource_type") == "capture" or event_type.startswith("PAYMENT.CAPTURE."):
        capture_id = str(resource.get("id") or "")
    else:
        capture_id = ""
    payload: dict[str, Any] = {"paypal_type": event_type, "resource": resource}
    if order_id:
        payload["order_id"] = order_id
    if capture_id:
        payload["capture_id"] = capture_id
    if custom_id:
        payload["openar_payment_id"] = custom_id
    amount = _dict(resource.get("amount"))
    currency = str(amount.get("currency_code") or "").upper()
    type_ = _WEBHOOK_TYPES.get(event_type, event_type)
    fields: dict[str, Any] = {}
    if type_ in (PAYMENT_SUCCEEDED, PAYMENT_PROCESSING):
        fields["message"] = _capture_message(type_, resource)
    elif type_ == PAYMENT_FAILED:
        fields["message"] = FAILED_MESSAGES[event_type]
    elif type_ == PAYMENT_RETURNED:
        note = str(resource.get("note_to_payer") or "").strip().rstrip(".")
        fields["message"] = f"{RETURNED_MESSAGE}: {note}." if note else f"{RETURNED_MESSAGE}."
        fields["amount"] = from_value(amount.get("value"))
    elif type_ == REFUND_SUCCEEDED:
        status = str(resource.get("status") or "")
        if not resource.get("id") or (status != "COMPLETED" and status not in REFUND_FAILED_MESSAGES):
            type_ = event_type  # not (yet) a refund that ended
        else:
            if status in REFUND_FAILED_MESSAGES:
                type_ = REFUND_FAILED
                fields["message"] = REFUND_FAILED_MESSAGES[status]
            fields["amount"] = from_value(amount.get("value"))
            fields["refund_id"] = str(resource["id"])
    return [
        Event(
            event_id=event_id,
            type=type_,
            provider_payment_id=order_id or capture_id or str(resource.get("id") or ""),
            occurred_at=occurred_at,
            currency=currency,
            payload=payload,
            **fields,
        )
    ]


def _with_order(events: list[Event], session: _Session) -> list[Event]:
    """Events of ours that do not name their order (refunds and reversals are refund objects)
    get it, and our payment id, from their capture, read from PayPal, so that the service can
    find the payment. PayPal out of reach raises ``ProviderUnavailable``: nothing is stored
    and PayPal sends the event again, better than a chargeback stored against no payment."""
    completed = []
    for event in events:
        capture_id = str(event.payload.get("capture_id") or "")
        if event.type not in EVENT_TYPES or event.payload.get("order_id") or not capture_id:
            completed.append(event)
            continue
        answer = session.call("GET", f"/v2/payments/captures/{_segment(capture_id)}")
        if answer.status == 404:  # not a capture of this app: not an OpenAR payment
            completed.append(event)
            continue
        answer.raise_for_status("read the payment")
        related = _dict(_dict(answer.data.get("supplementary_data")).get("related_ids"))
        extra = {"order_id": str(related.get("order_id") or "")}
        if answer.data.get("custom_id"):
            extra["openar_payment_id"] = str(answer.data["custom_id"])
        extra = {key: value for key, value in extra.items() if value}
        completed.append(
            replace(
                event,
                provider_payment_id=extra.get("order_id") or event.provider_payment_id,
                payload={**event.payload, **extra},
            )
        )
    return completed


# --- small helpers -----------------------------------------------------------------------------


def _api_base(value: str) -> str:
    """The API address from the credentials (the sandbox's; a local fake in tests): https, or
    http only to this machine, so that a mistyped setting never sends a secret in clear."""
    if not value:
        return DEFAULT_API_BASE
    parts = urlsplit(value)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "https" or (parts.scheme == "http" and local):
        return value.rstrip("/")
    raise ProviderUnavailable("The PayPal API address must be an https URL.", retryable=False)


def _segment(value: str) -> str:
    """An id as one path segment: an id with a slash must not reach another endpoint."""
    if not value:
        raise ProviderUnavailable("No PayPal id was given.", retryable=False)
    return quote(value, safe="")


def _link(obj: Mapping[str, Any], *rels: str) -> str:
    """The ``href`` of the first of ``rels`` among an object's HATEOAS links."""
    links = {
        str(link.get("rel")): str(link.get("href") or "")
        for link in obj.get("links") or []
        if isinstance(link, dict)
    }
    return next((links[rel] for rel in rels if links.get(rel)), "")


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header by name, whatever its case (Django's ``request.headers`` or a plain dict)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return (value or "").strip()


def _parse_time(value: object) -> datetime.datetime | None:
    """PayPal's ISO 8601 times (``2026-01-01T12:00:00Z``, ``...-07:00``); none for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
