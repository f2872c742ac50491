"""Demo-only one-click sign-in (the printed persona links of ``openar demo``).

Registered only when ``OPENAR_DEMO`` is on. Opening the link shows a confirm page and signs
in nobody (mail scanners and previews open links); the POST signs in. Real magic links,
with hashed single-use tokens and policies, belong to the identity layer proper.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from openar.identity.models import User
from openar.tenants.access import landing_url
from openar.tenants.middleware import SESSION_KEY, memberships_of

SALT = "openar.demo-signin"
MAX_AGE = 30 * 24 * 3600


def demo_signin_token(user: User) -> str:
    return signing.dumps(user.pk, salt=SALT, compress=True)


PENDING_KEY = "openar_demo_signin_user"


@require_http_methods(["GET", "HEAD"])
def demo_signin(request: HttpRequest, token: str) -> HttpResponse:
    """The printed link: checks the token, keeps who it names in the session, and redirects
    to an address without the token (which never reaches a Referer header or a log)."""
    if not getattr(settings, "OPENAR_DEMO", False):
        raise Http404
    try:
        user_id = signing.loads(token, salt=SALT, max_age=MAX_AGE)
        user = User.objects.get(pk=user_id, is_active=True)
    except (signing.BadSignature, User.DoesNotExist):
        response = render(request, "identity/demo_signin_invalid.html", status=400)
    else:
        request.session[PENDING_KEY] = user.pk
        response = HttpResponseRedirect(reverse("demo_signin_confirm"))
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_http_methods(["GET", "HEAD", "POST"])
def demo_signin_confirm(request: HttpRequest) -> HttpResponse:
    """Opening the link signs in nobody (mail scanners open links); the POST does."""
    if not getattr(settings, "OPENAR_DEMO", False):
        raise Http404
    pending = request.session.get(PENDING_KEY)
    user = User.objects.filter(pk=pending, is_active=True).first() if isinstance(pending, int) else None
    if user is None:
        return render(request, "identity/demo_signin_invalid.html", status=400)
    memberships = memberships_of(user)
    if request.method == "POST":
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if memberships:
            request.session[SESSION_KEY] = memberships[0].pk
        return HttpResponseRedirect(landing_url(memberships[0] if memberships else None))
    return render(
        request,
        "identity/demo_signin.html",
        {"person": user, "membership": memberships[0] if memberships else None},
    )
