"""Payments and their allocations to invoices (cash application). Credit notes are applied
to invoices through allocations too, so one table explains every invoice's open amount."""

from __future__ import annotations

import uuid
from decimal import Decimal

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
        DIRECT = "direct", "Paid directly to the creditor"

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
    # Online payments: which provider, its id for the payment, and what the customer asked.
    provider = models.CharField(max_length=40, blank=True, help_text="Empty: recorded by staff.")
    provider_payment_id = models.CharField(max_length=200, blank=True)
    checkout_token = models.CharField(
        max_length=64, blank=True, help_text="The pay form's one-time token: many clicks, one payment."
    )
    contact = models.ForeignKey(
        "customers.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="payments"
    )
    fee_amount = MoneyField(
        default=0, help_text="Convenience fee added (positive) or discount given (negative) for the method."
    )
    refunded_amount = MoneyField(default=0)
    returned_amount = MoneyField(
        default=0, help_text="Taken back by the payer's bank while the payment stays (a partial dispute)."
    )
    short_pay_reason = models.CharField(max_length=40, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    saved_method = models.ForeignKey(
        "SavedMethod",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
        help_text="Charged to a saved method (autopay) rather than paid at the provider's page.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(name="payment_amount_positive", condition=Q(amount__gt=0)),
            models.CheckConstraint(
                name="payment_refund_within_amount",
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("amount")),
            ),
            models.CheckConstraint(
                name="payment_returned_within_amount",
                condition=Q(returned_amount__gte=0)
                & Q(returned_amount__lte=models.F("amount") - models.F("refunded_amount")),
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_payment_id"],
                condition=~Q(provider_payment_id=""),
                name="payment_provider_id_unique",
            ),
            models.UniqueConstraint(
                fields=["customer", "checkout_token"],
                condition=~Q(checkout_token=""),
                name="payment_one_per_checkout",
            ),
        ]
        indexes = [models.Index(fields=["customer", "-received_at"], name="payment_customer_time")]

    @property
    def invoice_amount(self) -> Decimal:
        """What goes to invoices: the amount without the method's fee (or with its discount)."""
        return self.amount - self.fee_amount

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


class PaymentTarget(TenantModel):
    """What the customer asked a payment to pay, before it settles: allocations are made
    from these when the provider says the money arrived. An invoice with a target of a
    payment in flight shows "payment processing", never paid."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="targets")
    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="payment_targets")
    amount = MoneyField()

    class Meta:
        constraints = [
            models.CheckConstraint(name="payment_target_positive", condition=Q(amount__gt=0)),
            models.UniqueConstraint(fields=["payment", "invoice"], name="payment_target_once"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} of payment {self.payment_id} → invoice {self.invoice_id}"


class ProviderEvent(models.Model):
    """One event a payment provider sent (a webhook, or the sandbox's own), stored once
    (unique provider and event id) before it is processed. Not tenant data until matched:
    the organization is set when the event is tied to a payment."""

    provider = models.CharField(max_length=40)
    event_id = models.CharField(max_length=200)
    type = models.CharField(max_length=60, help_text="Normalized: payment.succeeded, payment.returned, ...")
    provider_payment_id = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="How many times applying it raised (it is retried a few times)."
    )
    organization = models.ForeignKey(
        "tenants.Organization", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="provider_events"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="provider_event_once"),
        ]
        indexes = [
            models.Index(fields=["provider", "provider_payment_id"], name="provider_event_payment"),
            # What the workers apply next: stored, never tried (openar.payments.events).
            models.Index(
                fields=["id"],
                condition=models.Q(processed_at__isnull=True, outcome=""),
                name="provider_event_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.event_id}"


class Refund(TenantModel):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = MoneyField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    reason = models.CharField(max_length=300, blank=True)
    provider_refund_id = models.CharField(max_length=200, blank=True)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(name="refund_amount_positive", condition=Q(amount__gt=0))]

    def __str__(self) -> str:
        return f"refund of {self.amount} on payment {self.payment_id}"


class ProviderAccount(TenantModel):
    """An organization's account with a payment provider: enabled or not, which methods,
    and its credentials, encrypted at rest (``openar.core.crypto``)."""

    provider = models.CharField(max_length=40)
    enabled = models.BooleanField(default=True)
    methods = models.JSONField(default=list, help_text='e.g. ["card", "ach"]')
    credentials_encrypted = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "provider"], name="provider_account_once")
        ]

    def __str__(self) -> str:
        return f"{self.provider} for {self.organization_id}"


class PaymentSettings(TenantModel):
    """How an organization takes payments online."""

    allow_partial = models.BooleanField(
        default=True, help_text="Customers may pay part of an invoice (they then give a reason)."
    )
    short_pay_reasons = models.JSONField(
        default=list,
        help_text='Reason codes for paying part of an invoice: [["price", "Price is wrong"], ...]',
    )
    fees = models.JSONField(
        default=dict,
        help_text='Per method: {"card": {"percent": "2.5", "fixed": "0.30"}}; negative: a discount.',
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="payment_settings_once")]
        verbose_name_plural = "payment settings"

    def __str__(self) -> str:
        return f"payment settings of {self.organization_id}"


class SandboxEvent(models.Model):
    """An event the sandbox provider will send later (a bank payment settling in three days,
    a return after five), delivered by the periodic job through the webhook path."""

    body = models.TextField()
    due_at = models.DateTimeField(db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"sandbox event due {self.due_at:%Y-%m-%d %H:%M}"


class SavedMethod(TenantModel):
    """A card or bank account the customer saved at a provider, for autopay. OpenAR keeps
    the provider's references and what the customer may see of it ("Visa ending 4242"),
    never the number."""

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="saved_methods")
    provider = models.CharField(max_length=40)
    method = models.CharField(max_length=20, choices=Payment.Method.choices)
    provider_customer_ref = models.CharField(
        max_length=200, help_text="The customer at the provider (cus_...)."
    )
    provider_method_ref = models.CharField(
        max_length=200, help_text="The saved method at the provider (pm_...)."
    )
    label = models.CharField(max_length=100, help_text='What the customer sees: "Visa ending 4242".')
    expires = models.DateField(null=True, blank=True, help_text="Cards: the last day of the expiry month.")
    saved_by = models.ForeignKey(
        "customers.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_method_ref"], name="saved_method_once_per_provider"
            )
        ]
        indexes = [models.Index(fields=["customer", "removed_at"], name="saved_method_customer")]

    def __str__(self) -> str:
        return self.label


class MethodSetup(TenantModel):
    """The customer saving a method: started here, finished at the provider's page. Its
    idempotency key makes one provider setup however often it is started again."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SAVED = "saved", "Saved"
        CANCELLED = "cancelled", "Cancelled"

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(
        "customers.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    provider = models.CharField(max_length=40)
    method = models.CharField(max_length=20, choices=Payment.Method.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    provider_setup_id = models.CharField(max_length=200, blank=True)
    saved_method = models.ForeignKey(
        SavedMethod, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["customer", "created_at"], name="method_setup_customer")]

    def __str__(self) -> str:
        return f"{self.method} setup for {self.customer_id} ({self.state})"


class Autopay(TenantModel):
    """A customer's standing instruction: charge ``method`` for each invoice on its due
    date. Consent is kept as given (the exact text, when, from where, by whom). Failures
    are retried on a schedule (``next_attempt_at``); after the last retry autopay is
    suspended until the customer chooses a method again."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended after failed charges"
        OFF = "off", "Off"

    customer = models.OneToOneField("customers.Customer", on_delete=models.CASCADE, related_name="autopay")
    method = models.ForeignKey(SavedMethod, on_delete=models.PROTECT, related_name="autopays")
    state = models.CharField(max_length=20, choices=State.choices, default=State.ACTIVE)
    consent_text = models.TextField()
    consent_at = models.DateTimeField()
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    consent_contact = models.ForeignKey(
        "customers.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    consent_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    failures = models.PositiveSmallIntegerField(default=0, help_text="Failed charges in a row.")
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="After a failure: when to try again (empty: on the next due date)."
    )
    last_failure = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "autopay"
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="autopay_due")]

    def __str__(self) -> str:
        return f"autopay of {self.customer_id} ({self.state})"


class SandboxSetup(models.Model):
    """The sandbox provider's own record of a method being saved (what a real provider
    keeps on its side): outside every tenant, as ``SandboxEvent``."""

    setup_id = models.CharField(max_length=40, unique=True)
    customer_ref = models.CharField(max_length=40)
    method = models.CharField(max_length=20)
    return_url = models.CharField(max_length=500)
    cancel_url = models.CharField(max_length=500)
    organization_name = models.CharField(max_length=200)
    state = models.CharField(max_length=20, default="open")  # open, saved, cancelled
    method_ref = models.CharField(max_length=60, blank=True)
    label = models.CharField(max_length=100, blank=True)
    expires = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"sandbox setup {self.setup_id} ({self.state})"


class SandboxCheckout(models.Model):
    """The sandbox provider's own record of a checkout's return addresses (a real provider
    keeps the success and cancel URLs it was given): outside every tenant."""

    checkout_id = models.CharField(max_length=40, unique=True)
    return_url = models.CharField(max_length=500)
    cancel_url = models.CharField(max_length=500)

    def __str__(self) -> str:
        return f"sandbox checkout {self.checkout_id}"
