"""Documents at the desk: a customer's documents (every one, those hidden from the customer
marked), with the document center's filters and ZIP download; staff uploads (any type, about
an invoice or not, shown to the customer or kept for staff); showing or hiding a document;
and every invoice's PDF (the ERP's, or drawn from the invoice's data). A staff upload's note
is internal: it never reaches the customer's timeline. Downloads are audited.

Reading needs the desk (``DESK_VIEW``); uploading and showing or hiding need
``DESK_COLLECT``. A customer, invoice or document of another organization is a 404.
"""

from __future__ import annotations

import datetime

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from openar.billing import selectors
from openar.billing.archives import (
    MAX_BYTES,
    MAX_FILES,
    UnknownDocument,
    documents_zip,
    zip_choice,
    zip_response,
)
from openar.billing.invoice_pdf import invoice_pdf_response
from openar.billing.models import Document, Invoice
from openar.billing.services import (
    Downloader,
    UploadDetails,
    document_visibility_set,
    documents_upload,
    name_part,
)
from openar.core.errors import ServiceError
from openar.core.http import client_ip
from openar.core.uploads import UploadKind, UploadRejected, accepts_uploads, uploads_from
from openar.customers.models import Customer
from openar.tenants.access import actor_of, require, staff_required
from openar.tenants.permissions import Perm

collector_required = require(Perm.DESK_COLLECT)
DOCUMENT_PAGE_SIZE = 30
MAX_UPLOAD_FILES = 10
ZIP_REFUSED = "Nothing was downloaded: correct the filters first."


class StaffUploadForm(forms.Form):
    kind = forms.ChoiceField(
        label="Type",
        choices=Document.Kind.choices,
        error_messages={"required": "Choose the document's type.", "invalid_choice": "Choose a type."},
    )
    invoice = forms.CharField(label="Invoice number", max_length=40, required=False)
    title = forms.CharField(label="Title", max_length=200, required=False)
    po_number = forms.CharField(label="PO number", max_length=60, required=False)
    document_date = forms.DateField(
        label="Document date",
        required=False,
        input_formats=["%Y-%m-%d"],  # never a guess between 12/06 and 06/12
        error_messages={"invalid": "Enter the date as a date, e.g. 2025-06-30."},
    )
    visible = forms.BooleanField(label="The customer sees it in the portal", required=False)
    note = forms.CharField(label="Internal note (staff only)", max_length=500, required=False)

    def __init__(self, *args: object, customer: Customer, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.customer = customer

    def clean_invoice(self) -> Invoice | None:
        number = " ".join(str(self.cleaned_data.get("invoice") or "").split())
        if not number:
            return None
        invoice = Invoice.objects.filter(customer=self.customer, number__iexact=number).first()
        if invoice is None:
            raise forms.ValidationError(f"{self.customer.name} has no invoice {number}.")
        return invoice

    def clean_document_date(self) -> datetime.date | None:
        day: datetime.date | None = self.cleaned_data.get("document_date")
        if day is not None and day > self.customer.organization.today() + datetime.timedelta(days=366):
            raise forms.ValidationError("That date is more than a year ahead; check it.")
        return day


def _customer(customer_id: int) -> Customer:
    return get_object_or_404(Customer.objects.select_related("organization"), pk=customer_id)


def _page(
    request: HttpRequest,
    customer: Customer,
    *,
    form: StaffUploadForm | None = None,
    upload_error: str = "",
    errors: list[str] | None = None,
    filters: selectors.DocumentFilters | None = None,
    status: int = 200,
) -> HttpResponse:
    if filters is None:
        filters, parse_errors = selectors.document_filters(request.GET)
        errors = (errors or []) + parse_errors
        if parse_errors:
            status = max(status, 400)
    queryset = selectors.document_list(customer, for_customer=False, filters=filters)
    page = Paginator(queryset, DOCUMENT_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "document": document,
            "invoice": document.invoice,
            "po": document.po_number or (document.invoice.po_number if document.invoice else ""),
        }
        for document in page.object_list
    ]
    return render(
        request,
        "desk/documents.html",
        {
            "customer": customer,
            "page": page,
            "rows": rows,
            "filters": filters,
            "filter_query": filters.query(),
            "filter_errors": errors or [],
            "kinds": Document.Kind.choices,
            "upload_form": form or StaffUploadForm(customer=customer, initial=_initial(customer, filters)),
            "upload_error": upload_error,
            "max_files": MAX_FILES,
            "max_mb": MAX_BYTES // 1024 // 1024,
            "max_upload_files": MAX_UPLOAD_FILES,
            "back_url": _list_url(request, customer),
            "nav": "customers",
        },
        status=status,
    )


def _list_url(request: HttpRequest, customer: Customer) -> str:
    """This list as it is shown (its filters and page), to come back to after an action."""
    url = reverse("desk:customer_documents", args=[customer.pk])
    if request.method == "GET" and request.GET:
        url += "?" + request.GET.urlencode()
    return url


def _initial(customer: Customer, filters: selectors.DocumentFilters) -> dict[str, object]:
    """The upload form starts shown to the customer, about the invoice the list is of."""
    initial: dict[str, object] = {"visible": True}
    if filters.invoice_id is not None:
        invoice = Invoice.objects.filter(customer=customer, pk=filters.invoice_id).only("number").first()
        if invoice is not None:
            initial["invoice"] = invoice.number
    return initial


@require_http_methods(["GET", "HEAD", "POST"])
@staff_required
def customer_documents(request: HttpRequest, customer_id: int) -> HttpResponseBase:
    """Every document of the customer. Its form posts here to download the documents ticked,
    or every one matching the filters, as one ZIP; with a filter that is not valid, no ZIP:
    the page again (400) saying what to correct."""
    customer = _customer(customer_id)
    if request.method != "POST":
        return _page(request, customer)
    filters, errors = selectors.document_filters(request.POST)
    if errors:  # a filter left out would make "all matching" more than was asked for
        return _page(request, customer, errors=[*errors, ZIP_REFUSED], filters=filters, status=400)
    try:
        chosen = zip_choice(
            visible=selectors.document_list(customer, for_customer=False),
            matching=selectors.document_list(customer, for_customer=False, filters=filters),
            ids=request.POST.getlist("document"),
            everything=bool(request.POST.get("all")),
        )
        archive = documents_zip(
            customer=customer, documents=chosen, actor=actor_of(request), ip=client_ip(request)
        )
    except UnknownDocument as exc:
        raise Http404("No such document.") from exc
    except ServiceError as exc:
        return _page(request, customer, errors=[*errors, exc.message], filters=filters, status=400)
    return zip_response(
        archive, f"documents-{name_part(customer.number)}-{customer.organization.today():%Y-%m-%d}.zip"
    )


def _back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    """To the desk page the form was on (``next``), else ``fallback``."""
    target = str(request.POST.get("next", ""))
    if target.startswith("/desk/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}
    ):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(fallback)


@require_POST
@collector_required
@accepts_uploads(UploadKind.DOCUMENT, max_files=MAX_UPLOAD_FILES)
def upload(request: HttpRequest, customer_id: int) -> HttpResponseBase:
    """Staff add documents to the customer. A refused file shows the documents page again with
    the reason, and the refusal's status; nothing is kept."""
    customer = _customer(customer_id)
    form = StaffUploadForm(request.POST, customer=customer)
    if not form.is_valid():
        return _page(request, customer, form=form, status=400)
    data = form.cleaned_data
    try:
        files = uploads_from(request, "files", UploadKind.DOCUMENT, max_files=MAX_UPLOAD_FILES)
        stored = documents_upload(
            customer=customer,
            uploads=files,
            details=UploadDetails(
                kind=data["kind"],
                title=data["title"],
                invoice=data["invoice"],
                po_number=data["po_number"],
                document_date=data["document_date"],
                note=data["note"],
                visible_to_customer=data["visible"],
            ),
            actor=actor_of(request),
            ip=client_ip(request),
        )
    except UploadRejected as exc:
        return _page(request, customer, form=form, upload_error=exc.message, status=exc.status)
    except ServiceError as exc:
        return _page(request, customer, form=form, upload_error=exc.message, status=400)
    shown = "the customer sees" if data["visible"] else "staff only"
    names = ", ".join(document.filename for document in stored)
    messages.success(request, f"Added {names} ({shown}).")
    return _back(request, reverse("desk:customer_documents", args=[customer.pk]))


@require_POST
@collector_required
def visibility(request: HttpRequest, document_id: int) -> HttpResponseBase:
    """Show a document to the customer (``visible=1``) or hide it from them (``visible=0``)."""
    document = get_object_or_404(Document.objects.select_related("customer"), pk=document_id)
    choice = str(request.POST.get("visible", ""))
    if choice not in ("0", "1"):
        messages.error(request, "Say whether the customer should see the document.")
        return _back(request, reverse("desk:customer_documents", args=[document.customer_id]))
    document_visibility_set(document=document, visible=choice == "1", actor=actor_of(request))
    if choice == "1":
        messages.success(request, f"{document.title}: the customer sees it in the portal now.")
    else:
        messages.success(request, f"{document.title}: hidden from the customer; staff still see it.")
    return _back(request, reverse("desk:customer_documents", args=[document.customer_id]))


@require_safe
@staff_required
def invoice_pdf(request: HttpRequest, customer_id: int, invoice_id: int) -> HttpResponseBase:
    customer = _customer(customer_id)
    invoice = get_object_or_404(
        Invoice.objects.select_related("customer__organization", "creditor"), pk=invoice_id, customer=customer
    )
    return invoice_pdf_response(
        invoice, for_customer=False, by=Downloader(actor=actor_of(request), ip=client_ip(request))
    )
