"""Forms of the staff desk: they parse and validate input, services do the work."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.core import validators
from django.db.models import QuerySet

from openar.billing.models import Invoice
from openar.core.money import MAX_TYPED_DIGITS, exponent, format_money, parse_amount
from openar.customers.models import LANGUAGES
from openar.identity.models import MagicLink
from openar.notifications.models import Channel, Message
from openar.payments.models import Payment
from openar.reminders.services import MIN_DAYS_BETWEEN_MAX, OFFSET_MAX, OFFSET_MIN, SUBJECT_CHANNELS
from openar.tenants.models import Creditor, Role, SecurityPolicy
from openar.tenants.services import POLICY_FIELDS

LIMITS = {
    "password_min_length": (8, 128),
    "session_idle_minutes": (5, 24 * 60),
    "session_max_hours": (1, 30 * 24),
    "seats_per_creditor": (0, 10_000),
    "seats_per_customer": (0, 10_000),
    "magic_link_days": (1, 365),
    "magic_link_max_uses": (1, 100),
    "inactive_days": (0, 3650),
}


class SecurityPolicyForm(forms.ModelForm):
    class Meta:
        model = SecurityPolicy
        fields = POLICY_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, (low, high) in LIMITS.items():
            field = self.fields[name]
            field.validators.append(_between(low, high))
            field.widget.attrs.update({"min": low, "max": high, "inputmode": "numeric"})

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        idle, total = data.get("session_idle_minutes"), data.get("session_max_hours")
        if idle and total and idle > total * 60:
            self.add_error(
                "session_idle_minutes", "The idle timeout cannot be longer than the session lifetime."
            )
        return data


def _between(low: int, high: int) -> Any:
    def check(value: int) -> None:
        if value is not None and not low <= value <= high:
            raise forms.ValidationError(f"Enter a whole number from {low} to {high}.")

    return check


class MagicLinkForm(forms.Form):
    # A link to one invoice is made from the invoice (reminders); the desk offers these two.
    scope = forms.ChoiceField(
        choices=[
            (MagicLink.Scope.PAST_DUE, "The past-due invoices"),
            (MagicLink.Scope.ACCOUNT, "The whole account"),
        ],
        initial=MagicLink.Scope.PAST_DUE,
    )
    send = forms.ChoiceField(
        choices=[("email", "Email it to the contact"), ("show", "Show it to me to copy")], initial="email"
    )


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254)
    full_name = forms.CharField(max_length=200, required=False, label="Name")


class AuditFilterForm(forms.Form):
    action = forms.CharField(required=False, max_length=100, label="Action starts with")
    everything = forms.BooleanField(required=False, label="Include invoices, payments and documents")
    actor = forms.CharField(required=False, max_length=254, label="Actor email")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))


STAFF_INVITE_ROLES = [
    (Role.COLLECTOR, "Collector: works the accounts"),
    (Role.MANAGER, "Manager: sees everything, changes nothing"),
    (Role.ADMIN, "Organization admin: also the security policy and people"),
    (Role.CREDITOR, "Creditor client: sees the accounts one creditor placed"),
]


class PersonInviteForm(forms.Form):
    """Invite staff, or (agencies) a creditor client's user."""

    email = forms.EmailField(max_length=254)
    full_name = forms.CharField(max_length=200, required=False, label="Name")
    role = forms.ChoiceField(choices=STAFF_INVITE_ROLES, initial=Role.COLLECTOR)
    creditor: forms.ModelChoiceField[Creditor] = forms.ModelChoiceField(
        queryset=None,  # set per request (tenant data is only read inside a scope)
        required=False,
        label="Creditor (for a creditor client)",
        empty_label="—",
    )

    def __init__(self, *args: Any, creditors: QuerySet[Creditor] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if creditors is None or not creditors.exists():
            role_field: forms.ChoiceField = self.fields["role"]  # type: ignore[assignment]
            role_field.choices = [c for c in STAFF_INVITE_ROLES if c[0] != Role.CREDITOR]
            del self.fields["creditor"]
        else:
            creditor_field: forms.ModelChoiceField = self.fields["creditor"]  # type: ignore[assignment]
            creditor_field.queryset = creditors

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("role") == Role.CREDITOR and not data.get("creditor"):
            self.add_error("creditor", "Choose the creditor this person works for.")
        return data


PEOPLE_KINDS = [
    ("", "Everyone"),
    ("staff", "Staff"),
    ("creditor", "Creditor clients"),
    ("customer", "Customers"),
]
PEOPLE_STATUSES = [("", "Active and deactivated"), ("active", "Active"), ("inactive", "Deactivated")]


class PeopleFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Name or email")
    kind = forms.ChoiceField(required=False, choices=PEOPLE_KINDS, label="Who")
    status = forms.ChoiceField(required=False, choices=PEOPLE_STATUSES, label="Status")


# --- reminders ------------------------------------------------------------------------------------


def _lf(text: str) -> str:
    """Browsers post textareas with CRLF line ends; templates are stored with LF, like the
    shipped ones, so that a save without edits changes nothing."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


class TemplateForm(forms.Form):
    """The text of a message template. Nothing is stripped from the body: the line numbers
    of its problems must be the lines the admin sees."""

    name = forms.CharField(max_length=120, help_text="How staff know this message; customers never see it.")
    subject = forms.CharField(max_length=300, required=False, strip=False)
    body = forms.CharField(
        strip=False,
        label="Message",
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "true", "class": "input--block"}),
    )

    def __init__(self, *args: Any, channel: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if channel and channel not in SUBJECT_CHANNELS:
            del self.fields["subject"]  # an SMS or a portal message has no subject line

    def clean_subject(self) -> str:
        return _lf(self.cleaned_data["subject"]).rstrip("\n")

    def clean_body(self) -> str:
        return _lf(self.cleaned_data["body"])


class TemplateCreateForm(TemplateForm):
    key = forms.SlugField(
        max_length=60,
        help_text="Steps choose the message by this key; several languages share one key "
        "(e.g. reminder-friendly). Lowercase letters, digits and hyphens.",
    )
    channel = forms.ChoiceField(choices=Channel.choices, initial=Channel.EMAIL)
    language = forms.ChoiceField(
        choices=LANGUAGES, initial="en", help_text="Contacts get the message in their language, else English."
    )
    field_order = ["key", "channel", "language", "name", "subject", "body"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["subject"].help_text = "Emails and letters only; ignored for SMS and portal messages."


class TemplatePreviewForm(forms.Form):
    customer = forms.TypedChoiceField(coerce=int, label="Preview with the data of")


class PolicyForm(forms.Form):
    name = forms.CharField(max_length=120)
    segment = forms.CharField(
        max_length=40,
        required=False,
        help_text="Customers of this segment follow the policy. Leave it blank for the default policy, "
        "which everyone else follows.",
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(self, *args: Any, segments: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if segments:
            self.fields["segment"].widget.attrs["list"] = "segments"
        self.segments = segments or []


class PolicyCreateForm(PolicyForm):
    copy_steps_from = forms.TypedChoiceField(
        coerce=int,
        required=False,
        empty_value=None,
        label="Start with the steps of",
        help_text="You can change the steps afterwards.",
    )

    def __init__(self, *args: Any, policies: list[tuple[int, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: forms.TypedChoiceField = self.fields["copy_steps_from"]  # type: ignore[assignment]
        field.choices = [("", "No steps: start empty"), *(policies or [])]


class StepForm(forms.Form):
    offset_days = forms.IntegerField(
        label="Day",
        min_value=OFFSET_MIN,
        max_value=OFFSET_MAX,
        help_text="Days after the due date of the oldest open invoice; negative: before it "
        "(-3 is three days before). From -60 to 365.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    channel = forms.ChoiceField(choices=Channel.choices, initial=Channel.EMAIL)
    # A free key shown as a select: the service says clearly what is wrong with a key (no such
    # template, or one written for another channel), the same way for every front door.
    template_key = forms.CharField(max_length=60, label="Message", widget=forms.Select())
    tone = forms.ChoiceField(choices=Message.Tone.choices, initial=Message.Tone.FRIENDLY)
    attach_statement = forms.BooleanField(
        required=False, label="Attach the statement of account", help_text="Emails only."
    )

    def __init__(self, *args: Any, templates: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["template_key"].widget.choices = templates or []


class ReminderSettingsForm(forms.Form):
    quiet_start = forms.TimeField(
        label="Quiet from",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="No email or SMS goes out from this time, in the contact's time zone.",
    )
    quiet_end = forms.TimeField(
        label="Quiet until",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="The same time as the start: no quiet hours.",
    )
    min_days_between = forms.IntegerField(
        label="Days between reminders",
        min_value=0,
        max_value=MIN_DAYS_BETWEEN_MAX,
        help_text=f"At most one reminder per customer in this many days (0 to {MIN_DAYS_BETWEEN_MAX}).",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    is_paused = forms.BooleanField(
        required=False,
        label="Pause all reminders",
        help_text="No reminder is planned for anyone until you untick this.",
    )


# --- payments -------------------------------------------------------------------------------------


class AmountField(forms.DecimalField):
    """An amount of money typed by staff, read by ``openar.core.money.parse_amount``: the
    rule the customer's pay page follows too, so that "$1,234.50" means the same on both
    sides, and anything that could be read two ways ("12,50") is refused rather than guessed.
    """

    def __init__(self, *, currency: str, **kwargs: Any) -> None:
        places = exponent(currency)
        self.currency = currency
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
        super().__init__(max_digits=MAX_TYPED_DIGITS + places, decimal_places=places, **kwargs)
        self.widget.attrs["maxlength"] = 40

    def to_python(self, value: Any) -> Decimal | None:  # type: ignore[override]
        text = str(value if value is not None else "").strip()
        if text in self.empty_values:
            return None
        try:
            return parse_amount(text, self.currency)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


PAYMENT_STATE_FILTERS = [
    ("", "Every state"),
    ("pending", "Pending"),
    ("processing", "Bank payment in progress"),
    ("succeeded", "Succeeded"),
    ("partly_refunded", "Partly refunded"),
    ("refunded", "Refunded"),
    ("failed", "Failed"),
    ("returned", "Returned"),
]
PAYMENT_SOURCES = [("", "Online or by staff"), ("online", "Paid online"), ("staff", "Recorded by staff")]


class PaymentFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=60, label="Customer or reference")
    state = forms.ChoiceField(required=False, choices=PAYMENT_STATE_FILTERS, label="State")
    method = forms.ChoiceField(
        required=False, choices=[("", "Every method"), *Payment.Method.choices], label="Method"
    )
    source = forms.ChoiceField(required=False, choices=PAYMENT_SOURCES, label="Made")
    credit = forms.BooleanField(required=False, label="With unapplied credit")


class OnceForm(forms.Form):
    """A form that moves money, sent at most once: it carries a one-time token (``once``),
    new each time the form is shown, which the view claims before calling the service. A
    double click or a resent page then finds it taken and changes nothing. Optional, so
    that a form posted without it is simply not protected rather than refused."""

    once = forms.CharField(
        required=False,
        widget=forms.HiddenInput,
        validators=[validators.RegexValidator(r"\A[0-9a-f]{32}\Z", "This form is damaged: open it again.")],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["once"].initial = uuid.uuid4().hex


class RefundForm(OnceForm):
    """How much of a payment to give back, and why (kept on the refund and in the audit log)."""

    reason = forms.CharField(
        max_length=300, label="Reason", help_text="Kept with the refund; the customer's timeline shows it."
    )
    field_order = ["amount", "reason"]

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["amount"] = AmountField(currency=currency, label=f"Amount to refund ({currency})")
        self.order_fields(self.field_order)

    def clean_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount"]
        if amount <= 0:
            raise forms.ValidationError("Enter an amount above zero.")
        return amount


def _invoice_field(invoice: Invoice) -> str:
    return f"invoice_{invoice.pk}"


class _InvoiceAmountsMixin:
    """One optional amount per open invoice (empty: nothing to that invoice), each at most
    what the invoice has open when the form is read."""

    fields: dict[str, forms.Field]
    cleaned_data: dict[str, Any]
    invoices: list[Invoice]

    def _add_invoice_fields(self, invoices: list[Invoice], currency: str) -> None:
        self.invoices = invoices
        for invoice in invoices:
            self.fields[_invoice_field(invoice)] = AmountField(
                currency=currency, required=False, label=f"Amount for {invoice.number}"
            )

    def invoice_fields(self) -> list[tuple[Invoice, forms.BoundField]]:
        return [(invoice, self[_invoice_field(invoice)]) for invoice in self.invoices]  # type: ignore[index]

    def invoice_amounts(self) -> list[tuple[Invoice, Decimal]]:
        """The invoices given an amount above zero, in the order shown."""
        found = []
        for invoice in self.invoices:
            amount = self.cleaned_data.get(_invoice_field(invoice))
            if amount:
                found.append((invoice, amount))
        return found

    def _check_invoice_amounts(self) -> None:
        for invoice, amount in self.invoice_amounts():
            if amount > invoice.open_amount:
                self.add_error(  # type: ignore[attr-defined]
                    _invoice_field(invoice),
                    f"Invoice {invoice.number} has "
                    f"{format_money(invoice.open_amount, invoice.currency)} open.",
                )


class CreditApplyForm(_InvoiceAmountsMixin, OnceForm):
    """Apply a payment's unapplied credit: an amount per open invoice of the customer."""

    def __init__(self, *args: Any, invoices: list[Invoice], currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._add_invoice_fields(invoices, currency)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and not self.invoice_amounts():
            raise forms.ValidationError("Enter an amount for at least one invoice.")
        self._check_invoice_amounts()
        return data


RECORD_METHODS = [
    (Payment.Method.CHECK, "Cheque"),
    (Payment.Method.WIRE, "Wire transfer"),
    (Payment.Method.EFT, "Lockbox / EFT"),
    (Payment.Method.CASH, "Cash"),
    (Payment.Method.OTHER, "Other"),
]
RECORD_APPLY = [
    ("oldest", "To the oldest open invoices first"),
    ("invoices", "The amounts I enter for each invoice"),
]


class PaymentRecordForm(_InvoiceAmountsMixin, OnceForm):
    """A payment received outside the portal. What is not applied to an invoice stays on the
    payment as unapplied credit, to be applied later from the payment's page."""

    method = forms.ChoiceField(choices=RECORD_METHODS, initial=Payment.Method.CHECK, label="Received by")
    received_on = forms.DateField(label="Received on", widget=forms.DateInput(attrs={"type": "date"}))
    reference = forms.CharField(
        max_length=100,
        required=False,
        label="Reference",
        help_text="Cheque number, wire or lockbox reference.",
    )
    apply = forms.ChoiceField(
        choices=RECORD_APPLY, initial="oldest", widget=forms.RadioSelect, label="Apply it"
    )
    again = forms.BooleanField(required=False, label="Record it anyway: it is another payment")
    field_order = ["amount", "method", "received_on", "reference", "apply", "again"]

    def __init__(
        self, *args: Any, invoices: list[Invoice], currency: str, today: datetime.date, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        self.currency = currency
        self.fields["amount"] = AmountField(currency=currency, label=f"Amount received ({currency})")
        self.fields["received_on"].initial = today
        self.fields["received_on"].widget.attrs["max"] = today.isoformat()
        self.order_fields(self.field_order)
        self._add_invoice_fields(invoices, currency)

    def clean_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount"]
        if amount <= 0:
            raise forms.ValidationError("Enter an amount above zero.")
        return amount

    def clean_received_on(self) -> datetime.date:
        day: datetime.date = self.cleaned_data["received_on"]
        if day > self.today:
            raise forms.ValidationError("A payment cannot be received in the future.")
        return day

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        amounts = self.invoice_amounts()
        if data.get("apply") == "invoices":
            if not amounts and not any(name.startswith("invoice_") for name in self.errors):
                self.add_error("apply", "Enter an amount for at least one invoice, or apply it oldest first.")
            self._check_invoice_amounts()
            total = sum((amount for _, amount in amounts), Decimal(0))
            if data.get("amount") and total > data["amount"]:
                self.add_error(
                    "apply",
                    f"The amounts for the invoices add up to {format_money(total, self.currency)}, more than "
                    f"the {format_money(data['amount'], self.currency)} received.",
                )
        elif data.get("apply") == "oldest" and amounts:
            self.add_error(
                "apply", "You entered amounts for invoices: choose “The amounts I enter for each invoice”."
            )
        return data

    def allocations(self) -> list[tuple[Invoice, Decimal]] | None:
        """What to pass on: None applies the payment oldest first."""
        return self.invoice_amounts() if self.cleaned_data.get("apply") == "invoices" else None
