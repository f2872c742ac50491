"""Disputes at the desk.

Reading (``desk.view``): ``/desk/disputes/``, the queue, soonest SLA first, filtered by
state, reason, who has it, overdue SLA and a customer or invoice search, each row with its
age and SLA badge; ``/desk/disputes/<id>/``, one dispute: its lines, files, conversation
and what was decided. The invoice and customer pages show their disputes
(``invoice_card``, ``customer_card``).

Acting (``desk.collect``): start the review, assign, reply in the thread (with files), and
resolve: per line the amount accepted (the rest rejected, with a reason); what is accepted
is credited by a credit note, shown on the page. Each action is a form posted to its own
URL, which calls one service of ``openar.disputes.services``; a refusal shows the dispute
page again with the message next to the field and what was typed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from openar.billing.models import Invoice
from openar.core.errors import ServiceError
from openar.core.money import format_money, parse_amount
from openar.core.uploads import UploadKind, UploadRejected, accepts_uploads, uploads_from
from openar.customers.models import Customer
from openar.disputes.models import Dispute, DisputeReason
from openar.disputes.notices import reply_contact
from openar.disputes.presenters import STATE_BADGES, ageing, dispute_view
from openar.disputes.reasons import dispute_reason_save, dispute_reasons
from openar.disputes.selectors import (
    QUEUE_STATES,
    QueueFilters,
    customer_disputes,
    dispute_queue,
    invoice_disputes,
)
from openar.disputes.services import (
    MAX_FILES,
    MESSAGE_MAX,
    dispute_assign,
    dispute_comment,
    dispute_resolve,
    dispute_review_start,
)
from openar.identity.models import User
from openar.tenants.access import actor_of, require, staff_required
from openar.tenants.models import STAFF_ROLES, Membership, Organization
from openar.tenants.permissions import Perm

collector_required = require(Perm.DESK_COLLECT)
PAGE_SIZE = 50
ACCEPT = "image/*,application/pdf"


def _organization(request: HttpRequest) -> Organization:
    organization: Organization = request.organization  # type: ignore[attr-defined]
    return organization


def _actor(request: HttpRequest) -> User:
    user = actor_of(request)
    assert user is not None  # noqa: S101  (desk.collect is only granted to a signed-in member)
    return user


def staff_members(organization: Organization) -> list[User]:
    """Who a dispute can be given to: the organization's active staff."""
    ids = Membership.objects.filter(
        organization=organization, role__in=STAFF_ROLES, is_active=True
    ).values_list("user_id", flat=True)
    return list(User.objects.filter(pk__in=list(ids), is_active=True).order_by("full_name", "email"))


@require_safe
@staff_required
def queue(request: HttpRequest) -> HttpResponse:
    organization = _organization(request)
    get = request.GET
    filters = QueueFilters(
        state=get.get("state", "open") if get.get("state", "open") in QUEUE_STATES else "open",
        reason=get.get("reason", "")[:40],
        assigned=get.get("assigned", "")[:20],
        overdue=get.get("overdue") == "1",
        search=" ".join(get.get("q", "").split())[:100],
    )
    now = timezone.now()
    page = Paginator(dispute_queue(filters, me=actor_of(request), now=now), PAGE_SIZE).get_page(
        get.get("page")
    )
    rows = [
        {**dispute_view_short(dispute, now), "customer": dispute.customer, "invoice_obj": dispute.invoice}
        for dispute in page.object_list
    ]
    return render(
        request,
        "desk/disputes.html",
        {
            "rows": rows,
            "page": page,
            "filters": filters,
            "states": list(QUEUE_STATES.items()),
            "reasons": list(dispute_reasons(organization)),
            "staff": staff_members(organization),
            "nav": "disputes",
        },
    )


def dispute_view_short(dispute: Dispute, now: Any) -> dict[str, Any]:
    return {
        "id": dispute.pk,
        "total": format_money(dispute.disputed_total, dispute.currency),
        "state": dispute.state,
        "state_label": dispute.get_state_display(),
        "state_badge": STATE_BADGES.get(dispute.state, ""),
        "outcome_label": dispute.get_outcome_display() if dispute.outcome else "",
        "assigned": (dispute.assigned_to.get_full_name() or dispute.assigned_to.email)
        if dispute.assigned_to
        else "",
        "opened": dispute.created_at,
        "due": dispute.due_at,
        **ageing(dispute, now),
    }


def _page(
    request: HttpRequest,
    dispute: Dispute,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    organization = _organization(request)
    d = dispute_view(dispute, for_customer=False)
    values = values or {}
    for line in d["lines"]:
        line["accept_value"] = values.get(
            f"accepted_{line['id']}", ""
        )  # a decision per line, never a default credit
        line["error"] = (errors or {}).get(f"accepted_{line['id']}", "")
    items = []
    if dispute.thread_id is not None:
        items = list(
            dispute.thread.messages.select_related("contact", "created_by").order_by("created_at", "pk")  # type: ignore[union-attr]
        )
    return render(
        request,
        "desk/disputes_detail.html",
        {
            "d": d,
            "dispute": dispute,
            "customer": dispute.customer,
            "invoice": dispute.invoice,
            "items": items,
            "can_act": request.access.can(Perm.DESK_COLLECT),  # type: ignore[attr-defined]
            "staff": staff_members(organization),
            "recipient": reply_contact(dispute),
            "errors": errors or {},
            "values": values,
            "accept": ACCEPT,
            "max_files": MAX_FILES,
            "message_max": MESSAGE_MAX,
            "nav": "disputes",
        },
        status=status,
    )


def _dispute(dispute_id: int) -> Dispute:
    return get_object_or_404(
        Dispute.objects.select_related("customer", "invoice", "credit_note", "assigned_to"), pk=dispute_id
    )


@require_safe
@staff_required
def detail(request: HttpRequest, dispute_id: int) -> HttpResponse:
    return _page(request, _dispute(dispute_id))


def _back(dispute: Dispute, anchor: str = "") -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("desk:dispute", args=[dispute.pk]) + anchor)


@require_POST
@collector_required
def review_start(request: HttpRequest, dispute_id: int) -> HttpResponse:
    dispute = _dispute(dispute_id)
    try:
        dispute_review_start(dispute=dispute, actor=_actor(request))
    except ServiceError as exc:
        return _page(request, dispute, errors={"state": exc.message}, status=400)
    messages.success(request, "The dispute is in review; the customer is told.")
    return _back(dispute)


@require_POST
@collector_required
def assign(request: HttpRequest, dispute_id: int) -> HttpResponse:
    dispute = _dispute(dispute_id)
    value = request.POST.get("assignee", "")
    assignee = None
    if value:
        if not (value.isascii() and value.isdecimal()):
            return _page(request, dispute, errors={"assignee": "Choose someone on the staff."}, status=400)
        assignee = User.objects.filter(pk=int(value)).first()
        if assignee is None:
            return _page(request, dispute, errors={"assignee": "Choose someone on the staff."}, status=400)
    try:
        dispute_assign(dispute=dispute, assignee=assignee, actor=_actor(request))
    except ServiceError as exc:
        return _page(request, dispute, errors={exc.field or "assignee": exc.message}, status=400)
    messages.success(
        request, f"Assigned to {assignee.get_full_name() or assignee.email}." if assignee else "Unassigned."
    )
    return _back(dispute)


@require_POST
@collector_required
@accepts_uploads(UploadKind.ATTACHMENT, max_files=MAX_FILES)
def reply(request: HttpRequest, dispute_id: int) -> HttpResponse:
    dispute = _dispute(dispute_id)
    body = request.POST.get("body", "")[:20_000]
    try:
        files = uploads_from(
            request, "attachments", UploadKind.ATTACHMENT, required=False, max_files=MAX_FILES
        )
        message = dispute_comment(
            dispute=dispute, body=body, actor=_actor(request), by_staff=True, attachments=files
        )
    except UploadRejected as exc:
        return _page(
            request, dispute, errors={"attachments": exc.message}, values={"body": body}, status=exc.status
        )
    except ServiceError as exc:
        field = exc.field if exc.field in ("attachments", "state") else "body"
        return _page(request, dispute, errors={field: exc.message}, values={"body": body}, status=400)
    messages.success(request, "Your reply is sent to the customer and in the dispute's conversation.")
    return _back(dispute, f"#m-{message.pk}")


@require_POST
@collector_required
def resolve(request: HttpRequest, dispute_id: int) -> HttpResponse:
    dispute = _dispute(dispute_id)
    values = {key: request.POST.get(key, "")[:2000] for key in request.POST if key.startswith("accepted_")}
    values["rejection_reason"] = request.POST.get("rejection_reason", "")[:20_000]
    accepted: dict[int, Decimal] = {}
    for line in dispute.lines.all():
        key = f"accepted_{line.pk}"
        try:
            accepted[line.pk] = parse_amount(values.get(key, ""), dispute.currency)
        except ValueError as exc:
            return _page(request, dispute, errors={key: str(exc)}, values=values, status=400)
    try:
        resolved = dispute_resolve(
            dispute=dispute,
            accepted=accepted,
            rejection_reason=values["rejection_reason"],
            actor=_actor(request),
        )
    except ServiceError as exc:
        field = exc.field or "resolve"
        if field == "accepted":
            field = "resolve"
        return _page(request, dispute, errors={field: exc.message}, values=values, status=400)
    if resolved.credit_note is not None:
        messages.success(
            request,
            f"Resolved: {resolved.get_outcome_display().lower()}. "
            f"Credit note {resolved.credit_note.number} of "
            f"{format_money(resolved.accepted_amount, resolved.currency)} is issued.",
        )
    else:
        messages.success(request, "Resolved: rejected. The customer is told why.")
    return _back(dispute)


def invoice_card(invoice: Invoice) -> list[dict[str, Any]]:
    """The invoice page's disputes (desk)."""
    return [dispute_view(d, for_customer=False) for d in invoice_disputes(invoice)]


def customer_card(customer: Customer) -> list[dict[str, Any]]:
    """The customer page's disputes: the open ones and the last ten ended."""
    now = timezone.now()
    disputes = customer_disputes(customer)
    shown = list(disputes.filter(state__in=Dispute.OPEN_STATES)) + list(
        disputes.filter(~Q(state__in=Dispute.OPEN_STATES))[:10]
    )
    return [{**dispute_view_short(d, now), "invoice": d.invoice} for d in shown]


admin_required = require(Perm.DESK_ADMIN)


@require_http_methods(["GET", "HEAD", "POST"])
@staff_required
@admin_required
def reasons(request: HttpRequest) -> HttpResponse:
    """The organization's reason codes: label, SLA days, who is told, offered or not. Each
    row is a form of its own (``reason`` = its id); the last one adds a reason."""
    organization = _organization(request)
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        post = request.POST
        key = post.get("reason", "new")
        reason = None
        if key != "new":
            reason = (
                get_object_or_404(DisputeReason, pk=int(key)) if key.isascii() and key.isdecimal() else None
            )
            if reason is None:
                return HttpResponseRedirect(reverse("desk:dispute_reasons"))
        values = {
            "key": key,
            "label": post.get("label", "")[:200],
            "sla_days": post.get("sla_days", "")[:6],
            "notify_emails": post.get("notify_emails", "")[:2000],
        }
        sla = values["sla_days"].strip()
        try:
            if not (sla.isascii() and sla.isdecimal()):
                raise ServiceError("Enter the SLA as a number of days.", field="sla_days")
            saved = dispute_reason_save(
                organization=organization,
                reason=reason,
                label=values["label"],
                sla_days=int(sla),
                notify_emails=values["notify_emails"],
                active=post.get("active") == "1" if reason is not None else True,
                actor=actor_of(request),
            )
        except ServiceError as exc:
            errors = {exc.field or "label": exc.message}
            status = 400
        else:
            messages.success(request, f"Saved: {saved.label}.")
            return HttpResponseRedirect(reverse("desk:dispute_reasons"))
    return render(
        request,
        "desk/disputes_reasons.html",
        {
            "reasons": list(dispute_reasons(organization)),
            "errors": errors,
            "values": values,
            "nav": "disputes",
        },
        status=status,
    )
