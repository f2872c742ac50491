"""Services that change customers and their timeline."""

from __future__ import annotations

from datetime import date, datetime

from django.db import transaction
from django.utils import timezone

from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.customers.models import Activity, Contact, Customer, Hold, Task
from openar.identity.models import User


def activity_record(
    *,
    customer: Customer,
    kind: str,
    summary: str,
    body: str = "",
    visibility: str = Activity.Visibility.CUSTOMER,
    actor: User | None = None,
    invoice_id: int | None = None,
    occurred_at: datetime | None = None,
) -> Activity:
    """Add an entry to the customer's timeline (callers run it inside their transaction)."""
    activity = activity_build(
        customer=customer,
        kind=kind,
        summary=summary,
        body=body,
        visibility=visibility,
        actor=actor,
        invoice_id=invoice_id,
        occurred_at=occurred_at,
    )
    activity.save(force_insert=True)
    return activity


def activity_build(
    *,
    customer: Customer,
    kind: str,
    summary: str,
    body: str = "",
    visibility: str = Activity.Visibility.CUSTOMER,
    actor: User | None = None,
    invoice_id: int | None = None,
    occurred_at: datetime | None = None,
) -> Activity:
    """An unsaved timeline entry (batch work writes many with ``bulk_create``)."""
    return Activity(
        organization_id=customer.organization_id,
        customer=customer,
        kind=kind,
        summary=summary[:300],
        body=body,
        visibility=visibility,
        actor=actor if actor is not None and actor.is_authenticated else None,
        invoice_id=invoice_id,
        occurred_at=occurred_at or timezone.now(),
    )


CONTACT_FIELDS = ("name", "email", "phone", "language", "consent_email", "consent_sms")


def contact_update(
    *,
    contact: Contact,
    changes: dict[str, object],
    actor: User | None = None,
    by_contact: bool = False,
    ip: str | None = None,
) -> Contact:
    """Change a contact's details; the previous values are kept in the audit event and the
    change shows on the customer's timeline."""
    unknown = set(changes) - set(CONTACT_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown contact field(s): {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        diff = {
            name: [getattr(locked, name), value]
            for name, value in changes.items()
            if getattr(locked, name) != value
        }
        if not diff:
            return locked
        for name, (_, value) in diff.items():
            setattr(locked, name, value)
        fields = list(diff)
        # A new address is worth trying again: the flag said the old one did not work.
        for address, problem in (("email", "email_problem"), ("phone", "phone_problem")):
            if address in diff and getattr(locked, problem):
                setattr(locked, problem, "")
                fields.append(problem)
        locked.full_clean(exclude=["customer", "user", "organization"])
        locked.save(update_fields=fields)
        who = "the contact" if by_contact else (actor.get_full_name() if actor else "staff")
        activity_record(
            customer=locked.customer,
            kind=Activity.Kind.PORTAL if by_contact else Activity.Kind.STATUS,
            summary=f"Contact details of {locked.name} updated by {who}: {', '.join(diff)}",
            actor=actor,
        )
        log_event(
            "openar.contact.updated",
            organization=locked.customer.organization,
            obj=locked,
            actor=actor,
            ip=ip,
            data={
                "changes": {name: [str(before), str(after)] for name, (before, after) in diff.items()},
                "by_contact": by_contact,
            },
        )
    return locked


# The field that flags a channel's address as not working (a letter's is the customer's).
ADDRESS_PROBLEM_FIELDS = {"email": "email_problem", "sms": "phone_problem"}


def contact_flag_address(*, contact_id: int, channel: str, problem: str) -> bool:
    """Flag the contact's email or phone as not working (a bounce, a refused number), for
    staff to fix. Reminders skip a flagged address until someone changes it. Audited when
    the flag changes; returns whether it did. Callers run it inside their transaction."""
    field = ADDRESS_PROBLEM_FIELDS.get(channel)
    if field is None:
        return False
    problem = problem[:200]
    contact = Contact.objects.select_related("customer__organization").filter(pk=contact_id).first()
    if contact is None:
        return False
    same = Contact.objects.filter(pk=contact_id)
    changed = bool(same.exclude(**{field: problem}).update(**{field: problem}))
    if changed:
        log_event(
            "openar.contact.address_flagged",
            organization=contact.customer.organization,
            obj=contact,
            data={"channel": channel, "problem": problem},
        )
    return changed


def hold_place(
    *,
    customer: Customer,
    reason: str,
    actor: User | None,
    expires_at: datetime | None = None,
    invoice_id: int | None = None,
    visibility: str = Activity.Visibility.CREDITOR,
) -> Hold:
    """Pause collection on the customer (or one of its invoices): reminders stop until the
    hold is released or expires. On the timeline for staff (and creditor clients)."""
    reason = reason.strip()
    if not reason:
        raise ServiceError("Say why collection is on hold.", field="reason")
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ServiceError("The end of a hold must be in the future.", field="expires_at")
    with transaction.atomic():
        hold = Hold.objects.create(
            organization_id=customer.organization_id,
            customer=customer,
            invoice_id=invoice_id,
            reason=reason[:300],
            placed_by=actor if actor is not None and actor.is_authenticated else None,
            placed_at=now,
            expires_at=expires_at,
        )
        until = f" until {expires_at:%Y-%m-%d}" if expires_at else ""
        activity_record(
            customer=customer,
            kind=Activity.Kind.STATUS,
            summary=f"Collection on hold{until}: {hold.reason}",
            visibility=visibility,
            actor=actor,
            invoice_id=invoice_id,
        )
        log_event(
            "openar.hold.placed",
            organization=customer.organization,
            obj=hold,
            actor=actor,
            data={"customer": customer.pk, "invoice": invoice_id, "expires_at": str(expires_at or "")},
        )
    return hold


def hold_release(*, hold: Hold, actor: User | None) -> bool:
    """End a hold now; False when it had already ended."""
    now = timezone.now()
    with transaction.atomic():
        changed = Hold.objects.filter(pk=hold.pk, released_at__isnull=True).update(
            released_at=now, released_by=actor if actor is not None and actor.is_authenticated else None
        )
        if not changed:
            return False
        activity_record(
            customer=hold.customer,
            kind=Activity.Kind.STATUS,
            summary=f"Hold released: {hold.reason}",
            visibility=Activity.Visibility.CREDITOR,
            actor=actor,
        )
        log_event("openar.hold.released", organization=hold.customer.organization, obj=hold, actor=actor)
    return True


def customer_segment_set(*, customer: Customer, segment: str, actor: User | None) -> None:
    """Choose the customer's dunning policy (by segment; blank: the default policy)."""
    segment = segment.strip()[:40]
    with transaction.atomic():
        before = Customer.objects.filter(pk=customer.pk).values_list("segment", flat=True).get()
        if before == segment:
            return
        Customer.objects.filter(pk=customer.pk).update(segment=segment)
        customer.segment = segment
        log_event(
            "openar.customer.segment_changed",
            organization=customer.organization,
            obj=customer,
            actor=actor,
            data={"segment": [before, segment]},
        )


def contact_sms_consent_set(*, contact: Contact, consent: bool, keyword: str, message_sid: str = "") -> bool:
    """The contact texted STOP (or START): text-message consent off (or on). Audited every
    time (the request itself is the evidence), on the timeline when it changed anything.
    Returns whether it changed."""
    action = "openar.contact.sms_opt_in" if consent else "openar.contact.sms_opt_out"
    with transaction.atomic():
        changed = bool(
            Contact.objects.filter(pk=contact.pk).exclude(consent_sms=consent).update(consent_sms=consent)
        )
        log_event(
            action,
            organization=contact.customer.organization,
            obj=contact,
            data={"keyword": keyword, "message_sid": message_sid, "changed": changed},
        )
        if changed:
            what = "agreed to text messages again" if consent else "asked for no more text messages"
            activity_record(
                customer=contact.customer,
                kind=Activity.Kind.SMS,
                summary=f"{contact.name} replied {keyword} by text: {what}",
            )
        contact.consent_sms = consent
    return changed


def task_create(
    *,
    customer: Customer,
    kind: str,
    summary: str,
    due_date: date,
    body: str = "",
    assigned_to: User | None = None,
    source_type: str = "",
    source_id: object = "",
    actor: User | None = None,
) -> Task:
    """Put an item on the collectors' worklist (callers run it inside their transaction).
    ``assigned_to`` defaults to the customer's assigned collector (none: anyone on the desk).
    ``source_type``/``source_id`` name what it is about (``"commitments.promise"``, 42)."""
    if kind not in Task.Kind.values:
        raise ValueError(f"unknown task kind {kind!r}")
    task = Task.objects.create(
        organization_id=customer.organization_id,
        customer=customer,
        kind=kind,
        summary=summary.strip()[:300],
        body=body,
        due_date=due_date,
        assigned_to=assigned_to if assigned_to is not None else customer.assigned_collector,
        source_type=source_type[:60],
        source_id=str(source_id)[:40],
    )
    log_event(
        "openar.task.created",
        organization=customer.organization,
        obj=task,
        actor=actor,
        data={
            "customer": customer.pk,
            "kind": kind,
            "summary": task.summary,
            "assigned_to": task.assigned_to_id,
            "source": f"{task.source_type}:{task.source_id}" if task.source_type else "",
        },
    )
    return task


def task_done(*, task: Task, actor: User | None) -> bool:
    """Mark a task done (by ``actor``; None: the system, when what it was about ended, e.g.
    the plan it asked to approve was approved). False when it was done already."""
    with transaction.atomic():
        changed = Task.objects.filter(pk=task.pk, done_at__isnull=True).update(
            done_at=timezone.now(), done_by=actor if actor is not None and actor.is_authenticated else None
        )
        if changed:
            log_event(
                "openar.task.done",
                organization=task.customer.organization,
                obj=task,
                actor=actor,
                data={"kind": task.kind},
            )
    return bool(changed)


def tasks_done_for(*, source_type: str, source_id: object, kinds: list[str], actor: User | None) -> int:
    """Mark done the open tasks of ``kinds`` about one object (the plan was approved or
    cancelled: nobody needs to approve it any more). Returns how many."""
    done = 0
    for task in Task.objects.filter(
        source_type=source_type, source_id=str(source_id), kind__in=kinds, done_at__isnull=True
    ).select_related("customer__organization"):
        done += task_done(task=task, actor=actor)
    return done
