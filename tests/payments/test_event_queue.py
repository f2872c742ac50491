"""Provider events stored by the webhook and applied by the workers in batches
(``OPENAR_PAYMENT_EVENTS_QUEUED``, production's default): the same outcome as applying each
at once, one failure never holding the others back, and each event applied once when
workers drain at the same time."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django_scopes import scopes_disabled

from factories import TODAY, assert_ledger_clean, in_threads, issue_invoice
from openar.billing.models import Document, Invoice
from openar.core.models import AuditEvent
from openar.core.periodic import JOBS_BY_NAME
from openar.customers.models import Activity, Contact, Customer
from openar.notifications.models import Message
from openar.payments import events as payment_events
from openar.payments import online
from openar.payments.events import MAX_ATTEMPTS, events_drain, events_retry
from openar.payments.models import Allocation, Payment, PaymentTarget, ProviderEvent
from openar.payments.providers import base
from openar.payments.providers.sandbox import SIGNATURE_HEADER, event_body, sign
from openar.tenants.models import Organization

from .test_event_fixes import current, event, pending_refund, send, settled, start

QUEUED = override_settings(OPENAR_PAYMENT_EVENTS_QUEUED=True)


def post(organization: Organization, *events: dict[str, object]) -> tuple[int, dict[str, Any]]:
    body = event_body(list(events))
    response = Client().post(
        f"/hooks/payments/sandbox/{organization.slug}/",
        data=body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: sign(body)},
    )
    return response.status_code, json.loads(response.content)


def invoices_for(customer: Customer, prefix: str) -> list[Invoice]:
    due = TODAY - datetime.timedelta(days=10)
    return [
        issue_invoice(customer, f"{prefix}-1", "100.00", due_date=due),
        issue_invoice(customer, f"{prefix}-2", "50.00", due_date=due),
        issue_invoice(customer, f"{prefix}-3", "30.00", due_date=due),
    ]


def scenario(customer: Customer, prefix: str) -> tuple[list[Payment], list[Invoice], list[dict[str, object]]]:
    """Three payments and the events of an ordinary afternoon, in the order they arrive: a
    bank payment put in flight and settled, a card payment settled (and its success sent
    again under another id), a card payment whose return comes before its success, and an
    event about a payment nobody knows."""
    invoices = invoices_for(customer, prefix)
    card = start(customer, [invoices[0]])
    bank = start(customer, [invoices[1]], method="ach")
    returned = start(customer, [invoices[2]])
    stranger = {**event(card, base.PAYMENT_SUCCEEDED), "payment": "sbx_nobody", "openar_payment_id": ""}
    return (
        [card, bank, returned],
        invoices,
        [
            event(bank, base.PAYMENT_PROCESSING),
            event(card, base.PAYMENT_SUCCEEDED),
            event(returned, base.PAYMENT_RETURNED, message="R01"),
            event(bank, base.PAYMENT_SUCCEEDED),
            event(returned, base.PAYMENT_SUCCEEDED),
            stranger,
            event(card, base.PAYMENT_SUCCEEDED),
        ],
    )


def snapshot(
    customer: Customer, payments: list[Payment], invoices: list[Invoice], prefix: str
) -> dict[str, Any]:
    with scopes_disabled():
        return {
            "states": [current(payment).state for payment in payments],
            "open": [Invoice.objects.get(pk=invoice.pk).open_amount for invoice in invoices],
            "allocations": [
                (invoice_number[-2:], amount, reversed_at is not None)
                for invoice_number, amount, reversed_at in Allocation.objects.filter(payment__in=payments)
                .order_by("payment_id", "pk")
                .values_list("invoice__number", "amount", "reversed_at")
            ],
            "timeline": [
                (summary.replace(prefix, "INV"), body.replace(prefix, "INV"), visibility)
                for summary, body, visibility in Activity.objects.filter(
                    customer=customer, kind=Activity.Kind.PAYMENT
                )
                .order_by("pk")
                .values_list("summary", "body", "visibility")
            ],
            "audit": list(
                AuditEvent.objects.filter(
                    object_type="payments.payment", object_id__in=[str(p.pk) for p in payments]
                )
                .order_by("pk")
                .values_list("action", flat=True)
            ),
            "receipts": Document.objects.filter(customer=customer, title__startswith="Receipt").count(),
            "events": [
                (kind, outcome, processed_at is not None)
                for kind, outcome, processed_at in ProviderEvent.objects.filter(payment__in=payments)
                .order_by("pk")
                .values_list("type", "outcome", "processed_at")
            ],
        }


def test_a_batch_ends_exactly_as_the_same_events_applied_one_by_one(
    customer: Customer,
    customer_2: Customer,
    supplier: Organization,
    django_capture_on_commit_callbacks: Any,
) -> None:
    payments_1, invoices_1, events_1 = scenario(customer, "ONE")
    with django_capture_on_commit_callbacks(execute=True):  # the receipts' tasks run
        outcomes_1 = [send(supplier, one)[0] for one in events_1]

    payments_2, invoices_2, events_2 = scenario(customer_2, "TWO")
    with QUEUED:
        answers = [post(supplier, one) for one in events_2]
    assert answers == [(200, {"received": 1, "outcomes": ["queued"]})] * len(events_2)
    assert [current(payment).state for payment in payments_2] == ["pending"] * 3  # stored, not applied
    with django_capture_on_commit_callbacks(execute=True):
        assert events_drain() == len(events_2)

    assert outcomes_1 == [
        "processing",
        "succeeded",
        "waiting: the payment has not settled yet",
        "succeeded",
        "succeeded",
        "no such payment",
        "ignored: the payment is succeeded",
    ]
    one = snapshot(customer, payments_1, invoices_1, "ONE")
    two = snapshot(customer_2, payments_2, invoices_2, "TWO")
    assert one == two
    assert one["states"] == ["succeeded", "succeeded", "returned"]
    assert one["open"] == [Decimal(0), Decimal(0), Decimal("30.00")]
    # The returned payment's receipt task finds it returned (its return waited for it): none.
    assert one["receipts"] == 2
    assert events_drain() == 0  # nothing is applied twice
    assert_ledger_clean()


def test_the_webhook_stores_a_doubled_delivery_once_and_the_drain_applies_it_once(
    customer: Customer, supplier: Organization
) -> None:
    invoice = issue_invoice(customer, "INV-Q", "80.00", due_date=TODAY)
    payment = start(customer, [invoice])
    succeeded = event(payment, base.PAYMENT_SUCCEEDED)
    with QUEUED:
        assert post(supplier, succeeded) == (200, {"received": 1, "outcomes": ["queued"]})
        assert post(supplier, succeeded) == (200, {"received": 1, "outcomes": ["duplicate"]})
    with scopes_disabled():
        [stored] = ProviderEvent.objects.all()
    assert (stored.processed_at, stored.outcome, stored.payment_id) == (None, "", None)

    assert JOBS_BY_NAME["payment-events"].function == "openar.payments.events.events_drain"
    assert events_drain() == 1
    stored.refresh_from_db()
    assert (stored.outcome, stored.payment_id) == ("succeeded", payment.pk)
    assert stored.processed_at is not None
    assert current(payment).state == "succeeded"
    assert send(supplier, succeeded) == ["duplicate"]  # delivered once more, later: nothing more
    with scopes_disabled():
        assert Allocation.objects.filter(payment=payment).count() == 1
    assert_ledger_clean()


def test_an_event_that_cannot_be_applied_never_holds_the_batch_back(
    customer: Customer, supplier: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoices = invoices_for(customer, "BAD")
    good, bad, also_good = (start(customer, [invoice]) for invoice in invoices)
    real_apply = online.event_apply

    def apply(payment: Payment, row: ProviderEvent, writes: Any) -> str:
        if payment.pk == bad.pk:
            raise RuntimeError("the disk is full")
        return real_apply(payment, row, writes)

    monkeypatch.setattr(online, "event_apply", apply)
    with QUEUED:
        for payment in (good, bad, also_good):
            send(supplier, event(payment, base.PAYMENT_SUCCEEDED))
    assert events_drain() == 3

    assert [current(payment).state for payment in (good, bad, also_good)] == [
        "succeeded",
        "pending",
        "succeeded",
    ]
    with scopes_disabled():
        failed = ProviderEvent.objects.get(payment=bad)
    assert failed.outcome == "error: RuntimeError: the disk is full"
    assert (failed.processed_at, failed.attempts) == (None, 1)
    assert events_drain() == 0  # a failed event waits for the retry job, not the next second

    # Tried again by the hourly job, at most MAX_ATTEMPTS times in all.
    for attempt in range(2, MAX_ATTEMPTS + 1):
        assert events_retry() == 1
        failed.refresh_from_db()
        assert failed.attempts == attempt
    assert events_retry() == 0

    monkeypatch.setattr(online, "event_apply", real_apply)
    # The provider delivers it once more: applied now, once.
    assert send(supplier, event(bad, base.PAYMENT_SUCCEEDED) | {"id": failed.event_id}) == ["succeeded"]
    assert current(bad).state == "succeeded"
    assert_ledger_clean()


def test_events_of_one_organization_never_reach_anothers_payments_in_a_batch(
    customer: Customer, supplier: Organization, other_customer: Customer
) -> None:
    ours = start(customer, [issue_invoice(customer, "INV-O", "40.00", due_date=TODAY)], method="ach")
    theirs = start(other_customer, [issue_invoice(other_customer, "INV-T", "60.00", due_date=TODAY)])
    # Signed with the other organization's secret, naming our payment both ways.
    forged = event(ours, base.PAYMENT_SUCCEEDED)
    with QUEUED:
        send(other_customer.organization, forged)
        send(other_customer.organization, event(theirs, base.PAYMENT_SUCCEEDED))
        send(supplier, event(ours, base.PAYMENT_PROCESSING))
    assert events_drain() == 3
    assert current(ours).state == "processing"  # its own organization's event only
    with scopes_disabled():
        outcomes = dict(ProviderEvent.objects.values_list("event_id", "outcome"))
    assert outcomes[str(forged["id"])] == "no such payment"
    assert current(theirs).state == "succeeded"
    assert_ledger_clean()


@pytest.mark.postgresql
def test_workers_draining_at_once_apply_each_event_once(
    transactional_db: None, customer: Customer, supplier: Organization
) -> None:
    invoices = [
        issue_invoice(customer, f"INV-C{n:03d}", "10.00", due_date=TODAY - datetime.timedelta(days=n))
        for n in range(60)
    ]
    payments = [start(customer, [invoice], method="ach") for invoice in invoices]
    with QUEUED:
        for payment in payments:
            send(supplier, event(payment, base.PAYMENT_PROCESSING), event(payment, base.PAYMENT_SUCCEEDED))

    taken = in_threads(4, lambda n: events_drain(limit=7))

    assert all(isinstance(count, int) for count in taken), taken
    assert sum(taken) == 120
    with scopes_disabled():
        assert not ProviderEvent.objects.filter(processed_at__isnull=True).exists()
        assert Allocation.objects.count() == 60
        assert set(Payment.objects.values_list("state", flat=True)) == {"succeeded"}
        assert Invoice.objects.filter(open_amount__gt=0).count() == 0
    assert_ledger_clean()


def test_an_unknown_worker_error_in_a_batch_rolls_the_batch_back_before_the_one_by_one_pass(
    customer: Customer, supplier: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's writes fail at the end (after its payments were settled in memory and
    some rows written): nothing of the batch stays, then each event is applied alone."""
    invoices = invoices_for(customer, "ROLL")
    payments = [start(customer, [invoice]) for invoice in invoices]
    with QUEUED:
        for payment in payments:
            send(supplier, event(payment, base.PAYMENT_SUCCEEDED))
    real_rows_write = payment_events._rows_write
    calls: list[int] = []

    def rows_write(rows: list[ProviderEvent]) -> None:
        calls.append(len(rows))
        if len(rows) > 1:
            raise RuntimeError("lost the connection")
        real_rows_write(rows)

    monkeypatch.setattr(payment_events, "_rows_write", rows_write)
    assert events_drain() == 3
    assert calls == [3, 1, 1, 1]
    assert [current(payment).state for payment in payments] == ["succeeded"] * 3
    with scopes_disabled():
        assert Allocation.objects.count() == 3
        assert AuditEvent.objects.filter(action="openar.payment.succeeded").count() == 3
        assert Activity.objects.filter(summary__startswith="Payment of").count() == 3
    assert_ledger_clean()


@pytest.mark.django_db(transaction=True)  # the queue's worker closes its connections
def test_the_worker_applies_stored_events_and_sends_their_receipts(
    customer: Customer, supplier: Organization, contact: Contact
) -> None:
    """``openar worker --once`` with the database queue: the stored event is applied and
    the receipt it queued is sent."""
    invoice = issue_invoice(customer, "INV-W", "25.00", due_date=TODAY)
    payment = start(customer, [invoice])
    database_queue = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    with QUEUED, override_settings(TASKS=database_queue):
        send(supplier, event(payment, base.PAYMENT_SUCCEEDED))
        out = StringIO()
        call_command("worker", once=True, no_schedule=True, stdout=out)
    assert "payment events applied: 1" in out.getvalue()
    assert current(payment).state == "succeeded"
    with scopes_disabled():
        receipts = list(Message.objects.filter(customer=customer).values_list("subject", flat=True))
    assert receipts == ["Receipt: your payment of $25.00 to Acme Supplies"]
    assert_ledger_clean()


# --- what a batch must get right that one event at a time got by reading everything again ---


def test_a_refund_then_a_partial_return_in_one_batch_leaves_the_right_open_amounts(
    customer: Customer, customer_2: Customer, supplier: Organization
) -> None:
    """A payment of 100.00 fully applied; the provider confirms a refund of 30.00, then a
    dispute takes 20.00 of what is left. One at a time and in one batch alike: the invoice
    is open for 50.00 and the ledger balances."""
    results = []
    for n, (who, queued) in enumerate(((customer, False), (customer_2, True))):
        invoice = issue_invoice(who, f"RR{n}", "100.00", due_date=TODAY)
        payment = settled(who, [invoice])
        pending_refund(payment, "30.00", f"sbr_rr_{n}")
        both = [
            event(payment, base.REFUND_SUCCEEDED, refund=f"sbr_rr_{n}", amount="30.00"),
            event(payment, base.PAYMENT_RETURNED, amount="20.00", currency="USD", message="dispute"),
        ]
        if queued:
            with QUEUED:
                for one in both:
                    send(supplier, one)
            assert events_drain() == 2
        else:
            for one in both:
                send(supplier, one)
        now = current(payment)
        with scopes_disabled():
            outcomes = list(
                ProviderEvent.objects.filter(payment=payment).order_by("pk").values_list("outcome", flat=True)
            )
            open_amount = Invoice.objects.get(pk=invoice.pk).open_amount
        results.append((now.state, now.refunded_amount, now.returned_amount, open_amount, outcomes[-2:]))
    assert results[0] == results[1]
    assert results[0][:4] == ("succeeded", Decimal("30.00"), Decimal("20.00"), Decimal("50.00"))
    assert_ledger_clean()


def test_a_waiting_event_that_fails_keeps_its_error_and_the_others_go_on(
    customer: Customer, supplier: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = (
        start(customer, [issue_invoice(customer, f"WT-{n}", "40.00", due_date=TODAY)]) for n in range(2)
    )
    with QUEUED:
        for payment in (first, second):
            send(supplier, event(payment, base.PAYMENT_RETURNED, message="R01"))  # before the success
        for payment in (first, second):
            send(supplier, event(payment, base.PAYMENT_SUCCEEDED))
    real_return = online._return
    calls: list[int] = []

    def flaky(payment: Payment, message: str, amount: Decimal | None = None) -> str:
        calls.append(payment.pk)
        if len(calls) == 1:
            raise RuntimeError("deadlock detected")
        return real_return(payment, message, amount)

    monkeypatch.setattr(online, "_return", flaky)
    assert events_drain() == 4  # never raises: the failing return keeps its error

    assert [current(payment).state for payment in (first, second)] == ["succeeded", "returned"]
    with scopes_disabled():
        failed = ProviderEvent.objects.get(payment=first, type=base.PAYMENT_RETURNED)
    assert failed.outcome == "error: RuntimeError: deadlock detected"
    assert (failed.attempts, failed.processed_at) == (1, None)
    assert events_retry() == 1  # the hourly job: applied now
    assert current(first).state == "returned"
    assert_ledger_clean()


def test_after_a_failed_batch_each_event_is_applied_from_its_row_as_stored(
    customer: Customer, supplier: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch [success P, return P, success Q] fails on Q and is rolled back; alone, P's
    success fails once more (a lock timeout), so P's return must wait again, unprocessed,
    and be applied when the retry settles P: the return is never lost."""
    p_invoice = issue_invoice(customer, "AL-1", "40.00", due_date=TODAY)
    q_invoice = issue_invoice(customer, "AL-2", "60.00", due_date=TODAY)
    p, q = start(customer, [p_invoice]), start(customer, [q_invoice])
    with QUEUED:
        send(supplier, event(p, base.PAYMENT_SUCCEEDED))
        send(supplier, event(p, base.PAYMENT_RETURNED, message="R01"))
        send(supplier, event(q, base.PAYMENT_SUCCEEDED))
    real_apply = online.event_apply
    p_successes: list[int] = []

    def apply(payment: Payment, row: ProviderEvent, writes: Any) -> str:
        if payment.pk == p.pk and row.type == base.PAYMENT_SUCCEEDED:
            p_successes.append(row.pk)
            if len(p_successes) == 2:
                raise RuntimeError("lock timeout")
        if payment.pk == q.pk:
            raise RuntimeError("q is broken")
        return real_apply(payment, row, writes)

    monkeypatch.setattr(online, "event_apply", apply)
    events_drain()
    with scopes_disabled():
        returned = ProviderEvent.objects.get(payment=p, type=base.PAYMENT_RETURNED)
    assert (returned.outcome, returned.processed_at) == ("waiting: the payment has not settled yet", None)

    monkeypatch.setattr(online, "event_apply", real_apply)
    assert events_retry() == 2  # P's success and Q's success
    assert [current(p).state, current(q).state] == ["returned", "succeeded"]
    assert_ledger_clean()


def test_an_event_naming_its_payment_oddly_is_applied_by_the_providers_id(
    customer: Customer, supplier: Organization
) -> None:
    """ "²" is a digit to Python's ``isdigit`` but no number: it never stops the queue."""
    payment = start(customer, [issue_invoice(customer, "ODD-1", "10.00", due_date=TODAY)])
    with QUEUED:
        send(supplier, event(payment, base.PAYMENT_SUCCEEDED, openar_payment_id="\u00b2"))
    assert events_drain() == 1
    assert current(payment).state == "succeeded"
    assert_ledger_clean()


def test_a_payment_for_nothing_in_a_batch_never_makes_it_forget_another_payments_invoice(
    customer: Customer, supplier: Organization
) -> None:
    big = issue_invoice(customer, "NT-1", "100.00", due_date=TODAY)
    smalls = [issue_invoice(customer, f"NT-{n}", "10.00", due_date=TODAY) for n in (2, 3)]
    first, for_nothing, second = (start(customer, [invoice]) for invoice in (big, *smalls))
    with scopes_disabled():
        PaymentTarget.objects.filter(payment=for_nothing).delete()  # all of it credit
        PaymentTarget.objects.filter(payment=second).update(invoice=big, amount=Decimal("100.00"))
    with QUEUED:
        for payment in (first, for_nothing, second):
            send(supplier, event(payment, base.PAYMENT_SUCCEEDED))
    assert events_drain() == 3
    with scopes_disabled():
        assert Invoice.objects.get(pk=big.pk).open_amount == 0
        applied = sorted(Allocation.objects.filter(invoice=big).values_list("amount", flat=True))
    assert applied == [Decimal("100.00")]  # the second found nothing left open: credit
    assert_ledger_clean()
