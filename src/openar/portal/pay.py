"""Paying from the portal.

The customer chooses what to pay (everything past due, the invoices they tick, or an amount
applied oldest-first) and how (card or bank account, at the organization's provider), reviews
the total with the method's fee or discount, and confirms: the payment is recorded (pending,
``online.payment_start``) and the customer goes to the provider's page. They come back to
the payment's own page, which says where it stands and, once paid, offers the receipt.

Who may pay: a full sign-in; a magic-link session, only what its link shows (the page offers
only those invoices, and a choice reaching further is refused); staff viewing as the
customer may look at every step but not pay, unless their organization lets them act for
the customer.

No JavaScript: the review is a POST (``step=review``) that renders the choice back as hidden
fields with a one-time ``checkout_token``; confirming (``step=confirm``) with that token makes
one payment however many times it is sent (a double click, a reload): the token finds the
payment already made (``online.payment_resume``) before anything is chosen again.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_http_methods, require_safe

from openar.billing import selectors
from openar.billing.models import Invoice
from openar.billing.presenters import short_date
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.core.money import format_money, parse_amount, quantize
from openar.customers.models import Contact, Customer
from openar.payments.credit import credit_available, credit_use
from openar.payments.methods import METHOD_LABELS, methods_for
from openar.payments.models import Payment, PaymentSettings, PaymentTarget
from openar.payments.online import (
    IN_FLIGHT,
    PayLine,
    choose_lines,
    in_flight,
    method_fee,
    not_payable_now,
    payable,
    payment_resume,
    payment_return,
    payment_settings,
    payment_start,
    short_paid,
    short_pay_check,
    unapplied,
)
from openar.payments.providers.base import ProviderError, ProviderUnavailable
from openar.payments.receipts import (
    RECEIPT_STATES,
    fee_label,
    receipt_filename,
    receipt_for,
    render_receipt_pdf,
)
from openar.tenants.access import Access, actor_of, customer_required
from openar.tenants.permissions import Perm

MODES = ("past_due", "invoices", "amount")
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


# --- what can be paid ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """An open invoice as the pay page offers it: what is open, what payments in flight
    already cover, and what is left to pay now."""

    invoice: Invoice
    flying: Decimal
    payable: Decimal
    days_late: int
    disputed: Decimal = Decimal(0)  # held by open disputes: not payable until they are resolved

    @property
    def past_due(self) -> bool:
        return self.days_late > 0


@dataclass
class Choice:
    """What the customer asked for, as typed (so that a refused form shows it back)."""

    mode: str = ""
    invoice_ids: list[int] = field(default_factory=list)
    amounts: dict[int, str] = field(default_factory=dict)
    amount: str = ""
    method: str = ""
    reason: str = ""


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


def _customer(access: Access) -> Customer:
    assert access.customer is not None  # noqa: S101  (PORTAL_VIEW is only granted with a customer)
    return access.customer


def _rows(access: Access, customer: Customer) -> list[Row]:
    """The open invoices this session may pay, oldest due first: in the customer's currency
    (the one its payments are made in), and for a magic-link session only what its link
    shows."""
    today = customer.organization.today()
    invoices = list(
        selectors.invoices_visible(
            customer, today=today, link_scope=access.link_scope, invoice_id=access.invoice_id
        )
        .filter(open_amount__gt=0, currency=customer.currency)
        .order_by("due_date", "pk")
    )
    ids = [invoice.pk for invoice in invoices]
    flying, held = in_flight(ids), not_payable_now(ids)
    return [
        Row(
            invoice=invoice,
            flying=flying.get(invoice.pk, Decimal(0)),
            payable=max(Decimal(0), invoice.open_amount - held.get(invoice.pk, Decimal(0))),
            days_late=max(0, (today - invoice.due_date).days),
            disputed=held.get(invoice.pk, Decimal(0)) - flying.get(invoice.pk, Decimal(0)),
        )
        for invoice in invoices
    ]


def _methods(customer: Customer) -> dict[str, str]:
    return methods_for(customer.organization)


def _fee_note(settings_: PaymentSettings, method: str, currency: str) -> str:
    """ "A fee of 2.5% + $0.30 applies." for the method, from the organization's fees."""
    rule = (settings_.fees or {}).get(method) or {}
    try:
        percent = Decimal(str(rule.get("percent", "0") or "0"))
        fixed = Decimal(str(rule.get("fixed", "0") or "0"))
    except InvalidOperation:
        return ""
    parts = []
    if percent:
        parts.append(f"{abs(percent).normalize():f}%")
    if fixed:
        parts.append(format_money(abs(fixed), currency))
    if not parts:
        return ""
    kind = "fee" if (percent or fixed) > 0 else "discount"
    return f"A {kind} of {' + '.join(parts)} applies."


def _reasons(settings_: PaymentSettings) -> list[tuple[str, str]]:
    return [(str(code), str(label)) for code, label in settings_.short_pay_reasons or []]


def _decimal(text: str, field_: str, currency: str) -> Decimal:
    """An amount as the customer typed it, read by the one parser the desk uses too."""
    try:
        return parse_amount(text, currency)
    except ValueError as exc:
        raise ServiceError(str(exc), field=field_) from None


def _parse(data: QueryDict, rows: list[Row]) -> Choice:
    ids = {row.invoice.pk for row in rows}
    chosen = []
    for value in data.getlist("invoice"):
        if value.isdecimal() and value.isascii() and int(value) not in chosen:
            chosen.append(int(value))
    return Choice(
        mode=data.get("mode", ""),
        invoice_ids=chosen,
        amounts={pk: data.get(f"amount_{pk}", "")[:40] for pk in ids if f"amount_{pk}" in data},
        amount=data.get("amount", "")[:40],
        method=data.get("method", ""),
        reason=data.get("short_pay_reason", "")[:40],
    )


def _default_choice(
    rows: list[Row], methods: dict[str, str], wanted: str | None, mode: str = "", amount: str = ""
) -> Choice:
    """Everything past due when something is; the invoice asked for (``?invoice=``); an
    amount (``?mode=amount&amount=``, the pay page's "pay part")."""
    choice = Choice(mode="invoices", method=next(iter(methods), ""))
    if any(row.past_due and row.payable > 0 for row in rows):
        choice.mode = "past_due"
    if mode == "amount":
        choice.mode, choice.amount = "amount", amount[:40]
    payable = [row.invoice.pk for row in rows if row.payable > 0]
    if wanted and wanted.isdecimal() and wanted.isascii() and int(wanted) in payable:
        choice.mode, choice.invoice_ids = "invoices", [int(wanted)]
    elif len(payable) == 1:  # one invoice to pay (a link to it): ticked, whichever way is chosen
        choice.invoice_ids = payable
    return choice


def _lines(customer: Customer, rows: list[Row], choice: Choice) -> list[PayLine]:
    """The service's lines for the choice, kept to what this session may pay."""
    today = customer.organization.today()
    visible = {row.invoice.pk for row in rows}
    if choice.mode == "past_due":
        # Explicit ids, leaving out what payments in flight already cover in full: "everything
        # past due" must still work while last week's bank payment settles.
        ids = [row.invoice.pk for row in rows if row.past_due and row.payable > 0]
        if not ids:
            raise ServiceError("Nothing past due is left to pay.", field="mode")
        return choose_lines(customer, today, invoice_ids=ids)
    if choice.mode == "amount":
        if not choice.amount.strip():
            raise ServiceError("Enter the amount you would like to pay.", field="amount")
        lines = choose_lines(customer, today, amount=_decimal(choice.amount, "amount", customer.currency))
        if any(line.invoice.pk not in visible for line in lines):
            limit = sum((row.payable for row in rows), Decimal(0))
            raise ServiceError(
                f"From this sign-in link you can pay up to {format_money(limit, customer.currency)}.",
                field="amount",
            )
        return lines
    if choice.mode == "invoices":
        if not choice.invoice_ids:
            raise ServiceError("Choose at least one invoice to pay.", field="invoices")
        if any(pk not in visible for pk in choice.invoice_ids):
            raise ServiceError("One of the invoices chosen is not open any more.", field="invoices")
        for row in rows:
            if row.invoice.pk in choice.invoice_ids and row.payable <= 0:
                raise ServiceError(
                    f"Invoice {row.invoice.number} already has a payment on its way.", field="invoices"
                )
        amounts = {
            pk: _decimal(text, "amounts", customer.currency)
            for pk, text in choice.amounts.items()
            if pk in choice.invoice_ids and text.strip()
        }
        return choose_lines(customer, today, invoice_ids=choice.invoice_ids, amounts=amounts)
    raise ServiceError("Choose what to pay.", field="mode")


def _validated(customer: Customer, rows: list[Row], choice: Choice, methods: dict[str, str]) -> list[PayLine]:
    """The lines, checked the way ``payment_start`` will check them, so that the review
    never shows a payment the confirm would refuse."""
    lines = _lines(customer, rows, choice)
    short_pay_check(
        payment_settings(customer.organization),
        lines,
        choice.reason,
        organization=customer.organization,
        hint=" Choose the invoices to pay instead." if choice.mode == "amount" else "",
        field="amount" if choice.mode == "amount" else "amounts",
    )
    if choice.method not in methods:
        raise ServiceError("Choose how you would like to pay.", field="method")
    return lines


def _field_of(exc: ServiceError, choice: Choice) -> str:
    """Where the message goes on the page: next to the control the customer used."""
    name = exc.field or "form"
    if choice.mode == "amount" and name in ("amounts", "invoices"):
        return "amount"
    if choice.mode == "past_due" and name in ("amounts", "invoices"):
        return "mode"
    return name


# --- pages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Door:
    """Where the pay pages are mounted: the portal (``/portal/pay/``) or the login-free pay
    page of a pay-page link (``/pay/``), which sees nothing else of the account. The same
    views serve both; the templates extend the door's base and link to its own pages."""

    base: str
    pay: str
    payment: str
    receipt: str
    home: str
    autopay: str
    promise: str
    plan: str


PORTAL_DOOR = Door(
    base="portal/base.html",
    pay="portal:pay",
    payment="portal:payment",
    receipt="portal:payment_receipt",
    home="portal:overview",
    autopay="portal:autopay",
    promise="portal:promise",
    plan="portal:plan",
)
PAY_DOOR = Door(
    base="pay/base.html",
    pay="pay:checkout",
    payment="pay:payment",
    receipt="pay:payment_receipt",
    home="pay:home",
    autopay="",  # saving a method for autopay is the portal's (a full account's) business
    promise="pay:promise",
    plan="pay:plan",
)


def door_of(access: Access) -> Door:
    return PORTAL_DOOR if access.can(Perm.PORTAL_VIEW) else PAY_DOOR


def _common(access: Access, customer: Customer) -> dict[str, object]:
    return {
        "customer": customer,
        "access": access,
        "full": "portal.full" in access.perm_names,
        "nav": "",
        "door": door_of(access),
    }


def _choose(
    request: HttpRequest,
    access: Access,
    customer: Customer,
    rows: list[Row],
    methods: dict[str, str],
    choice: Choice,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    settings_ = payment_settings(customer.organization)
    currency = customer.currency
    past_due = [row for row in rows if row.past_due and row.payable > 0]
    items = [
        {
            "id": row.invoice.pk,
            "number": row.invoice.number,
            "due": short_date(row.invoice.due_date),
            "late": f"{row.days_late} day{'s' if row.days_late != 1 else ''} late" if row.past_due else "",
            "open": format_money(row.invoice.open_amount, currency),
            "processing": format_money(row.flying, currency) if row.flying else "",
            "disputed": format_money(row.disputed, currency) if row.disputed > 0 else "",
            "payable": format_money(row.payable, currency),
            "can_pay": row.payable > 0,
            "checked": row.invoice.pk in choice.invoice_ids,
            "amount": choice.amounts.get(row.invoice.pk) or f"{quantize(row.payable, currency)}",
        }
        for row in rows
    ]
    context = {
        **_common(access, customer),
        "items": items,
        "choice": choice,
        "errors": errors or {},
        "past_due_total": format_money(sum((row.payable for row in past_due), Decimal(0)), currency),
        "past_due_count": len(past_due),
        "any_payable": any(row.payable > 0 for row in rows),
        "allow_partial": settings_.allow_partial,
        "reasons": _reasons(settings_) if settings_.allow_partial else [],
        "methods": [
            {"value": method, "label": METHOD_LABELS[method], "fee": _fee_note(settings_, method, currency)}
            for method in methods
        ],
    }
    return render(request, "portal/pay.html", context, status=status)


def _review(
    request: HttpRequest,
    access: Access,
    customer: Customer,
    choice: Choice,
    lines: list[PayLine],
    notice: str = "",
    status: int = 200,
) -> HttpResponse:
    settings_ = payment_settings(customer.organization)
    currency = customer.currency
    total = sum((line.amount for line in lines), Decimal(0))
    credit = min(credit_available(customer), total)
    fee = method_fee(settings_, choice.method, total - credit, currency) if total > credit else Decimal(0)
    reason = dict(_reasons(settings_)).get(choice.reason, "") if short_paid(lines) else ""
    context = {
        **_common(access, customer),
        "choice": choice,
        "lines": [
            {
                "number": line.invoice.number,
                "due": short_date(line.invoice.due_date),
                "amount": format_money(line.amount, currency),
                "left": format_money(line.invoice.open_amount - line.amount, currency),
                "partial": line.partial,
            }
            for line in lines
        ],
        "amounts": [(pk, text) for pk, text in choice.amounts.items() if pk in choice.invoice_ids],
        "total": format_money(total, currency),
        "fee": format_money(fee, currency) if fee else "",
        "fee_label": fee_label(fee, METHOD_LABELS.get(choice.method, choice.method)),
        "credit": format_money(credit, currency) if credit else "",
        "grand": format_money(total - credit + fee, currency),
        "grand_value": f"{total - credit + fee}",
        "by_credit_only": total <= credit,
        "method_label": METHOD_LABELS.get(choice.method, choice.method),
        "reason": reason,
        "checkout_token": secrets.token_urlsafe(24),
        "notice": notice,
    }
    return render(request, "portal/pay_review.html", context, status=status)


def _payer(request: HttpRequest, access: Access, customer: Customer) -> Contact | None:
    """The contact paying: the magic link's, or the signed-in user's contact (staff acting
    for the customer are nobody's contact; the receipt goes to the primary contact)."""
    if access.contact is not None:
        return access.contact
    if access.is_view_as or not request.user.is_authenticated:
        return None
    return Contact.objects.filter(customer=customer, user=request.user).first()


def _payment_url(access: Access, payment: Payment) -> str:
    return reverse(door_of(access).payment, args=[payment.pk])


@require_http_methods(["GET", "HEAD", "POST"])
@customer_required
def pay(request: HttpRequest) -> HttpResponse:
    return pay_page(request)


def pay_page(request: HttpRequest) -> HttpResponse:
    """Choose, review and confirm (the caller checked the door's permission)."""
    access = _access(request)
    customer = _customer(access)
    rows = _rows(access, customer)
    methods = _methods(customer)
    if not methods:
        return render(
            request,
            "portal/pay_unavailable.html",
            {**_common(access, customer), "organization": customer.organization},
            status=503,
        )
    if request.method != "POST":
        token = request.GET.get("checkout", "")
        if token:  # back from the provider (its return or cancel address)
            payment = _own_payments(access, customer).filter(checkout_token=token).first()
            if payment is not None:
                payment_return(payment=payment)  # providers that capture on return (PayPal)
                return HttpResponseRedirect(_payment_url(access, payment))
        choice = _default_choice(
            rows,
            methods,
            request.GET.get("invoice"),
            request.GET.get("mode", ""),
            request.GET.get("amount", ""),
        )
        return _choose(request, access, customer, rows, methods, choice)
    choice = _parse(request.POST, rows)
    step = request.POST.get("step", "")
    if step == "edit":
        return _choose(request, access, customer, rows, methods, choice)
    if step == "confirm":
        return _confirm(request, access, customer, rows, methods, choice)
    try:
        lines = _validated(customer, rows, choice, methods)
    except ServiceError as exc:
        errors = {_field_of(exc, choice): exc.message}
        return _choose(request, access, customer, rows, methods, choice, errors, status=400)
    return _review(request, access, customer, choice, lines)


def _confirm(
    request: HttpRequest,
    access: Access,
    customer: Customer,
    rows: list[Row],
    methods: dict[str, str],
    choice: Choice,
) -> HttpResponse:
    if access.read_only:
        errors = {"form": "You are viewing the portal as the customer: nothing can be paid from here."}
        return _choose(request, access, customer, rows, methods, choice, errors, status=403)
    token = request.POST.get("checkout_token", "")
    if not TOKEN.fullmatch(token):
        errors = {"form": "This payment form has expired; review your payment again."}
        return _choose(request, access, customer, rows, methods, choice, errors, status=400)
    made = Payment.objects.filter(customer=customer, checkout_token=token).first()
    if made is not None and made.state not in IN_FLIGHT:
        return HttpResponseRedirect(_payment_url(access, made))  # a reload after it ended: show it
    back = f"{settings.SITE_URL}{reverse(door_of(access).pay)}?checkout={token}"
    try:
        with transaction.atomic():
            # One confirm of a customer at a time: the credit is used once and the payment
            # made once, together (a failure at the provider undoes both), however many
            # clicks and whoever else pays the account meanwhile.
            Customer.objects.select_for_update().filter(pk=customer.pk).first()
            if _paid_by_credit(customer, token):
                return HttpResponseRedirect(reverse(door_of(access).pay))
            started = payment_resume(
                customer=customer, checkout_token=token, return_url=back, cancel_url=back
            )
            if started is None:
                lines = _validated(customer, rows, choice, methods)
                if request.POST.get("expected", "") != f"{_grand(customer, choice, lines)}":
                    return _review(
                        request,
                        access,
                        customer,
                        choice,
                        lines,
                        notice="The amounts changed since you reviewed them. Check them, then pay.",
                        status=409,
                    )
                used, lines = credit_use(customer=customer, lines=lines, actor=actor_of(request))
                if not lines:  # the credit paid it all: nothing to charge
                    log_event(
                        "openar.payment.paid_by_credit",
                        organization=customer.organization,
                        obj=customer,
                        actor=actor_of(request),
                        data={"token": token, "amount": str(used)},
                    )
                    messages.success(
                        request,
                        f"Paid with the credit on your account ({format_money(used, customer.currency)}).",
                    )
                    return HttpResponseRedirect(reverse(door_of(access).pay))
                if used:
                    messages.info(
                        request,
                        f"{format_money(used, customer.currency)} of credit on your account was used first.",
                    )
                started = payment_start(
                    customer=customer,
                    lines=lines,
                    method=choice.method,
                    provider_name=methods[choice.method],
                    checkout_token=token,
                    return_url=back,
                    cancel_url=back,
                    contact=_payer(request, access, customer),
                    actor=actor_of(request),
                    short_pay_reason=choice.reason,
                )
    except ServiceError as exc:
        # The twin of a double click may have made the payment meanwhile: follow it.
        twin = Payment.objects.filter(customer=customer, checkout_token=token).first()
        if twin is not None:
            return HttpResponseRedirect(_payment_url(access, twin))
        errors = {_field_of(exc, choice): exc.message}
        return _choose(request, access, customer, rows, methods, choice, errors, status=400)
    except ProviderError as exc:
        message = exc.message
        if isinstance(exc, ProviderUnavailable):
            message = "The payment service could not be reached. Nothing was charged: try again later."
        return _choose(request, access, customer, rows, methods, choice, {"form": message}, status=502)
    return HttpResponseRedirect(started.redirect_url)


def _paid_by_credit(customer: Customer, token: str) -> bool:
    """This confirm was already paid by the customer's credit (a reload, a double click)."""
    from openar.core.models import AuditEvent

    return AuditEvent.objects.filter(
        organization=customer.organization, action="openar.payment.paid_by_credit", data__token=token
    ).exists()


def _grand(customer: Customer, choice: Choice, lines: list[PayLine]) -> Decimal:
    """What the review showed as the total to pay: the invoices, less the customer's
    credit, plus the method's fee (or less its discount) on the rest."""
    total = sum((line.amount for line in lines), Decimal(0))
    rest = total - min(credit_available(customer), total)
    if rest <= 0:
        return rest
    return rest + method_fee(payment_settings(customer.organization), choice.method, rest, customer.currency)


# --- the payment's page and receipt -------------------------------------------------------------


def _own_payments(access: Access, customer: Customer) -> QuerySet[Payment]:
    """The customer's payments; for a magic-link session only those its contact made."""
    payments = Payment.objects.filter(customer=customer)
    if access.is_narrow:
        payments = payments.filter(contact=access.contact)
    return payments


STATE_WORDS: dict[str, str] = {
    Payment.State.SUCCEEDED: "Paid, thank you",
    Payment.State.PROCESSING: "Bank payment in progress",
    Payment.State.PENDING: "Not finished yet",
    Payment.State.FAILED: "Not paid",
    Payment.State.RETURNED: "Returned",
    Payment.State.REFUNDED: "Refunded",
}


@require_safe
@customer_required
def payment(request: HttpRequest, payment_id: int) -> HttpResponse:
    return payment_page(request, payment_id)


def payment_page(request: HttpRequest, payment_id: int) -> HttpResponse:
    access = _access(request)
    customer = _customer(access)
    found = get_object_or_404(_own_payments(access, customer).select_related("contact"), pk=payment_id)
    currency = found.currency
    method = METHOD_LABELS.get(found.method, str(found.get_method_display()))
    paid_lines: list[dict[str, object]] = []
    if found.state in RECEIPT_STATES:
        receipt = receipt_for(found)
        paid_lines = [
            {
                "number": line.number,
                "id": line.invoice_id,
                "amount": format_money(line.paid, currency),
                "left": format_money(line.still_open, currency),
            }
            for line in receipt.lines
        ]
    targets = [
        {
            "number": target.invoice.number,
            "id": target.invoice_id,
            "amount": format_money(target.amount, currency),
        }
        for target in PaymentTarget.objects.filter(payment=found).select_related("invoice").order_by("pk")
    ]
    credit = unapplied(found)
    rest = Decimal(0)
    if found.state in (Payment.State.SUCCEEDED, Payment.State.PROCESSING):
        # What is still to pay after it (a part payment): the invoices it was for and what
        # else is past due, offered as a promise.
        today = customer.organization.today()
        still = selectors.invoices_visible(
            customer, today=today, link_scope=access.link_scope, invoice_id=access.invoice_id
        ).filter(open_amount__gt=0, currency=currency)
        paid_invoices = list(
            still.filter(Q(payment_targets__payment=found) | Q(due_date__lt=today)).distinct()
        )
        flying = in_flight(invoice.pk for invoice in paid_invoices)
        rest = sum((payable(invoice, flying) for invoice in paid_invoices), Decimal(0))
    context = {
        **_common(access, customer),
        "payment": found,
        "title": STATE_WORDS.get(found.state, found.get_state_display()),
        "method": method,
        "amount": format_money(found.amount, currency),
        "fee": format_money(found.fee_amount, currency) if found.fee_amount else "",
        "fee_label": fee_label(found.fee_amount, method),
        "refunded": format_money(found.refunded_amount, currency) if found.refunded_amount else "",
        "credit": format_money(credit, currency) if credit > 0 else "",
        "rest": format_money(rest, currency) if rest > 0 else "",
        "rest_value": f"{rest}",
        "paid_lines": paid_lines,
        "targets": targets,
        "receipt": found.state in RECEIPT_STATES,
        "resumable": found.state == Payment.State.PENDING
        and bool(found.checkout_token)
        and found.saved_method_id is None  # a charge to a saved method is never paid at a page
        and not access.read_only,
    }
    return render(request, "portal/pay_payment.html", context)


@require_safe
@customer_required
def receipt_pdf(request: HttpRequest, payment_id: int) -> HttpResponse:
    return receipt_download(request, payment_id)


def receipt_download(request: HttpRequest, payment_id: int) -> HttpResponse:
    """The receipt as a download, never shown inline (as every file the portal serves)."""
    access = _access(request)
    customer = _customer(access)
    found = get_object_or_404(_own_payments(access, customer).filter(state__in=RECEIPT_STATES), pk=payment_id)
    receipt = receipt_for(found)
    response = HttpResponse(render_receipt_pdf(receipt), content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(True, receipt_filename(receipt))
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
