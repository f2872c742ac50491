"""SMS through Twilio, end to end against a local fake of Twilio's API: what is sent and how
Twilio's answers move the message; the signed status callbacks (replays and late reports
never move a message back); replies by text, STOP and START."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from twilio.request_validator import RequestValidator

from factories import make_contact
from openar.core.models import AuditEvent
from openar.customers.models import Activity, Contact, Customer
from openar.notifications.channels.base import Outbound, PermanentFailure
from openar.notifications.channels.sms import TwilioChannel, e164
from openar.notifications.models import Channel, Message, Thread
from openar.notifications.services import Draft, message_create, message_send, thread_for
from openar.notifications.webhooks import EMPTY_TWIML

from .fake_twilio import FakeTwilio

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-twilio-auth-token-0123456789"
FROM_NUMBER = "+15005550006"
PHONE = "+14165550123"
# Behind a proxy: Twilio calls the public URL, the app sees another host (the test client's).
PUBLIC_SITE = "https://ar.example.com"


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def twilio(settings: Any, fake_twilio: FakeTwilio) -> FakeTwilio:
    """SMS go through the Twilio channel, to the fake."""
    settings.OPENAR_CHANNELS = {**settings.OPENAR_CHANNELS, "sms": "twilio"}
    settings.OPENAR_TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.OPENAR_TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.OPENAR_TWILIO_FROM = FROM_NUMBER
    settings.OPENAR_TWILIO_API_BASE = fake_twilio.url
    settings.SITE_URL = PUBLIC_SITE
    return fake_twilio


@pytest.fixture
def texting(contact: Contact) -> Contact:
    """The customer's contact, with a mobile number (typed with spaces and dashes) and
    consent to texts."""
    return with_phone(contact, "+1 416-555-0123")


def with_phone(contact: Contact, phone: str) -> Contact:
    with scope(organization=contact.organization):
        contact.phone, contact.consent_sms = phone, True
        contact.save(update_fields=["phone", "consent_sms"])
    return contact


def send_sms(
    contact: Contact, text: str = "Invoice INV-1 is due today.", thread: Thread | None = None
) -> Message:
    customer = contact.customer
    with scope(organization=customer.organization):
        message = message_create(
            customer=customer,
            channel=Channel.SMS,
            draft=Draft("", text),
            contact=contact,
            thread=thread,
            send=False,
        )
    message_send(message_id=message.pk)
    return fresh(message)


def fresh(message: Message) -> Message:
    with scopes_disabled():
        return Message.objects.get(pk=message.pk)


def fresh_contact(contact: Contact) -> Contact:
    with scopes_disabled():
        return Contact.objects.get(pk=contact.pk)


def snapshot() -> dict[str, list[Any]]:
    """Every row the webhooks may change, across tenants."""
    with scopes_disabled():
        return {
            "messages": list(Message.objects.order_by("pk").values()),
            "threads": list(Thread.objects.order_by("pk").values()),
            "contacts": list(Contact.objects.order_by("pk").values()),
            "activities": list(Activity.objects.order_by("pk").values()),
            "audit": list(AuditEvent.objects.order_by("pk").values()),
        }


def post_signed(
    name: str,
    params: dict[str, str],
    *,
    token: str = AUTH_TOKEN,
    signed_params: dict[str, str] | None = None,
    client: Client | None = None,
) -> Any:
    """POST ``params`` to the webhook ``name`` with Twilio's signature of ``signed_params``
    (default: the same params) computed with ``token`` over the public URL."""
    path = reverse(f"hooks:{name}")
    signature = RequestValidator(token).compute_signature(
        f"{settings.SITE_URL}{path}", signed_params if signed_params is not None else params
    )
    client = client or Client(enforce_csrf_checks=True)
    return client.post(path, params, headers={"X-Twilio-Signature": signature})


def status_params(message: Message, status: str, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": message.provider_id,
        "SmsSid": message.provider_id,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT_SID,
        "From": FROM_NUMBER,
        "To": message.to_address,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def inbound_params(body: str, *, sender: str = PHONE, sid: str = "SM" + "f" * 32) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": FROM_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "ApiVersion": "2010-04-01",
    }


# --- sending --------------------------------------------------------------------------------------


def test_sms_is_sent_through_twilio(twilio: FakeTwilio, customer: Customer, texting: Contact) -> None:
    message = send_sms(texting, "Invoice INV-1 is due today.")

    assert len(twilio.requests) == 1
    request = twilio.requests[0]
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert request.value("To") == PHONE  # the number as typed, in E.164
    assert request.value("Body") == "Invoice INV-1 is due today."
    assert request.value("From") == FROM_NUMBER
    assert request.value("MessagingServiceSid") is None
    assert request.value("StatusCallback") == f"{PUBLIC_SITE}/hooks/twilio/status/"

    assert message.state == Message.State.SENT
    assert message.provider == "twilio"
    assert message.provider_id.startswith("SM") and len(message.provider_id) == 34
    assert message.sent_at is not None and message.delivered_at is None
    assert message.attempts == 1 and message.error == ""
    with scope(organization=customer.organization):
        assert Activity.objects.filter(
            customer=customer, kind=Activity.Kind.SMS, summary__startswith="Text message sent"
        ).exists()


def test_a_messaging_service_sends_instead_of_a_number(
    settings: Any, twilio: FakeTwilio, texting: Contact
) -> None:
    settings.OPENAR_TWILIO_FROM = "MG" + "a" * 32
    message = send_sms(texting)

    assert message.state == Message.State.SENT
    assert twilio.requests[0].value("MessagingServiceSid") == "MG" + "a" * 32
    assert twilio.requests[0].value("From") is None


def test_a_number_that_is_not_e164_fails_without_asking_twilio(twilio: FakeTwilio, contact: Contact) -> None:
    with_phone(contact, "416-555-0123")  # no country code: not a number Twilio can text
    message = send_sms(contact)

    assert twilio.requests == []
    assert message.state == Message.State.FAILED
    assert "not a valid mobile number" in message.error
    assert "not a valid mobile number" in fresh_contact(contact).phone_problem


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (21211, "not a valid phone number"),
        (21614, "not a mobile number"),
        (21610, "opted out"),
    ],
)
def test_twilio_refusing_the_number_fails_for_good_and_flags_it(
    twilio: FakeTwilio, texting: Contact, code: int, reason: str
) -> None:
    twilio.fail_for(PHONE, 400, code, "Invalid 'To' Phone Number")
    message = send_sms(texting)

    assert len(twilio.requests) == 1
    assert message.state == Message.State.FAILED
    assert reason in message.error and f"Twilio error {code}" in message.error
    assert fresh_contact(texting).phone_problem == message.error[:200]
    # Failed for good: nothing left to retry.
    assert message_send(message_id=message.pk) == Message.State.FAILED
    assert len(twilio.requests) == 1


@pytest.mark.parametrize(("status", "code"), [(503, None), (429, 20429), (500, None)])
def test_twilio_unavailable_backs_off(
    twilio: FakeTwilio, texting: Contact, status: int, code: int | None
) -> None:
    twilio.fail_for(PHONE, status, code, "Too Many Requests" if code else "")
    before = timezone.now()
    message = send_sms(texting)
    after = timezone.now()

    assert message.state == Message.State.READY
    assert message.attempts == 1
    assert message.not_before is not None
    assert (
        before + datetime.timedelta(minutes=1) <= message.not_before <= after + datetime.timedelta(minutes=1)
    )
    assert message.provider_id == "" and message.sent_at is None
    assert message.error
    assert fresh_contact(texting).phone_problem == ""
    # Not due yet: a send now does nothing.
    assert message_send(message_id=message.pk) == Message.State.READY
    assert len(twilio.requests) == 1


def test_twilio_out_of_reach_backs_off(settings: Any, twilio: FakeTwilio, texting: Contact) -> None:
    address = twilio.url
    twilio.stop()  # nothing listens there any more
    settings.OPENAR_TWILIO_API_BASE = address
    message = send_sms(texting)

    assert message.state == Message.State.READY
    assert message.attempts == 1 and message.not_before is not None
    assert "could not be reached" in message.error
    assert fresh_contact(texting).phone_problem == ""


def test_wrong_credentials_are_retried_and_do_not_blame_the_number(
    settings: Any, twilio: FakeTwilio, texting: Contact
) -> None:
    settings.OPENAR_TWILIO_AUTH_TOKEN = "not-the-token"
    message = send_sms(texting)

    assert twilio.requests[0].auth == (ACCOUNT_SID, "not-the-token")
    assert message.state == Message.State.READY and message.attempts == 1
    assert "20003" in message.error
    assert fresh_contact(texting).phone_problem == ""


def test_numbers_are_checked_as_e164() -> None:
    assert e164("+1 (416) 555-0123") == PHONE
    assert e164("+44 20 7946 0958") == "+442079460958"
    for wrong in ("", "4165550123", "+1234567", "+1234567890123456", "+0 416 555 0123", "+1 416 555 O123"):
        assert e164(wrong) is None, wrong
    with pytest.raises(PermanentFailure, match="not a valid mobile number"):
        TwilioChannel().send(Outbound(message_id=1, organization_id=1, to="555-0123", subject="", text="Hi"))


# --- status callbacks ----------------------------------------------------------------------------


def test_delivered_report_marks_the_message_delivered(twilio: FakeTwilio, texting: Contact) -> None:
    message = send_sms(texting)

    response = post_signed("twilio_status", status_params(message, "delivered"))

    assert response.status_code == 200
    message = fresh(message)
    assert message.state == Message.State.DELIVERED
    assert message.delivered_at is not None


def test_unsigned_or_tampered_reports_are_refused(twilio: FakeTwilio, texting: Contact) -> None:
    message = send_sms(texting)
    params = status_params(message, "failed", ErrorCode="30003")
    path = reverse("hooks:twilio_status")
    before = snapshot()

    unsigned = Client(enforce_csrf_checks=True).post(path, params)
    garbage = Client().post(path, params, headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    tampered = post_signed(
        "twilio_status", params, signed_params=status_params(message, "delivered", ErrorCode="30003")
    )
    wrong_token = post_signed("twilio_status", params, token="someone-elses-token")
    as_get = Client().get(path, params)

    assert [r.status_code for r in (unsigned, garbage, tampered, wrong_token)] == [403, 403, 403, 403]
    assert as_get.status_code == 405
    assert snapshot() == before
    assert fresh(message).state == Message.State.SENT


def test_no_auth_token_configured_accepts_nothing(
    settings: Any, twilio: FakeTwilio, texting: Contact
) -> None:
    message = send_sms(texting)
    settings.OPENAR_TWILIO_AUTH_TOKEN = ""

    response = post_signed("twilio_status", status_params(message, "delivered"), token="")

    assert response.status_code == 403
    assert fresh(message).state == Message.State.SENT


def test_reports_late_or_replayed_never_move_a_message_back(twilio: FakeTwilio, texting: Contact) -> None:
    message = send_sms(texting)
    assert post_signed("twilio_status", status_params(message, "delivered")).status_code == 200
    delivered = fresh(message)
    before = snapshot()

    for status in ("sent", "delivered", "queued", "sending"):
        assert post_signed("twilio_status", status_params(message, status)).status_code == 200

    assert snapshot() == before
    assert fresh(message).state == Message.State.DELIVERED
    assert fresh(message).delivered_at == delivered.delivered_at


@pytest.mark.parametrize("status", ["undelivered", "failed"])
def test_undelivered_report_fails_the_message_and_flags_the_number(
    twilio: FakeTwilio, texting: Contact, status: str
) -> None:
    message = send_sms(texting)

    response = post_signed("twilio_status", status_params(message, status, ErrorCode="30003"))

    assert response.status_code == 200
    message = fresh(message)
    assert message.state == Message.State.FAILED
    assert "switched off or out of reach" in message.error and "30003" in message.error
    assert fresh_contact(texting).phone_problem == message.error[:200]
    # A late "delivered" (out of order) does not undo the failure.
    post_signed("twilio_status", status_params(message, "delivered"))
    assert fresh(message).state == Message.State.FAILED


def test_report_of_an_unknown_message_is_acknowledged_and_ignored(
    twilio: FakeTwilio, texting: Contact
) -> None:
    message = send_sms(texting)
    before = snapshot()
    params = status_params(message, "failed", ErrorCode="30003")
    params["MessageSid"] = params["SmsSid"] = "SM" + "9" * 32

    response = post_signed("twilio_status", params)

    assert response.status_code == 200
    assert snapshot() == before


# --- inbound texts: STOP and START ---------------------------------------------------------------


def test_stop_turns_sms_consent_off_and_start_turns_it_back_on(
    twilio: FakeTwilio, customer: Customer, texting: Contact
) -> None:
    response = post_signed("twilio_inbound", inbound_params("  Stop \n"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert response.content.decode() == EMPTY_TWIML
    assert fresh_contact(texting).consent_sms is False
    with scope(organization=customer.organization):
        out = AuditEvent.objects.get(action="openar.contact.sms_opt_out")
        assert (out.object_type, out.object_id) == ("customers.contact", str(texting.pk))
        assert out.data["keyword"] == "STOP" and out.data["changed"] is True
        assert Activity.objects.filter(customer=customer, summary__contains="replied STOP").exists()
        assert not Message.objects.filter(direction=Message.Direction.IN).exists()  # not kept as a reply

    post_signed("twilio_inbound", inbound_params("start", sid="SM" + "e" * 32))

    assert fresh_contact(texting).consent_sms is True
    with scope(organization=customer.organization):
        opt_in = AuditEvent.objects.get(action="openar.contact.sms_opt_in")
        assert opt_in.object_id == str(texting.pk) and opt_in.data["keyword"] == "START"


@pytest.mark.parametrize("keyword", ["STOPALL", "unsubscribe", "Cancel", "end", "QUIT"])
def test_every_opt_out_keyword_counts(twilio: FakeTwilio, texting: Contact, keyword: str) -> None:
    post_signed("twilio_inbound", inbound_params(keyword))
    assert fresh_contact(texting).consent_sms is False


def test_stop_reaches_the_number_in_every_organization(
    twilio: FakeTwilio, texting: Contact, other_customer: Customer
) -> None:
    elsewhere = with_phone(make_contact(other_customer, "Zed Zahler", "zed@zeta.example"), "+14165550123")

    post_signed("twilio_inbound", inbound_params("STOP"))

    assert fresh_contact(texting).consent_sms is False
    assert fresh_contact(elsewhere).consent_sms is False
    for contact in (texting, elsewhere):
        with scope(organization=contact.organization):
            event = AuditEvent.objects.get(action="openar.contact.sms_opt_out")
            assert event.object_id == str(contact.pk)


def test_unsigned_stop_changes_nothing(twilio: FakeTwilio, texting: Contact) -> None:
    before = snapshot()
    response = Client().post(reverse("hooks:twilio_inbound"), inbound_params("STOP"))
    assert response.status_code == 403
    assert snapshot() == before
    assert fresh_contact(texting).consent_sms is True


# --- inbound texts: replies ----------------------------------------------------------------------


def test_a_reply_lands_in_the_thread_of_the_last_text(
    twilio: FakeTwilio, customer: Customer, texting: Contact
) -> None:
    with scope(organization=customer.organization):
        older = thread_for(customer, "Earlier reminder")
        thread = thread_for(customer, "Reminder: INV-1")
    send_sms(texting, "First reminder.", thread=older)
    send_sms(texting, "Invoice INV-1 is due today.", thread=thread)

    response = post_signed("twilio_inbound", inbound_params("I will pay on Friday."))

    assert response.status_code == 200
    assert response.content.decode() == EMPTY_TWIML
    with scope(organization=customer.organization):
        reply = Message.objects.get(direction=Message.Direction.IN)
        assert reply.customer == customer and reply.contact == texting
        assert reply.channel == Channel.SMS and reply.state == Message.State.RECEIVED
        assert reply.body_text == "I will pay on Friday."
        assert reply.from_address == PHONE
        assert reply.provider_id == "SM" + "f" * 32
        assert reply.thread_id == thread.pk
        thread.refresh_from_db()
        assert thread.unread_by_staff == 1
        assert thread.last_message_at is not None
        assert Activity.objects.filter(
            customer=customer, kind=Activity.Kind.SMS, summary__contains="I will pay on Friday."
        ).exists()


def test_a_retried_reply_is_kept_once(twilio: FakeTwilio, customer: Customer, texting: Contact) -> None:
    send_sms(texting)
    post_signed("twilio_inbound", inbound_params("Paid yesterday."))
    post_signed("twilio_inbound", inbound_params("Paid yesterday."))

    with scope(organization=customer.organization):
        assert Message.objects.filter(direction=Message.Direction.IN).count() == 1


def test_replies_to_texts_without_a_thread_continue_one_conversation(
    twilio: FakeTwilio, customer: Customer, texting: Contact
) -> None:
    send_sms(texting)  # reminders by text are created without a thread

    post_signed("twilio_inbound", inbound_params("Who is this?", sid="SM" + "1" * 32))
    post_signed("twilio_inbound", inbound_params("Ah, got it.", sid="SM" + "2" * 32))

    with scope(organization=customer.organization):
        replies = list(Message.objects.filter(direction=Message.Direction.IN).order_by("pk"))
        assert len(replies) == 2
        assert replies[0].thread_id is not None and replies[0].thread_id == replies[1].thread_id
        assert replies[0].contact == texting
        thread = Thread.objects.get(pk=replies[0].thread_id)
        assert thread.unread_by_staff == 2


def test_a_shared_number_replies_to_the_customer_texted_last(
    twilio: FakeTwilio, customer: Customer, customer_2: Customer, texting: Contact, other_customer: Customer
) -> None:
    colleague = with_phone(make_contact(customer_2, "Sam Anvil", "sam@anvil.example"), PHONE)
    elsewhere = with_phone(make_contact(other_customer, "Zed Zahler", "zed@zeta.example"), PHONE)
    send_sms(texting, "For Bolt.")
    send_sms(elsewhere, "For Zeta.")
    send_sms(colleague, "For Anvil.")  # the last one

    post_signed("twilio_inbound", inbound_params("Which invoice?"))

    with scopes_disabled():
        replies = list(Message.objects.filter(direction=Message.Direction.IN))
    assert len(replies) == 1
    assert replies[0].customer_id == customer_2.pk and replies[0].contact_id == colleague.pk


def test_a_number_never_texted_reaches_every_customer_that_has_it(
    twilio: FakeTwilio, customer: Customer, texting: Contact, other_customer: Customer
) -> None:
    elsewhere = with_phone(make_contact(other_customer, "Zed Zahler", "zed@zeta.example"), PHONE)

    post_signed("twilio_inbound", inbound_params("Hello?"))

    with scopes_disabled():
        replies = {m.customer_id: m for m in Message.objects.filter(direction=Message.Direction.IN)}
    assert set(replies) == {customer.pk, other_customer.pk}
    assert replies[customer.pk].contact_id == texting.pk
    assert replies[other_customer.pk].contact_id == elsewhere.pk
    assert replies[other_customer.pk].organization_id == other_customer.organization_id


def test_a_text_from_an_unknown_number_is_acknowledged_and_dropped(
    twilio: FakeTwilio, texting: Contact
) -> None:
    before = snapshot()
    response = post_signed("twilio_inbound", inbound_params("Hi", sender="+447700900123"))
    assert response.status_code == 200
    assert response.content.decode() == EMPTY_TWIML
    assert snapshot() == before
