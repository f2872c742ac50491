"""Unapplied credit used by the customer's next payment.

An overpayment, or a payment whose invoice was settled meanwhile, leaves credit on the
customer (``online.unapplied``). When the customer pays again (the pay page, autopay), that
credit is applied first to what they chose, oldest credit first, through the same
``online.credit_apply`` staff use; only the rest is charged.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import DecimalField, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.functions import Coalesce

from openar.billing.models import Invoice
from openar.customers.models import Customer
from openar.identity.models import User
from openar.payments.models import Payment
from openar.payments.online import PayLine, credit_apply, unapplied


def credit_payments(customer: Customer) -> list[tuple[Payment, Decimal]]:
    """The customer's payments holding credit in its currency, oldest first, with how much."""
    money = DecimalField(max_digits=18, decimal_places=4)
    candidates = (
        Payment.objects.filter(customer=customer, currency=customer.currency, state=Payment.State.SUCCEEDED)
        .annotate(
            applied=Coalesce(
                Sum("allocations__amount", filter=Q(allocations__reversed_at__isnull=True)),
                Value(Decimal(0)),
                output_field=money,
            ),
            holds=ExpressionWrapper(
                F("amount") - F("fee_amount") - F("refunded_amount") - F("returned_amount"),
                output_field=money,
            ),
        )
        .filter(holds__gt=F("applied"))
        .order_by("received_at", "pk")
    )
    found: list[tuple[Payment, Decimal]] = []
    for payment in candidates:  # the database narrowed them down; Decimal decides
        credit = unapplied(payment)
        if credit > 0:
            found.append((payment, credit))
    return found


def credit_available(customer: Customer) -> Decimal:
    return sum((credit for _, credit in credit_payments(customer)), Decimal(0))


def credit_use(
    *, customer: Customer, lines: list[PayLine], actor: User | None
) -> tuple[Decimal, list[PayLine]]:
    """Apply the customer's credit to ``lines`` (in their order); returns how much was used
    and the lines left to pay (amounts reduced, paid ones dropped)."""
    wanted = {line.invoice.pk: line.amount for line in lines}
    used = Decimal(0)
    for payment, credit in credit_payments(customer):
        plan = []
        for line in lines:
            part = min(credit, wanted[line.invoice.pk])
            if part > 0:
                plan.append((line.invoice, part))
                credit -= part
        if not plan:
            break
        for invoice, part in credit_apply(payment=payment, plan=plan, actor=actor):
            wanted[invoice.pk] -= part
            used += part
    if not used:
        return used, lines
    fresh = Invoice.objects.in_bulk([pk for pk, amount in wanted.items() if amount > 0])
    return used, [
        PayLine(fresh[line.invoice.pk], wanted[line.invoice.pk])
        for line in lines
        if wanted[line.invoice.pk] > 0
    ]
