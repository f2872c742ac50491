"""Disputes by invoice line.

A customer questions lines of an invoice: each **DisputeLine** names the line, a
**DisputeReason** (the organization's own list: price, quantity, damaged, ...), the amount in
question and a comment. The **Dispute** groups them, with its conversation (a notifications
``Thread``, so it also shows in the portal's Messages and the desk's Inbox), its attachments
(billing ``Document`` rows of kind "attachment", linked to the invoice) and an SLA clock
(``due_at``, from the strictest reason's SLA days).

Life of a dispute: ``open`` → ``in_review`` → ``resolved`` (accepted in full, partly
accepted, or rejected with a reason), or ``withdrawn`` by the customer while open or in
review. An accepted amount is credited: a ``CreditNote`` for it is issued and linked.

While a dispute is open or in review, only its disputed amount pauses dunning: reminders
quote what is open less what is disputed, and an invoice disputed in full is not reminded
(``openar.reminders.context``). ``DisputeLine.is_open`` mirrors the dispute's state so that
the database itself refuses a second open dispute on the same invoice line.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from openar.core.models import TenantModel
from openar.core.money import CURRENCY_CHOICES, MoneyField


def default_emails() -> list[str]:
    return []


class DisputeReason(TenantModel):
    """A reason code of the organization. ``notify_emails``: people told when a dispute
    with this reason is opened (a sales rep, the warehouse), besides the assigned
    collector. ``sla_days``: how many days staff have to resolve such a dispute."""

    code = models.SlugField(max_length=40)
    label = models.CharField(max_length=100)
    active = models.BooleanField(default=True, help_text="Offered to customers.")
    sla_days = models.PositiveSmallIntegerField(default=10, help_text="Days to resolve a dispute.")
    notify_emails = models.JSONField(
        default=default_emails, blank=True, help_text="Also told when a dispute with this reason opens."
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="dispute_reason_code_unique"),
        ]

    def __str__(self) -> str:
        return self.label


class Dispute(TenantModel):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        IN_REVIEW = "in_review", "In review"
        RESOLVED = "resolved", "Resolved"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        PARTLY_ACCEPTED = "partly_accepted", "Partly accepted"
        REJECTED = "rejected", "Rejected"

    OPEN_STATES = (State.OPEN, State.IN_REVIEW)

    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="disputes")
    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="disputes")
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    disputed_total = MoneyField()
    accepted_amount = MoneyField(default=Decimal(0))
    rejection_reason = models.TextField(blank=True)
    credit_note = models.OneToOneField(
        "billing.CreditNote", null=True, blank=True, on_delete=models.PROTECT, related_name="dispute"
    )
    thread = models.ForeignKey(
        "notifications.Thread", null=True, blank=True, on_delete=models.SET_NULL, related_name="disputes"
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_by_contact = models.ForeignKey(
        "customers.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    due_at = models.DateTimeField(help_text="When it should be resolved (the reasons' SLA).")
    created_at = models.DateTimeField()
    review_started_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True, help_text="Resolved or withdrawn.")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    form_token = models.CharField(
        max_length=64, blank=True, help_text="The form's one-time token: many clicks, one dispute."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(name="dispute_total_positive", condition=Q(disputed_total__gt=0)),
            models.CheckConstraint(
                name="dispute_accepted_within_total",
                condition=Q(accepted_amount__gte=0) & Q(accepted_amount__lte=models.F("disputed_total")),
            ),
            models.UniqueConstraint(
                fields=["customer", "form_token"], condition=~Q(form_token=""), name="dispute_one_per_form"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "state", "due_at"], name="dispute_org_state_due"),
            models.Index(fields=["invoice", "state"], name="dispute_invoice_state"),
            models.Index(fields=["customer", "-created_at"], name="dispute_customer_time"),
        ]

    def __str__(self) -> str:
        return f"dispute {self.pk} on invoice {self.invoice_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class DisputeLine(TenantModel):
    """One invoice line in question: the amount disputed (above zero, at most the line's
    total less what earlier disputes credited on it), the reason, the customer's comment,
    and what staff accepted of it once resolved."""

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="lines")
    invoice_line = models.ForeignKey(
        "billing.InvoiceLine", on_delete=models.PROTECT, related_name="dispute_lines"
    )
    reason = models.ForeignKey(DisputeReason, on_delete=models.PROTECT, related_name="+")
    amount = MoneyField()
    comment = models.TextField(blank=True)
    accepted_amount = MoneyField(null=True, blank=True, help_text="Set when the dispute is resolved.")
    is_open = models.BooleanField(default=True, help_text="Its dispute is open or in review.")

    class Meta:
        ordering = ["invoice_line__position", "pk"]
        constraints = [
            models.CheckConstraint(name="dispute_line_amount_positive", condition=Q(amount__gt=0)),
            models.CheckConstraint(
                name="dispute_line_accepted_within_amount",
                condition=Q(accepted_amount__isnull=True)
                | (Q(accepted_amount__gte=0) & Q(accepted_amount__lte=models.F("amount"))),
            ),
            # One open dispute per invoice line at a time, enforced by the database.
            models.UniqueConstraint(
                fields=["invoice_line"], condition=Q(is_open=True), name="dispute_line_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_line} ({self.amount})"


class DisputeAttachment(TenantModel):
    """A file the customer (or staff) added to the dispute: a billing Document of kind
    "attachment", linked to the invoice."""

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="attachments")
    document = models.ForeignKey("billing.Document", on_delete=models.PROTECT, related_name="+")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    by_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["dispute", "document"], name="dispute_attachment_once"),
        ]

    def __str__(self) -> str:
        return f"attachment {self.document_id} of dispute {self.dispute_id}"
