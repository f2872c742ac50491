"""Demo data for disputes: the demo customer has one open dispute of two lines.

``openar.demo`` calls ``seed_demo(customer)`` for its customer persona (inside the
organization's scope, after the customer's invoices exist)."""

from __future__ import annotations

from openar.billing.models import Invoice
from openar.core.money import quantize
from openar.customers.models import Contact, Customer
from openar.disputes.models import Dispute
from openar.disputes.reasons import dispute_reasons
from openar.disputes.services import LineClaim, dispute_open


def seed_demo(customer: Customer) -> Dispute | None:
    """Open a dispute for ``customer`` on the newest open invoice with two lines or more:
    part of its first line arrived damaged, and its second line's price is questioned.
    None when the customer has no such invoice."""
    candidates = (
        Invoice.objects.filter(customer=customer, open_amount__gt=0)
        .order_by("-issue_date", "-pk")
        .prefetch_related("lines")
    )
    for invoice in candidates:
        lines = list(invoice.lines.all())
        if len(lines) < 2:
            continue
        first, second = lines[0], lines[1]
        damaged = quantize(first.total / 2, invoice.currency)
        price = quantize(second.total / 10, invoice.currency)
        if damaged <= 0 or price <= 0 or damaged + price > invoice.open_amount:
            continue
        reasons = {reason.code: reason for reason in dispute_reasons(customer.organization)}
        contact = Contact.objects.filter(customer=customer).order_by("-is_primary", "pk").first()
        return dispute_open(
            invoice=invoice,
            lines=[
                LineClaim(
                    first.pk, reasons["damaged"].pk, damaged, "Half of these arrived with cracked housings."
                ),
                LineClaim(second.pk, reasons["price"].pk, price, "Quoted 10% less on our purchase order."),
            ],
            contact=contact,
            actor=contact.user if contact is not None else None,
            message="Photos of the damaged units to follow.",
        )
    return None


__all__ = ["seed_demo"]
