"""Automatic payments in the portal: the customer saves a card or bank account at the
provider, reads the terms and turns autopay on; or turns it off, or removes a method.

Saving a method, turning autopay on and removing a method are sensitive: a magic-link
session steps up first (as for the customer's details). Turning autopay off never needs
more than being signed in: stopping charges must always be easy. Staff viewing as the
customer see the page but change nothing unless their organization lets them act.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from openar.core.errors import ServiceError
from openar.core.http import client_ip
from openar.customers.models import Contact, Customer
from openar.identity.stepup import step_up_fresh
from openar.payments.autopay import (
    autopay_disable,
    autopay_enable,
    autopay_summary,
    consent_text,
    method_remove,
    saved_methods,
    setup_complete,
    setup_start,
)
from openar.payments.methods import METHOD_LABELS, methods_for
from openar.payments.models import Autopay, MethodSetup, Payment, SavedMethod
from openar.payments.providers.base import ProviderError
from openar.portal.details import _access, _contact
from openar.tenants.access import actor_of, customer_required

SENSITIVE = ("save", "enable", "remove")


def _payer(request: HttpRequest) -> Contact | None:
    """Who is agreeing: the link's or the signed-in user's contact; staff acting for the
    customer are nobody's contact (their own name is recorded as the user)."""
    access = _access(request)
    return None if access.is_view_as else _contact(request)


def _methods(request: HttpRequest, customer: Customer) -> list[SavedMethod]:
    """The saved methods this session may see and use: a sign-in link, those its own
    contact saved (another person's card is theirs to agree to)."""
    access = _access(request)
    found = saved_methods(customer)
    if access.is_narrow:
        found = [m for m in found if m.saved_by_id == (access.contact.pk if access.contact else None)]
    return found


def _page(
    request: HttpRequest, errors: dict[str, str] | None = None, status: int = 200, chosen: str = ""
) -> HttpResponse:
    access = _access(request)
    customer = access.customer
    assert customer is not None  # noqa: S101  (customer_required)
    contact = _payer(request)
    methods = _methods(request, customer)
    chosen = chosen or request.POST.get("method_id") or request.GET.get("method") or ""
    selected = next((m for m in methods if str(m.pk) == chosen), methods[0] if methods else None)
    summary = autopay_summary(customer)
    history = Payment.objects.filter(customer=customer, saved_method__isnull=False)
    if access.is_narrow:  # a sign-in link sees its own contact's payments (as on the pay pages)
        history = history.filter(contact=access.contact)
    if summary and access.is_narrow and access.link_scope != "account":
        summary = {**summary, "next_invoice": None}  # beyond what the link shows
    context = {
        "customer": customer,
        "access": access,
        "nav": "autopay",
        "full": "portal.full" in access.perm_names,
        "contact": contact,
        "methods": methods,
        "selected": selected,
        "terms": {m.pk: consent_text(customer, m) for m in methods},
        "summary": summary,
        "autopay": summary["autopay"] if summary else None,
        "can_save": [
            (method, METHOD_LABELS[method])
            for method in methods_for(customer.organization, saving=True)
            if method in ("card", "ach")
        ],
        "needs_step_up": access.is_narrow
        and (contact is None or not step_up_fresh(request.session, contact)),
        "errors": errors or {},
        "history": history.order_by("-created_at")[:10],
    }
    return render(request, "portal/autopay.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@customer_required
def autopay(request: HttpRequest) -> HttpResponse:
    access = _access(request)
    customer = access.customer
    assert customer is not None  # noqa: S101
    if request.method != "POST":
        return _page(request)
    if access.read_only:
        return _page(request, {"form": "Viewing as the customer: nothing can be changed from here."}, 403)
    action = request.POST.get("action", "")
    contact = _payer(request)
    if (
        action in SENSITIVE
        and access.is_narrow
        and (contact is None or not step_up_fresh(request.session, contact))
    ):
        return HttpResponseRedirect(reverse("portal:step_up") + "?" + urlencode({"next": request.path}))
    actor = actor_of(request)
    try:
        if action == "save":
            _, redirect_url = setup_start(
                customer=customer, contact=contact, method=request.POST.get("kind", ""), actor=actor
            )
            return HttpResponseRedirect(redirect_url)
        if action == "enable":
            method = next(
                (m for m in _methods(request, customer) if str(m.pk) == request.POST.get("method_id")), None
            )
            if method is None:
                raise ServiceError("Choose one of your saved cards or bank accounts.", field="method")
            if request.POST.get("consent") != "yes":
                raise ServiceError("Tick the box to agree to the terms above.", field="consent")
            autopay_enable(
                customer=customer,
                method=method,
                agreed_text=request.POST.get("terms", ""),
                contact=contact,
                actor=actor,
                ip=client_ip(request),
            )
            messages.success(request, f"Automatic payments are on with {method.label}.")
        elif action == "disable":
            autopay_disable(customer=customer, actor=actor, reason="turned off in the portal")
            messages.success(
                request, "Automatic payments are off. Nothing more will be charged automatically."
            )
        elif action == "remove":
            method = next(
                (m for m in _methods(request, customer) if str(m.pk) == request.POST.get("method_id")), None
            )
            if method is None:
                raise Http404
            method_remove(method=method, actor=actor)
            messages.success(request, f"{method.label} is removed.")
        else:
            raise ServiceError("Choose what to do.")
    except ServiceError as exc:
        return _page(request, {exc.field or "form": exc.message}, 400)
    except ProviderError as exc:
        message = (
            "The payment service could not be reached; try again later."
            if not str(exc.message)
            else exc.message
        )
        return _page(request, {"form": message}, 502)
    return HttpResponseRedirect(reverse("portal:autopay"))


@require_safe
@customer_required
def setup_return(request: HttpRequest, setup_id: int) -> HttpResponse:
    """Back from the provider's page: keep the saved method, then offer autopay with it."""
    access = _access(request)
    customer = access.customer
    assert customer is not None  # noqa: S101
    setups = MethodSetup.objects.filter(customer=customer)
    if access.is_narrow:
        setups = setups.filter(contact=access.contact)
    setup = get_object_or_404(setups, pk=setup_id)
    if request.GET.get("cancelled"):
        messages.info(request, "Nothing was saved.")
        return _page(request)
    try:
        method = setup_complete(setup=setup, actor=actor_of(request))
    except ProviderError as exc:
        return _page(request, {"form": exc.message}, 502)
    if method is None:
        messages.info(request, "Nothing was saved.")
        return _page(request)
    active = Autopay.objects.filter(customer=customer, state=Autopay.State.ACTIVE, method=method).exists()
    messages.success(
        request,
        f"{method.label} is saved."
        + ("" if active else " Read the terms below and turn on automatic payments with it."),
    )
    # Shown here rather than redirected: a reload finds the same saved method (kept once).
    return _page(request, chosen=str(method.pk))
