"""Contracts in the customer portal: the list, a contract's page (its key terms, its
SHA-256, a download of the exact PDF, never shown inline), signing, and verifying a file.

A full session, and a sign-in link to the whole account, see every contract sent to the
account; the sign-in link emailed with a contract (scope "contract") sees that contract
only; a link to one invoice, or to what is past due, sees none (every contract page is a
404 and the nav has no "Contracts"). Signing needs a recent proof of identity beyond the
session (``openar.contracts.identity``): a sign-in link steps up first with the portal's
emailed code; a full session whose second factor is more than 15 minutes old (or that
signed in without one) confirms here, with its second factor again or an emailed code; a
full session that used its second factor in the last 15 minutes signs at once. Staff
viewing the portal as the customer see everything and sign nothing. Another customer's
contract is a 404.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from openar.contracts.identity import reauthentication_url, signing_method
from openar.contracts.models import Contract
from openar.contracts.services import Signer, consent_text, contract_sign, effective_state
from openar.contracts.views_common import (
    contract_file_response,
    sees_contracts,
    session_contracts,
    verify_upload,
)
from openar.core.errors import ServiceError
from openar.core.http import client_ip, user_agent
from openar.core.uploads import UploadKind, accepts_uploads
from openar.customers.models import Contact, Customer
from openar.identity.stepup import step_up_check_code, step_up_send_code
from openar.tenants.access import Access, actor_of, customer_required
from openar.tenants.models import policy_for
from openar.tenants.permissions import Perm


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


def _customer(request: HttpRequest) -> Customer:
    customer = _access(request).customer
    assert customer is not None  # noqa: S101  (PORTAL_VIEW is only granted with a customer)
    return customer


def _contact(request: HttpRequest) -> Contact | None:
    """The person signing: the link's contact, or the signed-in user's contact on the
    account; staff viewing as the customer are nobody's contact."""
    access = _access(request)
    if access.is_view_as:
        return None
    if access.contact is not None:
        return access.contact
    if request.user.is_authenticated and access.customer is not None:
        return Contact.objects.filter(customer=access.customer, user=request.user).first()
    return None


def _contract(request: HttpRequest, contract_id: int) -> Contract:
    """One of the contracts this session may see, or a 404."""
    return get_object_or_404(
        session_contracts(request, _access(request)).select_related("customer__organization"),
        pk=contract_id,
    )


def _base(request: HttpRequest) -> dict[str, object]:
    access = _access(request)
    return {
        "customer": _customer(request),
        "access": access,
        "full": access.can(Perm.PORTAL_FULL),
        "nav": "contracts",
    }


@require_safe
@customer_required
def contract_list(request: HttpRequest) -> HttpResponse:
    access = _access(request)
    if not sees_contracts(access):
        raise Http404("This sign-in link does not show contracts.")
    customer = _customer(request)
    today = customer.organization.today()
    rows = [(c, effective_state(c, today)) for c in session_contracts(request, access)]
    return render(request, "portal/contracts.html", {**_base(request), "rows": rows})


def _detail(
    request: HttpRequest,
    contract: Contract,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    verified: object = None,
    status: int = 200,
) -> HttpResponse:
    access = _access(request)
    contact = _contact(request)
    today = contract.customer.organization.today()
    state = effective_state(contract, today)
    method = None if access.is_view_as else signing_method(request, access, contact)
    context = {
        **_base(request),
        "contract": contract,
        "state": state,
        "signature": getattr(contract, "signature", None)
        if contract.state == Contract.State.SIGNED
        else None,
        "consent": consent_text(contract),
        "can_sign": state == Contract.State.SENT and not access.is_view_as,
        "method": method,
        "confirm_url": _confirm_url(request, contract),
        "errors": errors or {},
        "values": values or {"typed_name": ""},
        "verified": verified,
    }
    return render(request, "portal/contract_detail.html", context, status=status)


def _confirm_url(request: HttpRequest, contract: Contract) -> str:
    page = reverse("portal:contract", args=[contract.pk])
    if _access(request).is_narrow:
        return reverse("portal:step_up") + "?" + urlencode({"next": page})
    return reverse("portal:contract_confirm", args=[contract.pk])


@require_http_methods(["GET", "HEAD", "POST"])
@customer_required
def contract_detail(request: HttpRequest, contract_id: int) -> HttpResponse:
    """The contract's page; a POST signs it."""
    contract = _contract(request, contract_id)
    if request.method != "POST":
        return _detail(request, contract)
    access = _access(request)
    values = {"typed_name": str(request.POST.get("typed_name", ""))[:200]}
    if access.is_view_as:
        return _detail(
            request,
            contract,
            errors={"form": "Staff cannot sign for the customer: only someone on the account can."},
            values=values,
            status=403,
        )
    contact = _contact(request)
    method = signing_method(request, access, contact)
    if method is None:
        return HttpResponseRedirect(_confirm_url(request, contract))
    try:
        contract_sign(
            contract=contract,
            signer=Signer(
                user=actor_of(request),
                contact=contact,
                ip=client_ip(request),
                user_agent=user_agent(request),
                auth_method=method,
            ),
            typed_name=values["typed_name"],
            consent=request.POST.get("consent") == "yes",
            shown_consent=str(request.POST.get("consent_text", "")),
            seen_sha256=str(request.POST.get("sha256", "")),
        )
    except ServiceError as exc:
        contract.refresh_from_db()
        return _detail(
            request, contract, errors={exc.field or "form": exc.message}, values=values, status=400
        )
    messages.success(request, "Signed. The signed copy, with its certificate page, is ready to download.")
    return HttpResponseRedirect(reverse("portal:contract", args=[contract.pk]))


@require_http_methods(["GET", "POST"])
@customer_required
def contract_confirm(request: HttpRequest, contract_id: int) -> HttpResponse:
    """A full session without a recent second factor confirms it is them before signing:
    with their second factor again (allauth's re-authentication, back here after) or with
    a code emailed to their contact address (a sign-in link uses the portal's own step-up
    page)."""
    contract = _contract(request, contract_id)
    access = _access(request)
    page = reverse("portal:contract", args=[contract.pk])
    if access.is_narrow:
        return HttpResponseRedirect(_confirm_url(request, contract))
    contact = _contact(request)
    context: dict[str, object] = {
        **_base(request),
        "contract": contract,
        "contact": contact,
        "next": page,
        "by_email": policy_for(access.organization).step_up_by_email_code
        and contact is not None
        and bool(contact.email),
        "done": access.is_view_as or signing_method(request, access, contact) is not None,
        "mfa_url": "" if access.is_view_as else reauthentication_url(request, page),
    }
    if context["done"] or not context["by_email"] or contact is None or request.method != "POST":
        return render(request, "portal/contract_confirm.html", context)
    if "send" in request.POST:
        step_up_send_code(session=request.session, contact=contact, ip=client_ip(request))
        context["sent"] = True
        return render(request, "portal/contract_confirm.html", context)
    outcome = step_up_check_code(
        session=request.session,
        contact=contact,
        code=str(request.POST.get("code", ""))[:12],
        ip=client_ip(request),
    )
    if outcome == "ok":
        return HttpResponseRedirect(page)
    context["sent"] = outcome == "wrong"
    context["error"] = {
        "wrong": "That code is not right. Check the latest email and try again.",
        "expired": "That code has expired. Send a new one.",
        "locked": "Too many wrong codes. Send a new one.",
    }[outcome]
    return render(request, "portal/contract_confirm.html", context, status=400)


@require_safe
@customer_required
def contract_document(request: HttpRequest, contract_id: int) -> HttpResponseBase:
    """The exact PDF sent for signature, as a download."""
    contract = _contract(request, contract_id)
    return contract_file_response(contract.file, contract.filename)


@require_safe
@customer_required
def contract_signed(request: HttpRequest, contract_id: int) -> HttpResponseBase:
    """The signed copy (original + certificate page), as a download."""
    contract = _contract(request, contract_id)
    if contract.state != Contract.State.SIGNED:
        raise Http404("This contract is not signed.")
    return contract_file_response(
        contract.signed_file, contract.filename.removesuffix(".pdf") + "-signed.pdf"
    )


@require_POST
@customer_required
@accepts_uploads(UploadKind.CONTRACT)
def contract_verify(request: HttpRequest, contract_id: int) -> HttpResponse:
    """Compare an uploaded file with the contract (streamed, never stored)."""
    contract = _contract(request, contract_id)
    result, error = verify_upload(request, contract)
    if error:
        return _detail(request, contract, errors={"verify": error}, status=400)
    return _detail(request, contract, verified=result)
