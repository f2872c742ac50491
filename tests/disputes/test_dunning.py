"""Only the disputed amount pauses dunning, over time (the real reminder engine, the clock
moved with time-machine): a partly disputed invoice is reminded for its undisputed part; an
invoice disputed in full is not reminded at all, until the dispute is resolved (or
withdrawn), when reminders resume."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
import time_machine
from django_scopes import scope, scopes_disabled

from factories import TODAY, TORONTO, issue_invoice, make_contact, make_customer, make_member
from openar.billing.models import Invoice
from openar.billing.services import LineInput
from openar.customers.models import Customer
from openar.disputes.models import Dispute, DisputeLine
from openar.disputes.reasons import dispute_reasons
from openar.disputes.services import LineClaim, dispute_open, dispute_resolve, dispute_withdraw
from openar.notifications.models import Message
from openar.notifications.services import dispatch_due
from openar.reminders.context import remindable_invoices, reminder_context
from openar.reminders.engine import run_all
from openar.tenants.models import Creditor, Organization, Role

pytestmark = pytest.mark.django_db


def at(day: int, hour: int = 10) -> datetime.datetime:
    moment = datetime.datetime.combine(
        TODAY + datetime.timedelta(days=day), datetime.time(hour), tzinfo=TORONTO
    )
    return moment.astimezone(datetime.UTC)


def tick(moment: datetime.datetime) -> None:
    """What the worker does at ``moment``: plan reminders, then send what is due."""
    with time_machine.travel(moment, tick=False):
        run_all(moment)
        dispatch_due(moment)


def days(first: int, last: int) -> None:
    """The worker's morning and evening runs from day ``first`` to ``last``."""
    for day in range(first, last + 1):
        tick(at(day, 10))
        tick(at(day, 19))


def reminders(customer: Customer) -> list[tuple[str, int, str]]:
    """(template key, day after TODAY it left, body) of each reminder the customer was sent."""
    with scopes_disabled():
        rows = Message.objects.filter(customer=customer, dunning_step__isnull=False, sent_at__isnull=False)
        return [
            (
                m.dunning_step.template_key,  # type: ignore[union-attr]
                (m.sent_at.astimezone(TORONTO).date() - TODAY).days,  # type: ignore[union-attr]
                m.body_text,
            )
            for m in rows.select_related("dunning_step").order_by("sent_at", "pk")
        ]


@dataclass
class Book:
    organization: Organization
    partly: Customer
    fully: Customer
    partly_invoice: Invoice
    fully_invoice: Invoice
    partly_dispute: Dispute
    fully_dispute: Dispute


def two_lines(customer: Customer, number: str) -> Invoice:
    """400.00 due TODAY: racking 300.00 and assembly 100.00."""
    return issue_invoice(
        customer,
        number,
        "0",
        due_date=TODAY,
        lines=[
            LineInput("Racking", Decimal(2), Decimal("150.00")),
            LineInput("Assembly", Decimal(1), Decimal("100.00")),
        ],
    )


def dispute(invoice: Invoice, amounts: list[str]) -> Dispute:
    organization = invoice.customer.organization
    with scope(organization=organization):
        reason = dispute_reasons(organization).get(code="price")
        lines = list(invoice.lines.order_by("position"))
        return dispute_open(
            invoice=invoice,
            lines=[
                LineClaim(line.pk, reason.pk, Decimal(a)) for line, a in zip(lines, amounts, strict=False)
            ],
            contact=None,
            actor=None,
        )


@pytest.fixture
def book(supplier: Organization, creditor: Creditor) -> Iterator[Book]:
    with time_machine.travel(at(0, 9), tick=False):
        partly = make_customer(creditor, "C-1", name="Bolt Hardware", email="ap@bolt.example")
        fully = make_customer(creditor, "C-2", name="Anvil Works", email="ap@anvil.example")
        make_contact(partly, "Dana", "dana@bolt.example")
        make_contact(fully, "Ann", "ann@anvil.example")
        partly_invoice = two_lines(partly, "INV-P")
        fully_invoice = two_lines(fully, "INV-F")
        partly_dispute = dispute(partly_invoice, ["120.00"])
        fully_dispute = dispute(fully_invoice, ["300.00", "100.00"])
    yield Book(supplier, partly, fully, partly_invoice, fully_invoice, partly_dispute, fully_dispute)


def test_the_undisputed_part_is_reminded_and_a_fully_disputed_invoice_is_not(book: Book) -> None:
    moment = at(0, 10)
    with scope(organization=book.organization):
        remindable = {i.number: i.disputed_amount for i in remindable_invoices(moment)}
        assert remindable == {"INV-P": Decimal("120.00")}
        context = reminder_context(book.partly, None, TODAY, "en", 3, "", "", False, moment=moment)
        assert context["total_open"] == "$280.00"
        assert context["invoices"][0]["open_amount"] == "$280.00"
    days(0, 3)
    sent = reminders(book.partly)
    assert [(key, day) for key, day, _ in sent] == [("reminder-upcoming", 0), ("reminder-friendly", 3)]
    for _, _, body in sent:
        assert "INV-P: $280.00" in body
        assert "$400.00" not in body
    assert reminders(book.fully) == []  # disputed in full: nothing to remind


def test_reminders_resume_after_resolution_and_withdrawal(book: Book) -> None:
    days(0, 0)
    assert reminders(book.fully) == []
    # Day 1: the full dispute is rejected, the partial one withdrawn.
    with time_machine.travel(at(1, 9), tick=False), scope(organization=book.organization):
        line_ids = list(DisputeLine.objects.filter(dispute=book.fully_dispute).values_list("pk", flat=True))
        collector = make_member(book.organization, Role.COLLECTOR, "collector@acme.example")
        dispute_resolve(
            dispute=book.fully_dispute,
            accepted={pk: Decimal(0) for pk in line_ids},
            rejection_reason="Prices as quoted.",
            actor=collector,
        )
        dispute_withdraw(dispute=book.partly_dispute, actor=None)
    days(1, 4)
    fully = reminders(book.fully)
    # Resumed on day 1; the friendly step (+3) then waits for the organization's minimum
    # of days between reminders.
    assert [(key, day) for key, day, _ in fully] == [("reminder-upcoming", 1), ("reminder-friendly", 4)]
    assert all("INV-F: $400.00" in body for _, _, body in fully)
    partly = reminders(book.partly)
    assert [(key, day) for key, day, _ in partly] == [("reminder-upcoming", 0), ("reminder-friendly", 3)]
    assert "INV-P: $280.00" in partly[0][2]
    assert "INV-P: $400.00" in partly[1][2]  # withdrawn: the whole invoice is reminded again
