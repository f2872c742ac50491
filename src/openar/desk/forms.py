"""Forms of the staff desk: they parse and validate input, services do the work."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from openar.customers.models import LANGUAGES
from openar.identity.models import MagicLink
from openar.notifications.models import Channel, Message
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
