"""Contracts at the desk.

Reading (``desk.view``): ``/desk/contracts/`` (every contract, filtered by state), a
contract's page (its key terms, both hashes, the signature's evidence, its history, a
download of each PDF and the verification of a file), and the customer page's card
(``templatetags.contract_tags``).

Acting (``desk.collect``): make a draft from an uploaded PDF (through the upload checks:
PDF only) or from a template (a payment arrangement agreement filled from one of the
customer's plans, or a credit application), send it, withdraw it. Each action posts to a
URL of its own and calls one service of ``openar.contracts.services``; a refusal shows the
form again with the message next to its field and what was typed. Another organization's
contract or customer is a 404.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from openar.commitments.models import Plan
from openar.contracts import templates
from openar.contracts.models import Contract
from openar.contracts.services import (
    contract_from_template,
    contract_send,
    contract_upload,
    contract_withdraw,
    effective_state,
)
from openar.contracts.views_common import contract_file_response, verify_upload
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.core.uploads import UploadKind, UploadRejected, accepts_uploads, uploads_from
from openar.customers.models import Customer
from openar.tenants.access import actor_of, require, staff_required
from openar.tenants.permissions import Perm

collect_required = require(Perm.DESK_COLLECT)
STATES = [("", "All"), *Contract.State.choices]
SOURCES = ("upload", templates.PAYMENT_ARRANGEMENT, templates.CREDIT_APPLICATION)
CREDIT_FIELDS = (
    "legal_name",
    "registration_number",
    "address",
    "contact_name",
    "contact_email",
    "credit_limit",
    "terms_days",
)


@require_safe
@staff_required
def contract_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    if state not in Contract.State.values:
        state = ""
    queryset = Contract.objects.select_related("customer", "signature").order_by("-created_at", "-pk")
    if state:
        queryset = queryset.filter(state=state)
    page = Paginator(queryset, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "desk/contracts.html",
        {"page": page, "state": state, "states": STATES, "nav": "contracts"},
    )


def _open_plans(customer: Customer) -> list[Plan]:
    return list(Plan.objects.filter(customer=customer, state__in=Plan.OPEN_STATES).order_by("-created_at"))


def _form_values(request: HttpRequest, customer: Customer) -> dict[str, str]:
    """The credit application starts from what the account says; a form posted back keeps
    everything typed."""
    values = {
        "legal_name": customer.name,
        "address": "\n".join(customer.address_lines),
        "contact_email": customer.email,
        "terms_days": str(customer.payment_terms_days),
    }
    if request.method == "POST":
        values.update(
            {key: str(value)[:4000] for key, value in request.POST.items() if key != "csrfmiddlewaretoken"}
        )
    return values


def _new_page(
    request: HttpRequest,
    customer: Customer,
    *,
    source: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "desk/contract_new.html",
        {
            "customer": customer,
            "plans": _open_plans(customer),
            "source": source or request.GET.get("source", "upload"),
            "values": _form_values(request, customer),
            "errors": errors or {},
            "today": customer.organization.today(),
            "nav": "customers",
        },
        status=status,
    )


def _expires_on(value: str) -> datetime.date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as exc:
        raise ServiceError("Enter the last day to sign as a date.", field="expires_on") from exc


@require_http_methods(["GET", "POST"])
@collect_required
@accepts_uploads(UploadKind.CONTRACT)
def contract_new(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer.objects.select_related("organization"), pk=customer_id)
    if request.method != "POST":
        return _new_page(request, customer)
    source = request.POST.get("source", "")
    if source not in SOURCES:
        return _new_page(request, customer, errors={"form": "Choose how to make the contract."}, status=400)
    actor = actor_of(request)
    try:
        expires_on = _expires_on(str(request.POST.get("expires_on", "")))
        if source == "upload":
            try:
                checked = uploads_from(request, "file", UploadKind.CONTRACT)[0]
            except UploadRejected as exc:
                return _new_page(
                    request, customer, source=source, errors={"file": exc.message}, status=exc.status
                )
            contract = contract_upload(
                customer=customer,
                title=str(request.POST.get("title", "")),
                summary=str(request.POST.get("summary", "")),
                content=checked.file.read(),
                filename=checked.filename,
                expires_on=expires_on,
                actor=actor,
            )
        elif source == templates.PAYMENT_ARRANGEMENT:
            plan_id = _int(request.POST.get("plan"))
            plan = None if plan_id is None else Plan.objects.filter(customer=customer, pk=plan_id).first()
            fields = templates.arrangement_fields(
                customer, plan, extra_terms=str(request.POST.get("extra_terms", ""))
            )
            contract = contract_from_template(
                customer=customer, template=source, fields=fields, expires_on=expires_on, actor=actor
            )
        else:
            data = templates.CreditInput(
                **{name: str(request.POST.get(name, "")) for name in CREDIT_FIELDS},
                extra_terms=str(request.POST.get("extra_terms", "")),
            )
            contract = contract_from_template(
                customer=customer,
                template=source,
                fields=templates.credit_fields(customer, data),
                expires_on=expires_on,
                actor=actor,
            )
    except ServiceError as exc:
        return _new_page(
            request, customer, source=source, errors={exc.field or "form": exc.message}, status=400
        )
    messages.success(request, "Draft saved. Download it to check it, then send it for signature.")
    return HttpResponseRedirect(reverse("desk:contract", args=[contract.pk]))


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _contract(contract_id: int) -> Contract:
    return get_object_or_404(
        Contract.objects.select_related("customer__organization", "created_by", "sent_by", "ended_by"),
        pk=contract_id,
    )


def _detail(
    request: HttpRequest,
    contract: Contract,
    *,
    errors: dict[str, str] | None = None,
    verified: object = None,
    status: int = 200,
) -> HttpResponse:
    today = contract.customer.organization.today()
    history = AuditEvent.objects.filter(
        object_type=Contract._meta.label_lower, object_id=str(contract.pk)
    ).select_related("actor")
    context: dict[str, Any] = {
        "contract": contract,
        "customer": contract.customer,
        "state": effective_state(contract, today),
        "signature": getattr(contract, "signature", None)
        if contract.state == Contract.State.SIGNED
        else None,
        "history": list(history.order_by("created_at", "pk")),
        "errors": errors or {},
        "verified": verified,
        "nav": "customers",
    }
    return render(request, "desk/contract_detail.html", context, status=status)


@require_safe
@staff_required
def contract_detail(request: HttpRequest, contract_id: int) -> HttpResponse:
    return _detail(request, _contract(contract_id))


@require_POST
@collect_required
def contract_send_view(request: HttpRequest, contract_id: int) -> HttpResponse:
    contract = _contract(contract_id)
    try:
        sent = contract_send(contract=contract, actor=actor_of(request))
    except ServiceError as exc:
        return _detail(request, contract, errors={"form": exc.message}, status=400)
    if sent.emailed:
        names = ", ".join(f"{c.name} ({c.email})" for c in sent.emailed)
        messages.success(request, f"Sent for signature. Emailed a link to {names}.")
    else:
        messages.warning(
            request,
            "Sent for signature, but nobody on the account can receive email: the customer sees it in "
            "the portal. Send them a sign-in link from the contacts.",
        )
    return HttpResponseRedirect(reverse("desk:contract", args=[contract.pk]))


@require_POST
@collect_required
def contract_withdraw_view(request: HttpRequest, contract_id: int) -> HttpResponse:
    contract = _contract(contract_id)
    try:
        contract_withdraw(
            contract=contract, actor=actor_of(request), reason=str(request.POST.get("reason", ""))
        )
    except ServiceError as exc:
        return _detail(request, contract, errors={exc.field or "form": exc.message}, status=400)
    messages.success(request, "The contract is withdrawn: it can no longer be signed.")
    return HttpResponseRedirect(reverse("desk:contract", args=[contract.pk]))


@require_safe
@staff_required
def contract_document(request: HttpRequest, contract_id: int) -> HttpResponseBase:
    contract = _contract(contract_id)
    return contract_file_response(contract.file, contract.filename)


@require_safe
@staff_required
def contract_signed(request: HttpRequest, contract_id: int) -> HttpResponseBase:
    contract = _contract(contract_id)
    if contract.state != Contract.State.SIGNED:
        raise Http404("This contract is not signed.")
    return contract_file_response(
        contract.signed_file, contract.filename.removesuffix(".pdf") + "-signed.pdf"
    )


@require_POST
@staff_required
@accepts_uploads(UploadKind.CONTRACT)
def contract_verify(request: HttpRequest, contract_id: int) -> HttpResponse:
    contract = _contract(contract_id)
    result, error = verify_upload(request, contract)
    if error:
        return _detail(request, contract, errors={"verify": error}, status=400)
    return _detail(request, contract, verified=result)
