"""The customer portal (read side). Every query is the signed-in customer's own: an id of
another customer or organization is a 404. A magic-link session sees only what its link
points to; the statement, every document and the timeline need a full sign-in."""

from __future__ import annotations

import datetime
from collections.abc import Collection

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from openar.billing import selectors
from openar.billing.models import Document, Invoice
from openar.billing.presenters import (
    ROW_FIELDS,
    document_response,
    invoice_row,
    statement_pdf_response,
)
from openar.billing.services import Downloader, document_download_audit
from openar.billing.statements import statement_for
from openar.core.http import client_ip
from openar.customers.models import Customer
from openar.disputes.portal_views import invoice_context as dispute_context
from openar.payments.online import in_flight
from openar.tenants.access import Access, actor_of, customer_required, landing_url, require
from openar.tenants.permissions import Perm

INVOICE_PAGE_SIZE = 25
full_account_required = require(Perm.PORTAL_FULL)


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(
        landing_url(getattr(request, "access", None), signed_in=request.user.is_authenticated)
    )


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


def _customer(request: HttpRequest) -> Customer:
    customer = _access(request).customer
    assert customer is not None  # noqa: S101  (PORTAL_VIEW is only granted with a customer)
    return customer


def _visible(request: HttpRequest) -> QuerySet[Invoice]:
    access = _access(request)
    customer = _customer(request)
    return selectors.invoices_visible(
        customer,
        today=customer.organization.today(),
        link_scope=access.link_scope,
        invoice_id=access.invoice_id,
    )


def _clean(value: str | None, allowed: Collection[str], default: str) -> str:
    return value if value is not None and value in allowed else default


def _rows(invoices: list[Invoice], today: datetime.date) -> list[dict[str, object]]:
    """Invoice rows, each marked ``processing`` while a payment for it is in flight (a bank
    payment takes days): the customer sees it is on its way, not that it is still owed. Asked
    for the rows shown only (``processing_amounts`` would ask for every open invoice)."""
    flying = in_flight(invoice.pk for invoice in invoices)
    return [{**invoice_row(invoice, today), "processing": invoice.pk in flying} for invoice in invoices]


def _page(request: HttpRequest, context: dict[str, object]) -> dict[str, object]:
    access = _access(request)
    context.update({"customer": _customer(request), "access": access, "full": access.can(Perm.PORTAL_FULL)})
    return context


@require_safe
@customer_required
def overview(request: HttpRequest) -> HttpResponse:
    customer = _customer(request)
    today = customer.organization.today()
    visible = _visible(request)
    aging = selectors.customer_aging(customer, today, invoices=visible)
    past_due = list(
        visible.filter(open_amount__gt=0, due_date__lt=today).only(*ROW_FIELDS).order_by("due_date", "pk")[:5]
    )
    next_due = list(
        visible.filter(open_amount__gt=0, due_date__gte=today)
        .only(*ROW_FIELDS)
        .order_by("due_date", "pk")[:3]
    )
    recent = []
    if _access(request).can(Perm.PORTAL_FULL):
        recent = list(selectors.customer_timeline(customer, visibilities=selectors.CUSTOMER_VISIBLE)[:5])
    return render(
        request,
        "portal/overview.html",
        _page(
            request,
            {
                "today": today,
                "aging": aging,
                "primary": aging[0],
                "past_due_rows": _rows(past_due, today),
                "next_due_rows": _rows(next_due, today),
                "recent": recent,
                "nav": "overview",
            },
        ),
    )


@require_safe
@customer_required
def invoices(request: HttpRequest) -> HttpResponse:
    customer = _customer(request)
    today = customer.organization.today()
    status = _clean(request.GET.get("status"), selectors.INVOICE_STATUSES, "open")
    sort = _clean(request.GET.get("sort"), selectors.INVOICE_SORTS, "")
    search = selectors.clean_search(request.GET.get("q"))
    queryset = selectors.invoice_list(
        customer, today=today, status=status, search=search, sort=sort, invoices=_visible(request)
    )
    page = Paginator(queryset, INVOICE_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/invoices.html",
        _page(
            request,
            {
                "rows": _rows(list(page.object_list), today),
                "page": page,
                "status": status,
                "sort": sort,
                "search": search,
                "statuses": [("open", "Open"), ("past_due", "Past due"), ("paid", "Paid"), ("all", "All")],
                "nav": "invoices",
            },
        ),
    )


@require_safe
@customer_required
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    customer = _customer(request)
    invoice = get_object_or_404(_visible(request), pk=invoice_id)
    today = customer.organization.today()
    return render(
        request,
        "portal/invoice_detail.html",
        _page(
            request,
            {
                "invoice": invoice,
                "row": invoice_row(invoice, today),
                "processing": in_flight([invoice.pk]).get(invoice.pk),
                "lines": list(invoice.lines.all()),
                "applied": selectors.invoice_applied(invoice),
                "documents": list(invoice.documents.filter(visible_to_customer=True)),
                **dispute_context(_access(request), invoice),
                "nav": "invoices",
            },
        ),
    )


@require_safe
@customer_required
@full_account_required
def statement(request: HttpRequest) -> HttpResponse:
    customer = _customer(request)
    data = statement_for(customer, customer.organization.today())
    return render(request, "portal/statement.html", _page(request, {"statement": data, "nav": "statement"}))


@require_safe
@customer_required
@full_account_required
def statement_pdf(request: HttpRequest) -> HttpResponse:
    return statement_pdf_response(_customer(request))


@require_safe
@customer_required
def document_download(request: HttpRequest, document_id: int) -> HttpResponseBase:
    """Any of the customer's documents in a full session; in a narrow one, only those of
    the invoices its link shows."""
    customer = _customer(request)
    access = _access(request)
    documents = Document.objects.filter(customer=customer, visible_to_customer=True)
    if not access.can(Perm.PORTAL_FULL):
        documents = documents.filter(invoice__in=_visible(request))
    document = get_object_or_404(documents, pk=document_id)
    by = Downloader(actor=actor_of(request), contact=access.contact, ip=client_ip(request))
    document_download_audit(organization=access.organization, by=by, document=document)
    return document_response(document)


@require_safe
@customer_required
@full_account_required
def activity(request: HttpRequest) -> HttpResponse:
    customer = _customer(request)
    queryset = selectors.customer_timeline(customer, visibilities=selectors.CUSTOMER_VISIBLE)
    page = Paginator(queryset, 30).get_page(request.GET.get("page"))
    return render(request, "portal/activity.html", _page(request, {"page": page, "nav": "activity"}))
