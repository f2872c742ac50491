"""Desk actions on a customer's contacts: sign-in links and portal users."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.customers.models import Contact, Customer
from openar.desk.forms import InviteForm, MagicLinkForm
from openar.desk.people import invitation_response
from openar.identity.magic import IssuedLink, magic_link_create, magic_link_send, magic_links_revoke_contact
from openar.tenants.access import Access, actor_of, require
from openar.tenants.middleware import VIEW_AS_SESSION_KEY
from openar.tenants.models import Role
from openar.tenants.permissions import Perm
from openar.tenants.services import membership_invite

collector_required = require(Perm.DESK_COLLECT)


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


def _back(customer: Customer) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("desk:customer", args=[customer.pk]) + "#contacts")


def _create_and_send(request: HttpRequest, contact: Contact, scope: str, send: str) -> IssuedLink:
    with transaction.atomic():
        issued = magic_link_create(contact=contact, scope_=scope, created_by=actor_of(request))
        if send == "email":
            magic_link_send(issued=issued)
    return issued


@require_POST
@collector_required
def link_create(request: HttpRequest, customer_id: int, contact_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    contact = get_object_or_404(Contact, pk=contact_id, customer=customer)
    form = MagicLinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose what the link opens and how to deliver it.")
        return _back(customer)
    if form.cleaned_data["send"] == "email" and not (contact.email and contact.consent_email):
        messages.error(request, f"{contact.name} has no email address we may write to.")
        return _back(customer)
    try:
        issued = _create_and_send(request, contact, form.cleaned_data["scope"], form.cleaned_data["send"])
    except ServiceError as exc:
        messages.error(request, exc.message)
        return _back(customer)
    if form.cleaned_data["send"] == "email":
        messages.success(request, f"Sign-in link emailed to {contact.email}.")
        return _back(customer)
    response = render(
        request, "desk/link_created.html", {"customer": customer, "contact": contact, "issued": issued}
    )
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_POST
@collector_required
def links_revoke(request: HttpRequest, customer_id: int, contact_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    contact = get_object_or_404(Contact, pk=contact_id, customer=customer)
    count = magic_links_revoke_contact(contact=contact, actor=actor_of(request))
    messages.success(request, f"Withdrew {count} sign-in link{'s' if count != 1 else ''} of {contact.name}.")
    return _back(customer)


@require_POST
@collector_required
def invite(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter the email address of the person to invite.")
        return _back(customer)
    try:
        invitation = membership_invite(
            organization=_access(request).organization,
            email=form.cleaned_data["email"],
            full_name=form.cleaned_data["full_name"],
            role=Role.CUSTOMER,
            customer=customer,
            actor=actor_of(request),
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return _back(customer)
    return invitation_response(
        request, invitation, reverse("desk:customer", args=[customer.pk]) + "#contacts"
    )


view_as_required = require(Perm.DESK_VIEW_AS)


@require_POST
@view_as_required
def view_as_start(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    request.session[VIEW_AS_SESSION_KEY] = customer.pk
    log_event(
        "openar.view_as.started", organization=customer.organization, obj=customer, actor=actor_of(request)
    )
    return HttpResponseRedirect(reverse("portal:overview"))


@require_POST
@view_as_required
def view_as_stop(request: HttpRequest) -> HttpResponse:
    customer_id = request.session.pop(VIEW_AS_SESSION_KEY, None)
    log_event(
        "openar.view_as.stopped",
        organization=_access(request).organization,
        actor=actor_of(request),
        data={"customer": customer_id},
    )
    if isinstance(customer_id, int):
        return HttpResponseRedirect(reverse("desk:customer", args=[customer_id]))
    return HttpResponseRedirect(reverse("desk:customers"))
