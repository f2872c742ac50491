"""Plain service emails about an account (autopay, promises, plans, returned payments): to
the customer, through the Message outbox (stored whole, sent once the transaction commits);
to AR, a short email to the assigned collector or the organization, also after the commit."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from openar.billing.models import Invoice
from openar.customers.models import Contact, Customer
from openar.notifications.models import Channel, Message
from openar.notifications.rendering import text_to_html
from openar.notifications.services import Draft, address_of, message_create

PORTAL_LINK = "/portal/"


def recipient(customer: Customer, contact: Contact | None) -> Contact | None:
    """Who hears about it: the contact concerned when they can receive email, else the
    primary contact (then any) with an email address who agreed to email."""
    if contact is not None and contact.email and contact.consent_email and not contact.email_problem:
        return contact
    return (
        Contact.objects.filter(customer=customer, consent_email=True, email_problem="")
        .exclude(email="")
        .order_by("-is_primary", "pk")
        .first()
    )


def tell_customer(
    customer: Customer,
    contact: Contact | None,
    subject: str,
    body: str,
    *,
    invoices: Iterable[Invoice] = (),
) -> Message | None:
    """An email to the customer (callers run it inside their transaction: it is sent once
    that commits). None when nobody on the account can receive email."""
    to = recipient(customer, contact)
    if to is None and contact is not None and not contact.consent_email:
        return None  # they asked for no email: the account's address is not a way around it
    if not address_of(to, customer, Channel.EMAIL):
        return None
    greeting = to.name if to is not None else customer.name
    link = f"{settings.SITE_URL}{PORTAL_LINK}"
    text = f"Hello {greeting},\n\n{body}\n\nYour account: {link}\n\n{customer.organization.name}\n"
    return message_create(
        customer=customer,
        channel=Channel.EMAIL,
        draft=Draft(subject[:300], text, text_to_html(text), links=(link,)),
        contact=to,
        invoices=list(invoices),
    )


def tell_ar(customer: Customer, subject: str, body: str) -> None:
    """A note to AR about the account (the assigned collector, else the organization's
    address), with a link to the customer's desk page; sent once the transaction commits."""
    to = (
        customer.assigned_collector.email if customer.assigned_collector else ""
    ) or customer.organization.email
    if not to:
        return
    text = f"{body}\n\n{settings.SITE_URL}/desk/customers/{customer.pk}/\n"
    transaction.on_commit(lambda: send_mail(subject, text, None, [to], fail_silently=True))
