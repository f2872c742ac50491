"""Magic-link sign-in (open, confirm, request a fresh link, sign out) and the demo's
one-click staff sign-in.

Opening a link (GET or HEAD) consumes nothing: mail scanners and previews open links. It
remembers which link was opened in the session and redirects to an address without the
token, with ``Referrer-Policy: no-referrer``; the confirm POST spends one use.
"""

from __future__ import annotations

from allauth.account.internal.flows.login import perform_login, record_authentication
from allauth.account.models import Login
from django.conf import settings
from django.contrib.auth import login, logout
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from django_scopes import scopes_disabled

from openar.core import ratelimit
from openar.core.http import client_ip, user_agent
from openar.identity.magic import (
    LinkNotUsable,
    magic_link_consume,
    magic_link_find,
    magic_link_request,
    staff_link_usable,
)
from openar.identity.models import MagicLink, User
from openar.tenants.access import Access, landing_url
from openar.tenants.middleware import MAGIC_SESSION_KEY, SESSION_KEY, memberships_of

PENDING_KEY = "openar_magic_pending"
STATE_KEY = "openar_magic_state"


def _no_referrer(response: HttpResponse) -> HttpResponse:
    response["Referrer-Policy"] = "no-referrer"
    return _no_store(response)


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def _unusable(request: HttpRequest, state: str) -> HttpResponse:
    status = 404 if state == "unknown" else 410
    return _no_store(render(request, "identity/link_unusable.html", {"state": state}, status=status))


@require_http_methods(["GET", "HEAD"])
def magic_open(request: HttpRequest, token: str) -> HttpResponse:
    """The token's own address only ever answers with a redirect, so that the token never
    reaches a Referer header, a page's forms, or a browser's history of page titles."""
    link = magic_link_find(token)
    state = link.state(timezone.now()) if link is not None else "unknown"
    if link is not None and state == "valid":
        request.session[PENDING_KEY] = link.pk
        target = reverse("magic_confirm")
    else:
        request.session[STATE_KEY] = state
        target = reverse("magic_unusable")
    return _no_referrer(HttpResponseRedirect(target))


@require_http_methods(["GET", "HEAD"])
def magic_unusable(request: HttpRequest) -> HttpResponse:
    state = request.session.get(STATE_KEY)
    return _unusable(request, state if state in ("expired", "used", "revoked") else "unknown")


@require_http_methods(["GET", "HEAD", "POST"])
def magic_confirm(request: HttpRequest) -> HttpResponse:
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, int):
        return _unusable(request, "unknown")
    with scopes_disabled():
        link = (
            MagicLink.objects.select_related("organization", "contact__customer", "user")
            .filter(pk=pending)
            .first()
        )
    if link is not None and link.user is not None:
        return _staff_confirm(request, link)
    if link is None or link.contact is None:
        return _unusable(request, "unknown")
    if request.method != "POST":
        state = link.state(timezone.now())
        if state != "valid":
            return _unusable(request, state)
        return _no_store(render(request, "identity/link_confirm.html", {"link": link}))
    try:
        link = magic_link_consume(link_id=link.pk, ip=client_ip(request), user_agent=user_agent(request))
    except LinkNotUsable as exc:
        return _unusable(request, exc.state)
    # A link signs in its contact in a fresh session: nothing of an earlier sign-in (a user,
    # another contact's link, a step-up proved by someone else) carries over.
    if request.user.is_authenticated:
        logout(request)
    else:
        request.session.flush()
    request.session[MAGIC_SESSION_KEY] = {"link": link.pk}
    return HttpResponseRedirect(link.target or "/portal/")


def _staff_confirm(request: HttpRequest, link: MagicLink) -> HttpResponse:
    """A staff sign-in link (where the policy allows them): it stands in for the password
    only. The sign-in goes through allauth, so a person with a second factor is asked for
    it next, and the sign-in is audited and recorded like any other."""
    state = link.state(timezone.now())
    if state == "valid" and not staff_link_usable(link):
        state = "revoked"  # the policy no longer allows staff links, or the person left
    if state != "valid":
        return _unusable(request, state)
    if request.method != "POST":
        return _no_store(render(request, "identity/staff_link_confirm.html", {"link": link}))
    try:
        link = magic_link_consume(link_id=link.pk, ip=client_ip(request), user_agent=user_agent(request))
    except LinkNotUsable as exc:
        return _unusable(request, exc.state)
    user = link.user
    assert user is not None  # noqa: S101  (checked above)
    if request.user.is_authenticated:
        logout(request)
    else:
        request.session.flush()
    membership = next((m for m in memberships_of(user) if m.organization_id == link.organization_id), None)
    if membership is None:  # the person lost the access between opening and confirming
        return _unusable(request, "revoked")
    request.session[SESSION_KEY] = membership.pk
    record_authentication(request, user, method="magic_link")
    return perform_login(request, Login(user=user, redirect_url=link.target or "/desk/", email=user.email))


@require_http_methods(["GET", "POST"])
def magic_request(request: HttpRequest) -> HttpResponse:
    """Enter an email, get a link: the answer is the same whether the address is known."""
    if request.method != "POST":
        return render(request, "identity/link_request.html", {})
    email = str(request.POST.get("email", "")).strip()[:254]
    if "@" not in email:
        return render(
            request,
            "identity/link_request.html",
            {"email": email, "error": "Enter the email address we write to."},
            status=400,
        )
    ip = client_ip(request) or "unknown"
    if not ratelimit.hit("magic-request-ip", ip, limit=10, window=60):
        return render(request, "identity/link_request.html", {"email": email, "throttled": True}, status=429)
    if ratelimit.hit("magic-request-email", email, limit=3, window=900):
        magic_link_request(email=email, ip=client_ip(request))
    return render(request, "identity/link_sent.html", {"email": email})


@require_http_methods(["POST"])
def magic_sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)  # flushes the session, the magic-link access with it
    return HttpResponseRedirect(reverse("account_login"))


# --- the demo's one-click sign-in for staff and creditor personas -----------------------------

DEMO_SALT = "openar.demo-signin"
DEMO_MAX_AGE = 30 * 24 * 3600
DEMO_PENDING_KEY = "openar_demo_signin_user"


def demo_signin_token(user: User) -> str:
    return signing.dumps(user.pk, salt=DEMO_SALT, compress=True)


@require_http_methods(["GET", "HEAD"])
def demo_signin(request: HttpRequest, token: str) -> HttpResponse:
    """The printed link: checks the token, keeps who it names in the session, and redirects
    to an address without the token. Registered only when ``OPENAR_DEMO`` is on."""
    if not getattr(settings, "OPENAR_DEMO", False):
        raise Http404
    try:
        user_id = signing.loads(token, salt=DEMO_SALT, max_age=DEMO_MAX_AGE)
        user = User.objects.get(pk=user_id, is_active=True)
    except (signing.BadSignature, User.DoesNotExist):
        return _no_referrer(render(request, "identity/demo_signin_invalid.html", status=400))
    request.session[DEMO_PENDING_KEY] = user.pk
    return _no_referrer(HttpResponseRedirect(reverse("demo_signin_confirm")))


@require_http_methods(["GET", "HEAD", "POST"])
def demo_signin_confirm(request: HttpRequest) -> HttpResponse:
    if not getattr(settings, "OPENAR_DEMO", False):
        raise Http404
    pending = request.session.get(DEMO_PENDING_KEY)
    user = User.objects.filter(pk=pending, is_active=True).first() if isinstance(pending, int) else None
    if user is None:
        return render(request, "identity/demo_signin_invalid.html", status=400)
    memberships = memberships_of(user)
    if request.method == "POST":
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if memberships:
            request.session[SESSION_KEY] = memberships[0].pk
        access = Access.from_membership(memberships[0]) if memberships else None
        return HttpResponseRedirect(landing_url(access, signed_in=True))
    return render(
        request,
        "identity/demo_signin.html",
        {"person": user, "membership": memberships[0] if memberships else None},
    )
