"""Online payments: what the customer chose to pay, the checkout at the provider, and the
provider's events, which alone move a payment's state.

States: ``pending`` (created, the customer is at the provider's page) → ``processing``
(accepted, money in flight: a bank debit) → ``succeeded`` (allocated to the invoices it was
for); or ``failed``; a succeeded payment may end ``returned`` (its allocations reversed and
its invoices open again) or ``refunded`` (in full; a partial refund keeps it succeeded with
``refunded_amount``).

Money safety:

- One payment per pay form: the form's one-time ``checkout_token`` is unique per customer,
  so any number of clicks make one Payment row, and its ``idempotency_key`` (from that row)
  is what the provider gets: one provider payment.
- Every provider event is stored once (unique provider and event id) before it is
  processed; processing locks the event and the payment and re-checks the state, so a
  replayed, doubled or out-of-order event changes nothing (a "succeeded" after "returned",
  a "processing" after "succeeded").
- Allocations are made only when the money has arrived, each capped by what the invoice
  still has open at that moment; what is left is unapplied credit on the payment.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from openar.billing.ledger import invoice_apply, invoices_lock
from openar.billing.models import Invoice
from openar.core.audit import audit_event, log_event
from openar.core.errors import ServiceError
from openar.core.money import exponent, format_money, quantize
from openar.customers.models import Activity, Contact, Customer
from openar.customers.services import activity_build, activity_record
from openar.identity.models import User
from openar.notifications.notices import tell_ar
from openar.payments.models import (
    Allocation,
    Payment,
    PaymentSettings,
    PaymentTarget,
    ProviderEvent,
    Refund,
    SavedMethod,
)
from openar.payments.providers import base
from openar.payments.providers.registry import provider as provider_named
from openar.payments.writes import Writes
from openar.tenants.models import Organization

logger = logging.getLogger(__name__)

IN_FLIGHT = (Payment.State.PENDING, Payment.State.PROCESSING)
# How far a payment can have come: an event may only move it forward.
RANK = {
    Payment.State.PENDING: 0,
    Payment.State.PROCESSING: 1,
    Payment.State.SUCCEEDED: 2,
    Payment.State.FAILED: 2,
    Payment.State.RETURNED: 3,
    Payment.State.REFUNDED: 3,
}


@dataclass(frozen=True)
class PayLine:
    invoice: Invoice
    amount: Decimal

    @property
    def partial(self) -> bool:
        return self.amount < self.invoice.open_amount


def payment_settings(organization: Organization) -> PaymentSettings:
    found, _ = PaymentSettings.objects.get_or_create(organization=organization)
    return found


def in_flight(invoice_ids: Iterable[int], *, checkout_token: str = "") -> dict[int, Decimal]:
    """For each invoice, the amount of payments still in flight for it (pending or
    processing): shown as "payment processing", and not payable twice. The payment of
    ``checkout_token`` (the pay form being submitted again) does not count against itself."""
    targets = PaymentTarget.objects.filter(invoice_id__in=list(invoice_ids), payment__state__in=IN_FLIGHT)
    if checkout_token:
        targets = targets.exclude(payment__checkout_token=checkout_token)
    rows = targets.values_list("invoice_id", "amount").order_by()
    found: dict[int, Decimal] = {}
    for invoice_id, amount in rows:  # summed in Decimal (SQLite would sum in floating point)
        found[invoice_id] = found.get(invoice_id, Decimal(0)) + amount
    return found


def payable(invoice: Invoice, flying: Mapping[int, Decimal]) -> Decimal:
    return max(Decimal(0), invoice.open_amount - flying.get(invoice.pk, Decimal(0)))


def not_payable_now(invoice_ids: Iterable[int], *, checkout_token: str = "") -> dict[int, Decimal]:
    """For each invoice, what cannot be paid now: payments in flight for it (``in_flight``)
    and what its open disputes hold (paused until they are resolved: the customer pays
    the undisputed part, and autopay and "everything past due" leave the rest out)."""
    from openar.disputes.selectors import disputed_by_invoice

    ids = list(invoice_ids)
    held = in_flight(ids, checkout_token=checkout_token)
    for invoice_id, amount in disputed_by_invoice(ids).items():
        held[invoice_id] = held.get(invoice_id, Decimal(0)) + amount
    return held


def choose_lines(
    customer: Customer,
    today: datetime.date,
    *,
    invoice_ids: Iterable[int] | None = None,
    past_due: bool = False,
    amount: Decimal | None = None,
    amounts: Mapping[int, Decimal] | None = None,
    checkout_token: str = "",
) -> list[PayLine]:
    """What a payment will pay: chosen invoices in full (or ``amounts`` of them), everything
    past due, or ``amount`` applied oldest-first. Raises ServiceError with a message for the
    customer when the choice cannot be paid."""
    open_invoices = list(
        Invoice.objects.filter(customer=customer, open_amount__gt=0, currency=customer.currency).order_by(
            "due_date", "pk"
        )
    )
    flying = not_payable_now((invoice.pk for invoice in open_invoices), checkout_token=checkout_token)
    lines: list[PayLine] = []
    if amount is not None:
        left = quantize(amount, customer.currency)
        if left <= 0:
            raise ServiceError("Enter an amount above zero.", field="amount")
        total = sum((payable(invoice, flying) for invoice in open_invoices), Decimal(0))
        if left > total:
            raise ServiceError(
                f"That is more than the {format_money(total, customer.currency)} you can pay now.",
                field="amount",
            )
        for invoice in open_invoices:
            part = min(left, payable(invoice, flying))
            if part > 0:
                lines.append(PayLine(invoice, part))
                left -= part
            if left <= 0:
                break
        return lines
    if past_due:
        # What a payment in flight already covers is left out (it is "payment processing").
        chosen = [
            invoice for invoice in open_invoices if invoice.due_date < today and payable(invoice, flying) > 0
        ]
        if not chosen:
            raise ServiceError("Nothing past due is left to pay.", field="invoices")
    else:
        wanted = set(invoice_ids or ()) | set(amounts or {})
        chosen = [invoice for invoice in open_invoices if invoice.pk in wanted]
        if len(chosen) != len(wanted):
            raise ServiceError("One of the invoices chosen is not open any more.", field="invoices")
    for invoice in chosen:
        can = payable(invoice, flying)
        if can <= 0:
            raise ServiceError(
                f"Invoice {invoice.number} has nothing left to pay now: a payment in progress or an "
                "open dispute covers it.",
                field="invoices",
            )
        part = quantize((amounts or {}).get(invoice.pk, can), customer.currency)
        if part <= 0:
            raise ServiceError(f"Enter an amount above zero for invoice {invoice.number}.", field="amounts")
        if part > can:
            raise ServiceError(
                f"Invoice {invoice.number} has {format_money(can, invoice.currency)} left to pay.",
                field="amounts",
            )
        lines.append(PayLine(invoice, part))
    if not lines:
        raise ServiceError("Choose at least one invoice to pay.", field="invoices")
    return lines


def method_fee(settings_: PaymentSettings, method: str, base_amount: Decimal, currency: str) -> Decimal:
    """The organization's convenience fee (positive) or discount (negative) for ``method``
    on ``base_amount``; a discount never exceeds the amount."""
    rule = (settings_.fees or {}).get(method) or {}
    percent = Decimal(str(rule.get("percent", "0") or "0"))
    fixed = Decimal(str(rule.get("fixed", "0") or "0"))
    fee = quantize(base_amount * percent / 100 + fixed, currency)
    smallest = Decimal(1).scaleb(-exponent(currency))  # a discount leaves at least one cent (or yen)
    return max(fee, -base_amount + smallest) if fee < 0 else fee


def short_paid(lines: Iterable[PayLine]) -> list[PayLine]:
    """The lines that pay less than what is open on their invoice and not held by an open
    dispute: short payments, which the organization's policy must allow and which need a
    reason. Paying all of a disputed invoice's undisputed part is no short payment."""
    from openar.disputes.selectors import disputed_by_invoice

    partial = [line for line in lines if line.partial]
    if not partial:
        return []
    held = disputed_by_invoice(line.invoice.pk for line in partial)
    return [
        line
        for line in partial
        if line.amount < line.invoice.open_amount - held.get(line.invoice.pk, Decimal(0))
    ]


def short_pay_check(
    settings_: PaymentSettings,
    lines: Iterable[PayLine],
    reason: str,
    *,
    organization: Organization,
    hint: str = "",
    field: str = "amounts",
) -> None:
    """Refuse a short payment the organization does not allow, or one without a reason when
    it asks for one (ServiceError on ``field``; ``hint`` ends the first message)."""
    if not short_paid(lines):
        return
    if not settings_.allow_partial:
        raise ServiceError(
            f"{organization.name} asks for invoices to be paid in full.{hint}", field=field, code="no_partial"
        )
    codes = {str(code) for code, _ in settings_.short_pay_reasons or []}
    if codes and reason not in codes:
        raise ServiceError("Tell us why you are paying part of an invoice.", field="short_pay_reason")


@dataclass(frozen=True)
class Started:
    payment: Payment
    redirect_url: str


def payment_start(
    *,
    customer: Customer,
    lines: list[PayLine],
    method: str,
    provider_name: str,
    checkout_token: str,
    return_url: str,
    cancel_url: str,
    contact: Contact | None = None,
    actor: User | None = None,
    short_pay_reason: str = "",
) -> Started:
    """Record the payment the customer is making (pending, with what it is for) and open its
    checkout at the provider. Called again with the same ``checkout_token`` (a double click,
    a reload) it returns the same payment and checkout."""
    if not checkout_token or len(checkout_token) > 64:
        raise ServiceError("This payment form has expired; open it again.")
    if not lines:
        raise ServiceError("Choose at least one invoice to pay.", field="invoices")
    organization = customer.organization
    short_pay_check(payment_settings(organization), lines, short_pay_reason, organization=organization)
    payment = payment_create(
        customer=customer,
        lines=lines,
        method=method,
        provider_name=provider_name,
        checkout_token=checkout_token,
        contact=contact,
        actor=actor,
        short_pay_reason=short_pay_reason,
    )
    return _checkout(payment, return_url=return_url, cancel_url=cancel_url)


def payment_create(
    *,
    customer: Customer,
    lines: list[PayLine],
    method: str,
    provider_name: str,
    checkout_token: str,
    contact: Contact | None = None,
    actor: User | None = None,
    short_pay_reason: str = "",
    saved_method: SavedMethod | None = None,
) -> Payment:
    """The pending payment and what it is for (its targets), with the method's fee or
    discount; the one already made with ``checkout_token`` when there is one (a double
    click, a second worker)."""
    organization = customer.organization
    settings_ = payment_settings(organization)
    currency = customer.currency
    provider = provider_named(provider_name)
    if method not in provider.methods:
        raise ServiceError("This way of paying is not available.", field="method")
    invoices_total = sum((line.amount for line in lines), Decimal(0))
    fee = method_fee(settings_, method, invoices_total, currency)
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                organization_id=organization.pk,
                creditor_id=customer.creditor_id,
                customer=customer,
                contact=contact,
                amount=invoices_total + fee,
                fee_amount=fee,
                currency=currency,
                method=method,
                state=Payment.State.PENDING,
                provider=provider_name,
                checkout_token=checkout_token,
                short_pay_reason=short_pay_reason if short_paid(lines) else "",
                received_at=timezone.now(),
                recorded_by=actor if actor is not None and actor.is_authenticated else None,
                saved_method=saved_method,
            )
            PaymentTarget.objects.bulk_create(
                PaymentTarget(
                    organization_id=organization.pk, payment=payment, invoice=line.invoice, amount=line.amount
                )
                for line in lines
            )
            log_event(
                "openar.payment.started",
                organization=organization,
                obj=payment,
                actor=actor,
                data={
                    "amount": str(payment.amount),
                    "fee": str(fee),
                    "method": method,
                    "provider": provider_name,
                    "invoices": [[line.invoice.number, str(line.amount)] for line in lines],
                    **({"saved_method": saved_method.label} if saved_method is not None else {}),
                },
            )
    except IntegrityError:
        payment = Payment.objects.get(customer=customer, checkout_token=checkout_token)
    return payment


def payment_resume(
    *, customer: Customer, checkout_token: str, return_url: str, cancel_url: str
) -> Started | None:
    """The payment this pay form already made (a second click, a reload), with its checkout;
    None when the form has not been used yet. Front doors call it before choosing lines
    again: the invoices are "in progress" by then, and the same click must lead to the same
    checkout, not to a refusal."""
    if not checkout_token:
        return None
    payment = Payment.objects.filter(customer=customer, checkout_token=checkout_token).first()
    if payment is None:
        return None
    return _checkout(payment, return_url=return_url, cancel_url=cancel_url)


def _checkout(payment: Payment, *, return_url: str, cancel_url: str) -> Started:
    """Open (or find again: the idempotency key makes it the same) the provider's checkout."""
    if payment.state not in IN_FLIGHT:
        raise ServiceError("This payment has already been made or has ended; start a new one.")
    if payment.saved_method_id is not None:
        # Charged to a saved method (autopay, an installment): never also at a checkout page,
        # which could take the money a second time.
        raise ServiceError("This payment is charged to your saved card or account: nothing to do here.")
    customer = payment.customer
    organization = customer.organization
    contact = payment.contact
    provider_name = payment.provider
    provider = provider_named(provider_name)
    request = base.CheckoutRequest(
        payment_id=payment.pk,
        organization_id=organization.pk,
        amount=payment.amount,
        currency=payment.currency,
        method=payment.method,
        description=f"{organization.name}, account {customer.number}",
        customer_email=(contact.email if contact else "") or customer.email,
        idempotency_key=str(payment.idempotency_key),
        return_url=return_url,
        cancel_url=cancel_url,
        metadata={"openar_payment_id": str(payment.pk)},
    )
    checkout = provider.create_checkout(request, credentials_for(organization, provider_name))
    Payment.objects.filter(pk=payment.pk, provider_payment_id="").update(
        provider_payment_id=checkout.provider_payment_id
    )
    payment.provider_payment_id = checkout.provider_payment_id
    return Started(payment, checkout.redirect_url)


def credentials_for(organization: Organization, provider_name: str) -> dict[str, str]:
    """The organization's decrypted credentials for the provider ({} when it needs none)."""
    import json

    from openar.core.crypto import decrypt_text
    from openar.payments.models import ProviderAccount

    account = ProviderAccount.objects.filter(organization=organization, provider=provider_name).first()
    if account is None or not account.credentials_encrypted:
        return {}
    try:
        data: dict[str, str] = json.loads(decrypt_text(account.credentials_encrypted))
    except ValueError as exc:  # DecryptionError (a key that is gone) or damaged JSON
        raise base.ProviderUnavailable(
            f"The {provider_name} credentials cannot be read: an admin must enter them again.",
            retryable=False,
        ) from exc
    return data


# --- provider events ------------------------------------------------------------------------


QUICK_KINDS = frozenset({base.PAYMENT_PROCESSING, base.PAYMENT_SUCCEEDED})
WAITING = "waiting"  # an event that comes before what it follows (a return before the success)


def event_apply(payment: Payment, row: ProviderEvent, writes: Writes) -> str:
    """Apply one stored event to its payment, which the caller has locked; returns the
    outcome. The kinds in ``QUICK_KINDS`` write through ``writes`` (the batch's); the others
    write at once, and the caller flushes ``writes`` before and after them."""
    kind = row.type
    message = str(row.payload.get("message") or "")
    if kind == base.PAYMENT_PROCESSING:
        if payment.state != Payment.State.PENDING:
            return f"ignored: the payment is {payment.state}"
        writes.payment_set(payment, state=Payment.State.PROCESSING)
        _timeline(
            payment,
            f"Bank payment of {_money(payment)} in progress",
            Activity.Visibility.CUSTOMER,
            writes=writes,
        )
        return "processing"
    if kind == base.PAYMENT_SUCCEEDED:
        # Money that arrives is never lost: a payment we had given up on (its page was
        # abandoned, so it expired) is settled all the same when the provider says it paid.
        if payment.state not in (*IN_FLIGHT, Payment.State.FAILED):
            return f"ignored: the payment is {payment.state}"
        _settle(payment, writes)
        return "succeeded"
    if kind == base.PAYMENT_FAILED:
        if payment.state not in IN_FLIGHT:
            return f"ignored: the payment is {payment.state}"
        Payment.objects.filter(pk=payment.pk).update(
            state=Payment.State.FAILED, failure_message=message[:300]
        )
        payment.state = Payment.State.FAILED
        _timeline(
            payment,
            f"Payment of {_money(payment)} did not go through{': ' + message if message else ''}",
            Activity.Visibility.CUSTOMER,
        )
        log_event(
            "openar.payment.failed", organization=payment.organization, obj=payment, data={"message": message}
        )
        return "failed"
    if kind == base.PAYMENT_RETURNED:
        if payment.state in IN_FLIGHT:
            return f"{WAITING}: the payment has not settled yet"
        if payment.state != Payment.State.SUCCEEDED:
            return f"ignored: the payment is {payment.state}"
        # How much went back, when the provider says (a dispute of part of the payment); an
        # amount in another currency cannot be compared, and returns the payment in full.
        raw_amount = row.payload.get("amount")
        currency = str(row.payload.get("currency") or "").upper()
        returned = None
        if raw_amount is not None and currency in ("", payment.currency):
            try:
                returned = Decimal(str(raw_amount))
            except ArithmeticError:
                returned = None
            if returned is not None and not returned.is_finite():
                returned = None
        return _return(payment, message, returned)
    if kind in (base.REFUND_SUCCEEDED, base.REFUND_FAILED):
        refund = (
            Refund.objects.select_for_update()
            .filter(payment=payment, provider_refund_id=str(row.payload.get("refund_id") or ""))
            .first()
        )
        if refund is None:
            return f"{WAITING}: no refund with this id yet"
        if refund.state == Refund.State.FAILED:
            return "ignored: the refund has failed"
        if refund.state != Refund.State.PENDING:
            return "ignored: the refund is already done"
        if kind == base.REFUND_SUCCEEDED:
            _refund_apply(refund)
            return "refunded"
        # Nothing was given back: the refund alone changes; the payment, its allocations and
        # its invoices stay as they are, and the amount can be refunded again.
        Refund.objects.filter(pk=refund.pk).update(state=Refund.State.FAILED)
        refund.state = Refund.State.FAILED
        amount = format_money(refund.amount, payment.currency)
        why = f": {message}" if message else ""
        _timeline(
            payment,
            f"Refund of {amount} on the payment of {_money(payment)} failed{why}",
            Activity.Visibility.INTERNAL,
            f"The provider gave nothing back. The payment and its invoices are unchanged; {amount} "
            "can be refunded again.",
        )
        log_event(
            "openar.refund.failed",
            organization=payment.organization,
            obj=refund,
            data={"payment": payment.pk, "amount": str(refund.amount), "message": message},
        )
        return "refund failed"
    return f"ignored: {kind}"


def _money(payment: Payment) -> str:
    return format_money(payment.amount, payment.currency)


def _timeline(
    payment: Payment, summary: str, visibility: str, body: str = "", *, writes: Writes | None = None
) -> None:
    fields = {
        "customer": payment.customer,
        "kind": Activity.Kind.PAYMENT,
        "summary": summary,
        "body": body,
        "visibility": visibility,
    }
    if writes is None:
        activity_record(**fields)  # type: ignore[arg-type]
    else:
        writes.activities.append(activity_build(**fields))  # type: ignore[arg-type]


def allocate(
    payment: Payment,
    plan: list[tuple[Invoice, Decimal]],
    *,
    locked: Mapping[int, Invoice] | None = None,
    writes: Writes | None = None,
) -> list[tuple[Invoice, Decimal]]:
    """Apply ``plan`` (each part capped by what the invoice still has open), writing the
    allocations; returns what was applied. The caller holds the payment's lock; ``locked``:
    the plan's invoices, already locked by the caller (else they are locked here);
    ``writes``: a batch's writes, which take the allocations and the invoices' figures
    (else they are written at once)."""
    if locked is None:
        locked = invoices_lock([invoice.pk for invoice, _ in plan])
    applied = []
    rows = []
    for invoice, wanted in plan:
        current = locked[invoice.pk]
        part = quantize(min(wanted, current.open_amount), payment.currency)
        if part <= 0:
            continue
        if writes is None:
            invoice_apply(current, part)
        else:
            writes.invoice_apply(current, part)
        rows.append(
            Allocation(organization_id=payment.organization_id, invoice=current, payment=payment, amount=part)
        )
        applied.append((current, part))
    if writes is None:
        Allocation.objects.bulk_create(rows)
    else:
        writes.allocations.extend(rows)
    return applied


def _settle(payment: Payment, writes: Writes) -> None:
    now = writes.now
    targets = writes.targets_of(payment)
    applied = allocate(
        payment,
        [(target.invoice, target.amount) for target in targets],
        locked={target.invoice_id: target.invoice for target in targets},
        writes=writes,
    )
    writes.payment_set(payment, state=Payment.State.SUCCEEDED, settled_at=now, received_at=now)
    used = sum((part for _, part in applied), Decimal(0))
    left = payment.invoice_amount - used
    parts = ", ".join(
        f"{invoice.number} ({format_money(part, payment.currency)})" for invoice, part in applied
    )
    body = f"Applied to {parts}." if parts else ""
    if left > 0:
        body += f" {format_money(left, payment.currency)} kept as credit on the account."
    _timeline(
        payment,
        f"Payment of {_money(payment)} received by {payment.get_method_display()}",
        Activity.Visibility.CUSTOMER,
        body.strip(),
        writes=writes,
    )
    writes.audits.append(
        audit_event(
            "openar.payment.succeeded",
            organization=payment.organization,
            obj=payment,
            data={
                "allocations": [[invoice.number, str(part)] for invoice, part in applied],
                "unapplied": str(left),
            },
        )
    )
    writes.receipts.append(payment.pk)


def _reverse(payment: Payment, amount: Decimal | None = None) -> Decimal:
    """Reverse ``amount`` (None: all) of the payment's active allocations, latest first,
    re-opening their invoices; a partly reversed allocation is replaced by one for the part
    that stays. Returns how much was reversed."""
    left = amount
    reversed_total = Decimal(0)
    now = timezone.now()
    allocations = list(
        Allocation.objects.select_for_update()
        .filter(payment=payment, reversed_at__isnull=True)
        .order_by("-pk")
    )
    locked = invoices_lock([allocation.invoice_id for allocation in allocations])
    for allocation in allocations:
        if left is not None and left <= 0:
            break
        part = allocation.amount if left is None else min(left, allocation.amount)
        invoice_apply(locked[allocation.invoice_id], -part)
        Allocation.objects.filter(pk=allocation.pk).update(reversed_at=now)
        if part < allocation.amount:
            Allocation.objects.create(
                organization_id=payment.organization_id,
                invoice_id=allocation.invoice_id,
                payment=payment,
                amount=allocation.amount - part,
            )
        reversed_total += part
        if left is not None:
            left -= part
    return reversed_total


def _return(payment: Payment, message: str, amount: Decimal | None = None) -> str:
    """The money of a succeeded payment went back (an ACH return, a chargeback): all of it
    (``amount`` None, or as much as the provider still held of it) reverses every allocation
    and the payment ends ``returned``. Part of it (a partial dispute) takes back that amount
    only, unapplied credit first, then the latest allocations; the payment stays
    ``succeeded``. Returns the outcome."""
    returned_before = payment.returned_amount  # parts returned earlier
    if amount is not None:
        amount = quantize(amount, payment.currency)
        if amount <= 0:
            return "ignored: nothing was returned"
    held = payment.amount - payment.refunded_amount - returned_before
    partial = False
    if amount is not None and amount < held:
        partial = True
        credit = unapplied(payment)
        from_invoices = max(Decimal(0), amount - credit)
        reversed_total = _reverse(payment, from_invoices) if from_invoices else Decimal(0)
        from_credit = min(amount, credit)
        Payment.objects.filter(pk=payment.pk).update(returned_amount=returned_before + amount)
        payment.returned_amount = returned_before + amount
        returned_text = format_money(amount, payment.currency)
        summary = (
            f"{returned_text} of the payment of {_money(payment)} was returned"
            f"{': ' + message if message else ''}"
        )
        body = (
            f"{format_money(reversed_total, payment.currency)} is due again on the invoices it had paid."
            if reversed_total
            else ""
        )
        if from_credit:
            body += f" {format_money(from_credit, payment.currency)} of its credit was taken back."
        _timeline(payment, summary, Activity.Visibility.CUSTOMER, body.strip())
        notice = body.strip() or "No invoice is open again: it came from the credit on the account."
        log_event(
            "openar.payment.partly_returned",
            organization=payment.organization,
            obj=payment,
            data={
                "amount": str(amount),
                "message": message,
                "reversed": str(reversed_total),
                "from_credit": str(from_credit),
                "returned_before": str(returned_before),
            },
        )
    else:
        reversed_total = _reverse(payment)
        Payment.objects.filter(pk=payment.pk).update(
            state=Payment.State.RETURNED, failure_message=message[:300]
        )
        payment.state = Payment.State.RETURNED
        notice = "The invoices it had paid are open again."
        summary = f"Payment of {_money(payment)} was returned{': ' + message if message else ''}"
        _timeline(
            payment,
            summary,
            Activity.Visibility.CUSTOMER,
            f"{format_money(reversed_total, payment.currency)} is due again on the invoices it had paid.",
        )
        log_event(
            "openar.payment.returned",
            organization=payment.organization,
            obj=payment,
            data={"message": message, "reversed": str(reversed_total)},
        )
    customer = payment.customer
    what = "partly returned" if partial else "returned"
    tell_ar(
        customer,
        f"Payment {what}: {customer.name} ({customer.number}), {_money(payment)}",
        f"{summary}.\n\n{notice}",
    )
    return "partly returned" if partial else "returned"


def unapplied(payment: Payment) -> Decimal:
    """What the payment holds that no invoice has: credit on the account."""
    if payment.state != Payment.State.SUCCEEDED:
        return Decimal(0)
    active = payment.allocations.filter(reversed_at__isnull=True).aggregate(total=Sum("amount"))["total"]
    applied = quantize(Decimal(str(active or 0)), payment.currency)
    return max(
        Decimal(0), payment.invoice_amount - payment.refunded_amount - payment.returned_amount - applied
    )


def payment_refund(*, payment: Payment, amount: Decimal, reason: str, actor: User | None) -> Refund:
    """Give back ``amount`` of a succeeded payment (all of it or part): through its provider
    for an online payment, at once for one recorded by staff. Unapplied credit is given back
    first, then the latest allocations, whose invoices open again."""
    amount = quantize(amount, payment.currency)
    with transaction.atomic():
        # Locked: two people refunding at once are told clearly, one after the other.
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("customer__organization")
            .get(pk=payment.pk)
        )
        payment.organization = payment.customer.organization
        if payment.state != Payment.State.SUCCEEDED:
            raise ServiceError("Only a payment that went through can be refunded.")
        unsent = payment.refunds.filter(state=Refund.State.PENDING, provider_refund_id="").first()
        if unsent is not None:
            # A refund whose call to the provider failed: sending it again must reuse its
            # idempotency key (the first call may have reached the provider), not make another.
            if unsent.amount != amount:
                raise ServiceError(
                    f"A refund of {format_money(unsent.amount, payment.currency)} could not be sent yet: "
                    "send that one again first.",
                    field="amount",
                )
            refund = unsent
        else:
            pending = sum((r.amount for r in payment.refunds.filter(state=Refund.State.PENDING)), Decimal(0))
            refundable = payment.amount - payment.refunded_amount - payment.returned_amount - pending
            if amount <= 0 or amount > refundable:
                raise ServiceError(
                    f"Refund at most {format_money(max(refundable, Decimal(0)), payment.currency)}.",
                    field="amount",
                )
            refund = _refund_create(payment, amount, reason, actor)
            if not payment.provider:
                _refund_apply(refund)
                return refund
    result = provider_named(payment.provider).refund(
        base.RefundRequest(
            provider_payment_id=payment.provider_payment_id,
            amount=amount,
            currency=payment.currency,
            idempotency_key=str(refund.idempotency_key),
            reason=refund.reason,
        ),
        credentials_for(payment.organization, payment.provider),
    )
    with transaction.atomic():
        Refund.objects.filter(pk=refund.pk).update(provider_refund_id=result.provider_refund_id)
        refund.provider_refund_id = result.provider_refund_id
        if result.succeeded:
            refund = Refund.objects.select_for_update().get(pk=refund.pk)
            if refund.state == Refund.State.PENDING:
                _refund_apply(refund)
    if not result.succeeded:
        from openar.payments.events import waiting_apply

        waiting_apply([payment.pk])  # its success may have arrived before we knew its id
    return refund


def _refund_create(payment: Payment, amount: Decimal, reason: str, actor: User | None) -> Refund:
    refund = Refund.objects.create(
        organization_id=payment.organization_id,
        payment=payment,
        amount=amount,
        reason=reason.strip()[:300],
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    log_event(
        "openar.refund.requested",
        organization=payment.organization,
        obj=refund,
        actor=actor,
        data={"payment": payment.pk, "amount": str(amount), "reason": refund.reason},
    )
    return refund


def _refund_apply(refund: Refund) -> None:
    payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
    refunded = payment.refunded_amount + refund.amount
    if payment.state != Payment.State.SUCCEEDED:
        # Returned meanwhile (a dispute, an ACH return): its allocations are already
        # reversed; the refund is recorded, and the state never moves back.
        reversed_total = Decimal(0)
        state = payment.state
    elif refunded + payment.returned_amount >= payment.amount:
        # All of it back (with what a dispute took): every allocation goes, whatever a
        # discount made the amount.
        reversed_total = _reverse(payment)
        state = Payment.State.REFUNDED
    else:
        credit = unapplied(payment)
        from_invoices = max(Decimal(0), refund.amount - credit)
        reversed_total = _reverse(payment, from_invoices) if from_invoices else Decimal(0)
        state = Payment.State.SUCCEEDED
    Payment.objects.filter(pk=payment.pk).update(refunded_amount=refunded, state=state)
    Refund.objects.filter(pk=refund.pk).update(state=Refund.State.SUCCEEDED)
    refund.state = Refund.State.SUCCEEDED
    payment.refunded_amount, payment.state = refunded, state
    activity_record(
        customer=payment.customer,
        kind=Activity.Kind.PAYMENT,
        summary=(
            f"Refund of {format_money(refund.amount, payment.currency)} on the payment of {_money(payment)}"
        ),
        body=(
            f"{format_money(reversed_total, payment.currency)} is due again on the invoices it had paid."
            if reversed_total
            else ""
        ),
    )
    log_event(
        "openar.refund.succeeded",
        organization=payment.organization,
        obj=refund,
        data={"payment": payment.pk, "reversed_from_invoices": str(reversed_total)},
    )


def processing_amounts(customer: Customer) -> dict[int, Decimal]:
    """Invoice id → amount of the customer's payments in flight (pages show "payment
    processing")."""
    return in_flight(
        Invoice.objects.filter(customer=customer, open_amount__gt=0).values_list("pk", flat=True)
    )


def credit_apply(
    *, payment: Payment, plan: list[tuple[Invoice, Decimal]], actor: User | None
) -> list[tuple[Invoice, Decimal]]:
    """Staff apply a payment's unapplied credit to invoices of the same customer (cash
    application after the fact: an overpayment, a payment whose invoice was paid meanwhile,
    a cheque recorded without allocations). Each part is capped by what the invoice has
    open; what is left stays credit."""
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update().select_related("customer__organization").get(pk=payment.pk)
        )
        available = unapplied(payment)
        if available <= 0:
            raise ServiceError("This payment has no credit left to apply.")
        wanted = sum((quantize(part, payment.currency) for _, part in plan), Decimal(0))
        if wanted <= 0:
            raise ServiceError("Enter the amounts to apply.", field="amounts")
        if wanted > available:
            raise ServiceError(
                f"Only {format_money(available, payment.currency)} of this payment is unapplied.",
                field="amounts",
            )
        for invoice, _ in plan:
            if invoice.customer_id != payment.customer_id or invoice.currency != payment.currency:
                raise ServiceError(
                    f"Invoice {invoice.number} is not one of this customer's in {payment.currency}."
                )
        applied = allocate(payment, [(invoice, quantize(part, payment.currency)) for invoice, part in plan])
        parts = ", ".join(
            f"{invoice.number} ({format_money(part, payment.currency)})" for invoice, part in applied
        )
        activity_record(
            customer=payment.customer,
            kind=Activity.Kind.PAYMENT,
            summary=f"Credit from the payment of {_money(payment)} applied to {parts}"[:300],
            actor=actor,
        )
        log_event(
            "openar.payment.credit_applied",
            organization=payment.customer.organization,
            obj=payment,
            actor=actor,
            data={"allocations": [[invoice.number, str(part)] for invoice, part in applied]},
        )
    return applied


ABANDONED_AFTER = datetime.timedelta(hours=24)


def expire_abandoned(now: datetime.datetime | None = None) -> int:
    """The periodic job: a checkout left pending for a day (the customer closed the
    provider's page) fails, so that its invoices can be paid again. Should the provider
    still report the money later, the payment settles all the same."""
    now = now or timezone.now()
    with scopes_disabled():
        stale = list(
            Payment.objects.filter(state=Payment.State.PENDING, created_at__lt=now - ABANDONED_AFTER)
            .exclude(provider="")
            .values_list("pk", flat=True)[:1000]
        )
    expired = 0
    for pk in stale:
        with transaction.atomic():
            with scopes_disabled():
                payment = (
                    Payment.objects.select_for_update(of=("self",))
                    .select_related("customer__organization")
                    .filter(pk=pk, state=Payment.State.PENDING)
                    .first()
                )
            if payment is None:
                continue
            with scope(organization=payment.customer.organization):
                message = "The payment was not completed at the payment page."
                Payment.objects.filter(pk=pk).update(state=Payment.State.FAILED, failure_message=message)
                payment.state = Payment.State.FAILED
                _timeline(
                    payment, f"Payment of {_money(payment)} not completed", Activity.Visibility.CUSTOMER
                )
                log_event("openar.payment.expired", organization=payment.customer.organization, obj=payment)
            expired += 1
    return expired


def payment_return(*, payment: Payment) -> str:
    """The customer is back from the provider's page. Providers that take the money only
    when we ask (PayPal: capture after the buyer approved) are asked now; the answer goes
    through the same event path as a webhook (stored once, applied once), so a webhook with
    the same outcome changes nothing more. Returns the payment's state."""
    if payment.state != Payment.State.PENDING or not payment.provider or not payment.provider_payment_id:
        return payment.state
    provider = provider_named(payment.provider)
    complete = getattr(provider, "capture", None)
    if complete is None:
        return payment.state  # the provider's webhook says how it went
    try:
        event = complete(
            payment.provider_payment_id,
            f"{payment.idempotency_key}:capture",
            credentials_for(payment.organization, payment.provider),
        )
    except base.RedirectRequired:
        return payment.state  # the buyer has not approved yet
    except (base.ProviderUnavailable, base.Declined) as exc:
        logger.warning("capture on return failed", extra={"payment": payment.pk, "reason": exc.message})
        return payment.state  # the webhook, or the next visit, settles it
    from openar.payments.events import events_ingest

    events_ingest(payment.provider, [event], organization=payment.organization)
    with scopes_disabled():
        return str(Payment.objects.values_list("state", flat=True).get(pk=payment.pk))
