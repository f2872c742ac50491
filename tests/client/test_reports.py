"""Recovery reports for a creditor client: placed, collected (less refunds), fees and net per
month in the agency's time zone and per account, their CSV exports and the chart; never a
figure of another creditor or organization."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import pytest
import time_machine
from django_scopes import scope, scopes_disabled

from factories import (
    NOON_ON_TODAY,
    Users,
    issue_credit_note,
    issue_invoice,
    record_payment,
    signed_in,
    text_of,
)
from openar.client.reports import month_starts, recovery_by_month
from openar.customers.models import Customer
from openar.payments.online import payment_refund
from openar.tenants.models import Creditor, Organization

from .money_book import MoneyBook, build_money_book

UTC = datetime.UTC


def at(year: int, month: int, day: int, hour: int) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, tzinfo=UTC)


@pytest.fixture
def book(
    users: Users, agency: Organization, agency_clients: tuple[Creditor, Creditor], customer: Customer
) -> MoneyBook:
    """City Water: Pat (150.00 placed in June, 100.00 paid on 31 May in Toronto), Lee (200.00
    placed in March, 300.00 in June, 80.00 paid in June less a 30.00 refund, a 40.00 invoice
    placed and paid in May 2024: before the twelve months). Mercy: Sam, 999.00 paid in June.
    Acme (another organization): a payment of its own."""
    with scopes_disabled():
        Organization.objects.filter(pk=agency.pk).update(timezone="America/Toronto")
        agency.refresh_from_db()
    with time_machine.travel(NOON_ON_TODAY, tick=False):
        built = build_money_book(users, agency, agency_clients)
    with time_machine.travel(at(2024, 5, 15, 15), tick=False):
        old = issue_invoice(built.lee, "CW-OLD", "40.00", due_date=datetime.date(2024, 5, 15))
        record_payment(built.lee, "40.00", allocations=[(old, "40.00")], received_at=at(2024, 5, 15, 15))
    with time_machine.travel(at(2025, 3, 15, 15), tick=False):
        march = issue_invoice(built.lee, "CW-INV-M", "200.00", due_date=datetime.date(2025, 4, 14))
    with time_machine.travel(at(2025, 6, 1, 2), tick=False):  # 31 May, 22:00 in Toronto
        record_payment(
            built.pat, "100.00", allocations=[(built.pat_old, "100.00")], received_at=at(2025, 6, 1, 2)
        )
    with time_machine.travel(at(2025, 6, 10, 15), tick=False):
        record_payment(built.sam, "999.00", received_at=at(2025, 6, 10, 15))
        record_payment(customer, "25.00", received_at=at(2025, 6, 10, 15))  # Acme's
    with time_machine.travel(at(2025, 6, 20, 15), tick=False):
        lee_payment = record_payment(
            built.lee, "80.00", allocations=[(built.lee_inv, "80.00")], received_at=at(2025, 6, 20, 15)
        )
    with time_machine.travel(at(2025, 6, 25, 15), tick=False), scope(organization=agency):
        payment_refund(payment=lee_payment, amount=Decimal("30.00"), reason="Paid twice", actor=None)
    issue_credit_note(march, "CN-1", "20.00")  # not money: never collected
    return built


@pytest.fixture(autouse=True)
def _today(book: MoneyBook, clock: time_machine.Traveller) -> None:
    """Every test runs at noon on factories.TODAY (30 June 2025), after the book is built."""


def figures(row: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return tuple(row)


def test_months_are_counted_in_the_agencys_time_zone_with_refunds_taken_back(book: MoneyBook) -> None:
    with scope(organization=book.agency):
        [(currency, rows)] = recovery_by_month(book.city_water).items()
    assert currency == "USD" and len(rows) == 12
    assert [row.month for row in rows] == month_starts(datetime.date(2025, 6, 30))
    assert rows[0].month == datetime.date(2024, 7, 1) and rows[-1].month == datetime.date(2025, 6, 1)
    table = {
        row.label: (row.placed, row.collected, row.fees, row.net)
        for row in rows
        if row.placed or row.collected
    }
    assert table == {
        "Mar 2025": (Decimal("200.00"), Decimal("0.00"), Decimal("0.00"), Decimal("0.00")),
        "May 2025": (Decimal("0.00"), Decimal("100.00"), Decimal("25.00"), Decimal("75.00")),
        # 80.00 collected, 30.00 refunded: 50.00; Mercy's 999.00 and Acme's 25.00 are not here.
        "Jun 2025": (Decimal("450.00"), Decimal("50.00"), Decimal("12.50"), Decimal("37.50")),
    }
    assert all(
        str(value).count(".") == 1 and len(str(value).split(".")[1]) == 2
        for row in rows
        for value in (row.placed, row.collected, row.fees, row.net)
    )


def test_the_page_shows_months_chart_and_accounts_of_this_creditor_only(book: MoneyBook) -> None:
    response = signed_in(book.client).get("/client/reports/")
    assert response.status_code == 200
    body = response.content.decode()
    page = text_of(body)
    assert "our fees (25% of what is collected)" in page
    assert (
        "Placed, 12 months $650.00 Collected by the agency $150.00 Fees $37.50 Net remitted $112.50"
        " Paid to you directly $0.00 Commission you owe on direct payments $0.00" in page
    )
    assert "May 2025 $0.00 $100.00 $25.00 $75.00 $0.00 $0.00" in page
    assert "Jun 2025 $450.00 $50.00 $12.50 $37.50 $0.00 $0.00" in page
    assert "Total $650.00 $150.00 $37.50 $112.50 $0.00 $0.00" in page
    # By account, since placement (Lee's May 2024 invoice and payment included).
    assert "Pat Jones CW-100 $150.00 $100.00 $25.00 $75.00 $0.00 $0.00 $50.00" in page
    assert "Lee Chan CW-200 $540.00 $90.00 $22.50 $67.50 $0.00 $0.00 $430.00" in page
    assert "All accounts $690.00 $190.00 $47.50 $142.50 $0.00 $0.00" in page
    # The chart: an image with a text alternative and the table it points to.
    assert '<svg class="recovery-chart" id="chart-usd"' in body and 'role="img"' in body
    assert (
        '<title id="chart-usd-title">Collected by the agency and net remitted per month, USD</title>' in body
    )
    assert "Highest collected by the agency: $100.00 in May 2025." in body
    assert body.count("<rect ") == 24 and "<script" not in body.split("<main", 1)[1]
    assert "May 2025: collected by the agency $100.00" in body and "Jun 2025: net remitted $37.50" in body
    # Nothing of Mercy Hospital's or another organization's.
    for foreign in ("Sam Rivers", "MH-100", "999.00", "$999", "1,149", "Acme"):
        assert foreign not in page


def test_the_other_creditor_sees_only_its_own_figures(book: MoneyBook) -> None:
    page = text_of(signed_in(book.mercy_client).get("/client/reports/").content)
    assert "our fees (10% of what is collected)" in page
    assert "Jun 2025 $999.00 $999.00 $99.90 $899.10 $0.00 $0.00" in page
    assert "Pat Jones" not in page and "Lee Chan" not in page and "$650.00" not in page


def test_the_monthly_csv_is_an_attachment_with_plain_amounts(book: MoneyBook) -> None:
    response = signed_in(book.client).get("/client/reports/monthly.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        response["Content-Disposition"] == 'attachment; filename="recovery-monthly-city-water-2025-06-30.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "month",
        "currency",
        "placed",
        "collected_by_agency",
        "fees",
        "net_remitted",
        "paid_to_you_directly",
        "commission_on_direct",
    ]
    assert len(rows) == 13
    assert rows[1] == ["2024-07", "USD", "0.00", "0.00", "0.00", "0.00", "0.00", "0.00"]
    assert rows[9] == ["2025-03", "USD", "200.00", "0.00", "0.00", "0.00", "0.00", "0.00"]
    assert rows[11] == ["2025-05", "USD", "0.00", "100.00", "25.00", "75.00", "0.00", "0.00"]
    assert rows[12] == ["2025-06", "USD", "450.00", "50.00", "12.50", "37.50", "0.00", "0.00"]


def test_the_accounts_csv_streams_every_account_of_this_creditor_only(book: MoneyBook) -> None:
    with scopes_disabled():
        Customer.objects.filter(pk=book.lee.pk).update(name="=HYPERLINK(evil)")
    response = signed_in(book.client).get("/client/reports/accounts.csv")
    assert response.status_code == 200
    assert (
        response["Content-Disposition"]
        == 'attachment; filename="recovery-accounts-city-water-2025-06-30.csv"'
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))  # type: ignore[attr-defined]
    assert rows == [
        [
            "account_number",
            "name",
            "currency",
            "placed_on",
            "placed",
            "collected_by_agency",
            "fees",
            "net_remitted",
            "paid_to_you_directly",
            "commission_on_direct",
            "open_balance",
        ],
        [
            "CW-100",
            "Pat Jones",
            "USD",
            "2025-06-30",
            "150.00",
            "100.00",
            "25.00",
            "75.00",
            "0.00",
            "0.00",
            "50.00",
        ],
        [
            "CW-200",
            "'=HYPERLINK(evil)",
            "USD",
            "2025-06-30",
            "540.00",
            "90.00",
            "22.50",
            "67.50",
            "0.00",
            "0.00",
            "430.00",
        ],
    ]


def test_the_reports_are_for_creditor_clients_only(book: MoneyBook, users: Users) -> None:
    for url in ("/client/reports/", "/client/reports/monthly.csv", "/client/reports/accounts.csv"):
        assert signed_in(book.collector).get(url).status_code == 403
        assert signed_in(users.customer).get(url).status_code == 403
        anonymous = signed_in(book.client)
        anonymous.logout()
        assert anonymous.get(url).status_code == 302
