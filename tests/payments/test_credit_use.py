"""Unapplied credit is used by the customer's next payment: the pay page shows it and
charges only the rest; credit that covers everything charges nothing; autopay uses it too."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import TODAY, Users, dec, fresh, issue_invoice, record_payment, signed_in, text_of
from openar.billing.models import Invoice
from openar.customers.models import Contact, Customer
from openar.payments.credit import credit_available, credit_use
from openar.payments.models import Payment
from openar.payments.online import choose_lines

PAY = "/portal/pay/"
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
Capture = Callable[..., Any]


@pytest.fixture
def invoices(customer: Customer, clock: time_machine.Traveller) -> dict[str, Invoice]:
    return {
        "old": issue_invoice(customer, "INV-1", "100.00", due_date=TODAY - datetime.timedelta(days=40)),
        "late": issue_invoice(customer, "INV-2", "80.00", due_date=TODAY - datetime.timedelta(days=10)),
        "later": issue_invoice(customer, "INV-3", "50.00", due_date=TODAY - datetime.timedelta(days=5)),
    }


@pytest.fixture
def overpaid(customer: Customer, invoices: dict[str, Invoice]) -> Payment:
    """A cheque of 160 for INV-1 (100): 60 left as credit."""
    return record_payment(customer, "160.00", allocations=[(invoices["old"], "100.00")])


@pytest.fixture
def client(users: Users, contact: Contact, invoices: dict[str, Invoice]) -> Client:
    return signed_in(users.customer)


def review(client: Client, **data: object) -> Any:
    return client.post(PAY, {"step": "review", "method": "card", **data})


def confirm(client: Client, reviewed: Any) -> Any:
    assert reviewed.status_code == 200, text_of(reviewed.content)
    data: dict[str, list[str]] = {}
    for name, value in HIDDEN.findall(reviewed.content.decode()):
        data.setdefault(name, []).append(value)
    return client.post(PAY, {**data, "step": "confirm"})


def test_credit_is_counted_once_per_payment(customer: Customer, overpaid: Payment) -> None:
    record_payment(customer, "5.00", allocations=[])  # a cheque applied to nothing: all credit
    with scope(organization=customer.organization):
        assert credit_available(customer) == dec("65.00")


def test_the_pay_page_uses_the_credit_first_and_charges_the_rest(
    client: Client, customer: Customer, invoices: dict[str, Invoice], overpaid: Payment
) -> None:
    reviewed = review(client, mode="past_due")
    text = text_of(reviewed.content)
    assert "Credit on your account, used first −$60.00" in text
    assert "Total to pay $70.00" in text

    confirmed = confirm(client, reviewed)

    assert confirmed.status_code == 302 and "/sandbox/pay/" in confirmed["Location"]
    with scopes_disabled():
        online = Payment.objects.get(provider="sandbox")
        targets = {t.invoice.number: t.amount for t in online.targets.select_related("invoice")}
    assert online.amount == dec("70.00")
    assert targets == {"INV-2": dec("20.00"), "INV-3": dec("50.00")}
    assert fresh(invoices["late"]).open_amount == dec("20.00")  # the credit paid 60 of it
    with scope(organization=customer.organization):
        assert credit_available(customer) == 0


def test_credit_that_covers_everything_charges_nothing(
    client: Client, customer: Customer, invoices: dict[str, Invoice], overpaid: Payment
) -> None:
    reviewed = review(client, mode="invoices", invoice=[invoices["later"].pk])
    assert "Use my credit" in text_of(reviewed.content)
    done = confirm(client, reviewed)

    assert done.status_code == 302 and done["Location"] == PAY
    assert "Paid with the credit on your account ($50.00)." in text_of(client.get(PAY).content)
    assert fresh(invoices["later"]).open_amount == 0
    with scopes_disabled():
        assert not Payment.objects.filter(provider="sandbox").exists()
    with scope(organization=customer.organization):
        assert credit_available(customer) == dec("10.00")


def test_credit_goes_to_the_lines_in_order_and_paid_lines_are_dropped(
    customer: Customer, invoices: dict[str, Invoice], overpaid: Payment
) -> None:
    with scope(organization=customer.organization):
        lines = choose_lines(customer, TODAY, invoice_ids=[invoices["later"].pk, invoices["late"].pk])
        used, rest = credit_use(customer=customer, lines=lines, actor=None)
        more, after = credit_use(customer=customer, lines=rest, actor=None)
    assert used == dec("60.00")
    assert [(line.invoice.number, line.amount) for line in rest] == [
        ("INV-2", dec("20.00")),
        ("INV-3", dec("50.00")),
    ]
    assert rest[0].invoice.open_amount == dec("20.00")  # fresh from the database
    assert (more, after) == (0, rest)  # no credit left: nothing changes
