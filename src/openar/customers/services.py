"""Services that change customers and their timeline."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from openar.customers.models import Activity, Customer
from openar.identity.models import User


def activity_record(
    *,
    customer: Customer,
    kind: str,
    summary: str,
    body: str = "",
    visibility: str = Activity.Visibility.CUSTOMER,
    actor: User | None = None,
    invoice_id: int | None = None,
    occurred_at: datetime | None = None,
) -> Activity:
    """Add an entry to the customer's timeline (callers run it inside their transaction)."""
    return Activity.objects.create(
        organization_id=customer.organization_id,
        customer=customer,
        kind=kind,
        summary=summary[:300],
        body=body,
        visibility=visibility,
        actor=actor if actor is not None and actor.is_authenticated else None,
        invoice_id=invoice_id,
        occurred_at=occurred_at or timezone.now(),
    )
