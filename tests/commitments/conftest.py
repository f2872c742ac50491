"""Fixtures of the promise and plan tests: an account with past-due invoices, a contact who
gets the emails, a collector assigned to it, and helpers to run the periodic jobs at a
given moment (in the supplier's time zone, Toronto)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine
from django_scopes import scope, scopes_disabled

from factories import TODAY, TORONTO, Users, issue_invoice
from openar.billing.models import Invoice
from openar.commitments.models import CommitmentPolicy
from openar.commitments.services import commitment_policy, installments_run, promises_run
from openar.customers.models import Contact, Customer, Task
from openar.notifications.models import Message
from openar.payments.autopay import setup_complete, setup_start
from openar.payments.models import SavedMethod
from openar.payments.sandbox import setup_save
from openar.tenants.models import Organization

Capture = Callable[..., Any]
CARD_OK = "4242424242424242"
CARD_SAVED_DECLINES = "4000000000000341"


def at(day: int, hour: int = 12, minute: int = 0) -> datetime.datetime:
    """``hour``:``minute`` in Toronto, ``day`` days after TODAY."""
    return datetime.datetime.combine(
        TODAY + datetime.timedelta(days=day), datetime.time(hour, minute), tzinfo=TORONTO
    )


def day(n: int) -> datetime.date:
    return TODAY + datetime.timedelta(days=n)


@pytest.fixture
def account(
    customer: Customer, contact: Contact, users: Users, clock: time_machine.Traveller
) -> Iterator[dict[str, Invoice]]:
    """Bolt Hardware owes three invoices: two past due (100.00 and 200.00) and one due in
    20 days (50.00); its collector is assigned."""
    with scope(organization=customer.organization):
        Customer.objects.filter(pk=customer.pk).update(assigned_collector=users.collector)
    customer.assigned_collector = users.collector
    yield {
        "old": issue_invoice(customer, "INV-1", "100.00", due_date=day(-20)),
        "late": issue_invoice(customer, "INV-2", "200.00", due_date=day(-5)),
        "later": issue_invoice(customer, "INV-3", "50.00", due_date=day(20)),
    }


@pytest.fixture
def policy(supplier: Organization) -> Callable[..., CommitmentPolicy]:
    """Change the supplier's commitment policy: ``policy(promise_grace_days=1)``."""

    def change(**fields: Any) -> CommitmentPolicy:
        with scope(organization=supplier):
            found = commitment_policy(supplier)
            for name, value in fields.items():
                setattr(found, name, value)
            found.save()
            return found

    return change


def run_promises(
    capture: Capture, moment: datetime.datetime, traveller: time_machine.Traveller
) -> dict[str, int]:
    traveller.move_to(moment)
    with capture(execute=True):
        return promises_run()


def run_installments(
    capture: Capture, moment: datetime.datetime, traveller: time_machine.Traveller
) -> dict[str, int]:
    traveller.move_to(moment)
    with capture(execute=True):
        return installments_run()


def messages_to(customer: Customer) -> list[str]:
    """The subjects of the emails the customer was sent, oldest first."""
    with scopes_disabled():
        return list(
            Message.objects.filter(customer=customer, direction=Message.Direction.OUT)
            .order_by("pk")
            .values_list("subject", flat=True)
        )


def tasks_of(customer: Customer) -> list[Task]:
    with scopes_disabled():
        return list(Task.objects.filter(customer=customer).order_by("pk"))


def save_card(customer: Customer, contact: Contact, number: str = CARD_OK) -> SavedMethod:
    """A card saved at the sandbox's page, as the portal does it."""
    with scope(organization=customer.organization):
        setup, _ = setup_start(customer=customer, contact=contact, method="card", actor=None)
        assert setup_save(setup.provider_setup_id, method="card", number=number, expires=None) == "saved"
        saved = setup_complete(setup=setup, actor=None)
    assert saved is not None
    return saved
