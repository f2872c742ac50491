"""The organization's commitment policy, and the checks promises and plans share."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal

from openar.billing.models import Invoice
from openar.commitments.models import CommitmentPolicy, Promise, Source
from openar.core.errors import ServiceError
from openar.core.money import MoneyError, exponent, format_money, quantize
from openar.customers.models import Contact, Customer
from openar.identity.models import User
from openar.payments import online
from openar.payments.models import Allocation
from openar.tenants.models import Organization


def commitment_policy(organization: Organization) -> CommitmentPolicy:
    """The organization's policy (made with the defaults the first time it is asked for)."""
    found, _ = CommitmentPolicy.objects.get_or_create(
        organization=organization, defaults={"currency": organization.default_currency}
    )
    return found


def end_of_day(day: datetime.date, organization: Organization) -> datetime.datetime:
    """The first moment after ``day`` in the organization's time zone, in UTC."""
    following = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(0))
    return following.replace(tzinfo=organization.tz).astimezone(datetime.UTC)


def local_date(moment: datetime.datetime, organization: Organization) -> datetime.date:
    return moment.astimezone(organization.tz).date()


def money(amount: Decimal, currency: str) -> str:
    return format_money(amount, currency)


def checked_amount(amount: object, currency: str, field: str) -> Decimal:
    """``amount`` as money of ``currency``; refused (not rounded) when it has more decimals
    than the currency has, or is not a number."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise ServiceError("Enter the amount in digits.", field=field)
    try:
        value = quantize(amount, currency)
    except MoneyError as exc:
        raise ServiceError("Enter the amount in digits.", field=field) from exc
    if value != amount:
        places = exponent(currency)
        if places == 0:
            raise ServiceError(f"{currency} amounts have no decimals.", field=field)
        raise ServiceError(f"Enter at most {places} decimals for {currency}.", field=field)
    return value


def checked_date(day: object, field: str) -> datetime.date:
    if isinstance(day, datetime.datetime) or not isinstance(day, datetime.date):
        raise ServiceError("Enter a date.", field=field)
    return day


def checked_source(source: str) -> str:
    if source not in Source.values:
        raise ServiceError(f"Unknown source {source!r}.", field="source")
    return source


def checked_contact(customer: Customer, contact: Contact | None) -> Contact | None:
    if contact is not None and contact.customer_id != customer.pk:
        raise ServiceError("This contact is not on the account.", field="contact")
    return contact


def checked_token(form_token: str) -> str:
    if len(form_token or "") > 64:
        raise ServiceError("This form has expired; open it again.", field="form_token")
    return form_token or ""


def user_or_none(actor: User | None) -> User | None:
    return actor if actor is not None and actor.is_authenticated else None


def chosen_invoices(customer: Customer, invoices: Iterable[Invoice]) -> list[Invoice]:
    """The invoices chosen, read again (oldest due first): each the customer's own, in its
    currency and still open; refused otherwise, naming the invoice."""
    wanted: dict[int, Invoice] = {}
    for invoice in invoices:
        if invoice.customer_id != customer.pk:
            raise ServiceError("One of the invoices chosen is not on this account.", field="invoices")
        wanted[invoice.pk] = invoice
    found = {
        invoice.pk: invoice
        for invoice in Invoice.objects.filter(customer=customer, pk__in=list(wanted)).order_by(
            "due_date", "pk"
        )
    }
    for pk, invoice in wanted.items():
        current = found.get(pk)
        if current is None:
            raise ServiceError("One of the invoices chosen is not on this account.", field="invoices")
        if current.currency != customer.currency:
            raise ServiceError(
                f"Invoice {invoice.number} is in {current.currency}, the account in {customer.currency}.",
                field="invoices",
            )
        if current.open_amount <= 0:
            raise ServiceError(f"Invoice {invoice.number} is already paid.", field="invoices")
    return sorted(found.values(), key=lambda invoice: (invoice.due_date, invoice.pk))


def left_to_pay(invoices: list[Invoice]) -> dict[int, Decimal]:
    """For each invoice, what is open and not already covered by a payment in flight."""
    flying = online.in_flight(invoice.pk for invoice in invoices)
    return {invoice.pk: online.payable(invoice, flying) for invoice in invoices}


def allocated_since(
    invoice_filter: dict[str, object],
    currency: str,
    since: datetime.datetime,
    until: datetime.datetime | None = None,
) -> Decimal:
    """What payments (not credit notes) applied to the invoices ``invoice_filter`` selects
    from ``since`` (to ``until``), counting only allocations still in force (a returned
    payment's are reversed). Summed in Decimal."""
    rows = Allocation.objects.filter(
        payment__isnull=False,
        reversed_at__isnull=True,
        created_at__gte=since,
        invoice__currency=currency,
        **{f"invoice__{key}": value for key, value in invoice_filter.items()},
    )
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    total = sum(rows.values_list("amount", flat=True).order_by(), Decimal(0))
    return quantize(total, currency)


def open_promises_of(customer: Customer) -> Iterable[Promise]:
    return Promise.objects.filter(customer=customer, state=Promise.State.OPEN).prefetch_related("invoices")
