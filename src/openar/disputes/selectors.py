"""Reads the portal, the desk and the reminders share about disputes (set-based; callers
are in the organization's scope, as every tenant read)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import DecimalField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from openar.billing.models import Invoice
from openar.customers.models import Customer
from openar.disputes.models import Dispute
from openar.identity.models import User

QUEUE_STATES = {
    "open": "Open or in review",
    "open_only": "Open",
    "in_review": "In review",
    "resolved": "Resolved",
    "withdrawn": "Withdrawn",
    "all": "All",
}


def disputed_amount() -> Coalesce:
    """For an invoice query (``OuterRef("pk")`` is the invoice): what its open disputes
    (open or in review) hold, 0 when none. One subquery, summed in SQL."""
    held = (
        Dispute.objects.filter(invoice_id=OuterRef("pk"), state__in=Dispute.OPEN_STATES)
        .order_by()
        .values("invoice_id")
        .annotate(held=Sum("disputed_total"))
        .values("held")
    )
    money = DecimalField(max_digits=19, decimal_places=4)
    return Coalesce(Subquery(held, output_field=money), Value(Decimal(0)), output_field=money)


def disputed_by_invoice(invoice_ids: Iterable[int]) -> dict[int, Decimal]:
    """For each invoice with open disputes, what they hold (the pay page's undisputed part)."""
    ids = list(invoice_ids)
    if not ids:
        return {}
    rows = (
        Dispute.objects.filter(invoice_id__in=ids, state__in=Dispute.OPEN_STATES)
        .order_by()
        .values("invoice_id")
        .annotate(held=Sum("disputed_total"))
    )
    return {row["invoice_id"]: Decimal(row["held"] or 0) for row in rows}


def undisputed_open(invoice: Invoice) -> Decimal:
    """What is open on the invoice and not held by an open dispute (never below zero)."""
    held = disputed_by_invoice([invoice.pk]).get(invoice.pk, Decimal(0))
    return max(Decimal(0), invoice.open_amount - held)


def invoice_disputes(invoice: Invoice) -> QuerySet[Dispute]:
    """The invoice's disputes, newest first, with their lines and attachments."""
    return (
        Dispute.objects.filter(invoice=invoice)
        .select_related("credit_note", "assigned_to", "opened_by_contact")
        .prefetch_related("lines__invoice_line", "lines__reason", "attachments__document")
        .order_by("-created_at", "-pk")
    )


def customer_disputes(customer: Customer) -> QuerySet[Dispute]:
    """The customer's disputes, newest first (the portal's list, the customer page)."""
    return (
        Dispute.objects.filter(customer=customer)
        .select_related("invoice", "credit_note")
        .order_by("-created_at", "-pk")
    )


def open_count() -> int:
    """Open and in-review disputes of the organization in scope (the desk's nav)."""
    return Dispute.objects.filter(state__in=Dispute.OPEN_STATES).count()


@dataclass(frozen=True)
class QueueFilters:
    state: str = "open"
    reason: str = ""  # a reason code
    assigned: str = ""  # "", "me", "nobody" or a user id
    overdue: bool = False
    search: str = ""


def dispute_queue(filters: QueueFilters, *, me: User | None, now: datetime.datetime) -> QuerySet[Dispute]:
    """The desk's queue: filtered, the soonest SLA first (overdue ones on top)."""
    disputes = Dispute.objects.select_related("customer", "invoice", "assigned_to")
    state = filters.state if filters.state in QUEUE_STATES else "open"
    if state == "open":
        disputes = disputes.filter(state__in=Dispute.OPEN_STATES)
    elif state == "open_only":
        disputes = disputes.filter(state=Dispute.State.OPEN)
    elif state != "all":
        disputes = disputes.filter(state=state)
    if filters.reason:
        disputes = disputes.filter(lines__reason__code=filters.reason).distinct()
    if filters.assigned == "me" and me is not None:
        disputes = disputes.filter(assigned_to=me)
    elif filters.assigned == "nobody":
        disputes = disputes.filter(assigned_to__isnull=True)
    elif filters.assigned.isdecimal() and filters.assigned.isascii():
        disputes = disputes.filter(assigned_to_id=int(filters.assigned))
    if filters.overdue:
        disputes = disputes.filter(state__in=Dispute.OPEN_STATES, due_at__lt=now)
    if filters.search:
        disputes = disputes.filter(
            Q(customer__name__icontains=filters.search)
            | Q(customer__number__icontains=filters.search)
            | Q(invoice__number__icontains=filters.search)
        )
    return disputes.order_by("due_at", "pk")
