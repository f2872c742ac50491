"""Replies to our emails, posted by the email provider's inbound parse (``/hooks/email/inbound/``).

Every email we send with a thread carries ``Reply-To: reply+<token>@OPENAR_REPLY_DOMAIN``.
The provider receives mail for that domain and posts each message here, in the inbound
format the providers django-anymail supports have in common: a form post (multipart or
urlencoded) with Mailgun's fields (``recipient``, ``sender``, ``subject``, ``stripped-text``
or ``body-plain``, ``Message-Id``) or SendGrid's (``to``, ``from``, ``subject``, ``text``,
``headers``). The reply is kept in its thread as a received email, unread for staff.

Authentication is anymail's: HTTP Basic credentials that are the shared secret
``OPENAR_INBOUND_EMAIL_SECRET`` ("user:password", put in the webhook URL configured at the
provider). Without the setting the endpoint does not exist (404): an open endpoint would let
anyone write into any thread whose address they learned. Wrong or missing credentials are a
401 with a Basic challenge (some providers only send credentials once challenged).

The request has no session, so the tenant middleware leaves it without a scope: the thread
is found by its token across organizations (``scopes_disabled``, for that lookup only), and
the work is done in ``scope(organization=...)`` of the thread's organization.

Providers retry anything that is not a 2xx, so a message we cannot place (no reply address
of ours, an unknown token) is answered 200 and dropped with a log line, and a retried
delivery (same Message-Id, same thread) is stored once.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseNotFound, QueryDict
from django.views.decorators.csrf import csrf_exempt
from django_scopes import scope, scopes_disabled

from openar.customers.models import Contact
from openar.notifications.models import Channel, Message, Thread
from openar.notifications.services import message_receive

logger = logging.getLogger(__name__)

MAX_BODY = 20_000  # a reply, not an archive: long quoted histories are cut here
REALM = "OpenAR inbound email"
REPLY_ADDRESS = re.compile(r"^reply\+(?P<token>[A-Za-z0-9_-]{1,40})@(?P<domain>[^@\s]+)$", re.IGNORECASE)

# Where a quoted earlier message starts, when the provider did not strip it for us.
_QUOTE_HEADER = re.compile(r"^\s*(On\b.*\bwrote:\s*|-{2,}\s*Original Message\s*-{2,}\s*)$", re.IGNORECASE)
_OUTLOOK_FROM = re.compile(r"^\s*From:\s", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^\s*(Sent|Date):\s", re.IGNORECASE)


def authorized(request: HttpRequest, secret: str) -> bool:
    """Whether the request's Basic credentials are the shared secret, compared in constant
    time."""
    kind, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() != "basic" or not encoded:
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, secret.encode())


def _challenge() -> HttpResponse:
    response = HttpResponse("Authentication required.", status=401, content_type="text/plain")
    response["WWW-Authenticate"] = f'Basic realm="{REALM}"'
    return response


def _ok() -> HttpResponse:
    return HttpResponse("OK", content_type="text/plain")


def reply_token(data: QueryDict) -> str:
    """The thread token of the first of our reply addresses among the recipients: Mailgun's
    ``recipient``, SendGrid's ``to`` and ``cc`` headers and envelope."""
    values = [data.get("recipient", ""), data.get("to", ""), data.get("cc", "")]
    try:
        envelope = json.loads(data.get("envelope", "") or "{}")
        values += [str(address) for address in envelope.get("to", [])]
    except (ValueError, AttributeError):
        pass
    domain = (settings.OPENAR_REPLY_DOMAIN or "").lower()
    for _, address in getaddresses([value for value in values if value]):
        match = REPLY_ADDRESS.match(address.strip())
        if match and (not domain or match.group("domain").lower() == domain):
            return match.group("token")
    return ""


def _message_id(data: QueryDict) -> str:
    """Mailgun posts ``Message-Id`` (and the headers as JSON); SendGrid posts the raw
    headers."""
    for key in ("Message-Id", "message-id", "Message-ID"):
        if data.get(key):
            return str(data[key]).strip()
    try:
        for name, value in json.loads(data.get("message-headers", "") or "[]"):
            if str(name).lower() == "message-id":
                return str(value).strip()
    except (ValueError, TypeError):
        pass
    headers = str(data.get("headers", "") or "")
    if headers:
        return str(HeaderParser().parsestr(headers).get("Message-ID", "")).strip()
    return ""


def strip_quoted(text: str) -> str:
    """The new part of a reply: everything before the quoted earlier message ("On ...
    wrote:", "Original Message", an Outlook "From:/Sent:" block) and without trailing
    "> " lines. Providers that strip replies themselves (Mailgun's ``stripped-text``) do
    not need it."""
    lines = text.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if (
            _QUOTE_HEADER.match(line)
            or (line.strip().startswith("On ") and following.rstrip().endswith("wrote:"))
            or (_OUTLOOK_FROM.match(line) and _OUTLOOK_SENT.match(following))
        ):
            lines = lines[:index]
            break
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith(">")):
        lines.pop()
    new = "\n".join(lines).strip()
    return new or text.strip()


def _body(data: QueryDict) -> str:
    stripped = str(data.get("stripped-text", "") or "").strip()
    body = stripped or strip_quoted(str(data.get("body-plain", "") or data.get("text", "") or ""))
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + "\n\n[The rest of the email was cut.]"
    return body or "(The email had no text.)"


def _sender(data: QueryDict) -> str:
    return parseaddr(data.get("sender", "") or data.get("from", ""))[1]


def _contact(thread: Thread, data: QueryDict, sender: str) -> Contact | None:
    """The customer's contact who wrote, by the envelope sender or else the From address
    (mailing lists and forwarding rewrite the envelope). None: someone we do not know at the
    customer; the message is kept all the same."""
    for address in (sender, parseaddr(data.get("from", ""))[1]):
        if address:
            contact = (
                Contact.objects.filter(customer=thread.customer, email__iexact=address)
                .order_by("-is_primary", "pk")
                .first()
            )
            if contact is not None:
                return contact
    return None


@csrf_exempt  # the provider has no CSRF token; the shared secret stands in for it
def email_inbound(request: HttpRequest) -> HttpResponse:
    """One inbound email: kept in the thread its reply address names."""
    secret = settings.OPENAR_INBOUND_EMAIL_SECRET
    if not secret:
        return HttpResponseNotFound("Not found.", content_type="text/plain")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not authorized(request, secret):
        logger.warning("Inbound email refused: missing or wrong credentials")
        return _challenge()
    data = request.POST
    token = reply_token(data)
    with scopes_disabled():
        thread = (
            Thread.objects.select_related("organization", "customer").filter(token=token).first()
            if token
            else None
        )
    if thread is None:
        logger.info(
            "Inbound email for no thread of ours dropped (to %r)", data.get("recipient") or data.get("to")
        )
        return _ok()
    sender, message_id = _sender(data), _message_id(data)
    with scope(organization=thread.organization), transaction.atomic():
        # One at a time per thread, so that a provider's retry racing the first delivery is
        # still seen as a replay (the row lock; SQLite serializes writers anyway).
        thread = Thread.objects.select_for_update(of=("self",)).select_related("customer").get(pk=thread.pk)
        if (
            message_id
            and Message.objects.filter(
                thread=thread, direction=Message.Direction.IN, provider_id=message_id[:200]
            ).exists()
        ):
            return _ok()
        contact = _contact(thread, data, sender)
        message_receive(
            customer=thread.customer,
            channel=Channel.EMAIL,
            thread=thread,
            from_address=sender,
            subject=data.get("subject", ""),
            body=_body(data),
            contact=contact,
            provider_id=message_id,
        )
    return _ok()
