"""Disputes in the customer portal.

- ``/portal/invoices/<id>/dispute/``: the lines of the invoice, each with a checkbox, a
  reason, the amount in question (the line's total unless changed) and a comment; a message
  and files (photos straight from a phone's camera, PDFs). Posting opens the dispute.
- ``/portal/disputes/``: the customer's disputes; ``/portal/disputes/<id>/``: one of them,
  with its lines, what was decided, its files and its conversation, where the customer adds
  a message or files, or withdraws it while it is open.

Who may: a full sign-in, for every invoice of the account; a magic-link session, for the
invoices its link shows (a dispute on another invoice is a 404, like the invoice itself).
Staff viewing as the customer see everything and change nothing unless their organization
lets them act for the customer. Every refusal shows the form again, with the message next to
the field and everything typed kept (files have to be chosen again: browsers never keep
them).
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from openar.billing import selectors as billing_selectors
from openar.billing.models import Invoice
from openar.core.errors import ServiceError
from openar.core.money import format_money, parse_amount, quantize
from openar.core.uploads import UploadKind, UploadRejected, accepts_uploads, uploads_from
from openar.customers.models import Contact, Customer
from openar.disputes.models import Dispute
from openar.disputes.presenters import dispute_view, line_rows
from openar.disputes.reasons import dispute_reasons
from openar.disputes.selectors import customer_disputes, invoice_disputes
from openar.disputes.services import (
    COMMENT_MAX,
    MAX_FILES,
    MESSAGE_MAX,
    LineClaim,
    disputable_on_line,
    dispute_comment,
    dispute_open,
    dispute_withdraw,
)
from openar.portal.messages import visible_messages
from openar.tenants.access import Access, actor_of, customer_required

READ_ONLY = "You are viewing the portal as the customer: nothing can be changed from here."
ACCEPT = "image/*,application/pdf"


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


def _customer(access: Access) -> Customer:
    assert access.customer is not None  # noqa: S101  (PORTAL_VIEW is only granted with a customer)
    return access.customer


def visible_invoices(access: Access) -> QuerySet[Invoice]:
    """The invoices this session may see, and so dispute."""
    customer = _customer(access)
    return billing_selectors.invoices_visible(
        customer,
        today=customer.organization.today(),
        link_scope=access.link_scope,
        invoice_id=access.invoice_id,
    )


def visible_disputes(access: Access) -> QuerySet[Dispute]:
    """The disputes this session may see: those of the invoices it may see."""
    return customer_disputes(_customer(access)).filter(invoice__in=visible_invoices(access))


def _contact(request: HttpRequest, access: Access) -> Contact | None:
    """The contact acting: the link's, or the signed-in user's (staff acting for the
    customer are no contact)."""
    if access.contact is not None:
        return access.contact
    if access.is_view_as or not request.user.is_authenticated:
        return None
    return Contact.objects.filter(customer=_customer(access), user=request.user).first()


def _common(access: Access, **extra: Any) -> dict[str, Any]:
    return {
        "customer": access.customer,
        "access": access,
        "full": "portal.full" in access.perm_names,
        "nav": "invoices",
        "accept": ACCEPT,
        "max_files": MAX_FILES,
        **extra,
    }


def _is_id(value: str) -> bool:
    return value.isascii() and value.isdecimal() and len(value) < 19


def _form_rows(invoice: Invoice, data: Any | None, errors: dict[str, str]) -> list[dict[str, Any]]:
    """Each line of the invoice as the form shows it, with what was typed (a refusal)."""
    busy = {
        line.invoice_line_id
        for dispute in invoice_disputes(invoice).filter(state__in=Dispute.OPEN_STATES)
        for line in dispute.lines.all()
    }
    chosen = set(data.getlist("line")) if data is not None else set()
    rows = []
    for line in invoice.lines.all():
        most = disputable_on_line(line, invoice.currency)
        key = str(line.pk)
        rows.append(
            {
                "id": line.pk,
                "description": line.description,
                "sku": line.sku,
                "quantity": line.quantity,
                "total": format_money(line.total, invoice.currency),
                "most": format_money(most, invoice.currency),
                "busy": line.pk in busy,
                "can": line.pk not in busy and most > 0,
                "checked": key in chosen,
                "reason": data.get(f"reason_{key}", "") if data is not None else "",
                "amount": data.get(f"amount_{key}", "")[:40] if data is not None else f"{most}",
                "comment": data.get(f"comment_{key}", "") if data is not None else "",
                "error_reason": errors.get(f"reason_{key}", ""),
                "error_amount": errors.get(f"amount_{key}", ""),
                "error_comment": errors.get(f"comment_{key}", ""),
            }
        )
    return rows


def _claims(data: Any, invoice: Invoice) -> list[LineClaim]:
    claims = []
    for value in data.getlist("line"):
        if not _is_id(value):
            raise ServiceError("One of the lines chosen is not on this invoice.", field="lines")
        reason = data.get(f"reason_{value}", "")
        if not _is_id(reason):
            raise ServiceError("Choose a reason for each line you dispute.", field=f"reason_{value}")
        try:
            amount = parse_amount(data.get(f"amount_{value}", ""), invoice.currency)
        except ValueError as exc:
            raise ServiceError(str(exc), field=f"amount_{value}") from None
        claims.append(LineClaim(int(value), int(reason), amount, data.get(f"comment_{value}", "")[:20_000]))
    return claims


def _new_page(
    request: HttpRequest,
    access: Access,
    invoice: Invoice,
    *,
    data: Any | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    rows = _form_rows(invoice, data, errors or {})
    return render(
        request,
        "portal/disputes_new.html",
        _common(
            access,
            invoice=invoice,
            rows=rows,
            any_line=any(row["can"] for row in rows),
            reasons=list(dispute_reasons(_customer(access).organization, active_only=True)),
            message=(data.get("message", "") if data is not None else "")[:20_000],
            token=(data.get("form_token", "") if data is not None else "") or secrets.token_urlsafe(24),
            errors=errors or {},
            comment_max=COMMENT_MAX,
            message_max=MESSAGE_MAX,
        ),
        status=status,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@customer_required
@accepts_uploads(UploadKind.ATTACHMENT, max_files=MAX_FILES)
def dispute_new(request: HttpRequest, invoice_id: int) -> HttpResponse:
    access = _access(request)
    invoice = get_object_or_404(visible_invoices(access), pk=invoice_id)
    if request.method != "POST":
        return _new_page(request, access, invoice)
    if access.read_only:
        return _new_page(request, access, invoice, data=request.POST, errors={"form": READ_ONLY}, status=403)
    try:
        claims = _claims(request.POST, invoice)
        files = uploads_from(
            request, "attachments", UploadKind.ATTACHMENT, required=False, max_files=MAX_FILES
        )
        dispute = dispute_open(
            invoice=invoice,
            lines=claims,
            contact=_contact(request, access),
            actor=actor_of(request),
            message=request.POST.get("message", "")[:20_000],
            attachments=files,
            form_token=request.POST.get("form_token", ""),
        )
    except UploadRejected as exc:
        errors = {"attachments": exc.message}
        return _new_page(request, access, invoice, data=request.POST, errors=errors, status=exc.status)
    except ServiceError as exc:
        field = exc.field or "form"
        if field.startswith("line_"):
            field = "lines"
        errors = {field: exc.message}
        return _new_page(request, access, invoice, data=request.POST, errors=errors, status=400)
    messages.success(
        request,
        f"Your dispute of {format_money(dispute.disputed_total, dispute.currency)} is sent. "
        f"We stop reminding you of it while we look into it.",
    )
    return HttpResponseRedirect(reverse("portal:dispute", args=[dispute.pk]))


@require_safe
@customer_required
def dispute_list(request: HttpRequest) -> HttpResponse:
    access = _access(request)
    rows = [
        {
            "id": dispute.pk,
            "invoice": dispute.invoice.number,
            "invoice_id": dispute.invoice_id,
            "opened": dispute.created_at,
            "total": format_money(dispute.disputed_total, dispute.currency),
            "state": dispute.state,
            "state_label": dispute.get_state_display(),
            "outcome": dispute.get_outcome_display() if dispute.outcome else "",
            "accepted": format_money(dispute.accepted_amount, dispute.currency)
            if dispute.accepted_amount
            else "",
        }
        for dispute in visible_disputes(access)[:200]
    ]
    return render(request, "portal/disputes_list.html", _common(access, rows=rows))


def _detail_page(
    request: HttpRequest,
    access: Access,
    dispute: Dispute,
    *,
    errors: dict[str, str] | None = None,
    body: str = "",
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "portal/disputes_detail.html",
        _common(
            access,
            d=dispute_view(dispute, for_customer=True),
            dispute=dispute,
            invoice=dispute.invoice,
            lines=line_rows(dispute),
            items=list(visible_messages(dispute.thread)) if dispute.thread is not None else [],
            errors=errors or {},
            body=body,
            message_max=MESSAGE_MAX,
        ),
        status=status,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@customer_required
@accepts_uploads(UploadKind.ATTACHMENT, max_files=MAX_FILES)
def dispute_detail(request: HttpRequest, dispute_id: int) -> HttpResponse:
    """The dispute, its files and conversation. The forms on it post here: ``action`` is
    "message" (a message and files) or "withdraw"."""
    access = _access(request)
    dispute = get_object_or_404(visible_disputes(access), pk=dispute_id)
    if request.method != "POST":
        return _detail_page(request, access, dispute)
    if request.POST.get("action") == "withdraw":
        return _withdraw(request, access, dispute)
    return _message(request, access, dispute)


def _message(request: HttpRequest, access: Access, dispute: Dispute) -> HttpResponse:
    body = request.POST.get("body", "")[:20_000]
    if access.read_only:
        return _detail_page(request, access, dispute, errors={"body": READ_ONLY}, body=body, status=403)
    try:
        files = uploads_from(
            request, "attachments", UploadKind.ATTACHMENT, required=False, max_files=MAX_FILES
        )
        dispute_comment(
            dispute=dispute,
            body=body,
            actor=actor_of(request),
            by_staff=False,
            contact=_contact(request, access),
            attachments=files,
        )
    except UploadRejected as exc:
        return _detail_page(
            request, access, dispute, errors={"attachments": exc.message}, body=body, status=exc.status
        )
    except ServiceError as exc:
        field = "attachments" if exc.field == "attachments" else ("state" if exc.field == "state" else "body")
        return _detail_page(request, access, dispute, errors={field: exc.message}, body=body, status=400)
    messages.success(request, "Added to your dispute. We will answer here.")
    return HttpResponseRedirect(reverse("portal:dispute", args=[dispute.pk]) + "#conversation")


def _withdraw(request: HttpRequest, access: Access, dispute: Dispute) -> HttpResponse:
    if access.read_only:
        return _detail_page(request, access, dispute, errors={"state": READ_ONLY}, status=403)
    try:
        dispute_withdraw(
            dispute=dispute,
            actor=actor_of(request),
            contact=_contact(request, access),
            note=request.POST.get("note", "")[:20_000],
        )
    except ServiceError as exc:
        return _detail_page(request, access, dispute, errors={"state": exc.message}, status=400)
    messages.success(request, "Your dispute is withdrawn.")
    return HttpResponseRedirect(reverse("portal:dispute", args=[dispute.pk]))


def invoice_context(access: Access, invoice: Invoice) -> dict[str, Any]:
    """What the portal's invoice page adds about disputes: each dispute of the invoice
    (with its lines and files), whether lines can still be disputed, and the part that can
    be paid now."""
    disputes = list(invoice_disputes(invoice))
    held = sum((d.disputed_total for d in disputes if d.is_open), Decimal(0))
    busy = {line.invoice_line_id for d in disputes if d.is_open for line in d.lines.all()}
    can_dispute = (
        invoice.open_amount > 0
        and not access.read_only
        and any(line.pk not in busy for line in invoice.lines.all())
    )
    undisputed = quantize(max(Decimal(0), invoice.open_amount - held), invoice.currency)
    return {
        "disputes": [dispute_view(d, for_customer=True) for d in disputes],
        "can_dispute": can_dispute,
        "disputed_open": format_money(held, invoice.currency) if held else "",
        "undisputed": format_money(undisputed, invoice.currency) if held else "",
        "undisputed_value": f"{undisputed}" if held and undisputed > 0 else "",
    }
