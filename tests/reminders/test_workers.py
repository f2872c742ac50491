"""Several workers at once: the same periodic slot is claimed once, the same tick of the
reminder engine creates each reminder once, and a message is sent once however many
workers try (PostgreSQL: threads with their own connections). And ``openar worker --once``
runs the database queue for real."""

from __future__ import annotations

import datetime
from io import StringIO

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.test import override_settings
from django_scopes import scope, scopes_disabled

from factories import TODAY, TORONTO, in_threads, issue_invoice, make_contact, make_customer
from openar.core.models import PeriodicRun
from openar.core.periodic import JOBS, schedule_due
from openar.notifications.models import Message
from openar.notifications.services import Draft, message_create, message_send
from openar.reminders.engine import run_all
from openar.tenants.models import Creditor, Organization

NOW = datetime.datetime.combine(TODAY + datetime.timedelta(days=8), datetime.time(10), tzinfo=TORONTO)


def customers_owing(creditor: Creditor, count: int) -> None:
    for n in range(count):
        customer = make_customer(creditor, f"W-{n}", name=f"Worker Test {n}", email=f"ap{n}@example.com")
        make_contact(customer, f"Payables {n}", f"pay{n}@example.com")
        issue_invoice(customer, f"INV-W-{n}", "100.00", due_date=TODAY)


@pytest.mark.postgresql
def test_two_workers_running_the_same_tick_create_and_send_each_reminder_once(
    transactional_db: None, supplier: Organization, creditor: Creditor
) -> None:
    customers_owing(creditor, 12)

    with time_machine.travel(NOW, tick=False):
        created = in_threads(2, lambda n: run_all(NOW)["acme"])
        with scopes_disabled():
            ids = list(Message.objects.values_list("pk", flat=True))
        states = in_threads(4, lambda n: [message_send(message_id=pk) for pk in ids])

    assert not [r for r in (*created, *states) if isinstance(r, Exception)]
    assert created == [12, 12]  # both planned all twelve...
    with scopes_disabled():
        assert Message.objects.count() == 12  # ...and each was created once
        assert set(Message.objects.values_list("state", "attempts")) == {("sent", 1)}
    assert len(mail.outbox) == 12
    assert len({m.to[0] for m in mail.outbox}) == 12


@pytest.mark.postgresql
def test_a_periodic_slot_is_claimed_by_one_worker(transactional_db: None) -> None:
    results = in_threads(6, lambda n: schedule_due(NOW, worker=f"w{n}"))

    claimed = [name for names in results if isinstance(names, list) for name in names]
    assert sorted(claimed) == sorted(job.name for job in JOBS)  # each job once, by someone
    assert PeriodicRun.objects.count() == len(JOBS)


def test_schedule_due_claims_each_slot_once_and_the_next_slot_later(db: None) -> None:
    with override_settings(TASKS={"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}):
        first = schedule_due(NOW, worker="a")
        again = schedule_due(NOW + datetime.timedelta(seconds=20), worker="b")
        later = schedule_due(NOW + datetime.timedelta(minutes=1, seconds=5), worker="b")
    assert sorted(first) == sorted(job.name for job in JOBS)
    assert again == []
    assert sorted(later) == ["dispatch", "payment-events", "sandbox-events"]  # the jobs of every minute


@pytest.mark.django_db(transaction=True)
def test_the_worker_command_runs_the_database_queue(supplier: Organization, customer: object) -> None:
    """``openar worker --once`` with the real database backend: a queued send is run."""
    contact = make_contact(customer, "Dana", "dana@bolt.example")  # type: ignore[arg-type]
    database_queue = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    with override_settings(TASKS=database_queue):
        with scope(organization=supplier):
            message = message_create(
                customer=contact.customer, channel="email", draft=Draft("Hello", "Body"), contact=contact
            )
        out = StringIO()
        call_command("worker", once=True, stdout=out)
    message.refresh_from_db()
    assert message.state == "sent"
    assert [m.subject for m in mail.outbox] == ["Hello"]
    assert "queued:" in out.getvalue()
