"""Online payments through the sandbox provider and the one event path: states, allocation
when the money arrives, events stored once and applied once whatever their order or
number, returns and refunds, and the ledger after each.

Events reach the service the way a provider's do: a signed body posted to
``/hooks/payments/sandbox/<organization>/`` (or ``openar.payments.webhooks.receive``)."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import TODAY, assert_ledger_clean, dec, in_threads, issue_invoice
from openar.billing.models import Invoice
from openar.customers.models import Activity, Customer
from openar.payments.models import Allocation, Payment, PaymentSettings, ProviderEvent
from openar.payments.online import choose_lines, payment_refund, payment_resume, payment_start, unapplied
from openar.payments.providers import base
from openar.payments.providers.sandbox import SIGNATURE_HEADER, event_body, sign
from openar.payments.sandbox import bank_outcome, card_outcome, deliver_due
from openar.tenants.models import Organization


def fresh(invoice: Invoice) -> Invoice:
    with scopes_disabled():
        return Invoice.objects.get(pk=invoice.pk)


def start(customer: Customer, invoices: list[Invoice], *, method: str = "card", token: str = "") -> Payment:
    with scope(organization=customer.organization):
        lines = choose_lines(
            customer, TODAY, invoice_ids=[invoice.pk for invoice in invoices], checkout_token=token
        )
        started = payment_start(
            customer=customer,
            lines=lines,
            method=method,
            provider_name="sandbox",
            checkout_token=token or uuid.uuid4().hex,
            return_url="http://testserver/portal/pay/",
            cancel_url="http://testserver/portal/pay/",
        )
    return started.payment


def state(payment: Payment) -> str:
    with scopes_disabled():
        return str(Payment.objects.get(pk=payment.pk).state)


def signed(events: list[dict[str, object]], *, stamp: int | None = None) -> tuple[bytes, str]:
    body = event_body(events)
    return body, sign(body, stamp)


def event(payment: Payment, kind: str, **extra: object) -> dict[str, object]:
    return {
        "id": f"sbe_{uuid.uuid4().hex}",
        "type": kind,
        "payment": payment.provider_payment_id,
        "at": datetime.datetime.now(datetime.UTC).isoformat(),
        "openar_payment_id": str(payment.pk),
        **extra,
    }


def post(organization: Organization, body: bytes, signature: str) -> tuple[int, dict[str, object]]:
    response = Client().post(
        f"/hooks/payments/sandbox/{organization.slug}/",
        body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: signature},
    )
    return response.status_code, json.loads(response.content or b"{}")


@pytest.fixture
def two(customer: Customer) -> list[Invoice]:
    return [
        issue_invoice(customer, "INV-1", "100.00", due_date=TODAY - datetime.timedelta(days=10)),
        issue_invoice(customer, "INV-2", "50.00", due_date=TODAY - datetime.timedelta(days=5)),
    ]


def test_a_card_payment_pays_its_invoices_when_the_money_arrives(
    customer: Customer, two: list[Invoice]
) -> None:
    payment = start(customer, two)
    assert (payment.state, payment.amount) == ("pending", dec("150.00"))
    assert payment.provider_payment_id.startswith("sbx_")
    assert [fresh(i).open_amount for i in two] == [dec("100.00"), dec("50.00")]  # nothing paid yet

    with scope(organization=customer.organization):
        assert card_outcome(payment, "4242 4242 4242 4242") == "paid"

    assert state(payment) == "succeeded"
    assert [fresh(i).open_amount for i in two] == [Decimal(0), Decimal(0)]
    assert_ledger_clean()


def test_a_declined_card_pays_nothing(customer: Customer, two: list[Invoice]) -> None:
    payment = start(customer, two)
    with scope(organization=customer.organization):
        assert card_outcome(payment, "4000 0000 0000 0002") == "declined"
    with scopes_disabled():
        failed = Payment.objects.get(pk=payment.pk)
        assert not Allocation.objects.filter(payment=payment).exists()
    assert (failed.state, failed.failure_message) == ("failed", "Your card was declined.")
    assert [fresh(i).open_amount for i in two] == [dec("100.00"), dec("50.00")]


def test_each_event_sent_ten_times_in_a_row_counts_once(
    customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    payment = start(customer, two)
    body, signature = signed([event(payment, base.PAYMENT_SUCCEEDED)])
    answers = [post(supplier, body, signature) for _ in range(10)]
    assert [status for status, _ in answers] == [200] * 10
    assert [data["outcomes"] for _, data in answers] == [["succeeded"]] + [["duplicate"]] * 9
    with scopes_disabled():
        assert Allocation.objects.filter(payment=payment).count() == 2
        assert ProviderEvent.objects.count() == 1
    assert_ledger_clean()


def test_events_out_of_order_end_where_they_should(
    customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    """A return before the success it follows waits for it; a late "processing" changes
    nothing."""
    payment = start(customer, two, method="ach")
    returned = event(payment, base.PAYMENT_RETURNED, message="Account closed (R02)")
    succeeded = event(payment, base.PAYMENT_SUCCEEDED)
    processing = event(payment, base.PAYMENT_PROCESSING)

    assert post(supplier, *signed([returned]))[1]["outcomes"] == ["waiting: the payment has not settled yet"]
    assert state(payment) == "pending"
    assert post(supplier, *signed([succeeded]))[1]["outcomes"] == ["succeeded"]
    assert post(supplier, *signed([processing]))[1]["outcomes"] == ["ignored: the payment is returned"]

    assert state(payment) == "returned"
    assert [fresh(i).open_amount for i in two] == [dec("100.00"), dec("50.00")]
    with scopes_disabled():
        assert ProviderEvent.objects.filter(processed_at__isnull=True).count() == 0
    assert_ledger_clean()


@pytest.mark.parametrize(
    "how",
    ["forged", "tampered", "stale", "unsigned"],
)
def test_events_that_do_not_verify_are_refused_and_not_stored(
    customer: Customer, two: list[Invoice], supplier: Organization, how: str
) -> None:
    payment = start(customer, two)
    body, signature = signed([event(payment, base.PAYMENT_SUCCEEDED)])
    if how == "forged":
        signature = signature.split("v1=")[0] + "v1=" + "0" * 64
    elif how == "tampered":
        body = body.replace(b"payment.succeeded", b"payment.returned")
    elif how == "stale":
        body, signature = signed([event(payment, base.PAYMENT_SUCCEEDED)], stamp=int(time.time()) - 3600)
    else:
        signature = ""

    status, data = post(supplier, body, signature)

    assert status == 400 and "error" in data
    with scopes_disabled():
        assert not ProviderEvent.objects.exists()
    assert state(payment) == "pending"


def test_a_bank_payment_is_processing_until_it_settles_and_a_return_reopens_the_invoices(
    customer: Customer, two: list[Invoice]
) -> None:
    payment = start(customer, two, method="ach")
    with scope(organization=customer.organization):
        assert bank_outcome(payment, "000111111113") == "processing"
    assert state(payment) == "processing"
    assert [fresh(i).open_amount for i in two] == [dec("100.00"), dec("50.00")]  # never paid while in flight

    now = datetime.datetime.now(datetime.UTC)
    assert deliver_due(now + datetime.timedelta(days=1)) == 0
    assert deliver_due(now + datetime.timedelta(days=3, minutes=1)) == 1
    assert state(payment) == "succeeded"
    assert [fresh(i).open_amount for i in two] == [Decimal(0), Decimal(0)]
    assert_ledger_clean()

    assert deliver_due(now + datetime.timedelta(days=5, minutes=1)) == 1
    assert state(payment) == "returned"
    assert [fresh(i).open_amount for i in two] == [dec("100.00"), dec("50.00")]
    with scope(organization=customer.organization):
        assert Activity.objects.filter(customer=customer, summary__contains="was returned").exists()
        assert not Allocation.objects.filter(payment=payment, reversed_at__isnull=True).exists()
    assert_ledger_clean()


def test_a_partial_refund_leaves_the_right_open_amounts(customer: Customer, two: list[Invoice]) -> None:
    payment = start(customer, two)
    with scope(organization=customer.organization):
        card_outcome(payment, "4242424242424242")
        settled = Payment.objects.get(pk=payment.pk)
        payment_refund(payment=settled, amount=dec("30.00"), reason="Damaged box", actor=None)
        settled.refresh_from_db()
    # The latest allocation (INV-2, 50.00) gives back 30.00: INV-2 owes 30.00 again.
    assert (settled.state, settled.refunded_amount) == ("succeeded", dec("30.00"))
    assert [fresh(i).open_amount for i in two] == [Decimal(0), dec("30.00")]
    assert_ledger_clean()

    with scope(organization=customer.organization):
        payment_refund(payment=settled, amount=dec("120.00"), reason="Order cancelled", actor=None)
        settled.refresh_from_db()
    assert (settled.state, settled.refunded_amount) == ("refunded", dec("150.00"))
    assert [fresh(i).open_amount for i in two] == [dec("100.00"), dec("50.00")]
    assert_ledger_clean()


def test_money_beyond_what_is_open_when_it_arrives_is_kept_as_credit(
    customer: Customer, two: list[Invoice]
) -> None:
    from factories import record_payment

    payment = start(customer, two)
    record_payment(customer, "50.00", allocations=[(two[1], "50.00")], reference="CHK-9")  # paid meanwhile
    with scope(organization=customer.organization):
        card_outcome(payment, "4242424242424242")
        settled = Payment.objects.get(pk=payment.pk)
        assert unapplied(settled) == dec("50.00")
    assert fresh(two[0]).open_amount == 0
    assert_ledger_clean()


def test_partial_payment_follows_the_policy(
    customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    with scope(organization=supplier):
        PaymentSettings.objects.update_or_create(
            organization=supplier,
            defaults={"allow_partial": True, "short_pay_reasons": [["price", "Price is wrong"]]},
        )
        lines = choose_lines(customer, TODAY, amounts={two[0].pk: dec("40.00")})
        from openar.core.errors import ServiceError

        with pytest.raises(ServiceError) as no_reason:
            payment_start(
                customer=customer,
                lines=lines,
                method="card",
                provider_name="sandbox",
                checkout_token="t1",
                return_url="x",
                cancel_url="x",
            )
        assert no_reason.value.field == "short_pay_reason"
        started = payment_start(
            customer=customer,
            lines=lines,
            method="card",
            provider_name="sandbox",
            checkout_token="t2",
            return_url="x",
            cancel_url="x",
            short_pay_reason="price",
        )
        PaymentSettings.objects.filter(organization=supplier).update(allow_partial=False)
        with pytest.raises(ServiceError) as refused:
            payment_start(
                customer=customer,
                lines=lines,
                method="card",
                provider_name="sandbox",
                checkout_token="t3",
                return_url="x",
                cancel_url="x",
                short_pay_reason="price",
            )
    assert started.payment.short_pay_reason == "price"
    assert refused.value.code == "no_partial"


def test_an_invoice_in_flight_cannot_be_paid_twice(customer: Customer, two: list[Invoice]) -> None:
    start(customer, two, method="ach")
    from openar.core.errors import ServiceError

    with scope(organization=customer.organization), pytest.raises(ServiceError) as refused:
        choose_lines(customer, TODAY, invoice_ids=[two[0].pk])
    assert refused.value.message == (
        "Invoice INV-1 has nothing left to pay now: a payment in progress or an open dispute covers it."
    )


# --- PostgreSQL: concurrency ----------------------------------------------------------------------


@pytest.mark.postgresql
def test_the_same_event_ten_times_at_once_counts_once(
    transactional_db: None, customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    payment = start(customer, two)
    body, signature = signed([event(payment, base.PAYMENT_SUCCEEDED)])

    results = in_threads(10, lambda n: post(supplier, body, signature))

    assert all(isinstance(r, tuple) and r[0] == 200 for r in results), results
    outcomes = sorted(str(r[1]["outcomes"]) for r in results if isinstance(r, tuple))
    assert outcomes.count("['succeeded']") == 1
    with scopes_disabled():
        assert Allocation.objects.filter(payment=payment).count() == 2
    assert_ledger_clean()


@pytest.mark.postgresql
def test_fifty_clicks_on_pay_make_one_payment(
    transactional_db: None, customer: Customer, two: list[Invoice]
) -> None:
    """As the pay form's confirm does: the same form again finds its payment; otherwise the
    lines are chosen and the payment started (and a click racing another meets the unique
    token and gets the same payment)."""
    token = uuid.uuid4().hex

    def click(n: int) -> int:
        with scope(organization=customer.organization):
            again = payment_resume(customer=customer, checkout_token=token, return_url="x", cancel_url="x")
        if again is not None:
            return again.payment.pk
        return start(customer, two, token=token).pk

    results = in_threads(50, click)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(set(results)) == 1
    with scopes_disabled():
        assert Payment.objects.count() == 1
        payment = Payment.objects.get()
    assert payment.provider_payment_id.startswith("sbx_")


def test_an_abandoned_checkout_expires_and_money_that_arrives_later_still_counts(
    customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    from openar.payments.online import expire_abandoned

    payment = start(customer, two)
    assert expire_abandoned(datetime.datetime.now(datetime.UTC)) == 0  # not a day old yet
    assert expire_abandoned(datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=25)) == 1
    assert state(payment) == "failed"
    with scope(organization=supplier):
        assert choose_lines(customer, TODAY, past_due=True)  # the invoices can be paid again

    assert post(supplier, *signed([event(payment, base.PAYMENT_SUCCEEDED)]))[1]["outcomes"] == ["succeeded"]
    assert state(payment) == "succeeded"
    assert [fresh(i).open_amount for i in two] == [Decimal(0), Decimal(0)]
    assert_ledger_clean()


def test_everything_past_due_leaves_out_what_a_payment_in_flight_covers(
    customer: Customer, two: list[Invoice]
) -> None:
    start(customer, [two[0]], method="ach")
    with scope(organization=customer.organization):
        lines = choose_lines(customer, TODAY, past_due=True)
        assert [line.invoice.number for line in lines] == ["INV-2"]
        start(customer, [two[1]], method="ach")
        from openar.core.errors import ServiceError

        with pytest.raises(ServiceError, match=r"Nothing past due is left to pay\."):
            choose_lines(customer, TODAY, past_due=True)


def test_an_event_verified_for_one_organization_never_touches_anothers_payment(
    customer: Customer, two: list[Invoice], other_supplier: Organization
) -> None:
    """An admin of another organization controls that organization's webhook secret and can
    sign anything; the event still only reaches payments of the organization it came for."""
    payment = start(customer, two)
    status, data = post(other_supplier, *signed([event(payment, base.PAYMENT_SUCCEEDED)]))
    assert (status, data["outcomes"]) == (200, ["no such payment"])
    assert state(payment) == "pending"
    assert [fresh(i).open_amount for i in two] == [dec("100.00"), dec("50.00")]


def test_a_refund_confirmed_after_a_return_never_brings_the_payment_back(
    customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    payment = start(customer, two)
    with scope(organization=supplier):
        card_outcome(payment, "4242424242424242")
        settled = Payment.objects.get(pk=payment.pk)
        refund = payment_refund(payment=settled, amount=dec("20.00"), reason="x", actor=None)
    post(supplier, *signed([event(payment, base.PAYMENT_RETURNED, message="Disputed")]))
    assert state(payment) == "returned"
    assert refund.state == "succeeded"  # the sandbox refunds at once: it came before the return
    with scope(organization=supplier):
        assert unapplied(Payment.objects.get(pk=payment.pk)) == 0
    assert [fresh(i).open_amount for i in two] == [dec("100.00"), dec("50.00")]
    assert_ledger_clean()


def test_refunding_all_of_a_discounted_payment_reverses_every_allocation(
    customer: Customer, two: list[Invoice], supplier: Organization
) -> None:
    with scope(organization=supplier):
        PaymentSettings.objects.update_or_create(
            organization=supplier, defaults={"fees": {"card": {"percent": "-2"}}}
        )
    payment = start(customer, two)
    assert (payment.amount, payment.fee_amount) == (dec("147.00"), dec("-3.00"))
    with scope(organization=supplier):
        card_outcome(payment, "4242424242424242")
        settled = Payment.objects.get(pk=payment.pk)
        payment_refund(payment=settled, amount=dec("147.00"), reason="Cancelled", actor=None)
    assert state(payment) == "refunded"
    assert [fresh(i).open_amount for i in two] == [dec("100.00"), dec("50.00")]
    assert_ledger_clean()


def test_a_discount_never_brings_a_payment_in_yen_to_zero(supplier: Organization) -> None:
    from openar.payments.online import method_fee

    rule = PaymentSettings(organization=supplier, fees={"card": {"percent": "-100"}})
    assert method_fee(rule, "card", Decimal("500"), "JPY") == Decimal("-499")
    assert method_fee(rule, "card", Decimal("5.00"), "USD") == Decimal("-4.99")
