"""Payment plans: the quote's arithmetic (equal installments, the remainder on the last; weekly,
every two weeks, monthly at month ends), every policy limit refused next to its field, the
approval threshold, the consent text kept as read (and a changed one refused), one plan per
form and per customer; staff changing and cancelling a plan; and the plan's health."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail
from django_scopes import scope, scopes_disabled

from factories import Users, issue_invoice, record_payment
from openar.billing.models import Invoice
from openar.commitments import schedule
from openar.commitments.models import CommitmentPolicy, Installment, Plan, Promise
from openar.commitments.services import (
    Quote,
    plan_approve,
    plan_cancel,
    plan_change,
    plan_create,
    plan_health,
    plan_progress,
    plan_quote,
    plan_terms,
    promise_create,
)
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.customers.models import Contact, Customer, Task
from openar.payments.models import SavedMethod
from openar.reminders.context import remindable_invoices

from .conftest import Capture, at, day, messages_to, save_card, tasks_of

D = Decimal


def quote(customer: Customer, invoices: list[Invoice] | None = None, **change: Any) -> Quote:
    fields: dict[str, Any] = {
        "customer": customer,
        "invoices": invoices or [],
        "down_payment": D("0"),
        "frequency": "monthly",
        "installment_count": 3,
        "first_date": day(1),
    }
    fields.update(change)
    with scope(organization=customer.organization):
        return plan_quote(**fields)


def make_plan(
    customer: Customer,
    invoices: list[Invoice] | None = None,
    *,
    contact: Contact | None = None,
    method: SavedMethod | None = None,
    token: str = "",
    agreed: str | None = None,
    **change: Any,
) -> Plan:
    """What the portal does: quote, show the terms, create with the text it showed
    (``agreed``: the text a form sends back, without quoting again)."""
    fields: dict[str, Any] = {
        "invoices": invoices or [],
        "down_payment": D("0"),
        "frequency": "monthly",
        "installment_count": 3,
        "first_date": day(1),
    }
    fields.update(change)
    with scope(organization=customer.organization):
        if agreed is None:
            shown = plan_quote(customer=customer, **fields)
            agreed = plan_terms(customer, shown, method.label if method else None)
        return plan_create(
            customer=customer,
            **fields,
            agreed_text=agreed,
            contact=contact,
            actor=None,
            ip="203.0.113.9",
            saved_method=method,
            form_token=token,
            source="portal",
        )


def fresh(plan: Plan) -> Plan:
    with scopes_disabled():
        return Plan.objects.get(pk=plan.pk)


def installments(plan: Plan) -> list[tuple[int, datetime.date, Decimal, str]]:
    with scopes_disabled():
        return [
            (i.number, i.due_date, i.amount, i.state)
            for i in Installment.objects.filter(plan_id=plan.pk).order_by("number")
        ]


def remindable(customer: Customer, moment: datetime.datetime) -> list[str]:
    with scope(organization=customer.organization):
        return sorted(remindable_invoices(moment).filter(customer=customer).values_list("number", flat=True))


# --- the arithmetic -----------------------------------------------------------------------------------


def test_months_keep_their_day_or_end_on_the_last_one() -> None:
    first = datetime.date(2024, 1, 31)
    assert [schedule.nth_date(first, "monthly", n) for n in range(5)] == [
        datetime.date(2024, 1, 31),
        datetime.date(2024, 2, 29),
        datetime.date(2024, 3, 31),
        datetime.date(2024, 4, 30),
        datetime.date(2024, 5, 31),
    ]
    assert schedule.add_months(datetime.date(2025, 11, 30), 3) == datetime.date(2026, 2, 28)
    assert schedule.nth_date(first, "weekly", 2) == datetime.date(2024, 2, 14)
    assert schedule.nth_date(first, "biweekly", 2) == datetime.date(2024, 2, 28)


@pytest.mark.parametrize(
    ("amount", "count", "currency", "parts"),
    [
        ("100.00", 3, "USD", ["33.33", "33.33", "33.34"]),
        ("200.00", 6, "USD", ["33.33", "33.33", "33.33", "33.33", "33.33", "33.35"]),
        ("100", 3, "JPY", ["33", "33", "34"]),
        ("10.000", 3, "KWD", ["3.333", "3.333", "3.334"]),
        ("90.00", 3, "USD", ["30.00", "30.00", "30.00"]),
    ],
)
def test_installments_are_equal_with_the_remainder_on_the_last(
    amount: str, count: int, currency: str, parts: list[str]
) -> None:
    split = schedule.split(D(amount), count, currency)
    assert split == [D(p) for p in parts]
    assert sum(split, D(0)) == D(amount)


def test_a_monthly_quote_from_a_months_end(
    customer: Customer, account: dict[str, Invoice], clock: time_machine.Traveller
) -> None:
    clock.move_to(at(1))
    found = quote(customer, [account["late"]], installment_count=4, first_date=datetime.date(2025, 7, 31))
    assert found.total == D("200.00") and found.down_payment == 0
    assert list(found.installments) == [
        (1, datetime.date(2025, 7, 31), D("50.00")),
        (2, datetime.date(2025, 8, 31), D("50.00")),
        (3, datetime.date(2025, 9, 30), D("50.00")),
        (4, datetime.date(2025, 10, 31), D("50.00")),
    ]
    assert not found.needs_approval


def test_a_weekly_quote_with_a_down_payment(customer: Customer, account: dict[str, Invoice]) -> None:
    found = quote(
        customer, down_payment=D("60.00"), frequency="weekly", installment_count=4, first_date=day(2)
    )
    assert found.total == D("300.00")  # the past-due invoices, when none is chosen
    assert found.invoice_numbers == ("INV-1", "INV-2")
    assert [(n, d.isoformat(), str(a)) for n, d, a in found.installments] == [
        (0, "2025-07-02", "60.00"),
        (1, "2025-07-09", "60.00"),
        (2, "2025-07-16", "60.00"),
        (3, "2025-07-23", "60.00"),
        (4, "2025-07-30", "60.00"),
    ]
    assert "- 2 July 2025: $60.00 (down payment)" in found.terms
    assert "- 30 July 2025: $60.00 (installment 4 of 4)" in found.terms


def test_a_biweekly_quote_with_a_remainder(customer: Customer, account: dict[str, Invoice]) -> None:
    found = quote(customer, [account["old"]], frequency="biweekly", installment_count=3, first_date=day(1))
    assert list(found.installments) == [
        (1, datetime.date(2025, 7, 1), D("33.33")),
        (2, datetime.date(2025, 7, 15), D("33.33")),
        (3, datetime.date(2025, 7, 29), D("33.34")),
    ]


def test_payments_in_flight_are_left_out_of_the_total(
    customer: Customer, account: dict[str, Invoice]
) -> None:
    from openar.payments import online

    with scope(organization=customer.organization):
        online.payment_create(
            customer=customer,
            lines=[online.PayLine(account["old"], D("40.00"))],
            method="card",
            provider_name="sandbox",
            checkout_token="pay-1",
        )
    assert quote(customer).total == D("260.00")


# --- the policy ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy_change", "change", "field", "message"),
    [
        (
            {},
            {"frequency": "daily"},
            "frequency",
            "Choose how often to pay: weekly or every two weeks or monthly.",
        ),
        (
            {"plan_frequencies": ["monthly"]},
            {"frequency": "weekly"},
            "frequency",
            "Choose how often to pay: monthly.",
        ),
        ({}, {"installment_count": 0}, "installment_count", "Choose how many installments."),
        ({}, {"installment_count": 7}, "installment_count", "Choose at most 6 installments."),
        ({}, {"first_date": day(-1)}, "first_date", "Choose a first payment date from today on."),
        (
            {},
            {"first_date": day(31)},
            "first_date",
            "Choose a first payment date no later than 30 July 2025.",
        ),
        ({}, {"down_payment": D("-1.00")}, "down_payment", "The down payment cannot be negative."),
        ({}, {"down_payment": D("10.001")}, "down_payment", "Enter at most 2 decimals for USD."),
        (
            {},
            {"down_payment": D("300.00")},
            "down_payment",
            "The down payment must be less than the $300.00 the plan is for: to pay it all, pay in full.",
        ),
        (
            {"plan_min_down_percent": D("10")},
            {"down_payment": D("29.99")},
            "down_payment",
            "The down payment must be at least $30.00 (10% of $300.00).",
        ),
        (
            {"plan_min_installment": D("60.00")},
            {"installment_count": 6},
            "installment_count",
            "Each installment would be $50.00, less than the $60.00 minimum: choose fewer installments.",
        ),
        (
            {"plan_max_days": 60},
            {"installment_count": 6},
            "installment_count",
            "The plan would end on 1 December 2025, more than 60 days after its first payment: "
            "choose fewer installments or pay more often.",
        ),
    ],
)
def test_a_plan_outside_the_policy_is_refused_next_to_its_field(
    customer: Customer,
    account: dict[str, Invoice],
    policy: Callable[..., CommitmentPolicy],
    policy_change: dict[str, Any],
    change: dict[str, Any],
    field: str,
    message: str,
) -> None:
    policy(**policy_change)
    with pytest.raises(ServiceError) as refused:
        quote(customer, **change)
    assert (refused.value.field, refused.value.message) == (field, message)
    with pytest.raises(ServiceError) as also:
        make_plan(customer, agreed="whatever", token="form-1", **change)
    assert also.value.field == field
    with scopes_disabled():
        assert not Plan.objects.exists()
        assert not AuditEvent.objects.filter(action="openar.plan.created").exists()
    assert messages_to(customer) == []


def test_the_minimum_down_payment_is_accepted_and_the_limits_themselves_are_allowed(
    customer: Customer, account: dict[str, Invoice], policy: Callable[..., CommitmentPolicy]
) -> None:
    policy(plan_min_down_percent=D("10"), plan_min_installment=D("45.00"), plan_max_days=184)
    found = quote(customer, down_payment=D("30.00"), installment_count=6, first_date=day(30))
    assert found.installment_amount == D("45.00") and found.last_date == datetime.date(2026, 1, 30)
    assert (found.last_date - found.first_date).days == 184


def test_invoices_must_be_past_due_or_chosen(
    customer: Customer, customer_2: Customer, account: dict[str, Invoice]
) -> None:
    theirs = issue_invoice(customer_2, "INV-9", "80.00", due_date=day(-3))
    with pytest.raises(ServiceError) as refused:
        quote(customer, [theirs])
    assert (refused.value.field, refused.value.message) == (
        "invoices",
        "One of the invoices chosen is not on this account.",
    )
    nothing_due = quote(customer_2, [theirs], installment_count=1)
    assert nothing_due.total == D("80.00")
    fresh_customer = customer_2
    record_payment(fresh_customer, "80.00", allocations=[(theirs, "80.00")])
    issue_invoice(fresh_customer, "INV-10", "80.00", due_date=day(10))
    with pytest.raises(ServiceError) as none_past_due:
        quote(fresh_customer)
    assert none_past_due.value.field == "invoices"
    assert none_past_due.value.message == "Nothing on your account is past due: there is nothing to arrange."
    chosen = quote(customer, [account["later"]], installment_count=2)  # a future invoice, when chosen
    assert chosen.total == D("50.00")


# --- creating -----------------------------------------------------------------------------------------


def test_a_plan_keeps_the_consent_as_read_and_pauses_dunning(
    customer: Customer,
    contact: Contact,
    account: dict[str, Invoice],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with scope(organization=customer.organization):
        expected = plan_terms(customer, quote(customer), None)
    with django_capture_on_commit_callbacks(execute=True):
        plan = make_plan(customer, contact=contact, token="form-1")
    assert (plan.state, plan.total, plan.consent_text, plan.consent_ip) == (
        "active",
        D("300.00"),
        expected,
        "203.0.113.9",
    )
    assert plan.consent_contact_id == contact.pk and plan.consent_at == at(0)
    assert expected.startswith(
        "I agree to pay Acme Supplies $300.00 for account C-1001 (Bolt Hardware), invoices INV-1, INV-2, "
        "in these payments:\n- 1 July 2025: $100.00 (installment 1 of 3)\n"
    )
    assert "I will make each payment by its date." in expected
    assert "within 5 days of its date, the plan ends" in expected
    assert installments(plan) == [
        (1, day(1), D("100.00"), "scheduled"),
        (2, datetime.date(2025, 8, 1), D("100.00"), "scheduled"),
        (3, datetime.date(2025, 9, 1), D("100.00"), "scheduled"),
    ]
    with scopes_disabled():
        event = AuditEvent.objects.get(action="openar.plan.created")
    assert event.data["consent_text"] == expected and event.ip == "203.0.113.9"
    (email,) = mail.outbox
    assert email.subject == "Your payment plan for account C-1001" and expected in email.body
    assert remindable(customer, at(0)) == ["INV-3"]  # only the invoice outside the plan
    with scope(organization=customer.organization):
        assert plan_health(plan) == "on track"


def test_terms_sent_back_with_crlf_line_ends_are_the_same_terms(
    customer: Customer, account: dict[str, Invoice]
) -> None:
    with scope(organization=customer.organization):
        shown = plan_terms(customer, quote(customer), None)
    plan = make_plan(customer, agreed=shown.replace("\n", "\r\n") + "\r\n")
    assert plan.consent_text == shown


def test_terms_that_changed_are_refused(customer: Customer, account: dict[str, Invoice]) -> None:
    with scope(organization=customer.organization):
        shown = plan_terms(customer, quote(customer), None)
    record_payment(customer, "30.00", allocations=[(account["late"], "30.00")])  # meanwhile
    for agreed in (shown, "I agree to nothing"):
        with pytest.raises(ServiceError) as refused:
            make_plan(customer, agreed=agreed)
        assert refused.value.field == "consent"
        assert refused.value.message == "The terms changed while you were reading them: read them again."
    with scopes_disabled():
        assert not Plan.objects.exists()


def test_a_saved_method_is_named_in_the_terms_and_must_be_the_customers(
    customer: Customer, customer_2: Customer, contact: Contact, account: dict[str, Invoice]
) -> None:
    theirs = save_card(customer_2, contact)
    with pytest.raises(ServiceError) as refused:
        make_plan(customer, method=theirs)
    assert refused.value.field == "saved_method"
    card = save_card(customer, contact)
    plan = make_plan(customer, method=card)
    assert "I authorize Acme Supplies to charge my Visa ending 4242 for each payment on its date." in (
        plan.consent_text
    )
    assert plan.saved_method_id == card.pk


def test_one_plan_per_form_and_one_open_plan_per_customer(
    customer: Customer, account: dict[str, Invoice], django_capture_on_commit_callbacks: Capture
) -> None:
    first = make_plan(customer, token="form-1")
    again = make_plan(customer, token="form-1", agreed=first.consent_text)  # the form sent twice
    with pytest.raises(ServiceError) as second:
        make_plan(customer, [account["later"]], token="form-2", installment_count=1)
    assert first.pk == again.pk
    assert (second.value.field, second.value.code) == ("invoices", "plan_exists")
    assert second.value.message == "Your account already has a payment plan: one plan at a time."
    with scopes_disabled():
        assert Plan.objects.count() == 1 and Installment.objects.count() == 3
        assert AuditEvent.objects.filter(action="openar.plan.created").count() == 1
    assert len(messages_to(customer)) == 1


def test_a_plan_above_the_threshold_waits_for_approval(
    customer: Customer,
    users: Users,
    account: dict[str, Invoice],
    clock: time_machine.Traveller,
    policy: Callable[..., CommitmentPolicy],
) -> None:
    policy(plan_approval_above=D("250.00"))
    assert quote(customer).needs_approval and not quote(customer, [account["late"]]).needs_approval
    plan = make_plan(customer)
    assert plan.state == "pending_approval"
    assert plan.consent_text.endswith("The plan starts once Acme Supplies approves it.")
    assert messages_to(customer) == ["Your payment plan for account C-1001 is waiting for approval"]
    (task,) = tasks_of(customer)
    assert (task.kind, task.assigned_to_id, task.source_id) == (
        Task.Kind.PLAN_APPROVAL,
        users.collector.pk,
        str(plan.pk),
    )
    assert remindable(customer, at(0)) == ["INV-3"]  # pending plans pause dunning too
    with scope(organization=customer.organization):
        assert plan_health(plan) == "pending approval"

    clock.move_to(at(3))  # approved after its first date: dated again from today
    with scope(organization=customer.organization):
        approved = plan_approve(plan=plan, actor=users.manager)
        with pytest.raises(ServiceError):
            plan_approve(plan=plan, actor=users.manager)
    assert (approved.state, approved.approved_by_id, approved.first_date) == (
        "active",
        users.manager.pk,
        day(3),
    )
    assert [row[1] for row in installments(plan)] == [
        day(3),
        datetime.date(2025, 8, 3),
        datetime.date(2025, 9, 3),
    ]
    assert tasks_of(customer)[0].done_at == at(3)
    assert messages_to(customer)[-1] == "Your payment plan of $300.00 is approved"


def test_a_plan_replaces_open_promises_on_its_invoices_and_refuses_new_ones(
    customer: Customer, account: dict[str, Invoice]
) -> None:
    with scope(organization=customer.organization):
        on_plan = promise_create(
            customer=customer,
            amount=D("100.00"),
            promised_date=day(5),
            invoices=[account["old"]],
            note="",
            contact=None,
            actor=None,
            source="desk",
        )
        elsewhere = promise_create(
            customer=customer,
            amount=D("50.00"),
            promised_date=day(5),
            invoices=[account["later"]],
            note="",
            contact=None,
            actor=None,
            source="desk",
        )
    plan = make_plan(customer)
    with scopes_disabled():
        assert Promise.objects.get(pk=on_plan.pk).state == "cancelled"
        assert Promise.objects.get(pk=on_plan.pk).end_reason == f"Replaced by payment plan {plan.pk}"
        assert Promise.objects.get(pk=elsewhere.pk).state == "open"
    with scope(organization=customer.organization), pytest.raises(ServiceError) as refused:
        promise_create(
            customer=customer,
            amount=D("10.00"),
            promised_date=day(5),
            invoices=[account["late"]],
            note="",
            contact=None,
            actor=None,
            source="portal",
        )
    assert (refused.value.field, refused.value.code) == ("invoices", "in_plan")


# --- staff: change, cancel ------------------------------------------------------------------------------


def test_staff_change_what_remains_unpaid(
    customer: Customer, users: Users, account: dict[str, Invoice], clock: time_machine.Traveller
) -> None:
    plan = make_plan(customer)
    clock.move_to(at(1))
    record_payment(customer, "120.00", allocations=[(account["old"], "100.00"), (account["late"], "20.00")])
    with scope(organization=customer.organization):
        assert plan_progress(plan) == D("120.00")
        with pytest.raises(ServiceError) as refused:
            plan_change(
                plan=plan, actor=users.collector, frequency="weekly", installment_count=9, first_date=day(7)
            )
        assert refused.value.field == "installment_count"
        changed = plan_change(
            plan=plan, actor=users.collector, frequency="weekly", installment_count=4, first_date=day(7)
        )
    assert (changed.frequency, changed.installment_count, changed.total) == ("weekly", 5, D("300.00"))
    assert installments(plan) == [
        (1, day(1), D("100.00"), "paid"),
        (2, day(7), D("50.00"), "scheduled"),  # the $20.00 paid toward it counts
        (3, day(14), D("50.00"), "scheduled"),
        (4, day(21), D("50.00"), "scheduled"),
        (5, day(28), D("50.00"), "scheduled"),
    ]
    with scopes_disabled():
        event = AuditEvent.objects.get(action="openar.plan.changed")
    assert event.actor_id == users.collector.pk
    assert "installment 3" in event.data["before"] and "installment 5" in event.data["after"]
    assert messages_to(customer)[-1] == "Your payment plan for account C-1001 has changed"


def test_cancelling_a_plan_resumes_dunning(
    customer: Customer, users: Users, account: dict[str, Invoice], policy: Callable[..., CommitmentPolicy]
) -> None:
    policy(plan_approval_above=D("100.00"))
    plan = make_plan(customer)
    with scope(organization=customer.organization):
        with pytest.raises(ServiceError) as refused:
            plan_cancel(plan=plan, actor=users.collector, reason="")
        assert refused.value.field == "reason"
        cancelled = plan_cancel(plan=plan, actor=users.collector, reason="Customer will refinance")
        assert plan_health(cancelled) == "cancelled"
        with pytest.raises(ServiceError):
            plan_change(
                plan=plan, actor=users.collector, frequency="weekly", installment_count=2, first_date=day(7)
            )
    assert (cancelled.state, cancelled.end_reason, cancelled.ended_at) == (
        "cancelled",
        "Customer will refinance",
        at(0),
    )
    assert remindable(customer, at(0)) == ["INV-1", "INV-2", "INV-3"]
    assert tasks_of(customer)[0].done_at is not None  # nobody needs to approve it any more
    assert messages_to(customer)[-1] == "Your payment plan for account C-1001 is cancelled"
    again = make_plan(customer, token="new")  # a new plan is possible once it ended
    assert fresh(again).state == "pending_approval"
