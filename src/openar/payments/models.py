"""Payments and their allocations to invoices (cash application). Credit notes are applied
to invoices through allocations too, so one table explains every invoice's open amount."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from openar.core.models import TenantModel
from openar.core.money import CURRENCY_CHOICES, MoneyField


class Payment(TenantModel):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        RETURNED = "returned", "Returned"
        REFUNDED = "refunded", "Refunded"

    class Method(models.TextChoices):
        CARD = "card", "Card"
        ACH = "ach", "ACH bank debit"
        EFT = "eft", "EFT"
        WIRE = "wire", "Wire transfer"
        CHECK = "check", "Cheque"
        PAYPAL = "paypal", "PayPal"
        CASH = "cash", "Cash"
        OTHER = "other", "Other"

    creditor = models.ForeignKey("tenants.Creditor", on_delete=models.PROTECT, related_name="payments")
    customer = models.ForeignKey(  # indexed by payment_customer_time
        "customers.Customer", on_delete=models.PROTECT, related_name="payments", db_index=False
    )
    amount = MoneyField()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    method = models.CharField(max_length=20, choices=Method.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    reference = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField()
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(name="payment_amount_positive", condition=Q(amount__gt=0))]
        indexes = [models.Index(fields=["customer", "-received_at"], name="payment_customer_time")]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} ({self.get_method_display()})"


class Allocation(TenantModel):
    """An amount of a payment or a credit note applied to an invoice. A reversed allocation
    (returned payment) keeps its row with ``reversed_at`` set; only active ones count."""

    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="allocations")
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations"
    )
    credit_note = models.ForeignKey(
        "billing.CreditNote", null=True, blank=True, on_delete=models.PROTECT, related_name="allocations"
    )
    amount = MoneyField()
    created_at = models.DateTimeField(auto_now_add=True)
    reversed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(name="allocation_amount_positive", condition=Q(amount__gt=0)),
            models.CheckConstraint(
                name="allocation_one_source",
                condition=(
                    Q(payment__isnull=False, credit_note__isnull=True)
                    | Q(payment__isnull=True, credit_note__isnull=False)
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} → {self.invoice_id}"
