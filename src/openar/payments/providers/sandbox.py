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
    Checkout,
    CheckoutRequest,
    Event,
    InvalidEvent,
    RefundRequest,
    RefundResult,
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
        checkout_id = "sbx_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
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


register("sandbox")(SandboxProvider)
