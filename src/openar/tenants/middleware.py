"""Runs every request inside the tenant scope of the signed-in user's membership."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from openar.tenants.access import Access, actor_of
from openar.tenants.models import Membership, Organization, request_policy
from openar.tenants.permissions import Perm

SESSION_KEY = "openar_membership_id"
UNSCOPED_PATHS = frozenset({"/healthz", "/readyz"})
STATIC_PREFIX = "/static/"


def memberships_of(user: Any) -> list[Membership]:
    """The user's own active memberships, across organizations (used to choose a scope)."""
    with scopes_disabled():
        memberships = list(
            Membership.objects.filter(user=user, is_active=True)
            .select_related("organization__security_policy", "creditor", "customer")
            .order_by("id")
        )
    for membership in memberships:
        # One Organization instance for the whole request (saves a query per page).
        for bound in (membership.customer, membership.creditor):
            if bound is not None:
                bound.organization = membership.organization
    return memberships


def membership_for_request(request: HttpRequest) -> Membership | None:
    user = request.user
    if not user.is_authenticated or not user.is_active:
        return None
    wanted = request.session.get(SESSION_KEY)
    memberships = memberships_of(user)
    for membership in memberships:
        if membership.pk == wanted:
            return membership
    return memberships[0] if memberships else None


MAGIC_SESSION_KEY = "openar_magic"
STARTED_KEY = "openar_session_started"
SEEN_KEY = "openar_session_seen"
SEEN_RESOLUTION = 60  # seconds: the last-seen time is written at most once a minute


def session_expired(request: HttpRequest, organization: Organization) -> bool:
    """Apply the organization's idle timeout and absolute session lifetime."""
    policy = request_policy(organization)
    now = time.time()
    started, seen = request.session.get(STARTED_KEY), request.session.get(SEEN_KEY)
    if not isinstance(started, int | float) or not isinstance(seen, int | float):
        request.session[STARTED_KEY] = request.session[SEEN_KEY] = now
        return False
    if now - seen > policy.session_idle_minutes * 60 or now - started > policy.session_max_hours * 3600:
        return True
    if now - seen > SEEN_RESOLUTION:
        request.session[SEEN_KEY] = now
    return False


def magic_access(request: HttpRequest) -> Access | None:
    """The narrow access of a confirmed magic link, while the link is not revoked."""
    from openar.identity.models import MagicLink

    data = request.session.get(MAGIC_SESSION_KEY)
    if not isinstance(data, dict) or not isinstance(data.get("link"), int):
        return None
    with scopes_disabled():
        link = (
            MagicLink.objects.select_related("organization__security_policy", "contact__customer")
            .filter(pk=data["link"], revoked_at__isnull=True, contact__isnull=False)
            .first()
        )
    if link is None or link.contact is None:
        request.session.pop(MAGIC_SESSION_KEY, None)
        return None
    customer = link.contact.customer
    customer.organization = link.organization
    return Access.from_magic_link(
        customer=customer, contact=link.contact, link_scope=link.scope, invoice_id=link.invoice_id
    )


VIEW_AS_SESSION_KEY = "openar_view_as"


def access_for_request(request: HttpRequest) -> Access | None:
    if request.user.is_authenticated:
        membership = membership_for_request(request)
        if membership is None:
            return None
        access = Access.from_membership(membership)
        if request.path.startswith("/portal/") and isinstance(request.session.get(VIEW_AS_SESSION_KEY), int):
            return _viewing_as(request, access)
        return access
    return magic_access(request)


def _viewing_as(request: HttpRequest, staff: Access) -> Access:
    """Staff who chose "view as customer" see the portal as that customer, read-only unless
    the policy lets them act for the customer; every page they open is audited."""
    from openar.core.audit import log_event
    from openar.customers.models import Customer

    if not staff.can(Perm.DESK_VIEW_AS):
        return staff
    with scope(organization=staff.organization):
        customer = Customer.objects.filter(pk=request.session[VIEW_AS_SESSION_KEY]).first()
        if customer is None:
            request.session.pop(VIEW_AS_SESSION_KEY, None)
            return staff
        customer.organization = staff.organization
        log_event(
            "openar.view_as.page",
            organization=staff.organization,
            obj=customer,
            actor=actor_of(request),
            data={"path": request.path[:200]},
        )
    return Access.viewing_as(
        staff, customer, can_act=request_policy(staff.organization).view_as_can_act
    )


def _set(request: HttpRequest, access: Access | None) -> None:
    request.access = access  # type: ignore[attr-defined]
    request.membership = access.membership if access else None  # type: ignore[attr-defined]
    request.organization = access.organization if access else None  # type: ignore[attr-defined]


class TenantScopeMiddleware:
    """Sets ``request.access`` (with ``request.membership`` and ``request.organization``)
    and runs the request inside that organization's scope and time zone.

    Without an access (anonymous pages) the scope is empty, so any tenant query raises.
    Superusers get an unscoped request only inside Django's admin.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path in UNSCOPED_PATHS or request.path.startswith(STATIC_PREFIX):
            # Probes and static files need no tenant; their scope stays empty (queries raise).
            _set(request, None)
            with scope(organization=None):
                return self.get_response(request)
        if request.path.startswith("/admin/") and getattr(request.user, "is_superuser", False):
            _set(request, None)
            with scopes_disabled():
                return self.get_response(request)
        access = access_for_request(request)
        if access is not None and session_expired(request, access.organization):
            logout(request)  # flushes the session: a full sign-in and a magic link alike
            access = None
            if not request.path.startswith(("/accounts/", "/l/")):
                return HttpResponseRedirect(f"{reverse('account_login')}?expired=1")
        _set(request, access)
        organization = access.organization if access else None
        if organization is not None:
            # Dates and times on pages read in the organization's time zone; storage stays UTC.
            timezone.activate(organization.tz)
        try:
            with scope(organization=organization):
                return self.get_response(request)
        finally:
            timezone.deactivate()
