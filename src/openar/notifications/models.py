"""One record of every communication with a customer.

A ``Message`` is one outbound or inbound email, SMS, letter or portal message, stored whole
(the rendered subject and bodies, the links it carried, its attachments) with its delivery
state. Outbound messages move ``ready → sending → sent → delivered``, or end ``bounced`` /
``failed``; a reminder that was planned and then not sent (superseded, skipped by staff) is
kept as ``skipped`` so that it is never planned again. Inbound messages are ``received``.

Messages belong to a ``Thread`` (a conversation with the customer): replies by email reach
the thread through its reply address, SMS replies through the contact's number, and portal
messages directly.

``MessageTemplate`` holds what the organization's messages say, per channel and language,
edited in the desk (reminders, receipts, notices).
"""

from __future__ import annotations

import secrets
from typing import ClassVar

from django.conf import settings
from django.db import models

from openar.core.models import TenantModel
from openar.core.scoping import TenantManager, UnscopedQuerySet


def new_thread_token() -> str:
    return secrets.token_urlsafe(12)


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    LETTER = "letter", "Letter"
    PORTAL = "portal", "Portal message"


class CustomerThreadManager(TenantManager["Thread"]):
    """The default manager of ``Thread``: conversations with the customer only. Every page
    that lists or opens threads (the portal, the desk's inbox and customer page, inbound
    email by reply address) goes through it, so a creditor's conversation with the agency
    can never reach the customer, nor be answered by email to the customer."""

    audience = "customer"

    def get_queryset(self) -> models.QuerySet[Thread]:
        queryset = super().get_queryset()
        if isinstance(queryset, UnscopedQuerySet):
            return queryset  # refuses every read: the tenant scope comes first
        return queryset.filter(audience=self.audience)


class CreditorThreadManager(CustomerThreadManager):
    """``Thread.creditor_threads``: an agency's creditor client talking with its collectors
    about one placed account (the creditor-client portal and its desk side only)."""

    audience = "creditor"


class Thread(TenantModel):
    """A conversation about a customer's account. ``token`` makes the reply address
    (``reply+<token>@...``) and is never shown in the portal or the desk's URLs.

    ``audience`` says who the other side is: the customer (every thread of the portal and
    the desk's inbox), or the creditor client who placed the account with an agency (the
    creditor-client portal's messages to the assigned collector). The two never mix:
    ``Thread.objects`` holds customer threads only and ``Thread.creditor_threads`` creditor
    threads only. In a creditor thread, ``unread_by_customer`` counts what the creditor
    client has not read yet (the other side of staff)."""

    class Audience(models.TextChoices):
        CUSTOMER = "customer", "The customer"
        CREDITOR = "creditor", "The creditor client"

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="threads")
    audience = models.CharField(max_length=10, choices=Audience.choices, default=Audience.CUSTOMER)
    subject = models.CharField(max_length=300)
    token = models.CharField(max_length=40, unique=True, default=new_thread_token)
    created_at = models.DateTimeField(auto_now_add=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    # Unread counts by side, kept by the services (a read is one UPDATE, not a scan).
    unread_by_staff = models.PositiveIntegerField(default=0)
    unread_by_customer = models.PositiveIntegerField(default=0)

    objects = CustomerThreadManager()  # type: ignore[misc]  # the narrower default manager
    creditor_threads = CreditorThreadManager()

    class Meta:
        indexes = [models.Index(fields=["customer", "-last_message_at"], name="thread_customer_time")]

    def __str__(self) -> str:
        return self.subject


class Message(TenantModel):
    class Direction(models.TextChoices):
        OUT = "out", "Sent to the customer"
        IN = "in", "Received from the customer"

    class State(models.TextChoices):
        READY = "ready", "Ready to send"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        BOUNCED = "bounced", "Bounced"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Not sent"
        RECEIVED = "received", "Received"

    class Tone(models.TextChoices):
        FRIENDLY = "friendly", "Friendly"
        FIRM = "firm", "Firm"
        FINAL = "final", "Final"

    OPEN_STATES: ClassVar[tuple[str, ...]] = (State.READY, State.SENDING)

    customer = models.ForeignKey(  # indexed by message_customer_time
        "customers.Customer", on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    contact = models.ForeignKey(
        "customers.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices, default=Direction.OUT)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.READY)
    to_address = models.CharField(max_length=254, blank=True)
    from_address = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    links = models.JSONField(default=list, blank=True, help_text="The links the message carried.")
    invoices = models.ManyToManyField("billing.Invoice", blank=True, related_name="messages")
    attachments = models.ManyToManyField("billing.Document", blank=True, related_name="messages")
    tone = models.CharField(max_length=10, choices=Tone.choices, blank=True)
    # A reminder: one per (customer, step, dunning cycle), whatever happens to it.
    dunning_step = models.ForeignKey(
        "reminders.DunningStep", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    dunning_cycle = models.BigIntegerField(
        null=True, blank=True, help_text="The invoice whose due date anchors the dunning cycle."
    )
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="Held until then: quiet hours, or a retry's backoff."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    claim = models.CharField(
        max_length=32, blank=True, help_text="Which send took it (ready → sending): a batch knows its own."
    )
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When that send took it: a send this old has died (the sweep)."
    )
    provider = models.CharField(max_length=40, blank=True, help_text="The channel backend that sent it.")
    provider_id = models.CharField(max_length=200, blank=True, help_text="Message-ID, Twilio SID, ...")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True, help_text="Read by the other side.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "dunning_step", "dunning_cycle"],
                condition=models.Q(dunning_step__isnull=False),
                name="message_one_per_step_and_cycle",
            ),
            models.CheckConstraint(
                name="message_dunning_key_whole",
                condition=models.Q(dunning_step__isnull=True, dunning_cycle__isnull=True)
                | models.Q(dunning_step__isnull=False, dunning_cycle__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="message_customer_time"),
            models.Index(fields=["organization", "state", "not_before"], name="message_org_state"),
            models.Index(fields=["provider_id"], name="message_provider_id"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.get_direction_display().lower()}: {self.subject}"


class MessageTemplate(TenantModel):
    """What a kind of message says, per channel and language. ``subject`` and ``body`` use
    Django's template language with the variables listed in
    ``openar.notifications.rendering.VARIABLES``; they are validated on save."""

    key = models.SlugField(max_length=60, help_text="e.g. reminder-friendly, reminder-final")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    language = models.CharField(max_length=8, default="en")
    name = models.CharField(max_length=120)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "key", "channel", "language"], name="template_unique_per_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_display()}, {self.language})"
