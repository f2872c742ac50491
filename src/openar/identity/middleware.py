"""Changes of authenticators and passwords commit together with their audit row, or not at all.

``openar.identity.signals`` writes an audit row (and ends the person's other sessions) when
allauth reports an authenticator added, removed or reset, or a password changed or set. Left
alone, allauth's own write has committed by then, so a failure in our handler would leave a
new authenticator, or a new password, that the audit log never heard of. This middleware runs
the POSTs of allauth's MFA pages (``/accounts/2fa/...``), of the password change and set
pages, and of the page that sets a new password from an emailed reset link
(``/accounts/password/reset/key/...``) in one ``transaction.atomic()``, so that both are
written or neither is.

Two details make that true rather than merely look true:

- Django turns an exception inside the view into a 500 response before it reaches any
  middleware, so an exception alone would not roll the block back: a 5xx response does.
- allauth sends some of these signals (TOTP activation, recovery codes created or
  regenerated) from ``transaction.on_commit``, that is *after* the commit of the outermost
  block, whatever wraps the request. Inside this block, once the view has answered, those
  callbacks of allauth's are run before the commit instead, so that our handler writes in
  the same transaction and its failure undoes the change. This reads the connection's list
  of pending callbacks (``connection.run_on_commit``, internal to Django, unchanged from 4.2
  to 5.2): Django offers no public way to run a callback before the commit it waits for.
  Callbacks registered by anything else keep running after the commit.

Because that list is internal, its use fails loudly rather than quietly: the middleware
refuses to start on a Django outside the versions it was checked against
(``VERIFIED_DJANGO``), and an entry that is not Django's triple stops the request (which
then rolls back) instead of being passed over, which would let allauth's callbacks run
after the commit again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import django
from allauth.account import app_settings as account_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

logger = logging.getLogger(__name__)

# The pages whose POSTs change how a person signs in: every MFA page (add, remove, regenerate
# recovery codes; also the code step of sign-in, whose audit rows gain the same guarantee),
# and changing or setting the password.
ACCOUNT_CHANGE_URL_NAMES = ("mfa_index", "account_change_password", "account_set_password")
# Setting a new password from a reset: the page of the emailed link (its address carries the
# key, so its prefix is taken), or, when allauth resets by code, the page that completes it.
RESET_FROM_KEY_URL_NAME = "account_reset_password_from_key"
RESET_BY_CODE_URL_NAME = "account_complete_password_reset"

# The Django versions (major, minor; oldest, newest) whose ``connection.run_on_commit`` was
# read and found to hold the triples below. A newer Django: check django/db/backends/base/
# base.py (``on_commit`` and ``run_and_clear_commit_hooks``), then move the newest up.
VERIFIED_DJANGO = ((4, 2), (5, 2))

# What Django keeps per pending on_commit callback: the savepoints it belongs to, the
# callback, and whether its exceptions are only logged ("robust").
PendingHook = tuple[set[str], Callable[[], Any], bool]


def account_change_prefixes() -> tuple[str, ...]:
    """The path prefixes wrapped, from allauth's URL names (so a different mount point of
    ``allauth.urls`` is followed)."""
    if account_settings.PASSWORD_RESET_BY_CODE_ENABLED:
        reset = reverse(RESET_BY_CODE_URL_NAME)
    else:
        # Any key gives the address; the prefix is what comes before it.
        example = reverse(RESET_FROM_KEY_URL_NAME, kwargs={"uidb36": "0", "key": "k"})
        reset = example.removesuffix("0-k/")
    return (*(reverse(name) for name in ACCOUNT_CHANGE_URL_NAMES), reset)


def check_commit_hooks_api(connection: BaseDatabaseWrapper | None = None) -> None:
    """Refuse to start where reading Django's pending on_commit callbacks is not known to
    work: a Django version outside ``VERIFIED_DJANGO``, or a connection without the list."""
    version = django.VERSION[:2]
    oldest, newest = VERIFIED_DJANGO
    if not oldest <= version <= newest:
        raise ImproperlyConfigured(
            f"AtomicAccountChangesMiddleware reads Django's internal connection.run_on_commit, "
            f"checked for Django {oldest[0]}.{oldest[1]} to {newest[0]}.{newest[1]}; this is Django "
            f"{version[0]}.{version[1]}. Check that list in this version, then update VERIFIED_DJANGO "
            "in openar/identity/middleware.py."
        )
    connection = connection or connections[DEFAULT_DB_ALIAS]
    if not isinstance(getattr(connection, "run_on_commit", None), list):
        raise ImproperlyConfigured(
            "AtomicAccountChangesMiddleware needs Django's connection.run_on_commit list, which this "
            "Django does not have."
        )


def _pending(connection: BaseDatabaseWrapper) -> list[PendingHook]:
    # django-stubs still describes the pre-4.2 pairs; Django 4.2+ keeps triples.
    pending = cast(list[PendingHook], connection.run_on_commit)
    for entry in pending:
        if not (
            isinstance(entry, tuple)
            and len(entry) == 3
            and isinstance(entry[0], set)
            and callable(entry[1])
            and isinstance(entry[2], bool)
        ):
            raise RuntimeError(
                "Django's connection.run_on_commit no longer holds (savepoint ids, callback, robust) "
                f"triples (found {entry!r}): AtomicAccountChangesMiddleware cannot run allauth's "
                "callbacks before the commit. See VERIFIED_DJANGO in openar/identity/middleware.py."
            )
    return pending


def _is_allauths(hook: Callable[[], Any]) -> bool:
    return str(getattr(hook, "__module__", "") or "").startswith("allauth.")


def run_allauth_commit_hooks_now(connection: BaseDatabaseWrapper, start: int) -> None:
    """Run, here and now, the on_commit callbacks allauth registered since position ``start``
    of the pending list, and take them off the list (they must not run again after the
    commit). Callbacks they register in turn are picked up by the same loop; an exception
    propagates (rolling the surrounding block back) unless the callback is robust, as at a
    commit."""
    while True:
        pending = _pending(connection)  # re-read: a savepoint rollback replaces the list
        index = next((i for i in range(start, len(pending)) if _is_allauths(pending[i][1])), None)
        if index is None:
            return
        _savepoints, hook, robust = pending.pop(index)
        if not robust:
            hook()
            continue
        try:
            hook()
        except Exception:
            logger.exception("Error calling %s in on_commit() (run before the commit).", hook)


class AtomicAccountChangesMiddleware:
    """Placed right after allauth's ``AccountMiddleware``: it wraps the view and the
    middleware after it (tenant scope, MFA enrolment), not the session or message saving,
    which happen after the commit as for any other request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        check_commit_hooks_api()
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or not request.path.startswith(account_change_prefixes()):
            return self.get_response(request)
        with transaction.atomic():
            connection = transaction.get_connection()
            start = len(_pending(connection))
            response = self.get_response(request)
            if response.status_code >= 500:  # an exception, already turned into a response
                transaction.set_rollback(True)
                return response
            run_allauth_commit_hooks_now(connection, start)
        return response
