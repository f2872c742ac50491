"""The collector's worklist at the desk: the priority order (exact), holds taking accounts off
and putting them back, filters, logging calls and letters in the browser's plain forms,
callbacks, assignment rules, bulk actions, creditor notes on the customer page, and foreign
ids answering 404 on every route of the worklist."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_scopes import scope

from factories import TODAY, Users, days_ago, issue_invoice, make_customer, make_member, signed_in, text_of
from openar.core.models import AuditEvent
from openar.customers import worklist as selectors
from openar.customers.models import Activity, Customer, Hold, Task
from openar.customers.services import activity_record, call_log, hold_place, hold_release, task_create
from openar.disputes.reasons import dispute_reasons
from openar.disputes.services import LineClaim, dispute_open
from openar.notifications.models import Channel, MessageTemplate
from openar.tenants.models import Creditor, Organization, Role

TOMORROW = TODAY + datetime.timedelta(days=1)
NOW = datetime.datetime(2025, 6, 30, 16, 0, tzinfo=datetime.UTC)  # the clock fixture's noon in Toronto


@pytest.fixture(autouse=True)
def _clock(clock: object) -> None:
    """Every test here runs at the clock fixture's moment."""


def _note(customer: Customer, text: str) -> Activity:
    with scope(organization=customer.organization):
        note = activity_record(
            customer=customer, kind=Activity.Kind.NOTE, summary=text, visibility=Activity.Visibility.CREDITOR
        )
        Activity.objects.filter(pk=note.pk).update(staff_unread=True)
    return note


@pytest.fixture
def book(supplier: Organization, creditor: Creditor, users: Users) -> dict[str, Customer]:
    """Seven accounts, each with one thing to work (or nothing), all the collector's."""

    def account(number: str, name: str) -> Customer:
        c = make_customer(creditor, number, name=name)
        with scope(organization=supplier):
            Customer.objects.filter(pk=c.pk).update(assigned_collector=users.collector)
        return c

    accounts = {
        "amount": account("W-1", "Amount Ltd"),  # 1,200.00 40 days late: 20 + 10
        "broken": account("W-2", "Broken Co"),  # 50.00 5 days late + a broken promise: 5 + 5 + 25
        "note": account("W-3", "Noted Inc"),  # an unread creditor note: 10
        "big": account("W-4", "Big Old LLC"),  # 12,000.00 100 days late: 30 + 30
        "current": account("W-5", "Current Corp"),  # nothing due yet: not listed
        "held": account("W-6", "Held GmbH"),  # past due but on hold: not listed
        "callback": account("W-7", "Callback Bros"),  # a callback due today: 20
    }
    issue_invoice(accounts["amount"], "I-1", "1200.00", due_date=days_ago(40))
    issue_invoice(accounts["broken"], "I-2", "50.00", due_date=days_ago(5))
    issue_invoice(accounts["big"], "I-4", "12000.00", due_date=days_ago(100))
    issue_invoice(accounts["current"], "I-5", "900.00", due_date=TOMORROW)
    issue_invoice(accounts["held"], "I-6", "300.00", due_date=days_ago(20))
    _note(accounts["note"], "Debtor moved to Ottawa")
    with scope(organization=supplier):
        for c in accounts.values():
            c.refresh_from_db()
        task_create(
            customer=accounts["broken"], kind=Task.Kind.BROKEN_PROMISE, summary="Broke", due_date=TODAY
        )
        task_create(
            customer=accounts["callback"], kind=Task.Kind.CALLBACK, summary="Call back", due_date=TODAY
        )
        task_create(customer=accounts["current"], kind=Task.Kind.CALLBACK, summary="Later", due_date=TOMORROW)
        hold_place(customer=accounts["held"], reason="Bankruptcy check", actor=users.collector)
    return accounts


def _order(collector_id: int | None = None, **kwargs: Any) -> list[tuple[str, int]]:
    filters = selectors.WorklistFilter(collector_id=collector_id, **kwargs)
    found = selectors.worklist(today=TODAY, now=NOW, filters=filters)
    return [(c.name, c.score) for c in found]  # type: ignore[attr-defined]


def test_the_worklist_is_in_priority_order_with_its_reasons(
    supplier: Organization, users: Users, book: dict[str, Customer]
) -> None:
    with scope(organization=supplier):
        assert _order(users.collector.pk) == [
            ("Big Old LLC", 60),
            ("Broken Co", 35),
            ("Amount Ltd", 30),
            ("Callback Bros", 20),
            ("Noted Inc", 10),
        ]
        rows = {
            c.name: selectors.worklist_row(c, TODAY)
            for c in selectors.worklist(today=TODAY, now=NOW, filters=selectors.WorklistFilter())
        }
        assert [(r.key, r.label, r.points) for r in rows["Broken Co"].reasons] == [
            ("past_due", "Past due", 5),
            ("age", "oldest 5 days late", 5),
            ("broken_promise", "1 broken promise", 25),
        ]
        assert rows["Broken Co"].past_due == Decimal("50.00")
        assert [(r.key, r.points) for r in rows["Noted Inc"].reasons] == [("creditor_note", 10)]
        assert [(r.key, r.points) for r in rows["Callback Bros"].reasons] == [("callback", 20)]
        assert "Current Corp" not in rows and "Held GmbH" not in rows
        assert selectors.on_hold_count(now=NOW) == 1


def test_a_new_dispute_and_a_call_attempts_next_date_count(
    supplier: Organization, users: Users, customer: Customer, customer_2: Customer
) -> None:
    invoice = issue_invoice(customer, "D-1", "100.00", due_date=TOMORROW)
    with scope(organization=supplier):
        reason = dispute_reasons(supplier).first()
        assert reason is not None
        line = invoice.lines.get()
        dispute_open(
            invoice=invoice, lines=[LineClaim(line.pk, reason.pk, Decimal("40.00"))], contact=None, actor=None
        )
        # A call attempt logged without a callback task (e.g. imported), due today.
        call = activity_record(
            customer=customer_2, kind=Activity.Kind.CALL, summary="Call attempt", visibility="creditor"
        )
        Activity.objects.filter(pk=call.pk).update(next_action_date=TODAY)
        assert _order() == [("Anvil Works", 20), ("Bolt Hardware", 15)]
        assert _order(reason="new_dispute") == [("Bolt Hardware", 15)]
        # Logging the call back (no new date) answers it: off the worklist.
        call_log(customer=customer_2, outcome=Activity.Outcome.SPOKE, actor=users.collector)
        assert _order() == [("Bolt Hardware", 15)]


def test_a_hold_takes_the_account_off_until_it_is_released(
    supplier: Organization, users: Users, book: dict[str, Customer]
) -> None:
    with scope(organization=supplier):
        hold = hold_place(customer=book["big"], reason="Creditor asked", actor=users.collector)
        assert "Big Old LLC" not in dict(_order())
        assert selectors.on_hold_count(now=NOW) == 2
        # A hold on one invoice does not take the account off.
        hold_place(
            customer=book["amount"],
            reason="One invoice",
            actor=None,
            invoice_id=book["amount"].invoices.get().pk,
        )
        assert "Amount Ltd" in dict(_order())
        hold_release(hold=hold, actor=users.collector)
        assert _order()[0] == ("Big Old LLC", 60)


def test_a_hold_with_an_end_puts_the_account_back_when_it_expires(
    supplier: Organization, users: Users, book: dict[str, Customer], clock: Any
) -> None:
    with scope(organization=supplier):
        hold_place(
            customer=book["big"],
            reason="Two days",
            actor=users.collector,
            expires_at=NOW + datetime.timedelta(days=2),
        )
    client = signed_in(users.collector)
    assert "Big Old LLC" not in text_of(client.get("/desk/worklist/").content)
    clock.shift(datetime.timedelta(days=2))
    page = text_of(signed_in(users.collector).get("/desk/worklist/").content)  # a new day, a new session
    assert "Big Old LLC" in page
    assert page.index("Big Old LLC") < page.index("Broken Co")


def test_filters_choose_whose_accounts_and_which_reason(
    supplier: Organization, users: Users, book: dict[str, Customer], customer: Customer
) -> None:
    issue_invoice(customer, "U-1", "10.00", due_date=days_ago(2))  # unassigned, 5 + 5
    with scope(organization=supplier):
        assert _order(unassigned=True) == [("Bolt Hardware", 10)]
        # Same score as the note: more past due comes first.
        assert _order()[-2:] == [("Bolt Hardware", 10), ("Noted Inc", 10)]
        assert _order(reason="callback") == [("Callback Bros", 20)]
        assert _order(users.admin.pk) == []
        assert _order(segment="key") == []
    client = signed_in(users.collector)
    mine = text_of(client.get("/desk/worklist/").content)
    assert "Bolt Hardware" not in mine and "5 accounts to work" in mine
    assert "Bolt Hardware" in text_of(client.get("/desk/worklist/?who=unassigned").content)
    assert "6 accounts to work" in text_of(client.get("/desk/worklist/?who=all").content)
    # Nonsense falls back to the defaults instead of failing.
    assert client.get("/desk/worklist/?who=x&reason=zzz&creditor=abc&page=99").status_code == 200


def test_an_agency_filters_by_creditor(
    agency: Organization, agency_clients: tuple[Creditor, Creditor]
) -> None:
    boss = make_member(agency, Role.ADMIN, "boss@northwind.example")
    first = make_customer(agency_clients[0], "D-1", name="Pat Water")
    second = make_customer(agency_clients[1], "D-2", name="Sam Hospital")
    issue_invoice(first, "A-1", "100.00", due_date=days_ago(10))
    issue_invoice(second, "A-2", "100.00", due_date=days_ago(10))
    client = signed_in(boss)
    page = text_of(client.get(f"/desk/worklist/?who=all&creditor={agency_clients[1].pk}").content)
    assert "Sam Hospital" in page and "Pat Water" not in page
    assert "City Water Utility" in page  # the filter offers the agency's clients


def test_the_worklist_page_costs_the_same_queries_for_many_rows(
    supplier: Organization,
    users: Users,
    book: dict[str, Customer],
    creditor: Creditor,
    django_assert_max_num_queries: Any,
) -> None:
    client = signed_in(users.collector)
    client.get("/desk/worklist/")
    with django_assert_max_num_queries(25) as few:
        client.get("/desk/worklist/")
    for n in range(15):
        c = make_customer(creditor, f"M-{n}")
        with scope(organization=supplier):
            Customer.objects.filter(pk=c.pk).update(assigned_collector=users.collector)
        issue_invoice(c, f"M-{n}", "70.00", due_date=days_ago(3))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/desk/worklist/")
    assert text_of(response.content).count("Log call") == 20


def test_a_manager_sees_the_worklist_but_no_actions(users: Users, book: dict[str, Customer]) -> None:
    page = text_of(signed_in(users.manager).get("/desk/worklist/?who=all").content)
    assert "Big Old LLC" in page
    assert "Log call" not in page and "Assign to me" not in page and "Apply to selected" not in page


def test_logging_no_answer_from_the_worklist_makes_a_callback_for_tomorrow(
    supplier: Organization, users: Users, book: dict[str, Customer]
) -> None:
    client = signed_in(users.collector)
    big = book["big"]
    response = client.post(
        f"/desk/customers/{big.pk}/calls/new/", {"outcome": "no_answer", "next": "/desk/worklist/?who=me"}
    )
    assert response.status_code == 302 and response["Location"] == "/desk/worklist/?who=me"
    with scope(organization=supplier):
        call = Activity.objects.get(customer=big, kind=Activity.Kind.CALL)
        assert (call.outcome, call.next_action_date, call.visibility) == ("no_answer", TOMORROW, "creditor")
        task = Task.objects.get(customer=big, kind=Task.Kind.CALLBACK, done_at__isnull=True)
        assert (task.due_date, task.assigned_to) == (TOMORROW, users.collector)
    callbacks = text_of(client.get("/desk/worklist/callbacks/").content)
    assert "Big Old LLC" in callbacks and "Tue 1 Jul 2025" in callbacks


def test_the_call_form_applies_dates_and_refusals(
    supplier: Organization, users: Users, customer: Customer
) -> None:
    client = signed_in(users.collector)
    url = f"/desk/customers/{customer.pk}/calls/new/"
    assert client.get(url).status_code == 200
    client.post(url, {"outcome": "left_message", "note": "Spoke to reception"})
    client.post(url, {"outcome": "busy", "no_callback": "1"})
    promised = client.post(url, {"outcome": "promised"})
    assert promised["Location"] == reverse("desk:promise_new", args=[customer.pk])
    bad = client.post(url, {"outcome": "no_answer", "next_action_date": "2025-06-01"})
    assert bad.status_code == 400 and "cannot be in the past" in text_of(bad.content)
    nonsense = client.post(url, {"outcome": "hung_up"})
    assert nonsense.status_code == 400
    away = client.post(url, {"outcome": "spoke", "next": "https://evil.example/"})
    assert away["Location"] == f"/desk/customers/{customer.pk}/"
    with scope(organization=supplier):
        calls = list(Activity.objects.filter(kind=Activity.Kind.CALL).order_by("pk"))
        assert [(c.outcome, c.next_action_date) for c in calls] == [
            ("left_message", TODAY + datetime.timedelta(days=2)),
            ("busy", None),
            ("promised", None),
            ("spoke", None),
        ]
        assert Activity.objects.get(kind=Activity.Kind.NOTE).visibility == Activity.Visibility.INTERNAL
        assert not Task.objects.filter(done_at__isnull=True).exists()  # each call closed the one before


def test_logging_a_letter_with_a_template(
    supplier: Organization, other_supplier: Organization, users: Users, customer: Customer
) -> None:
    with scope(organization=supplier):
        mine = MessageTemplate.objects.create(
            organization=supplier, key="final", channel=Channel.LETTER, name="Final demand", body="Pay."
        )
    with scope(organization=other_supplier):
        theirs = MessageTemplate.objects.create(
            organization=other_supplier,
            key="final",
            channel=Channel.LETTER,
            name="Letzte Mahnung",
            body="Zahlen.",
        )
    client = signed_in(users.collector)
    url = f"/desk/customers/{customer.pk}/letters/new/"
    assert "Final demand" in text_of(client.get(url).content)
    refused = client.post(url, {"sent_on": "2025-06-30", "template": str(theirs.pk)})
    assert refused.status_code == 400 and "Choose one of the letter templates" in text_of(refused.content)
    ahead = client.post(url, {"sent_on": "2025-07-05"})
    assert ahead.status_code == 400
    assert client.post(url, {"sent_on": "2025-06-28", "template": str(mine.pk)}).status_code == 302
    with scope(organization=supplier):
        letters = list(Activity.objects.filter(kind=Activity.Kind.LETTER))
        assert [(a.summary, a.visibility) for a in letters] == [
            ("Letter sent 2025-06-28: Final demand", "creditor")
        ]


def test_collectors_take_accounts_for_themselves_and_admins_assign_anyone(
    supplier: Organization, users: Users, customer: Customer
) -> None:
    url = f"/desk/customers/{customer.pk}/assign/"
    collector, admin = signed_in(users.collector), signed_in(users.admin)
    refused = collector.post(url, {"collector": str(users.admin.pk)})
    assert refused.status_code == 403
    assert collector.post(url, {"collector": ""}).status_code == 403
    assert signed_in(users.manager).post(url, {"collector": "me"}).status_code == 403
    with scope(organization=supplier):
        assert Customer.objects.get(pk=customer.pk).assigned_collector is None
        assert not AuditEvent.objects.filter(action="openar.customer.assigned").exists()
    assert collector.post(url, {"collector": "me"}).status_code == 302
    with scope(organization=supplier):
        assert Customer.objects.get(pk=customer.pk).assigned_collector == users.collector
    assert admin.post(url, {"collector": str(users.admin.pk)}).status_code == 302
    with scope(organization=supplier):
        assert Customer.objects.get(pk=customer.pk).assigned_collector == users.admin
    # A manager (no collecting) cannot be given accounts: nothing changes.
    admin.post(url, {"collector": str(users.manager.pk)})
    with scope(organization=supplier):
        assert Customer.objects.get(pk=customer.pk).assigned_collector == users.admin
    admin.post(url, {"collector": ""})
    with scope(organization=supplier):
        assert Customer.objects.get(pk=customer.pk).assigned_collector is None
        assert AuditEvent.objects.filter(action="openar.customer.assigned").count() == 3


def test_bulk_actions_on_selected_rows(
    supplier: Organization, users: Users, book: dict[str, Customer], other_customer: Customer
) -> None:
    client = signed_in(users.collector)
    ids = [str(book["amount"].pk), str(book["broken"].pk), str(other_customer.pk)]

    def bulk(**data: Any) -> Any:
        return client.post("/desk/worklist/bulk/", {"customers": ids, "next": "/desk/worklist/", **data})

    assert bulk(action="letter", sent_on="2025-06-29")["Location"] == "/desk/worklist/"
    with scope(organization=supplier):
        assert sorted(Activity.objects.filter(kind="letter").values_list("customer__number", flat=True)) == [
            "W-1",
            "W-2",
        ]
    with scope(organization=other_customer.organization):
        assert not Activity.objects.filter(customer=other_customer).exists()
    # A hold without a reason is refused for all; with one, placed on each.
    bulk(action="hold", reason="  ")
    with scope(organization=supplier):
        assert Hold.objects.count() == 1  # the book's own
    bulk(action="hold", reason="Creditor review", until="2025-07-10")
    with scope(organization=supplier):
        holds = Hold.objects.filter(reason="Creditor review")
        assert sorted(h.customer.number for h in holds) == ["W-1", "W-2"]
        assert {h.expires_at for h in holds} == {datetime.datetime(2025, 7, 11, 4, 0, tzinfo=datetime.UTC)}
        assert [name for name, _ in _order()] == ["Big Old LLC", "Callback Bros", "Noted Inc"]
    # Assigning to someone else is an administrator's: refused, nothing changes.
    bulk(action="assign", collector=str(users.admin.pk))
    with scope(organization=supplier):
        assert not Customer.objects.filter(assigned_collector=users.admin).exists()
    signed_in(users.admin).post(
        "/desk/worklist/bulk/", {"customers": ids, "action": "assign", "collector": str(users.admin.pk)}
    )
    with scope(organization=supplier):
        assert sorted(
            Customer.objects.filter(assigned_collector=users.admin).values_list("number", flat=True)
        ) == [
            "W-1",
            "W-2",
        ]
    ids.append(str(book["callback"].pk))
    bulk(action="callbacks_done")
    with scope(organization=supplier):
        assert list(
            Task.objects.filter(kind="callback", done_at__isnull=True).values_list("summary", flat=True)
        ) == ["Later"]
    assert client.post("/desk/worklist/bulk/", {"action": "letter"}).status_code == 302  # nothing selected
    assert client.post("/desk/worklist/bulk/", {"customers": ids, "action": "delete"}).status_code == 302


def test_callback_done_in_one_click(supplier: Organization, users: Users, book: dict[str, Customer]) -> None:
    with scope(organization=supplier):
        task = Task.objects.get(customer=book["callback"], kind="callback")
    client = signed_in(users.collector)
    page = text_of(client.get("/desk/worklist/callbacks/").content)
    assert "Callback Bros" in page and "Current Corp" in page  # due today; upcoming tomorrow
    assert client.post(f"/desk/callbacks/{task.pk}/done/")["Location"] == "/desk/worklist/callbacks/"
    with scope(organization=supplier):
        task.refresh_from_db()
        assert task.done_at is not None and task.done_by == users.collector
        assert "Callback Bros" not in dict(_order())
    assert signed_in(users.manager).post(f"/desk/callbacks/{task.pk}/done/").status_code == 403


def test_the_customer_page_shows_creditor_notes_and_a_collector_reads_them(
    supplier: Organization, users: Users, book: dict[str, Customer]
) -> None:
    noted = book["note"]
    manager_page = text_of(signed_in(users.manager).get(f"/desk/customers/{noted.pk}/").content)
    assert "Creditor notes" in manager_page and "Debtor moved to Ottawa" in manager_page
    with scope(organization=supplier):
        assert Activity.objects.filter(customer=noted, staff_unread=True).count() == 1  # a manager only looks
    page = text_of(signed_in(users.collector).get(f"/desk/customers/{noted.pk}/").content)
    assert "Creditor notes" in page and "Log call" in page and "Log letter" in page
    with scope(organization=supplier):
        assert not Activity.objects.filter(customer=noted, staff_unread=True).exists()
        assert "Noted Inc" not in dict(_order())
    again = text_of(signed_in(users.collector).get(f"/desk/customers/{noted.pk}/").content)
    assert "Creditor notes" not in again


def test_mark_read_button(supplier: Organization, users: Users, customer: Customer) -> None:
    _note(customer, "Call me")
    assert (
        signed_in(users.collector).post(f"/desk/customers/{customer.pk}/creditor-notes/read/").status_code
        == 302
    )
    with scope(organization=supplier):
        assert not Activity.objects.filter(staff_unread=True).exists()


ROUTES = [
    ("get", "/desk/customers/{id}/calls/new/", {}),
    ("post", "/desk/customers/{id}/calls/new/", {"outcome": "spoke"}),
    ("get", "/desk/customers/{id}/letters/new/", {}),
    ("post", "/desk/customers/{id}/letters/new/", {"sent_on": "2025-06-30"}),
    ("post", "/desk/customers/{id}/assign/", {"collector": "me"}),
    ("post", "/desk/customers/{id}/creditor-notes/read/", {}),
]


@pytest.mark.parametrize(("method", "route", "data"), ROUTES)
def test_another_organizations_customer_is_404_and_untouched(
    users: Users, other_customer: Customer, method: str, route: str, data: dict[str, str]
) -> None:
    _note(other_customer, "Theirs")
    client: Client = signed_in(users.admin)
    response = getattr(client, method)(route.format(id=other_customer.pk), data)
    assert response.status_code == 404
    with scope(organization=other_customer.organization):
        assert list(Activity.objects.values_list("summary", "staff_unread")) == [("Theirs", True)]
        assert Customer.objects.get(pk=other_customer.pk).assigned_collector is None


def test_another_organizations_callback_is_404(users: Users, other_customer: Customer) -> None:
    with scope(organization=other_customer.organization):
        task = task_create(customer=other_customer, kind=Task.Kind.CALLBACK, summary="Theirs", due_date=TODAY)
    assert signed_in(users.admin).post(f"/desk/callbacks/{task.pk}/done/").status_code == 404
    with scope(organization=other_customer.organization):
        assert Task.objects.get(pk=task.pk).done_at is None


def test_signed_out_visitors_go_to_sign_in(customer: Customer) -> None:
    for path in ("/desk/worklist/", "/desk/worklist/callbacks/", f"/desk/customers/{customer.pk}/calls/new/"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
