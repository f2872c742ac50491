"""invoice_list: status filters, search by invoice or PO number, sorting and its fallbacks."""

from __future__ import annotations

import datetime

import pytest
from django_scopes import scope

from factories import TODAY, days_ago, issue_invoice, record_payment
from openar.billing.models import Invoice
from openar.billing.selectors import invoice_list
from openar.customers.models import Customer


@pytest.fixture
def invoices(customer: Customer, customer_2: Customer) -> dict[str, Invoice]:
    """Four invoices of the customer (one past due, one partly paid, one paid, one open) and
    one of another customer that must never show up."""

    def issue(number: str, amount: str, issued: int, due: int, po: str = "") -> Invoice:
        return issue_invoice(
            customer,
            number,
            amount,
            issue_date=days_ago(issued),
            due_date=days_ago(due),
            po_number=po,
        )

    made = {
        "late": issue("INV-100", "100.00", issued=40, due=10, po="PO-778"),
        "paid": issue("INV-101", "30.00", issued=35, due=5),
        "partial": issue("INV-102", "200.00", issued=20, due=-20),
        "open": issue("INV-103", "50.00", issued=5, due=-5, po="po-900"),
    }
    record_payment(customer, "30.00", allocations=[(made["paid"], "30.00")])
    record_payment(customer, "75.00", allocations=[(made["partial"], "75.00")])
    issue_invoice(customer_2, "INV-999", "10.00", po_number="PO-778")
    return made


def _numbers(customer: Customer, **kwargs: str) -> list[str]:
    with scope(organization=customer.organization):
        return [invoice.number for invoice in invoice_list(customer, today=TODAY, **kwargs)]


def test_open_is_the_default_and_sorts_by_due_date(customer: Customer, invoices: dict[str, Invoice]) -> None:
    assert _numbers(customer) == ["INV-100", "INV-103", "INV-102"]
    assert _numbers(customer, status="open") == ["INV-100", "INV-103", "INV-102"]


def test_status_filters(customer: Customer, invoices: dict[str, Invoice]) -> None:
    assert _numbers(customer, status="past_due") == ["INV-100"]
    assert _numbers(customer, status="paid") == ["INV-101"]
    # the default sort is by due date, whatever the status
    assert _numbers(customer, status="all") == ["INV-100", "INV-101", "INV-103", "INV-102"]


def test_past_due_starts_the_day_after_the_due_date(customer: Customer, invoices: dict[str, Invoice]) -> None:
    with scope(organization=customer.organization):
        due_day = [i.number for i in invoice_list(customer, today=days_ago(10), status="past_due")]
        day_after = [i.number for i in invoice_list(customer, today=days_ago(9), status="past_due")]
    assert due_day == []
    assert day_after == ["INV-100"]


@pytest.mark.parametrize(
    ("search", "status", "expected"),
    [
        ("INV-101", "all", ["INV-101"]),
        ("inv-10", "open", ["INV-100", "INV-103", "INV-102"]),
        ("778", "all", ["INV-100"]),  # by PO number; never the other customer's INV-999
        ("PO-9", "all", ["INV-103"]),  # case-insensitive
        ("  103 ", "all", ["INV-103"]),  # trimmed
        ("INV-101", "open", []),  # the search narrows the status, never widens it
        ("nothing-like-this", "all", []),
    ],
)
def test_search_by_invoice_or_po_number(
    customer: Customer, invoices: dict[str, Invoice], search: str, status: str, expected: list[str]
) -> None:
    assert _numbers(customer, search=search, status=status) == expected


def test_sorts(customer: Customer, invoices: dict[str, Invoice]) -> None:
    assert _numbers(customer, status="all", sort="amount") == [
        "INV-101",
        "INV-103",
        "INV-100",
        "INV-102",
    ]
    assert _numbers(customer, status="all", sort="-open") == [
        "INV-102",
        "INV-100",
        "INV-103",
        "INV-101",
    ]
    assert _numbers(customer, status="all", sort="-number") == [
        "INV-103",
        "INV-102",
        "INV-101",
        "INV-100",
    ]
    assert _numbers(customer, status="open", sort="-due") == ["INV-102", "INV-103", "INV-100"]


def test_unknown_sort_falls_back_to_the_default_for_the_status(
    customer: Customer, invoices: dict[str, Invoice]
) -> None:
    assert _numbers(customer, status="open", sort="; DROP TABLE") == [
        "INV-100",
        "INV-103",
        "INV-102",
    ]
    assert _numbers(customer, status="all", sort="bogus") == [
        "INV-103",
        "INV-102",
        "INV-101",
        "INV-100",
    ]
    assert _numbers(customer, status="paid", sort="") == ["INV-101"]


def test_unknown_status_falls_back_to_open(customer: Customer, invoices: dict[str, Invoice]) -> None:
    """The docstring: unknown status values fall back to the default, which is "open"."""
    assert _numbers(customer, status="bogus") == _numbers(customer, status="open")


def test_rows_carry_what_a_list_shows(customer: Customer, invoices: dict[str, Invoice]) -> None:
    with scope(organization=customer.organization):
        (row,) = invoice_list(customer, today=TODAY, search="INV-102")
    assert (row.number, row.po_number, row.currency, row.total, row.open_amount) == (
        "INV-102",
        "",
        "USD",
        200,
        125,
    )
    assert (row.issue_date, row.due_date) == (days_ago(20), TODAY + datetime.timedelta(days=20))
