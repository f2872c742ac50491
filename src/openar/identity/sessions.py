"""Ending one session from the sessions page.

allauth's sessions page (``/accounts/sessions/``, our template
``usersessions/usersession_list.html``) can only end "all other sessions" at once. A person
who sees one session they do not recognise, a lost phone say, should be able to end just that
one and stay signed in everywhere else; each session on the page therefore has its own small
form posting here.

The id in the address is the ``UserSession`` row's, never the session key: the key is what
signs a browser in, and it must not appear in a page, a URL or a log.
"""

from __future__ import annotations

from allauth.account.adapter import get_adapter as get_account_adapter
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from openar.core.errors import ServiceError
from openar.core.http import client_ip
from openar.identity.models import User
from openar.identity.services import session_end


# POST only (a link or a prefetch must never sign anyone out) and CSRF-checked explicitly, so
# that the protection does not hang on the middleware list alone.
@login_required
@require_POST
@csrf_protect
def usersession_end(request: HttpRequest, session_id: int) -> HttpResponse:
    """End the signed-in person's session ``session_id``. An id that is not theirs answers
    404, like one that never existed, so that nobody can probe for other people's sessions."""
    user = request.user
    if not isinstance(user, User):  # login_required let only a signed-in person through
        raise Http404
    own_key = request.session.session_key
    try:
        alive = session_end(
            user=user, session_id=session_id, actor=user, ip=client_ip(request), current_session_key=own_key
        )
    except ServiceError as error:
        raise Http404(error.message) from error

    if own_key and not request.session.exists(own_key):
        # The person ended the session they are using: its data is already gone from the
        # store; signing out here also forgets it in this request, so that nothing saves it
        # again, and sends the browser to sign in.
        get_account_adapter(request).logout(request)
        messages.success(request, "You ended the session on this device, so you are signed out.")
        return HttpResponseRedirect(reverse("account_login"))

    if alive:
        messages.success(request, "Session ended: that browser is signed out.")
    else:
        messages.info(request, "That session had already ended.")
    return HttpResponseRedirect(reverse("usersessions_list"))
