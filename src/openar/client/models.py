"""What a creditor client sends the agency through the client portal: payments the debtor
made to the creditor directly (reported, then confirmed or rejected by staff) and files of
new accounts placed with the agency (one import record per file, with its report)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from openar.core.models import TenantModel
from openar.core.money import CURRENCY_CHOICES, MoneyField


class DirectPaymentReport(TenantModel):
    """A payment the creditor says the debtor made to it, not to the agency.

    Life: ``reported`` → ``confirmed`` (staff applied it: ``payment`` is the Payment recorded
    through ``payments.services.payment_record``) or ``rejected`` (with a reason the creditor
    reads). The agency's commission is due on it like on any collection; the creditor keeps
    the money and owes the agency the commission. The rate and the commission are stored when
    the report is confirmed (``commission_rate``, ``commission``) and read from there after.
    """

    class State(models.TextChoices):
        REPORTED = "reported", "Waiting for confirmation"
        CONFIRMED = "confirmed", "Confirmed"
        REJECTED = "rejected", "Rejected"

    class Method(models.TextChoices):
        CHEQUE = "cheque", "Cheque"
        WIRE = "wire", "Wire transfer"
        CASH = "cash", "Cash"
        CARD = "card", "Card"
        OTHER = "other", "Other"

    creditor = models.ForeignKey("tenants.Creditor", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="direct_payment_reports"
    )
    amount = MoneyField()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    received_on = models.DateField(help_text="When the creditor received the money.")
    method = models.CharField(max_length=20, choices=Method.choices)
    reference = models.CharField(max_length=100, blank=True)
    note = models.TextField(blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.REPORTED)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reported_at = models.DateTimeField()
    form_token = models.CharField(
        max_length=64, blank=True, help_text="The report form's one-time token: many clicks, one report."
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=500, blank=True)
    commission_rate = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="The rate when the report was confirmed (a later change does not move it).",
    )
    commission = MoneyField(
        null=True, blank=True, help_text="The agency's commission on it, fixed when it was confirmed."
    )
    payment = models.OneToOneField(
        "payments.Payment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="direct_report",
        help_text="The payment recorded when staff confirmed the report.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(name="direct_payment_amount_positive", condition=Q(amount__gt=0)),
            models.CheckConstraint(
                name="direct_payment_confirmed_has_payment",
                condition=Q(state="confirmed", payment__isnull=False) | ~Q(state="confirmed"),
            ),
            models.UniqueConstraint(
                fields=["customer", "form_token"],
                condition=~Q(form_token=""),
                name="direct_payment_one_per_form",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "state", "reported_at"], name="direct_payment_queue"),
            models.Index(fields=["customer", "-reported_at"], name="direct_payment_customer"),
        ]

    def __str__(self) -> str:
        return f"direct payment of {self.amount} {self.currency} on {self.customer_id} ({self.state})"


class PlacementImport(TenantModel):
    """One CSV file of new accounts a creditor uploaded: who, when, which file (its SHA-256),
    what came of it (counts), and the report line by line (``report``: a list of
    ``{"line", "account", "invoice", "ok", "message"}``)."""

    creditor = models.ForeignKey("tenants.Creditor", on_delete=models.PROTECT, related_name="+")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    filename = models.CharField(max_length=255)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    lines_total = models.PositiveIntegerField(default=0, help_text="Data lines read (the header excluded).")
    lines_placed = models.PositiveIntegerField(default=0)
    lines_refused = models.PositiveIntegerField(default=0)
    accounts_placed = models.PositiveIntegerField(default=0, help_text="New accounts created.")
    accounts_added_to = models.PositiveIntegerField(
        default=0, help_text="Accounts already placed by this creditor that received new invoices."
    )
    accounts_refused = models.PositiveIntegerField(default=0)
    invoices_placed = models.PositiveIntegerField(default=0)
    amounts_placed = models.JSONField(
        default=dict, help_text='What was placed, per currency: {"USD": "1234.50"}.'
    )
    report = models.JSONField(default=list)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "creditor", "-created_at"], name="placement_import_list")
        ]

    def __str__(self) -> str:
        return f"placement {self.filename} by creditor {self.creditor_id}"
