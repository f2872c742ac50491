"""Payments a debtor made directly to the creditor: reported by the creditor client, shown in
the desk's queue with the agency's commission, confirmed (a real payment, applied, the ledger
clean) or rejected with a reason; never twice, never for another creditor's account."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail
from django_scopes import scope, scopes_disabled

from factories import (
    NOON_ON_TODAY,
    TODAY,
    Users,
    days_ago,
    fresh,
    in_threads,
    make_member,
    row_counts,
    signed_in,
    text_of,
)
from openar.client.models import DirectPaymentReport
from openar.client.payments import (
    commission_of,
    direct_payment_confirm,
    direct_payment_reject,
    direct_payment_report,
)
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Customer
from openar.payments.models import Allocation, Payment
from openar.payments.services import AllocationInput
from openar.tenants.models import Creditor, Organization, Role

from .money_book import MoneyBook, build_money_book

Capture = Callable[..., Any]


@pytest.fixture
def book(users: Users, agency: Organization, agency_clients: tuple[Creditor, Creditor]) -> MoneyBook:
    with time_machine.travel(NOON_ON_TODAY, tick=False):
        return build_money_book(users, agency, agency_clients)


@pytest.fixture(autouse=True)
def _today(clock: time_machine.Traveller) -> None:
    """Every test runs at noon on factories.TODAY (30 June 2025)."""


def report_url(customer: Customer) -> str:
    return f"/client/accounts/{customer.pk}/payments/report/"


def reported(book: MoneyBook, amount: str = "120.00", **extra: Any) -> DirectPaymentReport:
    with scope(organization=book.agency):
        return direct_payment_report(
            customer=book.pat,
            creditor=book.city_water,
            amount=Decimal(amount),
            received_on=days_ago(2),
            method=DirectPaymentReport.Method.CHEQUE,
            reference="CHQ 5521",
            note="Paid at our front desk",
            actor=book.client,
            **extra,
        )


def all_reports() -> list[DirectPaymentReport]:
    with scopes_disabled():
        return list(DirectPaymentReport.objects.order_by("pk"))


def audit(action: str) -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.filter(action=action).order_by("pk"))


# --- the creditor reports --------------------------------------------------------------------


def test_the_creditor_reports_a_payment_and_the_collector_is_told(
    book: MoneyBook, django_capture_on_commit_callbacks: Capture
) -> None:
    client = signed_in(book.client)
    page = client.get(report_url(book.pat))
    assert page.status_code == 200
    text = text_of(page.content)
    assert "Report a payment you received Pat Jones · CW-100" in text
    assert "Our commission (25%)" in text and "The account owes $150.00" in text
    token = page.context["form"]["form_token"].value()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            report_url(book.pat),
            {
                "amount": "$1,20.00".replace(",", ""),
                "received_on": days_ago(2).isoformat(),
                "method": "cheque",
                "reference": "CHQ 5521",
                "note": "Paid at our front desk",
                "form_token": token,
            },
        )
    assert response.status_code == 302
    assert response["Location"] == report_url(book.pat)
    [report] = all_reports()
    assert (report.customer_id, report.creditor_id, report.amount, report.currency) == (
        book.pat.pk,
        book.city_water.pk,
        Decimal("120.0000"),
        "USD",
    )
    assert (report.received_on, report.method, report.reference, report.note) == (
        days_ago(2),
        "cheque",
        "CHQ 5521",
        "Paid at our front desk",
    )
    assert report.state == "reported" and report.payment_id is None and report.reported_by == book.client
    with scopes_disabled():
        entry = Activity.objects.get(customer=book.pat, kind=Activity.Kind.PAYMENT)
        assert Payment.objects.count() == 0  # nothing in the ledger until staff confirm
    assert entry.visibility == Activity.Visibility.CREDITOR  # staff and creditor, never the debtor
    assert (
        entry.summary == "City Water Utility reported a direct payment of $120.00 (cheque), to be confirmed"
    )
    assert entry.body == "Received on 28 June 2025.\nReference: CHQ 5521\nPaid at our front desk"
    [event] = audit("openar.client.payment_reported")
    assert event.actor == book.client and event.object_id == str(report.pk)
    assert event.data["amount"] == "120.00" and event.data["customer"] == "CW-100"
    [email] = mail.outbox
    assert email.to == ["casey@northwind.example"]  # the assigned collector
    assert email.subject == "Direct payment reported: Pat Jones (CW-100), $120.00"
    assert "Agency commission at 25%: $30.00." in email.body
    assert f"/desk/client-payments/{report.pk}/" in email.body
    # The page now lists it, with what the creditor keeps.
    listed = text_of(client.get(report_url(book.pat)).content)
    assert "$120.00 cheque, received 28 Jun 2025 · ref. CHQ 5521 Waiting for confirmation" in listed
    assert "commission $30.00, you keep $90.00" in listed


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("amount", "10.005", "Enter at most 2 decimals for USD."),
        ("amount", "0", "Enter an amount above zero."),
        (
            "amount",
            "12,50",
            "Use a point before the decimals, and commas only between thousands, like 1,234.50.",
        ),
        (
            "amount",
            "150.01",
            "That is more than the $150.00 the account owes (less payments already reported).",
        ),
        (
            "received_on",
            (TODAY + datetime.timedelta(days=1)).isoformat(),
            "A payment cannot be received in the future.",
        ),
        ("received_on", "2021-01-01", "That date is more than three years ago: check the year."),
        ("method", "bitcoin", "Select a valid choice. bitcoin is not one of the available choices."),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_written(
    book: MoneyBook, field: str, value: str, message: str
) -> None:
    before = row_counts()
    posted = {"amount": "20.00", "received_on": days_ago(1).isoformat(), "method": "wire", "reference": "W-1"}
    posted[field] = value
    response = signed_in(book.client).post(report_url(book.pat), posted)
    assert response.status_code == 400
    assert message in text_of(response.content)
    assert all_reports() == [] and row_counts() == before
    # What was typed is kept on the page.
    assert 'value="W-1"' in response.content.decode()


def test_the_same_form_sent_twice_makes_one_report(book: MoneyBook) -> None:
    first = reported(book, form_token="a" * 32)
    again = reported(book, form_token="a" * 32)
    assert first.pk == again.pk and len(all_reports()) == 1
    assert len(audit("openar.client.payment_reported")) == 1


def test_reports_waiting_count_against_what_is_owed(book: MoneyBook) -> None:
    reported(book, "100.00")
    with pytest.raises(ServiceError, match=r"more than the \$50.00 the account owes"):
        reported(book, "60.00")
    assert len(all_reports()) == 1


def test_another_creditors_account_or_organization_answers_404_and_writes_nothing(
    book: MoneyBook, users: Users, customer: Customer
) -> None:
    client = signed_in(book.client)
    posted = {"amount": "10.00", "received_on": days_ago(1).isoformat(), "method": "cash"}
    for foreign in (book.sam, customer):  # Mercy's account at the agency; another organization's
        assert client.get(report_url(foreign)).status_code == 404
        assert client.post(report_url(foreign), posted).status_code == 404
    assert client.get("/client/accounts/999999/payments/report/").status_code == 404
    # Mercy's own client cannot report on City Water's account either.
    assert signed_in(book.mercy_client).post(report_url(book.pat), posted).status_code == 404
    # Staff use the desk, not this door.
    assert signed_in(book.collector).get(report_url(book.pat)).status_code == 403
    assert all_reports() == []
    with scope(organization=book.agency), pytest.raises(ServiceError, match="not placed by you"):
        direct_payment_report(
            customer=book.sam,
            creditor=book.city_water,
            amount=Decimal("1.00"),
            received_on=TODAY,
            method="cash",
            actor=book.client,
        )


# --- the desk's queue and confirmation -------------------------------------------------------


def test_the_desk_queue_shows_the_commission_and_what_the_creditor_keeps(
    book: MoneyBook, users: Users
) -> None:
    report = reported(book)
    with scope(organization=book.agency):
        direct_payment_report(
            customer=book.sam,
            creditor=book.mercy,
            amount=Decimal("33.33"),
            received_on=TODAY,
            method="wire",
            actor=book.mercy_client,
        )
    page = signed_in(book.collector).get("/desk/client-payments/")
    assert page.status_code == 200
    text = text_of(page.content)
    assert "2 waiting." in text
    assert "$120.00 reported by City Water Utility for Pat Jones" in text
    assert "Commission 25%: $30.00 owed by the client · the client keeps $90.00" in text
    # 33.33 × 10% = 3.333 → 3.33; Mercy keeps 30.00.
    assert "Commission 10%: $3.33 owed by the client · the client keeps $30.00" in text
    detail = text_of(signed_in(book.collector).get(f"/desk/client-payments/{report.pk}/").content)
    assert "Commission (25%) $30.00 , owed to the agency by the client" in detail
    assert "The client keeps $90.00" in detail and "Paid at our front desk" in detail
    # The supplier's staff (another organization) see none of it.
    other = signed_in(users.collector)
    assert "Pat Jones" not in text_of(other.get("/desk/client-payments/").content)
    assert other.get(f"/desk/client-payments/{report.pk}/").status_code == 404
    # A creditor client never reaches the desk's queue.
    assert signed_in(book.client).get("/desk/client-payments/").status_code == 403


def test_confirming_oldest_first_records_one_direct_payment_and_tells_the_creditor(
    book: MoneyBook, django_capture_on_commit_callbacks: Capture, assert_ledger_clean: Callable[..., None]
) -> None:
    report = reported(book)
    mail.outbox.clear()
    desk = signed_in(book.collector)
    form = desk.get(f"/desk/client-payments/{report.pk}/").context["confirm"]
    with django_capture_on_commit_callbacks(execute=True):
        response = desk.post(
            f"/desk/client-payments/{report.pk}/",
            {"action": "confirm", "apply": "oldest", "once": form["once"].value()},
        )
    assert response.status_code == 302
    with scopes_disabled():
        [payment] = Payment.objects.all()
        report.refresh_from_db()
        parts = list(
            Allocation.objects.filter(payment=payment).order_by("pk").values_list("invoice__number", "amount")
        )
    assert (payment.method, payment.amount, payment.state, payment.reference) == (
        "direct",
        Decimal("120.0000"),
        "succeeded",
        "CHQ 5521",
    )
    assert payment.customer_id == book.pat.pk and payment.recorded_by == book.collector
    assert payment.received_at == datetime.datetime(2025, 6, 28, 12, 0, tzinfo=datetime.UTC)  # agency: UTC
    assert parts == [("CW-INV-1", Decimal("100.0000")), ("CW-INV-2", Decimal("20.0000"))]
    assert fresh(book.pat_old).open_amount == 0 and fresh(book.pat_new).open_amount == Decimal("30.00")
    assert (report.state, report.payment_id, report.decided_by) == ("confirmed", payment.pk, book.collector)
    [event] = audit("openar.client.payment_confirmed")
    assert event.data["commission"] == "30.00" and event.data["payment"] == payment.pk
    [email] = mail.outbox
    assert email.to == ["client@citywater.example"]
    assert "is confirmed and applied to the account: CW-INV-1 ($100.00), CW-INV-2 ($20.00)" in email.body
    assert "Our commission on it (25%) is $30.00." in email.body
    with scopes_disabled():
        summaries = list(
            Activity.objects.filter(customer=book.pat, kind=Activity.Kind.PAYMENT)
            .order_by("pk")
            .values_list("summary", "visibility")
        )
    assert ("Direct payment of $120.00 reported by City Water Utility confirmed", "creditor") in summaries
    assert_ledger_clean()
    page = text_of(desk.get(f"/desk/client-payments/{report.pk}/").content)
    assert "Confirmed By Collector of Northwind Collections" in page and "CW-INV-2: $20.00" in page
    # The same form again (a double click): nothing more.
    again = desk.post(
        f"/desk/client-payments/{report.pk}/",
        {"action": "confirm", "apply": "oldest", "once": form["once"].value()},
    )
    assert again.status_code == 302
    with scopes_disabled():
        assert Payment.objects.count() == 1


def test_confirming_with_chosen_amounts_applies_them_and_keeps_the_rest_as_credit(book: MoneyBook) -> None:
    report = reported(book, "120.00")
    desk = signed_in(book.collector)
    url = f"/desk/client-payments/{report.pk}/"
    # More than an invoice has open is refused, and nothing is written.
    refused = desk.post(
        url, {"action": "confirm", "apply": "invoices", f"invoice_{book.pat_new.pk}": "60.00"}
    )
    assert refused.status_code == 400
    assert "Invoice CW-INV-2 has $50.00 open." in text_of(refused.content)
    refused = desk.post(
        url,
        {
            "action": "confirm",
            "apply": "invoices",
            f"invoice_{book.pat_old.pk}": "100.00",
            f"invoice_{book.pat_new.pk}": "50.00",
        },
    )
    assert "add up to $150.00, more than the $120.00 reported" in text_of(refused.content)
    with scopes_disabled():
        assert Payment.objects.count() == 0
        assert DirectPaymentReport.objects.get().state == "reported"
    done = desk.post(url, {"action": "confirm", "apply": "invoices", f"invoice_{book.pat_new.pk}": "50.00"})
    assert done.status_code == 302
    with scopes_disabled():
        payment = Payment.objects.get()
        parts = list(payment.allocations.values_list("invoice__number", "amount"))
    assert parts == [("CW-INV-2", Decimal("50.0000"))]
    assert fresh(book.pat_old).open_amount == Decimal("100.00")  # untouched: 70.00 kept as credit


def test_a_second_confirmation_is_refused_and_records_nothing(book: MoneyBook) -> None:
    report = reported(book)
    with scope(organization=book.agency):
        direct_payment_confirm(report=report, allocations=None, actor=book.collector)
        with pytest.raises(ServiceError, match="already confirmed by Collector of Northwind") as refused:
            direct_payment_confirm(report=report, allocations=None, actor=book.collector)
        assert refused.value.code == "decided"
        with pytest.raises(ServiceError, match="already confirmed"):
            direct_payment_reject(report=report, reason="Wrong account", actor=book.collector)
    with scopes_disabled():
        assert Payment.objects.count() == 1 and Allocation.objects.count() == 2


def test_a_refused_allocation_leaves_the_report_waiting(book: MoneyBook) -> None:
    report = reported(book)
    with scope(organization=book.agency), pytest.raises(ServiceError, match="customer's own invoices"):
        direct_payment_confirm(
            report=report, allocations=[AllocationInput(book.lee_inv, Decimal("10.00"))], actor=book.collector
        )
    with scopes_disabled():
        assert DirectPaymentReport.objects.get().state == "reported"
        assert Payment.objects.count() == 0


def test_rejecting_needs_a_reason_and_tells_the_creditor(
    book: MoneyBook, django_capture_on_commit_callbacks: Capture
) -> None:
    report = reported(book)
    mail.outbox.clear()
    desk = signed_in(book.collector)
    url = f"/desk/client-payments/{report.pk}/"
    empty = desk.post(url, {"action": "reject", "reason": "  "})
    assert empty.status_code == 400 and "This field is required." in text_of(empty.content)
    with django_capture_on_commit_callbacks(execute=True):
        response = desk.post(url, {"action": "reject", "reason": "The cheque bounced"})
    assert response.status_code == 302 and response["Location"] == "/desk/client-payments/"
    with scopes_disabled():
        report.refresh_from_db()
        assert Payment.objects.count() == 0
        entry = Activity.objects.filter(customer=book.pat).order_by("-pk").first()
    assert (report.state, report.rejection_reason, report.payment_id) == (
        "rejected",
        "The cheque bounced",
        None,
    )
    assert entry is not None and entry.visibility == "creditor" and entry.body == "Reason: The cheque bounced"
    [email] = mail.outbox
    assert email.to == ["client@citywater.example"] and "Reason: The cheque bounced" in email.body
    # The creditor sees why, and the amount is again available to report.
    page = text_of(signed_in(book.client).get(report_url(book.pat)).content)
    assert "Rejected" in page and "Not confirmed: The cheque bounced" in page
    assert "The account owes $150.00" in page


def test_a_manager_reads_the_queue_but_cannot_confirm(book: MoneyBook) -> None:
    report = reported(book)
    manager = signed_in(book.manager)
    assert manager.get("/desk/client-payments/").status_code == 403
    assert (
        manager.post(
            f"/desk/client-payments/{report.pk}/", {"action": "confirm", "apply": "oldest"}
        ).status_code
        == 403
    )
    with scopes_disabled():
        assert Payment.objects.count() == 0


def test_commission_is_rounded_half_up_to_the_currency() -> None:
    assert commission_of(Decimal("10.02"), Decimal("0.2500"), "USD").fee == Decimal("2.51")  # 2.505
    assert commission_of(Decimal("10.02"), Decimal("0.2500"), "USD").net == Decimal("7.51")
    assert commission_of(Decimal("1001"), Decimal("0.1250"), "JPY").fee == Decimal("125")  # 125.125
    assert commission_of(Decimal("80"), Decimal("0.125"), "USD").rate_percent == "12.5%"


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_many_staff_confirming_at_once_record_one_payment(
    users: Users, agency: Organization, agency_clients: tuple[Creditor, Creditor]
) -> None:
    book = build_money_book(users, agency, agency_clients)
    report = reported(book)
    staff = [make_member(agency, Role.COLLECTOR, f"c{n}@northwind.example") for n in range(8)]

    def confirm(n: int) -> int:
        with scope(organization=agency):
            return direct_payment_confirm(report=report, allocations=None, actor=staff[n]).pk

    results = in_threads(8, confirm)
    wins = [r for r in results if isinstance(r, int)]
    losses = [r for r in results if isinstance(r, Exception)]
    assert len(wins) == 1 and len(losses) == 7
    assert all(isinstance(e, ServiceError) and e.code == "decided" for e in losses), losses
    with scopes_disabled():
        assert Payment.objects.count() == 1
        assert Allocation.objects.count() == 2
        assert AuditEvent.objects.filter(action="openar.client.payment_confirmed").count() == 1
        assert Activity.objects.filter(summary__endswith="Utility confirmed").count() == 1
        assert DirectPaymentReport.objects.get().state == "confirmed"
