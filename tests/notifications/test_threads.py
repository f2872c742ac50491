"""Two-way messages in one record: the portal's conversations, the desk's inbox and replies,
email replies coming back through the inbound parse, and who may read and write what.

Threads and messages are created through the real services and pages; email leaves through
the locmem backend (``mail.outbox``) once ``dispatch_due`` sends what is ready.
"""

from __future__ import annotations

import base64
import logging
import re
from urllib.parse import urlencode

import pytest
from django.core import mail
from django.test import Client
from django_scopes import scope, scopes_disabled
from pytest_django.fixtures import DjangoAssertNumQueries, Settings

from factories import Users, make_contact, make_member, signed_in, text_of
from openar.customers.models import Contact, Customer
from openar.desk.inbox import unread_count as desk_unread
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink
from openar.notifications.models import Message, Thread
from openar.notifications.services import Draft, dispatch_due, message_create, message_receive, message_send
from openar.portal.messages import unread_count as portal_unread
from openar.tenants.access import Access
from openar.tenants.models import Membership, Organization, Role

SECRET = "mailgun:correct-horse-battery"
INBOUND = "/hooks/email/inbound/"


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def dana(users: Users, contact: Contact) -> Contact:
    """Bolt's contact Dana, linked to the customer's portal user (they are the same person)."""
    with scopes_disabled():
        Contact.objects.filter(pk=contact.pk).update(user=users.customer)
    contact.user = users.customer
    return contact


@pytest.fixture
def inbound(settings: Settings) -> str:
    settings.OPENAR_INBOUND_EMAIL_SECRET = SECRET
    return SECRET


def basic(secret: str = SECRET) -> str:
    return "Basic " + base64.b64encode(secret.encode()).decode()


def fresh(thread: Thread) -> Thread:
    with scopes_disabled():
        return Thread.objects.get(pk=thread.pk)


def messages_of(thread: Thread) -> list[Message]:
    with scopes_disabled():
        return list(Message.objects.filter(thread_id=thread.pk).order_by("pk"))


def message_count() -> int:
    with scopes_disabled():
        return Message.objects.count()


def ask(client: Client, subject: str = "Question about INV-7", body: str = "Can you send the POD?") -> Thread:
    """A customer starts a conversation from the portal."""
    response = client.post("/portal/messages/new/", {"subject": subject, "body": body})
    assert response.status_code == 302, response.content[:500]
    match = re.fullmatch(r"/portal/messages/(\d+)/", response["Location"])
    assert match, response["Location"]
    with scopes_disabled():
        return Thread.objects.get(pk=int(match.group(1)))


def team_email(contact: Contact, subject: str = "Your statement", text: str = "Hello Dana") -> Thread:
    """An email from the team to ``contact``, sent: a thread the customer can read."""
    with scope(organization=contact.organization):
        message = message_create(
            customer=contact.customer, channel="email", draft=Draft(subject, text), contact=contact
        )
    message_send(message_id=message.pk)
    assert message.thread is not None
    return fresh(message.thread)


def conversation(customer: Customer, subject: str) -> Thread:
    """A question of ``customer`` (any organization), as a portal message."""
    with scope(organization=customer.organization):
        message = message_receive(
            customer=customer, channel="portal", body=f"About {subject}", subject=subject
        )
    assert message.thread is not None
    return fresh(message.thread)


def mailgun(thread: Thread, **overrides: str) -> dict[str, str]:
    fields = {
        "recipient": f"reply+{thread.token}@reply.openar.test",
        "sender": "Dana@Bolt.example",
        "from": "Dana Payables <Dana@Bolt.example>",
        "subject": "Re: Your statement",
        "body-plain": "We paid it today.\n\nOn Mon, Acme wrote:\n> Hello Dana",
        "stripped-text": "We paid it today.",
        "Message-Id": "<reply-1@mail.bolt.example>",
    }
    return {**fields, **overrides}


# --- portal and desk, both ways -----------------------------------------------------------------


def test_a_customer_question_reaches_the_desk_unread_until_staff_open_it(users: Users, dana: Contact) -> None:
    portal, desk = signed_in(users.customer), signed_in(users.collector)

    thread = ask(portal, body="Can you send the POD?\nThe one for INV-7.")

    (message,) = messages_of(thread)
    assert (message.direction, message.channel, message.state) == ("in", "portal", "received")
    assert (message.contact_id, message.created_by_id) == (dana.pk, users.customer.pk)
    assert (fresh(thread).unread_by_staff, fresh(thread).unread_by_customer) == (1, 0)
    assert "Inbox (1) unread" in text_of(desk.get("/desk/").content)
    inbox = text_of(desk.get("/desk/inbox/").content)
    assert "Question about INV-7" in inbox and "1 unread" in inbox and "Bolt Hardware" in inbox
    assert "Question about INV-7" in text_of(desk.get("/desk/inbox/?show=unread").content)

    page = desk.get(f"/desk/inbox/{thread.pk}/")

    assert page.status_code == 200
    assert "Can you send the POD?<br>The one for INV-7." in page.content.decode()
    assert fresh(thread).unread_by_staff == 0
    assert messages_of(thread)[0].read_at is not None
    assert "Inbox (" not in text_of(desk.get("/desk/").content)
    assert "Question about INV-7" not in text_of(desk.get("/desk/inbox/?show=unread").content)
    mine = portal.get(f"/portal/messages/{thread.pk}/")
    assert "Can you send the POD?" in text_of(mine.content)


def test_a_desk_reply_is_emailed_with_the_threads_reply_address_and_shown_in_the_portal(
    users: Users, dana: Contact
) -> None:
    portal, desk = signed_in(users.customer), signed_in(users.collector)
    thread = ask(portal)
    form = desk.get(f"/desk/inbox/{thread.pk}/")
    assert "Sent by email to Dana Payables (dana@bolt.example)" in text_of(form.content)

    response = desk.post(f"/desk/inbox/{thread.pk}/reply/", {"body": "Here it is.\nRegards, Acme"})
    dispatch_due()

    reply = messages_of(thread)[-1]
    assert response["Location"] == f"/desk/inbox/{thread.pk}/#m-{reply.pk}"
    assert "on its way to Dana Payables" in text_of(desk.get(response["Location"]).content)
    assert (reply.direction, reply.channel, reply.state) == ("out", "email", "sent")
    assert (reply.contact_id, reply.created_by_id, reply.subject) == (
        dana.pk,
        users.collector.pk,
        "Re: Question about INV-7",
    )
    (email,) = mail.outbox
    assert email.to == ["dana@bolt.example"]
    assert email.reply_to == [f"reply+{thread.token}@reply.openar.test"]
    assert email.subject == "Re: Question about INV-7"
    assert "Here it is.\nRegards, Acme" in email.body
    html = email.alternatives[0][0]  # type: ignore[attr-defined]
    assert "Here it is.<br>Regards, Acme" in str(html)
    assert fresh(thread).unread_by_customer == 1

    assert "Messages (1) unread" in text_of(portal.get("/portal/").content)
    assert "1 new" in text_of(portal.get("/portal/messages/").content)
    page = portal.get(f"/portal/messages/{thread.pk}/")
    text = text_of(page.content)
    assert "Can you send the POD?" in text and "Here it is. Regards, Acme" in text
    assert text.index("Can you send the POD?") < text.index("Here it is.")  # oldest first
    assert "Acme Supplies" in text
    assert fresh(thread).unread_by_customer == 0
    assert messages_of(thread)[-1].read_at is not None
    assert "Messages (" not in text_of(portal.get("/portal/").content)


def test_an_email_reply_goes_to_the_contact_who_wrote_last(users: Users, dana: Contact) -> None:
    other = make_contact(dana.customer, "Lee Controller", "lee@bolt.example", is_primary=False)
    thread = team_email(dana)
    with scope(organization=dana.organization):
        message_receive(
            customer=dana.customer, channel="email", body="Lee here", thread=thread, contact=other
        )

    signed_in(users.collector).post(f"/desk/inbox/{thread.pk}/reply/", {"body": "Thanks Lee"})
    dispatch_due()

    assert [email.to for email in mail.outbox] == [["dana@bolt.example"], ["lee@bolt.example"]]


def test_a_customer_without_an_email_contact_gets_the_reply_in_the_portal_only(
    users: Users, supplier: Organization, customer_2: Customer
) -> None:
    user = make_member(supplier, Role.CUSTOMER, "ap@anvil-user.example", customer=customer_2)
    portal, desk = signed_in(user), signed_in(users.collector)
    thread = ask(portal)
    assert "portal messages only" in text_of(desk.get(f"/desk/inbox/{thread.pk}/").content)

    response = desk.post(f"/desk/inbox/{thread.pk}/reply/", {"body": "We will check."})
    dispatch_due()

    assert "your reply is in the portal" in text_of(desk.get(response["Location"]).content)
    reply = messages_of(thread)[-1]
    assert (reply.channel, reply.state, reply.to_address) == ("portal", "delivered", "")
    assert mail.outbox == []
    assert "We will check." in text_of(portal.get(f"/portal/messages/{thread.pk}/").content)


def test_the_customer_page_lists_its_threads_with_unread_counts(users: Users, dana: Contact) -> None:
    thread = ask(signed_in(users.customer))
    page = signed_in(users.manager).get(f"/desk/customers/{dana.customer_id}/")
    html = page.content.decode()
    section = html[html.index('id="msg-h"') :]
    assert f'href="/desk/inbox/{thread.pk}/"' in section
    assert "Question about INV-7 1 unread" in text_of(section)


def test_the_inbox_shows_conversations_unread_first(users: Users, dana: Contact) -> None:
    portal, desk = signed_in(users.customer), signed_in(users.collector)
    reminder_only = team_email(dana, subject="Friendly reminder")
    older = ask(portal, subject="Older question")
    newer = ask(portal, subject="Newer question")
    desk.get(f"/desk/inbox/{newer.pk}/")  # read

    listed = re.findall(r'href="/desk/inbox/(\d+)/"', desk.get("/desk/inbox/").content.decode())

    assert listed == [str(older.pk), str(newer.pk)]
    assert str(reminder_only.pk) not in listed  # a reminder nobody answered is no conversation
    unread = re.findall(r'href="/desk/inbox/(\d+)/"', desk.get("/desk/inbox/?show=unread").content.decode())
    assert unread == [str(older.pk)]
    assert desk.get(f"/desk/inbox/{reminder_only.pk}/").status_code == 200  # still open from its customer


def test_the_unread_badges_cost_one_query_each(
    users: Users, dana: Contact, supplier: Organization, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    team_email(dana)
    ask(signed_in(users.customer))
    with scopes_disabled():
        memberships = {
            m.role: m
            for m in Membership.objects.select_related("organization", "customer").filter(
                user__in=[users.customer, users.collector]
            )
        }
    customer_access = Access.from_membership(memberships[Role.CUSTOMER])
    staff_access = Access.from_membership(memberships[Role.COLLECTOR])
    with scope(organization=supplier):
        with django_assert_num_queries(1):
            assert portal_unread(customer_access) == 1
        with django_assert_num_queries(1):
            assert desk_unread(staff_access) == 1
        with django_assert_num_queries(0):
            assert portal_unread(staff_access) == 0 and desk_unread(customer_access) == 0


# --- what is refused ------------------------------------------------------------------------------


def test_empty_or_too_long_messages_are_refused_next_to_the_field(users: Users, dana: Contact) -> None:
    portal, desk = signed_in(users.customer), signed_in(users.collector)
    thread = team_email(dana)
    before = message_count()

    empty = portal.post("/portal/messages/new/", {"subject": "Hello", "body": "   "})
    too_long = portal.post(f"/portal/messages/{thread.pk}/", {"body": "x" * 5001})
    no_subject = portal.post("/portal/messages/new/", {"subject": "", "body": "Hi"})
    desk_empty = desk.post(f"/desk/inbox/{thread.pk}/reply/", {"body": ""})

    assert [r.status_code for r in (empty, too_long, no_subject, desk_empty)] == [400, 400, 400, 400]
    html = empty.content.decode()
    assert re.search(
        r'<textarea[^>]+aria-describedby="id_body-help id_body-error"[^>]+aria-invalid="true"', html
    )
    assert '<p class="field__error" id="id_body-error">Write your message first.' in html
    assert "Keep the message to 5000 characters or fewer (it has 5001)." in text_of(too_long.content)
    assert "x" * 5001 in too_long.content.decode()  # what was typed is kept for correcting
    assert "Say in a few words what it is about." in text_of(no_subject.content)
    assert "Write the reply first." in text_of(desk_empty.content)
    assert message_count() == before


def test_bodies_are_plain_text_escaped_with_their_line_breaks(users: Users, dana: Contact) -> None:
    portal = signed_in(users.customer)
    thread = ask(portal, subject="<i>Odd</i>", body='<script>alert("x")</script>\n<b>bold?</b>')
    for client, path in (
        (portal, f"/portal/messages/{thread.pk}/"),
        (signed_in(users.admin), f"/desk/inbox/{thread.pk}/"),
    ):
        html = client.get(path).content.decode()
        assert '<script>alert("x")</script>' not in html and "<b>bold?</b>" not in html, path
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;<br>&lt;b&gt;bold?&lt;/b&gt;" in html, path
        assert "&lt;i&gt;Odd&lt;/i&gt;" in html and "<i>Odd</i>" not in html, path


def test_the_portal_refuses_another_customers_threads(
    users: Users, dana: Contact, customer_2: Customer, other_customer: Customer
) -> None:
    portal = signed_in(users.customer)
    neighbour = conversation(customer_2, "Anvil private question")
    foreign = conversation(other_customer, "Zeta private question")
    before = message_count()

    for thread in (neighbour, foreign):
        assert portal.get(f"/portal/messages/{thread.pk}/").status_code == 404
        assert portal.post(f"/portal/messages/{thread.pk}/", {"body": "Sneaky"}).status_code == 404
        assert fresh(thread).unread_by_staff == 1  # nothing read, nothing added

    listing = text_of(portal.get("/portal/messages/").content)
    assert "Anvil private question" not in listing and "Zeta private question" not in listing
    assert message_count() == before


def test_the_desk_refuses_another_organizations_threads(
    users: Users, customer: Customer, other_customer: Customer
) -> None:
    desk = signed_in(users.admin)
    foreign = conversation(other_customer, "Zeta private question")
    before = message_count()

    assert desk.get(f"/desk/inbox/{foreign.pk}/").status_code == 404
    assert desk.post(f"/desk/inbox/{foreign.pk}/reply/", {"body": "Hi"}).status_code == 404
    assert "Zeta private question" not in text_of(desk.get("/desk/inbox/").content)
    assert "Inbox (" not in text_of(desk.get("/desk/").content)  # their unread is not ours
    assert fresh(foreign).unread_by_staff == 1
    assert message_count() == before


def test_managers_read_the_inbox_but_only_collectors_reply(users: Users, dana: Contact) -> None:
    thread = ask(signed_in(users.customer))
    manager = signed_in(users.manager)
    page = manager.get(f"/desk/inbox/{thread.pk}/")
    assert page.status_code == 200 and "<textarea" not in page.content.decode()
    assert manager.post(f"/desk/inbox/{thread.pk}/reply/", {"body": "Hi"}).status_code == 403
    assert len(messages_of(thread)) == 1


def test_staff_viewing_as_the_customer_read_without_marking_read_and_cannot_post(
    users: Users, dana: Contact
) -> None:
    thread = team_email(dana)
    client = signed_in(users.collector)
    client.post(f"/desk/customers/{dana.customer_id}/view-as/")
    before = message_count()

    page = client.get(f"/portal/messages/{thread.pk}/")
    reply = client.post(f"/portal/messages/{thread.pk}/", {"body": "Written by staff"})
    new = client.post("/portal/messages/new/", {"subject": "Hi", "body": "Written by staff"})

    assert page.status_code == 200
    assert "Hello Dana" in text_of(page.content)
    assert "messages cannot be sent from here" in text_of(page.content)
    assert "<textarea" not in page.content.decode()
    assert fresh(thread).unread_by_customer == 1  # the customer has not read it
    assert reply.status_code == new.status_code == 302
    assert "Viewing as the customer: messages cannot be sent from here." in text_of(
        client.get(reply["Location"]).content
    )
    assert message_count() == before


def narrow_client(contact: Contact) -> Client:
    """A browser that opened a sign-in link of ``contact`` and confirmed it."""
    with scope(organization=contact.organization):
        issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.ACCOUNT)
    client = Client()
    assert client.get(f"/l/{issued.token}/")["Location"] == "/l/confirm/"
    assert client.post("/l/confirm/").status_code == 302
    return client


def test_a_magic_link_session_reads_and_replies_to_its_contacts_threads(users: Users, dana: Contact) -> None:
    mine = team_email(dana, subject="Your statement")
    colleague = make_contact(dana.customer, "Lee Controller", "lee@bolt.example", is_primary=False)
    theirs = team_email(colleague, subject="For Lee only")
    client = narrow_client(dana)

    listing = client.get("/portal/messages/")
    assert listing.status_code == 200
    assert "Messages (1) unread" in text_of(listing.content)
    assert "Your statement" in text_of(listing.content) and "For Lee only" not in text_of(listing.content)
    assert client.get(f"/portal/messages/{theirs.pk}/").status_code == 404
    assert "Hello Dana" in text_of(client.get(f"/portal/messages/{mine.pk}/").content)
    assert fresh(mine).unread_by_customer == 0

    response = client.post(f"/portal/messages/{mine.pk}/", {"body": "Paid by wire today."})
    started = client.post("/portal/messages/new/", {"subject": "Address change", "body": "We moved."})

    assert response.status_code == started.status_code == 302
    reply = messages_of(mine)[-1]
    assert (reply.direction, reply.channel, reply.contact_id, reply.created_by_id) == (
        "in",
        "portal",
        dana.pk,
        None,
    )
    assert fresh(mine).unread_by_staff == 1
    assert "Address change" in text_of(client.get("/portal/messages/").content)


# --- email replies, inbound ------------------------------------------------------------------------


def test_an_emailed_reply_with_the_shared_secret_lands_in_its_thread(
    users: Users, dana: Contact, inbound: str
) -> None:
    thread = team_email(dana)

    response = Client().post(INBOUND, mailgun(thread), HTTP_AUTHORIZATION=basic())

    assert response.status_code == 200
    reply = messages_of(thread)[-1]
    assert (reply.direction, reply.channel, reply.state) == ("in", "email", "received")
    assert (reply.contact_id, reply.from_address, reply.subject) == (
        dana.pk,
        "Dana@Bolt.example",
        "Re: Your statement",
    )
    assert (reply.body_text, reply.provider_id) == ("We paid it today.", "<reply-1@mail.bolt.example>")
    assert fresh(thread).unread_by_staff == 1
    assert "Inbox (1) unread" in text_of(signed_in(users.collector).get("/desk/").content)
    page = signed_in(users.customer).get(f"/portal/messages/{thread.pk}/")
    assert "We paid it today." in text_of(page.content)

    again = Client().post(INBOUND, mailgun(thread), HTTP_AUTHORIZATION=basic())  # the provider retries

    assert again.status_code == 200
    assert len(messages_of(thread)) == 2
    assert fresh(thread).unread_by_staff == 1


def test_a_sendgrid_style_urlencoded_post_is_understood(dana: Contact, inbound: str) -> None:
    thread = team_email(dana)
    fields = {
        "to": f'"Acme Supplies" <reply+{thread.token}@reply.openar.test>',
        "from": "Dana Payables <dana@bolt.example>",
        "subject": "Re: Your statement",
        "text": (
            "Paid today.\r\n\r\n"
            "On Mon, 30 Jun 2025 at 10:00, Acme Supplies\r\n<no-reply@openar.invalid> wrote:\r\n"
            "> Hello Dana\r\n"
        ),
        "headers": "Message-ID: <sg-1@bolt.example>\nFrom: Dana Payables <dana@bolt.example>\n",
    }

    response = Client().post(
        INBOUND,
        urlencode(fields),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic(),
    )

    assert response.status_code == 200
    reply = messages_of(thread)[-1]
    assert (reply.body_text, reply.provider_id, reply.contact_id) == (
        "Paid today.",
        "<sg-1@bolt.example>",
        dana.pk,
    )


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic("mailgun:wrong"),
        basic("other:correct-horse-battery"),
        "Bearer " + SECRET,
        "Basic not-base64!",
    ],
    ids=["missing", "wrong password", "wrong user", "not basic", "garbage"],
)
def test_an_inbound_post_without_the_right_credentials_is_refused(
    dana: Contact, inbound: str, authorization: str | None
) -> None:
    thread = team_email(dana)
    before = message_count()
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = Client().post(INBOUND, mailgun(thread), **headers)  # type: ignore[arg-type]

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    assert message_count() == before


def test_an_inbound_post_for_no_thread_of_ours_is_accepted_and_dropped(
    dana: Contact, inbound: str, caplog: pytest.LogCaptureFixture
) -> None:
    thread = team_email(dana)
    before = message_count()

    with caplog.at_level(logging.INFO, logger="openar.notifications.inbound_email"):
        unknown = Client().post(
            INBOUND,
            mailgun(thread, recipient="reply+unknown-token@reply.openar.test"),
            HTTP_AUTHORIZATION=basic(),
        )
        elsewhere = Client().post(
            INBOUND,
            mailgun(thread, recipient=f"reply+{thread.token}@other.example"),
            HTTP_AUTHORIZATION=basic(),
        )

    assert unknown.status_code == elsewhere.status_code == 200  # a provider retries anything else
    assert message_count() == before
    assert sum("no thread of ours" in record.getMessage() for record in caplog.records) == 2


def test_the_inbound_endpoint_does_not_exist_without_a_secret(dana: Contact, settings: Settings) -> None:
    settings.OPENAR_INBOUND_EMAIL_SECRET = ""
    thread = team_email(dana)
    assert Client().post(INBOUND, mailgun(thread), HTTP_AUTHORIZATION=basic()).status_code == 404
    assert len(messages_of(thread)) == 1


def test_a_reply_from_an_unknown_sender_is_kept_without_a_contact(dana: Contact, inbound: str) -> None:
    thread = team_email(dana)
    fields = mailgun(thread, sender="someone@elsewhere.example", **{"from": "someone@elsewhere.example"})
    assert Client().post(INBOUND, fields, HTTP_AUTHORIZATION=basic()).status_code == 200
    reply = messages_of(thread)[-1]
    assert (reply.contact_id, reply.from_address) == (None, "someone@elsewhere.example")
