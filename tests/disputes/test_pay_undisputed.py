"""Paying the undisputed part of a disputed invoice where the organization asks for invoices
to be paid in full: all of the undisputed part is no short payment; less than it is."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scope

from factories import signed_in
from openar.core.errors import ServiceError
from openar.disputes.services import dispute_withdraw
from openar.payments.autopay import _due_invoices
from openar.payments.online import PayLine, choose_lines, payment_settings, payment_start, short_paid

from .conftest import Account, open_dispute


def start(account: Account, amount: str) -> None:
    customer = account.customer
    with scope(organization=customer.organization):
        payment_start(
            customer=customer,
            lines=[PayLine(account.invoice, Decimal(amount))],
            method="card",
            provider_name="sandbox",
            checkout_token=uuid.uuid4().hex,
            return_url="http://testserver/portal/pay/",
            cancel_url="http://testserver/portal/pay/",
        )


@pytest.fixture
def in_full_only(account: Account) -> Account:
    with scope(organization=account.customer.organization):
        settings_ = payment_settings(account.customer.organization)
        settings_.allow_partial = False
        settings_.save(update_fields=["allow_partial"])
    return account


def test_the_undisputed_part_is_no_short_payment(in_full_only: Account) -> None:
    account = in_full_only
    assert account.invoice.open_amount == Decimal("400.00")
    open_dispute(account, (0, "price", "100.00"))
    with scope(organization=account.customer.organization):
        assert short_paid([PayLine(account.invoice, Decimal("300.00"))]) == []
        assert short_paid([PayLine(account.invoice, Decimal("299.99"))]) != []
    start(account, "300.00")  # accepted

    with pytest.raises(ServiceError, match="asks for invoices to be paid in full"):
        start(account, "150.00")


def test_without_a_dispute_part_of_an_invoice_is_still_refused(in_full_only: Account) -> None:
    with pytest.raises(ServiceError, match="asks for invoices to be paid in full"):
        start(in_full_only, "300.00")


def test_everything_past_due_and_autopay_leave_the_disputed_amount_out(account: Account) -> None:
    """INV-1 (400.00, past due) has 300.00 in dispute: "everything past due" on the pay page
    is 100.00, and autopay would charge 100.00; with all of it disputed, neither pays it."""
    customer = account.customer
    dispute = open_dispute(account, (0, "damaged", "300.00"))
    today = customer.organization.today()
    with scope(organization=customer.organization):
        lines = choose_lines(customer, today, past_due=True)
        assert [(line.invoice.number, line.amount) for line in lines] == [("INV-1", Decimal("100.00"))]
        due = _due_invoices(customer, today, timezone.now())
        assert [(line.invoice.number, line.amount) for line in due] == [("INV-1", Decimal("100.00"))]

    page = signed_in(account.users.customer).get("/portal/pay/").content.decode()
    assert "In dispute</span> $300.00 waits for the dispute; $100.00 to pay now" in page

    with scope(organization=customer.organization):
        dispute_withdraw(dispute=dispute, contact=account.contact, actor=account.users.customer)
    open_dispute(account, (0, "damaged", "300.00"), (1, "price", "100.00"))
    with scope(organization=customer.organization):
        assert _due_invoices(customer, today, timezone.now()) == []
        with pytest.raises(ServiceError, match="Nothing past due is left to pay"):
            choose_lines(customer, today, past_due=True)
