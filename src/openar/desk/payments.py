"""The desk's payments: every payment of the organization, one payment whole (what it was
for, what it paid, its provider's events and its refunds), refunding it, applying its
unapplied credit, recording a payment received outside the portal, and the export for the
ERP. Pages read; the services of ``openar.payments`` do every change.

Unapplied credit
----------------
The list, its "with unapplied credit" filter, the total at its top and the export need the
credit of many payments at once, so ``with_credit`` computes it in SQL with the rule of
``openar.payments.online.unapplied`` (which the payment's own page calls): only a succeeded
payment holds credit, and it is what the payment brought for invoices (its amount less the
method's fee) less what was refunded less its active allocations, never below zero.

The export: ``/desk/payments/export.csv``
-----------------------------------------
One row per application of money, for an ERP to import. The columns, in this order:

``payment_id``
    The payment's id in OpenAR: the key that ties the rows of one payment together.
``received_at_utc``
    When the money was received (ISO 8601, UTC, to the second).
``settled_at_utc``
    When an online payment settled at its provider; empty for a payment recorded by staff
    (the money was in hand) and for one that has not settled.
``customer_number``, ``customer_name``
``amount``
    What the payment is for in all, the method's fee included.
``fee``
    The method's convenience fee (negative: a discount given for the method).
``refunded``
    What has been given back so far.
``currency``
    ISO 4217 code.
``method``
    card, ach, eft, wire, check, paypal, cash or other.
``state``
    pending, processing, succeeded, failed, returned or refunded (refunded in full; a partly
    refunded payment stays succeeded, with ``refunded`` above zero).
``reference``, ``provider`` (empty: recorded by staff), ``provider_payment_id``
``invoice_number``
    The invoice the row applies money to; ``UNAPPLIED`` for the payment's unapplied credit;
    empty on the one row of a payment that has neither (pending, failed, refunded in full
    before it paid anything).
``applied_amount``
    The amount of the allocation, or the unapplied credit.
``applied_at_utc``
    When the allocation was made.
``reversed_at_utc``
    When the allocation was reversed (a returned payment, a refund): its amount no longer
    pays the invoice. A partly reversed allocation is reversed whole and followed by a new
    row for the part that stays.

The payment's columns repeat on each of its rows: an importer takes ``amount`` once per
``payment_id``; what a payment pays now is the sum of ``applied_amount`` over its rows without
``reversed_at_utc``, and its ``UNAPPLIED`` row is what it still holds. Amounts are plain
decimals with the currency's places ("1234.50", "1200" in yen): never floats, exponents or
thousands separators. Text cells starting with ``= + - @`` (or a tab or carriage return)
are prefixed with ``'`` so that a spreadsheet never runs them as a formula; amounts are not
text and keep their sign. ``?since=YYYY-MM-DD`` keeps the payments received on or after that
day, from 00:00 UTC (the file's own times are UTC). Rows come in payment id order, then in
the order the allocations were made, the ``UNAPPLIED`` row last: the same data always makes
the same file. The file is streamed, a chunk of payments at a time.
"""

from __future__ import annotations

import csv
import datetime
import re
import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Case, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_scopes import scope

from openar.billing.models import Invoice
from openar.billing.selectors import clean_search
from openar.core.errors import ServiceError
from openar.core.money import MoneyField, format_money, quantize
from openar.customers.models import Customer
from openar.desk.forms import CreditApplyForm, OnceForm, PaymentFilterForm, PaymentRecordForm, RefundForm
from openar.desk.security import _cell as formula_safe
from openar.payments.models import Allocation, Payment, ProviderEvent, Refund
from openar.payments.online import credit_apply, in_flight, payment_refund, unapplied
from openar.payments.providers.base import ProviderError
from openar.payments.services import AllocationInput, payment_record
from openar.tenants.access import Access, actor_of, require, staff_required
from openar.tenants.models import Organization
from openar.tenants.permissions import Perm

collector_required = require(Perm.DESK_COLLECT)
PAGE_SIZE = 50
# A form with a field per open invoice: the oldest ones, enough for any real remittance.
INVOICES_SHOWN = 100
EXPORT_CHUNK = 500
# Credit is compared in SQL, where SQLite computes in floating point: anything under half of
# the fourth decimal place (what the database stores) is no credit at all.
NO_CREDIT = Decimal("0.00005")
UNAPPLIED = "UNAPPLIED"
EXPORT_COLUMNS = (
    "payment_id",
    "received_at_utc",
    "settled_at_utc",
    "customer_number",
    "customer_name",
    "amount",
    "fee",
    "refunded",
    "currency",
    "method",
    "state",
    "reference",
    "provider",
    "provider_payment_id",
    "invoice_number",
    "applied_amount",
    "applied_at_utc",
    "reversed_at_utc",
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ONCE_PREFIX = "openar:desk:payment-form:"
ONCE_TTL = 24 * 3600
ALREADY_SENT = "That form was already sent (twice clicked?): this is what it did."
# What ServiceError.field names of payment_record are called in the desk's form.
_RECORD_FIELDS = {"received_at": "received_on"}


def _organization(request: HttpRequest) -> Organization:
    organization: Organization = request.organization  # type: ignore[attr-defined]
    return organization


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


def _claim(form: OnceForm) -> bool:
    """Take the form's one-time token: True the first time (or for a form sent without
    one), False when the same form was already sent. The shared cache's ``add`` is atomic,
    so two requests racing with one token cannot both win."""
    token = form.cleaned_data.get("once") or ""
    return not token or cache.add(f"{ONCE_PREFIX}{token}", 1, timeout=ONCE_TTL)


def _release(form: OnceForm) -> None:
    """Give the token back when the service refused and changed nothing: the same form,
    corrected, may be sent again."""
    token = form.cleaned_data.get("once") or ""
    if token:
        cache.delete(f"{ONCE_PREFIX}{token}")


# --- unapplied credit and states ----------------------------------------------------------------


def with_credit(payments: QuerySet[Payment], *, credit_only: bool = False) -> QuerySet[Payment]:
    """``payments`` annotated with ``credit``: the rule of ``online.unapplied``, in SQL (read it
    through ``credit_of``, which rounds it to the currency and never goes below zero).
    ``credit_only``: only the payments that hold some."""
    active = (
        Allocation.objects.filter(payment=OuterRef("pk"), reversed_at__isnull=True)
        .order_by()
        .values("payment")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    annotated = payments.annotate(
        applied_total=Coalesce(
            Subquery(active, output_field=MoneyField()), Value(Decimal(0)), output_field=MoneyField()
        ),
        credit=Case(
            When(
                state=Payment.State.SUCCEEDED,
                then=F("amount")
                - F("fee_amount")
                - F("refunded_amount")
                - F("returned_amount")
                - F("applied_total"),
            ),
            default=Value(Decimal(0)),
            output_field=MoneyField(),
        ),
    )
    return annotated.filter(credit__gt=NO_CREDIT) if credit_only else annotated


def credit_of(payment: Payment) -> Decimal:
    """The ``with_credit`` annotation in the currency's unit, never below zero."""
    value = getattr(payment, "credit", None)
    if value is None:
        return Decimal(0)
    return max(Decimal(0), quantize(Decimal(str(value)), payment.currency))


def state_label(payment: Payment) -> str:
    """The state as staff read it: a bank debit between accepted and arrived is "in progress",
    and a payment refunded in part is still a payment that went through."""
    if payment.state == Payment.State.PROCESSING:
        return "Bank payment in progress"
    if payment.state == Payment.State.SUCCEEDED and payment.refunded_amount > 0:
        return "Partly refunded"
    return str(payment.get_state_display())


def state_badge(payment: Payment) -> str:
    if payment.state == Payment.State.SUCCEEDED:
        return "badge--partial" if payment.refunded_amount > 0 else "badge--paid"
    if payment.state in (Payment.State.PENDING, Payment.State.PROCESSING):
        return "badge--processing"
    if payment.state in (Payment.State.FAILED, Payment.State.RETURNED):
        return "badge--late"
    return "badge--partial"  # refunded


def _credit_totals() -> list[dict[str, object]]:
    """The organization's unapplied credit, per currency: summed here in Decimal, each
    payment's credit rounded first (SQLite would sum in floating point)."""
    totals: dict[str, tuple[Decimal, int]] = {}
    holding = with_credit(Payment.objects.filter(state=Payment.State.SUCCEEDED), credit_only=True)
    for payment in holding.only(
        "currency", "state", "amount", "fee_amount", "refunded_amount", "returned_amount"
    ):
        total, count = totals.get(payment.currency, (Decimal(0), 0))
        totals[payment.currency] = (total + credit_of(payment), count + 1)
    return [
        {"currency": currency, "total": format_money(total, currency), "count": count}
        for currency, (total, count) in sorted(totals.items())
    ]


# --- the list -----------------------------------------------------------------------------------


def _filtered(data: Mapping[str, Any]) -> QuerySet[Payment]:
    payments = with_credit(Payment.objects.select_related("customer"), credit_only=bool(data.get("credit")))
    search = clean_search(data.get("q"))
    if search:
        payments = payments.filter(
            Q(customer__name__icontains=search)
            | Q(customer__number__icontains=search)
            | Q(reference__icontains=search)
            | Q(provider_payment_id__icontains=search)
        )
    state = data.get("state") or ""
    if state == "succeeded":
        payments = payments.filter(state=Payment.State.SUCCEEDED, refunded_amount=0)
    elif state == "partly_refunded":
        payments = payments.filter(state=Payment.State.SUCCEEDED, refunded_amount__gt=0)
    elif state in Payment.State.values:
        payments = payments.filter(state=state)
    if data.get("method"):
        payments = payments.filter(method=data["method"])
    if data.get("source") == "online":
        payments = payments.exclude(provider="")
    elif data.get("source") == "staff":
        payments = payments.filter(provider="")
    return payments.order_by("-received_at", "-pk")


def _row(payment: Payment) -> dict[str, object]:
    credit = credit_of(payment)
    return {
        "payment": payment,
        "customer": payment.customer,
        "amount": format_money(payment.amount, payment.currency),
        "state": state_label(payment),
        "badge": state_badge(payment),
        "credit": format_money(credit, payment.currency) if credit else "",
        "refunded": format_money(payment.refunded_amount, payment.currency)
        if payment.refunded_amount
        else "",
    }


@require_safe
@staff_required
def payment_list(request: HttpRequest) -> HttpResponse:
    filters = PaymentFilterForm(request.GET)
    filters.is_valid()  # every field is optional; an invalid value is simply not applied
    data = filters.cleaned_data
    page = Paginator(_filtered(data), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "desk/payments.html",
        {
            "filters": filters,
            "page": page,
            "rows": [_row(payment) for payment in page.object_list],
            "credit_totals": _credit_totals(),
            "credit_only": bool(data.get("credit")),
            "filtered": any(data.get(name) for name in ("q", "state", "method", "source", "credit")),
            "nav": "payments",
        },
    )


# --- one payment --------------------------------------------------------------------------------


def _payment(payment_id: int) -> Payment:
    return get_object_or_404(
        Payment.objects.select_related("customer", "recorded_by", "contact"), pk=payment_id
    )


def _pending_refunds(payment: Payment) -> Decimal:
    amounts = payment.refunds.filter(state=Refund.State.PENDING).values_list("amount", flat=True)
    return sum((Decimal(str(amount)) for amount in amounts), Decimal(0))


def _unsent_refund(payment: Payment) -> Refund | None:
    """A refund recorded but never accepted by the provider (its call failed: no provider id
    yet). ``payment_refund`` sends exactly that one again, with its idempotency key, when
    asked for the same amount, and refuses any other refund until then."""
    if payment.state != Payment.State.SUCCEEDED or not payment.provider:
        return None
    return payment.refunds.filter(state=Refund.State.PENDING, provider_refund_id="").order_by("pk").first()


def _refundable(payment: Payment) -> Decimal:
    """What may still be refunded. ``payment_refund`` counts only refunds that went through;
    one still pending at the provider counts here too, so that a second click (or a second
    person) cannot ask the provider to give back more than was paid."""
    if payment.state != Payment.State.SUCCEEDED:
        return Decimal(0)
    left = payment.amount - payment.refunded_amount - payment.returned_amount - _pending_refunds(payment)
    return max(Decimal(0), quantize(left, payment.currency))


def _form_invoices(
    customer: Customer, currency: str, posted: Mapping[str, Any], prefix: str
) -> list[Invoice]:
    """The customer's open invoices in the currency, oldest due first (the first
    ``INVOICES_SHOWN``), plus any invoice of the customer an amount was posted for that is no
    longer open: the form then says so next to it instead of dropping the amount unseen."""
    invoices = list(
        Invoice.objects.filter(customer=customer, currency=currency, open_amount__gt=0).order_by(
            "due_date", "issue_date", "pk"
        )[:INVOICES_SHOWN]
    )
    shown = {invoice.pk for invoice in invoices}
    field = re.compile(rf"{re.escape(prefix + '-' if prefix else '')}invoice_(\d{{1,18}})")
    posted_ids = {
        int(match.group(1))
        for key, value in posted.items()
        if (match := field.fullmatch(key)) and str(value).strip()
    } - shown
    if posted_ids:
        invoices += list(
            Invoice.objects.filter(customer=customer, currency=currency, pk__in=posted_ids).order_by("pk")
        )
    return invoices


def _invoice_rows(form: CreditApplyForm | PaymentRecordForm) -> list[dict[str, object]]:
    """Each invoice of an amounts form with its field, and what is already on its way to it."""
    flying = in_flight(invoice.pk for invoice in form.invoices)
    return [
        {
            "invoice": invoice,
            "field": field,
            "open": format_money(invoice.open_amount, invoice.currency),
            "processing": format_money(flying[invoice.pk], invoice.currency) if invoice.pk in flying else "",
        }
        for invoice, field in form.invoice_fields()
    ]


def _detail(
    request: HttpRequest,
    payment_id: int,
    *,
    refund_form: RefundForm | None = None,
    apply_form: CreditApplyForm | None = None,
    status: int = 200,
) -> HttpResponse:
    payment = _payment(payment_id)  # as it is now, after whatever an action did or refused
    currency = payment.currency
    credit = unapplied(payment)
    refundable = _refundable(payment)
    can_collect = _access(request).can(Perm.DESK_COLLECT)
    unsent = _unsent_refund(payment)
    retry = None
    if unsent is not None and can_collect:
        # The refund form's fields, filled with that refund: the service sends it again.
        retry = {
            "amount": format(quantize(unsent.amount, currency), "f"),
            "reason": unsent.reason or "Sent again",
            "once": uuid.uuid4().hex,
        }
    # While one refund could not be sent, no other may be asked for: only that one, again.
    if refund_form is None and can_collect and refundable > 0 and unsent is None:
        refund_form = RefundForm(prefix="refund", currency=currency, initial={"amount": refundable})
    if apply_form is None and can_collect and credit > 0:
        invoices = _form_invoices(payment.customer, currency, {}, "apply")
        apply_form = CreditApplyForm(prefix="apply", invoices=invoices, currency=currency)
    allocations = list(payment.allocations.select_related("invoice").order_by("created_at", "pk"))
    applied = sum((a.amount for a in allocations if a.reversed_at is None), Decimal(0))
    return render(
        request,
        "desk/payments_detail.html",
        {
            "payment": payment,
            "customer": payment.customer,
            "state": state_label(payment),
            "badge": state_badge(payment),
            "credit": credit,
            "applied": applied,
            "refundable": refundable,
            "pending_refunds": _pending_refunds(payment),
            "targets": list(payment.targets.select_related("invoice").order_by("pk")),
            "allocations": allocations,
            "events": list(ProviderEvent.objects.filter(payment=payment).order_by("received_at", "pk")),
            "refunds": list(payment.refunds.select_related("created_by").order_by("created_at", "pk")),
            "refund_form": refund_form,
            "unsent_refund": unsent,
            "retry": retry,
            "apply_form": apply_form,
            "apply_rows": _invoice_rows(apply_form) if apply_form is not None else [],
            "can_collect": can_collect,
            "nav": "payments",
        },
        status=status,
    )


@require_safe
@staff_required
def payment_detail(request: HttpRequest, payment_id: int) -> HttpResponse:
    return _detail(request, payment_id)


@require_POST
@collector_required
def payment_refund_view(request: HttpRequest, payment_id: int) -> HttpResponse:
    payment = _payment(payment_id)
    form = RefundForm(request.POST, prefix="refund", currency=payment.currency)
    status = 400
    if form.is_valid():
        amount: Decimal = form.cleaned_data["amount"]
        limit = _refundable(payment)
        # With a refund that could not be sent, the limit counts it as pending and would
        # refuse sending it again: the service decides (that one again, or nothing else).
        if payment.state == Payment.State.SUCCEEDED and amount > limit and _unsent_refund(payment) is None:
            pending = _pending_refunds(payment)
            form.add_error(
                "amount",
                f"Refund at most {format_money(limit, payment.currency)}"
                + (
                    f": {format_money(pending, payment.currency)} is already being refunded."
                    if pending
                    else "."
                ),
            )
        elif not _claim(form):
            messages.info(request, ALREADY_SENT)
            return HttpResponseRedirect(reverse("desk:payment", args=[payment.pk]))
        else:
            try:
                refund = payment_refund(
                    payment=payment,
                    amount=amount,
                    reason=form.cleaned_data["reason"],
                    actor=actor_of(request),
                )
            except ServiceError as exc:
                _release(form)
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            except ProviderError as exc:
                # The provider's answer, not the person's input. The refund is recorded,
                # pending, and may have reached the provider: the token stays taken, and the
                # pending amount counts against any new refund. The page offers to send that
                # refund again (same idempotency key: the provider refunds it once).
                form.add_error(
                    None,
                    f"The payment provider did not answer as expected: {exc.message} The refund is "
                    "listed below as pending: check with the provider, then send it again from there.",
                )
                status = 502
            else:
                money = format_money(refund.amount, payment.currency)
                if refund.state == Refund.State.SUCCEEDED:
                    messages.success(request, f"Refunded {money}.")
                else:
                    messages.success(
                        request, f"Refund of {money} asked of {payment.provider}: done when they confirm it."
                    )
                return HttpResponseRedirect(reverse("desk:payment", args=[payment.pk]))
    return _detail(request, payment.pk, refund_form=form, status=status)


@require_POST
@collector_required
def credit_apply_view(request: HttpRequest, payment_id: int) -> HttpResponse:
    payment = _payment(payment_id)
    invoices = _form_invoices(payment.customer, payment.currency, request.POST, "apply")
    form = CreditApplyForm(request.POST, prefix="apply", invoices=invoices, currency=payment.currency)
    if form.is_valid():
        if not _claim(form):
            messages.info(request, ALREADY_SENT)
            return HttpResponseRedirect(reverse("desk:payment", args=[payment.pk]))
        try:
            applied = credit_apply(payment=payment, plan=form.invoice_amounts(), actor=actor_of(request))
        except ServiceError as exc:
            _release(form)
            form.add_error(None, exc.message)  # about the amounts together: shown above them
        else:
            parts = ", ".join(
                f"{invoice.number} ({format_money(part, payment.currency)})" for invoice, part in applied
            )
            messages.success(
                request, f"Applied to {parts}." if parts else "Nothing was applied: those invoices are paid."
            )
            return HttpResponseRedirect(reverse("desk:payment", args=[payment.pk]))
    return _detail(request, payment.pk, apply_form=form, status=400)


# --- recording a payment ------------------------------------------------------------------------


def _received_at(day: datetime.date, organization: Organization) -> datetime.datetime:
    """A received date as a moment: now when it is today (the list is newest first), else
    noon where the organization is (the same calendar day in UTC, for the export)."""
    if day == organization.today():
        return timezone.now()
    return datetime.datetime.combine(day, datetime.time(12), tzinfo=organization.tz)


def _duplicate(customer: Customer, data: Mapping[str, Any]) -> Payment | None:
    """A payment recorded by staff for the same customer, amount, method and day (and
    reference, when one is given): most likely the same cheque entered twice, or the form
    sent twice. Staff confirm before a second one is recorded."""
    organization = customer.organization
    start = datetime.datetime.combine(data["received_on"], datetime.time.min, tzinfo=organization.tz)
    same = Payment.objects.filter(
        customer=customer,
        provider="",
        method=data["method"],
        amount=data["amount"],
        received_at__gte=start,
        received_at__lt=start + datetime.timedelta(days=1),
    )
    if data["reference"].strip():
        same = same.filter(reference__iexact=data["reference"].strip())
    return same.order_by("-pk").first()


@require_http_methods(["GET", "HEAD", "POST"])
@collector_required
def payment_record_view(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    organization = _organization(request)
    posted = request.POST if request.method == "POST" else None
    form = PaymentRecordForm(
        posted,
        invoices=_form_invoices(customer, customer.currency, posted or {}, ""),
        currency=customer.currency,
        today=organization.today(),
    )
    duplicate = None
    if posted is not None and form.is_valid():
        data = form.cleaned_data
        duplicate = None if data["again"] else _duplicate(customer, data)
        if duplicate is not None:
            form.add_error(
                None,
                f"A {duplicate.get_method_display().lower()} of "
                f"{format_money(duplicate.amount, duplicate.currency)} received that day is already recorded"
                f"{' with reference ' + duplicate.reference if duplicate.reference else ''}.",
            )
        elif not _claim(form):
            messages.info(
                request, "That form was already sent (twice clicked?): the payment is recorded once."
            )
            return HttpResponseRedirect(reverse("desk:payments") + f"?q={quote(customer.number)}")
        else:
            allocations = form.allocations()
            try:
                payment = payment_record(
                    customer=customer,
                    amount=data["amount"],
                    method=data["method"],
                    received_at=_received_at(data["received_on"], organization),
                    currency=customer.currency,
                    reference=data["reference"],
                    allocations=None
                    if allocations is None
                    else [AllocationInput(invoice, amount) for invoice, amount in allocations],
                    actor=actor_of(request),
                )
            except ServiceError as exc:
                _release(form)
                name = _RECORD_FIELDS.get(exc.field or "", exc.field)
                form.add_error(name if name in form.fields else None, exc.message)
            else:
                messages.success(request, _recorded(payment))
                return HttpResponseRedirect(reverse("desk:payment", args=[payment.pk]))
    return render(
        request,
        "desk/payments_record.html",
        {
            "customer": customer,
            "form": form,
            "invoice_rows": _invoice_rows(form),
            "duplicate": duplicate,
            "nav": "customers",
        },
        status=400 if form.errors else 200,
    )


def _recorded(payment: Payment) -> str:
    currency = payment.currency
    parts = ", ".join(
        f"{a.invoice.number} ({format_money(a.amount, currency)})"
        for a in payment.allocations.select_related("invoice").order_by("pk")
    )
    text = f"Recorded the {payment.get_method_display().lower()} of {format_money(payment.amount, currency)}"
    text += f", applied to {parts}." if parts else "."
    credit = unapplied(payment)
    if credit > 0:
        text += f" {format_money(credit, currency)} is kept as unapplied credit."
    return text


# --- the export ---------------------------------------------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


def _utc(moment: datetime.datetime | None) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds") if moment else ""


def _amount(value: Decimal, currency: str) -> str:
    return format(quantize(Decimal(str(value)), currency), "f")


def export_rows(payment: Payment) -> list[list[str]]:
    """The export's rows of one payment (annotated by ``with_credit``, its allocations
    prefetched with their invoices)."""
    currency = payment.currency
    customer = payment.customer
    head = [
        str(payment.pk),
        _utc(payment.received_at),
        _utc(payment.settled_at),
        formula_safe(customer.number),
        formula_safe(customer.name),
        _amount(payment.amount, currency),
        _amount(payment.fee_amount, currency),
        _amount(payment.refunded_amount, currency),
        currency,
        payment.method,
        payment.state,
        formula_safe(payment.reference),
        formula_safe(payment.provider),
        formula_safe(payment.provider_payment_id),
    ]
    rows = [
        [
            *head,
            formula_safe(allocation.invoice.number),
            _amount(allocation.amount, currency),
            _utc(allocation.created_at),
            _utc(allocation.reversed_at),
        ]
        for allocation in payment.allocations.all()
    ]
    credit = credit_of(payment)
    if credit > 0:
        rows.append([*head, UNAPPLIED, _amount(credit, currency), "", ""])
    return rows or [[*head, "", "", "", ""]]


def _export(organization: Organization, since: datetime.date | None) -> Iterator[str]:
    """The CSV, a chunk of payments at a time. Each chunk is read inside the organization's
    scope, entered here: the response is streamed after the view (and the request's scope)
    has returned. Chunks follow the payment id, which never changes, so a payment that
    settles while the file streams (its received time moves) is neither lost nor doubled."""
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    after = 0
    while True:
        with scope(organization=organization):
            payments = with_credit(Payment.objects.select_related("customer").filter(pk__gt=after))
            if since is not None:
                start = datetime.datetime.combine(since, datetime.time.min, tzinfo=datetime.UTC)
                payments = payments.filter(received_at__gte=start)
            allocations = Allocation.objects.select_related("invoice").order_by("pk")
            chunk = list(
                payments.prefetch_related(Prefetch("allocations", queryset=allocations)).order_by("pk")[
                    :EXPORT_CHUNK
                ]
            )
            lines = [writer.writerow(row) for payment in chunk for row in export_rows(payment)]
        if lines:
            yield "".join(lines)
        if len(chunk) < EXPORT_CHUNK:
            return
        after = chunk[-1].pk


@require_safe
@staff_required
def payments_export(request: HttpRequest) -> HttpResponseBase:
    since_text = request.GET.get("since", "").strip()
    since = None
    if since_text:
        try:
            since = datetime.date.fromisoformat(since_text) if _DATE.fullmatch(since_text) else None
        except ValueError:
            since = None
        if since is None:
            return HttpResponse(
                "since must be a date written YYYY-MM-DD.\n",
                status=400,
                content_type="text/plain; charset=utf-8",
            )
    organization = _organization(request)
    response = StreamingHttpResponse(_export(organization, since), content_type="text/csv; charset=utf-8")
    name = f"payments-{organization.slug}{'-since-' + since.isoformat() if since else ''}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response
