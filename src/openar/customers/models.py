"""The parties that owe (an agency calls them debtor accounts), their contacts, and the
one timeline of what happened on each."""

from __future__ import annotations

import datetime
import zoneinfo

from django.conf import settings
from django.db import models

from openar.core.models import TenantModel
from openar.core.money import CURRENCY_CHOICES
from openar.tenants.models import validate_timezone

LANGUAGES = [("en", "English"), ("fr", "Français")]


class Customer(TenantModel):
    creditor = models.ForeignKey("tenants.Creditor", on_delete=models.PROTECT, related_name="customers")
    number = models.CharField(max_length=40, help_text="Account number, unique in the organization.")
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="USD")
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True)
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    assigned_collector = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    placed_at = models.DateTimeField(null=True, blank=True, help_text="When an agency's client placed it.")
    segment = models.CharField(
        max_length=40, blank=True, help_text="Chooses the dunning policy (e.g. key accounts, consumers)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="customer_number_unique"),
        ]
        indexes = [models.Index(fields=["organization", "name"], name="customer_org_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.number})"

    @property
    def address_lines(self) -> list[str]:
        city_line = " ".join(p for p in (self.city, self.region, self.postal_code) if p)
        return [p for p in (self.address_line1, self.address_line2, city_line, self.country) if p]


class Contact(TenantModel):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200)
    title = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    is_primary = models.BooleanField(default=False)
    consent_email = models.BooleanField(default=True)
    consent_sms = models.BooleanField(default=False)
    language = models.CharField(max_length=8, choices=LANGUAGES, default="en")
    timezone = models.CharField(
        max_length=64, blank=True, validators=[validate_timezone], help_text="Blank: the organization's."
    )
    email_problem = models.CharField(
        max_length=200, blank=True, help_text="Why mail to this address fails (invalid, bounced)."
    )
    phone_problem = models.CharField(
        max_length=200, blank=True, help_text="Why texts to this number fail (invalid, carrier error)."
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone) if self.timezone else self.customer.organization.tz


class Hold(TenantModel):
    """Pauses collection on a customer (``invoice`` empty) or on one invoice: reminders are
    not sent and the account leaves the collector's queue until it is released or expires."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="holds")
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.CASCADE, related_name="holds"
    )
    reason = models.CharField(max_length=300)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    placed_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["customer", "released_at"], name="hold_customer_open")]

    def __str__(self) -> str:
        return f"hold on {self.customer_id}: {self.reason}"

    def active_at(self, moment: datetime.datetime) -> bool:
        return self.released_at is None and (self.expires_at is None or self.expires_at > moment)


class Activity(TenantModel):
    """One entry of a customer's timeline. ``visibility`` says who may read it: internal
    notes are for staff only and never shown to creditor clients or customers."""

    class Kind(models.TextChoices):
        NOTE = "note", "Note"
        CALL = "call", "Call attempt"
        LETTER = "letter", "Letter"
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"
        PORTAL = "portal", "Portal"
        INVOICE = "invoice", "Invoice"
        CREDIT = "credit", "Credit note"
        PAYMENT = "payment", "Payment"
        STATUS = "status", "Status change"
        COMMITMENT = "commitment", "Promise or payment plan"

    class Visibility(models.TextChoices):
        INTERNAL = "internal", "Staff only"
        CREDITOR = "creditor", "Staff and creditor"
        CUSTOMER = "customer", "Everyone on the account"

    customer = models.ForeignKey(  # indexed by activity_customer_time
        Customer, on_delete=models.CASCADE, related_name="activities", db_index=False
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    visibility = models.CharField(max_length=20, choices=Visibility.choices, default=Visibility.CUSTOMER)
    occurred_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    summary = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )

    class Outcome(models.TextChoices):
        """How a call attempt ended (``Kind.CALL``)."""

        SPOKE = "spoke", "Spoke to the debtor"
        PROMISED = "promised", "Promised to pay"
        LEFT_MESSAGE = "left_message", "Left a message"
        NO_ANSWER = "no_answer", "No answer"
        BUSY = "busy", "Busy"
        WRONG_NUMBER = "wrong_number", "Wrong number"
        REFUSED = "refused", "Refused to pay"
        DISPUTED = "disputed", "Disputes the debt"

    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    next_action_date = models.DateField(
        null=True, blank=True, help_text="When to try again (a call attempt): the callback's date."
    )
    staff_unread = models.BooleanField(
        default=False, help_text="Written by a creditor client and not yet read by a collector."
    )

    class Meta:
        indexes = [
            models.Index(fields=["customer", "-occurred_at"], name="activity_customer_time"),
            models.Index(
                fields=["customer"], condition=models.Q(staff_unread=True), name="activity_staff_unread"
            ),
        ]
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return self.summary


class Task(TenantModel):
    """An item of a collector's worklist: something a person must do about a customer (call
    after a broken promise, approve a payment plan, call back). Created by the services that
    notice it; done by staff. ``source_type``/``source_id`` name the object it is about
    (``"commitments.promise"``, ``"42"``) without tying this app to the apps that create
    tasks."""

    class Kind(models.TextChoices):
        BROKEN_PROMISE = "broken_promise", "Broken promise"
        MISSED_INSTALLMENT = "missed_installment", "Missed installment"
        PLAN_APPROVAL = "plan_approval", "Payment plan to approve"
        CALLBACK = "callback", "Call back"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=40, choices=Kind.choices)
    summary = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    due_date = models.DateField(help_text="The organization's local date by which it should be done.")
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty: anyone on the desk (the customer had no assigned collector).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_type = models.CharField(max_length=60, blank=True, help_text='e.g. "commitments.promise"')
    source_id = models.CharField(max_length=40, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "done_at", "due_date"], name="task_org_open"),
            models.Index(fields=["assigned_to", "done_at", "due_date"], name="task_assignee_open"),
            models.Index(fields=["customer", "done_at"], name="task_customer_open"),
            models.Index(fields=["source_type", "source_id"], name="task_source"),
        ]
        ordering = ["due_date", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.summary}"
