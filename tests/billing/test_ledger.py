"""ledger_check recomputes every balance; a row changed behind the services' back is found.

The corrupting tests repair the row before they end, so the ledger check run after every
test still passes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django_scopes import scope, scopes_disabled

from factories import dec, fresh, issue_credit_note, issue_invoice, record_payment
from openar.billing.ledger import Mismatch, invoice_apply, ledger_check
from openar.billing.models import Invoice
from openar.core.errors import LedgerError
from openar.customers.models import Customer


def _invoice(organization_id: int, number: str) -> Invoice:
    with scopes_disabled():
        return Invoice.objects.get(organization_id=organization_id, number=number)


def _raw_update(sql: str, params: list[Decimal | int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def book(customer: Customer, other_customer: Customer) -> Invoice:
    """A small but complete book: payments, a credit note, unapplied cash, two tenants."""
    invoice = issue_invoice(customer, "INV-1", "100.00")
    issue_invoice(customer, "INV-2", "80.00")
    record_payment(customer, "30.00", allocations=[(invoice, "30.00")])
    issue_credit_note(invoice, "CN-1", "10.00")
    record_payment(customer, "100.00")  # oldest first: 60 closes INV-1, 40 goes to INV-2
    issue_invoice(other_customer, "INV-1", "55.00")
    record_payment(other_customer, "60.00")  # 5.00 stays unapplied
    return invoice


def test_a_consistent_book_has_no_mismatch(book: Invoice) -> None:
    assert ledger_check() == []
    assert ledger_check(book.organization_id) == []


def test_a_corrupted_open_amount_is_found(book: Invoice) -> None:
    stored = fresh(book)
    assert stored.open_amount == Decimal(0)  # 100 - 30 - 10 - 60 (oldest first)
    second = _invoice(book.organization_id, "INV-2")
    _raw_update("UPDATE billing_invoice SET open_amount = %s WHERE id = %s", [dec("15.00"), second.pk])

    mismatches = ledger_check()

    assert mismatches == [
        Mismatch(
            kind="invoice",
            organization_id=book.organization_id,
            object_id=second.pk,
            number="INV-2",
            stored=dec("15.0000"),
            computed=dec("40.0000"),
            detail="open amount differs from total minus active allocations",
        )
    ]
    assert ledger_check(book.organization_id) == mismatches
    assert ledger_check(book.organization_id + 1000) == []
    assert str(mismatches[0]) == (
        f"invoice INV-2 (id {second.pk}, organization {book.organization_id}): open amount differs "
        "from total minus active allocations; stored 15.0000, computed 40.0000"
    )

    _raw_update("UPDATE billing_invoice SET open_amount = %s WHERE id = %s", [dec("40.00"), second.pk])
    assert ledger_check() == []


def test_a_corrupted_total_is_found(book: Invoice) -> None:
    second = _invoice(book.organization_id, "INV-2")
    _raw_update("UPDATE billing_invoice SET total = %s WHERE id = %s", [dec("95.00"), second.pk])

    mismatches = ledger_check()

    assert [(m.kind, m.object_id, m.detail, m.stored, m.computed) for m in mismatches] == [
        (
            "invoice",
            second.pk,
            "open amount differs from total minus active allocations",
            dec("40.0000"),
            dec("55.0000"),
        ),
        (
            "invoice",
            second.pk,
            "total differs from subtotal plus tax",
            dec("95.0000"),
            dec("80.0000"),
        ),
    ]

    _raw_update("UPDATE billing_invoice SET total = %s WHERE id = %s", [dec("80.00"), second.pk])
    assert ledger_check() == []


def test_a_closed_date_without_a_zero_balance_is_found(book: Invoice) -> None:
    _raw_update("UPDATE billing_invoice SET closed_at = NULL WHERE id = %s", [book.pk])

    assert [(m.number, m.detail) for m in ledger_check()] == [
        ("INV-1", "closed date does not match the open amount")
    ]

    _raw_update("UPDATE billing_invoice SET closed_at = created_at WHERE id = %s", [book.pk])
    assert ledger_check() == []


def test_invoice_apply_refuses_a_stale_figure(customer: Customer) -> None:
    invoice = issue_invoice(customer, "INV-1", "100.00")
    stale = fresh(invoice)
    record_payment(customer, "10.00")  # moves the row from 100 to 90 behind ``stale``

    with scope(organization=customer.organization):
        with pytest.raises(LedgerError, match="changed meanwhile"):
            invoice_apply(stale, dec("5.00"))
        with pytest.raises(LedgerError, match="more than that"):
            invoice_apply(stale, dec("100.01"))
        with pytest.raises(LedgerError, match="beyond its total"):
            invoice_apply(stale, dec("-0.01"))

    assert fresh(invoice).open_amount == dec("90.00")
