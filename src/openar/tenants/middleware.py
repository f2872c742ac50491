"""Runs every request inside the tenant scope of the signed-in user's membership."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from openar.tenants.models import Membership

SESSION_KEY = "openar_membership_id"
UNSCOPED_PATHS = frozenset({"/healthz", "/readyz"})
STATIC_PREFIX = "/static/"


def memberships_of(user: Any) -> list[Membership]:
    """The user's own active memberships, across organizations (used to choose a scope)."""
    with scopes_disabled():
        memberships = list(
            Membership.objects.filter(user=user, is_active=True)
            .select_related("organization", "creditor", "customer")
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


class TenantScopeMiddleware:
    """Sets ``request.membership`` and ``request.organization`` and activates the scope.

    Outside a membership (anonymous pages) the scope is empty, so any tenant query raises.
    Superusers get an unscoped request only inside Django's admin.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path in UNSCOPED_PATHS or request.path.startswith(STATIC_PREFIX):
            # Probes and static files need no tenant; their scope stays empty (queries raise).
            request.membership = None  # type: ignore[attr-defined]
            request.organization = None  # type: ignore[attr-defined]
            with scope(organization=None):
                return self.get_response(request)
        if request.path.startswith("/admin/") and getattr(request.user, "is_superuser", False):
            request.membership = None  # type: ignore[attr-defined]
            request.organization = None  # type: ignore[attr-defined]
            with scopes_disabled():
                return self.get_response(request)
        membership = membership_for_request(request)
        request.membership = membership  # type: ignore[attr-defined]
        request.organization = membership.organization if membership else None  # type: ignore[attr-defined]
        organization = membership.organization if membership else None
        if organization is not None:
            # Dates and times on pages read in the organization's time zone; storage stays UTC.
            timezone.activate(organization.tz)
        try:
            with scope(organization=organization):
                return self.get_response(request)
        finally:
            timezone.deactivate()
