"""Staff's "send now": the reminder goes at once, whatever the quiet hours, but never to a
contact who unsubscribed or has no consent: staff choose the moment, not the recipient."""

from __future__ import annotations

import datetime
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import TODAY, TORONTO, issue_invoice, make_contact
from openar.billing.models import Invoice
from openar.customers.models import Contact, Customer
from openar.notifications.models import Message
from openar.reminders.engine import reminder_send_now, run, unsubscribe_url
from openar.reminders.models import DunningStep, ReminderSettings
from openar.tenants.models import Organization

# Day 8 after the invoice fell due (the +3 "friendly" email is due), at 22:00 in Toronto:
# inside the default quiet hours (20:00 → 08:00).
LATE_EVENING = datetime.datetime.combine(
    TODAY + datetime.timedelta(days=8), datetime.time(22), tzinfo=TORONTO
).astimezone(datetime.UTC)


@pytest.fixture
def owing(supplier: Organization, customer: Customer, contact: Contact) -> Invoice:
    return issue_invoice(customer, "INV-9", "250.00", due_date=TODAY)


def friendly(organization: Organization) -> DunningStep:
    with scope(organization=organization):
        return DunningStep.objects.get(policy__segment="", offset_days=3, channel="email")


def reminders() -> list[Message]:
    with scopes_disabled():
        return list(Message.objects.filter(dunning_step__isnull=False).order_by("pk"))


def test_send_now_does_not_wait_for_the_quiet_hours(
    supplier: Organization, customer: Customer, customer_2: Customer, owing: Invoice
) -> None:
    step = friendly(supplier)
    with time_machine.travel(LATE_EVENING, tick=False), scope(organization=supplier):
        outcome = reminder_send_now(customer=customer, step=step, cycle=owing.pk, actor=None)

    assert outcome == "created"
    (message,) = reminders()
    assert (message.to_address, message.not_before, message.dunning_step_id) == (
        "dana@bolt.example",
        None,
        step.pk,
    )
    with scopes_disabled():
        # The organization's own settings, unchanged: no stand-in was made or saved.
        assert list(ReminderSettings.objects.values_list("quiet_start", "quiet_end")) == [
            (datetime.time(20), datetime.time(8))
        ]

    # The engine, at the same moment, still waits for the quiet hours to end.
    other = issue_invoice(customer_2, "INV-10", "90.00", due_date=TODAY)
    make_contact(customer_2, "Ann", "ann@anvil.example")
    assert run(supplier, LATE_EVENING).created == 1
    waiting = reminders()[-1]
    assert waiting.dunning_cycle == other.pk
    morning = datetime.datetime.combine(TODAY + datetime.timedelta(days=9), datetime.time(8), tzinfo=TORONTO)
    assert waiting.not_before == morning.astimezone(datetime.UTC)


def test_send_now_respects_an_unsubscribe(
    supplier: Organization, customer: Customer, contact: Contact, owing: Invoice
) -> None:
    step = friendly(supplier)
    path = urlsplit(unsubscribe_url(contact, "email")).path
    assert Client().post(path).status_code == 200
    with scopes_disabled():
        assert not Contact.objects.get(pk=contact.pk).consent_email

    with time_machine.travel(LATE_EVENING, tick=False), scope(organization=supplier):
        outcome = reminder_send_now(customer=customer, step=step, cycle=owing.pk, actor=None)

    assert outcome == "opted out of email"
    assert reminders() == []
