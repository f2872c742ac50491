"""credit_note_issue: reduces the open amount through an allocation, never beyond it, with a
number of its own, and closes the invoice at zero."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django_scopes import scope

from factories import (
    TODAY,
    dec,
    fresh,
    issue_credit_note,
    issue_invoice,
    record_payment,
    row_counts,
)
from openar.billing.models import CreditNote
from openar.billing.services import credit_note_issue
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Customer
from openar.payments.models import Allocation


def test_a_credit_note_reduces_the_open_amount(customer: Customer) -> None:
    invoice = issue_invoice(customer, "INV-1", "100.00")

    note = issue_credit_note(invoice, "CN-1", "30.00", reason="Two crates damaged")

    stored = fresh(invoice)
    assert (stored.total, stored.open_amount, stored.closed_at) == (
        dec("100.00"),
        dec("70.00"),
        None,
    )
    # the caller's instance is brought up to date too
    assert invoice.open_amount == dec("70.00")
    with scope(organization=customer.organization):
        note_row = CreditNote.objects.get()
        allocations = list(
            Allocation.objects.values_list("invoice_id", "credit_note_id", "payment_id", "amount")
        )
    assert note_row.pk == note.pk
    assert (note_row.number, note_row.amount, note_row.currency, note_row.reason) == (
        "CN-1",
        dec("30.00"),
        "USD",
        "Two crates damaged",
    )
    assert (note_row.customer_id, note_row.creditor_id, note_row.issue_date) == (
        customer.pk,
        customer.creditor_id,
        TODAY,
    )
    assert allocations == [(invoice.pk, note.pk, None, dec("30.00"))]


def test_credit_notes_write_an_audit_event_and_a_timeline_entry(customer: Customer) -> None:
    invoice = issue_invoice(customer, "INV-1", "100.00")
    note = issue_credit_note(invoice, "CN-1", "12.50", reason="Late delivery")

    with scope(organization=customer.organization):
        events = list(
            AuditEvent.objects.order_by("pk").values_list("action", "object_type", "object_id", "data")
        )
        activities = list(
            Activity.objects.order_by("pk").values_list("kind", "summary", "body", "invoice_id")
        )
    assert events == [
        (
            "openar.invoice.issued",
            "billing.invoice",
            str(invoice.pk),
            {"number": "INV-1", "total": "100.00", "currency": "USD"},
        ),
        (
            "openar.credit_note.issued",
            "billing.creditnote",
            str(note.pk),
            {"invoice": "INV-1", "amount": "12.50"},
        ),
    ]
    assert activities[1] == (
        Activity.Kind.CREDIT,
        "Credit note CN-1 of $12.50 applied to invoice INV-1",
        "Late delivery",
        invoice.pk,
    )


def test_a_credit_note_cannot_exceed_the_open_amount(customer: Customer) -> None:
    invoice = issue_invoice(customer, "INV-1", "100.00")
    record_payment(customer, "40.00")
    before = row_counts()

    with pytest.raises(ServiceError) as refused:
        issue_credit_note(invoice, "CN-1", "60.01")

    assert refused.value.field == "amount"
    assert refused.value.message == "Invoice INV-1 has $60.00 open; a credit note cannot exceed it."
    assert row_counts() == before
    assert fresh(invoice).open_amount == dec("60.00")


def test_a_credit_note_number_cannot_be_used_twice(customer: Customer) -> None:
    first = issue_invoice(customer, "INV-1", "100.00")
    second = issue_invoice(customer, "INV-2", "100.00")
    issue_credit_note(first, "CN-1", "10.00")
    before = row_counts()

    with pytest.raises(ServiceError) as refused:
        issue_credit_note(second, "CN-1", "20.00")

    assert (refused.value.message, refused.value.field) == (
        "Credit note number CN-1 is already used.",
        "number",
    )
    assert row_counts() == before
    assert fresh(second).open_amount == dec("100.00")


def test_a_credit_note_number_is_reusable_in_another_organization(
    customer: Customer, other_customer: Customer
) -> None:
    issue_credit_note(issue_invoice(customer, "INV-1", "100.00"), "CN-1", "10.00")
    other_invoice = issue_invoice(other_customer, "INV-1", "100.00")

    issue_credit_note(other_invoice, "CN-1", "25.00")

    assert fresh(other_invoice).open_amount == dec("75.00")


def test_the_invoice_closes_when_credited_to_zero(customer: Customer) -> None:
    invoice = issue_invoice(customer, "INV-1", "100.00")
    record_payment(customer, "40.00")
    issue_credit_note(invoice, "CN-1", "25.00")
    assert fresh(invoice).closed_at is None

    issue_credit_note(invoice, "CN-2", "35.00")

    stored = fresh(invoice)
    assert stored.open_amount == Decimal(0)
    assert stored.closed_at is not None
    assert stored.status_on(TODAY) == "paid"

    with pytest.raises(ServiceError) as refused:
        issue_credit_note(invoice, "CN-3", "0.01")
    assert refused.value.message == "Invoice INV-1 has $0.00 open; a credit note cannot exceed it."


@pytest.mark.parametrize(
    ("amount", "reason", "field"),
    [
        ("0", "Goodwill", "amount"),
        ("-5.00", "Goodwill", "amount"),
        ("0.004", "Goodwill", "amount"),
        ("5.00", "   ", "reason"),
    ],
)
def test_credit_notes_need_an_amount_and_a_reason(
    customer: Customer, amount: str, reason: str, field: str
) -> None:
    invoice = issue_invoice(customer, "INV-1", "100.00")
    before = row_counts()

    with scope(organization=customer.organization), pytest.raises(ServiceError) as refused:
        credit_note_issue(invoice=invoice, number="CN-1", amount=Decimal(amount), reason=reason)

    assert refused.value.field == field
    assert row_counts() == before
