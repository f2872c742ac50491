"""Flagging a contact's address as not working: a service of the customers, audited, used by
the sending of messages (a bounce, a refused number)."""

from __future__ import annotations

from django_scopes import scope, scopes_disabled

from openar.core.models import AuditEvent
from openar.customers.models import Contact
from openar.customers.services import contact_flag_address
from openar.notifications.services import Draft, message_create, message_delivery_update

FLAGGED = "openar.contact.address_flagged"


def fresh(contact: Contact) -> Contact:
    with scopes_disabled():
        return Contact.objects.get(pk=contact.pk)


def flags() -> list[dict[str, object]]:
    with scopes_disabled():
        return [event.data for event in AuditEvent.objects.filter(action=FLAGGED).order_by("pk")]


def test_an_address_is_flagged_once_and_audited(contact: Contact) -> None:
    with scope(organization=contact.organization):
        assert contact_flag_address(contact_id=contact.pk, channel="email", problem="550 no such user")
        assert not contact_flag_address(contact_id=contact.pk, channel="email", problem="550 no such user")
        assert contact_flag_address(contact_id=contact.pk, channel="sms", problem="x" * 300)
        assert not contact_flag_address(contact_id=contact.pk, channel="letter", problem="returned")

    flagged = fresh(contact)
    assert (flagged.email_problem, flagged.phone_problem) == ("550 no such user", "x" * 200)
    assert flags() == [
        {"channel": "email", "problem": "550 no such user"},
        {"channel": "sms", "problem": "x" * 200},
    ]


def test_a_bounce_flags_the_address_through_the_customers_service(contact: Contact) -> None:
    with scope(organization=contact.organization):
        message = message_create(
            customer=contact.customer, channel="email", draft=Draft("Statement", "Hello"), contact=contact
        )
        message_delivery_update(message=message, state="bounced", error="Mailbox full")

    assert fresh(contact).email_problem == "Mailbox full"
    assert flags() == [{"channel": "email", "problem": "Mailbox full"}]
