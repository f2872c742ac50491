"""invoice_issue: totals from lines, rounding per currency, numbering, dates, immutability,
and the audit event and timeline entry written with the invoice."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import ProtectedError
from django_scopes import scope, scopes_disabled

from factories import (
    TODAY,
    Users,
    dec,
    fresh,
    issue_credit_note,
    issue_invoice,
    make_customer,
    row_counts,
)
from openar.billing.models import CreditNote, Invoice, InvoiceLine
from openar.billing.services import LineInput, invoice_issue
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Customer
from openar.tenants.models import Creditor


def _lines(invoice: Invoice) -> list[tuple[int, Decimal, Decimal]]:
    with scopes_disabled():
        return [
            (line.position, line.net_amount, line.tax_amount)
            for line in InvoiceLine.objects.filter(invoice=invoice).order_by("position")
        ]


def _is_minor_unit(value: Decimal, places: int) -> bool:
    return value == value.quantize(Decimal(1).scaleb(-places))


# --- totals and rounding ----------------------------------------------------------------------


def test_usd_totals_are_summed_from_lines_rounded_half_up_to_cents(customer: Customer) -> None:
    invoice = issue_invoice(
        customer,
        "INV-USD",
        lines=[
            # 3 x 0.335 = 1.005 -> 1.01 (half-up; banker's rounding would give 1.00)
            # tax 7.5 % of 1.01 = 0.07575 -> 0.08
            LineInput("Washers", dec("3"), dec("0.335"), dec("0.075")),
            # 2.5 x 19.99 = 49.975 -> 49.98; tax 13 % of 49.98 = 6.4974 -> 6.50
            LineInput("Cable", dec("2.5"), dec("19.99"), dec("0.13")),
            # 0.125 -> 0.13, untaxed
            LineInput("Rounding", dec("1"), dec("0.125")),
        ],
    )

    stored = fresh(invoice)
    assert _lines(invoice) == [
        (1, dec("1.01"), dec("0.08")),
        (2, dec("49.98"), dec("6.50")),
        (3, dec("0.13"), dec("0")),
    ]
    assert (stored.subtotal, stored.tax_total, stored.total) == (
        dec("51.12"),
        dec("6.58"),
        dec("57.70"),
    )
    assert stored.open_amount == dec("57.70")
    assert stored.currency == "USD"
    assert stored.closed_at is None
    assert all(_is_minor_unit(v, 2) for v in (stored.subtotal, stored.tax_total, stored.total))


def test_jpy_invoice_has_no_decimals(customer: Customer) -> None:
    invoice = issue_invoice(
        customer,
        "INV-JPY",
        currency="JPY",
        lines=[
            # 3 x 333.5 = 1000.5 -> 1001 (half-up); tax 10 % of 1001 = 100.1 -> 100
            LineInput("Bolts", dec("3"), dec("333.5"), dec("0.10")),
            # 99.5 -> 100; tax 8 % of 100 = 8
            LineInput("Nuts", dec("1"), dec("99.5"), dec("0.08")),
        ],
    )

    stored = fresh(invoice)
    assert stored.currency == "JPY"
    assert _lines(invoice) == [(1, dec("1001"), dec("100")), (2, dec("100"), dec("8"))]
    assert (stored.subtotal, stored.tax_total, stored.total) == (
        dec("1101"),
        dec("108"),
        dec("1209"),
    )
    assert stored.open_amount == dec("1209")
    assert all(_is_minor_unit(v, 0) for v in (stored.subtotal, stored.tax_total, stored.total))


def test_kwd_invoice_has_three_decimals(customer: Customer) -> None:
    invoice = issue_invoice(
        customer,
        "INV-KWD",
        currency="KWD",
        lines=[
            # 1.2345 -> 1.235 (half-up); tax 5 % of 1.235 = 0.06175 -> 0.062
            LineInput("Service", dec("1"), dec("1.2345"), dec("0.05")),
            # 3 x 0.3335 = 1.0005 -> 1.001, untaxed
            LineInput("Parts", dec("3"), dec("0.3335")),
        ],
    )

    stored = fresh(invoice)
    assert _lines(invoice) == [(1, dec("1.235"), dec("0.062")), (2, dec("1.001"), dec("0"))]
    assert (stored.subtotal, stored.tax_total, stored.total) == (
        dec("2.236"),
        dec("0.062"),
        dec("2.298"),
    )
    assert stored.open_amount == dec("2.298")
    assert all(_is_minor_unit(v, 3) for v in (stored.subtotal, stored.tax_total, stored.total))


def test_invoice_takes_the_customers_currency_by_default(creditor: Creditor) -> None:
    yen_customer = make_customer(creditor, "C-JP", currency="JPY")
    invoice = issue_invoice(yen_customer, "INV-1", "1234.5")
    assert fresh(invoice).currency == "JPY"
    assert fresh(invoice).total == dec("1235")


# --- refusals ---------------------------------------------------------------------------------


def test_invoice_number_is_unique_within_an_organization(customer: Customer, customer_2: Customer) -> None:
    issue_invoice(customer, "INV-1", "100.00")
    before = row_counts()

    with pytest.raises(ServiceError) as refused:
        issue_invoice(customer_2, "INV-1", "55.00")

    assert refused.value.message == "Invoice number INV-1 is already used."
    assert refused.value.field == "number"
    assert row_counts() == before
    with scope(organization=customer.organization):
        assert list(Invoice.objects.values_list("number", "customer_id", "total")) == [
            ("INV-1", customer.pk, dec("100.00"))
        ]


def test_invoice_number_is_reusable_in_another_organization(
    customer: Customer, other_customer: Customer
) -> None:
    first = issue_invoice(customer, "INV-1", "100.00")
    second = issue_invoice(other_customer, "INV-1", "70.00")

    assert first.pk != second.pk
    with scopes_disabled():
        rows = sorted(Invoice.objects.filter(number="INV-1").values_list("organization_id", "total"))
    assert rows == sorted(
        [(customer.organization_id, dec("100.00")), (other_customer.organization_id, dec("70.00"))]
    )


def test_invoice_number_is_trimmed_and_required(customer: Customer) -> None:
    invoice = issue_invoice(customer, "  INV-7  ", "10.00")
    assert fresh(invoice).number == "INV-7"

    before = row_counts()
    with pytest.raises(ServiceError) as refused:
        issue_invoice(customer, "   ", "10.00")
    assert refused.value.field == "number"
    assert row_counts() == before


def test_due_date_before_issue_date_is_refused(customer: Customer) -> None:
    before = row_counts()

    with pytest.raises(ServiceError) as refused:
        issue_invoice(customer, "INV-1", issue_date=TODAY, due_date=TODAY - datetime.timedelta(days=1))

    assert refused.value.message == "The due date cannot be before the issue date."
    assert refused.value.field == "due_date"
    assert row_counts() == before


def test_due_date_on_the_issue_date_is_allowed(customer: Customer) -> None:
    invoice = issue_invoice(customer, "INV-1", issue_date=TODAY, due_date=TODAY)
    assert (fresh(invoice).issue_date, fresh(invoice).due_date) == (TODAY, TODAY)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (LineInput("Zero", dec("0"), dec("5")), "Line 1: the quantity must be more than zero."),
        (
            LineInput("Negative", dec("1"), dec("-5")),
            "Line 1: prices and tax rates cannot be negative.",
        ),
        (
            LineInput("Tax", dec("1"), dec("5"), dec("-0.1")),
            "Line 1: prices and tax rates cannot be negative.",
        ),
    ],
)
def test_bad_lines_are_refused(customer: Customer, line: LineInput, message: str) -> None:
    before = row_counts()
    with pytest.raises(ServiceError) as refused:
        issue_invoice(customer, "INV-1", lines=[line])
    assert (refused.value.message, refused.value.field) == (message, "lines")
    assert row_counts() == before


def test_an_invoice_needs_lines(customer: Customer) -> None:
    before = row_counts()
    with scope(organization=customer.organization), pytest.raises(ServiceError) as refused:
        invoice_issue(customer=customer, number="INV-1", issue_date=TODAY, due_date=TODAY, lines=[])
    assert refused.value.field == "lines"
    assert row_counts() == before


# --- issued documents are never deleted -------------------------------------------------------


def test_an_issued_invoice_cannot_be_deleted(customer: Customer) -> None:
    # Each attempt runs in its own savepoint, as a request's transaction would be its own.
    invoice = issue_invoice(customer, "INV-1", "100.00")

    with scope(organization=customer.organization):
        with pytest.raises(ProtectedError), transaction.atomic():
            invoice.delete()
        with pytest.raises(ProtectedError), transaction.atomic():
            Invoice.objects.filter(pk=invoice.pk).delete()
        with pytest.raises(ProtectedError), transaction.atomic():
            Invoice.objects.all().delete()
        with pytest.raises(ProtectedError), transaction.atomic():
            InvoiceLine.objects.filter(invoice=invoice).delete()
        assert Invoice.objects.filter(pk=invoice.pk).count() == 1
        assert InvoiceLine.objects.filter(invoice=invoice).count() == 1
    assert fresh(invoice).total == dec("100.00")


def test_an_issued_credit_note_cannot_be_deleted(customer: Customer) -> None:
    invoice = issue_invoice(customer, "INV-1", "100.00")
    note = issue_credit_note(invoice, "CN-1", "10.00")

    with scope(organization=customer.organization):
        with pytest.raises(ProtectedError), transaction.atomic():
            note.delete()
        with pytest.raises(ProtectedError), transaction.atomic():
            CreditNote.objects.filter(pk=note.pk).delete()
        assert CreditNote.objects.filter(pk=note.pk).count() == 1


# --- audit event and timeline, in the same transaction ----------------------------------------


def test_issuing_writes_one_audit_event_and_one_timeline_entry(customer: Customer, users: Users) -> None:
    invoice = issue_invoice(
        customer,
        "INV-1",
        "250.00",
        issue_date=datetime.date(2025, 6, 1),
        due_date=datetime.date(2025, 7, 1),
        actor=users.admin,
    )

    with scope(organization=customer.organization):
        events = list(AuditEvent.objects.all())
        activities = list(Activity.objects.all())
    assert [(e.action, e.object_type, e.object_id, e.actor_id) for e in events] == [
        ("openar.invoice.issued", "billing.invoice", str(invoice.pk), users.admin.pk)
    ]
    assert events[0].data == {"number": "INV-1", "total": "250.00", "currency": "USD"}
    assert events[0].organization_id == customer.organization_id
    assert [(a.kind, a.summary, a.invoice_id, a.actor_id, a.visibility) for a in activities] == [
        (
            Activity.Kind.INVOICE,
            "Invoice INV-1 issued for $250.00, due 2025-07-01",
            invoice.pk,
            users.admin.pk,
            Activity.Visibility.CUSTOMER,
        )
    ]


def test_a_failure_after_the_invoice_row_leaves_nothing_behind(
    customer: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The invoice, its lines, the timeline entry and the audit event are one transaction:
    when the audit write fails, none of them stays."""

    def broken_log_event(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr("openar.billing.services.log_event", broken_log_event)
    before = row_counts()

    with pytest.raises(RuntimeError, match="audit store unavailable"):
        issue_invoice(customer, "INV-1", "100.00")

    assert row_counts() == before


def test_invoice_status_on_a_day(customer: Customer) -> None:
    invoice = issue_invoice(customer, "INV-1", "100.00", due_date=TODAY)
    stored = fresh(invoice)
    assert stored.status_on(TODAY) == "open"
    assert stored.status_on(TODAY + datetime.timedelta(days=1)) == "past_due"
    assert stored.days_past_due(TODAY + datetime.timedelta(days=3)) == 3
    assert stored.is_paid is False
