"""Audit of sign-ins, failures, lockouts and MFA changes, and the sessions they end.

Connected by ``IdentityConfig.ready()``. Each event is written in the organization of the
person's first active membership (people who sign in here always have one; without one
nothing is written). ``data`` never holds a password, a code, a secret or a token: only what
kind of thing happened, and how many sessions it ended.

- allauth's ``user_logged_in`` (the sign-in form, with MFA when the person has it):
  ``openar.identity.signed_in``.
- Django's ``user_login_failed`` (a wrong password for a known account):
  ``openar.identity.sign_in_failed``, and ``openar.identity.sign_in_locked`` when that failure
  used up the account's allowance (``ACCOUNT_RATE_LIMITS["login_failed"]``, per account).
- allauth.mfa's ``authentication_failed`` (a wrong code): ``openar.identity.mfa_failed``,
  and ``openar.identity.sign_in_locked`` when the codes' allowance is used up.
- allauth.mfa's ``authenticator_added`` / ``_removed`` / ``_reset`` and allauth's
  ``password_changed`` / ``password_set``: audited, and every other session of the person
  ends; ``password_reset``: audited, and every session of the person ends.
- Django's ``user_logged_in`` (every sign-in, whatever the door): the session is recorded as
  an allauth ``UserSession`` so that it can be listed and ended.
"""

from __future__ import annotations

import time
from typing import Any

from allauth.account import signals as account_signals
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.authentication import get_authentication_records
from allauth.core.internal import ratelimit
from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.contrib.auth import signals as auth_signals
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest

from openar.core.audit import log_event
from openar.core.http import client_ip, user_agent
from openar.identity.models import User
from openar.identity.services import sessions_end
from openar.tenants.middleware import memberships_of
from openar.tenants.models import Organization

SIGNED_IN = "openar.identity.signed_in"
SIGN_IN_FAILED = "openar.identity.sign_in_failed"
SIGN_IN_LOCKED = "openar.identity.sign_in_locked"
MFA_FAILED = "openar.identity.mfa_failed"
AUTHENTICATOR_ADDED = "openar.identity.authenticator_added"
AUTHENTICATOR_REMOVED = "openar.identity.authenticator_removed"
AUTHENTICATOR_RESET = "openar.identity.authenticator_reset"
PASSWORD_CHANGED = "openar.identity.password_changed"  # noqa: S105  (an audit action name)
PASSWORD_RESET = "openar.identity.password_reset"  # noqa: S105

# A request without a peer address (Django's test client signing in directly) still makes a
# session that must be possible to end.
UNKNOWN_ADDRESS = "0.0.0.0"  # noqa: S104  (stored as "unknown", never bound to)


def _organization_of(user: User) -> Organization | None:
    memberships = memberships_of(user)
    return memberships[0].organization if memberships else None


def _ip(request: HttpRequest | None) -> str | None:
    return client_ip(request) if request is not None else None


def _current_session_key(request: HttpRequest | None) -> str | None:
    session = getattr(request, "session", None)
    return session.session_key if session is not None else None


def _allowance_used_up(request: HttpRequest, *, key: str) -> bool:
    """Whether the per-account ("key") limits of ``login_failed`` leave no attempt now: the
    next try, with any password or code, would be refused. Reads allauth's own counters
    without taking a slot."""
    now = time.time()
    for rate in ratelimit.get_rates(app="allauth.account", action="login_failed"):
        if rate.per != "key":
            continue
        cache_key = ratelimit.get_cache_key(
            request, app="allauth.account", action="login_failed", rate=rate, key=key
        )
        allowed, _ = ratelimit.apply_rate(list(cache.get(cache_key, [])), now, rate, dry_run=True)
        if not allowed:
            return True
    return False


def _locked_data(factor: str) -> dict[str, Any]:
    """Which step locked, and the per-account limit that did it (e.g. 5 in 300 seconds)."""
    rates = [
        rate
        for rate in ratelimit.get_rates(app="allauth.account", action="login_failed")
        if rate.per == "key"
    ]
    data: dict[str, Any] = {"factor": factor}
    if rates:
        strictest = min(rates, key=lambda rate: rate.amount / rate.duration)
        data.update(attempts=strictest.amount, window_seconds=int(strictest.duration))
    return data


# --- sign-in ---------------------------------------------------------------------------------


def on_user_logged_in(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    organization = _organization_of(user)
    if organization is None:
        return
    records = get_authentication_records(request, user)
    data: dict[str, Any] = {
        "methods": sorted({str(record.get("method", "")) for record in records}),
        "user_agent": user_agent(request)[:200],
    }
    mfa_types = sorted({str(record["type"]) for record in records if record.get("method") == "mfa"})
    if mfa_types:
        data["mfa"] = mfa_types
    log_event(SIGNED_IN, organization=organization, obj=user, actor=user, data=data, ip=_ip(request))


def on_user_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    login = str(credentials.get("email") or credentials.get("username") or "").strip().lower()
    if not login or request is None:
        return
    user = User.objects.filter(email__iexact=login).first()
    if user is None:
        return
    organization = _organization_of(user)
    if organization is None:
        return
    ip = _ip(request)
    with transaction.atomic():
        log_event(
            SIGN_IN_FAILED,
            organization=organization,
            obj=user,
            data={"factor": "password", "user_agent": user_agent(request)[:200]},
            ip=ip,
        )
        key = get_account_adapter(request)._get_login_attempts_cache_key(request, email=login)
        if _allowance_used_up(request, key=key):
            log_event(
                SIGN_IN_LOCKED, organization=organization, obj=user, data=_locked_data("password"), ip=ip
            )


def on_mfa_authentication_failed(
    sender: Any, request: HttpRequest, user: User, authenticator: Authenticator, **kwargs: Any
) -> None:
    organization = _organization_of(user)
    if organization is None:
        return
    ip = _ip(request)
    with transaction.atomic():
        log_event(
            MFA_FAILED,
            organization=organization,
            obj=user,
            data={"type": authenticator.type, "reauthentication": bool(kwargs.get("reauthentication"))},
            ip=ip,
        )
        # allauth.mfa counts wrong codes per user under this key (base/internal/flows.py).
        if _allowance_used_up(request, key=f"mfa-auth-user-{user.pk}"):
            log_event(SIGN_IN_LOCKED, organization=organization, obj=user, data=_locked_data("code"), ip=ip)


def record_user_session(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    """Every signed-in session becomes a ``UserSession``, whatever signed it in (allauth's
    form records its own; this covers ``login()`` anywhere else)."""
    if request is None or not hasattr(request, "session"):
        return
    if not request.session.session_key:
        request.session.save()
    UserSession.objects.update_or_create(
        session_key=request.session.session_key,
        defaults={
            "user": user,
            "ip": client_ip(request) or UNKNOWN_ADDRESS,
            "user_agent": str(request.META.get("HTTP_USER_AGENT", ""))[:200],
        },
    )


# --- changes to how the person signs in -------------------------------------------------------


def _changed(
    action: str, request: HttpRequest | None, user: User, *, keep_current: bool, **data: Any
) -> None:
    organization = _organization_of(user)
    with transaction.atomic():
        ended = sessions_end(
            user=user, keep_session_key=_current_session_key(request) if keep_current else None
        )
        if organization is None:
            return
        actor = getattr(request, "user", None)
        log_event(
            action,
            organization=organization,
            obj=user,
            actor=actor if isinstance(actor, User) else None,
            data={**data, "other_sessions_ended": ended},
            ip=_ip(request),
        )


def on_authenticator_added(
    sender: Any, request: HttpRequest, user: User, authenticator: Authenticator, **kwargs: Any
) -> None:
    _changed(AUTHENTICATOR_ADDED, request, user, keep_current=True, type=authenticator.type)


def on_authenticator_removed(
    sender: Any, request: HttpRequest, user: User, authenticator: Authenticator, **kwargs: Any
) -> None:
    _changed(AUTHENTICATOR_REMOVED, request, user, keep_current=True, type=authenticator.type)


def on_authenticator_reset(
    sender: Any, request: HttpRequest, user: User, authenticator: Authenticator, **kwargs: Any
) -> None:
    _changed(AUTHENTICATOR_RESET, request, user, keep_current=True, type=authenticator.type)


def _own_password_chosen(user: User) -> None:
    """A first password assigned by the organization has been replaced by the person's own."""
    if user.must_change_password:
        User.objects.filter(pk=user.pk).update(must_change_password=False)
        user.must_change_password = False


def on_password_changed(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    _own_password_chosen(user)
    _changed(PASSWORD_CHANGED, request, user, keep_current=True)


def on_password_reset(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    # The browser that used the emailed link is not signed in: every session of the person ends.
    _own_password_chosen(user)
    _changed(PASSWORD_RESET, request, user, keep_current=False)


def connect() -> None:
    """Called once, by ``IdentityConfig.ready()``."""
    uid = "openar.identity.signals"
    account_signals.user_logged_in.connect(on_user_logged_in, dispatch_uid=f"{uid}.signed_in")
    auth_signals.user_login_failed.connect(on_user_login_failed, dispatch_uid=f"{uid}.failed")
    auth_signals.user_logged_in.connect(record_user_session, dispatch_uid=f"{uid}.session")
    mfa_signals.authentication_failed.connect(on_mfa_authentication_failed, dispatch_uid=f"{uid}.mfa_failed")
    mfa_signals.authenticator_added.connect(on_authenticator_added, dispatch_uid=f"{uid}.added")
    mfa_signals.authenticator_removed.connect(on_authenticator_removed, dispatch_uid=f"{uid}.removed")
    mfa_signals.authenticator_reset.connect(on_authenticator_reset, dispatch_uid=f"{uid}.reset")
    account_signals.password_changed.connect(on_password_changed, dispatch_uid=f"{uid}.password_changed")
    account_signals.password_set.connect(on_password_changed, dispatch_uid=f"{uid}.password_set")
    account_signals.password_reset.connect(on_password_reset, dispatch_uid=f"{uid}.password_reset")
