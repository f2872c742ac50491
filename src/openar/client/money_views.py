"""The creditor-client portal's money pages: reporting a payment the debtor made to the
creditor directly, placing new accounts from a CSV file, and the recovery reports with
their CSV exports. Every page is for the signed-in creditor's own accounts only: another
creditor's account, import or figures answer 404 (or are never read). Views parse input,
call one service or selector, and render."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from openar.client.models import DirectPaymentReport, PlacementImport
from openar.client.payments import balance_left, commission_of, direct_payment_report, report_commission
from openar.client.placements import (
    COLUMNS,
    MAX_LINES,
    REQUIRED,
    TEMPLATE_CSV,
    placed_amounts_text,
    placement_import,
    placement_imports,
)
from openar.client.reports import (
    account_row,
    account_totals,
    accounts_csv_lines,
    accounts_of,
    chart_svg,
    monthly_csv,
    recovery_by_month,
    totals,
)
from openar.core.errors import ServiceError
from openar.core.money import MAX_TYPED_DIGITS, MoneyError, exponent, format_money, parse_amount
from openar.core.uploads import UploadKind, UploadRejected, accepts_uploads, protect_download, uploads_from
from openar.customers.models import Customer
from openar.tenants.access import Access, actor_of, require
from openar.tenants.models import Creditor
from openar.tenants.permissions import Perm

client_required = require(Perm.CLIENT_VIEW)
ACCOUNTS_PER_PAGE = 50


def _creditor(request: HttpRequest) -> Creditor:
    access: Access = request.access  # type: ignore[attr-defined]
    if access.creditor is None:  # a creditor membership always names one; never guess
        raise Http404
    return access.creditor


def _account(request: HttpRequest, customer_id: int) -> Customer:
    return get_object_or_404(
        Customer.objects.select_related("organization"), pk=customer_id, creditor=_creditor(request)
    )


# --- reporting a direct payment -----------------------------------------------------------------


class ClientAmountField(forms.DecimalField):
    """An amount as people type it ("1,234.50", "$1,234.50"), read by ``parse_amount``."""

    def __init__(self, *, currency: str, **kwargs: Any) -> None:
        self.currency = currency
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
        super().__init__(
            max_digits=MAX_TYPED_DIGITS + exponent(currency), decimal_places=exponent(currency), **kwargs
        )

    def to_python(self, value: Any) -> Decimal | None:  # type: ignore[override]
        text = str(value if value is not None else "").strip()
        if text in self.empty_values:
            return None
        try:
            return parse_amount(text, self.currency)
        except MoneyError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class DirectPaymentForm(forms.Form):
    received_on = forms.DateField(label="Date received", widget=forms.DateInput(attrs={"type": "date"}))
    method = forms.ChoiceField(label="How it was paid", choices=DirectPaymentReport.Method.choices)
    reference = forms.CharField(
        label="Reference",
        max_length=100,
        required=False,
        help_text="Cheque number, wire or receipt reference.",
    )
    note = forms.CharField(
        label="Note for the collector",
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    form_token = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)
    field_order = ["amount", "received_on", "method", "reference", "note"]

    def __init__(self, *args: Any, currency: str, today: datetime.date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["amount"] = ClientAmountField(currency=currency, label=f"Amount received ({currency})")
        self.fields["received_on"].initial = today
        self.fields["received_on"].widget.attrs["max"] = today.isoformat()
        self.fields["form_token"].initial = uuid.uuid4().hex
        self.order_fields(self.field_order)


@require_http_methods(["GET", "HEAD", "POST"])
@client_required
def payment_report(request: HttpRequest, customer_id: int) -> HttpResponse:
    creditor = _creditor(request)
    customer = _account(request, customer_id)
    organization = customer.organization
    form = DirectPaymentForm(
        request.POST if request.method == "POST" else None,
        currency=customer.currency,
        today=organization.today(),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            report = direct_payment_report(
                customer=customer,
                creditor=creditor,
                amount=data["amount"],
                received_on=data["received_on"],
                method=data["method"],
                reference=data["reference"],
                note=data["note"],
                actor=actor_of(request),
                form_token=data["form_token"],
            )
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(
                request,
                f"Payment of {format_money(report.amount, report.currency)} reported: "
                "the agency will confirm it and apply it to the account.",
            )
            return HttpResponseRedirect(reverse("client:payment_report", args=[customer.pk]))
    reports = list(
        DirectPaymentReport.objects.filter(customer=customer)
        .select_related("creditor")
        .order_by("-reported_at", "-pk")[:50]
    )
    rows = [
        {"report": r, "commission": report_commission(r)}  # as kept when confirmed
        for r in reports
    ]
    return render(
        request,
        "client/payment_report.html",
        {
            "creditor": creditor,
            "customer": customer,
            "form": form,
            "rows": rows,
            "owed": format_money(balance_left(customer), customer.currency),
            "rate": commission_of(Decimal(0), creditor.commission_rate, customer.currency).rate_percent,
            "nav": "accounts",
        },
        status=400 if form.errors else 200,
    )


# --- placing accounts ---------------------------------------------------------------------------


class PlacementForm(forms.Form):
    file = forms.FileField(
        required=False,
        label="CSV file of accounts",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )


@require_http_methods(["GET", "HEAD", "POST"])
@accepts_uploads(UploadKind.IMPORT)
@client_required
def placements(request: HttpRequest) -> HttpResponse:
    creditor = _creditor(request)
    posted = request.method == "POST"
    form = PlacementForm(request.POST if posted else None, request.FILES if posted else None)
    status = 200
    if request.method == "POST":
        form.is_valid()  # the file itself is checked by ``uploads_from``, below
        try:
            upload = uploads_from(request, "file", UploadKind.IMPORT)[0]
            record = placement_import(creditor=creditor, upload=upload, actor=actor_of(request))
        except UploadRejected as exc:
            form.add_error("file", exc.message)
            status = exc.status
        except ServiceError as exc:
            form.add_error("file", exc.message)
            status = 400
        else:
            if record.lines_refused:
                messages.warning(
                    request,
                    f"{record.lines_placed} of {record.lines_total} lines placed; "
                    f"{record.lines_refused} refused: see why below.",
                )
            else:
                messages.success(request, f"All {record.lines_total} lines placed.")
            return HttpResponseRedirect(reverse("client:placement", args=[record.pk]))
    paginator = Paginator(placement_imports(creditor), 20)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "client/placements.html",
        {
            "creditor": creditor,
            "form": form,
            "page": page,
            "imports": [{"record": r, "amounts": placed_amounts_text(r)} for r in page.object_list],
            "columns": COLUMNS,
            "required": REQUIRED,
            "max_lines": MAX_LINES,
            "nav": "placements",
        },
        status=status,
    )


@require_http_methods(["GET", "HEAD"])
@client_required
def placement_detail(request: HttpRequest, import_id: int) -> HttpResponse:
    record = get_object_or_404(
        PlacementImport.objects.select_related("uploaded_by", "organization", "creditor"),
        pk=import_id,
        creditor=_creditor(request),
    )
    show = request.GET.get("show", "")
    lines = [line for line in record.report if show != "refused" or not line.get("ok")]
    return render(
        request,
        "client/placements_detail.html",
        {
            "creditor": record.creditor,
            "record": record,
            "lines": lines,
            "show": show,
            "amounts": placed_amounts_text(record),
            "nav": "placements",
        },
    )


@require_http_methods(["GET", "HEAD"])
@client_required
def placements_template(request: HttpRequest) -> HttpResponse:
    _creditor(request)
    response = HttpResponse(TEMPLATE_CSV, content_type="text/csv; charset=utf-8")
    protect_download(response, filename="placement-template.csv")
    return response


# --- recovery reports ---------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD"])
@client_required
def reports(request: HttpRequest) -> HttpResponse:
    creditor = _creditor(request)
    months = recovery_by_month(creditor)
    sections = []
    for index, (currency, rows) in enumerate(months.items()):
        table_id = f"months-{currency.lower()}"
        sections.append(
            {
                "currency": currency,
                "rows": rows,
                "total": totals(rows, currency),
                "table_id": table_id,
                "chart": chart_svg(rows, chart_id=f"chart-{currency.lower()}", table_id=table_id),
                "first": index == 0,
            }
        )
    paginator = Paginator(accounts_of(creditor), ACCOUNTS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    rate = creditor.commission_rate
    return render(
        request,
        "client/reports.html",
        {
            "creditor": creditor,
            "sections": sections,
            "accounts": [account_row(customer, rate) for customer in page.object_list],
            "account_totals": account_totals(creditor),
            "page": page,
            "rate": commission_of(Decimal(0), rate, creditor.organization.default_currency).rate_percent,
            "nav": "reports",
        },
    )


def _filename(creditor: Creditor, what: str, request: HttpRequest) -> str:
    today = creditor.organization.today()
    return f"recovery-{what}-{creditor.code}-{today:%Y-%m-%d}.csv"


@require_http_methods(["GET", "HEAD"])
@client_required
def reports_monthly_csv(request: HttpRequest) -> HttpResponse:
    creditor = _creditor(request)
    response = HttpResponse(monthly_csv(creditor), content_type="text/csv; charset=utf-8")
    protect_download(response, filename=_filename(creditor, "monthly", request))
    return response


@require_http_methods(["GET", "HEAD"])
@client_required
def reports_accounts_csv(request: HttpRequest) -> StreamingHttpResponse:
    creditor = _creditor(request)
    response = StreamingHttpResponse(accounts_csv_lines(creditor), content_type="text/csv; charset=utf-8")
    protect_download(response, filename=_filename(creditor, "accounts", request))
    return response
