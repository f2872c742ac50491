"""The creditor client's accounts list and account page: only the accounts its creditor
placed, with exact figures, filters and sorts, and a timeline without staff-only entries."""

from __future__ import annotations

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from factories import NOON_ON_TODAY, Users, make_document, signed_in, text_of
from openar.customers.models import Customer
from openar.tenants.models import Creditor, Organization

from .book import Book, build_book, staff_hold


@pytest.fixture
def book(users: Users, agency: Organization, agency_clients: tuple[Creditor, Creditor]) -> Book:
    with time_machine.travel(NOON_ON_TODAY, tick=False):
        return build_book(users, agency, agency_clients)


@pytest.fixture(autouse=True)
def _today(clock: time_machine.Traveller) -> None:
    """Every test runs at noon on factories.TODAY."""


def rows_of(page: str) -> list[str]:
    return [line for line in page.split("\n") if line]


def test_the_list_shows_exactly_the_creditors_own_accounts_with_their_figures(book: Book) -> None:
    response = signed_in(book.client).get("/client/")
    assert response.status_code == 200
    page = text_of(response.content)
    assert "Accounts placed by City Water Utility" in page
    # Latest activity first: Pat (a call 2 days ago), then Lee and Kim (nothing visible).
    body = response.content.decode()
    assert body.index("Pat Jones") < body.index("Lee Chan") < body.index("Kim Park")
    assert "Pat Jones CW-100 $150.00 $100.00 40 days Open Casey Collector 1 May 2025" in page
    assert "Lee Chan CW-200 $300.00 $300.00 100 days Open Unassigned 4 May 2025" in page
    assert "Kim Park CW-300 $0.00 — — Paid Unassigned" in page
    # Another creditor's account of the same agency never shows, nor its notes.
    assert "Sam Rivers" not in body and "MH-100" not in body and "Mercy note" not in body


def test_the_list_takes_a_fixed_number_of_queries(book: Book) -> None:
    client = signed_in(book.client)
    client.get("/client/")  # warm the session and the site's caches
    with CaptureQueriesContext(connection) as few:
        client.get("/client/")
    for n in range(5):
        Customer.objects.create(
            organization=book.agency, creditor=book.city_water, number=f"CW-9{n}", name=f"More {n}"
        )
    with CaptureQueriesContext(connection) as more:
        assert client.get("/client/").status_code == 200
    assert len(more) == len(few)  # no query per account


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("q=cw-2", ["Lee Chan"]),
        ("q=555-0101", ["Pat Jones"]),
        ("q=pat.jones%40home", ["Pat Jones"]),  # a contact's email
        ("q=lee%40chan.example", ["Lee Chan"]),
        ("q=Sam", []),  # another creditor's debtor is never found
        ("status=paid", ["Kim Park"]),
        ("status=open", ["Pat Jones", "Lee Chan"]),
        ("age=d31_60", ["Pat Jones"]),
        ("age=d90_plus", ["Lee Chan"]),
        ("age=current", ["Kim Park"]),
        ("min=150&max=299.99", ["Pat Jones"]),
        ("min=200", ["Lee Chan"]),
        ("collector=none", ["Lee Chan", "Kim Park"]),
        ("sort=-balance", ["Lee Chan", "Pat Jones", "Kim Park"]),
        ("sort=name", ["Kim Park", "Lee Chan", "Pat Jones"]),
        ("sort=-age", ["Lee Chan", "Pat Jones", "Kim Park"]),
    ],
)
def test_search_filters_and_sorts(book: Book, query: str, shown: list[str]) -> None:
    body = signed_in(book.client).get(f"/client/?{query}").content.decode()
    names = ["Pat Jones", "Lee Chan", "Kim Park"]
    present = sorted((body.index(n), n) for n in names if f">{n}</a>" in body)
    assert [n for _, n in present] == shown


def test_the_collector_filter_and_status_on_hold(book: Book) -> None:
    client = signed_in(book.client)
    body = client.get(f"/client/?collector={book.collector.pk}").content.decode()
    assert ">Pat Jones</a>" in body and ">Lee Chan</a>" not in body
    assert f'<option value="{book.collector.pk}" selected>Casey Collector</option>' in body
    staff_hold(book.lee, book.collector)
    body = client.get("/client/?status=on_hold").content.decode()
    assert ">Lee Chan</a>" in body and ">Pat Jones</a>" not in body
    assert "On hold" in text_of(body)


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("status=bogus", "Choose a status from the list."),
        ("age=forever", "Choose an age from the list."),
        ("min=abc", "Balance from: enter an amount such as 250 or 1200.50."),
        ("min=500&max=100", "The lowest balance is above the highest: nothing could match."),
        ("collector=x1", "Choose a collector from the list."),
    ],
)
def test_bad_filters_are_said_and_filter_nothing(book: Book, query: str, error: str) -> None:
    response = signed_in(book.client).get(f"/client/?{query}")
    assert response.status_code == 200
    page = text_of(response.content)
    assert error in page
    assert "Pat Jones" in page and "Lee Chan" in page and "Kim Park" in page


def test_the_account_page_shows_the_timeline_a_creditor_may_read(book: Book) -> None:
    make_document(book.pat, title="Signed service agreement", filename="agreement.pdf", content=b"%PDF-1.4\n")
    make_document(
        book.pat,
        title="Collector memo",
        filename="memo.pdf",
        content=b"%PDF-1.4\n",
        visible_to_customer=False,
    )
    response = signed_in(book.client).get(f"/client/accounts/{book.pat.pk}/")
    assert response.status_code == 200
    page = text_of(response.content)
    assert "Call attempt · Left a message · next action 3 Jul 2025 · Casey Collector" in page
    assert "Called the home number" in page
    assert "Letter" in page and "Demand letter mailed" in page
    assert "CW-INV-1" in page and "CW-INV-2" in page and "$150.00" in page
    assert "Signed service agreement" in page
    assert "Pat Jones Primary pat.jones@home.example Correct the details of Pat Jones" in page
    # Staff-only entries and files never reach the creditor.
    assert "cousin of the owner" not in page and "Collector memo" not in page


@pytest.mark.parametrize("path", ["/client/accounts/{id}/", "/client/accounts/{id}/details/"])
def test_another_creditors_account_is_a_404(book: Book, path: str) -> None:
    response = signed_in(book.client).get(path.format(id=book.sam.pk))
    assert response.status_code == 404
    assert "Sam Rivers" not in response.content.decode()
    assert signed_in(book.mercy_client).get(path.format(id=book.sam.pk)).status_code == 200


def test_a_creditor_starts_at_the_client_portal_and_others_may_not_enter(book: Book, users: Users) -> None:
    response = signed_in(book.client).get("/")
    assert (response.status_code, response["Location"]) == (302, "/client/")
    for user in (users.admin, users.collector, users.customer, book.collector):
        denied = signed_in(user).get("/client/")
        assert denied.status_code == 403, user
        assert "Pat Jones" not in denied.content.decode()
    assert signed_in(users.collector).get("/").status_code == 302
    assert signed_in(users.collector).get("/")["Location"] == "/desk/"
