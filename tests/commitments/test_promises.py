"""Promises to pay: what is refused and why (each message next to its field), one promise per
form however often it is sent, and the promise over time (time-machine): kept early, kept
on the last day of grace, partly kept, broken, the reminder before the date, the messages
and the collector's task; dunning pauses on what a promise covers until its date plus grace."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail
from django_scopes import scope, scopes_disabled

from factories import Users, issue_credit_note, issue_invoice, make_contact, record_payment
from openar.billing.models import Invoice
from openar.commitments.models import CommitmentPolicy, Promise
from openar.commitments.selectors import customer_promises, promises_for_desk
from openar.commitments.services import (
    promise_cancel,
    promise_create,
    promise_kept_rate,
    promise_progress,
)
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Contact, Customer, Task
from openar.notifications.models import Message
from openar.reminders.context import remindable_invoices
from openar.reminders.engine import plan as reminders_plan
from openar.reminders.engine import run as reminders_run
from openar.tenants.models import Organization

from .conftest import Capture, at, day, messages_to, run_promises, tasks_of


def promise(
    customer: Customer,
    amount: str = "150.00",
    by: int = 10,
    invoices: list[Invoice] | None = None,
    *,
    token: str = "",
    contact: Contact | None = None,
    **extra: Any,
) -> Promise:
    fields: dict[str, Any] = {
        "customer": customer,
        "amount": Decimal(amount),
        "promised_date": day(by),
        "invoices": invoices if invoices is not None else [],
        "note": "Paying from the July receipts",
        "contact": contact,
        "actor": None,
        "source": "portal",
        "form_token": token,
    }
    fields.update(extra)
    with scope(organization=customer.organization):
        return promise_create(**fields)


def fresh(found: Promise) -> Promise:
    with scopes_disabled():
        return Promise.objects.get(pk=found.pk)


def audit(action: str) -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def remindable(customer: Customer, moment: datetime.datetime) -> list[str]:
    with scope(organization=customer.organization):
        return sorted(remindable_invoices(moment).filter(customer=customer).values_list("number", flat=True))


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"by": -1}, "promised_date", "Choose a date from today on: this one is in the past."),
        (
            {"by": 31},
            "promised_date",
            "Choose a date no later than 30 July 2025: promises can be made up to 30 days ahead.",
        ),
        ({"amount": "0"}, "amount", "Enter an amount above zero."),
        ({"amount": "-5.00"}, "amount", "Enter an amount above zero."),
        ({"amount": "350.01"}, "amount", "That is more than the $350.00 left to pay on your account."),
        ({"amount": "10.005"}, "amount", "Enter at most 2 decimals for USD."),
        ({"note": "x" * 1001}, "note", "Keep the note under 1000 characters."),
        ({"source": "fax"}, "source", "Unknown source 'fax'."),
    ],
)
def test_bad_input_is_refused_next_to_its_field(
    customer: Customer,
    contact: Contact,
    account: dict[str, Invoice],
    change: dict[str, Any],
    field: str,
    message: str,
) -> None:
    with pytest.raises(ServiceError) as refused:
        promise(customer, token="form-1", contact=contact, **change)
    assert (refused.value.field, refused.value.message) == (field, message)
    with scopes_disabled():
        assert not Promise.objects.exists()
    assert audit("openar.promise.created") == []
    assert messages_to(customer) == []


def test_an_amount_above_the_invoices_chosen_is_refused(
    customer: Customer, account: dict[str, Invoice]
) -> None:
    with pytest.raises(ServiceError) as refused:
        promise(customer, "100.01", invoices=[account["old"]])
    assert refused.value.field == "amount"
    assert refused.value.message == "That is more than the $100.00 left to pay on the invoices chosen."
    assert promise(customer, "100.00", invoices=[account["old"]]).amount == Decimal("100.00")


def test_a_float_or_a_date_with_a_time_is_refused(customer: Customer, account: dict[str, Invoice]) -> None:
    with scope(organization=customer.organization):
        with pytest.raises(ServiceError) as as_float:
            promise_create(
                customer=customer,
                amount=150.0,  # type: ignore[arg-type]
                promised_date=day(5),
                invoices=[],
                note="",
                contact=None,
                actor=None,
                source="portal",
            )
        with pytest.raises(ServiceError) as as_datetime:
            promise_create(
                customer=customer,
                amount=Decimal("150.00"),
                promised_date=at(5),  # a datetime is a date to Python, not to the service
                invoices=[],
                note="",
                contact=None,
                actor=None,
                source="portal",
            )
    assert as_float.value.field == "amount" and as_datetime.value.field == "promised_date"


def test_invoices_must_be_the_customers_own_and_open(
    customer: Customer, customer_2: Customer, account: dict[str, Invoice]
) -> None:
    theirs = issue_invoice(customer_2, "INV-9", "80.00", due_date=day(-3))
    record_payment(customer, "100.00", allocations=[(account["old"], "100.00")])
    with scopes_disabled():
        paid = Invoice.objects.get(pk=account["old"].pk)
    for invoices, message in (
        ([theirs], "One of the invoices chosen is not on this account."),
        ([paid], "Invoice INV-1 is already paid."),
    ):
        with pytest.raises(ServiceError) as refused:
            promise(customer, "50.00", invoices=invoices)
        assert (refused.value.field, refused.value.message) == ("invoices", message)


def test_a_contact_of_another_customer_is_refused(
    customer: Customer, customer_2: Customer, account: dict[str, Invoice]
) -> None:
    stranger = make_contact(customer_2, "Ann Other", "ann@anvil.example")
    with pytest.raises(ServiceError) as refused:
        promise(customer, contact=stranger)
    assert refused.value.field == "contact"


def test_the_last_day_of_the_horizon_and_the_whole_balance_are_accepted(
    customer: Customer, account: dict[str, Invoice]
) -> None:
    made = promise(customer, "350.00", by=30)
    assert (made.amount, made.promised_date, made.state) == (Decimal("350.00"), day(30), "open")


def test_a_payment_in_flight_is_not_promised_again(customer: Customer, account: dict[str, Invoice]) -> None:
    from openar.payments import online

    with scope(organization=customer.organization):
        online.payment_create(
            customer=customer,
            lines=[online.PayLine(account["old"], Decimal("100.00"))],
            method="card",
            provider_name="sandbox",
            checkout_token="pay-1",
        )
    with pytest.raises(ServiceError) as refused:
        promise(customer, "300.00")
    assert refused.value.message == "That is more than the $250.00 left to pay on your account."


# --- one promise per form ---------------------------------------------------------------------------


def test_a_double_submit_makes_one_promise(
    customer: Customer,
    contact: Contact,
    account: dict[str, Invoice],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = promise(customer, token="form-1", contact=contact, invoices=[account["old"], account["late"]])
        second = promise(
            customer, token="form-1", contact=contact, invoices=[account["old"], account["late"]]
        )
        # Sent again with something else in it (a reload after editing): still the same promise.
        third = promise(customer, "20.00", token="form-1", contact=contact, invoices=[account["late"]])

    assert first.pk == second.pk == third.pk
    with scopes_disabled():
        assert Promise.objects.count() == 1
        assert Activity.objects.filter(kind=Activity.Kind.COMMITMENT).count() == 1
    assert len(audit("openar.promise.created")) == 1
    assert messages_to(customer) == ["Your promise to pay $150.00 by 10 July 2025"]
    (email,) = mail.outbox
    assert email.to == ["dana@bolt.example"]
    assert (
        "Thank you. We have noted your promise to pay $150.00 by 10 July 2025 toward invoices INV-1, INV-2"
        in (email.body)
    )
    assert "We will remind you on 8 July 2025." in email.body


def test_one_open_promise_per_invoice(customer: Customer, account: dict[str, Invoice]) -> None:
    promise(customer, "50.00", invoices=[account["old"]], token="a")
    for invoices in ([account["old"], account["late"]], []):
        with pytest.raises(ServiceError) as refused:
            promise(customer, "50.00", invoices=invoices, token="b")
        assert refused.value.field == "invoices" and refused.value.code == "already_promised"
        assert (
            refused.value.message
            == "There is already a promise to pay $50.00 by 10 July 2025 on these invoices."
        )
    other = promise(customer, "50.00", invoices=[account["late"]], token="c")
    assert other.state == "open"
    with scopes_disabled():
        assert Promise.objects.count() == 2


# --- over time ---------------------------------------------------------------------------------------


def test_kept_early_thanks_the_customer_once(
    customer: Customer,
    contact: Contact,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    made = promise(customer, contact=contact, invoices=[account["old"], account["late"]])
    assert run_promises(django_capture_on_commit_callbacks, at(2), clock) == {"open": 1}
    clock.move_to(at(3, 9))
    record_payment(
        customer,
        "150.00",
        allocations=[(account["old"], "100.00"), (account["late"], "50.00")],
        received_at=at(3, 9),
    )
    with scope(organization=customer.organization):
        assert promise_progress(fresh(made)) == Decimal("150.00")

    assert run_promises(django_capture_on_commit_callbacks, at(3, 10), clock) == {"kept": 1}
    assert run_promises(django_capture_on_commit_callbacks, at(3, 11), clock) == {}  # nothing left open

    kept = fresh(made)
    assert (kept.state, kept.paid_amount, kept.resolved_at) == ("kept", Decimal("150.00"), at(3, 10))
    assert messages_to(customer) == [
        "Your promise to pay $150.00 by 10 July 2025",
        "Thank you: your promise to pay $150.00 is kept",
    ]
    assert "We received $150.00 toward your promise" in mail.outbox[-1].body
    assert tasks_of(customer) == []
    assert [e.object_id for e in audit("openar.promise.kept")] == [str(made.pk)]
    with scopes_disabled():
        assert Activity.objects.filter(summary="Promise to pay $150.00 by 10 July 2025 kept").count() == 1


@pytest.mark.parametrize(
    ("paid_at", "state"),
    [
        (at(13, 23, 30), "kept"),  # the last minutes of the third day of grace count
        (at(14, 0, 30), "broken"),  # the next day does not
    ],
)
def test_payments_count_until_the_end_of_the_promised_date_plus_grace(
    customer: Customer,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
    paid_at: datetime.datetime,
    state: str,
) -> None:
    made = promise(customer, invoices=[account["late"]])
    assert made.covers_until == at(14, 0)
    assert run_promises(django_capture_on_commit_callbacks, at(13, 23), clock) == {"open": 1}
    clock.move_to(paid_at)
    record_payment(customer, "150.00", allocations=[(account["late"], "150.00")], received_at=paid_at)
    assert run_promises(
        django_capture_on_commit_callbacks, paid_at + datetime.timedelta(minutes=5), clock
    ) == {state: 1}
    assert fresh(made).state == state


def test_partly_kept_tells_the_customer_and_puts_a_task_on_the_collectors_worklist(
    customer: Customer,
    contact: Contact,
    users: Users,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    made = promise(customer, contact=contact, invoices=[account["old"], account["late"]])
    clock.move_to(at(5))
    record_payment(customer, "50.00", allocations=[(account["old"], "50.00")], received_at=at(5))
    # Paid toward another invoice: does not count toward this promise.
    record_payment(customer, "20.00", allocations=[(account["later"], "20.00")], received_at=at(5))

    assert run_promises(django_capture_on_commit_callbacks, at(13, 23, 59), clock) == {"open": 1}
    assert run_promises(django_capture_on_commit_callbacks, at(14, 0, 1), clock) == {"partly_kept": 1}
    assert run_promises(django_capture_on_commit_callbacks, at(14, 1), clock) == {}

    partly = fresh(made)
    assert (partly.state, partly.paid_amount) == ("partly_kept", Decimal("50.00"))
    assert messages_to(customer)[-1] == "Your promise to pay $150.00 by 10 July 2025 was partly kept"
    assert "The other $100.00 has not arrived" in mail.outbox[-1].body
    (task,) = tasks_of(customer)
    assert (task.kind, task.assigned_to_id, task.due_date, task.done_at) == (
        Task.Kind.BROKEN_PROMISE,
        users.collector.pk,
        day(14),
        None,
    )
    assert (task.source_type, task.source_id) == ("commitments.promise", str(made.pk))
    assert "partly kept: $50.00 received" in task.summary
    assert [e.data["paid"] for e in audit("openar.promise.partly_kept")] == ["50.00"]


def test_broken_at_the_end_of_grace_tells_the_customer_and_the_collector(
    customer: Customer,
    contact: Contact,
    users: Users,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    made = promise(customer, contact=contact)
    for moment in (at(1), at(10, 23), at(13, 23, 59)):
        assert run_promises(django_capture_on_commit_callbacks, moment, clock).get("broken") is None
    assert fresh(made).state == "open"

    assert run_promises(django_capture_on_commit_callbacks, at(14, 0), clock) == {"broken": 1}
    assert run_promises(django_capture_on_commit_callbacks, at(14, 0), clock) == {}  # twice: nothing more

    broken = fresh(made)
    assert (broken.state, broken.paid_amount, broken.resolved_at) == ("broken", Decimal("0"), at(14, 0))
    subjects = messages_to(customer)
    assert subjects.count("We have not received the $150.00 you promised by 10 July 2025") == 1
    assert "reminders about your account start again" in mail.outbox[-1].body
    (task,) = tasks_of(customer)
    assert (task.kind, task.assigned_to_id, task.due_date) == (
        Task.Kind.BROKEN_PROMISE,
        users.collector.pk,
        day(14),
    )
    assert "Note: Paying from the July receipts" in task.body
    assert len(audit("openar.promise.broken")) == 1 and len(audit("openar.task.created")) == 1
    with scopes_disabled():
        assert Activity.objects.filter(
            summary="Promise to pay $150.00 by 10 July 2025 broken: nothing received",
            visibility=Activity.Visibility.CUSTOMER,
        ).exists()


def test_the_reminder_goes_out_n_days_before_the_date_once(
    customer: Customer,
    contact: Contact,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    made = promise(customer, contact=contact)
    for n in range(0, 8):
        assert run_promises(django_capture_on_commit_callbacks, at(n, 10), clock) == {"open": 1}, n
    assert run_promises(django_capture_on_commit_callbacks, at(8, 10), clock) == {"reminded": 1}
    assert run_promises(django_capture_on_commit_callbacks, at(8, 11), clock) == {"open": 1}
    assert run_promises(django_capture_on_commit_callbacks, at(9, 10), clock) == {"open": 1}

    assert fresh(made).reminded_at == at(8, 10)
    assert messages_to(customer) == [
        "Your promise to pay $150.00 by 10 July 2025",
        "Reminder: your promise to pay $150.00 by 10 July 2025",
    ]
    assert "This is a reminder of your promise to pay $150.00 by 10 July 2025" in mail.outbox[-1].body
    assert len(audit("openar.promise.reminded")) == 1


def test_the_reminder_says_what_has_arrived_so_far_and_none_goes_out_without_days(
    customer: Customer,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    policy: Callable[..., CommitmentPolicy],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    promise(customer, invoices=[account["late"]], token="a")
    clock.move_to(at(4))
    record_payment(customer, "40.00", allocations=[(account["late"], "40.00")], received_at=at(4))
    run_promises(django_capture_on_commit_callbacks, at(8), clock)
    assert "So far we have received $40.00 toward it." in mail.outbox[-1].body

    policy(promise_reminder_days=0)
    promise(customer, "50.00", invoices=[account["old"]], by=20, token="b")
    for n in range(9, 21):
        assert "reminded" not in run_promises(django_capture_on_commit_callbacks, at(n), clock)


def test_no_reminder_for_a_promise_made_within_the_reminder_days(
    customer: Customer,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    promise(customer, by=1)
    assert run_promises(django_capture_on_commit_callbacks, at(0, 13), clock) == {"open": 1}
    assert run_promises(django_capture_on_commit_callbacks, at(1, 9), clock) == {"open": 1}
    assert messages_to(customer) == ["Your promise to pay $150.00 by 1 July 2025"]
    with scopes_disabled():
        confirmation = Message.objects.get(customer=customer)
    assert "We will remind you" not in confirmation.body_text


def test_a_credit_note_does_not_count_toward_a_promise(
    customer: Customer,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    made = promise(customer, "100.00", invoices=[account["late"]])
    clock.move_to(at(2))
    issue_credit_note(account["late"], "CN-1", "100.00")
    record_payment(customer, "30.00", allocations=[(account["late"], "30.00")], received_at=at(2))
    assert run_promises(django_capture_on_commit_callbacks, at(14), clock) == {"partly_kept": 1}
    assert fresh(made).paid_amount == Decimal("30.00")


# --- cancelling ----------------------------------------------------------------------------------------


def test_cancelling_needs_a_reason_and_resumes_dunning(
    customer: Customer, users: Users, account: dict[str, Invoice], django_capture_on_commit_callbacks: Capture
) -> None:
    made = promise(customer)
    assert remindable(customer, at(1)) == []
    with scope(organization=customer.organization):
        with pytest.raises(ServiceError) as refused:
            promise_cancel(promise=made, actor=users.collector, reason=" ")
        assert refused.value.field == "reason"
        promise_cancel(promise=made, actor=users.collector, reason="Customer called: paying by wire instead")
        with pytest.raises(ServiceError):
            promise_cancel(promise=made, actor=users.collector, reason="again")
    cancelled = fresh(made)
    assert (cancelled.state, cancelled.end_reason) == ("cancelled", "Customer called: paying by wire instead")
    assert remindable(customer, at(1)) == ["INV-1", "INV-2", "INV-3"]
    assert [e.actor_id for e in audit("openar.promise.cancelled")] == [users.collector.pk]
    assert messages_to(customer)[-1] == "Your promise to pay $150.00 is cancelled"


# --- dunning pauses ------------------------------------------------------------------------------------


def test_dunning_pauses_on_the_promised_invoices_until_the_date_plus_grace(
    customer: Customer, account: dict[str, Invoice]
) -> None:
    assert remindable(customer, at(0)) == ["INV-1", "INV-2", "INV-3"]
    promise(customer, invoices=[account["late"]])
    assert remindable(customer, at(0)) == ["INV-1", "INV-3"]
    assert remindable(customer, at(13, 23, 59)) == ["INV-1", "INV-3"]
    assert remindable(customer, at(14, 0)) == ["INV-1", "INV-2", "INV-3"]  # before any job ran


def test_a_promise_on_the_account_pauses_every_invoice(
    customer: Customer, account: dict[str, Invoice]
) -> None:
    promise(customer)
    assert remindable(customer, at(5)) == []
    with scope(organization=customer.organization):
        later = issue_invoice(customer, "INV-4", "10.00", due_date=day(-1))
    assert later.number not in remindable(customer, at(5))  # every open invoice of the account
    assert remindable(customer, at(14)) == ["INV-1", "INV-2", "INV-3", "INV-4"]


def test_the_reminder_engine_waits_for_the_promise_then_reminds(
    supplier: Organization,
    customer: Customer,
    contact: Contact,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with scope(organization=supplier):
        assert [p.customer_id for p in reminders_plan(supplier, at(0, 10))] == [customer.pk]
    promise(customer, "300.00", contact=contact)
    for n in (0, 5, 10, 13):
        clock.move_to(at(n, 10))
        assert reminders_run(supplier, at(n, 10)).created == 0, n
    run_promises(django_capture_on_commit_callbacks, at(14, 9), clock)
    clock.move_to(at(14, 10))
    with django_capture_on_commit_callbacks(execute=True):
        result = reminders_run(supplier, at(14, 10))
    assert result.created == 1
    with scopes_disabled():
        reminder = Message.objects.get(dunning_step__isnull=False)
        numbers = {invoice.number for invoice in reminder.invoices.all()}
    assert reminder.customer_id == customer.pk
    assert numbers == {"INV-1", "INV-2"}


# --- the desk -----------------------------------------------------------------------------------------


def test_the_kept_rate_and_the_desk_lists(
    supplier: Organization,
    customer: Customer,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    extra = [issue_invoice(customer, f"INV-X{n}", "10.00", due_date=day(-1)) for n in range(3)]
    kept = promise(customer, "100.00", by=2, invoices=[account["old"]], token="1")
    partly = promise(customer, "200.00", by=2, invoices=[account["late"]], token="2")
    broken = promise(customer, "10.00", by=2, invoices=[extra[0]], token="3")
    still_open = promise(customer, "10.00", by=20, invoices=[extra[1]], token="4")
    cancelled = promise(customer, "10.00", by=2, invoices=[extra[2]], token="5")
    with scope(organization=supplier):
        promise_cancel(promise=cancelled, actor=None, reason="Duplicate")
    due_today = promise(customer, "20.00", by=0, invoices=[account["later"]], token="6")
    clock.move_to(at(1))
    record_payment(customer, "100.00", allocations=[(account["old"], "100.00")], received_at=at(1))
    record_payment(customer, "60.00", allocations=[(account["late"], "60.00")], received_at=at(1))
    run_promises(django_capture_on_commit_callbacks, at(6), clock)

    assert [fresh(p).state for p in (kept, partly, broken, still_open, cancelled, due_today)] == [
        "kept",
        "partly_kept",
        "broken",
        "open",
        "cancelled",
        "broken",
    ]
    with scope(organization=supplier):
        assert promise_kept_rate(supplier, day(0), day(30)) == Decimal("0.2500")  # 1 kept of 4 resolved
        assert promise_kept_rate(supplier, day(1), day(30)) == Decimal("0.3333")  # due_today left out
        assert promise_kept_rate(supplier, day(21), day(30)) is None
        desk = promises_for_desk(supplier, day(20))
        assert [p.pk for p in desk.due_today] == [still_open.pk]
        assert [p.pk for p in desk.kept] == [kept.pk]
        assert {p.pk for p in desk.broken} == {partly.pk, broken.pk, due_today.pk}
        assert desk.kept_rate == Decimal("0.2500")
        assert customer_promises(customer).first() == due_today


def test_a_collectors_note_stays_with_staff_and_a_customers_shows_on_the_timeline(
    customer: Customer, users: Users, account: dict[str, Invoice]
) -> None:
    promise(
        customer,
        "50.00",
        invoices=[account["old"]],
        token="a",
        note="Sounded unsure",
        source="desk",
        actor=users.collector,
    )
    promise(customer, "50.00", invoices=[account["late"]], token="b", note="Paying on Friday")
    with scopes_disabled():
        rows = list(
            Activity.objects.filter(kind=Activity.Kind.COMMITMENT)
            .order_by("pk")
            .values_list("body", "actor_id")
        )
        created = list(Promise.objects.order_by("pk").values_list("note", "source", "created_by_id"))
    assert rows == [("", users.collector.pk), ("Paying on Friday", None)]
    assert created == [("Sounded unsure", "desk", users.collector.pk), ("Paying on Friday", "portal", None)]


def test_a_promise_on_the_account_is_kept_by_payments_to_any_invoice(
    customer: Customer,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    made = promise(customer, "70.00")
    clock.move_to(at(1))
    record_payment(customer, "20.00", allocations=[(account["later"], "20.00")], received_at=at(1))
    record_payment(customer, "50.00", allocations=[(account["old"], "50.00")], received_at=at(1))
    assert run_promises(django_capture_on_commit_callbacks, at(1, 13), clock) == {"kept": 1}
    assert fresh(made).paid_amount == Decimal("70.00")
