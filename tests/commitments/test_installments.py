"""Collecting a plan's installments over time (time-machine): charged to a saved card on their
dates, paid by hand instead (it counts), a declined card (late, one reminder, retries, then
the plan is broken after the grace, the collector gets a task, and the reminder engine
reminds about what is left), a plan without a saved method, a bank debit in flight, and the
plan completed."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django_scopes import scope, scopes_disabled

from factories import Users, issue_credit_note, record_payment
from openar.billing.models import Invoice
from openar.commitments.models import Installment, Plan
from openar.commitments.services import plan_health
from openar.customers.models import Activity, Contact, Customer, Task
from openar.notifications.models import Message
from openar.payments.models import Payment, SavedMethod
from openar.payments.online import expire_abandoned
from openar.payments.providers import base
from openar.payments.providers.sandbox import SandboxProvider
from openar.payments.sandbox import deliver_due
from openar.reminders.engine import run as reminders_run
from openar.tenants.models import Organization

from .conftest import (
    CARD_SAVED_DECLINES,
    Capture,
    at,
    day,
    messages_to,
    run_installments,
    save_card,
    tasks_of,
)
from .test_plans import fresh, installments, make_plan, remindable

D = Decimal
AUGUST_1, SEPTEMBER_1 = datetime.date(2025, 8, 1), datetime.date(2025, 9, 1)


def payments_of(customer: Customer) -> list[Payment]:
    with scopes_disabled():
        return list(Payment.objects.filter(customer=customer).order_by("pk"))


def open_amounts(account: dict[str, Invoice]) -> list[Decimal]:
    with scopes_disabled():
        return [Invoice.objects.get(pk=invoice.pk).open_amount for invoice in account.values()]


def test_installments_are_charged_on_their_dates_and_the_plan_completes(
    customer: Customer,
    contact: Contact,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    card = save_card(customer, contact)
    plan = make_plan(customer, contact=contact, method=card)  # $100.00 on 1 July, 1 August, 1 September
    mail.outbox.clear()

    assert run_installments(django_capture_on_commit_callbacks, at(0, 13), clock) == {"on track": 1}
    assert payments_of(customer) == []
    assert run_installments(django_capture_on_commit_callbacks, at(1, 9), clock) == {
        "charged": 1,
        "on track": 1,
    }
    assert run_installments(django_capture_on_commit_callbacks, at(1, 10), clock) == {"on track": 1}  # once
    (first,) = payments_of(customer)
    with scopes_disabled():
        item = Installment.objects.get(plan=plan, number=1)
    assert (first.state, first.amount, first.saved_method_id, first.checkout_token) == (
        "succeeded",
        D("100.00"),
        card.pk,
        f"installment-{item.pk}-0",
    )
    assert (item.state, item.paid_at, item.last_payment_id) == ("paid", at(1, 9), first.pk)
    assert open_amounts(account) == [D("0"), D("200.00"), D("50.00")]  # oldest due first

    for moment in (at(31, 23), at(32, 0, 30)):  # 1 August starts at midnight in Toronto
        run_installments(django_capture_on_commit_callbacks, moment, clock)
    assert [p.amount for p in payments_of(customer)] == [D("100.00"), D("100.00")]
    assert run_installments(django_capture_on_commit_callbacks, at(63, 9), clock) == {
        "charged": 1,
        "completed": 1,
    }
    assert run_installments(django_capture_on_commit_callbacks, at(63, 10), clock) == {}

    done = fresh(plan)
    assert (done.state, done.end_reason, done.ended_at) == ("completed", "Paid in full", at(63, 9))
    assert [row[3] for row in installments(plan)] == ["paid", "paid", "paid"]
    assert open_amounts(account) == [D("0"), D("0"), D("50.00")]
    assert "Thank you: your payment plan of $300.00 is paid" in messages_to(customer)
    receipts = [m for m in mail.outbox if m.subject.startswith("Receipt")]
    assert len(receipts) == 3
    with scope(organization=customer.organization):
        assert plan_health(done) == "completed"
    assert remindable(customer, at(63)) == ["INV-3"]


def test_an_installment_paid_by_hand_counts_and_only_the_rest_is_charged(
    customer: Customer,
    contact: Contact,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    card = save_card(customer, contact)
    plan = make_plan(customer, contact=contact, method=card)
    clock.move_to(at(0, 15))
    record_payment(customer, "150.00", allocations=[(account["old"], "100.00"), (account["late"], "50.00")])

    assert run_installments(django_capture_on_commit_callbacks, at(1, 9), clock) == {"on track": 1}
    assert installments(plan)[0][3] == "paid" and payments_of(customer)[-1].saved_method_id is None
    run_installments(django_capture_on_commit_callbacks, at(32, 9), clock)
    charged = [p for p in payments_of(customer) if p.saved_method_id]
    assert [p.amount for p in charged] == [D("50.00")]  # $50.00 of the second was paid already
    assert [row[3] for row in installments(plan)] == ["paid", "paid", "scheduled"]


def test_a_declined_card_makes_the_installment_late_then_the_plan_breaks_and_dunning_resumes(
    supplier: Organization,
    customer: Customer,
    contact: Contact,
    users: Users,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    card = save_card(customer, contact, CARD_SAVED_DECLINES)
    plan = make_plan(customer, contact=contact, method=card)

    # 1 July: the charge is declined; the installment is late and the customer told, once.
    assert run_installments(django_capture_on_commit_callbacks, at(1, 9), clock) == {
        "charge failed": 1,
        "reminded": 1,
        "behind": 1,
    }
    with scopes_disabled():
        item = Installment.objects.get(plan=plan, number=1)
    assert (item.state, item.attempts, item.retry_on, item.last_failure) == (
        "late",
        1,
        day(3),
        "Your card was declined.",
    )
    late = "Your payment of $100.00 due 1 July 2025 is late"
    assert messages_to(customer).count(late) == 1
    body = next(m.body for m in mail.outbox if m.subject == late)
    assert "We could not charge your Visa ending 0341: Your card was declined." in body
    assert "We will try again on 3 July 2025." in body
    assert "Please pay it by 6 July 2025" in body
    with scope(organization=customer.organization):
        assert plan_health(fresh(plan)) == "on track"  # due today: not behind until tomorrow

    # Tried again on 3 and 5 July, told once only; still within the grace on 6 July.
    assert run_installments(django_capture_on_commit_callbacks, at(2, 9), clock) == {"behind": 1}
    for n in (3, 5):
        assert run_installments(django_capture_on_commit_callbacks, at(n, 9), clock) == {
            "charge failed": 1,
            "behind": 1,
        }
    assert run_installments(django_capture_on_commit_callbacks, at(6, 9), clock) == {"behind": 1}
    with scopes_disabled():
        item = Installment.objects.get(plan=plan, number=1)
    assert (item.attempts, item.retry_on) == (3, None)
    assert [p.state for p in payments_of(customer)] == ["failed", "failed", "failed"]
    assert messages_to(customer).count(late) == 1
    with scope(organization=customer.organization):
        assert plan_health(fresh(plan)) == "behind"
        assert reminders_run(supplier, at(6, 10)).created == 0  # dunning still paused

    # 7 July: more than 5 days past its date: the plan is broken.
    assert run_installments(django_capture_on_commit_callbacks, at(7, 9), clock) == {"broken": 1}
    assert run_installments(django_capture_on_commit_callbacks, at(7, 10), clock) == {}
    broken = fresh(plan)
    assert (broken.state, broken.ended_at) == ("broken", at(7, 9))
    assert broken.end_reason == "Installment 1 ($100.00, due 1 July 2025) was not paid"
    assert [row[3] for row in installments(plan)] == ["missed", "scheduled", "scheduled"]
    assert messages_to(customer)[-1] == "Your payment plan for account C-1001 has ended"
    assert "Everything still open on its invoices ($300.00) is now due" in mail.outbox[-1].body
    (task,) = tasks_of(customer)
    assert (task.kind, task.assigned_to_id, task.due_date, task.source_id) == (
        Task.Kind.MISSED_INSTALLMENT,
        users.collector.pk,
        day(7),
        str(plan.pk),
    )
    with scopes_disabled():
        assert Activity.objects.filter(summary__startswith="Payment plan of $300.00 broken").count() == 1
    with scope(organization=customer.organization):
        assert plan_health(broken) == "broken"

    # Dunning resumes on what the plan's invoices still have open.
    assert remindable(customer, at(7, 10)) == ["INV-1", "INV-2", "INV-3"]
    clock.move_to(at(7, 10))
    with django_capture_on_commit_callbacks(execute=True):
        assert reminders_run(supplier, at(7, 10)).created == 1
    with scopes_disabled():
        reminder = Message.objects.get(dunning_step__isnull=False)
        assert {invoice.number for invoice in reminder.invoices.all()} == {"INV-1", "INV-2"}
    assert reminder.customer_id == customer.pk


def test_without_a_saved_method_the_customer_pays_and_a_late_payment_within_grace_keeps_the_plan(
    customer: Customer,
    contact: Contact,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    plan = make_plan(customer, contact=contact)
    assert run_installments(django_capture_on_commit_callbacks, at(1, 9), clock) == {"on track": 1}
    assert run_installments(django_capture_on_commit_callbacks, at(2, 9), clock) == {
        "reminded": 1,
        "behind": 1,
    }
    assert run_installments(django_capture_on_commit_callbacks, at(3, 9), clock) == {"behind": 1}
    assert messages_to(customer)[-1] == "Your payment of $100.00 due 1 July 2025 is late"
    assert "We could not charge" not in mail.outbox[-1].body
    clock.move_to(at(6, 20))  # the last day of grace
    record_payment(customer, "100.00", allocations=[(account["old"], "100.00")], received_at=at(6, 20))
    assert run_installments(django_capture_on_commit_callbacks, at(7, 9), clock) == {"on track": 1}
    assert fresh(plan).state == "active" and installments(plan)[0][3] == "paid"
    assert payments_of(customer)[-1].saved_method_id is None

    # The next one, never paid, breaks the plan on 7 August.
    assert run_installments(django_capture_on_commit_callbacks, at(37, 9), clock) == {
        "reminded": 1,
        "behind": 1,
    }
    assert run_installments(django_capture_on_commit_callbacks, at(38, 9), clock) == {"broken": 1}
    assert fresh(plan).end_reason == "Installment 2 ($100.00, due 1 August 2025) was not paid"


def test_a_partial_payment_leaves_the_installment_late_and_says_what_is_left(
    customer: Customer,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    make_plan(customer)
    clock.move_to(at(1, 15))
    record_payment(customer, "60.00", allocations=[(account["old"], "60.00")], received_at=at(1, 15))
    run_installments(django_capture_on_commit_callbacks, at(2, 9), clock)
    assert messages_to(customer)[-1] == "Your payment of $40.00 due 1 July 2025 is late"


def test_a_bank_debit_in_flight_is_not_late_and_counts_once_settled(
    customer: Customer,
    contact: Contact,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with scope(organization=customer.organization):
        from openar.payments.autopay import setup_complete, setup_start
        from openar.payments.sandbox import setup_save

        setup, _ = setup_start(customer=customer, contact=contact, method="ach", actor=None)
        setup_save(setup.provider_setup_id, method="ach", number="000123456789", expires=None)
        bank = setup_complete(setup=setup, actor=None)
    assert isinstance(bank, SavedMethod)
    plan = make_plan(customer, contact=contact, method=bank)
    assert run_installments(django_capture_on_commit_callbacks, at(1, 9), clock) == {
        "charged": 1,
        "on track": 1,
    }
    assert run_installments(django_capture_on_commit_callbacks, at(2, 9), clock) == {"on track": 1}
    assert payments_of(customer)[0].state == "processing"
    assert installments(plan)[0][3] == "scheduled"
    clock.move_to(at(4, 10))
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due()
    assert payments_of(customer)[0].state == "succeeded"
    assert installments(plan)[0][3] == "paid"  # told at once, by the payment's outcome
    assert run_installments(django_capture_on_commit_callbacks, at(4, 11), clock) == {"on track": 1}
    assert len(payments_of(customer)) == 1


def test_a_plan_whose_invoices_were_credited_is_completed(
    customer: Customer,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    plan = make_plan(customer, [account["late"]], installment_count=2)
    issue_credit_note(account["late"], "CN-1", "200.00")
    assert run_installments(django_capture_on_commit_callbacks, at(0, 13), clock) == {"completed": 1}
    done = fresh(plan)
    assert (done.state, done.end_reason) == ("completed", "Nothing is left open on its invoices")
    assert "Thank you: your payment plan" not in " ".join(messages_to(customer))


def test_a_removed_card_is_not_charged_and_the_customer_is_reminded(
    customer: Customer,
    contact: Contact,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    card = save_card(customer, contact)
    plan = make_plan(customer, contact=contact, method=card)
    with scope(organization=customer.organization):
        from openar.payments.autopay import method_remove

        method_remove(method=card, actor=None)
    assert run_installments(django_capture_on_commit_callbacks, at(1, 9), clock) == {"on track": 1}
    assert run_installments(django_capture_on_commit_callbacks, at(2, 9), clock) == {
        "reminded": 1,
        "behind": 1,
    }
    assert payments_of(customer) == []
    assert fresh(plan).state == "active"
    with scopes_disabled():
        assert Plan.objects.filter(saved_method=card).exists()


def test_an_unreachable_provider_charges_the_same_payment_later_and_an_expired_one_counts(
    customer: Customer,
    contact: Contact,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    card = save_card(customer, contact)
    plan = make_plan(customer, contact=contact, method=card)
    keys: list[str] = []

    def down(self: SandboxProvider, request: base.ChargeRequest, credentials: object) -> base.Charge:
        keys.append(request.idempotency_key)
        raise base.ProviderUnavailable("down", retryable=True)

    real = SandboxProvider.charge_saved
    monkeypatch.setattr(SandboxProvider, "charge_saved", down)
    assert run_installments(django_capture_on_commit_callbacks, at(1, 9), clock) == {
        "charge retry later": 1,
        "on track": 1,  # the payment waiting to be charged covers it: not late
    }
    assert run_installments(django_capture_on_commit_callbacks, at(1, 10), clock) == {
        "charge retry later": 1,
        "on track": 1,
    }
    (payment,) = payments_of(customer)
    assert keys == [str(payment.idempotency_key)] * 2
    # A day later the pending payment expires (the provider never answered): counted once,
    # and the next attempt is a payment of its own.
    clock.move_to(at(2, 10))
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_abandoned() == 1
    assert run_installments(django_capture_on_commit_callbacks, at(2, 11), clock) == {
        "charge failed": 1,
        "reminded": 1,
        "behind": 1,
    }
    monkeypatch.setattr(SandboxProvider, "charge_saved", real)
    assert run_installments(django_capture_on_commit_callbacks, at(4, 9), clock) == {
        "charged": 1,
        "on track": 1,
    }
    assert [p.state for p in payments_of(customer)] == ["failed", "succeeded"]
    with scopes_disabled():
        item = Installment.objects.get(plan=plan, number=1)
    assert (item.state, item.attempts) == ("paid", 1)
    assert payments_of(customer)[1].checkout_token == f"installment-{item.pk}-1"
