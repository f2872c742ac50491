"""Desk pages for admins: the people who may sign in to the organization (staff, creditor
clients, customer users), invitations, deactivation and reactivation."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from openar.core.errors import ServiceError
from openar.desk.forms import PeopleFilterForm, PersonInviteForm
from openar.identity.invitations import Invitation, access_description
from openar.tenants.access import Access, actor_of, require
from openar.tenants.models import STAFF_ROLES, Creditor, Membership, Role
from openar.tenants.permissions import Perm
from openar.tenants.services import (
    invitation_resend,
    membership_deactivate,
    membership_invite,
    membership_reactivate,
)

admin_required = require(Perm.DESK_ADMIN)
PAGE_SIZE = 50


def _access(request: HttpRequest) -> Access:
    access: Access = request.access  # type: ignore[attr-defined]
    return access


def _creditors() -> QuerySet[Creditor]:
    return Creditor.objects.filter(is_self=False).order_by("name")


def _people(form: PeopleFilterForm) -> QuerySet[Membership]:
    people = (
        Membership.objects.select_related("user", "customer", "creditor")
        .annotate(has_mfa=Exists(Authenticator.objects.filter(user_id=OuterRef("user_id"))))
        .order_by("user__email", "pk")
    )
    data = form.cleaned_data
    if data.get("q"):
        q = data["q"].strip()
        people = people.filter(Q(user__email__icontains=q) | Q(user__full_name__icontains=q))
    kind = data.get("kind")
    if kind == "staff":
        people = people.filter(role__in=STAFF_ROLES)
    elif kind in (Role.CREDITOR, Role.CUSTOMER):
        people = people.filter(role=kind)
    if data.get("status") == "active":
        people = people.filter(is_active=True, user__is_active=True)
    elif data.get("status") == "inactive":
        people = people.filter(Q(is_active=False) | Q(user__is_active=False))
    return people


def _row(membership: Membership) -> dict[str, object]:
    user = membership.user
    active = membership.is_active and user.is_active
    if not active:
        status = "Deactivated"
    elif user.last_login is None:
        status = "Invited, not signed in yet"
    else:
        status = "Active"
    return {
        "membership": membership,
        "user": user,
        "what": access_description(membership),
        "active": active,
        "status": status,
        "must_change_password": user.must_change_password,
        "has_mfa": getattr(membership, "has_mfa", False),
    }


def _page(
    request: HttpRequest, filters: PeopleFilterForm, form: PersonInviteForm, status: int
) -> HttpResponse:
    filters.is_valid()  # every field is optional; invalid values are simply not applied
    page = Paginator(_people(filters), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "desk/people.html",
        {
            "filters": filters,
            "page": page,
            "rows": [_row(m) for m in page.object_list],
            "form": form,
            "nav": "people",
            "me": actor_of(request),
        },
        status=status,
    )


@require_http_methods(["GET", "HEAD"])
@admin_required
def people(request: HttpRequest) -> HttpResponse:
    return _page(request, PeopleFilterForm(request.GET), PersonInviteForm(creditors=_creditors()), 200)


def invitation_response(request: HttpRequest, invitation: Invitation, back: str) -> HttpResponse:
    """After an invitation: the assigned first password is shown here once (no-store), or
    the page says the email is on its way."""
    response = render(
        request,
        "desk/invitation_sent.html",
        {"invitation": invitation, "what": access_description(invitation.membership), "back": back},
    )
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_POST
@admin_required
def invite(request: HttpRequest) -> HttpResponse:
    creditors = _creditors()
    form = PersonInviteForm(request.POST, creditors=creditors)
    if form.is_valid():
        data = form.cleaned_data
        try:
            invitation = membership_invite(
                organization=_access(request).organization,
                email=data["email"],
                full_name=data["full_name"],
                role=data["role"],
                creditor=data.get("creditor"),
                actor=actor_of(request),
            )
        except ServiceError as exc:
            form.add_error("email" if exc.field == "email" else None, exc.message)
        else:
            return invitation_response(request, invitation, reverse("desk:people"))
    return _page(request, PeopleFilterForm({}), form, 400)


def _membership(membership_id: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "customer", "creditor"), pk=membership_id
    )


@require_POST
@admin_required
def deactivate(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _membership(membership_id)
    try:
        ended = membership_deactivate(membership=membership, actor=actor_of(request))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"{membership.user.email} can no longer sign in to {membership.organization.name}"
            f" ({ended} session{'s' if ended != 1 else ''} ended).",
        )
    return HttpResponseRedirect(reverse("desk:people"))


@require_POST
@admin_required
def reactivate(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _membership(membership_id)
    try:
        membership_reactivate(membership=membership, actor=actor_of(request))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{membership.user.email} can sign in again.")
    return HttpResponseRedirect(reverse("desk:people"))


@require_POST
@admin_required
def resend(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = _membership(membership_id)
    try:
        invitation = invitation_resend(membership=membership, actor=actor_of(request))
    except ServiceError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("desk:people"))
    return invitation_response(request, invitation, reverse("desk:people"))
