"""The contract of a payment provider.

A provider turns a payment OpenAR has recorded (``pending``, with its amount, currency,
method and an idempotency key from the database row) into a checkout at the provider, reads
and verifies the provider's events, and issues refunds. Everything goes in and out as the
typed dataclasses below.

What a provider **may** do: call its provider's API (passing the payment's idempotency key,
so that a retried or doubled call creates one provider payment), read its own credentials
(given to it, decrypted, per organization), verify signatures, and answer with a result or
one of the errors below.

What a provider **may never** do: change a payment's state, write allocations, touch the
database at all (the sandbox's own hosted page is a front door, not the provider), or see
card or bank numbers (the customer types those at the provider's page).

Errors:

- ``Declined``: the provider said no; ``message`` is shown to the customer as it is.
- ``RedirectRequired``: the customer must go to ``url`` to finish (a 3-D Secure challenge).
- ``ProviderUnavailable``: the provider could not be reached or failed; ``retryable`` says
  whether trying again later may work.
- ``InvalidEvent``: a webhook whose signature, timestamp or content does not verify; it is
  refused and nothing is stored.

Events are normalized to these types (``EVENT_TYPES``); anything else a provider sends is
stored and ignored.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

PAYMENT_PROCESSING = "payment.processing"  # accepted, money in flight (a bank debit)
PAYMENT_SUCCEEDED = "payment.succeeded"  # the money arrived
PAYMENT_FAILED = "payment.failed"  # declined or abandoned before any money moved
PAYMENT_RETURNED = "payment.returned"  # money that had arrived went back (ACH return, chargeback)
REFUND_SUCCEEDED = "refund.succeeded"  # a refund went through (full or partial)
EVENT_TYPES = (PAYMENT_PROCESSING, PAYMENT_SUCCEEDED, PAYMENT_FAILED, PAYMENT_RETURNED, REFUND_SUCCEEDED)


@dataclass(frozen=True)
class CheckoutRequest:
    payment_id: int
    organization_id: int
    amount: Decimal
    currency: str
    method: str  # "card", "ach", "paypal"
    description: str
    customer_email: str
    idempotency_key: str
    return_url: str  # where the customer comes back to after paying (or failing)
    cancel_url: str  # where they go when they give up at the provider's page
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkout:
    provider_payment_id: str  # the provider's id for this payment (session, order, ...)
    redirect_url: str  # the provider's page where the customer pays


@dataclass(frozen=True)
class Event:
    event_id: str
    type: str  # one of EVENT_TYPES, or the provider's own name when it is not one of ours
    provider_payment_id: str
    occurred_at: datetime.datetime
    amount: Decimal | None = None  # refunds: how much this refund was
    currency: str = ""
    message: str = ""  # failures and returns: why, readable by a person
    refund_id: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundRequest:
    provider_payment_id: str
    amount: Decimal
    currency: str
    idempotency_key: str
    reason: str = ""


@dataclass(frozen=True)
class RefundResult:
    provider_refund_id: str
    succeeded: bool  # False: pending; a refund.succeeded event follows


class ProviderError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Declined(ProviderError):
    """The provider refused; the message is for the customer."""


class RedirectRequired(ProviderError):
    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


class ProviderUnavailable(ProviderError):
    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class InvalidEvent(ProviderError):
    """A webhook that does not verify: refused, nothing stored."""


class PaymentProvider(Protocol):
    name: str
    methods: frozenset[str]

    def create_checkout(self, request: CheckoutRequest, credentials: Mapping[str, str]) -> Checkout: ...

    def parse_events(
        self, body: bytes, headers: Mapping[str, str], credentials: Mapping[str, str]
    ) -> list[Event]: ...

    def refund(self, request: RefundRequest, credentials: Mapping[str, str]) -> RefundResult: ...
