"""The sandbox provider: payments without money, for the demo and the tests, through the
same event path as the real providers.

Its "hosted page" (``openar.payments.sandbox_views``, at ``/sandbox/pay/<id>/``) imitates a
provider's: the customer types a test card or bank account there, never in OpenAR's own
pages. What the page decides is sent back as signed events to the sandbox's webhook
(``/hooks/payments/sandbox/<organization>/``), verified and processed like Stripe's.

Test numbers:

- card ``4242 4242 4242 4242``: paid.
- card ``4000 0000 0000 0002``: declined ("Your card was declined.").
- card ``4000 0027 6000 3184``: asks for authentication (approve or fail on the next page).
- bank account ``000123456789``: accepted, in flight, settles three days later.
- bank account ``000111111113``: settles three days later, then is returned two days after
  ("The account has insufficient funds (R01).").

Saving a method for autopay (``/sandbox/setup/<id>/``): the cards ``4242…`` and ``3184``
and the bank accounts above are saved, and later charges behave as a payment with them
would (paid; bank debits settle three days later, the second account is then returned);
card ``4000 0000 0000 0341`` is saved but every charge to it is declined; any other number
cannot be saved. The sandbox's own records (setups, the events it will send later) stand
for what a real provider keeps on its servers: the provider class below talks to them as to
a remote API and never touches OpenAR's tables.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.conf import settings

from openar.payments.providers.base import (
    Charge,
    ChargeRequest,
    Checkout,
    CheckoutRequest,
    Declined,
    Event,
    InvalidEvent,
    RefundRequest,
    RefundResult,
    SavedMethodInfo,
    Setup,
    SetupIncomplete,
    SetupRequest,
)
from openar.payments.providers.registry import register

SIGNATURE_HEADER = "Sandbox-Signature"
TOLERANCE = 300  # seconds, as Stripe's


def _secret() -> bytes:
    return hashlib.sha256(f"openar.sandbox:{settings.SECRET_KEY}".encode()).digest()


def sign(body: bytes, timestamp: int | None = None) -> str:
    """The signature header for ``body`` (what the sandbox's sender adds)."""
    stamp = int(timestamp if timestamp is not None else time.time())
    digest = hmac.new(_secret(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def event_body(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events, separators=(",", ":"), sort_keys=True).encode()


class SandboxProvider:
    name = "sandbox"
    methods = frozenset({"card", "ach"})

    def create_checkout(self, request: CheckoutRequest, credentials: Mapping[str, str]) -> Checkout:
        # Derived from the idempotency key: the same key always gets the same checkout, as a
        # real provider's idempotency does.
        from openar.payments import sandbox

        checkout_id = "sbx_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
        sandbox.checkout_open(
            checkout_id=checkout_id, return_url=request.return_url, cancel_url=request.cancel_url
        )
        return Checkout(
            provider_payment_id=checkout_id, redirect_url=f"{settings.SITE_URL}/sandbox/pay/{checkout_id}/"
        )

    def parse_events(
        self, body: bytes, headers: Mapping[str, str], credentials: Mapping[str, str]
    ) -> list[Event]:
        header = headers.get(SIGNATURE_HEADER, "")
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        try:
            stamp = int(parts.get("t", ""))
        except ValueError:
            raise InvalidEvent("The sandbox event is not signed.") from None
        if abs(time.time() - stamp) > TOLERANCE:
            raise InvalidEvent("The sandbox event is too old (or from the future).")
        expected = sign(body, stamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, parts.get("v1", "")):
            raise InvalidEvent("The sandbox event's signature does not match.")
        try:
            items = json.loads(body)
            return [
                Event(
                    event_id=str(item["id"]),
                    type=str(item["type"]),
                    provider_payment_id=str(item["payment"]),
                    occurred_at=datetime.datetime.fromisoformat(str(item["at"])),
                    amount=Decimal(str(item["amount"])) if item.get("amount") is not None else None,
                    currency=str(item.get("currency", "")),
                    message=str(item.get("message", "")),
                    refund_id=str(item.get("refund", "")),
                    payload=item,
                )
                for item in items
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidEvent("The sandbox event is not readable.") from exc

    def refund(self, request: RefundRequest, credentials: Mapping[str, str]) -> RefundResult:
        refund_id = "sbr_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
        return RefundResult(provider_refund_id=refund_id, succeeded=True)

    # --- saved methods: the sandbox's "servers" are ``openar.payments.sandbox`` -------------

    def start_setup(self, request: SetupRequest, credentials: Mapping[str, str]) -> Setup:
        from openar.payments import sandbox

        digest = hashlib.sha256(request.idempotency_key.encode()).hexdigest()
        setup_id = "sbs_" + digest[:24]
        customer_ref = request.customer_ref or "sbc_" + digest[24:48]
        sandbox.setup_open(
            setup_id=setup_id,
            customer_ref=customer_ref,
            method=request.method,
            return_url=request.return_url,
            cancel_url=request.cancel_url,
            organization_name=request.organization_name,
        )
        return Setup(
            provider_setup_id=setup_id,
            redirect_url=f"{settings.SITE_URL}/sandbox/setup/{setup_id}/",
            customer_ref=customer_ref,
        )

    def complete_setup(self, provider_setup_id: str, credentials: Mapping[str, str]) -> SavedMethodInfo:
        from openar.payments import sandbox

        found = sandbox.setup_result(provider_setup_id)
        if found is None:
            raise SetupIncomplete("The card or bank account was not saved.")
        return SavedMethodInfo(**found)

    def charge_saved(self, request: ChargeRequest, credentials: Mapping[str, str]) -> Charge:
        from openar.payments import sandbox

        payment_id = "sbx_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
        outcome = sandbox.charge(
            provider_payment_id=payment_id, payment_id=request.payment_id, method_ref=request.method_ref
        )
        if outcome == "declined":
            raise Declined("Your card was declined.")
        return Charge(provider_payment_id=payment_id, status=outcome)


register("sandbox")(SandboxProvider)
