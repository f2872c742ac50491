"""Who may still sign in: ending sessions, deactivating and reactivating users, and the daily
sweep of users inactive for longer than their organization allows.

Sessions are ended through allauth's ``UserSession`` rows: one per signed-in session,
recorded at every sign-in (``openar.identity.signals``). Ending one deletes the session from
the session store (database and cache), so the browser holding it is signed out at its next
request, on every machine.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass

from allauth.usersessions.models import UserSession
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, Q
from django.db.models.functions import Cast
from django_scopes import scopes_disabled

from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.identity.models import User
from openar.tenants.models import Membership, Organization, SecurityPolicy

USER_DEACTIVATED = "openar.user.deactivated"
USER_REACTIVATED = "openar.user.reactivated"
MEMBERSHIP_DEACTIVATED = "openar.membership.deactivated"
SESSION_ENDED = "openar.identity.session_ended"
MEMBERSHIP_REACTIVATED = "openar.membership.reactivated"


def sessions_end(*, user: User, keep_session_key: str | None = None) -> int:
    """End every session of ``user`` except ``keep_session_key`` (the caller's own, when it
    should survive). Returns how many were still alive (rows of sessions already gone, such
    as the key a password change replaced, are tidied away without counting)."""
    ended = 0
    for session in UserSession.objects.filter(user_id=user.pk).exclude(session_key=keep_session_key or ""):
        ended += session.exists()
        session.end()
    return ended


def session_end(
    *,
    user: User,
    session_id: int,
    actor: User | None,
    ip: str | None,
    current_session_key: str | None = None,
) -> bool:
    """End one session of ``user`` (the ``UserSession`` with ``session_id``), as the person
    does from their sessions page. Returns whether it was still alive (a row whose session had
    already expired is only tidied away, and audits nothing: nothing was signed out).

    The row is looked up among ``user``'s own sessions only, so an id of someone else's
    session is refused exactly like an unknown one (``ServiceError``): nobody learns which ids
    exist, and nothing changes. ``current_session_key`` (the caller's own session) only tells
    the audit whether the person ended the session they were using; signing that browser out
    properly is the caller's job, as it holds the request.

    The audit event holds the ended session's address and browser, never its key: the key
    is what signs a browser in.
    """
    with transaction.atomic():
        session = UserSession.objects.select_for_update().filter(pk=session_id, user_id=user.pk).first()
        if session is None:
            raise ServiceError("There is no such session among yours.", code="not_found")
        alive = session.exists()
        if alive:
            data = {
                "session": session.pk,
                "ip": session.ip,
                "user_agent": session.user_agent[:120],
                "current": bool(current_session_key) and session.session_key == current_session_key,
            }
            # Audited before the store forgets the session: if the audit cannot be written,
            # the transaction rolls back before anything is signed out.
            for organization in organizations_of(user):
                log_event(SESSION_ENDED, organization=organization, obj=user, actor=actor, data=data, ip=ip)
        session.end()
    return alive


def organizations_of(user: User) -> list[Organization]:
    """The organizations of the user's active memberships, oldest membership first."""
    with scopes_disabled():
        memberships = (
            Membership.objects.filter(user=user, is_active=True).select_related("organization").order_by("id")
        )
        found: dict[int, Organization] = {}
        for membership in memberships:
            found.setdefault(membership.organization_id, membership.organization)
    return list(found.values())


def user_deactivate(*, user: User, actor: User | None, reason: str = "") -> int:
    """Stop ``user`` from signing in and end every session they have (also when they were
    inactive already). Audited, when it changes anything, in each of their organizations.
    Returns how many sessions were ended."""
    with transaction.atomic():
        changed = User.objects.filter(pk=user.pk, is_active=True).update(is_active=False)
        user.is_active = False
        ended = sessions_end(user=user)
        if not changed:
            return ended
        for organization in organizations_of(user):
            log_event(
                USER_DEACTIVATED,
                organization=organization,
                obj=user,
                actor=actor,
                data={"sessions_ended": ended, "reason": reason or "deactivated"},
            )
    return ended


def user_reactivate(*, user: User, actor: User | None) -> bool:
    """Let ``user`` sign in again. Their inactivity is counted afresh from now (the sweep
    reads this event). Returns False when they were already active."""
    with transaction.atomic():
        changed = User.objects.filter(pk=user.pk, is_active=False).update(is_active=True)
        user.is_active = True
        if not changed:
            return False
        for organization in organizations_of(user):
            log_event(USER_REACTIVATED, organization=organization, obj=user, actor=actor)
    return True


@dataclass(frozen=True)
class InactiveSweep:
    users: int  # users deactivated (every organization of theirs found them inactive)
    memberships: int  # memberships deactivated in one organization, the user staying active elsewhere


def _stale_memberships(now: datetime.datetime) -> dict[int, set[int]]:
    """Active memberships (of active users) whose organization's ``inactive_days`` has
    passed since the user last signed in (or joined, or was reactivated): user id → ids."""
    default_days = SecurityPolicy._meta.get_field("inactive_days").get_default()
    days_of = dict(SecurityPolicy.objects.values_list("organization_id", "inactive_days"))
    organizations_by_days: dict[int, list[int]] = defaultdict(list)
    for organization_id in Organization.objects.values_list("id", flat=True):
        days = days_of.get(organization_id, default_days)
        if days:  # 0: this organization never deactivates anyone
            organizations_by_days[days].append(organization_id)

    stale: dict[int, set[int]] = defaultdict(set)
    with scopes_disabled():
        for days, organization_ids in organizations_by_days.items():
            cutoff = now - datetime.timedelta(days=days)
            reactivated_since = AuditEvent.objects.filter(
                action=USER_REACTIVATED,
                object_type=User._meta.label_lower,
                object_id=Cast(OuterRef("user_id"), CharField()),
                created_at__gte=cutoff,
            )
            membership_reactivated_since = AuditEvent.objects.filter(
                action=MEMBERSHIP_REACTIVATED,
                object_type=Membership._meta.label_lower,
                object_id=Cast(OuterRef("id"), CharField()),
                created_at__gte=cutoff,
            )
            rows = (
                Membership.objects.filter(
                    organization_id__in=organization_ids, is_active=True, user__is_active=True
                )
                .filter(
                    Q(user__last_login__lt=cutoff)
                    | Q(user__last_login__isnull=True, user__date_joined__lt=cutoff)
                )
                .exclude(Exists(reactivated_since))
                .exclude(Exists(membership_reactivated_since))
                .values_list("user_id", "id")
            )
            for user_id, membership_id in rows:
                stale[user_id].add(membership_id)
    return stale


def deactivate_inactive_users(now: datetime.datetime) -> InactiveSweep:
    """The daily sweep (``openar manage deactivate_inactive``). A user inactive for longer
    than every one of their organizations allows is deactivated (``user_deactivate``: their
    sessions end); one still within the limit of another organization loses only the
    memberships of the organizations whose limit has passed."""
    stale = _stale_memberships(now)
    if not stale:
        return InactiveSweep(users=0, memberships=0)
    with scopes_disabled():
        active: dict[int, set[int]] = defaultdict(set)
        for user_id, membership_id in Membership.objects.filter(
            user_id__in=stale, is_active=True
        ).values_list("user_id", "id"):
            active[user_id].add(membership_id)

    users = memberships = 0
    for user in User.objects.filter(pk__in=stale).order_by("pk"):
        if stale[user.pk] >= active[user.pk]:
            user_deactivate(user=user, actor=None, reason="inactive")
            users += 1
            continue
        with scopes_disabled(), transaction.atomic():
            for membership in Membership.objects.select_related("organization").filter(
                pk__in=stale[user.pk], is_active=True
            ):
                if Membership.objects.filter(pk=membership.pk, is_active=True).update(is_active=False):
                    memberships += 1
                    log_event(
                        MEMBERSHIP_DEACTIVATED,
                        organization=membership.organization,
                        obj=membership,
                        data={"user": user.pk, "reason": "inactive"},
                    )
    return InactiveSweep(users=users, memberships=memberships)
