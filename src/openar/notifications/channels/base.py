"""The contract of a channel backend.

A backend gets a fully rendered ``Outbound`` and either returns ``Sent`` or raises:

- ``PermanentFailure`` when this message can never be delivered as addressed (an invalid
  address or number, a number that opted out at the carrier). The message is marked
  failed and the contact's address is flagged for staff; nothing is retried.
- ``TemporaryFailure`` when trying again later may work (the server is down, a rate
  limit). The message is retried with backoff, a few times, then marked failed.

A backend never touches the database: it does not change the message's state, write the
timeline or flag contacts. ``openar.notifications.services.message_send`` does all of
that, in one place, for every channel. A backend may be called again for the same message
only after it raised ``TemporaryFailure``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = "application/pdf"


@dataclass(frozen=True)
class Outbound:
    message_id: int
    organization_id: int
    to: str  # an email address, an E.164 phone number, or a postal address (letters)
    subject: str
    text: str
    html: str = ""
    from_address: str = ""
    reply_to: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    status_callback: str = ""  # where the provider reports delivery (SMS)


@dataclass(frozen=True)
class Sent:
    provider_id: str = ""  # Message-ID, Twilio SID, ...
    delivered: bool = False  # True when sending is delivering (the local outbox, a letter file)
    document_id: int | None = None  # a rendered letter, stored as a Document


class ChannelError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermanentFailure(ChannelError):
    """This message can never be delivered: do not retry. ``address_problem`` (the default)
    says the fault is the address, and flags the contact; a refusal of our sender or of the
    content is not the contact's fault."""

    def __init__(self, message: str, *, address_problem: bool = True) -> None:
        super().__init__(message)
        self.address_problem = address_problem


class TemporaryFailure(ChannelError):
    """Try again later."""


class ChannelBackend(Protocol):
    name: str

    def send(self, outbound: Outbound) -> Sent: ...
