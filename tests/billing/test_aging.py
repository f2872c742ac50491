"""Aging: customer_aging buckets at every boundary, per currency; customers_with_aging sums."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django_scopes import scope

from factories import (
    TODAY,
    days_ago,
    dec,
    fresh,
    issue_credit_note,
    issue_invoice,
    make_customer,
    record_payment,
)
from openar.billing.selectors import BUCKETS, book_aging, customer_aging, customers_with_aging
from openar.customers.models import Customer
from openar.tenants.models import Creditor

BUCKET_KEYS = [key for key, _ in BUCKETS]


def _buckets(**nonzero: str) -> dict[str, Decimal]:
    return {key: dec(nonzero.get(key, "0")) for key in BUCKET_KEYS}


@pytest.mark.parametrize(
    ("days_past_due", "bucket"),
    [
        (-5, "current"),  # due in five days
        (0, "current"),  # due today is not yet late
        (1, "d1_30"),
        (30, "d1_30"),
        (31, "d31_60"),
        (60, "d31_60"),
        (61, "d61_90"),
        (90, "d61_90"),
        (91, "d90_plus"),
        (400, "d90_plus"),
    ],
)
def test_each_boundary_falls_in_one_bucket(customer: Customer, days_past_due: int, bucket: str) -> None:
    issue_invoice(customer, "INV-1", "123.45", due_date=days_ago(days_past_due))

    with scope(organization=customer.organization):
        (aging,) = customer_aging(customer, TODAY)

    assert aging.currency == "USD"
    assert aging.buckets == _buckets(**{bucket: "123.45"})
    assert aging.balance == dec("123.45")
    late = days_past_due > 0
    assert aging.past_due == (dec("123.45") if late else Decimal(0))
    assert (aging.open_count, aging.past_due_count) == (1, 1 if late else 0)
    assert aging.next_due_date == (None if late else days_ago(days_past_due))
    assert aging.oldest_past_due_date == (days_ago(days_past_due) if late else None)


def test_customer_aging_sums_open_amounts_per_bucket(customer: Customer, customer_2: Customer) -> None:
    # Amounts are powers of two, so every sum shows exactly which invoices it holds.
    for days, amount in [
        (-5, "2"),
        (0, "1"),
        (1, "4"),
        (30, "8"),
        (31, "16"),
        (60, "32"),
        (61, "64"),
        (90, "128"),
    ]:
        issue_invoice(customer, f"INV-{days}", amount, due_date=days_ago(days))
    credited = issue_invoice(customer, "INV-91", "300", due_date=days_ago(91))
    issue_credit_note(credited, "CN-1", "44")  # 256 left open: aging counts what is open
    paid = issue_invoice(customer, "INV-PAID", "1000", due_date=days_ago(45))
    record_payment(customer, "1000", allocations=[(paid, "1000")])  # paid: not aged at all
    issue_invoice(customer_2, "INV-OTHER", "5000", due_date=days_ago(10))  # another customer

    with scope(organization=customer.organization):
        (aging,) = customer_aging(customer, TODAY)

    assert aging.buckets == _buckets(current="3", d1_30="12", d31_60="48", d61_90="192", d90_plus="256")
    assert aging.balance == dec("511")
    assert aging.past_due == dec("508")
    assert (aging.open_count, aging.past_due_count) == (9, 7)
    assert aging.next_due_date == TODAY
    assert aging.oldest_past_due_date == days_ago(91)
    assert [(key, amount) for key, _, amount in aging.bucket_rows] == list(aging.buckets.items())


def test_a_customer_with_nothing_open_has_one_zero_row_in_its_currency(customer: Customer) -> None:
    with scope(organization=customer.organization):
        (aging,) = customer_aging(customer, TODAY)
    assert (aging.currency, aging.balance, aging.past_due, aging.open_count) == ("USD", 0, 0, 0)
    assert aging.buckets == _buckets()


def test_multi_currency_customer_is_aged_per_currency(customer: Customer) -> None:
    issue_invoice(customer, "USD-1", "100.00", due_date=days_ago(10))
    issue_invoice(customer, "USD-2", "50.00", due_date=days_ago(-10))
    issue_invoice(customer, "EUR-1", "80.00", currency="EUR", due_date=days_ago(45))
    issue_invoice(customer, "EUR-2", "20.00", currency="EUR", due_date=days_ago(100))
    issue_invoice(customer, "JPY-1", "5000", currency="JPY", due_date=days_ago(0))

    with scope(organization=customer.organization):
        rows = customer_aging(customer, TODAY)

    # the customer's own currency first, then the others alphabetically; never summed across
    assert [row.currency for row in rows] == ["USD", "EUR", "JPY"]
    usd, eur, jpy = rows
    assert (usd.balance, usd.past_due, usd.buckets) == (
        dec("150.00"),
        dec("100.00"),
        _buckets(current="50.00", d1_30="100.00"),
    )
    assert (eur.balance, eur.past_due, eur.buckets) == (
        dec("100.00"),
        dec("100.00"),
        _buckets(d31_60="80.00", d90_plus="20.00"),
    )
    assert (jpy.balance, jpy.past_due, jpy.buckets) == (
        dec("5000"),
        Decimal(0),
        _buckets(current="5000"),
    )


def test_a_customer_owing_only_in_another_currency_still_shows_its_own(customer: Customer) -> None:
    issue_invoice(customer, "EUR-1", "80.00", currency="EUR", due_date=days_ago(5))

    with scope(organization=customer.organization):
        rows = customer_aging(customer, TODAY)

    assert [(row.currency, row.balance) for row in rows] == [
        ("USD", Decimal(0)),
        ("EUR", dec("80.00")),
    ]


def test_a_eur_payment_never_touches_usd_invoices(customer: Customer) -> None:
    usd_old = issue_invoice(customer, "USD-1", "100.00", due_date=days_ago(60))
    eur_new = issue_invoice(customer, "EUR-1", "80.00", currency="EUR", due_date=days_ago(5))
    eur_newer = issue_invoice(customer, "EUR-2", "30.00", currency="EUR", due_date=days_ago(1))

    payment = record_payment(customer, "90.00", currency="EUR")

    assert payment.currency == "EUR"
    assert fresh(usd_old).open_amount == dec("100.00")
    assert fresh(eur_new).open_amount == Decimal(0)
    assert fresh(eur_newer).open_amount == dec("20.00")
    with scope(organization=customer.organization):
        usd, eur = customer_aging(customer, TODAY)
    assert (usd.currency, usd.balance) == ("USD", dec("100.00"))
    assert (eur.currency, eur.balance) == ("EUR", dec("20.00"))


def test_customers_with_aging_sums_each_customer(
    creditor: Creditor, customer: Customer, customer_2: Customer, other_customer: Customer
) -> None:
    quiet = make_customer(creditor, "C-1003", name="Crane Ltd")
    issue_invoice(customer, "B-1", "100.00", due_date=days_ago(0))
    issue_invoice(customer, "B-2", "40.00", due_date=days_ago(15))
    issue_invoice(customer, "B-3", "60.00", due_date=days_ago(95))
    issue_invoice(customer_2, "A-1", "500.00", due_date=days_ago(45))
    part_paid = issue_invoice(customer_2, "A-2", "70.00", due_date=days_ago(70))
    record_payment(customer_2, "20.00", allocations=[(part_paid, "20.00")])
    issue_invoice(quiet, "Q-1", "10.00", due_date=days_ago(3))
    record_payment(quiet, "10.00")  # paid in full: nothing open
    issue_invoice(other_customer, "X-1", "999.00", due_date=days_ago(5))  # another tenant

    with scope(organization=customer.organization):
        rows = {
            name: amounts
            for name, *amounts in customers_with_aging(TODAY).values_list(
                "name", "balance", "past_due", *BUCKET_KEYS
            )
        }
        by_balance = [c.name for c in customers_with_aging(TODAY, sort="-balance")]
        found = [c.name for c in customers_with_aging(TODAY, search="anvil")]
        unknown_sort = [c.name for c in customers_with_aging(TODAY, sort="bogus")]

    z = Decimal(0)
    # balance, past due, current, 1-30, 31-60, 61-90, 90+
    assert rows == {
        "Anvil Works": [dec("550"), dec("550"), z, z, dec("500"), dec("50"), z],
        "Bolt Hardware": [dec("200"), dec("100"), dec("100"), dec("40"), z, z, dec("60")],
        "Crane Ltd": [z, z, z, z, z, z, z],
    }
    assert by_balance == ["Anvil Works", "Bolt Hardware", "Crane Ltd"]
    assert found == ["Anvil Works"]
    assert unknown_sort == ["Anvil Works", "Bolt Hardware", "Crane Ltd"]  # falls back to name


def test_book_aging_covers_the_scoped_organization_only(customer: Customer, other_customer: Customer) -> None:
    issue_invoice(customer, "INV-1", "100.00", due_date=days_ago(40))
    issue_invoice(other_customer, "INV-1", "70.00", due_date=days_ago(40))

    with scope(organization=customer.organization):
        rows = book_aging(TODAY)

    assert [(row.currency, row.balance, row.buckets["d31_60"]) for row in rows] == [
        ("USD", dec("100.00"), dec("100.00"))
    ]


def test_aging_is_counted_on_the_day_given(customer: Customer) -> None:
    issue_invoice(customer, "INV-1", "100.00", due_date=TODAY)
    later = TODAY + datetime.timedelta(days=31)

    with scope(organization=customer.organization):
        (aging,) = customer_aging(customer, later)

    assert aging.buckets == _buckets(d31_60="100.00")
