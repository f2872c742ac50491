"""What a person must do before anything else: choose their own password when the
organization assigned their first one, and set up MFA where the policy asks for it.

django-allauth (``allauth.mfa``) does the rest: it asks for the code at sign-in whenever the
person has an authenticator (an app, a security key or passkey, recovery codes), whatever
the policy. What it cannot know is that a person *must* have one. This middleware closes
that gap: a signed-in person (a full session) whose role requires MFA in the organization
they are working in, and who has no authenticator yet, can open nothing but the account
and MFA pages (``/accounts/...``), sign-out, static files and the probes until they have
set one up. Every other address redirects to the authenticator-app setup page, with a
message saying why.
"""

from __future__ import annotations

from collections.abc import Callable

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from openar.tenants.access import access_of
from openar.tenants.middleware import STATIC_PREFIX, UNSCOPED_PATHS
from openar.tenants.models import request_policy

# Where a person without an authenticator may still go: allauth's account and MFA pages
# (set up, re-enter the password, sign out, sessions), the magic-link sign-out, and what
# needs no person at all.
OPEN_PREFIXES = ("/accounts/", "/l/sign-out/", STATIC_PREFIX)

ENROLMENT_MESSAGE = (
    "Your organization requires two-step verification. Set up an authenticator app "
    "(or a security key) to continue."
)


def mfa_enrolment_required(request: HttpRequest) -> bool:
    """True when the signed-in person must set up an authenticator before anything else."""
    user = request.user
    if not user.is_authenticated:
        return False
    access = access_of(request)
    if access is None or access.is_narrow:
        return False
    if not request_policy(access.organization).mfa_required_for(access.role):
        return False
    return not Authenticator.objects.filter(user_id=user.pk).exists()


# While a person still has the first password their organization assigned, these are the
# only addresses they can open: the page to choose their own, and signing out.
PASSWORD_CHANGE_PATHS = ("/accounts/password/change/", "/accounts/logout/", "/l/sign-out/", STATIC_PREFIX)
PASSWORD_CHANGE_MESSAGE = (
    "Choose your own password to continue: the one you were given works only once."  # noqa: S105
)


def password_change_required(request: HttpRequest) -> bool:
    """A full session of a person whose password was assigned by the organization."""
    user = request.user
    if not user.is_authenticated or not getattr(user, "must_change_password", False):
        return False
    access = access_of(request)
    return access is None or not access.is_narrow


def is_open_path(path: str) -> bool:
    return path in UNSCOPED_PATHS or path.startswith(OPEN_PREFIXES)


class MFAEnrolmentMiddleware:
    """Runs after ``TenantScopeMiddleware`` (it reads ``request.access``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if password_change_required(request) and not (
            request.path in UNSCOPED_PATHS or request.path.startswith(PASSWORD_CHANGE_PATHS)
        ):
            return self._redirect(request, reverse("account_change_password"), PASSWORD_CHANGE_MESSAGE)
        if not getattr(settings, "OPENAR_MFA_ENFORCE", True):
            return self.get_response(request)
        if is_open_path(request.path):
            # The set-up page says why when it is required (read only by the templates that ask).
            request.mfa_enrolment_required = SimpleLazyObject(  # type: ignore[attr-defined]
                lambda: mfa_enrolment_required(request)
            )
            return self.get_response(request)
        if mfa_enrolment_required(request):
            return self._to_enrolment(request)
        return self.get_response(request)

    @staticmethod
    def _to_enrolment(request: HttpRequest) -> HttpResponse:
        return MFAEnrolmentMiddleware._redirect(request, reverse("mfa_activate_totp"), ENROLMENT_MESSAGE)

    @staticmethod
    def _redirect(request: HttpRequest, target: str, message: str) -> HttpResponse:
        if request.headers.get("HX-Request"):
            # htmx would follow a redirect inside the fragment; make it load the whole page.
            response = HttpResponse(status=204)
            response["HX-Redirect"] = target
            return response
        if request.method in ("GET", "HEAD"):
            messages.warning(request, message)
        return HttpResponseRedirect(target)
