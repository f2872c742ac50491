"""Saved methods and autopay: the customer saves a card or bank account at the provider
(never in OpenAR) and agrees, in words kept as they read them, to have each invoice charged
on its due date.

How it runs:

- **Saving a method** (``setup_start`` → the provider's page → ``setup_complete``). A
  magic-link session must step up first (the portal checks). What OpenAR keeps is the
  provider's references and a label ("Visa ending 4242").
- **Consent.** ``autopay_enable`` records the exact text the customer agreed to
  (``consent_text``, which names the organization, the account and the method), with the
  time, the address and who gave it. Turning autopay off is one click and is recorded too.
- **Charging** (``charge_due``, a periodic job). For each active autopay, the invoices due
  today or earlier that still have something to pay (not already covered by a payment in
  flight, not on hold) are charged in one payment to the saved method. The payment's
  ``checkout_token`` names the day and the attempt, so any number of workers, or a run
  repeated after a crash, make one payment, and its idempotency key makes one charge at the
  provider. The provider's answer goes through the event path like a webhook (stored once,
  applied once).
- **Failures** (a decline now, a bank debit that fails or is returned later) tell the
  customer and AR and are tried again after 1, 3 and 7 days; after the fourth failure in a
  row autopay is suspended until the customer chooses a method again. A payment that goes
  through clears the count. A provider that cannot be reached is not a failure of the
  customer's method: the pending payment is charged again at the next run, with the same
  idempotency key.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from openar.billing.models import Invoice
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.core.money import format_money
from openar.customers.models import Activity, Contact, Customer, Hold
from openar.customers.services import activity_record
from openar.identity.models import User
from openar.notifications.notices import tell_ar, tell_customer
from openar.payments import events, online
from openar.payments.credit import credit_use
from openar.payments.methods import METHOD_LABELS, methods_for
from openar.payments.models import Autopay, MethodSetup, Payment, SavedMethod
from openar.payments.providers import base
from openar.payments.providers.registry import provider as provider_named

logger = logging.getLogger(__name__)

RETRY_AFTER = (datetime.timedelta(days=1), datetime.timedelta(days=3), datetime.timedelta(days=7))
MAX_FAILURES = len(RETRY_AFTER) + 1  # the fourth failure in a row suspends autopay


def consent_text(customer: Customer, method: SavedMethod) -> str:
    """The words the customer agrees to, kept with the autopay as they were shown."""
    organization = customer.organization
    return (
        f"I authorize {organization.name} to charge my {method.label} for each invoice of account "
        f"{customer.number} ({customer.name}) on its due date, for the amount then due, until I turn "
        "automatic payments off. I will get a receipt for each charge and an email if one fails. "
        "I can turn automatic payments off at any time in the portal."
    )


def saved_methods(customer: Customer) -> list[SavedMethod]:
    return list(
        SavedMethod.objects.filter(customer=customer, removed_at__isnull=True).order_by("-created_at", "-pk")
    )


def _saver(provider_name: str) -> base.SavesMethods:
    found = base.saves_methods(provider_named(provider_name))
    if found is None:
        raise ServiceError("Saving a card or bank account is not available here.", field="method")
    return found


def setup_start(
    *,
    customer: Customer,
    contact: Contact | None,
    method: str,
    actor: User | None,
    return_route: str = "portal:autopay_return",
) -> tuple[MethodSetup, str]:
    """Open the provider's page where the customer saves ``method``; returns the setup and
    the address to send them to. They come back to ``return_route`` (a URL name taking the
    setup's id: the portal's autopay page, or the pay page's plan)."""
    providers = methods_for(customer.organization, saving=True)
    provider_name = providers.get(method)
    if provider_name is None:
        raise ServiceError("Choose a card or a bank account.", field="method")
    saver = _saver(provider_name)
    setup = MethodSetup.objects.create(
        organization_id=customer.organization_id,
        customer=customer,
        contact=contact,
        provider=provider_name,
        method=method,
    )
    known = (
        SavedMethod.objects.filter(customer=customer, provider=provider_name)
        .exclude(provider_customer_ref="")
        .values_list("provider_customer_ref", flat=True)
        .first()
    )
    back = f"{settings.SITE_URL}{reverse(return_route, args=[setup.pk])}"
    started = saver.start_setup(
        base.SetupRequest(
            organization_id=customer.organization_id,
            organization_name=customer.organization.name,
            customer_ref=known or "",
            customer_email=(contact.email if contact else "") or customer.email,
            customer_name=customer.name,
            method=method,
            currency=customer.currency,
            idempotency_key=str(setup.idempotency_key),
            return_url=back,
            cancel_url=f"{back}?cancelled=1",
            metadata={"openar_setup_id": str(setup.pk), "openar_customer_id": str(customer.pk)},
        ),
        online.credentials_for(customer.organization, provider_name),
    )
    MethodSetup.objects.filter(pk=setup.pk).update(provider_setup_id=started.provider_setup_id)
    setup.provider_setup_id = started.provider_setup_id
    log_event(
        "openar.saved_method.setup_started",
        organization=customer.organization,
        obj=setup,
        actor=actor,
        data={"method": method, "provider": provider_name},
    )
    return setup, started.redirect_url


def setup_complete(*, setup: MethodSetup, actor: User | None) -> SavedMethod | None:
    """The customer is back from the provider's page: keep what they saved (once, however
    often they come back), or None when they did not finish."""
    if setup.state == MethodSetup.State.SAVED:
        return setup.saved_method
    if setup.state != MethodSetup.State.PENDING or not setup.provider_setup_id:
        return None
    customer = setup.customer
    try:
        info = _saver(setup.provider).complete_setup(
            setup.provider_setup_id, online.credentials_for(customer.organization, setup.provider)
        )
    except base.SetupIncomplete:
        return None
    with transaction.atomic():
        locked = MethodSetup.objects.select_for_update().get(pk=setup.pk)
        if locked.state == MethodSetup.State.SAVED:
            return locked.saved_method
        method, created = SavedMethod.objects.get_or_create(
            provider=setup.provider,
            provider_method_ref=info.method_ref,
            defaults={
                "organization_id": customer.organization_id,
                "customer": customer,
                "method": info.method,
                "provider_customer_ref": info.customer_ref,
                "label": info.label[:100],
                "expires": info.expires,
                "saved_by": setup.contact,
            },
        )
        if method.customer_id != customer.pk:  # another customer's reference: never shared
            raise ServiceError("This card or bank account cannot be saved here.")
        MethodSetup.objects.filter(pk=setup.pk).update(state=MethodSetup.State.SAVED, saved_method=method)
        setup.state, setup.saved_method = MethodSetup.State.SAVED, method
        if created:
            activity_record(
                customer=customer,
                kind=Activity.Kind.PAYMENT,
                summary=f"{method.label} saved for automatic payments",
                actor=actor,
                visibility=Activity.Visibility.CUSTOMER,
            )
            log_event(
                "openar.saved_method.saved",
                organization=customer.organization,
                obj=method,
                actor=actor,
                data={"label": method.label, "provider": method.provider, "by_contact": setup.contact_id},
            )
    return method


def method_remove(*, method: SavedMethod, actor: User | None) -> None:
    """Forget a saved method; autopay with it is turned off (and the customer is told)."""
    with transaction.atomic():
        locked = SavedMethod.objects.select_for_update().get(pk=method.pk)
        if locked.removed_at is not None:
            return
        autopay = Autopay.objects.filter(method=locked).exclude(state=Autopay.State.OFF).first()
        if autopay is not None:
            autopay_disable(customer=locked.customer, actor=actor, reason=f"{locked.label} was removed")
        SavedMethod.objects.filter(pk=locked.pk).update(removed_at=timezone.now())
        activity_record(
            customer=locked.customer,
            kind=Activity.Kind.PAYMENT,
            summary=f"{locked.label} removed",
            actor=actor,
            visibility=Activity.Visibility.CUSTOMER,
        )
        log_event(
            "openar.saved_method.removed", organization=locked.customer.organization, obj=locked, actor=actor
        )


def autopay_enable(
    *,
    customer: Customer,
    method: SavedMethod,
    agreed_text: str,
    contact: Contact | None,
    actor: User | None,
    ip: str | None,
) -> Autopay:
    """Turn autopay on with ``method``. ``agreed_text`` is the text the page showed: it must
    be today's consent text, so that what is kept is exactly what the customer read."""
    if method.customer_id != customer.pk or method.removed_at is not None:
        raise ServiceError("Choose one of your saved cards or bank accounts.", field="method")
    expected = consent_text(customer, method)
    if agreed_text.strip() != expected:
        raise ServiceError("The terms changed while you were reading them: read them again.", field="consent")
    now = timezone.now()
    with transaction.atomic():
        autopay, _ = Autopay.objects.select_for_update().update_or_create(
            customer=customer,
            defaults={
                "organization_id": customer.organization_id,
                "method": method,
                "state": Autopay.State.ACTIVE,
                "consent_text": expected,
                "consent_at": now,
                "consent_ip": ip,
                "consent_contact": contact,
                "consent_user": actor if actor is not None and actor.is_authenticated else None,
                "failures": 0,
                "next_attempt_at": None,
                "last_failure": "",
            },
        )
        activity_record(
            customer=customer,
            kind=Activity.Kind.PAYMENT,
            summary=f"Automatic payments turned on with {method.label}",
            body=expected,
            actor=actor,
            visibility=Activity.Visibility.CUSTOMER,
        )
        log_event(
            "openar.autopay.enabled",
            organization=customer.organization,
            obj=autopay,
            actor=actor,
            ip=ip,
            data={
                "method": method.label,
                "consent_text": expected,
                "contact": contact.pk if contact else None,
            },
        )
        tell_customer(
            customer,
            contact,
            f"Automatic payments are on for account {customer.number}",
            f"You turned on automatic payments with your {method.label}.\n\nWhat you agreed to:\n{expected}",
        )
    return autopay


def autopay_disable(*, customer: Customer, actor: User | None, reason: str = "") -> None:
    with transaction.atomic():
        autopay = Autopay.objects.select_for_update().filter(customer=customer).first()
        if autopay is None or autopay.state == Autopay.State.OFF:
            return
        Autopay.objects.filter(pk=autopay.pk).update(state=Autopay.State.OFF, next_attempt_at=None)
        summary = "Automatic payments turned off" + (f": {reason}" if reason else "")
        activity_record(
            customer=customer,
            kind=Activity.Kind.PAYMENT,
            summary=summary[:300],
            actor=actor,
            visibility=Activity.Visibility.CUSTOMER,
        )
        log_event(
            "openar.autopay.disabled",
            organization=customer.organization,
            obj=autopay,
            actor=actor,
            data={"reason": reason},
        )
        tell_customer(
            customer,
            autopay.consent_contact,
            f"Automatic payments are off for account {customer.number}",
            f"{summary}. Nothing more will be charged automatically; "
            "your invoices stay payable in the portal.",
        )


# --- charging -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    customer_id: int
    result: str  # "succeeded", "processing", "failed", "retry later", "nothing due", "skipped: ..."


def charge_due(now: datetime.datetime | None = None) -> list[Outcome]:
    """The periodic job: charge each active autopay whose day (or retry) has come."""
    now = now or timezone.now()
    with scopes_disabled():
        due = list(
            Autopay.objects.filter(state=Autopay.State.ACTIVE)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .values_list("pk", "organization_id")
            .order_by("pk")
        )
    outcomes = []
    for pk, _organization_id in due:
        with scopes_disabled():
            autopay = Autopay.objects.select_related("customer__organization", "method").get(pk=pk)
        with scope(organization=autopay.customer.organization):
            try:
                outcomes.append(Outcome(autopay.customer_id, _charge(autopay, now)))
            except Exception:  # one customer's trouble never stops the others'
                logger.exception("autopay charge failed", extra={"autopay": pk})
                outcomes.append(Outcome(autopay.customer_id, "error"))
    return outcomes


def _due_invoices(customer: Customer, today: datetime.date, now: datetime.datetime) -> list[online.PayLine]:
    holds = [
        hold
        for hold in Hold.objects.filter(customer=customer, released_at__isnull=True)
        if hold.active_at(now)
    ]
    if any(hold.invoice_id is None for hold in holds):
        return []
    from openar.reminders.context import planned_invoices, promised_invoices

    held = {hold.invoice_id for hold in holds}
    # A payment plan or a promise decides when those invoices are paid: not autopay.
    invoices = [
        invoice
        for invoice in Invoice.objects.filter(
            customer=customer, open_amount__gt=0, currency=customer.currency, due_date__lte=today
        )
        .exclude(planned_invoices())
        .exclude(promised_invoices(now))
        .order_by("due_date", "pk")
        if invoice.pk not in held
    ]
    # Payments in flight and open disputes are not charged (a dispute pauses its amount).
    flying = online.not_payable_now(invoice.pk for invoice in invoices)
    return [
        online.PayLine(invoice, online.payable(invoice, flying))
        for invoice in invoices
        if online.payable(invoice, flying) > 0
    ]


def _charge(autopay: Autopay, now: datetime.datetime) -> str:
    customer = autopay.customer
    method = autopay.method
    if method.removed_at is not None:
        return "skipped: the method was removed"
    today = customer.organization.today()
    token = f"autopay-{today.isoformat()}-{autopay.failures}"
    with transaction.atomic():
        # One worker decides today's payment: the credit is used once, with the payment made.
        Autopay.objects.select_for_update().filter(pk=autopay.pk).first()
        found = Payment.objects.filter(customer=customer, checkout_token=token).first()
        payment = found if found is not None else _make_payment(autopay, customer, method, token, today, now)
        if isinstance(payment, str):
            return payment
    if payment.state != Payment.State.PENDING:
        return f"skipped: today's payment is {payment.state}"
    return charge_pending(payment)


def _make_payment(
    autopay: Autopay,
    customer: Customer,
    method: SavedMethod,
    token: str,
    today: datetime.date,
    now: datetime.datetime,
) -> Payment | str:
    """Today's payment for what is due (after the credit on the account), or what to say
    when there is nothing to charge."""
    lines = _due_invoices(customer, today, now)
    if lines:  # credit on the account pays first (an overpayment, say)
        _, lines = credit_use(customer=customer, lines=lines, actor=None)
        if not lines:
            return "paid by credit"
    if not lines:
        if autopay.next_attempt_at is not None:  # paid meanwhile: nothing to try again
            Autopay.objects.filter(pk=autopay.pk).update(next_attempt_at=None, failures=0, last_failure="")
        return "nothing due"
    return online.payment_create(
        customer=customer,
        lines=lines,
        method=method.method,
        provider_name=method.provider,
        checkout_token=token,
        contact=autopay.consent_contact,
        saved_method=method,
    )


def charge_pending(payment: Payment) -> str:
    """Charge a pending payment made for a saved method (``payment.saved_method``):
    "succeeded", "processing", "failed", "retry later" (the provider could not be reached:
    call again, the idempotency key makes it the same charge), or "skipped: ..." when
    another worker is charging it or it is no longer pending. The outcome moves the
    payment through the event path, which calls the handler named for its
    ``checkout_token`` prefix (``OUTCOME_HANDLERS``)."""
    method = payment.saved_method
    if method is None:
        raise ValueError("charge_pending needs a payment made for a saved method")
    with transaction.atomic():
        # One worker charges; the others skip it (the idempotency key would make their
        # charges the same one anyway, but the provider is asked once).
        locked = (
            Payment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=payment.pk, state=Payment.State.PENDING)
            .first()
        )
        if locked is None:
            return "skipped: another worker is charging it"
        return _charge_payment(payment, method)


def _charge_payment(payment: Payment, method: SavedMethod) -> str:
    customer = payment.customer
    saver = _saver(method.provider)
    organization = customer.organization
    try:
        charged = saver.charge_saved(
            base.ChargeRequest(
                payment_id=payment.pk,
                organization_id=organization.pk,
                amount=payment.amount,
                currency=payment.currency,
                method=payment.method,
                customer_ref=method.provider_customer_ref,
                method_ref=method.provider_method_ref,
                description=f"{organization.name}, account {customer.number}",
                idempotency_key=str(payment.idempotency_key),
                metadata={"openar_payment_id": str(payment.pk), "openar_charge": "autopay"},
            ),
            online.credentials_for(organization, method.provider),
        )
    except base.ProviderUnavailable as exc:
        if exc.retryable:
            logger.warning(
                "autopay provider unavailable; tried again at the next run", extra={"payment": payment.pk}
            )
            return "retry later"
        return _declined(payment, exc.message)
    except base.Declined as exc:
        return _declined(payment, exc.message)
    Payment.objects.filter(pk=payment.pk, provider_payment_id="").update(
        provider_payment_id=charged.provider_payment_id
    )
    kind = base.PAYMENT_SUCCEEDED if charged.status == "succeeded" else base.PAYMENT_PROCESSING
    events.events_ingest(
        method.provider,
        [
            base.Event(
                event_id=f"charge:{payment.idempotency_key}:{charged.status}",
                type=kind,
                provider_payment_id=charged.provider_payment_id,
                occurred_at=timezone.now(),
                payload={"openar_payment_id": str(payment.pk), "source": "charge_saved"},
            )
        ],
        organization=organization,
    )
    return charged.status


def _declined(payment: Payment, message: str) -> str:
    """A charge refused now: failed through the event path, like a provider's own word."""
    events.events_ingest(
        payment.provider,
        [
            base.Event(
                event_id=f"charge:{payment.idempotency_key}:declined",
                type=base.PAYMENT_FAILED,
                provider_payment_id="",
                occurred_at=timezone.now(),
                message=message,
                payload={"openar_payment_id": str(payment.pk), "source": "charge_saved"},
            )
        ],
        organization=payment.customer.organization,
    )
    return "failed"


# Who is told when a payment charged to a saved method ends: by the prefix of its
# ``checkout_token``, a dotted path to a function taking the payment (called in the event's
# transaction). Autopay's own charges are "autopay-..."; other features that charge saved
# methods (installments of a payment plan) add theirs.
OUTCOME_HANDLERS: dict[str, str] = {"autopay-": "openar.payments.autopay.autopay_outcome"}


def payment_outcome(payment: Payment) -> None:
    """Called by the event path when a payment charged to a saved method changes state:
    handed to the feature that charged it."""
    from django.utils.module_loading import import_string

    for prefix, handler in OUTCOME_HANDLERS.items():
        if payment.checkout_token.startswith(prefix):
            import_string(handler)(payment)
            return


def autopay_outcome(payment: Payment) -> None:
    """An autopay charge ended: a success clears the failure count; a failure or a return
    is counted, told, and tried again later or suspends autopay."""
    if payment.saved_method_id is None:
        return
    autopay = Autopay.objects.select_for_update().filter(customer_id=payment.customer_id).first()
    if autopay is None or autopay.method_id != payment.saved_method_id:
        return
    if payment.state == Payment.State.SUCCEEDED:
        if autopay.failures or autopay.next_attempt_at:
            Autopay.objects.filter(pk=autopay.pk).update(failures=0, next_attempt_at=None, last_failure="")
        return
    if payment.state not in (Payment.State.FAILED, Payment.State.RETURNED):
        return
    failures = autopay.failures + 1
    stored = Payment.objects.filter(pk=payment.pk).values_list("failure_message", flat=True).first()
    message = stored or payment.failure_message or "The payment did not go through."
    customer = payment.customer
    amount = format_money(payment.amount, payment.currency)
    suspended = failures >= MAX_FAILURES or autopay.state != Autopay.State.ACTIVE
    when = None if suspended else timezone.now() + RETRY_AFTER[failures - 1]
    Autopay.objects.filter(pk=autopay.pk).update(
        failures=failures,
        next_attempt_at=when,
        last_failure=message[:300],
        state=Autopay.State.SUSPENDED
        if suspended and autopay.state == Autopay.State.ACTIVE
        else autopay.state,
    )
    label = autopay.method.label
    if suspended:
        what = (
            f"Automatic payments are paused after {failures} failed attempts. Choose a card or bank account "
            "again in the portal to turn them back on, or pay your invoices there."
        )
    else:
        assert when is not None  # noqa: S101
        day = when.astimezone(customer.organization.tz).strftime("%d %B %Y")
        what = (
            f"We will try again on {day}. You can also pay now in the portal, or choose another method there."
        )
    summary = f"Automatic payment of {amount} with {label} failed: {message}"
    activity_record(
        customer=customer,
        kind=Activity.Kind.PAYMENT,
        summary=summary[:300],
        body=what,
        visibility=Activity.Visibility.CUSTOMER,
    )
    log_event(
        "openar.autopay.failed",
        organization=customer.organization,
        obj=autopay,
        data={"payment": payment.pk, "failures": failures, "message": message, "suspended": suspended},
    )
    tell_customer(
        customer,
        autopay.consent_contact,
        f"Your automatic payment of {amount} did not go through",
        f"Your automatic payment of {amount} to {customer.organization.name} with your {label} did not go "
        f"through: {message}\n\n{what}\n\n{settings.SITE_URL}/portal/autopay/",
    )
    tell_ar(
        customer, f"Autopay failed: {customer.name} ({customer.number}), {amount}", f"{summary}\n\n{what}"
    )


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def autopay_summary(customer: Customer) -> dict[str, object] | None:
    """What the portal and the desk show of a customer's autopay."""
    autopay = Autopay.objects.select_related("method").filter(customer=customer).first()
    if autopay is None:
        return None
    upcoming = (
        Invoice.objects.filter(customer=customer, open_amount__gt=0, currency=customer.currency)
        .order_by("due_date", "pk")
        .first()
    )
    return {
        "autopay": autopay,
        "active": autopay.state == Autopay.State.ACTIVE,
        "next_invoice": upcoming,
        "next_amount": format_money(upcoming.open_amount, upcoming.currency) if upcoming else "",
        "open_total": format_money(
            sum(
                (
                    i.open_amount
                    for i in Invoice.objects.filter(
                        customer=customer, open_amount__gt=0, currency=customer.currency
                    )
                ),
                Decimal(0),
            ),
            customer.currency,
        ),
    }
