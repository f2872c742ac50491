"""Twilio's webhooks: delivery reports of the texts we send, and the texts people send us.

Twilio calls these URLs without a session, so the tenant middleware leaves the request with
an empty scope (any tenant query would raise). Each view finds what it needs across
organizations with ``scopes_disabled()``, for that lookup only, and then does its work
inside ``scope(organization=...)`` of the organization the row belongs to, as a task would.

Both views trust nothing they are sent until the ``X-Twilio-Signature`` header checks out
against our auth token and the URL as Twilio called it. Behind a proxy the request's own
host and scheme are not the ones Twilio used, so that URL is ``SITE_URL`` + the path (the
same base ``message_send`` gives Twilio as the status callback).

Twilio retries a webhook that does not answer 2xx, so anything we cannot place (an unknown
SID, a number nobody has) is answered 200 and dropped, and a retried inbound text (same
MessageSid) is not stored twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_scopes import scope, scopes_disabled
from twilio.request_validator import RequestValidator

from openar.customers.models import Contact, Customer
from openar.customers.services import contact_sms_consent_set
from openar.notifications.channels.sms import delivery_error, digits_of
from openar.notifications.models import Channel, Message, Thread
from openar.notifications.services import message_delivery_update, message_receive

logger = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

# Twilio's standard opt-out and opt-in keywords: the whole message, trimmed, in any case.
# Twilio itself stops delivering our texts after an opt-out; we record it so that reminders
# stop choosing SMS for the contact (and so that staff see why).
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})

# Twilio's MessageStatus → our state. Statuses before "sent" (queued, accepted, scheduled,
# sending) say nothing we do not know once Twilio has given us the SID; "canceled" (a
# scheduled message withdrawn) is not the number's fault: all of those are ignored.
STATUS_STATES: dict[str, str] = {
    "sent": Message.State.SENT,
    "delivered": Message.State.DELIVERED,
    "read": Message.State.DELIVERED,
    "undelivered": Message.State.FAILED,
    "failed": Message.State.FAILED,
}

# Fewer digits than this is no phone number of a person (short codes, garbage): never matched.
MIN_NUMBER_DIGITS = 8


def signature_valid(request: HttpRequest) -> bool:
    """Whether Twilio signed this request with our auth token. Without a token configured
    nothing is accepted: an empty key would let anyone compute a valid signature."""
    token = settings.OPENAR_TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    url = f"{settings.SITE_URL}{request.get_full_path()}"
    return bool(RequestValidator(token).validate(url, request.POST, signature))


def twilio_webhook(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """POST only, no CSRF token (Twilio has none; the signature stands in for it), and a 403
    before the view runs unless the signature is Twilio's."""

    def wrapped(request: HttpRequest) -> HttpResponse:
        if not signature_valid(request):
            logger.warning("Twilio webhook %s refused: missing or bad signature", request.path)
            return HttpResponseForbidden("Bad signature.", content_type="text/plain")
        return view(request)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return csrf_exempt(require_POST(wrapped))


def _sid(request: HttpRequest) -> str:
    return request.POST.get("MessageSid") or request.POST.get("SmsSid") or ""


@twilio_webhook
def twilio_status(request: HttpRequest) -> HttpResponse:
    """Twilio's status callback for a text we sent: moves the message on (sent, delivered,
    failed). ``message_delivery_update`` keeps a replayed or late report from moving the
    message back."""
    sid = _sid(request)
    status = (request.POST.get("MessageStatus") or request.POST.get("SmsStatus") or "").lower()
    state = STATUS_STATES.get(status)
    with scopes_disabled():
        message = (
            Message.objects.select_related("organization")
            .filter(provider_id=sid, channel=Channel.SMS, direction=Message.Direction.OUT)
            .first()
            if sid
            else None
        )
    if message is None:
        # Unknown here (or a report that raced ahead of our own record of the SID): a 200,
        # or Twilio would keep retrying something we can never place.
        logger.info("Twilio status %r for unknown message %r ignored", status, sid)
        return HttpResponse(status=200, content_type="text/plain")
    if state is None:
        return HttpResponse(status=200, content_type="text/plain")
    error = ""
    if state == Message.State.FAILED:
        error = delivery_error(request.POST.get("ErrorCode"), request.POST.get("ErrorMessage", ""))
    with scope(organization=message.organization):
        message_delivery_update(message=message, state=state, error=error)
    return HttpResponse(status=200, content_type="text/plain")


@twilio_webhook
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    """A text sent to our number. An opt-out or opt-in keyword changes the SMS consent of
    every contact with that number; anything else is kept as a received message of the
    customer (see ``_receive``). The answer is empty TwiML: we send no automatic reply
    (Twilio answers the keywords itself)."""
    sender = request.POST.get("From", "")
    body = request.POST.get("Body", "")
    sid = _sid(request)
    keyword = body.strip().upper()
    # With Twilio's Advanced Opt-Out, Twilio classifies the message itself (custom keywords).
    opt_type = request.POST.get("OptOutType", "").strip().upper()
    number = digits_of(sender)
    if len(number) >= MIN_NUMBER_DIGITS:
        found = _find_number(number)
        if opt_type == "STOP" or keyword in OPT_OUT_KEYWORDS:
            _set_consent(found.contacts, consent=False, keyword=keyword or opt_type, sid=sid)
        elif opt_type == "START" or keyword in OPT_IN_KEYWORDS:
            _set_consent(found.contacts, consent=True, keyword=keyword or opt_type, sid=sid)
        elif body.strip():
            _receive(found, number=number, sender=sender, body=body, sid=sid)
    else:
        logger.info("Twilio inbound text from %r ignored: not a phone number", sender)
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


@dataclass(frozen=True)
class Found:
    """Who has a phone number, across organizations: contacts, and customers whose own
    number it is (a text to a customer without a contact goes to the customer's number)."""

    contacts: list[Contact]
    customers: list[Customer]


def _number_regex(number: str) -> str:
    """A pattern matching ``number``'s digits however they were typed ("+1 (416) 555-0100")."""
    return r"^\D*" + r"\D*".join(number) + r"\D*$"


def _find_number(number: str) -> Found:
    """Contact and customer phone numbers are free text, so they are compared by their
    digits (a full scan of phones: inbound texts are rare next to everything else)."""
    pattern = _number_regex(number)
    with scopes_disabled():
        contacts = list(
            Contact.objects.select_related("organization", "customer__organization")
            .filter(phone__regex=pattern)
            .order_by("pk")
        )
        customers = {contact.customer_id: contact.customer for contact in contacts}
        for customer in Customer.objects.select_related("organization").filter(phone__regex=pattern):
            customers.setdefault(customer.pk, customer)
    return Found(
        contacts=[c for c in contacts if digits_of(c.phone) == number],
        customers=sorted(customers.values(), key=lambda customer: customer.pk),
    )


def _set_consent(contacts: list[Contact], *, consent: bool, keyword: str, sid: str) -> None:
    """Every contact with the number, in every organization: a person who says STOP means
    every text from this number. Each is audited in its organization, even when consent was
    already so (the request itself is the evidence); the timeline shows actual changes."""
    for contact in contacts:
        with scope(organization=contact.organization):
            contact_sms_consent_set(contact=contact, consent=consent, keyword=keyword, message_sid=sid)


def _receive(found: Found, *, number: str, sender: str, body: str, sid: str) -> None:
    """Keep the text as a received message of the customer it answers.

    Our texts to several customers' contacts may go out from one Twilio number, so the
    sender's number alone may not say which customer a reply is for. It goes to the customer
    that most recently got a text from us at that number, in the thread of that text. When
    we never texted the number, every customer with a contact (or own number) of that number
    gets it, each in its own organization: a message nobody sees is worse than one a
    customer's collector did not expect, and each of them already holds this number.
    """
    if not found.customers:
        logger.info("Twilio inbound text %r from a number nobody has: dropped", sid)
        return
    pattern = _number_regex(number)
    with scopes_disabled():
        if (
            sid
            and Message.objects.filter(
                provider_id=sid, channel=Channel.SMS, direction=Message.Direction.IN
            ).exists()
        ):
            return  # Twilio retried a text we already kept
        latest = (
            Message.objects.select_related("customer__organization", "contact", "thread")
            .filter(
                channel=Channel.SMS,
                direction=Message.Direction.OUT,
                state__in=(Message.State.SENT, Message.State.DELIVERED),
                customer__in=[customer.pk for customer in found.customers],
                to_address__regex=pattern,
            )
            .order_by("-sent_at", "-pk")
            .first()
        )
    customers = [latest.customer] if latest is not None else found.customers
    for customer in customers:
        contact = _contact_for(found, customer, latest)
        with scope(organization=customer.organization):
            thread = _thread_for_reply(customer, pattern, latest)
            subject = "" if thread else f"Text message from {contact.name if contact else sender}"
            message_receive(
                customer=customer,
                channel=Channel.SMS,
                body=body,
                from_address=sender,
                subject=subject,
                contact=contact,
                thread=thread,
                provider_id=sid,
            )


def _contact_for(found: Found, customer: Customer, latest: Message | None) -> Contact | None:
    """The contact of ``customer`` who has the number: the one we last texted, if it is."""
    mine = [contact for contact in found.contacts if contact.customer_id == customer.pk]
    if latest is not None and latest.contact is not None:
        for contact in mine:
            if contact.pk == latest.contact_id:
                return contact
    return mine[0] if mine else None


def _thread_for_reply(customer: Customer, pattern: str, latest: Message | None) -> Thread | None:
    """The thread of our last text to the number; texts are often sent without one (only
    email and portal messages get a thread when created), and then the conversation by text
    with that number goes on in the thread of the last text that has one, either way. None:
    ``message_receive`` starts one."""
    if latest is not None and latest.customer_id == customer.pk and latest.thread is not None:
        return latest.thread
    earlier = (
        Message.objects.select_related("thread")
        .filter(customer=customer, channel=Channel.SMS, thread__isnull=False)
        .filter(
            Q(direction=Message.Direction.OUT, to_address__regex=pattern)
            | Q(direction=Message.Direction.IN, from_address__regex=pattern)
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    return earlier.thread if earlier is not None else None
