"""The variables a reminder template sees for one customer (``notifications.rendering``
lists them for the template editor). Amounts and dates are formatted in the contact's
language; the invoices are the open ones that are not on hold, down to those coming due
within the step's lead time (a step 3 days before the due date lists what is due in 3 days).
An invoice partly under open disputes is reminded for its undisputed part only: the amounts
quoted are what is open less what is disputed (``remindable_invoices`` annotates it).
"""

from __future__ import annotations

import datetime
import functools
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q
from django.utils import formats, translation

from openar.billing.models import Invoice
from openar.commitments.models import Plan, Promise
from openar.core.money import format_money, quantize
from openar.customers.models import Contact, Customer, Hold
from openar.disputes.selectors import disputed_amount


def held_invoices(moment: datetime.datetime) -> Exists:
    """An open hold on the invoice (``OuterRef("pk")`` is the invoice)."""
    return Exists(
        Hold.objects.filter(invoice=OuterRef("pk"), released_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=moment)
        )
    )


def promised_invoices(moment: datetime.datetime) -> Q:
    """An open promise covers the invoice at ``moment`` (until the end of its date plus the
    grace days): one that names it, or one that names no invoice (the whole account)."""
    return Q(
        Exists(
            Promise.invoices.through.objects.filter(
                invoice_id=OuterRef("pk"),
                promise__state=Promise.State.OPEN,
                promise__covers_until__gt=moment,
            )
        )
    ) | Q(
        Exists(
            Promise.objects.filter(
                customer_id=OuterRef("customer_id"),
                state=Promise.State.OPEN,
                covers_until__gt=moment,
                invoices__isnull=True,
            )
        )
    )


def planned_invoices() -> Exists:
    """The invoice is in a payment plan that is active or waiting for approval."""
    return Exists(
        Plan.invoices.through.objects.filter(invoice_id=OuterRef("pk"), plan__state__in=Plan.OPEN_STATES)
    )


def remindable_invoices(moment: datetime.datetime) -> Any:
    """Open invoices that collection may talk about: not on hold, not covered by an open
    promise (until its date plus grace), not in a pending or active payment plan, and not
    disputed in full. Only dunning pauses: the invoices stay payable. Each is annotated with
    ``disputed_amount`` (what its open disputes hold): only that part pauses, the rest is
    reminded (``undisputed``)."""
    return (
        Invoice.objects.filter(open_amount__gt=0)
        .exclude(held_invoices(moment))
        .exclude(promised_invoices(moment))
        .exclude(planned_invoices())
        .annotate(disputed_amount=disputed_amount())
        .filter(open_amount__gt=F("disputed_amount"))
    )


def undisputed(invoice: Invoice) -> Decimal:
    """What a reminder quotes for the invoice: open, less what open disputes hold."""
    held = getattr(invoice, "disputed_amount", None) or Decimal(0)
    return max(Decimal(0), invoice.open_amount - quantize(held, invoice.currency))


@functools.lru_cache(maxsize=4096)
def format_date(day: datetime.date, language: str) -> str:
    with translation.override(language):
        return formats.date_format(day, "j F Y")


def reminder_context(
    customer: Customer,
    contact: Contact | None,
    today: datetime.date,
    language: str,
    offset_days: int,
    pay_link: str,
    unsubscribe_link: str,
    statement_attached: bool,
    moment: datetime.datetime | None = None,
    easy_pay_link: str = "",
) -> dict[str, Any]:
    """The variables for one customer (the template editor's preview; the engine builds
    many at once with ``context_from``)."""
    moment = moment or datetime.datetime.combine(today, datetime.time(12), tzinfo=datetime.UTC)
    open_invoices = list(remindable_invoices(moment).filter(customer=customer).order_by("due_date", "pk"))
    return context_from(
        customer,
        contact,
        today,
        language,
        offset_days,
        pay_link,
        unsubscribe_link,
        statement_attached,
        open_invoices,
        easy_pay_link=easy_pay_link,
    )


def context_from(
    customer: Customer,
    contact: Contact | None,
    today: datetime.date,
    language: str,
    offset_days: int,
    pay_link: str,
    unsubscribe_link: str,
    statement_attached: bool,
    open_invoices: list[Invoice],
    easy_pay_link: str = "",
) -> dict[str, Any]:
    """The variables, from the customer's open invoices that are not on hold (ordered by
    due date). ``_invoice_ids`` (not a template variable) lists the invoices the message
    concerns."""
    lead = max(0, -offset_days)
    horizon = today + datetime.timedelta(days=lead)
    invoices = [invoice for invoice in open_invoices if invoice.due_date <= horizon]
    currency = customer.currency
    past_due = sum(
        (undisputed(i) for i in invoices if i.due_date < today and i.currency == currency), Decimal(0)
    )
    total_open = sum((undisputed(i) for i in open_invoices if i.currency == currency), Decimal(0))
    oldest = invoices[0].due_date if invoices else None
    organization = customer.organization
    return {
        "contact_name": (contact.name if contact else "") or customer.name,
        "customer_name": customer.name,
        "customer_number": customer.number,
        "organization_name": organization.name,
        "organization_email": organization.email,
        "organization_phone": organization.phone,
        "total_past_due": format_money(quantize(past_due, currency), currency, language),
        "total_open": format_money(quantize(total_open, currency), currency, language),
        "oldest_due_date": format_date(oldest, language) if oldest else "",
        "days_past_due": max(0, (today - oldest).days) if oldest else 0,
        "invoices": [
            {
                "number": invoice.number,
                "po_number": invoice.po_number,
                "due_date": format_date(invoice.due_date, language),
                "open_amount": format_money(undisputed(invoice), invoice.currency, language),
                "days_late": max(0, (today - invoice.due_date).days),
            }
            for invoice in invoices
        ],
        "invoice_count": len(invoices),
        "pay_link": pay_link,
        "easy_pay_link": easy_pay_link or pay_link,
        "portal_link": f"{settings.SITE_URL}/accounts/login/",
        "unsubscribe_link": unsubscribe_link,
        "statement_attached": statement_attached,
        "_invoice_ids": [invoice.pk for invoice in invoices],
    }
