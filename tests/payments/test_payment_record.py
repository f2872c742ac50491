"""payment_record: cash application oldest first or as allocated, unapplied cash, refusals that
write nothing, currencies, tenants, and the audit event and timeline entry."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django_scopes import scope

from factories import (
    RECEIVED_AT,
    Users,
    days_ago,
    dec,
    fresh,
    issue_invoice,
    record_payment,
    row_counts,
)
from openar.billing.models import Invoice
from openar.core.errors import LedgerError, ServiceError
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Customer
from openar.payments.models import Allocation, Payment
from openar.payments.services import payment_record


def _allocations(payment: Payment) -> list[tuple[str, Decimal]]:
    with scope(organization=payment.customer.organization):
        return [
            (number, amount)
            for number, amount in Allocation.objects.filter(payment=payment)
            .order_by("pk")
            .values_list("invoice__number", "amount")
        ]


def fresh_payment(payment: Payment) -> Payment:
    with scope(organization=payment.customer.organization):
        return Payment.objects.get(pk=payment.pk)


def _open(*invoices: Invoice) -> list[Decimal]:
    return [fresh(invoice).open_amount for invoice in invoices]


@pytest.fixture
def three(customer: Customer) -> tuple[Invoice, Invoice, Invoice]:
    """Oldest due first: A (100, 60 days late), B (200, 10 days late), C (50, due in 10 days).
    C was issued first, so "oldest" means oldest due, not oldest issued."""
    c = issue_invoice(customer, "INV-C", "50.00", issue_date=days_ago(90), due_date=days_ago(-10))
    a = issue_invoice(customer, "INV-A", "100.00", issue_date=days_ago(80), due_date=days_ago(60))
    b = issue_invoice(customer, "INV-B", "200.00", issue_date=days_ago(40), due_date=days_ago(10))
    return a, b, c


# --- cash application ------------------------------------------------------------------------


def test_a_partial_payment_goes_to_the_oldest_due_first(
    customer: Customer, three: tuple[Invoice, Invoice, Invoice]
) -> None:
    a, b, c = three

    payment = record_payment(customer, "250.00", reference="CHK-1")

    assert (payment.amount, payment.currency, payment.state, payment.method, payment.reference) == (
        dec("250.00"),
        "USD",
        Payment.State.SUCCEEDED,
        Payment.Method.CHECK,
        "CHK-1",
    )
    assert _allocations(payment) == [("INV-A", dec("100.00")), ("INV-B", dec("150.00"))]
    assert _open(a, b, c) == [Decimal(0), dec("50.00"), dec("50.00")]
    assert fresh(a).closed_at is not None
    assert fresh(b).closed_at is None


def test_same_due_date_goes_to_the_earliest_issued_first(customer: Customer) -> None:
    later = issue_invoice(customer, "INV-2", "40.00", issue_date=days_ago(10), due_date=days_ago(1))
    earlier = issue_invoice(customer, "INV-1", "40.00", issue_date=days_ago(20), due_date=days_ago(1))

    payment = record_payment(customer, "50.00")

    assert _allocations(payment) == [("INV-1", dec("40.00")), ("INV-2", dec("10.00"))]
    assert _open(earlier, later) == [Decimal(0), dec("30.00")]


def test_explicit_allocations_go_where_they_are_told(
    customer: Customer, three: tuple[Invoice, Invoice, Invoice]
) -> None:
    a, b, c = three

    payment = record_payment(customer, "120.00", allocations=[(c, "50.00"), (a, "70.00")])

    assert _allocations(payment) == [("INV-C", dec("50.00")), ("INV-A", dec("70.00"))]
    assert _open(a, b, c) == [dec("30.00"), dec("200.00"), Decimal(0)]


def test_an_allocation_smaller_than_the_payment_leaves_unapplied_cash(
    customer: Customer, three: tuple[Invoice, Invoice, Invoice]
) -> None:
    a, b, c = three

    payment = record_payment(customer, "100.00", allocations=[(b, "60.00")])

    assert _allocations(payment) == [("INV-B", dec("60.00"))]
    assert _open(a, b, c) == [dec("100.00"), dec("140.00"), dec("50.00")]
    assert fresh_payment(payment).amount == dec("100.00")


def test_an_overpayment_closes_everything_and_keeps_the_rest_unapplied(
    customer: Customer, three: tuple[Invoice, Invoice, Invoice]
) -> None:
    a, b, c = three

    payment = record_payment(customer, "400.00")

    assert _allocations(payment) == [
        ("INV-A", dec("100.00")),
        ("INV-B", dec("200.00")),
        ("INV-C", dec("50.00")),
    ]
    assert _open(a, b, c) == [Decimal(0)] * 3
    applied = sum((amount for _, amount in _allocations(payment)), Decimal(0))
    assert payment.amount - applied == dec("50.00")
    with scope(organization=customer.organization):
        activity = Activity.objects.get(kind=Activity.Kind.PAYMENT)
    assert activity.body == "Applied to INV-A ($100.00), INV-B ($200.00), INV-C ($50.00)."


def test_a_payment_with_nothing_open_stays_unapplied(customer: Customer) -> None:
    payment = record_payment(customer, "75.00")

    assert _allocations(payment) == []
    with scope(organization=customer.organization):
        activity = Activity.objects.get()
        event = AuditEvent.objects.get()
    assert activity.body == "Not yet applied to an invoice."
    assert event.data["allocations"] == []


def test_amounts_are_rounded_to_the_currency(customer: Customer) -> None:
    invoice = issue_invoice(customer, "JPY-1", "5000", currency="JPY")

    payment = record_payment(customer, "1000.5", currency="jpy")

    assert (payment.currency, payment.amount) == ("JPY", dec("1001"))
    assert _open(invoice) == [dec("3999")]


# --- refusals write nothing --------------------------------------------------------------------


def test_allocations_adding_up_to_more_than_the_payment_are_refused(
    customer: Customer, three: tuple[Invoice, Invoice, Invoice]
) -> None:
    a, b, c = three
    before = row_counts()

    with pytest.raises(ServiceError) as refused:
        record_payment(customer, "100.00", allocations=[(a, "60.00"), (b, "40.01")])

    assert refused.value.message == "The amounts applied add up to more than the payment."
    assert row_counts() == before
    assert _open(a, b, c) == [dec("100.00"), dec("200.00"), dec("50.00")]


def test_allocating_more_than_is_open_is_refused(
    customer: Customer, three: tuple[Invoice, Invoice, Invoice]
) -> None:
    a, b, c = three
    before = row_counts()

    with pytest.raises(LedgerError, match=r"Invoice INV-C has \$50\.00 open; \$60\.00 is more than that"):
        record_payment(customer, "60.00", allocations=[(c, "60.00")])
    # the same invoice twice, each part fitting on its own but not together
    with pytest.raises(LedgerError, match=r"Invoice INV-A has \$40\.00 open"):
        record_payment(customer, "120.00", allocations=[(a, "60.00"), (a, "60.00")])

    assert row_counts() == before
    assert _open(a, b, c) == [dec("100.00"), dec("200.00"), dec("50.00")]


def test_allocating_to_another_customers_invoice_is_refused(customer: Customer, customer_2: Customer) -> None:
    theirs = issue_invoice(customer_2, "INV-THEIRS", "100.00")
    before = row_counts()

    with pytest.raises(ServiceError) as refused:
        record_payment(customer, "100.00", allocations=[(theirs, "100.00")])

    assert refused.value.message == "A payment can only be applied to the customer's own invoices."
    assert row_counts() == before
    assert _open(theirs) == [dec("100.00")]


def test_allocating_to_another_organizations_invoice_is_refused(
    customer: Customer, other_customer: Customer
) -> None:
    foreign = issue_invoice(other_customer, "INV-1", "100.00", currency="USD")
    before = row_counts()

    with pytest.raises(ServiceError) as refused:
        record_payment(customer, "100.00", allocations=[(foreign, "100.00")])

    assert refused.value.message == "A payment can only be applied to the customer's own invoices."
    assert row_counts() == before
    assert _open(foreign) == [dec("100.00")]


def test_allocating_across_currencies_is_refused(customer: Customer) -> None:
    eur = issue_invoice(customer, "EUR-1", "100.00", currency="EUR")
    before = row_counts()

    with pytest.raises(ServiceError) as refused:
        record_payment(customer, "100.00", currency="USD", allocations=[(eur, "100.00")])

    assert refused.value.message == "Invoice EUR-1 is in EUR, the payment in USD."
    assert row_counts() == before
    assert _open(eur) == [dec("100.00")]


@pytest.mark.parametrize(
    ("amount", "method", "received_at", "field"),
    [
        ("0", "check", RECEIVED_AT, "amount"),
        ("-10.00", "check", RECEIVED_AT, "amount"),
        ("0.004", "check", RECEIVED_AT, "amount"),  # rounds to zero cents
        ("10.00", "bitcoin", RECEIVED_AT, "method"),
        ("10.00", "check", RECEIVED_AT.replace(tzinfo=None), "received_at"),
    ],
)
def test_bad_payments_are_refused(
    customer: Customer, amount: str, method: str, received_at: datetime.datetime, field: str
) -> None:
    invoice = issue_invoice(customer, "INV-1", "100.00")
    before = row_counts()

    with scope(organization=customer.organization), pytest.raises(ServiceError) as refused:
        payment_record(customer=customer, amount=Decimal(amount), method=method, received_at=received_at)

    assert refused.value.field == field
    assert row_counts() == before
    assert _open(invoice) == [dec("100.00")]


@pytest.mark.parametrize("part", ["0", "-5.00"])
def test_a_non_positive_allocation_is_refused(customer: Customer, part: str) -> None:
    invoice = issue_invoice(customer, "INV-1", "100.00")
    before = row_counts()

    with pytest.raises(ServiceError, match="must be positive"):
        record_payment(customer, "10.00", allocations=[(invoice, part)])

    assert row_counts() == before


# --- currencies -------------------------------------------------------------------------------


def test_a_eur_payment_is_applied_to_eur_invoices_only(customer: Customer) -> None:
    usd = issue_invoice(customer, "USD-1", "100.00", due_date=days_ago(90))
    eur = issue_invoice(customer, "EUR-1", "80.00", currency="EUR", due_date=days_ago(5))

    payment = record_payment(customer, "100.00", currency="EUR")

    assert payment.currency == "EUR"
    assert _allocations(payment) == [("EUR-1", dec("80.00"))]
    assert _open(usd, eur) == [dec("100.00"), Decimal(0)]


# --- audit event and timeline, in the same transaction ------------------------------------------


def test_recording_writes_one_audit_event_and_one_timeline_entry(
    customer: Customer, three: tuple[Invoice, Invoice, Invoice], users: Users
) -> None:
    received = datetime.datetime(2025, 6, 29, 9, 30, tzinfo=datetime.UTC)

    payment = record_payment(
        customer, "150.00", method=Payment.Method.WIRE, received_at=received, actor=users.collector
    )

    with scope(organization=customer.organization):
        event = AuditEvent.objects.get(action="openar.payment.recorded")
        activity = Activity.objects.get(kind=Activity.Kind.PAYMENT)
        assert AuditEvent.objects.filter(action="openar.payment.recorded").count() == 1
    assert (event.object_type, event.object_id, event.actor_id) == (
        "payments.payment",
        str(payment.pk),
        users.collector.pk,
    )
    data = dict(event.data)
    allocations = [(number, Decimal(amount)) for number, amount in data.pop("allocations")]
    assert data == {"amount": "150.00", "currency": "USD", "method": "wire"}
    assert allocations == [("INV-A", dec("100.00")), ("INV-B", dec("50.00"))]
    assert (activity.summary, activity.body, activity.occurred_at, activity.actor_id) == (
        "Payment of $150.00 received by Wire transfer",
        "Applied to INV-A ($100.00), INV-B ($50.00).",
        received,
        users.collector.pk,
    )
    assert fresh_payment(payment).recorded_by_id == users.collector.pk


@pytest.mark.parametrize("automatic", [False, True], ids=["allocated", "automatic"])
def test_audit_amounts_are_written_in_the_currencys_minor_unit(
    customer: Customer, three: tuple[Invoice, Invoice, Invoice], automatic: bool
) -> None:
    """The same fact is spelled the same way however the payment was applied: "100.00" for
    US dollars, as the payment's own amount is, never the database's "100.0000"."""
    a, b, _ = three
    allocations = None if automatic else [(a, "100"), (b, "50")]

    payment = record_payment(customer, "150", allocations=allocations)

    with scope(organization=customer.organization):
        event = AuditEvent.objects.get(action="openar.payment.recorded")
    assert event.data["amount"] == "150.00"
    assert event.data["allocations"] == [["INV-A", "100.00"], ["INV-B", "50.00"]]
    assert _allocations(payment) == [("INV-A", dec("100.00")), ("INV-B", dec("50.00"))]


def test_a_failure_after_the_payment_row_leaves_nothing_behind(
    customer: Customer, three: tuple[Invoice, Invoice, Invoice], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payment, its allocations, the new open amounts, the timeline entry and the audit
    event are one transaction: when the audit write fails, none of them stays."""
    a, b, c = three

    def broken_log_event(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr("openar.payments.services.log_event", broken_log_event)
    before = row_counts()

    with pytest.raises(RuntimeError, match="audit store unavailable"):
        record_payment(customer, "250.00")

    assert row_counts() == before
    assert _open(a, b, c) == [dec("100.00"), dec("200.00"), dec("50.00")]
    assert [fresh(i).closed_at for i in (a, b, c)] == [None, None, None]


def test_recording_allocates_through_the_rule_online_payments_follow(
    customer: Customer, three: tuple[Invoice, Invoice, Invoice], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cheques and online payments are applied by one function (``online.allocate``, each
    part capped by what the invoice has open at that moment), not by two loops that could
    drift apart."""
    from openar.payments import online, services

    a, b, c = three
    calls: list[list[tuple[str, Decimal]]] = []

    def spy(payment: Payment, plan: list[tuple[Invoice, Decimal]]) -> list[tuple[Invoice, Decimal]]:
        calls.append([(invoice.number, part) for invoice, part in plan])
        return online.allocate(payment, plan)

    monkeypatch.setattr(services, "allocate", spy)
    oldest_first = record_payment(customer, "150.00")
    as_told = record_payment(customer, "30.00", allocations=[(c, "30.00")])

    assert calls == [[("INV-A", dec("100.00")), ("INV-B", dec("50.00"))], [("INV-C", dec("30.00"))]]
    assert _allocations(oldest_first) == [("INV-A", dec("100.00")), ("INV-B", dec("50.00"))]
    assert _allocations(as_told) == [("INV-C", dec("30.00"))]
    assert _open(a, b, c) == [Decimal(0), dec("150.00"), dec("20.00")]
