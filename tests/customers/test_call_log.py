"""Logging call attempts and letters, callbacks, assignment and creditor notes: the services
of the collector's desk (``openar.customers.services``)."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django_scopes import scope

from factories import TODAY, Users, make_member
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Customer, Task
from openar.customers.services import (
    accounts_assign,
    activity_record,
    call_log,
    call_next_action_default,
    callbacks_done,
    creditor_notes_mark_read,
    letter_log,
)
from openar.tenants.models import Organization, Role

TOMORROW = TODAY + datetime.timedelta(days=1)

pytestmark = pytest.mark.usefixtures("clock")


def test_the_outcome_suggests_the_next_action_date() -> None:
    assert call_next_action_default(Activity.Outcome.NO_ANSWER, TODAY) == TOMORROW
    assert call_next_action_default(Activity.Outcome.BUSY, TODAY) == TOMORROW
    assert call_next_action_default(Activity.Outcome.LEFT_MESSAGE, TODAY) == TODAY + datetime.timedelta(
        days=2
    )
    for outcome in ("spoke", "promised", "wrong_number", "refused", "disputed"):
        assert call_next_action_default(outcome, TODAY) is None


def test_a_call_is_seen_by_the_creditor_and_its_note_by_staff_only(customer: Customer, users: Users) -> None:
    with scope(organization=customer.organization):
        logged = call_log(
            customer=customer,
            outcome=Activity.Outcome.NO_ANSWER,
            actor=users.collector,
            note="Voicemail full.\nTry the mobile.",
            next_action_date=TOMORROW,
        )
        call = Activity.objects.get(pk=logged.call.pk)
        assert call.kind == Activity.Kind.CALL
        assert call.visibility == Activity.Visibility.CREDITOR
        assert call.outcome == "no_answer"
        assert call.next_action_date == TOMORROW
        assert call.summary == "Call attempt: No answer; next action 2025-07-01"
        assert call.actor == users.collector
        assert "Voicemail" not in call.summary + call.body  # the note never reaches the creditor
        assert logged.note is not None
        note = Activity.objects.get(pk=logged.note.pk)
        assert note.visibility == Activity.Visibility.INTERNAL
        assert note.kind == Activity.Kind.NOTE
        assert note.summary == "Call note: Voicemail full."
        assert note.body == "Voicemail full.\nTry the mobile."
        task = Task.objects.get(customer=customer, kind=Task.Kind.CALLBACK)
        assert task.due_date == TOMORROW
        assert task.done_at is None
        # The account has no collector: the callback is for whoever called.
        assert task.assigned_to == users.collector
        assert task.source_type == "customers.activity" and task.source_id == str(call.pk)
        event = AuditEvent.objects.get(action="openar.call.logged")
        assert event.data["outcome"] == "no_answer"
        assert event.data["callback"] == task.pk
        assert event.actor == users.collector


def test_a_call_without_a_note_or_date_writes_one_entry_and_no_callback(
    customer: Customer, users: Users
) -> None:
    with scope(organization=customer.organization):
        logged = call_log(customer=customer, outcome=Activity.Outcome.SPOKE, actor=users.collector)
        assert logged.note is None and logged.callback is None
        assert Activity.objects.filter(customer=customer).count() == 1
        assert not Task.objects.filter(customer=customer).exists()


def test_a_new_call_completes_the_open_callback_and_replaces_it(customer: Customer, users: Users) -> None:
    with scope(organization=customer.organization):
        Customer.objects.filter(pk=customer.pk).update(assigned_collector=users.admin)
        customer.refresh_from_db()
        first = call_log(
            customer=customer,
            outcome=Activity.Outcome.NO_ANSWER,
            actor=users.collector,
            next_action_date=TOMORROW,
        )
        assert (
            first.callback is not None and first.callback.assigned_to == users.admin
        )  # the account's collector
        later = TODAY + datetime.timedelta(days=2)
        second = call_log(
            customer=customer,
            outcome=Activity.Outcome.LEFT_MESSAGE,
            actor=users.collector,
            next_action_date=later,
        )
        assert second.callbacks_done == 1
        open_callbacks = list(
            Task.objects.filter(customer=customer, kind=Task.Kind.CALLBACK, done_at__isnull=True)
        )
        assert [t.pk for t in open_callbacks] == [second.callback.pk]  # type: ignore[union-attr]
        old = Task.objects.get(pk=first.callback.pk)
        assert old.done_at is not None and old.done_by == users.collector
        third = call_log(customer=customer, outcome=Activity.Outcome.SPOKE, actor=users.collector)
        assert third.callbacks_done == 1 and third.callback is None
        assert not Task.objects.filter(
            customer=customer, kind=Task.Kind.CALLBACK, done_at__isnull=True
        ).exists()


@pytest.mark.parametrize(
    ("outcome", "next_date", "note", "field"),
    [
        ("shouted", None, "", "outcome"),
        ("", None, "", "outcome"),
        ("no_answer", TODAY - datetime.timedelta(days=1), "", "next_action_date"),
        ("no_answer", TODAY + datetime.timedelta(days=400), "", "next_action_date"),
        ("spoke", None, "x" * 2001, "note"),
    ],
)
def test_a_bad_call_is_refused_and_writes_nothing(
    customer: Customer, users: Users, outcome: str, next_date: datetime.date | None, note: str, field: str
) -> None:
    with scope(organization=customer.organization):
        with pytest.raises(ServiceError) as refused:
            call_log(
                customer=customer,
                outcome=outcome,
                actor=users.collector,
                note=note,
                next_action_date=next_date,
            )
        assert refused.value.field == field
        assert not Activity.objects.filter(customer=customer).exists()
        assert not Task.objects.exists()
        assert not AuditEvent.objects.filter(action="openar.call.logged").exists()


def test_a_letter_is_on_the_timeline_for_the_creditor_with_its_date(customer: Customer, users: Users) -> None:
    with scope(organization=customer.organization):
        sent = TODAY - datetime.timedelta(days=3)
        letter = letter_log(
            customer=customer,
            actor=users.collector,
            sent_on=sent,
            template_name="Final notice",
            note="Sent recorded",
        )
        letter.refresh_from_db()
        assert letter.kind == Activity.Kind.LETTER
        assert letter.visibility == Activity.Visibility.CREDITOR
        assert letter.summary == "Letter sent 2025-06-27: Final notice"
        assert letter.occurred_at == datetime.datetime(
            2025, 6, 27, 16, 0, tzinfo=datetime.UTC
        )  # noon in Toronto
        note = Activity.objects.get(customer=customer, kind=Activity.Kind.NOTE)
        assert note.visibility == Activity.Visibility.INTERNAL and note.body == "Sent recorded"
        assert AuditEvent.objects.get(action="openar.letter.logged").data["template"] == "Final notice"


def test_a_letter_cannot_be_dated_ahead_or_too_far_back(customer: Customer, users: Users) -> None:
    with scope(organization=customer.organization):
        for day, field in ((TOMORROW, "sent_on"), (TODAY - datetime.timedelta(days=400), "sent_on")):
            with pytest.raises(ServiceError) as refused:
                letter_log(customer=customer, actor=users.collector, sent_on=day)
            assert refused.value.field == field
        assert not Activity.objects.exists()


def test_assignment_moves_the_accounts_and_their_open_tasks(
    supplier: Organization, customer: Customer, customer_2: Customer, users: Users
) -> None:
    with scope(organization=supplier):
        logged = call_log(
            customer=customer, outcome=Activity.Outcome.BUSY, actor=users.admin, next_action_date=TOMORROW
        )
        assert logged.callback is not None and logged.callback.assigned_to == users.admin
        Customer.objects.filter(pk=customer.pk).update(assigned_collector=users.admin)
        changed = accounts_assign(
            organization=supplier,
            customer_ids=[customer.pk, customer_2.pk],
            collector=users.collector,
            actor=users.admin,
        )
        assert changed == 2
        assert set(Customer.objects.values_list("assigned_collector", flat=True)) == {users.collector.pk}
        assert Task.objects.get(pk=logged.callback.pk).assigned_to == users.collector
        entries = Activity.objects.filter(kind=Activity.Kind.STATUS).order_by("customer_id")
        assert [(e.customer_id, e.summary, e.visibility) for e in entries] == [
            (customer.pk, "Assigned to Collector of Acme Supplies (was Admin of Acme Supplies)", "internal"),
            (customer_2.pk, "Assigned to Collector of Acme Supplies", "internal"),
        ]
        events = AuditEvent.objects.filter(action="openar.customer.assigned").order_by("object_id")
        assert [e.data["collector"] for e in events] == [
            [users.admin.pk, users.collector.pk],
            [None, users.collector.pk],
        ]
        # Again: nothing changes, nothing is written.
        assert (
            accounts_assign(
                organization=supplier,
                customer_ids=[customer.pk],
                collector=users.collector,
                actor=users.admin,
            )
            == 0
        )
        assert AuditEvent.objects.filter(action="openar.customer.assigned").count() == 2


def test_accounts_go_only_to_an_active_collector_of_the_organization(
    supplier: Organization, agency: Organization, customer: Customer, users: Users
) -> None:
    outsider = make_member(agency, Role.COLLECTOR, "outsider@northwind.example")
    with scope(organization=supplier):
        for who in (users.manager, users.customer, outsider):
            with pytest.raises(ServiceError):
                accounts_assign(
                    organization=supplier, customer_ids=[customer.pk], collector=who, actor=users.admin
                )
        users.collector.memberships.update(is_active=False)
        with pytest.raises(ServiceError):
            accounts_assign(
                organization=supplier, customer_ids=[customer.pk], collector=users.collector, actor=None
            )
        assert Customer.objects.get(pk=customer.pk).assigned_collector is None
        assert not Activity.objects.exists()


def test_another_organizations_account_is_not_assigned(
    supplier: Organization, customer: Customer, other_customer: Customer, users: Users
) -> None:
    with scope(organization=supplier):
        assert (
            accounts_assign(
                organization=supplier,
                customer_ids=[other_customer.pk],
                collector=users.collector,
                actor=users.admin,
            )
            == 0
        )
    with scope(organization=other_customer.organization):
        assert Customer.objects.get(pk=other_customer.pk).assigned_collector is None


def test_callbacks_done_leaves_other_tasks_alone(customer: Customer, users: Users) -> None:
    with scope(organization=customer.organization):
        logged = call_log(
            customer=customer,
            outcome=Activity.Outcome.NO_ANSWER,
            actor=users.collector,
            next_action_date=TOMORROW,
        )
        from openar.customers.services import task_create

        broken = task_create(
            customer=customer, kind=Task.Kind.BROKEN_PROMISE, summary="Broken", due_date=TODAY
        )
        assert callbacks_done(task_ids=[logged.callback.pk, broken.pk], actor=users.collector) == 1  # type: ignore[union-attr]
        assert callbacks_done(task_ids=[logged.callback.pk], actor=users.collector) == 0  # type: ignore[union-attr]
        assert Task.objects.get(pk=broken.pk).done_at is None


def test_reading_creditor_notes_clears_them_once(customer: Customer, users: Users) -> None:
    with scope(organization=customer.organization):
        for text in ("Debtor called us", "Please hold off"):
            note = activity_record(
                customer=customer,
                kind=Activity.Kind.NOTE,
                summary=text,
                visibility=Activity.Visibility.CREDITOR,
            )
            Activity.objects.filter(pk=note.pk).update(staff_unread=True)
        assert creditor_notes_mark_read(customer=customer, actor=users.collector) == 2
        assert creditor_notes_mark_read(customer=customer, actor=users.collector) == 0
        assert not Activity.objects.filter(staff_unread=True).exists()
        events = AuditEvent.objects.filter(action="openar.creditor_notes.read")
        assert [e.data for e in events] == [{"count": 2}]


def test_a_callback_asked_late_in_the_day_is_counted_in_the_organizations_date(
    customer: Customer, users: Users
) -> None:
    # 23:30 in Toronto is already tomorrow in UTC: "today" is still the organization's.
    late = datetime.datetime(2025, 7, 1, 3, 30, tzinfo=datetime.UTC)
    with time_machine.travel(late, tick=False), scope(organization=customer.organization):
        logged = call_log(
            customer=customer,
            outcome=Activity.Outcome.NO_ANSWER,
            actor=users.collector,
            next_action_date=TODAY,
        )
        assert logged.callback is not None and logged.callback.due_date == TODAY


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_calls_logged_at_once_leave_one_open_callback(customer: Customer, users: Users) -> None:
    from factories import in_threads

    def work(n: int) -> int:
        with scope(organization=customer.organization):
            account = Customer.objects.select_related("organization").get(pk=customer.pk)
            logged = call_log(
                customer=account,
                outcome=Activity.Outcome.NO_ANSWER,
                actor=users.collector,
                next_action_date=TODAY + datetime.timedelta(days=1 + n),
            )
            assert logged.callback is not None
            return logged.callback.pk

    results = in_threads(6, work)
    assert all(isinstance(r, int) for r in results), results
    with scope(organization=customer.organization):
        assert Activity.objects.filter(kind=Activity.Kind.CALL).count() == 6
        assert Task.objects.filter(kind=Task.Kind.CALLBACK).count() == 6
        assert Task.objects.filter(kind=Task.Kind.CALLBACK, done_at__isnull=True).count() == 1
