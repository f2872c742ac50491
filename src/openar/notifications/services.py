"""Messages: create (outbound, ready to send), send (exactly once, with retries), receive
(inbound), and read. Every channel goes through ``message_send``; backends only deliver.

Sending is claimed with one conditional UPDATE (``ready → sending``) so that any number of
workers running the same message send it once. A backend's ``TemporaryFailure`` puts the
message back to ``ready`` with a backoff; after ``MAX_ATTEMPTS`` it fails. A
``PermanentFailure`` fails it at once and flags the contact's address for staff. A worker
that dies between the claim and the answer leaves the message ``sending``: the periodic
sweep marks such messages failed ("interrupted") instead of sending them again, because the
provider may have delivered it; staff can send it again from the desk.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from openar.billing.models import Document, Invoice
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.customers.models import Activity, Contact, Customer
from openar.customers.services import activity_build, activity_record, contact_flag_address
from openar.identity.models import User
from openar.notifications.channels.base import (
    Attachment,
    ChannelBackend,
    Outbound,
    PermanentFailure,
    Sent,
    TemporaryFailure,
)
from openar.notifications.channels.registry import backend_for
from openar.notifications.models import Channel, Message, Thread

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF = (
    datetime.timedelta(minutes=1),
    datetime.timedelta(minutes=5),
    datetime.timedelta(minutes=30),
    datetime.timedelta(hours=2),
)
STUCK_AFTER = datetime.timedelta(minutes=15)
THREADED_CHANNELS = (Channel.EMAIL, Channel.PORTAL)  # replies come back to these: they get a thread
SEND_BATCH = 200  # messages per send task (one SMTP connection for the batch's emails)

ACTIVITY_KIND = {
    Channel.EMAIL: Activity.Kind.EMAIL,
    Channel.SMS: Activity.Kind.SMS,
    Channel.LETTER: Activity.Kind.LETTER,
    Channel.PORTAL: Activity.Kind.PORTAL,
}


@dataclass(frozen=True)
class Draft:
    """What a message says, rendered."""

    subject: str
    text: str
    html: str = ""
    links: tuple[str, ...] = ()


def address_of(contact: Contact | None, customer: Customer, channel: str) -> str:
    """Where a message on ``channel`` goes: the contact's email or phone, the customer's
    postal address for a letter, nothing for a portal message."""
    if channel == Channel.EMAIL:
        return (contact.email if contact else "") or customer.email
    if channel == Channel.SMS:
        return (contact.phone if contact else "") or customer.phone
    if channel == Channel.LETTER:
        return "\n".join([customer.name, *customer.address_lines])
    return ""


def thread_for(customer: Customer, subject: str) -> Thread:
    return Thread.objects.create(organization_id=customer.organization_id, customer=customer, subject=subject)


def message_create(
    *,
    customer: Customer,
    channel: str,
    draft: Draft,
    contact: Contact | None = None,
    thread: Thread | None = None,
    invoices: Iterable[Invoice] = (),
    attachments: Iterable[Document] = (),
    tone: str = "",
    dunning_step_id: int | None = None,
    dunning_cycle: int | None = None,
    not_before: datetime.datetime | None = None,
    created_by: User | None = None,
    send: bool = True,
) -> Message:
    """An outbound message, ready to send; it is queued for sending once the transaction
    commits (``send=False`` leaves it for the periodic dispatch)."""
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    if thread is not None and thread.audience != Thread.Audience.CUSTOMER:
        raise ValueError("a creditor thread never sends to the customer: use creditor_message_reply")
    with transaction.atomic():
        if thread is None and channel in THREADED_CHANNELS:
            thread = thread_for(customer, draft.subject or "Message")
        message = Message.objects.create(
            organization_id=customer.organization_id,
            customer=customer,
            contact=contact,
            thread=thread,
            channel=channel,
            to_address=address_of(contact, customer, channel),
            subject=draft.subject,
            body_text=draft.text,
            body_html=draft.html,
            links=list(draft.links),
            tone=tone,
            dunning_step_id=dunning_step_id,
            dunning_cycle=dunning_cycle,
            not_before=not_before,
            created_by=created_by,
        )
        invoice_list, document_list = list(invoices), list(attachments)
        if invoice_list:
            message.invoices.set(invoice_list)
        if document_list:
            message.attachments.set(document_list)
        if send:
            enqueue_send(message)
    return message


def enqueue_send(message: Message) -> None:
    """Queue the send task once the transaction commits; a message held until later
    (``not_before``) is queued to run then when the task backend can defer, else the
    periodic dispatch picks it up."""
    from openar.notifications.tasks import send_message

    message_id, run_after = message.pk, message.not_before

    def enqueue() -> None:
        task = send_message
        if run_after is not None and run_after > timezone.now():
            if not task.get_backend().supports_defer:
                return
            task = task.using(run_after=run_after)
        task.enqueue(message_id)

    transaction.on_commit(enqueue)


def _outbound(message: Message) -> Outbound:
    organization = message.customer.organization
    reply_to = ""
    if message.thread is not None and settings.OPENAR_REPLY_DOMAIN:
        reply_to = f"reply+{message.thread.token}@{settings.OPENAR_REPLY_DOMAIN}"
    headers = {}
    unsubscribe = [link for link in message.links if "/u/" in link]
    if unsubscribe and message.channel == Channel.EMAIL:
        # RFC 8058 one-click: mail providers POST "List-Unsubscribe=One-Click" to the link.
        headers["List-Unsubscribe"] = f"<{unsubscribe[0]}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    attachments = tuple(
        Attachment(filename=document.filename, content=_read(document), content_type=document.content_type)
        for document in message.attachments.all()
    )
    return Outbound(
        message_id=message.pk,
        organization_id=organization.pk,
        to=message.to_address,
        subject=message.subject,
        text=message.body_text,
        html=message.body_html,
        from_address=_from_address(organization.name),
        reply_to=reply_to,
        headers=headers,
        attachments=attachments,
        status_callback=f"{settings.SITE_URL}/hooks/twilio/status/" if message.channel == Channel.SMS else "",
    )


def _read(document: Document) -> bytes:
    with document.file.open("rb") as handle:
        return bytes(handle.read())


def _from_address(organization_name: str) -> str:
    """The organization's name on the product's sending address."""
    from email.utils import formataddr, parseaddr

    _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return formataddr((organization_name, address))


def message_send(*, message_id: int) -> str:
    """Send one ready message (if it is still ready and due), once. Returns its state."""
    states = messages_send([message_id])
    if message_id in states:
        return states[message_id]
    with scopes_disabled():
        state = Message.objects.filter(pk=message_id).values_list("state", flat=True).first()
    return state or "missing"


def _claim(message_ids: list[int], now: datetime.datetime) -> list[Message]:
    """Take the ready, due messages among ``message_ids`` for this send: one UPDATE marks
    them with a fresh claim, so that of several workers sending the same ids each message
    goes to exactly one, on PostgreSQL and SQLite alike."""
    token = uuid.uuid4().hex
    with scopes_disabled():
        Message.objects.filter(
            pk__in=message_ids, direction=Message.Direction.OUT, state=Message.State.READY
        ).filter(Q(not_before__isnull=True) | Q(not_before__lte=now)).update(
            state=Message.State.SENDING, claim=token, claimed_at=now, attempts=F("attempts") + 1
        )
        return list(
            Message.objects.filter(claim=token, state=Message.State.SENDING)
            .select_related("customer__organization", "contact", "thread")
            .prefetch_related("attachments")
            .order_by("pk")
        )


def messages_send(message_ids: list[int]) -> dict[int, str]:
    """Send the ready, due messages among ``message_ids``, each once, in batches per
    organization and channel (one SMTP connection for many emails). Returns the state each
    message it took ended in; ids it did not take (sent already, not due) are left out."""
    now = timezone.now()
    claimed = _claim(message_ids, now)
    groups: dict[tuple[int, str], list[Message]] = defaultdict(list)
    for message in claimed:
        groups[(message.customer.organization_id, message.channel)].append(message)
    for (_, channel), group in groups.items():
        organization = group[0].customer.organization
        with scope(organization=organization):
            outbounds: list[Outbound] = []
            results: dict[int, Sent | Exception] = {}
            try:
                backend = backend_for(channel)
            except Exception as exc:  # misconfigured: each message is retried, none is stranded
                logger.exception("no backend for the %s channel", channel)
                _record(group, dict.fromkeys((m.pk for m in group), exc), backend="", now=now)
                continue
            for message in group:
                if not message.to_address and channel != Channel.PORTAL:
                    results[message.pk] = PermanentFailure(
                        f"There is no address to send this {message.get_channel_display()} to."
                    )
                    continue
                try:
                    outbounds.append(_outbound(message))
                except Exception as exc:  # an attachment that cannot be read, say: retried
                    results[message.pk] = exc
            results.update(_deliver(backend, outbounds))
            _record(group, results, backend=backend.name, now=now)
    return {message.pk: message.state for message in claimed}


def _deliver(backend: ChannelBackend, outbounds: list[Outbound]) -> dict[int, Sent | Exception]:
    """The backend's answer for each message (``send_many`` when it has one)."""
    if not outbounds:
        return {}
    send_many = getattr(backend, "send_many", None)
    if send_many is not None:
        try:
            answers = send_many(outbounds)
        except Exception as exc:  # e.g. the server cannot be reached at all
            answers = [exc] * len(outbounds)
        return {outbound.message_id: answer for outbound, answer in zip(outbounds, answers, strict=True)}
    results: dict[int, Sent | Exception] = {}
    for outbound in outbounds:
        try:
            results[outbound.message_id] = backend.send(outbound)
        except Exception as exc:
            results[outbound.message_id] = exc
    return results


def _record(
    group: list[Message], results: dict[int, Sent | Exception], *, backend: str, now: datetime.datetime
) -> None:
    """Write what happened to each message: the sent ones in a few statements for the whole
    group (states, timeline entries, thread counts), failures one by one."""
    sent: list[Message] = []
    documents: list[tuple[int, int]] = []
    for message in group:
        result = results[message.pk]
        if isinstance(result, Sent):
            delivered = result.delivered
            message.state = Message.State.DELIVERED if delivered else Message.State.SENT
            message.provider, message.provider_id, message.error = backend, result.provider_id, ""
            message.sent_at, message.delivered_at = now, (now if delivered else None)
            sent.append(message)
            if result.document_id is not None:
                documents.append((message.pk, result.document_id))
        elif isinstance(result, PermanentFailure):
            _failed(message, result.message, backend=backend, flag_contact=result.address_problem)
        elif isinstance(result, TemporaryFailure):
            _retry_or_fail(message, result.message, backend=backend, now=now)
        else:  # a bug or an unexpected answer: retried like a temporary failure
            logger.error("sending message %s failed", message.pk, exc_info=result)
            _retry_or_fail(message, f"Unexpected error ({type(result).__name__}).", backend=backend, now=now)
    if not sent:
        return
    with transaction.atomic():
        # What the sent messages share in one UPDATE per state; only the provider's ids
        # differ from message to message.
        for state in {message.state for message in sent}:
            same = [message.pk for message in sent if message.state == state]
            Message.objects.filter(pk__in=same).update(
                state=state,
                provider=backend,
                error="",
                sent_at=now,
                delivered_at=now if state == Message.State.DELIVERED else None,
            )
        Message.objects.bulk_update(sent, ["provider_id"], batch_size=500)
        if documents:
            through = Message.attachments.through
            through.objects.bulk_create(
                [through(message_id=pk, document_id=document_id) for pk, document_id in documents]
            )
        per_thread: dict[int, int] = defaultdict(int)
        for message in sent:
            if message.thread_id is not None:
                per_thread[message.thread_id] += 1
        by_count: dict[int, list[int]] = defaultdict(list)
        for thread_id, count in per_thread.items():
            by_count[count].append(thread_id)
        for count, thread_ids in by_count.items():
            Thread.objects.filter(pk__in=thread_ids).update(
                last_message_at=now, unread_by_customer=F("unread_by_customer") + count
            )
        Activity.objects.bulk_create(
            [
                Activity(
                    organization_id=message.organization_id,
                    customer_id=message.customer_id,
                    kind=ACTIVITY_KIND[Channel(message.channel)],
                    summary=_summary(message),
                    body=message.body_text[:2000],
                    actor_id=message.created_by_id,
                    visibility=Activity.Visibility.CUSTOMER,
                    occurred_at=now,
                )
                for message in sent
            ],
            batch_size=500,
        )


def _summary(message: Message) -> str:
    what = {
        Channel.EMAIL: "Email sent",
        Channel.SMS: "Text message sent",
        Channel.LETTER: "Letter sent",
        Channel.PORTAL: "Message from the team",
    }[Channel(message.channel)]
    to = f" to {message.to_address}" if message.channel in (Channel.EMAIL, Channel.SMS) else ""
    subject = f": {message.subject}" if message.subject else ""
    return f"{what}{to}{subject}"[:300]


def _failed(message: Message, error: str, *, backend: str, flag_contact: bool) -> None:
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(
            state=Message.State.FAILED, provider=backend, error=error
        )
        message.state = Message.State.FAILED
        if flag_contact and message.contact_id is not None:
            contact_flag_address(contact_id=message.contact_id, channel=message.channel, problem=error)


def _retry_or_fail(message: Message, error: str, *, backend: str, now: datetime.datetime) -> None:
    if message.attempts >= MAX_ATTEMPTS:
        _failed(
            message,
            f"{error} Gave up after {message.attempts} attempts.",
            backend=backend,
            flag_contact=False,
        )
        return
    later = now + BACKOFF[min(message.attempts, len(BACKOFF)) - 1]
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(
            state=Message.State.READY, not_before=later, provider=backend, error=error
        )
        message.state, message.not_before = Message.State.READY, later
        enqueue_send(message)


def message_delivery_update(*, message: Message, state: str, error: str = "") -> None:
    """A provider's report (delivered, bounced, failed). Reports arrive out of order: a
    final state is never replaced by an earlier one."""
    order: list[str] = [Message.State.SENDING, Message.State.SENT, Message.State.DELIVERED]
    final = (Message.State.BOUNCED, Message.State.FAILED)
    with transaction.atomic():
        current = Message.objects.select_for_update().get(pk=message.pk)
        if current.state in final:
            return
        if state in order and current.state in order and order.index(state) <= order.index(current.state):
            return
        now = timezone.now()
        changes: dict[str, object] = {"state": state}
        if state == Message.State.DELIVERED:
            changes["delivered_at"] = now
        if error:
            changes["error"] = error[:2000]
        Message.objects.filter(pk=current.pk).update(**changes)
        if state in final and current.contact_id is not None:
            contact_flag_address(
                contact_id=current.contact_id,
                channel=current.channel,
                problem=error or f"The message {state}.",
            )


def dispatch_due(now: datetime.datetime | None = None, *, limit: int = 500) -> int:
    """Queue the ready messages whose time has come (held for quiet hours, backing off, or
    created without a task). Queuing twice is harmless: sending claims the message."""
    from openar.notifications.tasks import send_messages

    now = now or timezone.now()
    with scopes_disabled():
        due = list(
            Message.objects.filter(direction=Message.Direction.OUT, state=Message.State.READY)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .order_by("not_before", "pk")
            .values_list("pk", flat=True)[:limit]
        )
    for start in range(0, len(due), SEND_BATCH):
        send_messages.enqueue(due[start : start + SEND_BATCH])
    return len(due)


def sweep_interrupted(now: datetime.datetime | None = None) -> int:
    """Messages left ``sending`` by a worker that died: failed, not resent (the provider may
    have delivered them). Staff see them in the desk and may send them again.

    Stuck means claimed ``STUCK_AFTER`` ago: neither when the message was made nor when it
    was due says how long a send has been running (a reminder held for the quiet hours, a
    retry after its backoff, are claimed long after both). A message claimed before
    ``claimed_at`` existed has none: for it, the old rule (made, or due, that long ago)."""
    now = now or timezone.now()
    cutoff = now - STUCK_AFTER
    with scopes_disabled():
        stuck = Message.objects.filter(state=Message.State.SENDING, sent_at__isnull=True).filter(
            Q(claimed_at__lt=cutoff)
            | Q(claimed_at__isnull=True, not_before__isnull=True, created_at__lt=cutoff)
            | Q(claimed_at__isnull=True, not_before__lt=cutoff)
        )
        return stuck.update(
            state=Message.State.FAILED,
            error="Interrupted while sending: it may or may not have left. Check, then send it again.",
        )


def message_resend(*, message: Message, actor: User | None) -> Message:
    """Staff send a failed (or skipped) message again, as a new message with the same
    content (the original keeps its record)."""
    if message.direction != Message.Direction.OUT or message.state not in (
        Message.State.FAILED,
        Message.State.BOUNCED,
        Message.State.SKIPPED,
    ):
        from openar.core.errors import ServiceError

        raise ServiceError("Only a failed, bounced or skipped message can be sent again.")
    contact = message.contact
    return message_create(
        customer=message.customer,
        channel=message.channel,
        draft=Draft(message.subject, message.body_text, message.body_html, tuple(message.links)),
        contact=contact,
        thread=message.thread,
        invoices=message.invoices.all(),
        attachments=message.attachments.all(),
        tone=message.tone,
        created_by=actor,
    )


def message_receive(
    *,
    customer: Customer,
    channel: str,
    body: str,
    from_address: str = "",
    subject: str = "",
    contact: Contact | None = None,
    thread: Thread | None = None,
    provider_id: str = "",
    created_by: User | None = None,
) -> Message:
    """An inbound message (an SMS or email reply, a portal message from the customer): kept
    whole in its thread, counted unread for staff, and on the timeline."""
    now = timezone.now()
    with transaction.atomic():
        if thread is None:
            thread = thread_for(customer, subject or "Message from the customer")
        message = Message.objects.create(
            organization_id=customer.organization_id,
            customer=customer,
            contact=contact,
            thread=thread,
            direction=Message.Direction.IN,
            channel=channel,
            state=Message.State.RECEIVED,
            from_address=from_address[:254],
            subject=(subject or thread.subject)[:300],
            body_text=body,
            provider_id=provider_id[:200],
            created_by=created_by,
            sent_at=now,
        )
        Thread.objects.filter(pk=thread.pk).update(
            last_message_at=now, unread_by_staff=F("unread_by_staff") + 1
        )
        who = contact.name if contact else (from_address or customer.name)
        activity_record(
            customer=customer,
            kind=ACTIVITY_KIND[Channel(channel)],
            summary=f"{Channel(channel).label} received from {who}: {body[:120]}"[:300],
            body=body[:2000],
            visibility=Activity.Visibility.CUSTOMER,
            occurred_at=now,
        )
    return message


def thread_mark_read(*, thread: Thread, by_staff: bool) -> None:
    """Everything in the thread from the other side is read now."""
    now = timezone.now()
    direction = Message.Direction.IN if by_staff else Message.Direction.OUT
    with transaction.atomic():
        Message.objects.filter(thread=thread, direction=direction, read_at__isnull=True).update(read_at=now)
        Thread.objects.filter(pk=thread.pk).update(
            **{"unread_by_staff" if by_staff else "unread_by_customer": 0}
        )


# --- creditor threads: an agency's creditor client and the collectors -------------------------
#
# A creditor thread (``Thread.Audience.CREDITOR``) is about one placed account, between the
# creditor client's users and the agency's staff. Nothing in it is ever sent to the customer:
# messages are portal messages, read where they are written. On the account's timeline they
# are visible to staff and the creditor only.


def creditor_message_post(
    *, customer: Customer, author: User, body: str, subject: str = "", thread: Thread | None = None
) -> Message:
    """The creditor client writes to the collectors (a new thread unless ``thread`` is
    given): counted unread for staff, and on the timeline as unread for the collectors.
    Callers run it inside their transaction."""
    body = body.strip()
    if not body:
        raise ServiceError("Write the message first.", field="body")
    if thread is not None and (
        thread.audience != Thread.Audience.CREDITOR or thread.customer_id != customer.pk
    ):
        raise ValueError("not a creditor thread of this account")
    now = timezone.now()
    with transaction.atomic():
        if thread is None:
            subject = subject.strip()[:300] or f"About account {customer.number}"
            thread = Thread.creditor_threads.create(
                organization_id=customer.organization_id,
                customer=customer,
                subject=subject,
                audience=Thread.Audience.CREDITOR,
            )
        message = Message.objects.create(
            organization_id=customer.organization_id,
            customer=customer,
            thread=thread,
            direction=Message.Direction.IN,
            channel=Channel.PORTAL,
            state=Message.State.RECEIVED,
            from_address=author.email[:254],
            subject=thread.subject[:300],
            body_text=body,
            created_by=author,
            sent_at=now,
        )
        Thread.creditor_threads.filter(pk=thread.pk).update(
            last_message_at=now, unread_by_staff=F("unread_by_staff") + 1
        )
        entry = activity_build(
            customer=customer,
            kind=Activity.Kind.PORTAL,
            summary=f"Message from {author.get_full_name() or author.email} "
            f"({customer.creditor.name}) to the collectors: {thread.subject}",
            body=body[:2000],
            visibility=Activity.Visibility.CREDITOR,
            actor=author,
            occurred_at=now,
        )
        entry.staff_unread = True
        entry.save(force_insert=True)
    return message


def creditor_message_reply(*, thread: Thread, author: User, body: str) -> Message:
    """Staff answer the creditor client in its thread (never the customer): unread for the
    creditor until they open it, and on the timeline for staff and the creditor."""
    if thread.audience != Thread.Audience.CREDITOR:
        raise ValueError("not a creditor thread")
    body = body.strip()
    if not body:
        raise ServiceError("Write the reply first.", field="body")
    now = timezone.now()
    customer = thread.customer
    with transaction.atomic():
        message = Message.objects.create(
            organization_id=customer.organization_id,
            customer=customer,
            thread=thread,
            direction=Message.Direction.OUT,
            channel=Channel.PORTAL,
            state=Message.State.DELIVERED,
            subject=reply_subject_of(thread.subject),
            body_text=body,
            created_by=author,
            sent_at=now,
            delivered_at=now,
        )
        Thread.creditor_threads.filter(pk=thread.pk).update(
            last_message_at=now, unread_by_customer=F("unread_by_customer") + 1, unread_by_staff=0
        )
        activity_record(
            customer=customer,
            kind=Activity.Kind.PORTAL,
            summary=f"{author.get_full_name() or author.email} answered {customer.creditor.name}: "
            f"{thread.subject}",
            body=body[:2000],
            visibility=Activity.Visibility.CREDITOR,
            actor=author,
            occurred_at=now,
        )
        log_event(
            "openar.creditor_thread.replied",
            organization=customer.organization,
            obj=message,
            actor=author,
            data={"thread": thread.pk, "customer": customer.pk},
        )
    return message


def creditor_thread_mark_read(*, thread: Thread, by_staff: bool) -> None:
    """Everything in the creditor thread from the other side is read now."""
    if thread.audience != Thread.Audience.CREDITOR:
        raise ValueError("not a creditor thread")
    now = timezone.now()
    direction = Message.Direction.IN if by_staff else Message.Direction.OUT
    with transaction.atomic():
        Message.objects.filter(thread=thread, direction=direction, read_at__isnull=True).update(read_at=now)
        Thread.creditor_threads.filter(pk=thread.pk).update(
            **{"unread_by_staff" if by_staff else "unread_by_customer": 0}
        )


def reply_subject_of(subject: str) -> str:
    """One "Re: ", however long the conversation goes on."""
    return (subject if subject.lower().startswith("re:") else f"Re: {subject}")[:300]
