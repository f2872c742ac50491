"""Reads the portal and the desk share about promises and plans (set-based querysets; the
caller is in the organization's scope, as every tenant read)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from openar.commitments.models import Plan, Promise
from openar.commitments.policy import end_of_day
from openar.commitments.promises import promise_kept_rate
from openar.customers.models import Customer
from openar.tenants.models import Organization

DESK_WINDOW_DAYS = 30


@dataclass(frozen=True)
class DeskPromises:
    """What the desk lists: ``due_today`` (open, promised for today), ``kept`` and
    ``broken`` (broken and partly kept: both need a call) among those resolved in the last
    ``days`` days, newest first, and the kept rate over promises dated in that window."""

    due_today: QuerySet[Promise]
    kept: QuerySet[Promise]
    broken: QuerySet[Promise]
    kept_rate: Decimal | None


def promises_for_desk(
    organization: Organization, today: datetime.date, *, days: int = DESK_WINDOW_DAYS
) -> DeskPromises:
    since = today - datetime.timedelta(days=days)
    mine = Promise.objects.filter(organization=organization).select_related("customer", "contact")
    resolved_since = mine.filter(
        resolved_at__gte=end_of_day(since - datetime.timedelta(days=1), organization)
    )
    return DeskPromises(
        due_today=mine.filter(state=Promise.State.OPEN, promised_date=today).order_by("customer__name", "pk"),
        kept=resolved_since.filter(state=Promise.State.KEPT).order_by("-resolved_at", "-pk"),
        broken=resolved_since.filter(state__in=[Promise.State.BROKEN, Promise.State.PARTLY_KEPT]).order_by(
            "-resolved_at", "-pk"
        ),
        kept_rate=promise_kept_rate(organization, since, today),
    )


def customer_promises(customer: Customer) -> QuerySet[Promise]:
    """The customer's promises, newest first (the portal's list), with their invoices."""
    return (
        Promise.objects.filter(customer=customer).prefetch_related("invoices").order_by("-created_at", "-pk")
    )


def customer_plans(customer: Customer) -> QuerySet[Plan]:
    """The customer's plans, newest first, with their installments."""
    return (
        Plan.objects.filter(customer=customer)
        .prefetch_related("installments", "invoices")
        .order_by("-created_at", "-pk")
    )


def open_plan(customer: Customer) -> Plan | None:
    """The customer's pending or active plan, if any (one at a time)."""
    return Plan.objects.filter(customer=customer, state__in=Plan.OPEN_STATES).first()
