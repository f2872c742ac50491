"""Recording payments and applying them to invoices."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from openar.billing.ledger import invoice_apply, invoices_lock
from openar.billing.models import Invoice
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.core.money import format_money, quantize
from openar.customers.models import Activity, Customer
from openar.customers.services import activity_record
from openar.identity.models import User
from openar.payments.models import Allocation, Payment


@dataclass(frozen=True)
class AllocationInput:
    invoice: Invoice
    amount: Decimal


def payment_record(
    *,
    customer: Customer,
    amount: Decimal,
    method: str,
    received_at: datetime.datetime,
    currency: str | None = None,
    reference: str = "",
    allocations: list[AllocationInput] | None = None,
    actor: User | None = None,
) -> Payment:
    """Record money received (cheque, wire, cash, or a settled provider payment) and apply it.

    With ``allocations`` the amounts go to those invoices; without, the payment is applied to
    the customer's open invoices in its currency, oldest due first. What is left stays on the
    payment as unapplied cash.
    """
    currency = (currency or customer.currency).upper()
    amount = quantize(amount, currency)
    if amount <= 0:
        raise ServiceError("A payment must be for more than zero.", field="amount")
    if method not in Payment.Method.values:
        raise ServiceError(f"Unknown payment method {method!r}.", field="method")
    if received_at.tzinfo is None:
        raise ServiceError("The time a payment was received must carry a time zone.", field="received_at")
    with transaction.atomic():
        if allocations is None:
            open_ids = list(
                Invoice.objects.filter(customer=customer, currency=currency, open_amount__gt=0)
                .order_by("due_date", "issue_date", "pk")
                .values_list("pk", flat=True)
            )
            locked = invoices_lock(open_ids)
            plan: list[tuple[Invoice, Decimal]] = []
            left = amount
            for pk in open_ids:
                if left <= 0:
                    break
                candidate = locked[pk]
                part = quantize(min(left, candidate.open_amount), currency)
                if part > 0:
                    plan.append((candidate, part))
                    left -= part
        else:
            locked = invoices_lock([item.invoice.pk for item in allocations])
            plan = []
            for item in allocations:
                invoice = locked.get(item.invoice.pk)
                if invoice is None or invoice.customer_id != customer.pk:
                    raise ServiceError("A payment can only be applied to the customer's own invoices.")
                if invoice.currency != currency:
                    raise ServiceError(
                        f"Invoice {invoice.number} is in {invoice.currency}, the payment in {currency}."
                    )
                part = quantize(item.amount, currency)
                if part <= 0:
                    raise ServiceError(f"The amount applied to invoice {invoice.number} must be positive.")
                plan.append((invoice, part))
            if sum((part for _, part in plan), Decimal(0)) > amount:
                raise ServiceError("The amounts applied add up to more than the payment.", field="amount")
        payment = Payment.objects.create(
            organization_id=customer.organization_id,
            creditor_id=customer.creditor_id,
            customer=customer,
            amount=amount,
            currency=currency,
            method=method,
            state=Payment.State.SUCCEEDED,
            reference=reference.strip(),
            received_at=received_at,
            recorded_by=actor if actor is not None and actor.is_authenticated else None,
        )
        for invoice, part in plan:
            invoice_apply(invoice, part)
            Allocation.objects.create(
                organization_id=customer.organization_id, invoice=invoice, payment=payment, amount=part
            )
        applied = ", ".join(f"{invoice.number} ({format_money(part, currency)})" for invoice, part in plan)
        activity_record(
            customer=customer,
            kind=Activity.Kind.PAYMENT,
            summary=f"Payment of {format_money(amount, currency)} received by {payment.get_method_display()}",
            body=f"Applied to {applied}." if applied else "Not yet applied to an invoice.",
            actor=actor,
            occurred_at=received_at,
        )
        log_event(
            "openar.payment.recorded",
            organization=customer.organization,
            obj=payment,
            actor=actor,
            data={
                "amount": str(amount),
                "currency": currency,
                "method": method,
                "allocations": [[invoice.number, str(part)] for invoice, part in plan],
            },
        )
    return payment
