"""Reads shared by the portal, the desk and reports: set-based, one query each."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.db.models import Count, Min, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from openar.billing.models import CreditNote, Document, Invoice
from openar.core.money import MoneyField, format_money, quantize
from openar.customers.models import Activity, Customer
from openar.payments.models import Allocation, Payment

BUCKETS: tuple[tuple[str, str], ...] = (
    ("current", "Current"),
    ("d1_30", "1–30 days"),
    ("d31_60", "31–60 days"),
    ("d61_90", "61–90 days"),
    ("d90_plus", "90+ days"),
)


def bucket_filters(today: datetime.date, prefix: str = "") -> dict[str, Q]:
    """Aging buckets by days past due (today minus due date): current is not yet past due;
    1–30, 31–60, 61–90 are inclusive ranges; 90+ is 91 days and more."""
    due = f"{prefix}due_date"

    def days(n: int) -> datetime.date:
        return today - datetime.timedelta(days=n)

    return {
        "current": Q(**{f"{due}__gte": today}),
        "d1_30": Q(**{f"{due}__lte": days(1), f"{due}__gte": days(30)}),
        "d31_60": Q(**{f"{due}__lte": days(31), f"{due}__gte": days(60)}),
        "d61_90": Q(**{f"{due}__lte": days(61), f"{due}__gte": days(90)}),
        "d90_plus": Q(**{f"{due}__lt": days(90)}),
    }


@dataclass
class Aging:
    """What one customer (or a whole book) owes in one currency, and how late."""

    currency: str
    balance: Decimal = Decimal(0)
    past_due: Decimal = Decimal(0)
    buckets: dict[str, Decimal] = field(default_factory=dict)
    open_count: int = 0
    past_due_count: int = 0
    next_due_date: datetime.date | None = None
    oldest_past_due_date: datetime.date | None = None

    @property
    def bucket_rows(self) -> list[tuple[str, str, Decimal]]:
        return [(key, label, self.buckets.get(key, Decimal(0))) for key, label in BUCKETS]

    @cached_property
    def display(self) -> dict[str, object]:
        """Everything a page shows, formatted once in Python (template filters cost more)."""
        return {
            "balance": format_money(self.balance, self.currency),
            "past_due": format_money(self.past_due, self.currency),
            "buckets": [
                (key, label, format_money(self.buckets.get(key, Decimal(0)), self.currency))
                for key, label in BUCKETS
            ],
        }


def _aging_rows(invoices: QuerySet[Invoice], today: datetime.date) -> list[Aging]:
    filters = bucket_filters(today)
    rows = (
        invoices.filter(open_amount__gt=0)
        .values("currency")
        .annotate(
            balance=Sum("open_amount"),
            past_due=Sum("open_amount", filter=Q(due_date__lt=today)),
            open_count=Count("id"),
            past_due_count=Count("id", filter=Q(due_date__lt=today)),
            next_due_date=Min("due_date", filter=Q(due_date__gte=today)),
            oldest_past_due_date=Min("due_date", filter=Q(due_date__lt=today)),
            **{key: Sum("open_amount", filter=condition) for key, condition in filters.items()},
        )
        .order_by("currency")
    )
    result = []
    for row in rows:
        values: dict[str, Any] = dict(row)
        currency = values["currency"]
        result.append(
            Aging(
                currency=currency,
                balance=quantize(values["balance"] or 0, currency),
                past_due=quantize(values["past_due"] or 0, currency),
                buckets={key: quantize(values[key] or 0, currency) for key in filters},
                open_count=values["open_count"],
                past_due_count=values["past_due_count"],
                next_due_date=values["next_due_date"],
                oldest_past_due_date=values["oldest_past_due_date"],
            )
        )
    return result


def invoices_visible(
    customer: Customer, *, today: datetime.date, link_scope: str = "", invoice_id: int | None = None
) -> QuerySet[Invoice]:
    """The customer's invoices that a session may see: all of them for a full session; for a
    magic-link session only what its link points to (one invoice, or what is past due)."""
    invoices = Invoice.objects.filter(customer=customer)
    if link_scope == "invoice":
        return invoices.filter(pk=invoice_id) if invoice_id is not None else invoices.none()
    if link_scope in ("past_due", "pay"):
        return invoices.filter(open_amount__gt=0, due_date__lt=today)
    if link_scope == "contract":  # a link to one contract to sign shows no invoice
        return invoices.none()
    return invoices


def customer_aging(
    customer: Customer, today: datetime.date, *, invoices: QuerySet[Invoice] | None = None
) -> list[Aging]:
    """The customer's balance, past-due amount and aging buckets, one entry per currency
    (the customer's own currency first; an entry with zeros when nothing is open).
    ``invoices`` narrows it to what a session may see."""
    rows = _aging_rows(invoices if invoices is not None else Invoice.objects.filter(customer=customer), today)
    if not any(row.currency == customer.currency for row in rows):
        rows.append(Aging(currency=customer.currency, buckets={key: Decimal(0) for key, _ in BUCKETS}))
    rows.sort(key=lambda row: (row.currency != customer.currency, row.currency))
    return rows


def book_aging(today: datetime.date) -> list[Aging]:
    """The whole organization's receivables (the active scope), per currency."""
    return _aging_rows(Invoice.objects.all(), today)


def clean_search(text: str | None, limit: int = 60) -> str:
    """Search text as typed, minus what no invoice number or name contains (NUL and other
    control characters, which PostgreSQL refuses in text), at most ``limit`` characters."""
    return "".join(ch for ch in (text or "")[: limit * 2] if ch.isprintable())[:limit].strip()


INVOICE_STATUSES = ("open", "past_due", "paid", "all")
INVOICE_SORTS = {
    "due": ("due_date", "pk"),
    "-due": ("-due_date", "-pk"),
    "issued": ("issue_date", "pk"),
    "-issued": ("-issue_date", "-pk"),
    "number": ("number",),
    "-number": ("-number",),
    "amount": ("total", "pk"),
    "-amount": ("-total", "-pk"),
    "open": ("open_amount", "pk"),
    "-open": ("-open_amount", "-pk"),
}


def invoice_list(
    customer: Customer,
    *,
    today: datetime.date,
    status: str = "open",
    search: str = "",
    sort: str = "due",
    invoices: QuerySet[Invoice] | None = None,
) -> QuerySet[Invoice]:
    """The customer's invoices filtered by status and by invoice or PO number. Unknown
    status or sort values fall back to the defaults (front doors validate first)."""
    if status not in INVOICE_STATUSES:
        status = "open"
    invoices = invoices if invoices is not None else Invoice.objects.filter(customer=customer)
    if status == "open":
        invoices = invoices.filter(open_amount__gt=0)
    elif status == "past_due":
        invoices = invoices.filter(open_amount__gt=0, due_date__lt=today)
    elif status == "paid":
        invoices = invoices.filter(open_amount=0)
    search = clean_search(search)
    if search:
        invoices = invoices.filter(Q(number__icontains=search) | Q(po_number__icontains=search))
    order = INVOICE_SORTS.get(sort) or (
        INVOICE_SORTS["-issued"] if status in ("paid", "all") else INVOICE_SORTS["due"]
    )
    return invoices.only(
        "id", "number", "po_number", "issue_date", "due_date", "currency", "total", "open_amount"
    ).order_by(*order)


@dataclass(frozen=True)
class AppliedItem:
    kind: str  # "payment" or "credit_note"
    date: datetime.date
    label: str
    amount: Decimal
    reversed: bool


def invoice_applied(invoice: Invoice) -> list[AppliedItem]:
    """Payments and credit notes applied to an invoice, oldest first. A payment is dated the
    day it was received where the organization is (its time zone), as its customers and
    staff count days; a credit note by its issue date."""
    items = []
    for allocation in (
        Allocation.objects.filter(invoice=invoice)
        .select_related("payment", "credit_note", "organization")
        .order_by("created_at", "pk")
    ):
        if allocation.payment is not None:
            payment = allocation.payment
            label = f"Payment by {payment.get_method_display()}"
            if payment.reference:
                label += f" · ref. {payment.reference}"
            date = payment.received_at.astimezone(allocation.organization.tz).date()
            kind = "payment"
        else:
            note = allocation.credit_note
            assert note is not None  # noqa: S101  (the allocation_one_source constraint)
            label = f"Credit note {note.number} · {note.reason}"
            date = note.issue_date
            kind = "credit_note"
        items.append(AppliedItem(kind, date, label, allocation.amount, allocation.reversed_at is not None))
    return items


def customer_timeline(customer: Customer, *, visibilities: tuple[str, ...]) -> QuerySet[Activity]:
    return Activity.objects.filter(customer=customer, visibility__in=visibilities).order_by(
        "-occurred_at", "-pk"
    )


CUSTOMER_VISIBLE = (Activity.Visibility.CUSTOMER,)
STAFF_VISIBLE = tuple(Activity.Visibility.values)


def customer_documents(customer: Customer, *, for_customer: bool) -> QuerySet[Document]:
    documents = Document.objects.filter(customer=customer).select_related("invoice")
    if for_customer:
        documents = documents.filter(visible_to_customer=True)
    return documents


@dataclass(frozen=True)
class DocumentFilters:
    """What the document center narrows the list to; empty values filter nothing. Dates are
    the documents' own (``document_date``), both ends included."""

    kind: str = ""
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    invoice: str = ""  # part of an invoice number
    po: str = ""  # part of a PO number: the document's own or its invoice's
    invoice_id: int | None = None  # one invoice exactly (its page's "download all")

    @property
    def active(self) -> bool:
        return any((self.kind, self.date_from, self.date_to, self.invoice, self.po, self.invoice_id))

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for links that keep them)."""
        pairs = {
            "kind": self.kind,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "invoice": self.invoice,
            "po": self.po,
            "invoice_id": str(self.invoice_id) if self.invoice_id is not None else "",
        }
        return {key: value for key, value in pairs.items() if value}


def _date(value: str | None, label: str, errors: list[str]) -> datetime.date | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        return datetime.date.fromisoformat(text[:32])
    except ValueError:
        errors.append(f"Enter the {label} date as a date, e.g. 2025-06-30.")
        return None


def document_filters(data: Mapping[str, str]) -> tuple[DocumentFilters, list[str]]:
    """Filters from a query string (or a form), and what was wrong in it: a bad value is
    left out, with a message saying so; unknown types are ignored."""
    errors: list[str] = []
    kind = data.get("kind") or ""
    date_from = _date(data.get("from"), "from", errors)
    date_to = _date(data.get("to"), "to", errors)
    if date_from and date_to and date_from > date_to:
        errors.append("The from date is after the to date: nothing can match. Swap them?")
    invoice_id = None
    raw_id = (data.get("invoice_id") or "").strip()
    if raw_id.isdigit() and len(raw_id) <= 12:
        invoice_id = int(raw_id)
    return (
        DocumentFilters(
            kind=kind if kind in Document.Kind.values else "",
            date_from=date_from,
            date_to=date_to,
            invoice=clean_search(data.get("invoice")),
            po=clean_search(data.get("po")),
            invoice_id=invoice_id,
        ),
        errors,
    )


def document_list(
    customer: Customer,
    *,
    for_customer: bool,
    filters: DocumentFilters | None = None,
    invoices: QuerySet[Invoice] | None = None,
) -> QuerySet[Document]:
    """The customer's documents, newest first (by their own date), narrowed by ``filters``.
    ``for_customer``: only those shown to the customer. ``invoices``: only documents of these
    invoices (what a narrow session's link shows)."""
    documents = customer_documents(customer, for_customer=for_customer)
    if invoices is not None:
        documents = documents.filter(invoice__in=invoices)
    filters = filters or DocumentFilters()
    if filters.kind:
        documents = documents.filter(kind=filters.kind)
    if filters.date_from:
        documents = documents.filter(document_date__gte=filters.date_from)
    if filters.date_to:
        documents = documents.filter(document_date__lte=filters.date_to)
    if filters.invoice:
        documents = documents.filter(invoice__number__icontains=filters.invoice)
    if filters.po:
        documents = documents.filter(
            Q(po_number__icontains=filters.po) | Q(invoice__po_number__icontains=filters.po)
        )
    if filters.invoice_id is not None:
        documents = documents.filter(invoice_id=filters.invoice_id)
    return documents.order_by("-document_date", "-created_at", "-pk")


def invoice_documents(invoice: Invoice, *, for_customer: bool) -> QuerySet[Document]:
    """The documents of one invoice, newest first."""
    documents = Document.objects.filter(invoice=invoice)
    if for_customer:
        documents = documents.filter(visible_to_customer=True)
    return documents.order_by("-document_date", "-created_at", "-pk")


INVOICE_PDF_TYPE = "application/pdf"


def is_invoice_pdf(document: Document) -> bool:
    """Whether ``document`` is an invoice's own PDF: of kind invoice, and a PDF. Another file
    filed as an invoice (a photo of it, a spreadsheet) is an ordinary document of it."""
    return document.kind == Document.Kind.INVOICE and document.content_type.lower() == INVOICE_PDF_TYPE


def invoice_erp_pdf(invoice: Invoice, *, for_customer: bool) -> Document | None:
    """The invoice PDF the ERP supplied for ``invoice`` (the latest, when it sent several;
    only a PDF counts, see ``is_invoice_pdf``), or None: then the PDF is drawn from the
    invoice's data."""
    return (
        invoice_documents(invoice, for_customer=for_customer)
        .filter(kind=Document.Kind.INVOICE, content_type__iexact=INVOICE_PDF_TYPE)
        .order_by("-created_at", "-pk")
        .first()
    )


def customer_payments(customer: Customer) -> QuerySet[Payment]:
    return Payment.objects.filter(customer=customer).order_by("-received_at", "-pk")


def customer_credit_notes(customer: Customer) -> QuerySet[CreditNote]:
    return (
        CreditNote.objects.filter(customer=customer).select_related("invoice").order_by("-issue_date", "-pk")
    )


CUSTOMER_SORTS = {
    "name": ("name", "pk"),
    "-name": ("-name", "-pk"),
    "number": ("number",),
    "-number": ("-number",),
    "balance": ("balance", "pk"),
    "-balance": ("-balance", "-pk"),
    "past_due": ("past_due", "pk"),
    "-past_due": ("-past_due", "-pk"),
}


def customers_with_aging(today: datetime.date, *, search: str = "", sort: str = "name") -> QuerySet[Customer]:
    """Customers of the active organization with balance, past due and aging buckets.
    Sums are in each invoice's currency; the desk shows them with the customer's currency,
    which is what nearly every account uses."""
    customers = Customer.objects.all()
    search = clean_search(search)
    if search:
        customers = customers.filter(
            Q(name__icontains=search) | Q(number__icontains=search) | Q(email__icontains=search)
        )
    open_q = Q(invoices__open_amount__gt=0)

    def open_sum(condition: Q) -> Coalesce:
        return Coalesce(
            Sum("invoices__open_amount", filter=condition), Value(Decimal(0)), output_field=MoneyField()
        )

    annotations = {
        "balance": open_sum(open_q),
        "past_due": open_sum(open_q & Q(invoices__due_date__lt=today)),
    }
    for key, condition in bucket_filters(today, prefix="invoices__").items():
        annotations[key] = open_sum(open_q & condition)
    order = CUSTOMER_SORTS.get(sort, CUSTOMER_SORTS["name"])
    return customers.annotate(**annotations).order_by(*order)
