"""The services of disputes: what the portal, the desk (and later the API) call.

- ``dispute_open``: the customer questions lines of an invoice;
- ``dispute_review_start``, ``dispute_assign``: staff take it up;
- ``dispute_comment``: a message (and files) in its thread, from either side;
- ``dispute_resolve``: staff accept all, part or none of each line; what is accepted is
  credited by a credit note, linked to the dispute; the rest is rejected with a reason;
- ``dispute_withdraw``: the customer takes it back.

Each runs in one transaction: it locks the dispute (or the invoice, when opening), checks
its state again, acts, writes a timeline entry and an audit event (``openar.dispute.*``),
and queues its emails for after the commit (``openar.disputes.notices``). Bad input raises
``ServiceError`` with ``field`` set to the input it is about and a message the person can
read; nothing is written then.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from openar.billing.ledger import invoices_lock
from openar.billing.models import CreditNote, Document, Invoice, InvoiceLine
from openar.billing.services import credit_note_issue, document_store
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.core.files import atomic_with_files
from openar.core.money import format_money, quantize
from openar.core.uploads import CheckedUpload
from openar.customers.models import Activity, Contact
from openar.customers.services import activity_record
from openar.disputes.models import Dispute, DisputeAttachment, DisputeLine, DisputeReason
from openar.disputes.notices import desk_url, tell_customer, tell_staff
from openar.identity.models import User
from openar.notifications.models import Channel, Message
from openar.notifications.services import message_receive
from openar.tenants.models import STAFF_ROLES, Membership

COMMENT_MAX = 2000
MESSAGE_MAX = 5000
REASON_MAX = 2000
MAX_FILES = 5


@dataclass(frozen=True)
class LineClaim:
    """One invoice line the customer questions."""

    invoice_line_id: int
    reason_id: int
    amount: Decimal
    comment: str = ""


def _user(actor: User | None) -> User | None:
    return actor if actor is not None and actor.is_authenticated else None


def _money(amount: Decimal, currency: str) -> str:
    return format_money(amount, currency)


def _by_token(invoice: Invoice, form_token: str) -> Dispute | None:
    if not form_token:
        return None
    return Dispute.objects.filter(customer_id=invoice.customer_id, form_token=form_token).first()


def credited_on_line(line: InvoiceLine) -> Decimal:
    """What resolved disputes accepted (and credited) on the line before."""
    total = DisputeLine.objects.filter(
        invoice_line=line, dispute__state=Dispute.State.RESOLVED, accepted_amount__isnull=False
    ).aggregate(total=Sum("accepted_amount"))["total"]
    return Decimal(total or 0)


def disputable_on_line(line: InvoiceLine, currency: str) -> Decimal:
    """The most that can be disputed on the line: its total less what was credited on it
    by earlier disputes."""
    return quantize(max(Decimal(0), line.total - credited_on_line(line)), currency)


def disputed_open_on(invoice: Invoice, *, excluding: int | None = None) -> Decimal:
    """What open disputes (open or in review) hold of the invoice."""
    disputes = Dispute.objects.filter(invoice=invoice, state__in=Dispute.OPEN_STATES)
    if excluding is not None:
        disputes = disputes.exclude(pk=excluding)
    total = disputes.aggregate(total=Sum("disputed_total"))["total"]
    return quantize(Decimal(total or 0), invoice.currency)


def _store(
    dispute: Dispute, files: Sequence[CheckedUpload], *, actor: User | None, by_staff: bool
) -> list[Document]:
    documents = []
    for upload in files:
        document = document_store(
            customer=dispute.customer,
            kind=Document.Kind.ATTACHMENT,
            title=f"Dispute {dispute.pk}: {upload.filename}",
            upload=upload,
            invoice=dispute.invoice,
            visible_to_customer=True,
            actor=actor,
        )
        DisputeAttachment.objects.create(
            organization_id=dispute.organization_id,
            dispute=dispute,
            document=document,
            added_by=_user(actor),
            by_staff=by_staff,
        )
        documents.append(document)
    return documents


def _checked_files(files: Sequence[CheckedUpload]) -> None:
    if len(files) > MAX_FILES:
        raise ServiceError(f"Attach at most {MAX_FILES} files at a time.", field="attachments")


def _lines_text(dispute: Dispute) -> str:
    rows = []
    for line in dispute.lines.select_related("invoice_line", "reason"):
        amount = _money(line.amount, dispute.currency)
        row = f"- {line.invoice_line.description}: {amount} ({line.reason.label})"
        if line.comment:
            row += f": {line.comment}"
        rows.append(row)
    return "\n".join(rows)


def dispute_open(
    *,
    invoice: Invoice,
    lines: Sequence[LineClaim],
    contact: Contact | None,
    actor: User | None,
    message: str = "",
    attachments: Sequence[CheckedUpload] = (),
    form_token: str = "",
) -> Dispute:
    """Open a dispute on lines of ``invoice`` (the caller checked the session may see it).

    - ``lines``: at least one; each an invoice line of this invoice (once), an active reason
      of the organization, an amount above zero and at most the line's total less what
      earlier disputes credited on it, a comment of up to 2,000 characters; together at
      most what is open on the invoice less what other open disputes already hold. A line
      in an open dispute cannot be disputed again until that one ends.
    - ``contact``/``actor``: who opens it (they hear about it); ``message``: a note to AR;
      ``attachments``: up to five files (photos, PDFs), kept as the invoice's documents.
    - ``form_token``: the form's one-time token; the same token returns the dispute it made.

    The dispute is ``open``, assigned to the customer's collector, due by the strictest
    reason's SLA; its conversation starts with what the customer wrote. The customer gets a
    confirmation; the collector (else the organization) and the reasons' people an email.
    """
    form_token = (form_token or "")[:64]
    existing = _by_token(invoice, form_token)
    if existing is not None:
        return existing
    try:
        return _open(
            invoice=invoice,
            lines=lines,
            contact=contact,
            actor=actor,
            message=message,
            attachments=attachments,
            form_token=form_token,
        )
    except ServiceError:
        again = _by_token(invoice, form_token)
        if again is not None:
            return again
        raise
    except IntegrityError as exc:
        # The same form sent twice at once, or a line disputed meanwhile by someone else.
        again = _by_token(invoice, form_token)
        if again is not None:
            return again
        raise ServiceError(
            "One of these lines was just disputed; reload the invoice.", field="lines"
        ) from exc


def _open(
    *,
    invoice: Invoice,
    lines: Sequence[LineClaim],
    contact: Contact | None,
    actor: User | None,
    message: str,
    attachments: Sequence[CheckedUpload],
    form_token: str,
) -> Dispute:
    customer = invoice.customer
    organization = customer.organization
    currency = invoice.currency
    if contact is not None and contact.customer_id != customer.pk:
        raise ServiceError("That contact is not on this account.", field="contact")
    if not lines:
        raise ServiceError("Choose at least one line to dispute.", field="lines")
    text = (message or "").strip()
    if len(text) > MESSAGE_MAX:
        raise ServiceError(f"Keep the message to {MESSAGE_MAX} characters or fewer.", field="message")
    _checked_files(attachments)
    invoice_lines = {line.pk: line for line in InvoiceLine.objects.filter(invoice=invoice)}
    reasons = {reason.pk: reason for reason in DisputeReason.objects.filter(organization=organization)}
    seen: set[int] = set()
    checked: list[tuple[InvoiceLine, DisputeReason, Decimal, str]] = []
    for claim in lines:
        line = invoice_lines.get(claim.invoice_line_id)
        if line is None:
            raise ServiceError("One of the lines chosen is not on this invoice.", field="lines")
        if line.pk in seen:
            raise ServiceError(f"The line “{line.description}” is chosen twice.", field="lines")
        seen.add(line.pk)
        reason = reasons.get(claim.reason_id)
        if reason is None or not reason.active:
            raise ServiceError(f"Choose a reason for “{line.description}”.", field=f"reason_{line.pk}")
        amount = quantize(claim.amount, currency)
        if amount != claim.amount:
            raise ServiceError(
                f"Enter the amount for “{line.description}” in whole {currency} cents at most.",
                field=f"amount_{line.pk}",
            )
        if amount <= 0:
            raise ServiceError(
                f"Enter an amount above zero for “{line.description}”.", field=f"amount_{line.pk}"
            )
        most = disputable_on_line(line, currency)
        if amount > most:
            raise ServiceError(
                f"“{line.description}” can be disputed for at most {_money(most, currency)}.",
                field=f"amount_{line.pk}",
            )
        comment = (claim.comment or "").strip()
        if len(comment) > COMMENT_MAX:
            raise ServiceError(
                f"Keep the comment on “{line.description}” to {COMMENT_MAX} characters or fewer.",
                field=f"comment_{line.pk}",
            )
        checked.append((line, reason, amount, comment))
    total = quantize(sum((amount for _, _, amount, _ in checked), Decimal(0)), currency)
    now = timezone.now()
    with atomic_with_files():
        # One change of the invoice's disputes at a time: two forms sent at once are
        # checked one after the other, never both against nothing.
        locked = invoices_lock([invoice.pk])[invoice.pk]
        if locked.open_amount <= 0:
            raise ServiceError(f"Invoice {locked.number} is paid: nothing is left to dispute.", field="lines")
        busy = DisputeLine.objects.filter(invoice_line_id__in=seen, is_open=True).select_related(
            "invoice_line"
        )
        for taken in busy:
            raise ServiceError(
                f"“{taken.invoice_line.description}” is already in an open dispute.",
                field=f"line_{taken.invoice_line_id}",
            )
        # Again under the invoice's lock: a dispute resolved meanwhile may have credited a line.
        for line, _, amount, _ in checked:
            most = disputable_on_line(line, currency)
            if amount > most:
                raise ServiceError(
                    f"“{line.description}” can be disputed for at most {_money(most, currency)}.",
                    field=f"amount_{line.pk}",
                )
        room = quantize(locked.open_amount - disputed_open_on(locked), currency)
        if total > room:
            raise ServiceError(
                f"Invoice {locked.number} has {_money(room, currency)} open that is not disputed yet; "
                f"the lines chosen add up to {_money(total, currency)}.",
                field="lines",
            )
        sla_days = min(reason.sla_days for _, reason, _, _ in checked)
        dispute = Dispute.objects.create(
            organization_id=organization.pk,
            customer=customer,
            invoice=locked,
            currency=currency,
            disputed_total=total,
            opened_by=_user(actor),
            opened_by_contact=contact,
            assigned_to=customer.assigned_collector,
            due_at=now + datetime.timedelta(days=sla_days),
            created_at=now,
            form_token=form_token,
        )
        DisputeLine.objects.bulk_create(
            DisputeLine(
                organization_id=organization.pk,
                dispute=dispute,
                invoice_line=line,
                reason=reason,
                amount=amount,
                comment=comment,
            )
            for line, reason, amount, comment in checked
        )
        documents = _store(dispute, attachments, actor=actor, by_staff=False)
        who = contact.name if contact is not None else (actor.get_full_name() if actor else customer.name)
        body = (
            f"Disputed lines of invoice {locked.number} ({_money(total, currency)}):\n{_lines_text(dispute)}"
        )
        if text:
            body += f"\n\n{text}"
        opening = message_receive(
            customer=customer,
            channel=Channel.PORTAL,
            body=body,
            from_address=(contact.email if contact else "") or (actor.email if actor else ""),
            subject=f"Dispute on invoice {locked.number}",
            contact=contact,
            created_by=_user(actor),
        )
        if documents:
            opening.attachments.set(documents)
        dispute.thread = opening.thread
        dispute.save(update_fields=["thread"])
        activity_record(
            customer=customer,
            kind=Activity.Kind.PORTAL,
            summary=f"Dispute opened by {who} on invoice {locked.number}: "
            f"{len(checked)} line{'s' if len(checked) != 1 else ''}, {_money(total, currency)}",
            body=_lines_text(dispute),
            actor=actor,
            invoice_id=locked.pk,
        )
        log_event(
            "openar.dispute.opened",
            organization=organization,
            obj=dispute,
            actor=actor,
            data={
                "invoice": locked.number,
                "total": str(total),
                "currency": currency,
                "lines": [
                    {"line": line.pk, "reason": reason.code, "amount": str(amount)}
                    for line, reason, amount, _ in checked
                ],
                "contact": contact.pk if contact is not None else None,
                "attachments": [document.pk for document in documents],
            },
        )
        due = dispute.due_at.astimezone(organization.tz).date()
        tell_customer(
            dispute,
            f"We received your dispute on invoice {locked.number}",
            f"Thank you. We received your dispute of {_money(total, currency)} on invoice {locked.number}:\n"
            f"{_lines_text(dispute)}\n\nWe aim to answer by {due.day} {due:%B %Y}. Until then we send no "
            f"reminders about the disputed amount; the rest of the invoice "
            f"({_money(max(Decimal(0), locked.open_amount - disputed_open_on(locked)), currency)}) "
            f"can be paid as usual.",
        )
        tell_staff(
            dispute,
            f"Dispute opened: {customer.name}, invoice {locked.number}, {_money(total, currency)}",
            f"{who} disputes {_money(total, currency)} of invoice {locked.number} "
            f"({customer.name}, account {customer.number}):\n{_lines_text(dispute)}"
            + (f"\n\nTheir message:\n{text}" if text else "")
            + f"\n\nDue by {due:%Y-%m-%d}.",
            with_reasons=True,
        )
    return dispute


def _locked(dispute: Dispute, states: Sequence[str], doing: str) -> Dispute:
    """The dispute, locked, in one of ``states`` (else a ServiceError that says why)."""
    locked = Dispute.objects.select_for_update().get(pk=dispute.pk)
    if locked.state not in states:
        raise ServiceError(
            f"This dispute is {locked.get_state_display().lower()}: it cannot be {doing}.", field="state"
        )
    return locked


def _moved(locked: Dispute, **changes: object) -> None:
    """Write ``changes`` if the state is still the one read (SQLite has no row locks)."""
    if Dispute.objects.filter(pk=locked.pk, state=locked.state).update(**changes) != 1:
        raise ServiceError("This dispute changed meanwhile; reload the page.", field="state")
    for name, value in changes.items():
        setattr(locked, name, value)


def _staff(user: User, dispute: Dispute) -> bool:
    return Membership.objects.filter(
        organization_id=dispute.organization_id, user=user, role__in=STAFF_ROLES, is_active=True
    ).exists()


def dispute_review_start(*, dispute: Dispute, actor: User) -> Dispute:
    """Staff start reviewing an open dispute (it is assigned to them when nobody had it);
    the customer is told."""
    with transaction.atomic():
        locked = _locked(dispute, [Dispute.State.OPEN], "put in review")
        _moved(
            locked,
            state=Dispute.State.IN_REVIEW,
            review_started_at=timezone.now(),
            assigned_to=locked.assigned_to or _user(actor),
        )
        invoice = locked.invoice
        activity_record(
            customer=locked.customer,
            kind=Activity.Kind.STATUS,
            summary=f"Dispute on invoice {invoice.number} in review",
            actor=actor,
            invoice_id=invoice.pk,
        )
        log_event(
            "openar.dispute.review_started",
            organization=locked.customer.organization,
            obj=locked,
            actor=actor,
        )
        tell_customer(
            locked,
            f"Your dispute on invoice {invoice.number} is in review",
            f"We are now reviewing your dispute of {_money(locked.disputed_total, locked.currency)} on "
            f"invoice {invoice.number}. We will tell you what we decide.",
        )
    return locked


def dispute_assign(*, dispute: Dispute, assignee: User | None, actor: User) -> Dispute:
    """Give an open dispute to a member of staff (None: nobody in particular)."""
    if assignee is not None and not _staff(assignee, dispute):
        raise ServiceError("Choose someone on the organization's staff.", field="assignee")
    with transaction.atomic():
        locked = _locked(dispute, Dispute.OPEN_STATES, "assigned")
        before = locked.assigned_to_id
        if before == (assignee.pk if assignee else None):
            return locked
        _moved(locked, assigned_to=assignee)
        log_event(
            "openar.dispute.assigned",
            organization=locked.customer.organization,
            obj=locked,
            actor=actor,
            data={"from": before, "to": assignee.pk if assignee else None},
        )
        if assignee is not None and assignee.pk != actor.pk and assignee.email:
            subject = f"Dispute assigned to you: {locked.customer.name}, invoice {locked.invoice.number}"
            text = f"{actor.get_full_name() or actor.email} gave you this dispute.\n\n{desk_url(locked)}\n"
            to = assignee.email
            transaction.on_commit(lambda: send_mail(subject, text, None, [to], fail_silently=True))
    return locked


def dispute_comment(
    *,
    dispute: Dispute,
    body: str,
    actor: User | None,
    by_staff: bool,
    contact: Contact | None = None,
    attachments: Sequence[CheckedUpload] = (),
) -> Message:
    """A message in the dispute's thread, with files: from the customer (kept as received,
    unread for staff) or from staff (sent to the customer by email, else as a portal
    message). Only while the dispute is open or in review."""
    text = (body or "").strip()
    if not text and not attachments:
        raise ServiceError("Write a message or attach a file.", field="body")
    if len(text) > MESSAGE_MAX:
        raise ServiceError(f"Keep the message to {MESSAGE_MAX} characters or fewer.", field="body")
    _checked_files(attachments)
    if contact is not None and contact.customer_id != dispute.customer_id:
        raise ServiceError("That contact is not on this account.", field="contact")
    with atomic_with_files():
        locked = _locked(dispute, Dispute.OPEN_STATES, "added to")
        documents = _store(locked, attachments, actor=actor, by_staff=by_staff)
        names = ", ".join(document.filename for document in documents)
        text = text or f"Attached: {names}"
        invoice = locked.invoice
        if by_staff:
            message = tell_customer(
                locked,
                f"Re: Dispute on invoice {invoice.number}",
                text,
                created_by=actor,
                attachments=documents,
            )
        else:
            message = message_receive(
                customer=locked.customer,
                channel=Channel.PORTAL,
                body=text,
                from_address=(contact.email if contact else "") or (actor.email if actor else ""),
                contact=contact,
                thread=locked.thread,
                subject=f"Dispute on invoice {invoice.number}",
                created_by=_user(actor),
            )
            if documents:
                message.attachments.set(documents)
        if documents and by_staff:
            activity_record(
                customer=locked.customer,
                kind=Activity.Kind.STATUS,
                summary=f"Files added to the dispute on invoice {invoice.number}: {names}",
                actor=actor,
                invoice_id=invoice.pk,
            )
        log_event(
            "openar.dispute.commented",
            organization=locked.customer.organization,
            obj=locked,
            actor=actor,
            data={
                "by_staff": by_staff,
                "message": message.pk,
                "attachments": [document.pk for document in documents],
            },
        )
    return message


def _credit_number(dispute: Dispute) -> str:
    base = f"CN-D{dispute.pk:05d}"
    number, n = base, 1
    while CreditNote.objects.filter(number=number).exists():
        n += 1
        number = f"{base}-{n}"
    return number


def dispute_resolve(
    *,
    dispute: Dispute,
    accepted: Mapping[int, Decimal],
    rejection_reason: str,
    actor: User,
    credit_note_number: str = "",
) -> Dispute:
    """Decide an open (or in-review) dispute: ``accepted`` gives, for each of its lines (by
    ``DisputeLine`` id), the amount accepted, from zero to the amount disputed.

    - Everything accepted: ``accepted``; nothing: ``rejected``; in between:
      ``partly_accepted``. Unless all is accepted, ``rejection_reason`` says why (the
      customer reads it).
    - What is accepted is credited: a credit note (numbered ``CN-D<dispute>`` unless
      ``credit_note_number`` is given) is issued on the invoice and linked. It cannot be
      more than the invoice still has open (paid meanwhile: refund the payment instead).

    The disputed amount stops pausing dunning: the rest of the invoice is reminded again.
    The customer is told the outcome."""
    reason_text = (rejection_reason or "").strip()
    if len(reason_text) > REASON_MAX:
        raise ServiceError(f"Keep the reason to {REASON_MAX} characters or fewer.", field="rejection_reason")
    with transaction.atomic():
        locked = _locked(dispute, Dispute.OPEN_STATES, "resolved")
        currency = locked.currency
        lines = list(locked.lines.select_related("invoice_line"))
        unknown = set(accepted) - {line.pk for line in lines}
        if unknown:
            raise ServiceError("One of the lines is not part of this dispute.", field="accepted")
        decided: list[tuple[DisputeLine, Decimal]] = []
        for line in lines:
            if line.pk not in accepted:
                raise ServiceError(
                    f"Say how much of “{line.invoice_line.description}” is accepted (0 to reject it).",
                    field=f"accepted_{line.pk}",
                )
            amount = quantize(accepted[line.pk], currency)
            if amount != accepted[line.pk]:
                raise ServiceError(
                    f"Enter the amount accepted for “{line.invoice_line.description}” in whole "
                    f"{currency} cents at most.",
                    field=f"accepted_{line.pk}",
                )
            if amount < 0 or amount > line.amount:
                raise ServiceError(
                    f"For “{line.invoice_line.description}” accept from 0 to "
                    f"{_money(line.amount, currency)}.",
                    field=f"accepted_{line.pk}",
                )
            decided.append((line, amount))
        total = quantize(sum((amount for _, amount in decided), Decimal(0)), currency)
        if total == locked.disputed_total:
            outcome = Dispute.Outcome.ACCEPTED
        elif total == 0:
            outcome = Dispute.Outcome.REJECTED
        else:
            outcome = Dispute.Outcome.PARTLY_ACCEPTED
        if outcome != Dispute.Outcome.ACCEPTED and not reason_text:
            raise ServiceError(
                "Say why the dispute is rejected" + (" in part." if total else "."), field="rejection_reason"
            )
        invoice = invoices_lock([locked.invoice_id])[locked.invoice_id]
        note = None
        if total > 0:
            if total > invoice.open_amount:
                raise ServiceError(
                    f"Invoice {invoice.number} has {_money(invoice.open_amount, currency)} open now (it was "
                    f"paid meanwhile): accept at most that, and refund the payment for the rest.",
                    field="accepted",
                )
            note = credit_note_issue(
                invoice=invoice,
                number=(credit_note_number or "").strip() or _credit_number(locked),
                amount=total,
                reason=f"Dispute {locked.pk} {Dispute.Outcome(outcome).label.lower()}",
                actor=actor,
            )
        now = timezone.now()
        for line, amount in decided:
            DisputeLine.objects.filter(pk=line.pk).update(accepted_amount=amount, is_open=False)
            line.accepted_amount, line.is_open = amount, False
        _moved(
            locked,
            state=Dispute.State.RESOLVED,
            outcome=outcome,
            accepted_amount=total,
            rejection_reason=reason_text if outcome != Dispute.Outcome.ACCEPTED else "",
            credit_note=note,
            resolved_at=now,
            resolved_by=actor,
        )
        label = Dispute.Outcome(outcome).label.lower()
        number = note.number if note else ""
        credited = f"; credit note {number} of {_money(total, currency)}" if note else ""
        activity_record(
            customer=locked.customer,
            kind=Activity.Kind.STATUS,
            summary=f"Dispute on invoice {invoice.number} {label}{credited}",
            body=reason_text,
            actor=actor,
            invoice_id=invoice.pk,
        )
        log_event(
            "openar.dispute.resolved",
            organization=locked.customer.organization,
            obj=locked,
            actor=actor,
            data={
                "outcome": outcome,
                "accepted": str(total),
                "credit_note": note.number if note else "",
                "lines": {str(line.pk): str(amount) for line, amount in decided},
                "reason": reason_text,
            },
        )
        rows = "\n".join(
            f"- {line.invoice_line.description}: {_money(amount, currency)} of "
            f"{_money(line.amount, currency)} accepted"
            for line, amount in decided
        )
        if outcome == Dispute.Outcome.ACCEPTED:
            said = (
                f"We accepted your dispute in full. Credit note {number} of {_money(total, currency)} "
                f"is applied to the invoice."
            )
        elif outcome == Dispute.Outcome.PARTLY_ACCEPTED:
            said = (
                f"We accepted {_money(total, currency)} of the {_money(locked.disputed_total, currency)} "
                f"you disputed. Credit note {number} for it is applied to the invoice.\n\n"
                f"Why the rest stands: {reason_text}"
            )
        else:
            said = f"We looked into your dispute and could not accept it.\n\nWhy: {reason_text}"
        tell_customer(
            locked,
            f"Your dispute on invoice {invoice.number}: {label}",
            f"{said}\n\n{rows}\n\nInvoice {invoice.number} now has "
            f"{_money(invoice.open_amount, currency)} open.",
        )
    return locked


def dispute_withdraw(
    *, dispute: Dispute, actor: User | None, contact: Contact | None = None, note: str = ""
) -> Dispute:
    """The customer takes back an open (or in-review) dispute: what it held is reminded
    again. The customer gets a confirmation and staff an email."""
    text = (note or "").strip()
    if len(text) > COMMENT_MAX:
        raise ServiceError(f"Keep the note to {COMMENT_MAX} characters or fewer.", field="note")
    with transaction.atomic():
        locked = _locked(dispute, Dispute.OPEN_STATES, "withdrawn")
        DisputeLine.objects.filter(dispute=locked).update(is_open=False)
        _moved(locked, state=Dispute.State.WITHDRAWN, resolved_at=timezone.now())
        invoice = locked.invoice
        who = contact.name if contact is not None else (actor.get_full_name() if actor else "the customer")
        activity_record(
            customer=locked.customer,
            kind=Activity.Kind.PORTAL,
            summary=f"Dispute on invoice {invoice.number} withdrawn by {who}",
            body=text,
            actor=actor,
            invoice_id=invoice.pk,
        )
        log_event(
            "openar.dispute.withdrawn",
            organization=locked.customer.organization,
            obj=locked,
            actor=actor,
            data={"contact": contact.pk if contact else None, "note": text},
        )
        tell_customer(
            locked,
            f"Your dispute on invoice {invoice.number} is withdrawn",
            f"As you asked, your dispute of {_money(locked.disputed_total, locked.currency)} on invoice "
            f"{invoice.number} is withdrawn. The invoice has {_money(invoice.open_amount, locked.currency)} "
            f"open.",
        )
        tell_staff(
            locked,
            f"Dispute withdrawn: {locked.customer.name}, invoice {invoice.number}",
            f"{who} withdrew the dispute of {_money(locked.disputed_total, locked.currency)} on invoice "
            f"{invoice.number}." + (f"\n\nTheir note:\n{text}" if text else ""),
        )
    return locked
