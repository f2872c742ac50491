"""What a creditor client may do on an account it placed: add a note for the collectors,
place a hold or release one its own people placed, correct the debtor's contact details,
and write to the collectors.

Each is one service, run in one transaction with its audit event (``openar.client.*``) and a
timeline entry that staff and the creditor see (never the customer, unless the change is
the customer's own details). The assigned collector (else the agency's address) is told by
a short email once the transaction commits. Callers check that the account is one the
creditor placed (``selectors.placed_accounts``); the services check the rest again under a
lock.
"""

from __future__ import annotations

import datetime
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from openar.client.selectors import holds_releasable_by
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.customers.models import Activity, Contact, Customer, Hold
from openar.customers.services import (
    activity_build,
    activity_record,
    contact_update,
    hold_place,
    hold_release,
)
from openar.identity.models import User
from openar.notifications.models import Message, Thread
from openar.notifications.notices import tell_ar
from openar.notifications.services import creditor_message_post, creditor_message_reply
from openar.tenants.models import Membership, Role

MAX_NOTE = 5000
MAX_MESSAGE = 5000

# The debtor's details a creditor client may correct (not consents: only the debtor gives
# or withdraws those).
ACCOUNT_FIELDS: dict[str, str] = {
    "email": "Email",
    "phone": "Phone",
    "address_line1": "Address",
    "address_line2": "Address, second line",
    "city": "City",
    "region": "Province or state",
    "postal_code": "Postal code",
    "country": "Country",
}
CONTACT_FIELDS: dict[str, str] = {"name": "Name", "email": "Email", "phone": "Phone"}


def _who(user: User) -> str:
    return user.get_full_name() or user.email


def client_note_add(*, customer: Customer, author: User, body: str) -> Activity:
    """A note for the collectors on the account's timeline: visible to staff and the
    creditor (never the customer), unread for the collectors until one reads it."""
    body = body.strip()
    if not body:
        raise ServiceError("Write the note first.", field="body")
    if len(body) > MAX_NOTE:
        raise ServiceError(f"Keep the note to {MAX_NOTE} characters or fewer.", field="body")
    first_line = body.splitlines()[0]
    with transaction.atomic():
        note = activity_build(
            customer=customer,
            kind=Activity.Kind.NOTE,
            summary=f"Note from {_who(author)} ({customer.creditor.name}): {first_line}",
            body=body if len(first_line) < len(body) or len(body) > 200 else "",
            visibility=Activity.Visibility.CREDITOR,
            actor=author,
        )
        note.staff_unread = True
        note.save(force_insert=True)
        log_event(
            "openar.client.note_added",
            organization=customer.organization,
            obj=note,
            actor=author,
            data={"customer": customer.pk, "creditor": customer.creditor_id},
        )
        tell_ar(
            customer,
            f"Note from {customer.creditor.name} on {customer.name} ({customer.number})",
            f"{_who(author)} of {customer.creditor.name} wrote:\n\n{body}",
        )
    return note


def client_hold_place(
    *, customer: Customer, author: User, reason: str, expires_at: datetime.datetime | None
) -> Hold:
    """Pause collection on the account: no reminders, off the collectors' worklist, until
    the creditor (or staff) releases it or it expires."""
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        hold = hold_place(
            customer=customer,
            reason=reason,
            actor=author,
            expires_at=expires_at,
            visibility=Activity.Visibility.CREDITOR,
        )
        log_event(
            "openar.client.hold_placed",
            organization=customer.organization,
            obj=hold,
            actor=author,
            data={
                "customer": customer.pk,
                "creditor": customer.creditor_id,
                "reason": hold.reason,
                "expires_at": expires_at.isoformat() if expires_at else "",
            },
        )
        until = f" until {expires_at:%Y-%m-%d}" if expires_at else " until it is released"
        tell_ar(
            customer,
            f"{customer.creditor.name} put {customer.name} ({customer.number}) on hold",
            f"{_who(author)} of {customer.creditor.name} paused collection{until}.\n\nReason: {hold.reason}",
        )
    return hold


def client_hold_release(*, hold: Hold, author: User) -> bool:
    """End a hold that the creditor's own people placed (a hold of the agency's staff is
    theirs to end). False when it had been released already; a hold that ran out (its
    expiry passed) is refused with a ServiceError: there is nothing left to release."""
    customer = hold.customer
    with transaction.atomic():
        locked = Hold.objects.select_for_update().filter(pk=hold.pk).first()
        if locked is None:
            return False
        if not Hold.objects.filter(holds_releasable_by(customer.creditor), pk=hold.pk).exists():
            raise ServiceError("This hold was placed by the agency: ask your collector to release it.")
        if locked.released_at is not None:
            return False
        if locked.expires_at is not None and locked.expires_at <= timezone.now():
            day = locked.expires_at.astimezone(customer.organization.tz) - datetime.timedelta(microseconds=1)
            raise ServiceError(
                f"This hold ended on {day:%-d %b %Y}: there is nothing to release. "
                "Place a new hold to pause collection again.",
                code="ended",
            )
        if not hold_release(hold=locked, actor=author):
            return False
        log_event(
            "openar.client.hold_released",
            organization=customer.organization,
            obj=locked,
            actor=author,
            data={"customer": customer.pk, "creditor": customer.creditor_id, "reason": locked.reason},
        )
        tell_ar(
            customer,
            f"{customer.creditor.name} released the hold on {customer.name} ({customer.number})",
            f"{_who(author)} of {customer.creditor.name} released the hold ({locked.reason}): "
            "reminders resume when they are due.",
        )
    return True


def client_account_update(*, customer: Customer, author: User, changes: dict[str, str]) -> list[str]:
    """Correct the debtor's email, phone or address. The previous values are kept in the
    audit event; the timeline says what changed. Returns the fields that changed."""
    unknown = set(changes) - set(ACCOUNT_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        diff = {
            name: [getattr(locked, name), value.strip()]
            for name, value in changes.items()
            if getattr(locked, name) != value.strip()
        }
        if not diff:
            return []
        for name, (_, value) in diff.items():
            setattr(locked, name, value)
        locked.full_clean(exclude=["organization", "creditor", "assigned_collector", "number", "name"])
        locked.save(update_fields=list(diff))
        labels = ", ".join(ACCOUNT_FIELDS[name].lower() for name in diff)
        activity_record(
            customer=locked,
            kind=Activity.Kind.STATUS,
            summary=f"Account details updated by {_who(author)} ({customer.creditor.name}): {labels}",
            visibility=Activity.Visibility.CREDITOR,
            actor=author,
        )
        log_event(
            "openar.client.account_updated",
            organization=customer.organization,
            obj=locked,
            actor=author,
            data={
                "changes": {name: [str(before), str(after)] for name, (before, after) in diff.items()},
                "creditor": customer.creditor_id,
            },
        )
        tell_ar(
            customer,
            f"{customer.creditor.name} updated the details of {customer.name} ({customer.number})",
            "\n".join(
                f"{ACCOUNT_FIELDS[n]}: {b or '(empty)'} → {a or '(empty)'}" for n, (b, a) in diff.items()
            ),
        )
        for name, (_, value) in diff.items():
            setattr(customer, name, value)
    return list(diff)


def client_contact_update(*, contact: Contact, author: User, changes: dict[str, str]) -> list[str]:
    """Correct a contact's name, email or phone (``contact_update`` keeps the previous values
    in its audit event). Returns the fields that changed."""
    unknown = set(changes) - set(CONTACT_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    cleaned = {name: value.strip() for name, value in changes.items()}
    if "name" in cleaned and not cleaned["name"]:
        raise ServiceError("A contact needs a name.", field="name")
    with transaction.atomic():
        before = {name: getattr(contact, name) for name in cleaned}
        updated = contact_update(contact=contact, changes=dict(cleaned), actor=author)
        changed = [name for name in cleaned if before[name] != getattr(updated, name)]
        if changed:
            log_event(
                "openar.client.contact_updated",
                organization=contact.customer.organization,
                obj=updated,
                actor=author,
                data={
                    "changes": {name: [str(before[name]), str(getattr(updated, name))] for name in changed},
                    "creditor": contact.customer.creditor_id,
                },
            )
            tell_ar(
                contact.customer,
                f"{contact.customer.creditor.name} updated a contact of {contact.customer.name}",
                "\n".join(
                    f"{CONTACT_FIELDS[name]}: {before[name] or '(empty)'} → "
                    f"{getattr(updated, name) or '(empty)'}"
                    for name in changed
                ),
            )
    return changed


def client_message_send(
    *, customer: Customer, author: User, body: str, subject: str = "", thread: Thread | None = None
) -> Message:
    """Write to the collectors about the account, in a new conversation or in ``thread``
    (a creditor thread of this account). Never reaches the customer."""
    body = body.strip()
    if len(body) > MAX_MESSAGE:
        raise ServiceError(f"Keep the message to {MAX_MESSAGE} characters or fewer.", field="body")
    with transaction.atomic():
        message = creditor_message_post(
            customer=customer, author=author, body=body, subject=subject, thread=thread
        )
        log_event(
            "openar.client.message_sent",
            organization=customer.organization,
            obj=message,
            actor=author,
            data={"customer": customer.pk, "creditor": customer.creditor_id, "thread": message.thread_id},
        )
        tell_ar(
            customer,
            f"Message from {customer.creditor.name} about {customer.name} ({customer.number})",
            f"{_who(author)} of {customer.creditor.name} wrote:\n\n{body}",
        )
    return message


def creditor_recipients(thread: Thread) -> list[User]:
    """Who hears of an answer: the client's users who wrote in the conversation and can
    still sign in, else every active user of the client (the writer has left)."""
    members = Membership.objects.filter(
        role=Role.CREDITOR,
        creditor_id=thread.customer.creditor_id,
        is_active=True,
        user__is_active=True,
    ).exclude(user__email="")
    writers = Message.objects.filter(thread=thread, direction=Message.Direction.IN).values("created_by")
    found = list(User.objects.filter(pk__in=members.filter(user__in=writers).values("user")).order_by("pk"))
    return found or list(User.objects.filter(pk__in=members.values("user")).order_by("pk"))


def creditor_answer_send(*, thread: Thread, author: User, body: str) -> tuple[Message, list[User]]:
    """A collector answers the creditor client in its conversation
    (``creditor_message_reply``: unread for the client, on the account's timeline for staff
    and the client, audited), and the client's users of the conversation are told by email
    once it commits. Returns the answer and who is told."""
    body = body.strip()
    if len(body) > MAX_MESSAGE:
        raise ServiceError(f"Keep the answer to {MAX_MESSAGE} characters or fewer.", field="body")
    customer = thread.customer
    organization = customer.organization
    with transaction.atomic():
        message = creditor_message_reply(thread=thread, author=author, body=body)
        told = creditor_recipients(thread)
        subject = f"{organization.name} answered about {customer.name} ({customer.number})"
        who = author.get_full_name() or author.email
        text = (
            f"{who} of {organization.name} answered your message “{thread.subject}” "
            f"about {customer.name} ({customer.number}):\n\n{body}\n\n"
            f"Read it and answer: {settings.SITE_URL}{reverse('client:thread', args=[thread.pk])}\n\n"
            f"{organization.name}\n"
        )
        for user in told:
            transaction.on_commit(partial(send_mail, subject, text, None, [user.email], fail_silently=True))
    return message, told
