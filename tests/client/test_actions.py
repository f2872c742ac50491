"""What a creditor client does on an account: notes, holds, contact details, messages to
the collectors. Each writes its audit event and a timeline entry, tells the collector, and
a refused request writes nothing."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import time_machine
from django.core import mail
from django_scopes import scope, scopes_disabled

from factories import NOON_ON_TODAY, TODAY, Users, make_member, row_counts, signed_in, text_of
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Contact, Customer, Hold
from openar.notifications.models import Message, Thread
from openar.notifications.services import Draft, creditor_message_reply, message_create
from openar.reminders.engine import run
from openar.tenants.models import Creditor, Organization, Role

from .book import Book, build_book, staff_hold


@pytest.fixture
def book(users: Users, agency: Organization, agency_clients: tuple[Creditor, Creditor]) -> Book:
    with time_machine.travel(NOON_ON_TODAY, tick=False):
        return build_book(users, agency, agency_clients)


def at(day: int) -> datetime.datetime:
    return datetime.datetime.combine(
        TODAY + datetime.timedelta(days=day), datetime.time(10), tzinfo=datetime.UTC
    )


def audit(action: str) -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def test_a_note_reaches_the_collectors_and_never_the_debtor(
    book: Book, django_capture_on_commit_callbacks: Any
) -> None:
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(book.client).post(
            f"/client/accounts/{book.pat.pk}/notes/", {"body": "Debtor called us: will pay Friday."}
        )
    assert response.status_code == 302 and response["Location"].endswith("#timeline")
    with scope(organization=book.agency):
        note = Activity.objects.get(kind=Activity.Kind.NOTE, actor=book.client)
    assert (
        note.summary == "Note from Creditor of Northwind Collections (City Water Utility): "
        "Debtor called us: will pay Friday."
    )
    assert (note.visibility, note.staff_unread, note.customer_id) == ("creditor", True, book.pat.pk)
    (event,) = audit("openar.client.note_added")
    assert (event.actor_id, event.object_id) == (book.client.pk, str(note.pk))
    (notice,) = mail.outbox
    assert notice.to == ["casey@northwind.example"]
    assert "Debtor called us: will pay Friday." in notice.body
    # The collector reads it on the desk; the debtor's portal never shows it.
    desk = text_of(signed_in(book.collector).get(f"/desk/customers/{book.pat.pk}/").content)
    assert "Debtor called us: will pay Friday." in desk
    debtor_user = make_member(book.agency, Role.CUSTOMER, "pat@home.example", customer=book.pat)
    portal = signed_in(debtor_user).get("/portal/activity/").content.decode()
    assert "will pay Friday" not in portal


def test_an_empty_note_is_refused_and_writes_nothing(book: Book) -> None:
    before = row_counts()
    response = signed_in(book.client).post(f"/client/accounts/{book.pat.pk}/notes/", {"body": "   "})
    assert response.status_code == 400
    assert "Write the note first." in text_of(response.content)
    assert row_counts() == before


def test_a_creditor_hold_stops_reminders_until_it_ends(book: Book) -> None:
    with scope(organization=book.agency):
        Contact.objects.filter(customer=book.lee).delete()
    with scopes_disabled():
        Contact.objects.create(
            organization=book.agency, customer=book.lee, name="Lee", email="lee@home.example"
        )
    client = signed_in(book.client)
    with time_machine.travel(at(0), tick=False):
        response = client.post(
            f"/client/accounts/{book.lee.pk}/holds/",
            {"reason": "Debtor is in hospital", "until": str(TODAY + datetime.timedelta(days=9))},
        )
        assert response.status_code == 302
        page = text_of(client.get(f"/client/accounts/{book.lee.pk}/").content)
    assert (
        "On hold Debtor is in hospital Placed 30 Jun 2025 by Creditor of Northwind Collections "
        "· until 9 Jul 2025" in page
    )
    with scope(organization=book.agency):
        hold = Hold.objects.get(customer=book.lee)
    assert hold.placed_by_id == book.client.pk
    assert [e.object_id for e in audit("openar.client.hold_placed")] == [str(hold.pk)]
    for day in (1, 9):
        with time_machine.travel(at(day), tick=False), scope(organization=book.agency):
            run(book.agency, at(day))
            assert not Message.objects.filter(customer=book.lee).exists(), day
            assert Message.objects.filter(customer=book.pat).exists()  # the others are reminded
    with time_machine.travel(at(10), tick=False), scope(organization=book.agency):
        run(book.agency, at(10))
        assert Message.objects.filter(customer=book.lee).count() == 1  # the day after its last


def test_a_creditor_releases_its_own_holds_but_not_the_agencys(book: Book) -> None:
    client = signed_in(book.client)
    client.post(f"/client/accounts/{book.pat.pk}/holds/", {"reason": "Talking to the debtor"})
    with scope(organization=book.agency):
        own = Hold.objects.get(customer=book.pat)
    agency_hold = staff_hold(book.pat, book.collector, reason="Legal review")
    # A colleague of the same creditor may release it.
    response = signed_in(book.colleague).post(f"/client/accounts/{book.pat.pk}/holds/{own.pk}/release/")
    assert response.status_code == 302
    response = client.post(f"/client/accounts/{book.pat.pk}/holds/{agency_hold.pk}/release/", follow=True)
    assert "This hold was placed by the agency: ask your collector to release it." in text_of(
        response.content
    )
    with scope(organization=book.agency):
        own.refresh_from_db()
        agency_hold.refresh_from_db()
    assert own.released_by_id == book.colleague.pk
    assert agency_hold.released_at is None
    assert len(audit("openar.client.hold_released")) == 1
    # Another creditor cannot touch it at all.
    assert (
        signed_in(book.mercy_client)
        .post(f"/client/accounts/{book.pat.pk}/holds/{agency_hold.pk}/release/")
        .status_code
        == 404
    )


def test_contact_details_are_corrected_with_the_previous_values_kept(book: Book) -> None:
    client = signed_in(book.client)
    response = client.post(
        f"/client/accounts/{book.pat.pk}/details/",
        {"email": "pat@new.example", "phone": "416-555-0199", "city": "Toronto", "country": "ca"},
    )
    assert response.status_code == 302
    with scope(organization=book.agency):
        pat = Customer.objects.get(pk=book.pat.pk)
    assert (pat.email, pat.phone, pat.city, pat.country) == (
        "pat@new.example",
        "416-555-0199",
        "Toronto",
        "CA",
    )
    (event,) = audit("openar.client.account_updated")
    assert event.data["changes"] == {
        "email": ["pat@jones.example", "pat@new.example"],
        "phone": ["416-555-0101", "416-555-0199"],
        "city": ["", "Toronto"],
        "country": ["", "CA"],
    }
    response = client.post(
        f"/client/accounts/{book.pat.pk}/contacts/{book.pat_contact.pk}/",
        {"name": "Pat Jones", "email": "pat.j@work.example", "phone": ""},
    )
    assert response.status_code == 302
    (event,) = audit("openar.client.contact_updated")
    assert event.data["changes"] == {"email": ["pat.jones@home.example", "pat.j@work.example"]}
    assert audit("openar.contact.updated")[0].data["changes"]["email"] == [
        "pat.jones@home.example",
        "pat.j@work.example",
    ]


def test_a_bad_email_is_refused_and_nothing_is_lost(book: Book) -> None:
    before = row_counts()
    response = signed_in(book.client).post(
        f"/client/accounts/{book.pat.pk}/details/", {"email": "not an address", "phone": "416-555-0000"}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a valid email address." in body and 'value="416-555-0000"' in body
    with scope(organization=book.agency):
        assert Customer.objects.get(pk=book.pat.pk).phone == "416-555-0101"
    assert row_counts() == before


def test_messages_to_the_collector_stay_between_creditor_and_agency(book: Book) -> None:
    client = signed_in(book.client)
    response = client.post(
        f"/client/accounts/{book.pat.pk}/messages/new/",
        {"subject": "Settlement offer", "body": "We would accept 80% of the balance."},
    )
    assert response.status_code == 302
    with scope(organization=book.agency):
        assert not Thread.objects.filter(customer=book.pat).exists()  # no customer thread
        thread = Thread.creditor_threads.get(customer=book.pat)
        (message,) = thread.messages.all()
    assert (thread.subject, thread.unread_by_staff, message.direction, message.state) == (
        "Settlement offer",
        1,
        "in",
        "received",
    )
    assert len(audit("openar.client.message_sent")) == 1
    # The collector answers; the creditor sees it, the debtor never does.
    with scope(organization=book.agency):
        creditor_message_reply(thread=thread, author=book.collector, body="Offer passed on to the debtor.")
        with pytest.raises(ValueError):
            message_create(customer=book.pat, channel="email", draft=Draft("x", "y"), thread=thread)
    page = text_of(client.get(f"/client/messages/{thread.pk}/").content)
    assert "We would accept 80% of the balance." in page and "Offer passed on to the debtor." in page
    debtor_user = make_member(book.agency, Role.CUSTOMER, "pat@home.example", customer=book.pat)
    portal = signed_in(debtor_user)
    for path in ("/portal/messages/", f"/portal/messages/{thread.pk}/", "/portal/activity/"):
        response = portal.get(path)
        assert "80% of the balance" not in response.content.decode(), path
        assert "Settlement offer" not in response.content.decode(), path
    assert portal.get(f"/portal/messages/{thread.pk}/").status_code == 404
    # Nor another creditor of the agency.
    assert signed_in(book.mercy_client).get(f"/client/messages/{thread.pk}/").status_code == 404
    assert "Settlement offer" not in signed_in(book.mercy_client).get("/client/messages/").content.decode()


def test_a_foreign_account_accepts_no_action(book: Book) -> None:
    client = signed_in(book.client)
    before = row_counts()
    for path, data in (
        (f"/client/accounts/{book.sam.pk}/notes/", {"body": "x"}),
        (f"/client/accounts/{book.sam.pk}/holds/", {"reason": "x"}),
        (f"/client/accounts/{book.sam.pk}/details/", {"email": "a@b.example"}),
        (f"/client/accounts/{book.sam.pk}/messages/new/", {"body": "x"}),
    ):
        assert client.post(path, data).status_code == 404, path
    assert row_counts() == before
    with scopes_disabled():
        assert not Hold.objects.filter(customer=book.sam).exists()
