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


# --- saved methods (the sandbox's side of autopay) ------------------------------------------
#
# What a real provider keeps on its servers, the sandbox keeps in ``SandboxSetup`` rows and in
# the saved method's reference itself: ``sbpm_<behaviour>_<random>``, where the behaviour
# (from the test number typed at the sandbox's page) decides every later charge.

CARD_SAVED_DECLINES = "4000000000000341"  # Stripe's test card: saves, then every charge is declined
SAVED_CARDS = {CARD_PAID: "ok", CARD_CHALLENGE: "ok", CARD_SAVED_DECLINES: "decline"}
SAVED_ACCOUNTS = {BANK_SETTLES: "bank", BANK_RETURNED: "bankret"}
METHOD_REF = re.compile(r"sbpm_(ok|decline|bank|bankret)_[0-9a-f]{16}")


def setup_open(
    *,
    setup_id: str,
    customer_ref: str,
    method: str,
    return_url: str,
    cancel_url: str,
    organization_name: str,
) -> None:
    """Open (or find again: the id comes from the idempotency key) a setup page."""
    from openar.payments.models import SandboxSetup

    SandboxSetup.objects.get_or_create(
        setup_id=setup_id,
        defaults={
            "customer_ref": customer_ref,
            "method": method,
            "return_url": return_url[:500],
            "cancel_url": cancel_url[:500],
            "organization_name": organization_name[:200],
        },
    )


def setup_save(setup_id: str, *, method: str, number: str, expires: datetime.date | None) -> str:
    """Save what the customer typed at the setup page: "saved", or the reason it cannot be
    (shown on the page, as a provider's would)."""
    import secrets

    from openar.payments.models import SandboxSetup

    typed = digits(number)
    behaviour = (SAVED_ACCOUNTS if method == "ach" else SAVED_CARDS).get(typed)
    if behaviour is None:
        if method == "ach":
            return "The bank account could not be verified."
        return DECLINED_MESSAGE
    label = f"{'Bank account' if method == 'ach' else 'Visa'} ending {typed[-4:]}"
    updated = SandboxSetup.objects.filter(setup_id=setup_id, state="open").update(
        state="saved",
        method_ref=f"sbpm_{behaviour}_{secrets.token_hex(8)}",
        label=label,
        expires=expires,
    )
    return "saved" if updated else "This page has already been used."


def setup_cancel(setup_id: str) -> None:
    from openar.payments.models import SandboxSetup

    SandboxSetup.objects.filter(setup_id=setup_id, state="open").update(state="cancelled")


def setup_result(setup_id: str) -> dict[str, Any] | None:
    """What was saved at the setup page (None while it is open or after it was cancelled)."""
    from openar.payments.models import SandboxSetup

    row = SandboxSetup.objects.filter(setup_id=setup_id, state="saved").first()
    if row is None:
        return None
    return {
        "customer_ref": row.customer_ref,
        "method_ref": row.method_ref,
        "method": row.method,
        "label": row.label,
        "expires": row.expires,
    }


def charge(*, provider_payment_id: str, payment_id: int, method_ref: str) -> str:
    """Charge a saved method: "succeeded", "processing" (a bank debit, settled three days
    later and, for the returned test account, returned two days after), or "declined".
    The later events have ids of their own payment's, so a charge asked twice (the same
    idempotency key) schedules them once."""
    found = METHOD_REF.fullmatch(method_ref)
    behaviour = found.group(1) if found else "decline"
    if behaviour == "ok":
        return "succeeded"
    if behaviour == "decline":
        return "declined"
    now = timezone.now()

    def event(kind: str, at: datetime.datetime, suffix: str, message: str = "") -> dict[str, Any]:
        return {
            "id": f"sbe_{provider_payment_id}_{suffix}",
            "type": kind,
            "payment": provider_payment_id,
            "at": at.isoformat(),
            "message": message,
            "openar_payment_id": str(payment_id),
        }

    with transaction.atomic():
        schedule([event(base.PAYMENT_SUCCEEDED, now + SETTLE_AFTER, "settled")], now + SETTLE_AFTER)
        if behaviour == "bankret":
            later = now + RETURN_AFTER
            schedule([event(base.PAYMENT_RETURNED, later, "returned", RETURNED_MESSAGE)], later)
    return "processing"


def checkout_open(*, checkout_id: str, return_url: str, cancel_url: str) -> None:
    """Remember where the customer goes back to from a checkout (found again, not changed,
    for the same idempotency key)."""
    from openar.payments.models import SandboxCheckout

    SandboxCheckout.objects.get_or_create(
        checkout_id=checkout_id, defaults={"return_url": return_url[:500], "cancel_url": cancel_url[:500]}
    )


def checkout_return(checkout_id: str, *, cancelled: bool = False) -> str:
    """Where the customer goes back to ("" when the checkout did not say)."""
    from openar.payments.models import SandboxCheckout

    found = SandboxCheckout.objects.filter(checkout_id=checkout_id).first()
    if found is None:
        return ""
    return found.cancel_url if cancelled else found.return_url
