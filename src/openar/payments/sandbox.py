"""What the sandbox "provider" does on its side: decide the outcome of a test card or bank
account, and send the resulting events, now or days later, through the webhook path
(``openar.payments.webhooks.receive``), signed as a real provider's would be."""

from __future__ import annotations

import datetime
import json
import logging
import re
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from openar.payments.models import Payment, SandboxEvent
from openar.payments.providers import base
from openar.payments.providers.sandbox import SIGNATURE_HEADER, event_body, sign

logger = logging.getLogger(__name__)

CARD_PAID = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_CHALLENGE = "4000002760003184"
BANK_SETTLES = "000123456789"
BANK_RETURNED = "000111111113"
SETTLE_AFTER = datetime.timedelta(days=3)
RETURN_AFTER = datetime.timedelta(days=5)
DECLINED_MESSAGE = "Your card was declined."
RETURNED_MESSAGE = "The account has insufficient funds (R01)."


def digits(text: str) -> str:
    return re.sub(r"\D", "", text or "")


def _event(payment: Payment, kind: str, at: datetime.datetime, message: str = "") -> dict[str, Any]:
    return {
        "id": f"sbe_{uuid.uuid4().hex}",
        "type": kind,
        "payment": payment.provider_payment_id,
        "at": at.isoformat(),
        "message": message,
        "openar_payment_id": str(payment.pk),
    }


def deliver(payment: Payment, events: list[dict[str, Any]]) -> list[str]:
    """Send ``events`` now, through the webhook path (signed, verified, stored once)."""
    from openar.payments.webhooks import receive

    body = event_body(events)
    return receive("sandbox", payment.organization, body, {SIGNATURE_HEADER: sign(body)})


def schedule(events: list[dict[str, Any]], due_at: datetime.datetime) -> None:
    SandboxEvent.objects.create(body=event_body(events).decode(), due_at=due_at)


def card_outcome(payment: Payment, number: str) -> str:
    """ "paid", "declined" or "challenge" for a test card; the events go out at once."""
    card = digits(number)
    now = timezone.now()
    if card == CARD_CHALLENGE:
        return "challenge"
    if card == CARD_PAID:
        deliver(payment, [_event(payment, base.PAYMENT_SUCCEEDED, now)])
        return "paid"
    deliver(payment, [_event(payment, base.PAYMENT_FAILED, now, DECLINED_MESSAGE)])
    return "declined"


def challenge_answer(payment: Payment, approved: bool) -> str:
    now = timezone.now()
    if approved:
        deliver(payment, [_event(payment, base.PAYMENT_SUCCEEDED, now)])
        return "paid"
    deliver(payment, [_event(payment, base.PAYMENT_FAILED, now, "Authentication failed.")])
    return "declined"


def bank_outcome(payment: Payment, account: str) -> str:
    """ "processing" for the test accounts (settling later), "declined" for any other."""
    number = digits(account)
    now = timezone.now()
    if number not in (BANK_SETTLES, BANK_RETURNED):
        deliver(
            payment, [_event(payment, base.PAYMENT_FAILED, now, "The bank account could not be verified.")]
        )
        return "declined"
    deliver(payment, [_event(payment, base.PAYMENT_PROCESSING, now)])
    with transaction.atomic():
        schedule([_event(payment, base.PAYMENT_SUCCEEDED, now + SETTLE_AFTER)], now + SETTLE_AFTER)
        if number == BANK_RETURNED:
            later = now + RETURN_AFTER
            schedule([_event(payment, base.PAYMENT_RETURNED, later, RETURNED_MESSAGE)], later)
    return "processing"


def deliver_due(now: datetime.datetime | None = None) -> int:
    """The periodic job: send the sandbox's events whose time has come."""
    from openar.payments.webhooks import receive

    now = now or timezone.now()
    sent = 0
    for row in SandboxEvent.objects.filter(delivered_at__isnull=True, due_at__lte=now).order_by(
        "due_at", "pk"
    ):
        with transaction.atomic():
            # Taken under a lock and marked only with its delivery: a failure leaves it for
            # the next run, and another worker skips it meanwhile.
            taken = SandboxEvent.objects.select_for_update(skip_locked=True).filter(
                pk=row.pk, delivered_at__isnull=True
            )
            if not taken.exists():
                continue
            body = row.body.encode()
            try:
                payment_id = int(json.loads(body)[0]["openar_payment_id"])
                with scopes_disabled():
                    payment = Payment.objects.select_related("organization").get(pk=payment_id)
                receive("sandbox", payment.organization, body, {SIGNATURE_HEADER: sign(body)})
            except Exception:
                logger.exception("sandbox event %s not delivered; tried again at the next run", row.pk)
                continue
            taken.update(delivered_at=now)
        sent += 1
    return sent
