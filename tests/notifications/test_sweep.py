"""The sweep of messages a dead worker left ``sending``: stuck is counted from the moment the
send claimed the message, not from when it was made or due."""

from __future__ import annotations

import datetime

import time_machine
from django_scopes import scope, scopes_disabled

from openar.customers.models import Contact
from openar.notifications import services
from openar.notifications.models import Message
from openar.notifications.services import Draft, message_create, sweep_interrupted

NOW = datetime.datetime(2025, 6, 30, 16, 0, tzinfo=datetime.UTC)


def made_at(contact: Contact, moment: datetime.datetime, subject: str) -> Message:
    with time_machine.travel(moment, tick=False), scope(organization=contact.organization):
        return message_create(
            customer=contact.customer, channel="email", draft=Draft(subject, "Hello"), contact=contact
        )


def claimed_at(message: Message, moment: datetime.datetime) -> None:
    """A send takes the message at ``moment``, then its worker dies."""
    (taken,) = services._claim([message.pk], moment)
    assert (taken.pk, taken.state, taken.claimed_at) == (message.pk, "sending", moment)


def state_of(message: Message) -> str:
    with scopes_disabled():
        return Message.objects.get(pk=message.pk).state


def test_a_send_claimed_a_minute_ago_is_left_to_finish_one_claimed_half_an_hour_ago_is_failed(
    contact: Contact,
) -> None:
    # Both were made two hours ago (held for the quiet hours, say): only the claim tells.
    running = made_at(contact, NOW - datetime.timedelta(hours=2), "Still sending")
    dead = made_at(contact, NOW - datetime.timedelta(hours=2), "Worker died")
    claimed_at(running, NOW - datetime.timedelta(minutes=1))
    claimed_at(dead, NOW - datetime.timedelta(minutes=30))

    assert sweep_interrupted(NOW) == 1

    assert state_of(running) == "sending"
    assert state_of(dead) == "failed"
    with scopes_disabled():
        assert Message.objects.get(pk=dead.pk).error.startswith("Interrupted while sending")


def test_a_message_claimed_before_the_claim_had_a_time_is_swept_as_before(contact: Contact) -> None:
    old = made_at(contact, NOW - datetime.timedelta(hours=2), "Claimed by an older worker")
    new = made_at(contact, NOW - datetime.timedelta(minutes=5), "Claimed by an older worker, just now")
    with scopes_disabled():
        Message.objects.filter(pk__in=[old.pk, new.pk]).update(state="sending", claimed_at=None)

    assert sweep_interrupted(NOW) == 1
    assert (state_of(old), state_of(new)) == ("failed", "sending")
