"""Who may enter which front door. Front doors ask here; they never re-implement it.

The identity issue extends this layer (MFA, narrow magic-link sessions, policies); front
doors keep calling the same decorators.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render

from openar.tenants.models import STAFF_ROLES, Role

View = Callable[..., HttpResponseBase]


def _require(roles: frozenset[str], door: str) -> Callable[[View], View]:
    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = getattr(request, "membership", None)
            if membership is None or membership.role not in roles:
                return render(request, "errors/no_access.html", {"door": door}, status=403)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


customer_required = _require(frozenset({Role.CUSTOMER}), "the customer portal")
staff_required = _require(frozenset(STAFF_ROLES), "the staff desk")


def landing_url(membership: Any) -> str:
    """Where a signed-in person starts."""
    if membership is None:
        return "/accounts/login/"
    if membership.role == Role.CUSTOMER:
        return "/portal/"
    if membership.role in STAFF_ROLES:
        return "/desk/"
    return "/welcome/"
