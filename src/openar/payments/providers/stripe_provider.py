"""Stripe: card and ACH bank debit through Stripe Checkout.

Why it is built this way:

- **Checkout redirect.** The customer pays on Stripe's own hosted Checkout page and comes back
  to ``return_url``. Card and bank numbers are typed at Stripe and never reach OpenAR, so
  OpenAR stays out of PCI DSS scope beyond the simplest questionnaire (SAQ A), and 3-D Secure,
  bank-account verification (Financial Connections) and the ACH mandate are Stripe's pages'
  work. That is also why ``create_checkout`` never raises ``RedirectRequired``: every checkout
  already is a redirect.
- **Idempotency key from the database row.** Every request that creates something at Stripe
  (a Checkout Session, a refund) carries the key stored on the OpenAR row
  (``Payment.idempotency_key``, ``Refund.idempotency_key``) as Stripe's ``Idempotency-Key``.
  A double click, a retried task, the SDK's own network retries or two workers racing on the
  same payment all reach Stripe with the same key, and Stripe answers them all with the one
  object it created first: one payment row, one Stripe payment, never two charges.
- **Per-organization keys.** Each organization has its own Stripe account, so the secret key,
  the webhook signing secret (and, in tests, the API address) come with every call and a new
  ``stripe.StripeClient`` is made for that call. The SDK's module globals (``stripe.api_key``,
  ``stripe.api_base``, ...) are never touched: they are shared by every thread of the process,
  and one organization's request must never run with another's key.
- **Retries and timeouts.** The SDK retries connection errors, 409 and 5xx itself, with the
  same idempotency key, which is safe for the reason above; a ``StripeClient`` only retries
  when told how often, so the count is explicit (Stripe's own default, 2). Each HTTP request
  gives up after 30 seconds rather than the SDK's 80, because a customer is waiting on the
  page.
- **Amounts.** OpenAR's Decimal amounts go to Stripe as integers in the currency's minor unit
  (``openar.core.money.exponent``: cents for USD, yen for JPY), never through a float. An
  amount with more decimals than its currency has is refused rather than rounded. Where Stripe
  departs from ISO 4217 its rule wins: ISK and UGX are sent times 100, and three-decimal
  currencies (KWD, ...) must end in 0.

Webhooks. ``parse_events`` verifies the ``Stripe-Signature`` header with the SDK
(``stripe.Webhook.construct_event``: HMAC-SHA256 of the raw body with the endpoint's secret,
timestamp no older than 300 seconds) and only then reads the body. Stripe's events map to
OpenAR's:

=========================================================  =====================
``checkout.session.completed``, ``payment_status=paid``    ``payment.succeeded``
``checkout.session.completed``, ``payment_status=unpaid``  ``payment.processing`` (ACH)
``checkout.session.async_payment_succeeded``               ``payment.succeeded``
``checkout.session.async_payment_failed``                  ``payment.failed``
``checkout.session.expired``                               ``payment.failed``
``charge.dispute.created`` (its ``amount``: all or part)   ``payment.returned``
``charge.refunded`` (one per succeeded refund listed)      ``refund.succeeded``
``refund.created`` / ``refund.updated``, ``succeeded``     ``refund.succeeded``
``refund.failed``; ``refund.updated``, ``failed``          ``refund.failed``
``refund.updated``, ``canceled``                           ``refund.failed``
``charge.refund.updated`` (a refund, like ``refund.*``)    by the refund's status
=========================================================  =====================

Anything else keeps Stripe's own type name; the service stores it and ignores it. A bank
debit that fails before the money arrived ends its session with ``async_payment_failed``; one
that the customer's bank takes back after it succeeded (an unauthorized debit, a revoked
mandate) reaches Stripe as a dispute, hence ``charge.dispute.created`` is the return.
``charge.failed`` is not a return and ``charge.refunded`` is only ever a refund. A dispute
carries the disputed amount, which may be part of the payment only: the service then takes
back that part alone. A refund that Stripe could not make (``failed``, with its
``failure_reason``) or that was cancelled gave nothing back: ``refund.failed``.

Matching events to payments. ``Payment.provider_payment_id`` holds the Checkout Session id
(``cs_...``), and session events carry it. Charges, disputes and refunds belong to the
session's PaymentIntent (``pi_...``) instead: their ``provider_payment_id`` is the session id
when their metadata names it (refunds made by :meth:`StripeProvider.refund` do), else the
PaymentIntent id. Whenever the object's metadata carries ``openar_payment_id`` (sessions,
their PaymentIntent, our refunds) it is copied to
``Event.payload["openar_payment_id"]``, and ``payload["payment_intent"]`` names the
PaymentIntent when known. The service matches an event by ``provider_payment_id`` first and
falls back to ``openar_payment_id``. A normalized event that has neither (a dispute: Stripe
leaves a dispute's metadata empty) is completed from the session that owns its PaymentIntent,
read from Stripe (``GET /v1/checkout/sessions?payment_intent=...``): its
``provider_payment_id`` becomes the session id. A refund is identified by ``refund_id``:
Stripe reports the same refund in several events (``refund.created``, ``refund.updated``,
and every later ``charge.refunded`` of the charge), so the service counts each refund once.

The Stripe account's webhook endpoint should send: ``checkout.session.completed``,
``checkout.session.async_payment_succeeded``, ``checkout.session.async_payment_failed``,
``checkout.session.expired``, ``charge.dispute.created``, ``charge.refunded``,
``refund.created``, ``refund.updated`` and ``refund.failed``; for autopay and installments
(charges of saved methods, PaymentIntents whose metadata says ``openar_charge: saved``),
also ``payment_intent.succeeded``, ``payment_intent.processing`` and
``payment_intent.payment_failed``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import stripe

from openar.core.money import exponent
from openar.payments.providers.base import (
    EVENT_TYPES,
    PAYMENT_FAILED,
    PAYMENT_PROCESSING,
    PAYMENT_RETURNED,
    PAYMENT_SUCCEEDED,
    REFUND_FAILED,
    REFUND_SUCCEEDED,
    Charge,
    ChargeRequest,
    Checkout,
    CheckoutRequest,
    Declined,
    Event,
    InvalidEvent,
    PaymentProvider,
    ProviderUnavailable,
    RefundRequest,
    RefundResult,
    SavedMethodInfo,
    Setup,
    SetupIncomplete,
    SetupRequest,
)
from openar.payments.providers.registry import register

# OpenAR's method → Stripe's payment method type on the Checkout Session.
PAYMENT_METHOD_TYPES = {"card": "card", "ach": "us_bank_account"}
DEFAULT_MAX_NETWORK_RETRIES = 2  # Stripe's documented default; a StripeClient otherwise retries 0 times
DEFAULT_TIMEOUT = 30.0  # seconds per HTTP request
SIGNATURE_TOLERANCE = stripe.Webhook.DEFAULT_TOLERANCE  # 300 s

# Stripe's minor units where they are not ISO 4217's (https://docs.stripe.com/currencies).
_SENT_TIMES_100 = frozenset({"ISK", "UGX"})  # zero-decimal, but sent in hundredths
_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})  # thousandths, last digit 0
_METADATA_VALUE_MAX = 500  # Stripe's limit on a metadata value
_PRODUCT_NAME_MAX = 250

FAILED_MESSAGES = {
    "checkout.session.async_payment_failed": "The bank payment failed.",
    "checkout.session.expired": "The payment page expired before payment.",
}
# Events whose object is a refund: mapped by the refund's status.
REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"})


class StripeProvider:
    """Card and ACH payments through Stripe Checkout, with one Stripe account per organization.

    ``max_network_retries`` and ``timeout`` exist for tests (no retries, so that an error
    answered by a fake is seen at once); production uses the defaults."""

    name = "stripe"
    methods: frozenset[str] = frozenset({"card", "ach"})

    def __init__(
        self, *, max_network_retries: int = DEFAULT_MAX_NETWORK_RETRIES, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.max_network_retries = max_network_retries
        self.timeout = timeout

    # --- checkout --------------------------------------------------------------------------

    def create_checkout(self, request: CheckoutRequest, credentials: Mapping[str, str]) -> Checkout:
        method_type = PAYMENT_METHOD_TYPES.get(request.method)
        if method_type is None:
            raise ProviderUnavailable(
                f"Stripe does not take {request.method!r} payments here.", retryable=False
            )
        if request.method == "ach" and request.currency.upper() != "USD":
            raise ProviderUnavailable(
                "ACH bank debits through Stripe are in US dollars only.", retryable=False
            )
        unit_amount = to_minor_units(request.amount, request.currency)
        # Ours last: a caller's metadata must not replace the ids the webhooks are matched by.
        metadata = {
            **{str(key): _metadata_value(value) for key, value in request.metadata.items()},
            "openar_payment_id": str(request.payment_id),
            "organization_id": str(request.organization_id),
        }
        params: dict[str, Any] = {
            "mode": "payment",
            "payment_method_types": [method_type],
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": unit_amount,
                        "product_data": {"name": f"Payment to {request.description}"[:_PRODUCT_NAME_MAX]},
                    },
                }
            ],
            "client_reference_id": str(request.payment_id),
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": request.return_url,
            "cancel_url": request.cancel_url,
        }
        if request.customer_email:
            params["customer_email"] = request.customer_email
        with self._client(credentials) as client:
            session = client.v1.checkout.sessions.create(
                params,  # type: ignore[arg-type]  # a plain dict; the TypedDict adds nothing here
                options={"idempotency_key": request.idempotency_key},
            )
        if not session.url:
            raise ProviderUnavailable("Stripe created the checkout without a payment page.", retryable=False)
        return Checkout(provider_payment_id=session.id, redirect_url=session.url)

    # --- refunds ---------------------------------------------------------------------------

    def refund(self, request: RefundRequest, credentials: Mapping[str, str]) -> RefundResult:
        """Refund part or all of a paid checkout. Stripe refunds the session's PaymentIntent,
        which only the session knows, so the session is read first (a plain read, safe to
        repeat); the refund itself carries the refund row's idempotency key."""
        amount = to_minor_units(request.amount, request.currency)
        with self._client(credentials) as client:
            session = client.v1.checkout.sessions.retrieve(request.provider_payment_id).to_dict()
            payment_intent = _id_of(session.get("payment_intent"))
            if not payment_intent:
                raise ProviderUnavailable(
                    "Stripe has no payment for this checkout yet; there is nothing to refund.",
                    retryable=False,
                )
            currency = str(session.get("currency") or "")
            if currency and currency.upper() != request.currency.upper():
                raise ProviderUnavailable(
                    f"The checkout was paid in {currency.upper()}, not {request.currency.upper()}.",
                    retryable=False,
                )
            session_metadata = session.get("metadata") or {}
            metadata = {
                "checkout_session_id": request.provider_payment_id,
                "openar_payment_id": str(session_metadata.get("openar_payment_id") or ""),
                "organization_id": str(session_metadata.get("organization_id") or ""),
                "reason": _metadata_value(request.reason),
            }
            refund = client.v1.refunds.create(
                {
                    "payment_intent": payment_intent,
                    "amount": amount,
                    "metadata": {key: value for key, value in metadata.items() if value},
                },
                options={"idempotency_key": request.idempotency_key},
            )
        return RefundResult(provider_refund_id=refund.id, succeeded=refund.status == "succeeded")

    # --- saved methods and autopay ----------------------------------------------------------

    def start_setup(self, request: SetupRequest, credentials: Mapping[str, str]) -> Setup:
        """A Stripe Customer (made once per OpenAR customer and reused) and a Checkout Session
        in setup mode, where the customer saves a card or bank account: Stripe's page, so the
        numbers never reach OpenAR; Stripe keeps the method (a SetupIntent) for later charges.
        Both requests carry keys derived from the setup row's idempotency key."""
        method_type = PAYMENT_METHOD_TYPES.get(request.method)
        if method_type is None:
            raise ProviderUnavailable(f"Stripe cannot save {request.method!r} methods here.", retryable=False)
        metadata = {
            **{str(key): _metadata_value(value) for key, value in request.metadata.items()},
            "organization_id": str(request.organization_id),
        }
        with self._client(credentials) as client:
            customer_ref = request.customer_ref
            if not customer_ref:
                made = client.v1.customers.create(
                    {
                        "name": request.customer_name[:_PRODUCT_NAME_MAX],
                        "metadata": metadata,
                        **({"email": request.customer_email} if request.customer_email else {}),
                    },
                    options={"idempotency_key": f"{request.idempotency_key}:customer"},
                )
                customer_ref = made.id
            session = client.v1.checkout.sessions.create(
                {
                    "mode": "setup",
                    "customer": customer_ref,
                    "currency": request.currency.lower(),
                    "payment_method_types": [method_type],
                    "metadata": metadata,
                    "setup_intent_data": {"metadata": metadata},
                    "success_url": request.return_url,
                    "cancel_url": request.cancel_url,
                },  # type: ignore[arg-type]  # a plain dict; the TypedDict adds nothing here
                options={"idempotency_key": f"{request.idempotency_key}:setup"},
            )
        if not session.url:
            raise ProviderUnavailable("Stripe created the setup without a page.", retryable=False)
        return Setup(provider_setup_id=session.id, redirect_url=session.url, customer_ref=customer_ref)

    def complete_setup(self, provider_setup_id: str, credentials: Mapping[str, str]) -> SavedMethodInfo:
        """What the customer saved: the session's SetupIntent and its payment method."""
        with self._client(credentials) as client:
            session = client.v1.checkout.sessions.retrieve(
                provider_setup_id, {"expand": ["setup_intent.payment_method"]}
            ).to_dict()
        intent = _dict(session.get("setup_intent"))
        method = _dict(intent.get("payment_method"))
        if session.get("status") != "complete" or intent.get("status") != "succeeded" or not method.get("id"):
            raise SetupIncomplete("The card or bank account was not saved.")
        customer_ref = _id_of(session.get("customer")) or _id_of(method.get("customer"))
        if method.get("type") == "us_bank_account":
            bank = _dict(method.get("us_bank_account"))
            name = str(bank.get("bank_name") or "Bank account")
            return SavedMethodInfo(
                customer_ref=customer_ref,
                method_ref=str(method["id"]),
                method="ach",
                label=f"{name} ending {bank.get('last4') or '????'}"[:100],
            )
        card = _dict(method.get("card"))
        brand = str(card.get("brand") or "card").replace("_", " ").title()
        expires = None
        month, year = card.get("exp_month"), card.get("exp_year")
        if isinstance(month, int) and isinstance(year, int) and 1 <= month <= 12:
            expires = datetime.date(year + month // 12, month % 12 + 1, 1) - datetime.timedelta(days=1)
        return SavedMethodInfo(
            customer_ref=customer_ref,
            method_ref=str(method["id"]),
            method="card",
            label=f"{brand} ending {card.get('last4') or '????'}"[:100],
            expires=expires,
        )

    def charge_saved(self, request: ChargeRequest, credentials: Mapping[str, str]) -> Charge:
        """Charge a saved method with the customer away (``off_session``), confirmed at once:
        a PaymentIntent with the payment row's idempotency key. A card that needs its holder
        (authentication) counts as declined: the customer is told and can pay in the portal."""
        method_type = PAYMENT_METHOD_TYPES.get(request.method)
        if method_type is None:
            raise ProviderUnavailable(f"Stripe cannot charge {request.method!r} here.", retryable=False)
        metadata = {
            **{str(key): _metadata_value(value) for key, value in request.metadata.items()},
            "openar_payment_id": str(request.payment_id),
            "organization_id": str(request.organization_id),
            "openar_charge": "saved",
        }
        with self._client(credentials) as client:
            intent = client.v1.payment_intents.create(
                {
                    "amount": to_minor_units(request.amount, request.currency),
                    "currency": request.currency.lower(),
                    "customer": request.customer_ref,
                    "payment_method": request.method_ref,
                    "off_session": True,
                    "confirm": True,
                    "description": request.description[:_PRODUCT_NAME_MAX],
                    "metadata": metadata,
                },
                options={"idempotency_key": request.idempotency_key},
            )
        if intent.status == "succeeded":
            return Charge(provider_payment_id=intent.id, status="succeeded")
        if intent.status == "processing":
            return Charge(provider_payment_id=intent.id, status="processing")
        raise Declined("Your bank asks you to confirm this payment: pay it in the portal instead.")

    # --- webhooks --------------------------------------------------------------------------

    def parse_events(
        self, body: bytes, headers: Mapping[str, str], credentials: Mapping[str, str]
    ) -> list[Event]:
        secret = credentials.get("webhook_secret") or ""
        if not secret:
            raise InvalidEvent(
                "No Stripe webhook signing secret is configured; the event cannot be verified."
            )
        signature = _header(headers, "Stripe-Signature")
        if not signature:
            raise InvalidEvent("The request has no Stripe-Signature header.")
        try:
            stripe.Webhook.construct_event(body, signature, secret, tolerance=SIGNATURE_TOLERANCE)
            # Verified: read the body ourselves, as plain JSON that can be stored as it is.
            data = json.loads(body)
            event_id, event_type = str(data["id"]), str(data["type"])
            occurred_at = datetime.datetime.fromtimestamp(int(data["created"]), tz=datetime.UTC)
            obj = data["data"]["object"]
            if not isinstance(obj, dict):
                raise TypeError("data.object is not an object")
        except stripe.SignatureVerificationError as exc:
            raise InvalidEvent(f"The Stripe signature does not verify: {exc.user_message}") from exc
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InvalidEvent("The body is not a Stripe event.") from exc
        events = _normalize(event_id, event_type, occurred_at, obj)
        return self._with_session(events, credentials)

    def _with_session(self, events: list[Event], credentials: Mapping[str, str]) -> list[Event]:
        """Events of ours that name neither a session nor an OpenAR payment (a dispute: Stripe
        leaves its metadata empty) get them from the session that owns their PaymentIntent,
        asked of Stripe, so that the service can find the payment. Stripe out of reach raises
        ``ProviderUnavailable``: nothing is stored, the webhook fails and Stripe sends it again,
        which is better than a chargeback stored against no payment."""
        unmatched = [
            e
            for e in events
            if e.type in EVENT_TYPES
            and not e.provider_payment_id.startswith("cs_")
            and not e.payload.get("openar_payment_id")
            and e.payload.get("payment_intent")
        ]
        if not unmatched or not credentials.get("secret_key"):
            return events
        payment_intent = str(unmatched[0].payload["payment_intent"])
        with self._client(credentials) as client:
            found = client.v1.checkout.sessions.list({"payment_intent": payment_intent, "limit": 1}).data
        if not found:  # not paid through Checkout: not an OpenAR payment
            return events
        session = found[0].to_dict()
        metadata = _dict(session.get("metadata"))
        extra = {
            key: str(metadata[key]) for key in ("openar_payment_id", "organization_id") if metadata.get(key)
        }
        completed = {id(e) for e in unmatched}
        return [
            replace(e, provider_payment_id=str(session["id"]), payload={**e.payload, **extra})
            if id(e) in completed
            else e
            for e in events
        ]

    # --- the client --------------------------------------------------------------------------

    @contextmanager
    def _client(self, credentials: Mapping[str, str]) -> Iterator[stripe.StripeClient]:
        """A client for this call only, with this organization's key; Stripe's errors become
        the contract's errors on the way out."""
        secret_key = credentials.get("secret_key") or ""
        if not secret_key:
            raise ProviderUnavailable("The organization's Stripe account has no secret key.", retryable=False)
        api_base = _api_base(credentials.get("api_base") or "")
        http_client = stripe.RequestsClient(timeout=self.timeout)
        try:
            yield stripe.StripeClient(
                secret_key,
                base_addresses={"api": api_base} if api_base else None,
                max_network_retries=self.max_network_retries,
                http_client=http_client,
            )
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        finally:
            http_client.close()


@register("stripe")
def _factory() -> PaymentProvider:
    return StripeProvider()


# --- amounts -----------------------------------------------------------------------------------


def to_minor_units(amount: Decimal, currency: str) -> int:
    """``amount`` as the integer Stripe expects for ``currency``; refused (not rounded) when it
    has more decimals than the currency, or than Stripe, allows."""
    code = currency.upper()
    if not isinstance(amount, Decimal | int) or isinstance(amount, bool) or not Decimal(amount).is_finite():
        raise ProviderUnavailable(f"{amount!r} is not an amount of money.", retryable=False)
    scaled = Decimal(amount).scaleb(exponent(code))
    if scaled <= 0 or scaled != scaled.to_integral_value():
        raise ProviderUnavailable(f"{amount} is not a payable amount of {code}.", retryable=False)
    minor = int(scaled)
    if code in _SENT_TIMES_100:
        return minor * 100
    if code in _THREE_DECIMAL and minor % 10:
        raise ProviderUnavailable(f"Stripe takes {code} amounts to two decimal places only.", retryable=False)
    return minor


def from_minor_units(minor: int, currency: str) -> Decimal:
    """The Decimal amount of ``minor`` units of ``currency`` as Stripe counts them."""
    code = currency.upper()
    places = 2 if code in _SENT_TIMES_100 else exponent(code)
    return Decimal(int(minor)).scaleb(-places)


# --- events ------------------------------------------------------------------------------------


def _normalize(
    event_id: str, event_type: str, occurred_at: datetime.datetime, obj: dict[str, Any]
) -> list[Event]:
    metadata = _dict(obj.get("metadata"))
    if obj.get("object") == "payment_intent":
        payment_intent = str(obj.get("id") or "")
    else:
        payment_intent = _id_of(obj.get("payment_intent"))
    payload: dict[str, Any] = {"stripe_type": event_type, "payment_intent": payment_intent, "object": obj}
    for key in ("openar_payment_id", "organization_id"):
        if metadata.get(key):
            payload[key] = str(metadata[key])
    currency = str(obj.get("currency") or "").upper()
    if obj.get("object") == "checkout.session":
        provider_payment_id = str(obj.get("id") or "")
    else:
        provider_payment_id = str(
            metadata.get("checkout_session_id") or payment_intent or obj.get("charge") or ""
        )

    def event(type_: str, **fields: Any) -> Event:
        fields.setdefault("event_id", event_id)
        return Event(
            type=type_,
            provider_payment_id=provider_payment_id,
            occurred_at=occurred_at,
            currency=currency,
            payload=payload,
            **fields,
        )

    if event_type == "checkout.session.completed":
        status = obj.get("payment_status")
        if status == "paid":
            return [event(PAYMENT_SUCCEEDED)]
        if status == "unpaid":  # a bank debit: accepted, the money arrives in a few days
            return [event(PAYMENT_PROCESSING)]
        return [event(event_type)]
    if event_type == "checkout.session.async_payment_succeeded":
        return [event(PAYMENT_SUCCEEDED)]
    if event_type in FAILED_MESSAGES:
        return [event(PAYMENT_FAILED, message=FAILED_MESSAGES[event_type])]
    if event_type == "charge.dispute.created":
        reason = str(obj.get("reason") or "").replace("_", " ")
        message = "The customer's bank took the payment back (a dispute or bank return)"
        return [
            event(
                PAYMENT_RETURNED,
                message=f"{message}: {reason}." if reason else f"{message}.",
                amount=_amount(obj.get("amount"), currency),
            )
        ]
    if event_type in REFUND_EVENTS and obj.get("id"):
        status = obj.get("status")
        refund = {"amount": _amount(obj.get("amount"), currency), "refund_id": str(obj["id"])}
        if status == "succeeded":
            return [event(REFUND_SUCCEEDED, **refund)]
        if status in ("failed", "canceled"):
            return [event(REFUND_FAILED, message=_refund_failure(obj), **refund)]
        return [event(event_type)]
    if event_type == "charge.refunded":
        # Recent API versions leave the refunds out of the charge: then there is no refund id to
        # count by, and the refund.* events (which always carry it) report the refund instead.
        refunds = _dict(obj.get("refunds")).get("data")
        listed = [
            r for r in refunds or [] if isinstance(r, dict) and r.get("id") and r.get("status") == "succeeded"
        ]
        return [
            event(
                REFUND_SUCCEEDED,
                # One Stripe event, several refunds: each needs its own (stable) event id.
                event_id=event_id if len(listed) == 1 else f"{event_id}:{r['id']}",
                amount=_amount(r.get("amount"), str(r.get("currency") or currency)),
                refund_id=str(r["id"]),
            )
            for r in listed
        ] or [event(event_type)]
    if obj.get("object") == "payment_intent" and metadata.get("openar_charge") == "saved":
        # A charge of a saved method (autopay, an installment): its PaymentIntent is the
        # payment. Checkout's own PaymentIntents are reported by their session's events.
        if event_type == "payment_intent.succeeded":
            return [event(PAYMENT_SUCCEEDED)]
        if event_type == "payment_intent.processing":
            return [event(PAYMENT_PROCESSING)]
        if event_type == "payment_intent.payment_failed":
            error = _dict(obj.get("last_payment_error"))
            return [
                event(PAYMENT_FAILED, message=str(error.get("message") or "The payment did not go through."))
            ]
    return [event(event_type)]


def _refund_failure(refund: dict[str, Any]) -> str:
    if refund.get("status") == "canceled":
        return "The refund was cancelled at Stripe."
    reason = str(refund.get("failure_reason") or "").replace("_", " ")
    return f"Stripe could not make the refund: {reason}." if reason else "Stripe could not make the refund."


def _amount(minor: object, currency: str) -> Decimal | None:
    if isinstance(minor, int) and not isinstance(minor, bool) and currency:
        return from_minor_units(minor, currency)
    return None


# --- small helpers -----------------------------------------------------------------------------


def _translate(exc: stripe.StripeError) -> Exception:
    """Stripe's error → the contract's: declines for the customer, the rest for staff."""
    if isinstance(exc, stripe.CardError):
        return Declined(exc.user_message or "The card was declined.")
    if isinstance(exc, stripe.RateLimitError):
        return ProviderUnavailable("Stripe is limiting requests; try again shortly.", retryable=True)
    if isinstance(exc, stripe.APIConnectionError):
        return ProviderUnavailable("Stripe could not be reached; try again shortly.", retryable=True)
    if isinstance(exc, stripe.AuthenticationError):
        return ProviderUnavailable(
            "Stripe refused the organization's secret key; check the Stripe settings.", retryable=False
        )
    if isinstance(exc, stripe.PermissionError):
        return ProviderUnavailable(
            "The organization's Stripe key is not allowed to do this; check its permissions.", retryable=False
        )
    if isinstance(exc, stripe.IdempotencyError):
        return ProviderUnavailable(
            f"Stripe refused a request that reused an idempotency key: {exc.user_message}", retryable=False
        )
    if isinstance(exc, stripe.InvalidRequestError):
        return ProviderUnavailable(f"Stripe refused the request: {exc.user_message}", retryable=False)
    status = exc.http_status
    if status is None or status >= 500 or status == 409:
        return ProviderUnavailable("Stripe failed to answer; try again shortly.", retryable=True)
    return ProviderUnavailable(f"Stripe refused the request: {exc.user_message}", retryable=False)


def _api_base(value: str) -> str:
    """The API address from the credentials (tests point it at a local fake): https, or http
    only to this machine, so that a mistyped setting never sends a secret key in clear."""
    if not value:
        return ""
    parts = urlsplit(value)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "https" or (parts.scheme == "http" and local):
        return value.rstrip("/")
    raise ProviderUnavailable("The Stripe API address must be an https URL.", retryable=False)


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header by name, whatever its case (Django's ``request.headers`` or a plain dict)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value or ""


def _id_of(value: object) -> str:
    """The id of a Stripe field that is an id or, when expanded, an object with one."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return ""


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _metadata_value(value: object) -> str:
    return str(value)[:_METADATA_VALUE_MAX]
