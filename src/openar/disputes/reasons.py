"""The organization's dispute reason codes.

Every organization starts with the default list (price, quantity, damaged, not received,
duplicate, other): it is written when the organization is created (a ``post_save`` receiver
connected by the app config) and, for an organization that existed before, the first time
its reasons are asked for (``dispute_reasons``). Staff then edit labels, SLA days and whom
each reason notifies, add reasons or retire them (``active``); codes stay, so that past
disputes keep theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet

from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.disputes.models import DisputeReason
from openar.identity.models import User
from openar.tenants.models import Organization


@dataclass(frozen=True)
class DefaultReason:
    code: str
    label: str
    sla_days: int


DEFAULT_REASONS: tuple[DefaultReason, ...] = (
    DefaultReason("price", "Price is wrong", 10),
    DefaultReason("quantity", "Quantity is wrong", 10),
    DefaultReason("damaged", "Goods arrived damaged", 7),
    DefaultReason("not_received", "Goods or service not received", 7),
    DefaultReason("duplicate", "Billed twice", 5),
    DefaultReason("other", "Something else", 14),
)
MAX_SLA_DAYS = 365
MAX_EMAILS = 10


def reasons_create_defaults(organization: Organization) -> int:
    """Write the default reasons the organization does not have yet; returns how many.
    Safe to run twice at once (the unique code per organization ignores the second)."""
    rows = [
        DisputeReason(
            organization=organization,
            code=default.code,
            label=default.label,
            sla_days=default.sla_days,
            position=position,
        )
        for position, default in enumerate(DEFAULT_REASONS, start=1)
    ]
    created = DisputeReason.objects.bulk_create(rows, ignore_conflicts=True)
    return len(created)


def dispute_reasons(organization: Organization, *, active_only: bool = False) -> QuerySet[DisputeReason]:
    """The organization's reasons in their order (the defaults written on first use)."""
    reasons = DisputeReason.objects.filter(organization=organization)
    if not reasons.exists():
        reasons_create_defaults(organization)
    if active_only:
        reasons = reasons.filter(active=True)
    return reasons.order_by("position", "pk")


def checked_emails(text: str | list[str]) -> list[str]:
    """Addresses typed one per line or separated by commas; each must be valid."""
    items = text if isinstance(text, list) else re.split(r"[\s,;]+", text or "")
    emails: list[str] = []
    for item in (part.strip() for part in items):
        if not item:
            continue
        try:
            validate_email(item)
        except ValidationError:
            raise ServiceError(f"{item} is not an email address.", field="notify_emails") from None
        if item.lower() not in (e.lower() for e in emails):
            emails.append(item)
    if len(emails) > MAX_EMAILS:
        raise ServiceError(f"Name at most {MAX_EMAILS} people to notify.", field="notify_emails")
    return emails


def dispute_reason_save(
    *,
    organization: Organization,
    label: str,
    sla_days: int,
    notify_emails: str | list[str],
    active: bool = True,
    reason: DisputeReason | None = None,
    code: str = "",
    actor: User | None = None,
) -> DisputeReason:
    """Change a reason (``reason`` given) or add one (its ``code`` from the label when not
    given). Audited as ``openar.dispute_reason.saved``."""
    label = (label or "").strip()
    if not label:
        raise ServiceError("Give the reason a name customers understand.", field="label")
    if len(label) > 100:
        raise ServiceError("Keep the name to 100 characters or fewer.", field="label")
    if not 1 <= sla_days <= MAX_SLA_DAYS:
        raise ServiceError(f"The SLA is between 1 and {MAX_SLA_DAYS} days.", field="sla_days")
    emails = checked_emails(notify_emails)
    with transaction.atomic():
        if reason is None:
            slug = re.sub(r"[^a-z0-9]+", "_", (code or label).lower()).strip("_")[:40] or "reason"
            if DisputeReason.objects.filter(organization=organization, code=slug).exists():
                raise ServiceError("There is already a reason with this name.", field="label")
            last = DisputeReason.objects.filter(organization=organization).order_by("-position").first()
            reason = DisputeReason(
                organization=organization, code=slug, position=(last.position + 1) if last else 1
            )
        reason.label, reason.sla_days, reason.notify_emails, reason.active = label, sla_days, emails, active
        reason.save()
        log_event(
            "openar.dispute_reason.saved",
            organization=organization,
            obj=reason,
            actor=actor,
            data={
                "code": reason.code,
                "label": label,
                "sla_days": sla_days,
                "notify": emails,
                "active": active,
            },
        )
    return reason
