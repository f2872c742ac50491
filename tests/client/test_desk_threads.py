"""The desk's side of the creditor clients' conversations: the list (unread first; mine, one
client, unread), a conversation (opening it marks the client's messages read for staff), the
collector's answer (in the client's portal, the client's writers told by email, never the
debtor), the nav and the customer page's card, and what must be refused: a manager
answering, an empty answer, a customer thread or another organization's conversation."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from factories import (
    NOON_ON_TODAY,
    Users,
    make_creditor,
    make_customer,
    make_member,
    make_organization,
    row_counts,
    signed_in,
    text_of,
)
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Customer
from openar.identity.models import User
from openar.notifications.models import Message, Thread
from openar.notifications.services import Draft, creditor_message_post, message_create
from openar.tenants.models import Creditor, Membership, Organization, Role

from .book import Book, build_book


@pytest.fixture
def book(users: Users, agency: Organization, agency_clients: tuple[Creditor, Creditor]) -> Book:
    with time_machine.travel(NOON_ON_TODAY, tick=False):
        return build_book(users, agency, agency_clients)


def post(book: Book, customer: Customer, author: User, subject: str, body: str, minutes_ago: int) -> Thread:
    """A creditor's message, written ``minutes_ago``."""
    with scope(organization=book.agency):
        message = creditor_message_post(customer=customer, author=author, subject=subject, body=body)
        when = timezone.now() - datetime.timedelta(minutes=minutes_ago)
        Thread.creditor_threads.filter(pk=message.thread_id).update(last_message_at=when)
        Message.objects.filter(pk=message.pk).update(created_at=when, sent_at=when)
        return Thread.creditor_threads.get(pk=message.thread_id)


def fresh(thread: Thread) -> Thread:
    with scopes_disabled():
        return Thread.creditor_threads.get(pk=thread.pk)


def subjects_in(page: str, *subjects: str) -> list[str]:
    """The given subjects in the order the page shows them (absent ones left out)."""
    found = [(page.index(s), s) for s in subjects if s in page]
    return [s for _, s in sorted(found)]


@pytest.fixture
def threads(book: Book) -> dict[str, Thread]:
    """Pat (assigned to Casey): one unread and one answered; Lee (unassigned): unread; Sam
    (Mercy Hospital's, assigned to Casey): unread."""
    pat_read = post(book, book.pat, book.client, "Pat: address changed", "Pat moved to Ottawa.", 50)
    with scope(organization=book.agency):
        Thread.creditor_threads.filter(pk=pat_read.pk).update(unread_by_staff=0)
    return {
        "pat_read": pat_read,
        "pat": post(book, book.pat, book.client, "Pat: settlement offer", "We accept 80%.", 40),
        "lee": post(book, book.lee, book.colleague, "Lee: bankruptcy notice", "Lee filed.", 10),
        "sam": post(book, book.sam, book.mercy_client, "Sam: insurance paid", "Check the EOB.", 20),
    }


ALL = ("Pat: address changed", "Pat: settlement offer", "Lee: bankruptcy notice", "Sam: insurance paid")


def test_the_list_shows_unread_first_and_narrows(book: Book, threads: dict[str, Thread]) -> None:
    desk = signed_in(book.collector)
    response = desk.get("/desk/creditor-messages/")
    assert response.status_code == 200
    page = text_of(response.content)
    # Unread first (most recent first among them), then the read ones.
    assert subjects_in(page, *ALL) == [
        "Lee: bankruptcy notice",
        "Sam: insurance paid",
        "Pat: settlement offer",
        "Pat: address changed",
    ]
    assert "3 unread messages." in page
    assert "Client messages (3) unread" in page  # the nav's count
    assert "Client: Lee filed." in page and "City Water Utility · Lee Chan CW-200 · Unassigned" in page

    mine = text_of(desk.get("/desk/creditor-messages/?who=mine").content)
    assert subjects_in(mine, *ALL) == ["Sam: insurance paid", "Pat: settlement offer", "Pat: address changed"]
    unread = text_of(desk.get("/desk/creditor-messages/?show=unread").content)
    assert subjects_in(unread, *ALL) == [
        "Lee: bankruptcy notice",
        "Sam: insurance paid",
        "Pat: settlement offer",
    ]
    mercy = text_of(desk.get(f"/desk/creditor-messages/?client={book.mercy.pk}").content)
    assert subjects_in(mercy, *ALL) == ["Sam: insurance paid"]
    about_pat = text_of(desk.get(f"/desk/creditor-messages/?account={book.pat.pk}").content)
    assert subjects_in(about_pat, *ALL) == ["Pat: settlement offer", "Pat: address changed"]
    assert "About Pat Jones (CW-100) only" in about_pat
    # Nonsense filters fall back to everything, and an admin with no account sees "mine" empty.
    assert subjects_in(text_of(desk.get("/desk/creditor-messages/?who=x&show=y&client=z").content), *ALL) == [
        "Lee: bankruptcy notice",
        "Sam: insurance paid",
        "Pat: settlement offer",
        "Pat: address changed",
    ]
    admin = make_member(book.agency, Role.ADMIN, "boss@northwind.example")
    empty = text_of(signed_in(admin).get("/desk/creditor-messages/?who=mine").content)
    assert subjects_in(empty, *ALL) == []
    assert "No client has written about the accounts assigned to you." in empty


def test_opening_a_conversation_marks_it_read_for_staff_only(book: Book, threads: dict[str, Thread]) -> None:
    thread = threads["pat"]
    with scope(organization=book.agency):
        Message.objects.create(  # an earlier answer the client has not read yet
            organization=book.agency,
            customer=book.pat,
            thread=thread,
            direction=Message.Direction.OUT,
            channel="portal",
            state=Message.State.DELIVERED,
            body_text="Looking into it.",
            created_by=book.collector,
        )
        Thread.creditor_threads.filter(pk=thread.pk).update(unread_by_customer=1)
    desk = signed_in(book.collector)
    response = desk.get(f"/desk/creditor-messages/{thread.pk}/")
    assert response.status_code == 200
    page = text_of(response.content)
    assert "We accept 80%." in page and "From City Water Utility · New" in page
    assert "Looking into it." in page and "not read yet" in page
    assert "Answer City Water Utility" in page
    after = fresh(thread)
    assert (after.unread_by_staff, after.unread_by_customer) == (0, 1)
    with scopes_disabled():
        incoming = Message.objects.get(thread=thread, direction="in")
        outgoing = Message.objects.get(thread=thread, direction="out")
    assert incoming.read_at is not None and outgoing.read_at is None
    # A second look: nothing new any more.
    assert "· New" not in text_of(desk.get(f"/desk/creditor-messages/{thread.pk}/").content)


def test_a_collector_answers_and_the_client_is_told(
    book: Book, threads: dict[str, Thread], django_capture_on_commit_callbacks: Any
) -> None:
    thread = threads["pat"]
    mail.outbox.clear()
    desk = signed_in(book.collector)
    with django_capture_on_commit_callbacks(execute=True):
        response = desk.post(
            f"/desk/creditor-messages/{thread.pk}/reply/", {"body": "  Offer passed on to the debtor.  "}
        )
    assert response.status_code == 302
    with scopes_disabled():
        answer = Message.objects.get(thread=thread, direction="out")
        entry = Activity.objects.get(customer=book.pat, actor=book.collector, kind="portal")
        (event,) = AuditEvent.objects.filter(action="openar.creditor_thread.replied")
    assert response["Location"] == f"/desk/creditor-messages/{thread.pk}/#m-{answer.pk}"
    assert (answer.body_text, answer.channel, answer.created_by_id, answer.subject) == (
        "Offer passed on to the debtor.",
        "portal",
        book.collector.pk,
        "Re: Pat: settlement offer",
    )
    assert (fresh(thread).unread_by_customer, fresh(thread).unread_by_staff) == (1, 0)
    assert (entry.visibility, entry.summary) == (
        "creditor",
        "Casey Collector answered City Water Utility: Pat: settlement offer",
    )
    assert (event.actor_id, event.object_id) == (book.collector.pk, str(answer.pk))
    # The client's writer (not the colleague who never wrote here, not the debtor) is told.
    (email,) = mail.outbox
    assert email.to == [book.client.email]
    assert email.subject == "Northwind Collections answered about Pat Jones (CW-100)"
    assert (
        "Casey Collector of Northwind Collections answered your message “Pat: settlement offer”" in email.body
    )
    assert "Offer passed on to the debtor." in email.body
    assert f"/client/messages/{thread.pk}/" in email.body
    followed = desk.get(response["Location"])
    assert "told by email: client@citywater.example" in text_of(followed.content)
    # Nothing went to the debtor: no customer thread, no message to anyone at Pat.
    with scopes_disabled():
        assert not Thread.objects.filter(customer=book.pat).exists()
        assert not Message.objects.filter(customer=book.pat, channel="email").exists()
    # The client reads it in its portal, where it is new.
    client = signed_in(book.client)
    assert "1 new" in text_of(client.get(f"/client/accounts/{book.pat.pk}/").content)
    assert "Offer passed on to the debtor." in text_of(client.get(f"/client/messages/{thread.pk}/").content)
    assert fresh(thread).unread_by_customer == 0


def test_when_the_writer_has_left_every_active_client_user_is_told(
    book: Book, threads: dict[str, Thread], django_capture_on_commit_callbacks: Any
) -> None:
    with scopes_disabled():
        Membership.objects.filter(user=book.client).update(is_active=False)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(book.collector).post(
            f"/desk/creditor-messages/{threads['pat'].pk}/reply/", {"body": "Noted."}
        )
    assert response.status_code == 302
    assert sorted(address for email in mail.outbox for address in email.to) == ["ops@citywater.example"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("   ", "Write the answer first."),
        ("x" * 5001, "Keep the answer to 5000 characters or fewer (it has 5001)."),
    ],
    ids=["empty", "too long"],
)
def test_a_bad_answer_is_refused_and_writes_nothing(
    book: Book, threads: dict[str, Thread], body: str, error: str, django_capture_on_commit_callbacks: Any
) -> None:
    mail.outbox.clear()
    before = row_counts()
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(book.collector).post(
            f"/desk/creditor-messages/{threads['pat'].pk}/reply/", {"body": body}
        )
    assert response.status_code == 400
    assert error in text_of(response.content)
    if body.strip():
        assert body in response.content.decode()  # what was typed is kept
    assert row_counts() == before and mail.outbox == []
    with scopes_disabled():
        assert not Message.objects.filter(thread=threads["pat"], direction="out").exists()


def test_a_manager_reads_but_does_not_answer(book: Book, threads: dict[str, Thread]) -> None:
    manager = signed_in(make_member(book.agency, Role.MANAGER, "manager@northwind.example"))
    page = manager.get(f"/desk/creditor-messages/{threads['pat'].pk}/")
    assert page.status_code == 200 and "Answer City Water Utility" not in text_of(page.content)
    before = row_counts()
    response = manager.post(f"/desk/creditor-messages/{threads['pat'].pk}/reply/", {"body": "Hi"})
    assert response.status_code == 403
    assert row_counts() == before
    with scopes_disabled():
        assert not Message.objects.filter(thread=threads["pat"], direction="out").exists()
    # The nav: client messages, but no client payments to confirm.
    nav = text_of(manager.get("/desk/").content)
    assert "Client messages" in nav and "Client payments" not in nav


def test_a_customer_thread_or_another_organizations_conversation_is_404(
    book: Book, threads: dict[str, Thread], users: Users
) -> None:
    with scope(organization=book.agency):
        reminder = message_create(
            customer=book.pat, channel="email", draft=Draft("Your balance", "Please pay.")
        )
        customer_thread = Thread.objects.get(messages=reminder)
    southwind = make_organization("southwind", name="Southwind Recovery", kind=Organization.Kind.AGENCY)
    with scope(organization=southwind):
        hospital = make_creditor(southwind, "hospital", name="South Hospital")
        owing = make_customer(hospital, "SH-1", name="Quinn Secret")
        writer = make_member(southwind, Role.CREDITOR, "ap@southhospital.example", creditor=hospital)
        written = creditor_message_post(
            customer=owing, author=writer, subject="Southwind secret subject", body="Secret body"
        )
        foreign = Thread.creditor_threads.get(messages=written)
    desk = signed_in(book.collector)
    before = row_counts()
    for thread in (customer_thread, foreign):
        for response in (
            desk.get(f"/desk/creditor-messages/{thread.pk}/"),
            desk.post(f"/desk/creditor-messages/{thread.pk}/reply/", {"body": "Hello"}),
        ):
            assert response.status_code == 404
            assert "Southwind secret" not in response.content.decode()
            assert "Your balance" not in response.content.decode()
    assert row_counts() == before
    with scopes_disabled():
        assert not Message.objects.filter(body_text="Hello").exists()
        assert Thread.creditor_threads.get(pk=foreign.pk).unread_by_staff == 1  # not marked read
    listing = desk.get("/desk/creditor-messages/").content.decode()
    assert "Southwind secret" not in listing and "Your balance" not in listing
    # The supplier's desk has no client tabs and lists no agency's conversations.
    supplier_desk = signed_in(users.admin)
    assert "Client messages" not in text_of(supplier_desk.get("/desk/").content)
    assert supplier_desk.get(f"/desk/creditor-messages/{threads['pat'].pk}/").status_code == 404
    assert "Pat: settlement offer" not in supplier_desk.get("/desk/creditor-messages/").content.decode()


def test_the_customer_page_shows_the_clients_conversations(book: Book, threads: dict[str, Thread]) -> None:
    desk = signed_in(book.collector)
    html = desk.get(f"/desk/customers/{book.pat.pk}/").content.decode()
    page = text_of(html)
    card = text_of(html.split('id="creditor-messages">', 1)[1].split("</section>", 1)[0])
    assert card.startswith("Messages with City Water Utility The client")
    assert subjects_in(card, "Pat: settlement offer", "Pat: address changed") == [
        "Pat: settlement offer",
        "Pat: address changed",
    ]
    assert "Pat: settlement offer 1 unread" in card and "Pat: address changed 0" not in card
    assert "Lee: bankruptcy notice" not in page and "Sam: insurance paid" not in page
    assert f'href="/desk/creditor-messages/{threads["pat"].pk}/"' in html
    kim = text_of(desk.get(f"/desk/customers/{book.kim.pk}/").content)
    assert "City Water Utility has not written about this account yet." in kim
    # Both client tabs for a collector of the agency, with their counts.
    assert "Client messages (3) unread" in page and "Client payments" in page


def test_a_suppliers_customer_page_has_no_client_card(users: Users, customer: Customer) -> None:
    page = text_of(signed_in(users.collector).get(f"/desk/customers/{customer.pk}/").content)
    assert "Messages with" not in page and "Client messages" not in page and "Client payments" not in page
