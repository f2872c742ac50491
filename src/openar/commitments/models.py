"""Commitments a customer makes about paying: a **Promise** (an amount by a date) and a
**Plan** (a payment arrangement of **Installments**), with the organization's
**CommitmentPolicy** that bounds both.

Dates (``promised_date``, ``first_date``, ``due_date``) are the organization's local dates
(``organization.today()``); times are aware (UTC in the database). Amounts are Decimal,
quantized to the currency's minor unit by the services that write them.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from openar.core.models import TenantModel
from openar.core.money import CURRENCY_CHOICES, MoneyField


def default_frequencies() -> list[str]:
    return ["weekly", "biweekly", "monthly"]


class Frequency(models.TextChoices):
    WEEKLY = "weekly", "Weekly"
    BIWEEKLY = "biweekly", "Every two weeks"
    MONTHLY = "monthly", "Monthly"


class Source(models.TextChoices):
    PORTAL = "portal", "Customer portal"
    PAY_PAGE = "pay_page", "Pay page"
    DESK = "desk", "Desk (staff)"


class CommitmentPolicy(TenantModel):
    """What an organization allows its customers to promise or arrange on their own. One
    per organization (``services.commitment_policy`` makes it with the defaults).

    Money limits (``plan_min_installment``, ``plan_approval_above``) are in ``currency``
    (the organization's default currency): a plan in another currency is not held to the
    minimum installment, and needs approval whenever a threshold is set."""

    promise_max_days = models.PositiveSmallIntegerField(
        default=30, help_text="How far ahead a promised date may be, in days from today."
    )
    promise_grace_days = models.PositiveSmallIntegerField(
        default=3, help_text="Days after the promised date that payments still count toward it."
    )
    promise_reminder_days = models.PositiveSmallIntegerField(
        default=2, help_text="Remind the customer this many days before the date (0: no reminder)."
    )
    plan_max_installments = models.PositiveSmallIntegerField(
        default=6, help_text="Installments after the down payment."
    )
    plan_max_days = models.PositiveSmallIntegerField(
        default=180, help_text="Days from a plan's first payment to its last."
    )
    plan_min_down_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal(0), help_text="Of the plan's total."
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="USD")
    plan_min_installment = MoneyField(default=Decimal("25.00"))
    plan_frequencies = models.JSONField(
        default=default_frequencies, help_text='Allowed: any of ["weekly", "biweekly", "monthly"].'
    )
    plan_approval_above = MoneyField(
        null=True, blank=True, help_text="A plan for more than this needs staff approval (empty: never)."
    )
    installment_grace_days = models.PositiveSmallIntegerField(
        default=5, help_text="Days after an installment's date before an unpaid one breaks the plan."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="commitment_policy_once")]
        verbose_name_plural = "commitment policies"

    def __str__(self) -> str:
        return f"commitment policy of {self.organization_id}"


class Promise(TenantModel):
    """A promise to pay ``amount`` by ``promised_date``, toward ``invoices`` (none: the
    whole account). Dunning pauses on what it covers until ``covers_until`` (the end of
    the promised date plus the grace days, in the organization's time zone); payments
    allocated meanwhile count toward it."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        KEPT = "kept", "Kept"
        PARTLY_KEPT = "partly_kept", "Partly kept"
        BROKEN = "broken", "Broken"
        CANCELLED = "cancelled", "Cancelled"

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="promises")
    contact = models.ForeignKey(
        "customers.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount = MoneyField()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    promised_date = models.DateField()
    covers_until = models.DateTimeField(
        help_text="The end of the promised date plus the grace days (organization's time zone)."
    )
    invoices = models.ManyToManyField("billing.Invoice", blank=True, related_name="promises")
    note = models.TextField(blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    paid_amount = MoneyField(default=Decimal(0), help_text="What counted toward it when it was resolved.")
    source = models.CharField(max_length=20, choices=Source.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=300, blank=True, help_text="Why it was cancelled.")
    form_token = models.CharField(
        max_length=64, blank=True, help_text="The promise form's one-time token: many clicks, one promise."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(name="promise_amount_positive", condition=Q(amount__gt=0)),
            models.UniqueConstraint(
                fields=["customer", "form_token"],
                condition=~Q(form_token=""),
                name="promise_one_per_form",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "state", "promised_date"], name="promise_org_state"),
            models.Index(fields=["customer", "state"], name="promise_customer_state"),
            models.Index(fields=["state", "covers_until"], name="promise_open_until"),
        ]

    def __str__(self) -> str:
        return f"promise of {self.amount} {self.currency} by {self.promised_date} ({self.state})"


class Plan(TenantModel):
    """A payment arrangement: ``total`` (what the invoices had open when it was made) paid as
    an optional down payment and ``installment_count`` equal installments. What the customer
    agreed to is kept as they read it (``consent_*``). ``saved_method``: charged on each
    date; empty: the customer pays each installment themselves."""

    class State(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", "Waiting for approval"
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        BROKEN = "broken", "Broken"
        CANCELLED = "cancelled", "Cancelled"

    OPEN_STATES = (State.PENDING_APPROVAL, State.ACTIVE)

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="plans")
    contact = models.ForeignKey(
        "customers.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    total = MoneyField()
    down_payment = MoneyField(default=Decimal(0))
    frequency = models.CharField(max_length=20, choices=Frequency.choices)
    installment_count = models.PositiveSmallIntegerField(help_text="Installments after the down payment.")
    first_date = models.DateField(help_text="The date of the plan's first payment.")
    state = models.CharField(max_length=20, choices=State.choices, default=State.ACTIVE)
    invoices = models.ManyToManyField("billing.Invoice", blank=True, related_name="plans")
    source = models.CharField(max_length=20, choices=Source.choices)
    consent_text = models.TextField()
    consent_at = models.DateTimeField()
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    consent_contact = models.ForeignKey(
        "customers.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    consent_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    saved_method = models.ForeignKey(
        "payments.SavedMethod", null=True, blank=True, on_delete=models.SET_NULL, related_name="plans"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=300, blank=True)
    form_token = models.CharField(
        max_length=64, blank=True, help_text="The plan form's one-time token: many clicks, one plan."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(name="plan_total_positive", condition=Q(total__gt=0)),
            models.CheckConstraint(
                name="plan_down_payment_below_total",
                condition=Q(down_payment__gte=0) & Q(down_payment__lt=models.F("total")),
            ),
            models.UniqueConstraint(
                fields=["customer", "form_token"], condition=~Q(form_token=""), name="plan_one_per_form"
            ),
            # One plan at a time: a second one (another tab, a second person) is refused.
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(state__in=["pending_approval", "active"]),
                name="plan_one_open_per_customer",
            ),
        ]
        indexes = [models.Index(fields=["organization", "state"], name="plan_org_state")]

    def __str__(self) -> str:
        return f"plan of {self.total} {self.currency} for {self.customer_id} ({self.state})"


class Installment(TenantModel):
    """One payment of a plan: ``number`` 0 is the down payment (when there is one). An
    installment is paid when everything paid toward the plan since it was made covers it and
    every installment before it (so payments made by hand count)."""

    class State(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        PAID = "paid", "Paid"
        LATE = "late", "Late"
        MISSED = "missed", "Missed"

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="installments")
    number = models.PositiveSmallIntegerField()
    due_date = models.DateField()
    amount = MoneyField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.SCHEDULED)
    paid_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True, help_text="When the late reminder went out.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Failed charges to the saved method.")
    retry_on = models.DateField(null=True, blank=True, help_text="After a failed charge: when to try again.")
    last_failure = models.CharField(max_length=300, blank=True)
    last_payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(name="installment_amount_positive", condition=Q(amount__gt=0)),
            models.UniqueConstraint(fields=["plan", "number"], name="installment_number_once"),
        ]
        ordering = ["plan", "number"]

    def __str__(self) -> str:
        return f"installment {self.number} of plan {self.plan_id}: {self.amount} on {self.due_date}"
