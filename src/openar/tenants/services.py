"""Services that change an organization's security policy and who belongs to it."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django_scopes import scopes_disabled

from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.customers.models import Customer
from openar.identity.invitations import Invitation, first_password, invitation_send
from openar.identity.models import User
from openar.identity.services import (
    MEMBERSHIP_DEACTIVATED,
    MEMBERSHIP_REACTIVATED,
    sessions_end,
    user_deactivate,
    user_reactivate,
)
from openar.tenants.models import Creditor, Membership, Organization, Role, SecurityPolicy, policy_for

POLICY_FIELDS = (
    "mfa_staff",
    "mfa_creditors",
    "mfa_customers",
    "password_mode",
    "password_min_length",
    "session_idle_minutes",
    "session_max_hours",
    "seats_per_creditor",
    "seats_per_customer",
    "magic_link_days",
    "magic_link_max_uses",
    "staff_magic_links",
    "step_up_by_email_code",
    "inactive_days",
    "view_as_can_act",
)


def policy_update(
    *, organization: Organization, actor: User | None, changes: dict[str, Any]
) -> SecurityPolicy:
    """Apply validated ``changes`` (field → value) and audit exactly what changed."""
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown policy setting(s): {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        policy = SecurityPolicy.objects.select_for_update().get(pk=policy_for(organization).pk)
        diff = {}
        for name, value in changes.items():
            before = getattr(policy, name)
            if before != value:
                diff[name] = [before, value]
                setattr(policy, name, value)
        if diff:
            policy.full_clean()
            policy.save()
            log_event("openar.policy.changed", organization=organization, obj=policy, actor=actor, data=diff)
    return policy


def _seats_taken(*, customer: Customer | None, creditor: Creditor | None) -> int:
    bound = Q(customer=customer) if customer is not None else Q(creditor=creditor)
    return Membership.objects.filter(bound, is_active=True).count()


def _check_seat(policy: SecurityPolicy, *, customer: Customer | None, creditor: Creditor | None) -> None:
    """Lock the customer or creditor row, then refuse when its seats are all taken: the
    count and the caller's insert or update happen under that lock, so concurrent
    invitations never exceed the limit."""
    if customer is not None:
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        limit, bound_name = policy.seats_per_customer, customer.name
    elif creditor is not None:
        Creditor.objects.select_for_update().filter(pk=creditor.pk).first()
        limit, bound_name = policy.seats_per_creditor, creditor.name
    else:
        return  # staff seats are not limited by the policy
    if limit and _seats_taken(customer=customer, creditor=creditor) >= limit:
        raise ServiceError(
            f"{bound_name} already has {limit} user{'s' if limit != 1 else ''}, the most your "
            f"organization's policy allows. Remove a user first, or ask an admin to raise the limit.",
            field="email",
            code="seat_limit",
        )


def membership_invite(
    *,
    organization: Organization,
    email: str,
    full_name: str,
    role: str,
    actor: User | None,
    customer: Customer | None = None,
    creditor: Creditor | None = None,
) -> Invitation:
    """Give a person (a new or existing user) a place in the organization and email them
    the invitation. Customer and creditor-client seats are limited by the policy. How the
    person gets a first password follows the policy (``openar.identity.invitations``); an
    assigned password is in the result, to be shown once to the inviter."""
    email = email.strip().lower()
    if "@" not in email:
        raise ServiceError("Enter the person's email address.", field="email")
    if role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}.", field="role")
    if role == Role.CUSTOMER and customer is None:
        raise ServiceError("A customer user belongs to one customer.", field="customer")
    if role == Role.CREDITOR and creditor is None:
        raise ServiceError("A creditor-client user belongs to one creditor.", field="creditor")
    customer = customer if role == Role.CUSTOMER else None
    creditor = creditor if role == Role.CREDITOR else None
    policy = policy_for(organization)
    with transaction.atomic():
        _check_seat(policy, customer=customer, creditor=creditor)
        user = User.objects.select_for_update().filter(email__iexact=email).first()
        if user is not None and not user.is_active:
            raise ServiceError(
                f"{email} has been deactivated. Reactivate them on the People page instead.", field="email"
            )
        new_user = user is None
        if user is None:
            user = User.objects.create_user(email=email, full_name=full_name.strip())
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    organization=organization, user=user, role=role, customer=customer, creditor=creditor
                )
        except IntegrityError as exc:
            with scopes_disabled():
                inactive = Membership.objects.filter(
                    organization=organization,
                    user=user,
                    customer=customer,
                    creditor=creditor,
                    is_active=False,
                ).exists()
            if inactive:
                raise ServiceError(
                    f"{email} had this access and was deactivated. Reactivate them on the People page.",
                    field="email",
                ) from exc
            raise ServiceError(f"{email} already has this access.", field="email") from exc
        how, password = first_password(user, policy)
        invitation = Invitation(membership, new_user=new_user, how=how, assigned_password=password)
        log_event(
            "openar.membership.invited",
            organization=organization,
            obj=membership,
            actor=actor,
            data={
                "role": role,
                "customer": customer.pk if customer else None,
                "creditor": creditor.pk if creditor else None,
                "new_user": new_user,
                "first_password": how,
            },
        )
        invitation_send(invitation=invitation, inviter=actor)
    return invitation


def invitation_resend(*, membership: Membership, actor: User | None) -> Invitation:
    """Send the invitation again (it was lost, or its link expired). Under an assigned
    password policy a fresh first password replaces the old one; someone who has chosen
    their own password is simply reminded where to sign in."""
    if not membership.is_active or not membership.user.is_active:
        raise ServiceError("Reactivate this person before sending the invitation again.")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=membership.user_id)
        membership.user = user
        how, password = first_password(user, policy_for(membership.organization))
        invitation = Invitation(membership, new_user=False, how=how, assigned_password=password)
        log_event(
            "openar.membership.invitation_resent",
            organization=membership.organization,
            obj=membership,
            actor=actor,
            data={"first_password": how},
        )
        invitation_send(invitation=invitation, inviter=actor)
    return invitation


def membership_deactivate(*, membership: Membership, actor: User | None) -> int:
    """Take the person's access to this organization away and end their sessions (they
    sign in again to reach any other organization of theirs). Someone left with no access
    anywhere is deactivated as a user as well. Returns how many sessions ended."""
    if actor is not None and membership.user_id == actor.pk:
        raise ServiceError("You cannot deactivate yourself. Ask another admin.")
    with transaction.atomic():
        if not Membership.objects.filter(pk=membership.pk, is_active=True).exists():
            return 0
        with scopes_disabled():
            elsewhere = (
                Membership.objects.filter(user_id=membership.user_id, is_active=True)
                .exclude(pk=membership.pk)
                .exists()
            )
        # The user first (while this membership still counts, so that its organization's
        # audit log records the user's deactivation too), then the membership.
        ended = (
            sessions_end(user=membership.user)
            if elsewhere
            else user_deactivate(user=membership.user, actor=actor, reason="by_admin")
        )
        Membership.objects.filter(pk=membership.pk).update(is_active=False)
        membership.is_active = False
        log_event(
            MEMBERSHIP_DEACTIVATED,
            organization=membership.organization,
            obj=membership,
            actor=actor,
            data={"user": membership.user_id, "reason": "by_admin"},
        )
        return ended


def membership_reactivate(*, membership: Membership, actor: User | None) -> None:
    """Give the access back (within the seat limits), and let the user sign in again if they
    had been deactivated (by an admin or for inactivity); their inactivity counts afresh."""
    with transaction.atomic():
        changed = False
        if not membership.is_active:
            _check_seat(
                policy_for(membership.organization),
                customer=membership.customer,
                creditor=membership.creditor,
            )
            changed = bool(
                Membership.objects.filter(pk=membership.pk, is_active=False).update(is_active=True)
            )
            membership.is_active = True
        changed = user_reactivate(user=membership.user, actor=actor) or changed
        if not changed:
            return  # nothing changed: no event, and the inactivity clock keeps its count
        log_event(
            MEMBERSHIP_REACTIVATED,
            organization=membership.organization,
            obj=membership,
            actor=actor,
            data={"user": membership.user_id},
        )
