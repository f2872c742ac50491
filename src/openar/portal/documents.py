"""The portal's document center, invoice PDFs and customer uploads.

Who sees which documents (the same rule everywhere, downloads and ZIPs included):

* A full sign-in sees every document of the customer shown to customers, in the document
  center, filtered by type, date, invoice and PO number, and downloads any of them, one by
  one or several as one ZIP.
* A sign-in link's narrow session has no document center (it needs a full sign-in, as the
  statement does): on the pages of the invoices its link shows it sees those invoices'
  documents and their PDFs, and may download them, also as one ZIP per invoice.

Uploads: a customer sends a supporting document (a proof of delivery, a purchase order, a
remittance advice, something else) from the document center or from an invoice's page. A
full session may attach it to any of its invoices or to none; a narrow session only to an
invoice its link shows. Every file goes through ``openar.core.uploads``; a refused one is
shown on the form again with the reason and the refusal's HTTP status, and nothing is kept.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from openar.billing import selectors
from openar.billing.archives import (
    MAX_BYTES,
    MAX_FILES,
    Extra,
    UnknownDocument,
    documents_zip,
    zip_choice,
    zip_response,
)
from openar.billing.invoice_pdf import (
    invoice_pdf_data,
    invoice_pdf_filename,
    invoice_pdf_response,
    render_invoice_pdf,
)
from openar.billing.models import Document, Invoice
from openar.billing.services import (
    CUSTOMER_UPLOAD_LABELS,
    Downloader,
    UploadDetails,
    documents_upload,
    name_part,
)
from openar.core.errors import ServiceError
from openar.core.http import client_ip
from openar.core.uploads import UploadKind, UploadRejected, accepts_uploads, uploads_from
from openar.portal.views import _access, _customer, _page, _visible, full_account_required
from openar.tenants.access import actor_of, customer_required
from openar.tenants.permissions import Perm

DOCUMENT_PAGE_SIZE = 25
MAX_UPLOAD_FILES = 10
INVOICE_CHOICES_SHOWN = 300  # the newest invoices offered in the upload form's list
READ_ONLY_REFUSAL = "Viewing as the customer: nothing can be uploaded from here."
ZIP_REFUSED = "Nothing was downloaded: correct the filters first."


# --- the document center ------------------------------------------------------------------------


def _center_context(request: HttpRequest, filters: selectors.DocumentFilters) -> dict[str, object]:
    customer = _customer(request)
    queryset = selectors.document_list(customer, for_customer=True, filters=filters)
    page = Paginator(queryset, DOCUMENT_PAGE_SIZE).get_page(request.GET.get("page"))
    return {
        "page": page,
        "rows": [_row(document) for document in page.object_list],
        "filters": filters,
        "filter_query": filters.query(),
        "kinds": Document.Kind.choices,
        "max_files": MAX_FILES,
        "max_mb": MAX_BYTES // 1024 // 1024,
        "nav": "documents",
    }


def _row(document: Document) -> dict[str, object]:
    invoice = document.invoice
    return {
        "document": document,
        "po": document.po_number or (invoice.po_number if invoice is not None else ""),
        "invoice": invoice,
    }


@require_http_methods(["GET", "HEAD", "POST"])
@customer_required
@full_account_required
def documents(request: HttpRequest) -> HttpResponseBase:
    """The document center. Its form posts here to download the documents ticked (``document``,
    repeated), or every one matching the filters (``all``), as one ZIP; with a filter that is
    not valid, no ZIP: the page again (400) saying what to correct."""
    source = request.POST if request.method == "POST" else request.GET
    filters, errors = selectors.document_filters(source)
    status = 400 if errors else 200
    if request.method == "POST":
        if errors:  # a filter left out would make "all matching" more than was asked for
            errors.append(ZIP_REFUSED)
        else:
            try:
                return _zip_download(request, filters)
            except ServiceError as exc:
                errors.append(exc.message)
                status = 400
    context = _center_context(request, filters)
    context.update(_upload_context(request, UploadForm(invoices=_upload_invoices(request))))
    context["filter_errors"] = errors
    return render(request, "portal/documents.html", _page(request, context), status=status)


def _zip_download(request: HttpRequest, filters: selectors.DocumentFilters) -> HttpResponseBase:
    customer = _customer(request)
    try:
        chosen = zip_choice(
            visible=selectors.document_list(customer, for_customer=True),
            matching=selectors.document_list(customer, for_customer=True, filters=filters),
            ids=request.POST.getlist("document"),
            everything=bool(request.POST.get("all")),
        )
    except UnknownDocument as exc:
        raise Http404("No such document.") from exc  # another customer's, or hidden: never say which
    archive = documents_zip(
        customer=customer,
        documents=chosen,
        actor=actor_of(request),
        contact=_access(request).contact,
        ip=client_ip(request),
    )
    return zip_response(
        archive, f"documents-{name_part(customer.number)}-{customer.organization.today():%Y-%m-%d}.zip"
    )


# --- one invoice: its PDF and all its documents ----------------------------------------------------


def _invoice(request: HttpRequest, invoice_id: int) -> Invoice:
    return get_object_or_404(
        _visible(request).select_related("customer__organization", "creditor"), pk=invoice_id
    )


@require_safe
@customer_required
def invoice_pdf(request: HttpRequest, invoice_id: int) -> HttpResponseBase:
    """The invoice's PDF: the ERP's, or drawn from its data."""
    return invoice_pdf_response(_invoice(request, invoice_id), for_customer=True, by=downloader(request))


def downloader(request: HttpRequest) -> Downloader:
    """Who downloads, for the audit: the user, else the sign-in link's contact; from where."""
    return Downloader(actor=actor_of(request), contact=_access(request).contact, ip=client_ip(request))


@require_safe
@customer_required
def invoice_documents_zip(request: HttpRequest, invoice_id: int) -> HttpResponseBase:
    """The invoice's PDF (drawn when the ERP sent none) and every document of it, in one ZIP."""
    invoice = _invoice(request, invoice_id)
    documents = list(selectors.invoice_documents(invoice, for_customer=True))
    extras = []
    if not any(selectors.is_invoice_pdf(document) for document in documents):
        extras.append(Extra(invoice_pdf_filename(invoice), render_invoice_pdf(invoice_pdf_data(invoice))))
    try:
        archive = documents_zip(
            customer=invoice.customer,
            documents=documents,
            extras=extras,
            actor=actor_of(request),
            contact=_access(request).contact,
            ip=client_ip(request),
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("portal:invoice", args=[invoice.pk]))
    return zip_response(archive, f"invoice-{name_part(invoice.number)}-documents.zip")


# --- uploads --------------------------------------------------------------------------------------


class UploadForm(forms.Form):
    """What the customer says about the files; the files themselves are checked by
    ``uploads_from``."""

    kind = forms.ChoiceField(
        label="What is it?",
        choices=list(CUSTOMER_UPLOAD_LABELS.items()),
        error_messages={
            "required": "Say what the document is.",
            "invalid_choice": "Say what the document is.",
        },
    )
    invoice = forms.TypedChoiceField(label="Invoice", coerce=int, required=False, empty_value=None)
    title = forms.CharField(label="Title", max_length=200, required=False)
    note = forms.CharField(label="Note for us", max_length=500, required=False, widget=forms.Textarea)

    def __init__(
        self, *args: object, invoices: list[Invoice], invoice_required: bool = False, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.invoices = {invoice.pk: invoice for invoice in invoices}
        field = self.fields["invoice"]
        assert isinstance(field, forms.TypedChoiceField)  # noqa: S101
        field.choices = [("", "No invoice in particular")] + [
            (invoice.pk, invoice.number) for invoice in invoices
        ]
        field.required = invoice_required
        field.error_messages = {
            "required": "Choose the invoice it is about.",
            "invalid_choice": "Choose one of your invoices.",
        }


def _upload_invoices(request: HttpRequest, chosen: int | None = None) -> list[Invoice]:
    """The invoices the upload form offers: what the session shows, newest first (and the one
    chosen, should it be older than those listed)."""
    visible = _visible(request).only("id", "number", "issue_date")
    invoices = list(visible.order_by("-issue_date", "-pk")[:INVOICE_CHOICES_SHOWN])
    if chosen is not None and all(invoice.pk != chosen for invoice in invoices):
        invoices += list(visible.filter(pk=chosen))
    return invoices


def _upload_context(request: HttpRequest, form: UploadForm, error: str = "") -> dict[str, object]:
    return {
        "upload_form": form,
        "upload_error": error,
        "max_upload_files": MAX_UPLOAD_FILES,
    }


def _next_url(request: HttpRequest, invoice: Invoice | None) -> str:
    if request.POST.get("from") == "invoice" and invoice is not None:
        return reverse("portal:invoice", args=[invoice.pk]) + "#docs-h"
    if _access(request).can(Perm.PORTAL_FULL):
        return reverse("portal:documents")
    if invoice is not None:
        return reverse("portal:invoice", args=[invoice.pk]) + "#docs-h"
    return reverse("portal:overview")


@require_http_methods(["GET", "HEAD", "POST"])
@customer_required
@accepts_uploads(UploadKind.DOCUMENT, max_files=MAX_UPLOAD_FILES)
def upload(request: HttpRequest) -> HttpResponseBase:
    """Send us a document. GET shows the form (``?invoice=<id>`` chooses the invoice)."""
    access = _access(request)
    customer = _customer(request)
    narrow = not access.can(Perm.PORTAL_FULL)
    posted = request.POST if request.method == "POST" else None
    chosen = str((posted or request.GET).get("invoice", ""))
    preset = int(chosen) if chosen.isdigit() and len(chosen) <= 12 else None
    form = UploadForm(
        posted,
        invoices=_upload_invoices(request, preset),
        invoice_required=narrow,
        initial={"invoice": preset, "kind": "proof_of_delivery"},
    )
    error, status = "", 200
    if request.method == "POST":
        if access.read_only:
            messages.error(request, READ_ONLY_REFUSAL)
            return HttpResponseRedirect(reverse("portal:overview"))
        if form.is_valid():
            invoice = (
                form.invoices.get(form.cleaned_data["invoice"]) if form.cleaned_data["invoice"] else None
            )
            try:
                files = uploads_from(request, "files", UploadKind.DOCUMENT, max_files=MAX_UPLOAD_FILES)
                stored = documents_upload(
                    customer=customer,
                    uploads=files,
                    details=UploadDetails(
                        kind=form.cleaned_data["kind"],
                        title=form.cleaned_data["title"],
                        invoice=invoice,
                        note=form.cleaned_data["note"],
                    ),
                    actor=actor_of(request),
                    contact=access.contact,
                    by_customer=True,
                    ip=client_ip(request),
                )
            except UploadRejected as exc:
                error, status = exc.message, exc.status
            except ServiceError as exc:
                error, status = exc.message, 400
            else:
                names = ", ".join(document.filename for document in stored)
                messages.success(request, f"Thank you: we received {names}. We have told your account team.")
                return HttpResponseRedirect(_next_url(request, invoice))
        else:
            status = 400
    context = _upload_context(request, form, error)
    context.update({"nav": "documents" if not narrow else "invoices", "narrow": narrow})
    return render(request, "portal/documents_upload.html", _page(request, context), status=status)
