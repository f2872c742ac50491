"""The staff desk (read side): customers with their balances, and the account 360."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_safe

from openar.billing import selectors
from openar.billing.models import Document, Invoice
from openar.billing.presenters import document_response, invoice_row, statement_pdf_response
from openar.billing.services import Downloader, document_download_audit
from openar.core.http import client_ip
from openar.core.money import format_money
from openar.customers.models import Customer
from openar.desk.commitments import customer_card
from openar.desk.worklist import creditor_notes_on_open
from openar.disputes.desk_views import customer_card as dispute_customer_card
from openar.disputes.desk_views import invoice_card as dispute_invoice_card
from openar.payments.autopay import autopay_summary, saved_methods
from openar.reminders.models import DunningPolicy
from openar.tenants.access import actor_of, staff_required
from openar.tenants.models import Organization

CUSTOMER_PAGE_SIZE = 50
THREADS_SHOWN = 20  # the latest threads of the customer, on its page


def _organization(request: HttpRequest) -> Organization:
    organization: Organization = request.organization  # type: ignore[attr-defined]
    return organization


@require_safe
@staff_required
def customers(request: HttpRequest) -> HttpResponse:
    organization = _organization(request)
    today = organization.today()
    sort = request.GET.get("sort") or "name"
    if sort not in selectors.CUSTOMER_SORTS:
        sort = "name"
    search = selectors.clean_search(request.GET.get("q"))
    queryset = selectors.customers_with_aging(today, search=search, sort=sort)
    page = Paginator(queryset, CUSTOMER_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "id": c.pk,
            "name": c.name,
            "number": c.number,
            "balance": format_money(c.balance, c.currency),  # type: ignore[attr-defined]
            "past_due": format_money(c.past_due, c.currency) if c.past_due else "",  # type: ignore[attr-defined]
            "buckets": [
                format_money(getattr(c, key), c.currency) if getattr(c, key) else ""
                for key, _ in selectors.BUCKETS
            ],
        }
        for c in page.object_list
    ]
    return render(
        request,
        "desk/customers.html",
        {
            "rows": rows,
            "page": page,
            "sort": sort,
            "search": search,
            "book": selectors.book_aging(today),
            "bucket_labels": [label for _, label in selectors.BUCKETS],
            "today": today,
            "nav": "customers",
        },
    )


@require_safe
@staff_required
def customer_detail(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(
        Customer.objects.select_related("creditor", "assigned_collector"), pk=customer_id
    )
    today = customer.organization.today()
    status = request.GET.get("status") or "open"
    if status not in selectors.INVOICE_STATUSES:
        status = "open"
    search = selectors.clean_search(request.GET.get("q"))
    queryset = selectors.invoice_list(customer, today=today, status=status, search=search, sort="")
    page = Paginator(queryset, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "desk/customer_detail.html",
        {
            "customer": customer,
            "aging": selectors.customer_aging(customer, today),
            "rows": [invoice_row(invoice, today) for invoice in page.object_list],
            "page": page,
            "status": status,
            "search": search,
            "statuses": [("open", "Open"), ("past_due", "Past due"), ("paid", "Paid"), ("all", "All")],
            "contacts": list(customer.contacts.all()),
            "payments": list(selectors.customer_payments(customer)[:10]),
            "autopay": autopay_summary(customer),
            "commitments": customer_card(customer),
            "saved_methods": saved_methods(customer),
            "credit_notes": list(selectors.customer_credit_notes(customer)[:10]),
            "documents": list(selectors.customer_documents(customer, for_customer=False)[:20]),
            "timeline": list(
                selectors.customer_timeline(customer, visibilities=selectors.STAFF_VISIBLE)[:30]
            ),
            "holds": list(
                customer.holds.filter(released_at__isnull=True)
                .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
                .order_by("placed_at")
            ),
            "policies": list(DunningPolicy.objects.filter(is_active=True).order_by("segment", "name")),
            "disputes": dispute_customer_card(customer),
            "creditor_notes": creditor_notes_on_open(request, customer),
            "threads": list(
                customer.threads.order_by(F("last_message_at").desc(nulls_last=True), "-pk")[:THREADS_SHOWN]
            ),
            "nav": "customers",
        },
    )


@require_safe
@staff_required
def invoice_detail(request: HttpRequest, customer_id: int, invoice_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    invoice = get_object_or_404(Invoice, pk=invoice_id, customer=customer)
    today = customer.organization.today()
    return render(
        request,
        "desk/invoice_detail.html",
        {
            "customer": customer,
            "invoice": invoice,
            "row": invoice_row(invoice, today),
            "lines": list(invoice.lines.all()),
            "applied": selectors.invoice_applied(invoice),
            "documents": list(invoice.documents.all()),
            "disputes": dispute_invoice_card(invoice),
            "nav": "customers",
        },
    )


@require_safe
@staff_required
def statement_pdf(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    return statement_pdf_response(customer)


@require_safe
@staff_required
def document_download(request: HttpRequest, document_id: int) -> HttpResponseBase:
    document = get_object_or_404(Document, pk=document_id)
    by = Downloader(actor=actor_of(request), ip=client_ip(request))
    document_download_audit(organization=_organization(request), by=by, document=document)
    return document_response(document)
