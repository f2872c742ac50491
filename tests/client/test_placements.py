"""Placing new accounts from a CSV file: every line checked and reported, good accounts placed
(customer, contact, invoices), bad ones refused whole with their reason, nothing half
written, the import kept and shown only to its creditor."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_scopes import scopes_disabled

from factories import NOON_ON_TODAY, Users, row_counts, signed_in, text_of
from openar.billing.models import Invoice
from openar.client import placements as placements_module
from openar.client.models import PlacementImport
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Contact, Customer
from openar.tenants.models import Creditor, Organization

from .money_book import MoneyBook, build_money_book

Capture = Callable[..., Any]
HEADER = (
    "account_number,name,email,phone,address_line1,city,region,postal_code,country,"
    "invoice_number,amount,invoice_date,due_date,note\n"
)


@pytest.fixture
def book(users: Users, agency: Organization, agency_clients: tuple[Creditor, Creditor]) -> MoneyBook:
    with scopes_disabled():
        Organization.objects.filter(pk=agency.pk).update(email="intake@northwind.example")
        agency.refresh_from_db()
    with time_machine.travel(NOON_ON_TODAY, tick=False):
        return build_money_book(users, agency, agency_clients)


@pytest.fixture(autouse=True)
def _today(clock: time_machine.Traveller) -> None:
    """Every test runs at noon on factories.TODAY (30 June 2025)."""


def upload(client: Client, text: str | bytes, name: str = "accounts.csv") -> Any:
    content = text.encode() if isinstance(text, str) else text
    return client.post(
        "/client/placements/", {"file": SimpleUploadedFile(name, content, content_type="text/csv")}
    )


def imports() -> list[PlacementImport]:
    with scopes_disabled():
        return list(PlacementImport.objects.order_by("pk"))


MIXED = HEADER + (
    # line 2-3: a new account with two invoices: placed
    "N-1,Avery Stone,avery@stone.example,555-0101,1 Elm St,Springfield,IL,62701,us,"
    'N-INV-1,"$1,234.50",2025-03-01,2025-03-31,Dental work\n'
    + "N-1,Avery Stone,,,,,,,,N-INV-2,80,2025-04-01,2025-05-01,\n"
    # line 4-5: a bad amount on the second line refuses the whole account
    + "N-2,Blair Moss,,,,,,,,N-INV-3,40.00,2025-04-01,2025-05-01,\n"
    + "N-2,Blair Moss,,,,,,,,N-INV-4,12.345,2025-04-01,2025-05-01,\n"
    # line 6: an account number Mercy Hospital placed
    + "MH-100,Sam Rivers,,,,,,,,N-INV-5,10.00,2025-04-01,2025-05-01,\n"
    # line 7: an invoice number already placed
    + "N-3,Casey Lake,,,,,,,,CW-INV-1,10.00,2025-04-01,2025-05-01,\n"
    # line 8: no name, a bad date and a due date... both wrong
    + "N-4,,,,,,,,,N-INV-6,10.00,2025-13-01,01/05/2025,\n"
    # line 9: blank, skipped; line 10: a duplicate invoice number in the file
    + "\n"
    + "N-5,Drew Park,not-an-email,,,,,,,N-INV-1,15.00,2025-04-01,2025-03-01,\n"
)


def test_a_mixed_file_places_the_good_accounts_and_reports_every_line(
    book: MoneyBook, django_capture_on_commit_callbacks: Capture, assert_ledger_clean: Callable[..., None]
) -> None:
    client = signed_in(book.client)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, MIXED)
    [record] = imports()
    assert response.status_code == 302 and response["Location"] == f"/client/placements/{record.pk}/"
    assert record.report == [
        {"line": 2, "account": "N-1", "invoice": "N-INV-1", "ok": True, "message": "placed"},
        {"line": 3, "account": "N-1", "invoice": "N-INV-2", "ok": True, "message": "placed"},
        {
            "line": 4,
            "account": "N-2",
            "invoice": "N-INV-3",
            "ok": False,
            "message": "not placed: line 5 of this account has an error",
        },
        {
            "line": 5,
            "account": "N-2",
            "invoice": "N-INV-4",
            "ok": False,
            "message": "bad amount “12.345”: Enter at most 2 decimals for USD",
        },
        {
            "line": 6,
            "account": "MH-100",
            "invoice": "N-INV-5",
            "ok": False,
            "message": "account number MH-100: This account number cannot be used for a new placement; "
            "ask the agency.",
        },
        {
            "line": 7,
            "account": "N-3",
            "invoice": "CW-INV-1",
            "ok": False,
            "message": "invoice number CW-INV-1: This invoice number cannot be used for a new placement; "
            "ask the agency.",
        },
        {
            "line": 8,
            "account": "N-4",
            "invoice": "N-INV-6",
            "ok": False,
            "message": "missing name; "
            "bad invoice date “2025-13-01” (write it as YYYY-MM-DD, e.g. 2025-03-31); "
            "bad due date “01/05/2025” (write it as YYYY-MM-DD, e.g. 2025-03-31)",
        },
        {
            "line": 10,
            "account": "N-5",
            "invoice": "N-INV-1",
            "ok": False,
            "message": "bad email address “not-an-email”; the due date is before the invoice date; "
            "invoice number N-INV-1 is also on line 2",
        },
    ]
    assert (record.lines_total, record.lines_placed, record.lines_refused) == (8, 2, 6)
    assert (record.accounts_placed, record.accounts_added_to, record.accounts_refused) == (1, 0, 5)
    assert (record.invoices_placed, record.amounts_placed) == (2, {"USD": "1314.50"})
    assert record.uploaded_by == book.client and record.creditor_id == book.city_water.pk
    assert record.filename == "accounts.csv" and len(record.sha256) == 64
    with scopes_disabled():
        avery = Customer.objects.get(number="N-1")
        assert (avery.creditor_id, avery.name, avery.currency, avery.country, avery.city) == (
            book.city_water.pk,
            "Avery Stone",
            "USD",
            "US",
            "Springfield",
        )
        assert avery.placed_at is not None and avery.placed_at.isoformat() == "2025-06-30T16:00:00+00:00"
        contact = Contact.objects.get(customer=avery)
        assert (contact.name, contact.email, contact.phone, contact.is_primary) == (
            "Avery Stone",
            "avery@stone.example",
            "555-0101",
            True,
        )
        invoices = list(
            Invoice.objects.filter(customer=avery).order_by("number").values_list("number", "total", "notes")
        )
        assert invoices == [
            ("N-INV-1", Decimal("1234.5000"), "Dental work"),
            ("N-INV-2", Decimal("80.0000"), ""),
        ]
        # Nothing of a refused account was written.
        assert not Customer.objects.filter(number__in=["N-2", "N-3", "N-4", "N-5"]).exists()
        assert not Invoice.objects.filter(number__in=["N-INV-3", "N-INV-4", "N-INV-5", "N-INV-6"]).exists()
        assert Customer.objects.get(number="MH-100").creditor_id == book.mercy.pk  # untouched
        placed = Activity.objects.get(customer=avery, kind=Activity.Kind.STATUS)
        assert (
            placed.visibility == "creditor"
            and placed.summary == "Account placed with the agency by City Water Utility"
        )
        event = AuditEvent.objects.get(action="openar.client.placement_imported")
    assert (
        event.actor == book.client
        and event.data["lines_placed"] == 2
        and event.data["amounts"] == {"USD": "1314.50"}
    )
    [email] = mail.outbox
    assert email.to == ["intake@northwind.example"]
    assert email.subject == "New accounts placed by City Water Utility: 1"
    assert (
        "placed 2 invoices ($1,314.50) from accounts.csv: 1 new account, 0 accounts placed before"
        in email.body
    )
    assert "6 lines refused" in email.body
    assert_ledger_clean()
    page = text_of(client.get(f"/client/placements/{record.pk}/").content)
    assert "Lines placed 2 of 8" in page and "Lines refused 6" in page
    assert "5 MH-100 N-INV-5" not in page  # line numbers come first: 6 MH-100 ...
    assert (
        "6 MH-100 N-INV-5 Refused account number MH-100: This account number cannot be used for a new "
        "placement; ask the agency." in page
    )
    assert "another client" not in page and "Mercy" not in page
    refused_only = text_of(client.get(f"/client/placements/{record.pk}/?show=refused").content)
    assert "N-INV-2" not in refused_only and "CW-INV-1" in refused_only


def test_an_account_placed_before_by_the_same_creditor_receives_new_invoices(book: MoneyBook) -> None:
    text = HEADER + "CW-200,Lee Chan,new@chan.example,,,,,,,CW-INV-9,70.00,2025-05-01,2025-06-01,\n"
    upload(signed_in(book.client), text)
    [record] = imports()
    assert record.report[0]["message"] == "added to the account placed before"
    assert (record.accounts_placed, record.accounts_added_to, record.invoices_placed) == (0, 1, 1)
    with scopes_disabled():
        lee = Customer.objects.get(pk=book.lee.pk)
        assert lee.email == "" and not Contact.objects.filter(customer=lee).exists()  # details kept
        assert Invoice.objects.get(number="CW-INV-9").customer_id == lee.pk


def test_an_account_whose_write_fails_is_not_half_written(
    book: MoneyBook, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = placements_module.invoice_issue

    def failing(**kwargs: Any) -> Invoice:
        if kwargs["number"] == "B-2":
            raise ServiceError("Invoice number B-2 is already used.", field="number")
        return real(**kwargs)

    monkeypatch.setattr(placements_module, "invoice_issue", failing)
    text = HEADER + (
        "A-1,Ann,,,,,,,,A-1,10.00,2025-05-01,2025-06-01,\n"
        "B-1,Bo,bo@example.com,,,,,,,B-1,10.00,2025-05-01,2025-06-01,\n"
        "B-1,Bo,,,,,,,,B-2,20.00,2025-05-01,2025-06-01,\n"
    )
    upload(signed_in(book.client), text)
    [record] = imports()
    assert [(line["account"], line["ok"], line["message"]) for line in record.report] == [
        ("A-1", True, "placed"),
        ("B-1", False, "not placed: Invoice number B-2 is already used"),
        ("B-1", False, "not placed: Invoice number B-2 is already used"),
    ]
    with scopes_disabled():
        assert not Customer.objects.filter(number="B-1").exists()
        assert not Invoice.objects.filter(number="B-1").exists()
        assert not Contact.objects.filter(email="bo@example.com").exists()
        assert Customer.objects.filter(number="A-1").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "account_number,name,amount\nA,B,1\n",
            "The header has no invoice_number, invoice_date, due_date columns.",
        ),
        (HEADER, "The file has a header but no accounts."),
        (
            "account_number,name,Name,invoice_number,amount,invoice_date,due_date\n",
            "The column “Name” appears twice",
        ),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(book: MoneyBook, content: str, message: str) -> None:
    before = row_counts()
    response = upload(signed_in(book.client), content)
    assert response.status_code == 400
    assert message in text_of(response.content)
    assert imports() == [] and row_counts() == before


def test_a_file_that_is_not_utf8_text_is_refused_by_the_upload_check(book: MoneyBook) -> None:
    response = upload(
        signed_in(book.client), (HEADER + "A,Zoë,,,,,,,,I-1,1.00,2025-01-01,2025-01-31,\n").encode("latin-1")
    )
    assert response.status_code == 400
    assert "UTF-8" in text_of(response.content)
    assert imports() == []
    missing = signed_in(book.client).post("/client/placements/", {})
    assert missing.status_code == 400 and "Choose a file to upload." in text_of(missing.content)


def test_semicolons_and_header_aliases_are_read(book: MoneyBook) -> None:
    text = (
        "Account;Debtor name;Reference;Amount;Invoice date;Due date;Currency\n"
        "S-1;Sky Blue;S-INV-1;1,000.00;2025-05-01;2025-06-01;cad\n"
    )
    upload(signed_in(book.client), text)
    [record] = imports()
    assert record.report[0]["ok"] is True and record.amounts_placed == {"CAD": "1000.00"}
    with scopes_disabled():
        assert Customer.objects.get(number="S-1").currency == "CAD"


def test_imports_are_listed_and_shown_only_to_their_creditor(book: MoneyBook, users: Users) -> None:
    upload(signed_in(book.client), HEADER + "A-1,Ann,,,,,,,,A-1,10.00,2025-05-01,2025-06-01,\n", "june.csv")
    [record] = imports()
    page = text_of(signed_in(book.client).get("/client/placements/").content)
    assert "june.csv" in page and "1 of 1 lines placed ($10.00)" in page
    mercy = signed_in(book.mercy_client)
    assert "june.csv" not in text_of(mercy.get("/client/placements/").content)
    assert mercy.get(f"/client/placements/{record.pk}/").status_code == 404
    # Another organization's staff, and customers, never reach it.
    assert signed_in(users.collector).get(f"/client/placements/{record.pk}/").status_code == 403
    assert signed_in(users.customer).get("/client/placements/").status_code == 403


def test_the_template_is_a_csv_attachment_that_places_cleanly(book: MoneyBook) -> None:
    response = signed_in(book.client).get("/client/placements/template.csv")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="placement-template.csv"'
    body = response.content.decode()
    assert body.splitlines()[0] == ",".join(placements_module.COLUMNS)
    upload(signed_in(book.client), body)
    [record] = imports()
    assert (record.lines_placed, record.accounts_placed, record.amounts_placed) == (2, 1, {"USD": "330.00"})


def test_the_demo_adds_a_waiting_payment_and_a_past_placement_once(
    db: None, assert_ledger_clean: Callable[..., None]
) -> None:
    from openar.client.demo_money import seed_demo
    from openar.client.models import DirectPaymentReport
    from openar.demo import demo_seed

    demo_seed()  # seeds the client portal's money too
    with scopes_disabled():
        assert (DirectPaymentReport.objects.count(), PlacementImport.objects.count()) == (1, 1)
    assert seed_demo() == {"reports": 0, "imports": 0}  # a second run adds nothing
    with scopes_disabled():
        assert (DirectPaymentReport.objects.count(), PlacementImport.objects.count()) == (1, 1)
        report = DirectPaymentReport.objects.select_related("creditor").get()
        record = PlacementImport.objects.select_related("creditor").get()
    assert report.state == "reported" and report.creditor.name == "Metro Dental Group"
    assert (record.creditor.name, record.lines_placed, record.lines_refused, record.accounts_placed) == (
        "Metro Dental Group",
        4,
        1,
        3,
    )
    assert_ledger_clean()
