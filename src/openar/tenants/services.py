"""Services that change an organization's security policy and who belongs to it."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.customers.models import Customer
from openar.identity.models import User
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


def membership_invite(
    *,
    organization: Organization,
    email: str,
    full_name: str,
    role: str,
    actor: User | None,
    customer: Customer | None = None,
    creditor: Creditor | None = None,
) -> Membership:
    """Give a person (a new or existing user) a place in the organization. Customer and
    creditor-client seats are limited by the policy; the count and the insert happen under a
    lock on the customer or creditor row, so concurrent invitations never exceed it."""
    email = email.strip().lower()
    if "@" not in email:
        raise ServiceError("Enter the person's email address.", field="email")
    if role == Role.CUSTOMER and customer is None:
        raise ServiceError("A customer user belongs to one customer.", field="customer")
    if role == Role.CREDITOR and creditor is None:
        raise ServiceError("A creditor-client user belongs to one creditor.", field="creditor")
    if role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}.", field="role")
    policy = policy_for(organization)
    with transaction.atomic():
        if customer is not None:
            Customer.objects.select_for_update().filter(pk=customer.pk).first()
            limit, bound_name = policy.seats_per_customer, customer.name
        elif creditor is not None:
            Creditor.objects.select_for_update().filter(pk=creditor.pk).first()
            limit, bound_name = policy.seats_per_creditor, creditor.name
        else:
            limit, bound_name = 0, ""
        if limit and _seats_taken(customer=customer, creditor=creditor) >= limit:
            raise ServiceError(
                f"{bound_name} already has {limit} user{'s' if limit != 1 else ''}, the most your "
                f"organization's policy allows. Remove a user first, or ask an admin to raise the limit.",
                field="email",
                code="seat_limit",
            )
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_user(email=email, full_name=full_name.strip())
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    organization=organization,
                    user=user,
                    role=role,
                    customer=customer if role == Role.CUSTOMER else None,
                    creditor=creditor if role == Role.CREDITOR else None,
                )
        except IntegrityError as exc:
            raise ServiceError(f"{email} already has this access.", field="email") from exc
        log_event(
            "openar.membership.invited",
            organization=organization,
            obj=membership,
            actor=actor,
            data={
                "role": role,
                "customer": customer.pk if customer else None,
                "creditor": creditor.pk if creditor else None,
            },
        )
    return membership
