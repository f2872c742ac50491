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

- ``payment.processing``, ``payment.succeeded``, ``payment.failed``: the payment's own course.
- ``payment.returned``: money that had arrived went back. ``amount``, when the provider gives
  it, is how much (a dispute may be for part of the payment); without it, all of it.
- ``refund.succeeded`` and ``refund.failed``: the outcome of a refund, named by ``refund_id``
  (the provider's id, as ``RefundResult.provider_refund_id`` answered it). A failed (or
  cancelled) refund gave nothing back: the refund is marked failed, the payment is unchanged,
  and the amount can be refunded again.
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
REFUND_FAILED = "refund.failed"  # a refund the provider could not make, or cancelled: nothing went back
EVENT_TYPES = (
    PAYMENT_PROCESSING,
    PAYMENT_SUCCEEDED,
    PAYMENT_FAILED,
    PAYMENT_RETURNED,
    REFUND_SUCCEEDED,
    REFUND_FAILED,
)


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
    amount: Decimal | None = None  # refunds: how much this refund was; returns: how much went back
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


# --- saved methods and autopay (optional: a provider that has them has all three hooks) -----
#
# ``start_setup`` opens the provider's page where the customer saves a card or bank account
# (never OpenAR's page: the numbers stay at the provider); ``complete_setup`` reads what was
# saved once the customer is back; ``charge_saved`` charges a saved method without the
# customer present (autopay), passing the payment's idempotency key like a checkout. The same
# rules hold: no state changes, no database, no card numbers. A charge the provider refuses
# raises ``Declined``; ``charge_saved`` answers "succeeded" or "processing" (a bank debit),
# and the service moves the payment through the event path with that answer.


@dataclass(frozen=True)
class SetupRequest:
    organization_id: int
    organization_name: str
    customer_ref: str  # the customer at the provider, when one was made before ("" the first time)
    customer_email: str
    customer_name: str
    method: str  # "card", "ach"
    currency: str
    idempotency_key: str
    return_url: str
    cancel_url: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Setup:
    provider_setup_id: str
    redirect_url: str
    customer_ref: str


@dataclass(frozen=True)
class SavedMethodInfo:
    customer_ref: str
    method_ref: str
    method: str  # "card", "ach"
    label: str  # what the customer may see: "Visa ending 4242", "Bank account ending 6789"
    expires: datetime.date | None = None


class SetupIncomplete(ProviderError):
    """The customer has not finished saving the method (or gave up)."""


@dataclass(frozen=True)
class ChargeRequest:
    payment_id: int
    organization_id: int
    amount: Decimal
    currency: str
    method: str
    customer_ref: str
    method_ref: str
    description: str
    idempotency_key: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Charge:
    provider_payment_id: str
    status: str  # "succeeded" or "processing"


class SavesMethods(Protocol):
    def start_setup(self, request: SetupRequest, credentials: Mapping[str, str]) -> Setup: ...

    def complete_setup(self, provider_setup_id: str, credentials: Mapping[str, str]) -> SavedMethodInfo: ...

    def charge_saved(self, request: ChargeRequest, credentials: Mapping[str, str]) -> Charge: ...


def saves_methods(provider: object) -> SavesMethods | None:
    """The provider as one that saves methods, or None when it cannot."""
    hooks = ("start_setup", "complete_setup", "charge_saved")
    if all(callable(getattr(provider, name, None)) for name in hooks):
        return provider  # type: ignore[return-value]
    return None
