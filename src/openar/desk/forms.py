"""Forms of the staff desk: they parse and validate input, services do the work."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from openar.identity.models import MagicLink
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
