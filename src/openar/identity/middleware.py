"""Changes of authenticators and passwords commit together with their audit row, or not at all.

``openar.identity.signals`` writes an audit row (and ends the person's other sessions) when
allauth reports an authenticator added, removed or reset, or a password changed or set. Left
alone, allauth's own write has committed by then, so a failure in our handler would leave a
new authenticator, or a new password, that the audit log never heard of. This middleware runs
the POSTs of allauth's MFA pages (``/accounts/2fa/...``) and of the password change and set
pages in one ``transaction.atomic()``, so that both are written or neither is.

Two details make that true rather than merely look true:

- Django turns an exception inside the view into a 500 response before it reaches any
  middleware, so an exception alone would not roll the block back: a 5xx response does.
- allauth sends some of these signals (TOTP activation, recovery codes created or
  regenerated) from ``transaction.on_commit``, that is *after* the commit of the outermost
  block, whatever wraps the request. Inside this block, once the view has answered, those
  callbacks of allauth's are run before the commit instead, so that our handler writes in
  the same transaction and its failure undoes the change. This reads the connection's list
  of pending callbacks (``connection.run_on_commit``, internal to Django, unchanged from 4.2
  to 5.2). Callbacks registered by anything else keep running after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

logger = logging.getLogger(__name__)

# The pages whose POSTs change how a person signs in: every MFA page (add, remove, regenerate
# recovery codes; also the code step of sign-in, whose audit rows gain the same guarantee),
# and changing or setting the password.
ACCOUNT_CHANGE_URL_NAMES = ("mfa_index", "account_change_password", "account_set_password")

# What Django keeps per pending on_commit callback: the savepoints it belongs to, the
# callback, and whether its exceptions are only logged ("robust").
PendingHook = tuple[set[str], Callable[[], Any], bool]


def account_change_prefixes() -> tuple[str, ...]:
    """The path prefixes wrapped, from allauth's URL names (so a different mount point of
    ``allauth.urls`` is followed)."""
    return tuple(reverse(name) for name in ACCOUNT_CHANGE_URL_NAMES)


def _pending(connection: BaseDatabaseWrapper) -> list[PendingHook]:
    # django-stubs still describes the pre-4.2 pairs; Django 4.2+ keeps triples.
    return cast(list[PendingHook], connection.run_on_commit)


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
