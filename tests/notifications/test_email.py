"""Email through Django's real SMTP backend to a real SMTP server on loopback: what leaves
(the parts, the attachment, the reply and unsubscribe headers, the Message-ID kept as the
provider's id), what the message and the timeline say afterwards, and what each kind of
server trouble does: a refused recipient fails the message and flags the address, a
deferral ("try later") and a server that is down are retried with backoff, then given up.
"""

from __future__ import annotations

import datetime
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.conf import settings
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from pytest_django.fixtures import Settings

from factories import NOON_ON_TODAY, TODAY, issue_invoice, make_document
from openar.billing.models import Document
from openar.billing.statements import render_statement_pdf, statement_for
from openar.customers.models import Activity, Contact, Customer
from openar.notifications.models import Message
from openar.notifications.services import BACKOFF, MAX_ATTEMPTS, Draft, message_create, message_send
from smtp import HOST, SMTPServer

SUBJECT = "Your statement from Acme Supplies"
PAY_LINK = "https://portal.openar.test/l/pay-token-123/"
UNSUBSCRIBE_LINK = "https://portal.openar.test/u/unsub-token-456/"
TEXT = (
    f"Hello Dana,\n\nYour statement is attached. Pay online: {PAY_LINK}\n\nUnsubscribe: {UNSUBSCRIBE_LINK}\n"
)
HTML = (
    f'<p>Hello Dana,</p><p>Your statement is attached. <a href="{PAY_LINK}">Pay online</a></p>'
    f'<p><a href="{UNSUBSCRIBE_LINK}">Unsubscribe</a></p>'
)


def use_smtp(settings: Settings, port: int) -> None:
    """Django sends through its real SMTP backend to ``HOST:port``, without TLS or login."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = HOST, port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    settings.OPENAR_CHANNELS = {**settings.OPENAR_CHANNELS, "email": "smtp"}


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture
def mailbox(smtp_server: SMTPServer, settings: Settings) -> Iterator[SMTPServer]:
    use_smtp(settings, smtp_server.port)
    smtp_server.clear()
    yield smtp_server
    smtp_server.clear()


# --- a server that refuses or defers some recipients ---------------------------------------------


class _RecipientRules:
    """An aiosmtpd handler that answers RCPT TO from ``answers`` (address → "550 ..."),
    accepts every other address, and keeps the envelopes of the messages it accepts."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.accepted: list[tuple[str, ...]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        answer = self.answers.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.accepted.append(tuple(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


@pytest.fixture
def picky_server(settings: Settings) -> Iterator[_RecipientRules]:
    """A real SMTP server on loopback that refuses the addresses the test lists."""
    rules = _RecipientRules({})
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = int(probe.getsockname()[1])
    controller = Controller(rules, hostname=HOST, port=port, ready_timeout=10)
    controller.start()
    use_smtp(settings, port)
    try:
        yield rules
    finally:
        controller.stop()


@pytest.fixture
def server_down(settings: Settings) -> Iterator[None]:
    """Nothing listens on the mail port: the port is held (bound, never listening) for the
    test so that no one else can take it, and connecting to it is refused at once."""
    with socket.socket() as held:
        held.bind((HOST, 0))
        use_smtp(settings, int(held.getsockname()[1]))
        yield


# --- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def statement(customer: Customer) -> Document:
    issue_invoice(customer, "INV-1001", "1200.00")
    with scope(organization=customer.organization):
        content = render_statement_pdf(statement_for(customer, TODAY))
    return make_document(
        customer,
        title="Statement of account",
        filename="statement-C-1001-2025-06-30.pdf",
        content=content,
        kind=Document.Kind.STATEMENT,
    )


def create_email(
    customer: Customer,
    contact: Contact,
    *,
    links: tuple[str, ...] = (PAY_LINK, UNSUBSCRIBE_LINK),
    attachments: list[Document] | None = None,
) -> Message:
    with scope(organization=customer.organization):
        return message_create(
            customer=customer,
            channel="email",
            contact=contact,
            draft=Draft(SUBJECT, TEXT, HTML, links=links),
            attachments=attachments or [],
            send=False,
        )


def stored(message: Message) -> Message:
    with scopes_disabled():
        return Message.objects.select_related("thread").get(pk=message.pk)


def email_activities(customer: Customer) -> list[Activity]:
    with scope(organization=customer.organization):
        return list(Activity.objects.filter(kind=Activity.Kind.EMAIL))


def body_of(message: EmailMessage, content_type: str) -> str:
    (part,) = [p for p in message.walk() if p.get_content_type() == content_type]
    return str(part.get_content())


# --- delivery --------------------------------------------------------------------------------------


def test_an_email_leaves_whole_with_its_statement(
    customer: Customer,
    contact: Contact,
    statement: Document,
    mailbox: SMTPServer,
    clock: time_machine.Traveller,
) -> None:
    message = create_email(customer, contact, attachments=[statement])

    assert message_send(message_id=message.pk) == Message.State.SENT

    (received,) = mailbox.messages
    assert received.rcpt_tos == ("dana@bolt.example",)
    mail = received.message
    assert mail["To"] == "dana@bolt.example"
    assert mail["From"] == "Acme Supplies <no-reply@openar.invalid>"
    assert mail["Subject"] == SUBJECT
    assert mail.get_content_type() == "multipart/mixed"
    (alternative,) = [p for p in mail.iter_parts() if p.get_content_type() == "multipart/alternative"]
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert PAY_LINK in body_of(mail, "text/plain")
    assert f'href="{PAY_LINK}"' in body_of(mail, "text/html")

    (attachment,) = mail.iter_attachments()
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "statement-C-1001-2025-06-30.pdf"
    with statement.file.open("rb") as file:
        assert attachment.get_content() == file.read()  # byte for byte
    assert attachment.get_content().startswith(b"%PDF-")

    message = stored(message)
    assert message.thread is not None
    assert mail["Reply-To"] == f"reply+{message.thread.token}@{settings.OPENAR_REPLY_DOMAIN}"
    assert mail["List-Unsubscribe"] == f"<{UNSUBSCRIBE_LINK}>"
    assert message.provider_id and mail["Message-ID"] == message.provider_id
    assert message.provider_id.endswith(f"@{settings.OPENAR_REPLY_DOMAIN}>")

    assert (message.state, message.attempts, message.error, message.provider) == ("sent", 1, "", "smtp")
    assert message.sent_at == NOON_ON_TODAY
    assert message.delivered_at is None  # the provider may report it later
    (activity,) = email_activities(customer)
    assert activity.summary == f"Email sent to dana@bolt.example: {SUBJECT}"
    assert activity.occurred_at == NOON_ON_TODAY
    assert activity.visibility == Activity.Visibility.CUSTOMER


def test_no_unsubscribe_header_without_an_unsubscribe_link(
    customer: Customer, contact: Contact, mailbox: SMTPServer, clock: time_machine.Traveller
) -> None:
    message = create_email(customer, contact, links=(PAY_LINK,))

    assert message_send(message_id=message.pk) == Message.State.SENT

    (received,) = mailbox.messages
    assert received.message["List-Unsubscribe"] is None
    assert received.message.get_content_type() == "multipart/alternative"  # nothing attached
    assert received.message["Message-ID"] == stored(message).provider_id


def test_a_message_is_sent_once(
    customer: Customer, contact: Contact, mailbox: SMTPServer, clock: time_machine.Traveller
) -> None:
    message = create_email(customer, contact)

    message_send(message_id=message.pk)
    assert message_send(message_id=message.pk) == Message.State.SENT

    assert len(mailbox.messages) == 1
    assert stored(message).attempts == 1
    assert len(email_activities(customer)) == 1


# --- refusals ----------------------------------------------------------------------------------------


def test_a_refused_recipient_fails_the_message_and_flags_the_address(
    customer: Customer, contact: Contact, picky_server: _RecipientRules, clock: time_machine.Traveller
) -> None:
    picky_server.answers["dana@bolt.example"] = "550 5.1.1 <dana@bolt.example>: Recipient address rejected"
    message = create_email(customer, contact)

    assert message_send(message_id=message.pk) == Message.State.FAILED

    message = stored(message)
    assert (message.state, message.attempts, message.sent_at) == ("failed", 1, None)
    assert message.error.startswith("The mail server refused the address: 550 ")
    assert "Recipient address rejected" in message.error
    assert message.not_before is None  # never retried
    with scope(organization=customer.organization):
        contact.refresh_from_db()
    assert contact.email_problem == message.error[:200]
    assert contact.phone_problem == ""
    assert picky_server.accepted == []
    assert email_activities(customer) == []


def test_a_deferred_recipient_is_tried_again_and_not_flagged(
    customer: Customer, contact: Contact, picky_server: _RecipientRules, clock: time_machine.Traveller
) -> None:
    """Greylisting and full mailboxes answer RCPT with 4xx: "not now", which says nothing
    wrong about the address."""
    picky_server.answers["dana@bolt.example"] = "451 4.7.1 Greylisted, please try again later"
    message = create_email(customer, contact)

    assert message_send(message_id=message.pk) == Message.State.READY

    message = stored(message)
    assert (message.attempts, message.not_before) == (1, NOON_ON_TODAY + BACKOFF[0])
    assert "451" in message.error
    with scope(organization=customer.organization):
        contact.refresh_from_db()
    assert contact.email_problem == ""

    del picky_server.answers["dana@bolt.example"]  # the greylist lets it through now
    clock.shift(BACKOFF[0])
    assert message_send(message_id=message.pk) == Message.State.SENT
    assert picky_server.accepted == [("dana@bolt.example",)]
    assert (stored(message).attempts, stored(message).error) == (2, "")


# --- the server is down --------------------------------------------------------------------------------


def test_a_server_that_is_down_is_retried_with_backoff_then_given_up(
    customer: Customer, contact: Contact, server_down: None, clock: time_machine.Traveller
) -> None:
    message = create_email(customer, contact)

    assert message_send(message_id=message.pk) == Message.State.READY

    first = stored(message)
    assert (first.state, first.attempts, first.sent_at) == ("ready", 1, None)
    assert first.not_before == NOON_ON_TODAY + BACKOFF[0]
    assert first.not_before > NOON_ON_TODAY
    assert first.error == "The mail server could not be reached (ConnectionRefusedError)."
    # Not before its time: asking early neither sends nor counts an attempt.
    assert message_send(message_id=message.pk) == Message.State.READY
    assert stored(message).attempts == 1

    for attempt in range(2, MAX_ATTEMPTS + 1):
        clock.move_to(stored(message).not_before)
        state = message_send(message_id=message.pk)
        current = stored(message)
        assert current.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert state == current.state == Message.State.READY
            assert current.not_before == timezone.now() + BACKOFF[attempt - 1]

    assert state == Message.State.FAILED
    assert current.error.endswith(f"Gave up after {MAX_ATTEMPTS} attempts.")
    assert current.sent_at is None
    with scope(organization=customer.organization):
        contact.refresh_from_db()
    assert contact.email_problem == ""  # the address may be fine; the server was not
    assert email_activities(customer) == []
    clock.shift(datetime.timedelta(days=1))
    assert message_send(message_id=message.pk) == Message.State.FAILED
    assert stored(message).attempts == MAX_ATTEMPTS
