"""SMS through Twilio's Messaging API, with the official SDK.

``TwilioChannel`` sends one text and returns its SID; Twilio then reports delivery to
``Outbound.status_callback`` (``openar.notifications.webhooks.twilio_status``), which moves
the message on to delivered or failed. What Twilio answers is sorted for ``message_send``:

- a number Twilio says is invalid, unreachable, not a mobile or opted out (replied STOP) is a
  ``PermanentFailure``: retrying cannot help, and staff must fix the contact's number;
- a rate limit, a Twilio outage or a network error is a ``TemporaryFailure``;
- any other refusal (bad credentials, an unusable sender, a message Twilio will not take)
  is a ``TemporaryFailure`` too: it is our configuration, not the contact's number, so the
  number is not flagged and the message is retried while someone fixes the settings, then
  failed by the usual retry limit.

``settings.OPENAR_TWILIO_API_BASE`` points every request of the SDK at another base URL (the
test suite's local fake of Twilio); production leaves it empty.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from openar.notifications.channels.base import Outbound, PermanentFailure, Sent, TemporaryFailure
from openar.notifications.channels.registry import register

logger = logging.getLogger(__name__)

# E.164: a "+", a country code that does not start with 0, at most 15 digits in all.
E164 = re.compile(r"\+[1-9][0-9]{7,14}")
# What people type between the digits of a number; dropped before the number is checked.
_SEPARATORS = re.compile(r"[\s().\-/]")

# Seconds to wait for Twilio. The SDK's default is to wait forever, which would hold a worker;
# a timeout is retried like any temporary failure.
TIMEOUT = 30.0

# Twilio error codes that mean "this number will never get this text": the message fails at
# once and the contact's number is flagged. (https://www.twilio.com/docs/api/errors)
RECIPIENT_ERRORS: dict[int, str] = {
    21211: "Twilio says this is not a valid phone number.",
    21214: "This phone number cannot be reached.",
    21217: "Twilio says this phone number does not look valid.",
    21401: "Twilio says this is not a valid phone number.",
    21407: "This phone number cannot receive text messages.",
    21408: "Texts to this number's country are not enabled on our Twilio account.",
    21421: "Twilio says this is not a valid phone number.",
    21610: "The recipient opted out of our text messages (replied STOP).",
    21612: "This phone number cannot receive text messages from our number.",
    21614: "This is not a mobile number; it cannot receive text messages.",
}

# What the delivery errors of status callbacks (ErrorCode) mean, for staff.
DELIVERY_ERRORS: dict[int, str] = {
    **RECIPIENT_ERRORS,
    30003: "The phone is switched off or out of reach.",
    30004: "The recipient or their carrier blocked the message.",
    30005: "The number is unknown to its carrier (it may no longer exist).",
    30006: "The number is a landline or its carrier cannot receive texts.",
    30007: "The carrier filtered the message as unwanted.",
    30008: "The carrier could not deliver the message (unknown error).",
}


def e164(number: str) -> str | None:
    """``number`` in E.164 form (separators people type dropped), or None when it is not a
    number a text can be sent to."""
    candidate = _SEPARATORS.sub("", number or "")
    return candidate if E164.fullmatch(candidate) else None


def digits_of(number: str) -> str:
    """The digits of a phone number: how numbers typed differently are compared."""
    return "".join(ch for ch in number or "" if ch.isdigit())


def delivery_error(code: str | int | None, message: str = "") -> str:
    """A readable reason for a failed delivery reported by Twilio (its ErrorCode)."""
    try:
        number = int(code) if code not in (None, "") else None
    except (TypeError, ValueError):
        number = None
    reason = DELIVERY_ERRORS.get(number) if number is not None else None
    reason = reason or message or "The carrier could not deliver the message."
    return f"{reason} (Twilio error {number})" if number is not None else reason


class BaseUrlHttpClient(TwilioHttpClient):
    """The SDK's HTTP client with every request sent to ``base_url`` instead of Twilio's
    hosts (api.twilio.com, messaging.twilio.com, regional edges...). The path and query stay
    as the SDK built them, so a fake of Twilio sees exactly the requests Twilio would."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = urlsplit(base_url)

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        parts = urlsplit(url)
        url = urlunsplit(
            (self.base.scheme, self.base.netloc, self.base.path.rstrip("/") + parts.path, parts.query, "")
        )
        return super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def twilio_client() -> Client:
    """A client with our credentials, talking to OPENAR_TWILIO_API_BASE when it is set."""
    base = settings.OPENAR_TWILIO_API_BASE
    http_client = BaseUrlHttpClient(base, timeout=TIMEOUT) if base else TwilioHttpClient(timeout=TIMEOUT)
    return Client(
        settings.OPENAR_TWILIO_ACCOUNT_SID, settings.OPENAR_TWILIO_AUTH_TOKEN, http_client=http_client
    )


class TwilioChannel:
    name = "twilio"

    def send(self, outbound: Outbound) -> Sent:
        to = e164(outbound.to)
        if to is None:
            raise PermanentFailure(
                f"{outbound.to!r} is not a valid mobile number: it needs the international form, "
                "e.g. +14165550123."
            )
        sender = settings.OPENAR_TWILIO_FROM
        if not (settings.OPENAR_TWILIO_ACCOUNT_SID and settings.OPENAR_TWILIO_AUTH_TOKEN and sender):
            # Retried: the settings can be fixed before the retries run out.
            raise TemporaryFailure(
                "Twilio is not configured: OPENAR_TWILIO_ACCOUNT_SID, OPENAR_TWILIO_AUTH_TOKEN and "
                "OPENAR_TWILIO_FROM are needed."
            )
        arguments: dict[str, Any] = {"to": to, "body": outbound.text}
        if sender.startswith("MG"):
            arguments["messaging_service_sid"] = sender
        else:
            arguments["from_"] = sender
        if outbound.status_callback:
            arguments["status_callback"] = outbound.status_callback
        try:
            created = twilio_client().messages.create(**arguments)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise _failure(exc) from exc
        except requests.RequestException as exc:
            # Includes a read timeout, after which Twilio may have taken the message: a retry
            # may then send it twice, which is better than a reminder that silently never left.
            raise TemporaryFailure(f"Twilio could not be reached ({type(exc).__name__}).") from exc
        if not created.sid:
            raise TemporaryFailure("Twilio accepted the message but returned no SID.")
        return Sent(provider_id=str(created.sid))


def _failure(exc: TwilioRestException | TwilioServiceException) -> PermanentFailure | TemporaryFailure:
    status = int(exc.status or 0)
    code = exc.code if isinstance(exc.code, int) else None
    if status == 400 and code in RECIPIENT_ERRORS:
        return PermanentFailure(f"{RECIPIENT_ERRORS[code]} (Twilio error {code})")
    if status == 429:
        return TemporaryFailure("Twilio is rate limiting us; trying again later.")
    if status >= 500:
        return TemporaryFailure(f"Twilio answered {status}; trying again later.")
    detail = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
    logger.warning("Twilio refused a message (HTTP %s, code %s): %s", status, code, detail)
    return TemporaryFailure(
        f"Twilio refused the message (HTTP {status}, error {code}): check the Twilio settings. {detail}"[:500]
    )


register("twilio")(TwilioChannel)
