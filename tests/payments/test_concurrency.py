"""Two payments applied to the same invoice at the same time never over-allocate it.

Real threads, each with its own database connection, on PostgreSQL (SQLite has no row locks
and an in-memory database is not shared between connections)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django_scopes import scope

from factories import dec, fresh, issue_invoice, record_payment
from openar.billing.models import Invoice
from openar.core.errors import LedgerError, ServiceError
from openar.customers.models import Customer
from openar.payments.models import Allocation, Payment

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def _in_thread(target: Callable[[], object], results: dict[str, object], name: str) -> threading.Thread:
    """Run ``target`` in a thread of its own (so on a connection of its own), keep what it
    returned or raised, and close that connection at the end."""

    def run() -> None:
        try:
            results[name] = target()
        except Exception as exc:  # the test inspects it
            results[name] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def _a_backend_waits_for_a_lock(timeout: float = 20.0) -> bool:
    """Poll PostgreSQL until another connection of this database waits on a lock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


def _allocated(invoice: Invoice) -> list[Decimal]:
    with scope(organization=invoice.customer.organization):
        return sorted(
            Allocation.objects.filter(invoice=invoice, reversed_at__isnull=True).values_list(
                "amount", flat=True
            )
        )


def _payments(customer: Customer) -> int:
    with scope(organization=customer.organization):
        return Payment.objects.filter(customer=customer).count()


def test_a_second_payment_waits_for_the_first_and_sees_its_result(customer: Customer) -> None:
    """The first payment holds the invoice's row lock until it commits; the second one, asked
    for the same 80 of a 100 invoice meanwhile, waits, re-reads 20 open, and is refused."""
    invoice = issue_invoice(customer, "INV-1", "100.00")
    customer.organization  # noqa: B018  (loaded here, not in the threads)
    holding, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first() -> Payment:
        with transaction.atomic():
            payment = record_payment(customer, "80.00", allocations=[(invoice, "80.00")])
            holding.set()
            assert release.wait(30), "the test never released the first payment"
        return payment

    def second() -> Payment:
        return record_payment(customer, "80.00", allocations=[(invoice, "80.00")])

    t1 = _in_thread(first, results, "first")
    assert holding.wait(30)
    t2 = _in_thread(second, results, "second")
    blocked = _a_backend_waits_for_a_lock() and t2.is_alive()
    release.set()
    t1.join(30)
    t2.join(30)

    assert blocked, "the second payment did not wait for the first one's row lock"
    assert isinstance(results["first"], Payment)
    refused = results["second"]
    assert isinstance(refused, LedgerError), refused
    assert refused.message == "Invoice INV-1 has $20.00 open; $80.00 is more than that."
    assert _allocated(invoice) == [dec("80.00")]
    assert fresh(invoice).open_amount == dec("20.00")
    assert _payments(customer) == 1


def test_a_waiting_automatic_payment_applies_only_what_is_left(customer: Customer) -> None:
    invoice = issue_invoice(customer, "INV-1", "100.00")
    customer.organization  # noqa: B018
    holding, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first() -> Payment:
        with transaction.atomic():
            payment = record_payment(customer, "80.00")
            holding.set()
            assert release.wait(30)
        return payment

    t1 = _in_thread(first, results, "first")
    assert holding.wait(30)
    t2 = _in_thread(lambda: record_payment(customer, "80.00"), results, "second")
    blocked = _a_backend_waits_for_a_lock() and t2.is_alive()
    release.set()
    t1.join(30)
    t2.join(30)

    assert blocked
    assert isinstance(results["first"], Payment)
    assert isinstance(results["second"], Payment)
    assert _allocated(invoice) == [dec("20.00"), dec("80.00")]  # 60.00 of the second unapplied
    stored = fresh(invoice)
    assert stored.open_amount == Decimal(0)
    assert stored.closed_at is not None
    assert _payments(customer) == 2


@pytest.mark.parametrize("round_", range(5))
def test_two_payments_racing_never_over_allocate(customer: Customer, round_: int) -> None:
    """Both start at the same instant; one gets 70 of the 100, the other is refused."""
    invoice = issue_invoice(customer, f"INV-{round_}", "100.00")
    customer.organization  # noqa: B018
    start = threading.Barrier(2, timeout=30)
    results: dict[str, object] = {}

    def pay() -> Payment:
        start.wait()
        return record_payment(customer, "70.00", allocations=[(invoice, "70.00")])

    threads = [_in_thread(pay, results, name) for name in ("a", "b")]
    for thread in threads:
        thread.join(30)

    outcomes = sorted(type(result).__name__ for result in results.values())
    assert outcomes == ["LedgerError", "Payment"], results
    assert all(isinstance(r, Payment | ServiceError) for r in results.values())
    assert _allocated(invoice) == [dec("70.00")]
    assert fresh(invoice).open_amount == dec("30.00")
    assert _payments(customer) == 1
