"""How the person about to sign proved who they are, in words kept as evidence.

Signing needs two proofs, whatever the door, and the second one must be recent (within
``FRESH_SECONDS``, the lifetime of the portal's emailed step-up code): a second factor used
at sign-in days ago proves nothing about who is at the keyboard now.

- a sign-in link (a narrow session) counts once its contact has stepped up with an emailed
  code in the last 15 minutes (``identity.stepup``): "sign-in link + emailed code";
- a full session counts when a second factor was used in it in the last 15 minutes, at
  sign-in or since through allauth's re-authentication: "password + authenticator app",
  "password + security key", "password + recovery code" (allauth records each method the
  session used, and when);
- otherwise a full session steps up with an emailed code to the user's contact on the
  account: "password + emailed code", or uses its second factor again.

``None`` means: not yet; the front door offers the step-up.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from allauth.account.authentication import get_authentication_records
from allauth.mfa.models import Authenticator
from django.http import HttpRequest
from django.urls import reverse

from openar.customers.models import Contact
from openar.identity.stepup import STEP_UP_TTL, step_up_fresh
from openar.tenants.access import Access

FRESH_SECONDS = STEP_UP_TTL

MFA_WORDS = {
    "totp": "authenticator app",
    "webauthn": "security key",
    "recovery_codes": "recovery code",
}


def second_factor(request: HttpRequest, now: float | None = None) -> str:
    """The words for the second factor this full session used in the last
    ``FRESH_SECONDS`` ("" when none: never, or too long ago)."""
    user = request.user
    if not user.is_authenticated:
        return ""
    records = get_authentication_records(request, user)
    methods = {str(record.get("method", "")) for record in records}
    if "password" not in methods:
        return ""
    since = (now if now is not None else time.time()) - FRESH_SECONDS
    types = [str(record.get("type", "")) for record in records if _recent_mfa(record, since)]
    for kind in ("webauthn", "totp", "recovery_codes"):
        if kind in types:
            return MFA_WORDS[kind]
    return ""


def _recent_mfa(record: dict[str, object], since: float) -> bool:
    at = record.get("at")
    return record.get("method") == "mfa" and isinstance(at, int | float) and at >= since


def reauthentication_url(request: HttpRequest, next_path: str) -> str:
    """Where the signed-in user confirms with their second factor again and comes back to
    ``next_path`` (allauth's re-authentication: an authenticator app, or a security key);
    "" when they have none."""
    user = request.user
    if not user.is_authenticated:
        return ""
    types = set(
        Authenticator.objects.filter(
            user_id=user.pk, type__in=(Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)
        ).values_list("type", flat=True)
    )
    if Authenticator.Type.TOTP in types:
        name = "mfa_reauthenticate"
    elif Authenticator.Type.WEBAUTHN in types:
        name = "mfa_reauthenticate_webauthn"
    else:
        return ""
    return reverse(name) + "?" + urlencode({"next": next_path})


def signing_method(request: HttpRequest, access: Access, contact: Contact | None) -> str | None:
    """How this session proved who it is, recently enough to sign, for the evidence; None
    until it has."""
    stepped_up = contact is not None and step_up_fresh(request.session, contact)
    if access.is_narrow:
        return "sign-in link + emailed code" if stepped_up else None
    factor = second_factor(request)
    if factor:
        return f"password + {factor}"
    if stepped_up:
        return "password + emailed code"
    return None
