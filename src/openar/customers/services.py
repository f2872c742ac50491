"""Services that change customers and their timeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from openar.core.audit import audit_event, log_event, log_events
from openar.core.errors import ServiceError
from openar.customers.models import Activity, Contact, Customer, Hold, Task
from openar.identity.models import User
from openar.tenants.models import Membership, Organization
from openar.tenants.permissions import ROLE_PERMISSIONS, Perm


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


# --- the collector's desk: calls, letters, callbacks, assignment, creditor notes ---------------

NOTE_MAX_LENGTH = 2000
NEXT_ACTION_HORIZON_DAYS = 366  # a callback at most a year ahead
LETTER_PAST_DAYS = 366  # a letter logged at most a year after it went out

# When to try again after a call, by its outcome (days from today; absent: no callback).
CALLBACK_AFTER_DAYS: dict[str, int] = {
    Activity.Outcome.NO_ANSWER: 1,
    Activity.Outcome.BUSY: 1,
    Activity.Outcome.LEFT_MESSAGE: 2,
}


def call_next_action_default(outcome: str, today: date) -> date | None:
    """The callback date a call's outcome suggests: no answer or busy, tomorrow; a message
    left, in two days; anything else (spoke, promised, refused, ...), none."""
    days = CALLBACK_AFTER_DAYS.get(outcome)
    return today + timedelta(days=days) if days is not None else None


@dataclass(frozen=True)
class CallLogged:
    call: Activity  # the call attempt (staff and creditor see it, with its outcome)
    note: Activity | None  # the collector's own words (staff only)
    callback: Task | None  # the new callback, when a next action date was given
    callbacks_done: int  # open callbacks of the account this call completed


def _clean_note(note: str) -> str:
    note = note.strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ServiceError(f"Keep the note under {NOTE_MAX_LENGTH} characters.", field="note")
    return note


def _staff_note(*, customer: Customer, what: str, note: str, actor: User | None) -> Activity:
    first_line = note.splitlines()[0] if note else ""
    return activity_record(
        customer=customer,
        kind=Activity.Kind.NOTE,
        summary=f"{what}: {first_line}",
        body=note,
        visibility=Activity.Visibility.INTERNAL,
        actor=actor,
    )


def call_log(
    *,
    customer: Customer,
    outcome: str,
    actor: User | None,
    note: str = "",
    next_action_date: date | None = None,
) -> CallLogged:
    """Record a call attempt on the customer's timeline. The attempt, its outcome and the
    next action date are seen by staff and by the creditor client; a note is staff only (a
    separate internal entry). The call completes the account's open callbacks; with a next
    action date it puts a new callback on the worklist, for the account's collector (or
    whoever called, when the account has none)."""
    if outcome not in Activity.Outcome.values:
        raise ServiceError("Choose how the call ended.", field="outcome")
    note = _clean_note(note)
    today = customer.organization.today()
    if next_action_date is not None:
        if next_action_date < today:
            raise ServiceError("The next action date cannot be in the past.", field="next_action_date")
        if next_action_date > today + timedelta(days=NEXT_ACTION_HORIZON_DAYS):
            raise ServiceError("Choose a next action date within a year.", field="next_action_date")
    with transaction.atomic():
        # The account's row serializes calls logged at once: one open callback at most.
        locked = (
            Customer.objects.select_for_update(of=("self",))
            .select_related("assigned_collector")
            .get(pk=customer.pk)
        )
        locked.organization = customer.organization
        label = Activity.Outcome(outcome).label
        summary = f"Call attempt: {label}"
        if next_action_date is not None:
            summary += f"; next action {next_action_date:%Y-%m-%d}"
        call = activity_build(
            customer=locked,
            kind=Activity.Kind.CALL,
            summary=summary,
            visibility=Activity.Visibility.CREDITOR,
            actor=actor,
        )
        call.outcome = outcome
        call.next_action_date = next_action_date
        call.save(force_insert=True)
        staff_note = _staff_note(customer=locked, what="Call note", note=note, actor=actor) if note else None
        done = 0
        for task in Task.objects.filter(customer=locked, kind=Task.Kind.CALLBACK, done_at__isnull=True):
            task.customer = locked
            done += task_done(task=task, actor=actor)
        callback = None
        if next_action_date is not None:
            by = actor if actor is not None and actor.is_authenticated else None
            callback = task_create(
                customer=locked,
                kind=Task.Kind.CALLBACK,
                summary=f"Call {locked.name} back ({label.lower()})",
                due_date=next_action_date,
                assigned_to=locked.assigned_collector or by,
                source_type="customers.activity",
                source_id=call.pk,
                actor=actor,
            )
        log_event(
            "openar.call.logged",
            organization=customer.organization,
            obj=call,
            actor=actor,
            data={
                "customer": locked.pk,
                "outcome": outcome,
                "next_action_date": str(next_action_date or ""),
                "callbacks_done": done,
                "callback": callback.pk if callback else None,
                "note": staff_note.pk if staff_note else None,
            },
        )
    return CallLogged(call=call, note=staff_note, callback=callback, callbacks_done=done)


def letter_log(
    *,
    customer: Customer,
    actor: User | None,
    sent_on: date,
    template_name: str = "",
    note: str = "",
) -> Activity:
    """Record a letter sent by post (outside OpenAR's own letters) on the customer's timeline,
    with its date and, optionally, which template it followed: staff and the creditor client
    see it. A note goes in a separate staff-only entry."""
    today = customer.organization.today()
    if sent_on > today:
        raise ServiceError("A letter is logged once it is sent: the date cannot be ahead.", field="sent_on")
    if sent_on < today - timedelta(days=LETTER_PAST_DAYS):
        raise ServiceError("Log letters sent within the last year.", field="sent_on")
    note = _clean_note(note)
    template_name = template_name.strip()[:120]
    occurred_at = (
        timezone.now()
        if sent_on == today
        else datetime.combine(sent_on, time(12, 0), tzinfo=customer.organization.tz)
    )
    summary = f"Letter sent {sent_on:%Y-%m-%d}" + (f": {template_name}" if template_name else "")
    with transaction.atomic():
        letter = activity_record(
            customer=customer,
            kind=Activity.Kind.LETTER,
            summary=summary,
            visibility=Activity.Visibility.CREDITOR,
            actor=actor,
            occurred_at=occurred_at,
        )
        staff_note = (
            _staff_note(customer=customer, what="Letter note", note=note, actor=actor) if note else None
        )
        log_event(
            "openar.letter.logged",
            organization=customer.organization,
            obj=letter,
            actor=actor,
            data={
                "customer": customer.pk,
                "sent_on": str(sent_on),
                "template": template_name,
                "note": staff_note.pk if staff_note else None,
            },
        )
    return letter


def collector_roles() -> list[str]:
    """The staff roles whose members can be given accounts (they may act on them)."""
    return sorted(role for role, perms in ROLE_PERMISSIONS.items() if Perm.DESK_COLLECT in perms)


def assignable_collectors(organization: Organization) -> list[User]:
    """Active members of the organization who collect (admins and collectors), by name."""
    memberships = Membership.objects.filter(
        organization=organization, role__in=collector_roles(), is_active=True, user__is_active=True
    ).select_related("user")
    return sorted((m.user for m in memberships), key=lambda user: (user.get_full_name().lower(), user.pk))


def accounts_assign(
    *,
    organization: Organization,
    customer_ids: Sequence[int],
    collector: User | None,
    actor: User | None,
) -> int:
    """Give the accounts to ``collector`` (None: unassign them). Their open tasks that were
    the previous collector's (or nobody's) follow the account. Each change is audited and
    on the account's timeline, staff only. Returns how many accounts changed hands.
    Who may assign to whom is the front door's rule (see ``openar.desk.worklist``)."""
    if (
        collector is not None
        and not Membership.objects.filter(
            organization=organization,
            user=collector,
            role__in=collector_roles(),
            is_active=True,
            user__is_active=True,
        ).exists()
    ):
        raise ServiceError(
            "Accounts can only go to an active collector of the organization.", field="collector"
        )
    name = (collector.get_full_name() or collector.email) if collector is not None else ""
    with transaction.atomic():
        customers = list(
            Customer.objects.select_for_update(of=("self",))
            .filter(organization=organization, pk__in=list(customer_ids))
            .select_related("assigned_collector")
            .order_by("pk")
        )
        changed = [c for c in customers if c.assigned_collector_id != (collector.pk if collector else None)]
        if not changed:
            return 0
        activities = []
        events = []
        for customer in changed:
            before = customer.assigned_collector
            open_tasks = Task.objects.filter(customer=customer, done_at__isnull=True)
            if before is None:
                open_tasks.filter(assigned_to__isnull=True).update(assigned_to=collector)
            else:
                open_tasks.filter(assigned_to=before).update(assigned_to=collector)
            was = f" (was {before.get_full_name() or before.email})" if before is not None else ""
            summary = f"Assigned to {name}{was}" if collector is not None else f"Unassigned{was}"
            activities.append(
                activity_build(
                    customer=customer,
                    kind=Activity.Kind.STATUS,
                    summary=summary,
                    visibility=Activity.Visibility.INTERNAL,
                    actor=actor,
                )
            )
            events.append(
                audit_event(
                    "openar.customer.assigned",
                    organization=organization,
                    obj=customer,
                    actor=actor,
                    data={
                        "collector": [before.pk if before else None, collector.pk if collector else None],
                    },
                )
            )
        Customer.objects.filter(pk__in=[c.pk for c in changed]).update(assigned_collector=collector)
        Activity.objects.bulk_create(activities)
        log_events(events)
    return len(changed)


def callbacks_done(*, task_ids: Sequence[int], actor: User | None) -> int:
    """Mark open callbacks done (the active scope; other tasks are left alone). Returns how
    many were still open."""
    tasks = Task.objects.filter(
        pk__in=list(task_ids), kind=Task.Kind.CALLBACK, done_at__isnull=True
    ).select_related("customer__organization")
    return sum(task_done(task=task, actor=actor) for task in tasks)


def creditor_notes_mark_read(*, customer: Customer, actor: User | None) -> int:
    """A collector has read the creditor client's notes on the account: they no longer
    count on the worklist. Returns how many were unread (audited when any)."""
    with transaction.atomic():
        read = Activity.objects.filter(customer=customer, staff_unread=True).update(staff_unread=False)
        if read:
            log_event(
                "openar.creditor_notes.read",
                organization=customer.organization,
                obj=customer,
                actor=actor,
                data={"count": read},
            )
    return read
