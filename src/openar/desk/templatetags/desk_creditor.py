"""What the desk shows of an agency's creditor clients outside their own pages.

``{% desk_client_nav nav %}``: the nav's "Client messages" tab, with the count of client
messages no one at the agency has read, and "Client payments", with the count of reported
payments waiting for confirmation (a supplier's desk has neither: it has no clients).

``{% creditor_messages_card customer %}``: on the customer page of an account a client
placed, its conversations with the client, unread first (nothing for a supplier's customer).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Case, F, Sum, Value, When

from openar.client.models import DirectPaymentReport
from openar.customers.models import Customer
from openar.notifications.models import Thread
from openar.tenants.access import access_of
from openar.tenants.models import Organization
from openar.tenants.permissions import Perm

register = template.Library()

CARD_THREADS = 10


def creditor_unread_count() -> int:
    """Client messages no one at the organization has read yet (the request's tenant
    scope): one query."""
    total = Thread.creditor_threads.aggregate(total=Sum("unread_by_staff"))["total"]
    return int(total or 0)


@register.inclusion_tag("desk/creditor_threads_nav.html", takes_context=True)
def desk_client_nav(context: template.Context, nav: str = "") -> dict[str, Any]:
    request = context.get("request")
    access = access_of(request) if request is not None else None
    agency = (
        access is not None
        and access.organization.kind == Organization.Kind.AGENCY
        and access.can(Perm.DESK_VIEW)
    )
    can_collect = agency and access is not None and access.can(Perm.DESK_COLLECT)
    return {
        "show": agency,
        "nav": nav,
        "unread": creditor_unread_count() if agency else 0,
        "can_collect": can_collect,
        "waiting": (
            DirectPaymentReport.objects.filter(state=DirectPaymentReport.State.REPORTED).count()
            if can_collect
            else 0
        ),
    }


@register.inclusion_tag("desk/creditor_threads_card.html", takes_context=True)
def creditor_messages_card(context: template.Context, customer: Customer) -> dict[str, Any]:
    placed = customer.organization.kind == Organization.Kind.AGENCY and not customer.creditor.is_self
    threads = (
        list(
            Thread.creditor_threads.filter(customer=customer)
            .annotate(unread_first=Case(When(unread_by_staff__gt=0, then=Value(0)), default=Value(1)))
            .order_by("unread_first", F("last_message_at").desc(nulls_last=True), "-pk")[: CARD_THREADS + 1]
        )
        if placed
        else []
    )
    return {
        "show": placed,
        "customer": customer,
        "threads": threads[:CARD_THREADS],
        "more": len(threads) > CARD_THREADS,
    }
