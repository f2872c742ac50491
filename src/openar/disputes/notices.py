"""What disputes tell people, each sent once the transaction commits.

- The customer, at each step (opened, in review, resolved, withdrawn, a staff reply): an
  email in the dispute's own thread (so the conversation stays whole, and the reply comes
  back to it), to the contact who opened it when they can receive email, else the account's
  email contact; with no one to email, a portal message in that thread.
- Staff, when a dispute opens or the customer withdraws it: the assigned person (else the
  customer's collector, else the organization's address) and, on opening, the people each
  reason names (``DisputeReason.notify_emails``), with a link to the dispute's desk page.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from openar.customers.models import Contact
from openar.disputes.models import Dispute
from openar.identity.models import User
from openar.notifications.models import Channel, Message
from openar.notifications.notices import recipient
from openar.notifications.rendering import text_to_html
from openar.notifications.services import Draft, message_create


def portal_url(dispute: Dispute) -> str:
    return f"{settings.SITE_URL}/portal/disputes/{dispute.pk}/"


def desk_url(dispute: Dispute) -> str:
    return f"{settings.SITE_URL}/desk/disputes/{dispute.pk}/"


def reply_contact(dispute: Dispute) -> Contact | None:
    """Who hears about the dispute by email: whoever last wrote in its thread from the
    customer's side, else the contact who opened it, else the account's email contact
    (``recipient``); None when nobody can receive email."""
    if dispute.thread_id is not None:
        latest = (
            Message.objects.filter(
                thread_id=dispute.thread_id, direction=Message.Direction.IN, contact__isnull=False
            )
            .select_related("contact")
            .order_by("-created_at", "-pk")
            .first()
        )
        if latest is not None and latest.contact is not None:
            found = recipient(dispute.customer, latest.contact)
            if found is not None and found.pk == latest.contact.pk:
                return found
    return recipient(dispute.customer, dispute.opened_by_contact)


def tell_customer(
    dispute: Dispute,
    subject: str,
    body: str,
    *,
    created_by: User | None = None,
    attachments: Iterable[object] = (),
) -> Message:
    """A message to the customer in the dispute's thread (callers run it inside their
    transaction: it is sent once that commits). ``created_by``: a reply staff typed (shown in
    the portal at once); None: an automatic notice."""
    contact = reply_contact(dispute)
    customer = dispute.customer
    link = portal_url(dispute)
    if created_by is None:
        greeting = contact.name if contact is not None else customer.name
        text = f"Hello {greeting},\n\n{body}\n\nYour dispute: {link}\n\n{customer.organization.name}\n"
    else:
        text = f"{body}\n\nYour dispute: {link}\n"
    return message_create(
        customer=customer,
        channel=Channel.EMAIL if contact is not None else Channel.PORTAL,
        draft=Draft(subject[:300], text, text_to_html(text), links=(link,)),
        contact=contact,
        thread=dispute.thread,
        invoices=[dispute.invoice],
        attachments=list(attachments),  # type: ignore[arg-type]
        created_by=created_by,
    )


def staff_addresses(dispute: Dispute, *, with_reasons: bool) -> list[str]:
    """The assigned person (else the customer's collector, else the organization's address)
    and, ``with_reasons``, the people the dispute's reasons name; each once."""
    first = ""
    if dispute.assigned_to is not None and dispute.assigned_to.email:
        first = dispute.assigned_to.email
    elif dispute.customer.assigned_collector is not None:
        first = dispute.customer.assigned_collector.email
    first = first or dispute.customer.organization.email
    addresses = [first] if first else []
    if with_reasons:
        for line in dispute.lines.select_related("reason"):
            for email in line.reason.notify_emails or []:
                addresses.append(str(email))
    unique: list[str] = []
    for address in addresses:
        if address and address.lower() not in (u.lower() for u in unique):
            unique.append(address)
    return unique


def tell_staff(dispute: Dispute, subject: str, body: str, *, with_reasons: bool = False) -> list[str]:
    """A short email to staff about the dispute, sent once the transaction commits; returns
    the addresses."""
    to = staff_addresses(dispute, with_reasons=with_reasons)
    if not to:
        return []
    text = f"{body}\n\n{desk_url(dispute)}\n"
    for address in to:
        transaction.on_commit(
            lambda address=address: send_mail(subject[:300], text, None, [address], fail_silently=True)  # type: ignore[misc]
        )
    return to
