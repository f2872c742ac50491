"""``log_event``: the one way the application records an audit event."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

from openar.core.logging import request_id_var
from openar.core.models import AuditEvent

if TYPE_CHECKING:
    from openar.identity.models import User
    from openar.tenants.models import Organization


def audit_event(
    action: str,
    *,
    organization: Organization,
    obj: models.Model | None = None,
    actor: User | None = None,
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """An unsaved event (``log_events`` writes many in one insert)."""
    return AuditEvent(
        organization=organization,
        action=action,
        actor=actor if actor is not None and actor.is_authenticated else None,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        data=data or {},
        request_id=request_id_var.get() if request_id_var.get() != "-" else "",
        ip=ip,
    )


def log_event(
    action: str,
    *,
    organization: Organization,
    obj: models.Model | None = None,
    actor: User | None = None,
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Record ``action`` (dotted, e.g. ``openar.payment.recorded``). Call it inside the
    transaction of the change so that both are written or neither is."""
    event = audit_event(action, organization=organization, obj=obj, actor=actor, data=data, ip=ip)
    event.save(force_insert=True)
    return event


def log_events(events: list[AuditEvent]) -> None:
    """Record many events in one insert (batch work: reminders, imports)."""
    AuditEvent.objects.bulk_create(events, batch_size=1000)
