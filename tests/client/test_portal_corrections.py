"""The creditor-client portal's figures and guards: direct payments apart from what the agency
collected (their commission kept as confirmed), one currency per account, placements read
without regard to case and refused without naming another client, ids of ASCII digits only,
account-level holds as the status, an ended hold not released twice, spreadsheet-safe CSV
cells."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_scopes import scope, scopes_disabled

from factories import NOON_ON_TODAY, TODAY, Users, days_ago, issue_invoice, signed_in, text_of
from openar.billing.models import Invoice
from openar.client.models import DirectPaymentReport
from openar.client.payments import direct_payment_confirm, direct_payment_report, report_commission
from openar.client.reports import _cell
from openar.client.selectors import AccountFilters, account_list
from openar.client.services import client_hold_place, client_hold_release
from openar.core.errors import ServiceError
from openar.customers.models import Activity, Customer, Hold
from openar.customers.services import hold_place
from openar.tenants.models import Creditor, Organization

from .money_book import MoneyBook, build_money_book


@pytest.fixture
def book(users: Users, agency: Organization, agency_clients: tuple[Creditor, Creditor]) -> MoneyBook:
    with time_machine.travel(NOON_ON_TODAY, tick=False):
        return build_money_book(users, agency, agency_clients)


@pytest.fixture(autouse=True)
def _today(clock: time_machine.Traveller) -> None:
    """Every test runs at noon on factories.TODAY (30 June 2025)."""


def _csv(response: Any) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()
    return list(csv.reader(io.StringIO(body)))


def _confirmed_direct_payment(book: MoneyBook, amount: str) -> DirectPaymentReport:
    with scope(organization=book.agency):
        report = direct_payment_report(
            customer=book.pat,
            creditor=book.city_water,
            amount=Decimal(amount),
            received_on=days_ago(1),
            method="cheque",
            actor=book.client,
        )
        return direct_payment_confirm(report=report, allocations=None, actor=book.collector)


# --- 1 and 8: direct payments apart, their commission kept ---------------------------------------


def test_a_direct_payment_is_not_remitted_and_its_commission_is_owed_apart(
    book: MoneyBook, assert_ledger_clean: Any
) -> None:
    report = _confirmed_direct_payment(book, "100.00")
    assert (report.commission_rate, report.commission) == (Decimal("0.2500"), Decimal("25.0000"))
    client = signed_in(book.client)
    rows = _csv(client.get("/client/reports/monthly.csv"))
    assert rows[0][3:] == [
        "collected_by_agency",
        "fees",
        "net_remitted",
        "paid_to_you_directly",
        "commission_on_direct",
    ]
    # June 2025: 100.00 paid to City Water directly; the agency collected and remits nothing.
    assert rows[-1] == ["2025-06", "USD", "450.00", "0.00", "0.00", "0.00", "100.00", "25.00"]
    accounts = {row[0]: row for row in _csv(client.get("/client/reports/accounts.csv"))}
    assert accounts["CW-100"][4:] == ["150.00", "0.00", "0.00", "0.00", "100.00", "25.00", "50.00"]
    page = text_of(client.get("/client/reports/").content)
    assert (
        "Collected by the agency $0.00 Fees $0.00 Net remitted $0.00 Paid to you directly $100.00 "
        "Commission you owe on direct payments $25.00" in page
    )
    assert "Jun 2025 $450.00 $0.00 $0.00 $0.00 $100.00 $25.00" in page
    assert "Pat Jones CW-100 $150.00 $0.00 $0.00 $0.00 $100.00 $25.00 $50.00" in page
    assert_ledger_clean()


def test_the_commission_on_a_confirmed_report_does_not_move_with_the_rate(book: MoneyBook) -> None:
    confirmed = _confirmed_direct_payment(book, "40.00")
    with scope(organization=book.agency):
        waiting = direct_payment_report(
            customer=book.pat,
            creditor=book.city_water,
            amount=Decimal("10.00"),
            received_on=days_ago(1),
            method="cash",
            actor=book.client,
        )
    with scopes_disabled():
        Creditor.objects.filter(pk=book.city_water.pk).update(commission_rate=Decimal("0.5000"))
        confirmed = DirectPaymentReport.objects.select_related("creditor").get(pk=confirmed.pk)
        waiting = DirectPaymentReport.objects.select_related("creditor").get(pk=waiting.pk)
    kept = report_commission(confirmed)
    assert (kept.rate, kept.fee, kept.net) == (Decimal("0.2500"), Decimal("10.00"), Decimal("30.00"))
    moving = report_commission(waiting)  # not confirmed yet: at today's rate
    assert (moving.rate, moving.fee) == (Decimal("0.5000"), Decimal("5.00"))
    client = signed_in(book.client)
    assert _csv(client.get("/client/reports/monthly.csv"))[-1][6:] == ["40.00", "10.00"]
    accounts = {row[0]: row for row in _csv(client.get("/client/reports/accounts.csv"))}
    assert accounts["CW-100"][8:10] == ["40.00", "10.00"]
    page = text_of(client.get(f"/client/accounts/{book.pat.pk}/payments/report/").content)
    assert "commission $10.00, you keep $30.00" in page  # the confirmed one, as kept
    assert "commission $5.00, you keep $5.00" in page  # the waiting one, at today's rate
    assert "commission $20.00" not in page


# --- 2: one currency per account ------------------------------------------------------------------


def test_an_invoice_in_another_currency_is_not_added_to_the_account(book: MoneyBook) -> None:
    issue_invoice(book.pat, "CW-CAD-1", "1000.00", currency="CAD", due_date=days_ago(200))
    client = signed_in(book.client)
    accounts = {row[0]: row for row in _csv(client.get("/client/reports/accounts.csv"))}
    assert accounts["CW-100"][2] == "USD"
    assert accounts["CW-100"][4] == "150.00" and accounts["CW-100"][-1] == "150.00"
    page = text_of(client.get("/client/", {"q": "CW-100"}).content)
    assert "$150.00" in page and "1,150.00" not in page and "1,000.00" not in page
    with scope(organization=book.agency):
        [pat] = account_list(book.city_water, today=TODAY, filters=AccountFilters(search="CW-100"))
    assert (pat.balance, pat.past_due, pat.oldest_due) == (  # type: ignore[attr-defined]
        Decimal("150.0000"),
        Decimal("100.0000"),
        days_ago(40),
    )
    # The CAD invoice neither lifts Pat over a balance of 1,000 nor makes it 90+ days old.
    assert "Pat Jones" not in text_of(client.get("/client/", {"min": "1000"}).content)
    assert "Pat Jones" not in text_of(client.get("/client/", {"age": "d90_plus"}).content)
    assert "Pat Jones" in text_of(client.get("/client/", {"age": "d31_60"}).content)


# --- 3, 6, 9: placements ----------------------------------------------------------------------------

HEADER = "account_number,name,invoice_number,amount,invoice_date,due_date,currency\n"


def _upload(client: Client, text: str) -> Any:
    file = SimpleUploadedFile("p.csv", text.encode(), content_type="text/csv")
    return client.post("/client/placements/", {"file": file})


def _report() -> list[dict[str, Any]]:
    from openar.client.models import PlacementImport

    with scopes_disabled():
        report: list[dict[str, Any]] = PlacementImport.objects.latest("pk").report
    return report


def test_placement_numbers_are_matched_without_regard_to_case_and_refused_neutrally(
    book: MoneyBook,
) -> None:
    client = signed_in(book.client)
    response = _upload(
        client,
        HEADER
        + "mh-100,Sam Rivers,NEW-1,10.00,2025-01-01,2025-02-01,\n"
        + "cw-100,Pat Jones,NEW-2,10.00,2025-01-01,2025-02-01,\n"
        + "N-9,Nia Park,mh-inv-1,10.00,2025-01-01,2025-02-01,\n",
    )
    assert response.status_code == 302
    assert [(line["ok"], line["message"]) for line in _report()] == [
        (
            False,
            "account number mh-100: This account number cannot be used for a new placement; ask the agency.",
        ),
        (True, "added to the account placed before"),
        (
            False,
            "invoice number mh-inv-1: This invoice number cannot be used for a new placement; "
            "ask the agency.",
        ),
    ]
    with scopes_disabled():
        numbers = sorted(
            Customer.objects.filter(organization=book.agency).values_list("number", "creditor__code")
        )
        assert numbers == [("CW-100", "city-water"), ("CW-200", "city-water"), ("MH-100", "mercy-hospital")]
        assert Invoice.objects.get(number="NEW-2").customer_id == book.pat.pk  # added to Pat
        assert not Invoice.objects.filter(number__in=["NEW-1", "mh-inv-1"]).exists()
    page = text_of(client.get(response["Location"]).content)
    assert "another client" not in page and "Mercy" not in page and "Sam" not in page.split("Refused")[-1]


def test_an_empty_currency_is_the_accounts_own_and_far_dates_are_refused(book: MoneyBook) -> None:
    with scopes_disabled():
        Customer.objects.filter(pk=book.lee.pk).update(currency="CAD")
    client = signed_in(book.client)
    response = _upload(
        client,
        HEADER
        + "CW-200,Lee Chan,L-1,12.50,2025-01-01,2025-02-01,\n"
        + "Z-1,Zed,Z-INV-1,10.00,0001-01-01,0001-01-02,\n"
        + "Z-2,Zed Two,Z-INV-2,10.00,2025-01-01,9999-12-31,\n"
        + "Z-3,Zed Three,Z-INV-3,10.00,2005-07-01,2045-06-30,\n",
    )
    assert response.status_code == 302
    report = _report()
    assert [(line["account"], line["ok"]) for line in report] == [
        ("CW-200", True),
        ("Z-1", False),
        ("Z-2", False),
        ("Z-3", True),
    ]
    assert report[1]["message"] == (
        "invoice date 0001-01-01 is more than 20 years from today (it must be between 2005-06-30 and "
        "2045-06-30); due date 0001-01-02 is more than 20 years from today (it must be between "
        "2005-06-30 and 2045-06-30)"
    )
    assert report[2]["message"].startswith("due date 9999-12-31 is more than 20 years from today")
    with scopes_disabled():
        placed = Invoice.objects.get(number="L-1")
        assert (placed.currency, placed.customer_id, placed.total) == ("CAD", book.lee.pk, Decimal("12.5000"))
        assert not Customer.objects.filter(number__in=["Z-1", "Z-2"]).exists()
        assert Invoice.objects.get(number="Z-INV-3").currency == "USD"  # a new account: the agency's


# --- 4: ids of ASCII digits only ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["²", "١٢", "１２", "9" * 19])
def test_unicode_digits_in_ids_are_refused_or_ignored_never_an_error(book: MoneyBook, value: str) -> None:
    client = signed_in(book.client)
    client.raise_request_exception = False
    response = client.get("/client/", {"collector": value})
    assert response.status_code == 200
    assert "Choose a collector from the list." in text_of(response.content)
    assert "Pat Jones" in text_of(response.content)  # nothing filtered on a bad value
    collector = signed_in(book.collector)
    collector.raise_request_exception = False
    response = collector.get("/desk/worklist/", {"creditor": value, "who": "all"})
    assert response.status_code == 200
    for who in (value, "all"):
        assert collector.get("/desk/worklist/", {"who": who}).status_code == 200
    with scopes_disabled():
        before = Customer.objects.filter(assigned_collector=book.collector).count()
    response = collector.post("/desk/worklist/bulk/", {"action": "assign", "customers": [value]})
    assert response.status_code == 302
    flashes = [str(m) for m in response.wsgi_request._messages]  # type: ignore[attr-defined]
    assert flashes == ["Select at least one account."]
    with scopes_disabled():
        assert Customer.objects.filter(assigned_collector=book.collector).count() == before


# --- 5, 7: holds --------------------------------------------------------------------------------


def test_a_hold_on_one_invoice_does_not_put_the_account_on_hold(book: MoneyBook) -> None:
    with scope(organization=book.agency):
        hold_place(
            customer=book.pat, reason="Meter checked", actor=book.collector, invoice_id=book.pat_old.pk
        )
    client = signed_in(book.client)
    listed = text_of(client.get("/client/", {"status": "on_hold"}).content)
    assert "Pat Jones" not in listed
    assert "Pat Jones" in text_of(client.get("/client/", {"status": "open"}).content)
    page = text_of(client.get(f"/client/accounts/{book.pat.pk}/").content)
    assert "Collection Active" in page and "Meter checked" in page
    with scope(organization=book.agency):
        client_hold_place(customer=book.pat, author=book.client, reason="Talking to them", expires_at=None)
    assert "Pat Jones" in text_of(client.get("/client/", {"status": "on_hold"}).content)
    assert "Collection On hold" in text_of(client.get(f"/client/accounts/{book.pat.pk}/").content)


def test_an_ended_hold_is_not_released_and_not_offered_for_release(book: MoneyBook) -> None:
    with scope(organization=book.agency):
        hold = client_hold_place(
            customer=book.pat,
            author=book.client,
            reason="Talking to them",
            expires_at=NOON_ON_TODAY + datetime.timedelta(hours=1),
        )
    later = NOON_ON_TODAY + datetime.timedelta(days=3)
    with time_machine.travel(later, tick=False):
        client = signed_in(book.client)
        page = client.get(f"/client/accounts/{book.pat.pk}/").content.decode()
        assert f"/holds/{hold.pk}/release/" not in page and "Ended" in text_of(page)
        with scope(organization=book.agency):
            hold = Hold.objects.select_related("customer__creditor").get(pk=hold.pk)
            with pytest.raises(ServiceError) as refused:
                client_hold_release(hold=hold, author=book.client)
        assert refused.value.message == (
            "This hold ended on 30 Jun 2025: there is nothing to release. "
            "Place a new hold to pause collection again."
        )
        response = client.post(f"/client/accounts/{book.pat.pk}/holds/{hold.pk}/release/", follow=True)
        assert "This hold ended on 30 Jun 2025: there is nothing to release." in text_of(response.content)
    with scopes_disabled():
        hold.refresh_from_db()
        assert hold.released_at is None
        assert not Activity.objects.filter(customer=book.pat, summary__startswith="Hold released").exists()


# --- 10: CSV cells ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("  =HYPERLINK(x)", "'  =HYPERLINK(x)"),
        (" +33 1", "' +33 1"),
        ("\n-2", "'\n-2"),
        (" @SUM(A1)", "' @SUM(A1)"),
        ("\t1", "'\t1"),
        ("\r1", "'\r1"),
        ("Pat = Jones", "Pat = Jones"),
        ("A-1", "A-1"),
        ("   ", "   "),
        ("", ""),
    ],
)
def test_csv_cells_that_would_run_as_a_formula_are_neutralized(value: str, expected: str) -> None:
    assert _cell(value) == expected
