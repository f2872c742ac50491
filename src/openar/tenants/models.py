"""Organizations (tenants), their creditors, and who belongs to them in which role."""

from __future__ import annotations

import datetime
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from openar.core.models import TenantModel
from openar.core.money import CURRENCY_CHOICES


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"{value!r} is not a time zone name such as 'America/Toronto'") from exc


class Organization(models.Model):
    """A tenant: a supplier collecting its own receivables, or a collection agency."""

    class Kind(models.TextChoices):
        SUPPLIER = "supplier", "Supplier"
        AGENCY = "agency", "Collection agency"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SUPPLIER)
    default_currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="USD")
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def today(self) -> datetime.date:
        """Today's date where the organization is: due dates and aging are counted in it."""
        return timezone.now().astimezone(self.tz).date()


class Creditor(TenantModel):
    """Who is owed. A supplier is its own single creditor; an agency has one per client."""

    name = models.CharField(max_length=200)
    code = models.SlugField(max_length=40)
    is_self = models.BooleanField(default=False, help_text="The organization itself (suppliers).")
    commission_rate = models.DecimalField(
        max_digits=5, decimal_places=4, default=0, help_text="Agency commission on collections."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="creditor_code_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Organization admin"
    MANAGER = "manager", "Manager (read-only)"
    COLLECTOR = "collector", "Collector"
    CREDITOR = "creditor", "Creditor client"
    CUSTOMER = "customer", "Customer contact"


STAFF_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.COLLECTOR})


class Membership(TenantModel):
    """A user's place in an organization. A creditor-client user is bound to one creditor;
    a customer user to one customer."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    creditor = models.ForeignKey(Creditor, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="membership_binding_matches_role",
                condition=(
                    models.Q(role="creditor", creditor__isnull=False, customer__isnull=True)
                    | models.Q(role="customer", customer__isnull=False, creditor__isnull=True)
                    | models.Q(
                        role__in=["admin", "manager", "collector"],
                        creditor__isnull=True,
                        customer__isnull=True,
                    )
                ),
            ),
            models.UniqueConstraint(
                fields=["user", "organization"],
                condition=models.Q(role__in=["admin", "manager", "collector"]),
                name="membership_staff_unique",
            ),
            models.UniqueConstraint(fields=["user", "creditor"], name="membership_creditor_unique"),
            models.UniqueConstraint(fields=["user", "customer"], name="membership_customer_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} · {self.organization_id}"

    @property
    def is_staff_role(self) -> bool:
        return self.role in STAFF_ROLES


class SecurityPolicy(models.Model):
    """An organization's security rules, edited by its admins in the desk."""

    class PasswordMode(models.TextChoices):
        SELF_CHOSEN = "self", "People choose their own password"
        ASSIGNED = "assigned", "The organization assigns a first password, changed at first sign-in"

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="security_policy"
    )
    mfa_staff = models.BooleanField("Require MFA for staff", default=True)
    mfa_creditors = models.BooleanField("Require MFA for creditor clients", default=True)
    mfa_customers = models.BooleanField("Require MFA for customers", default=False)
    password_mode = models.CharField(
        max_length=20, choices=PasswordMode.choices, default=PasswordMode.SELF_CHOSEN
    )
    password_min_length = models.PositiveSmallIntegerField(
        default=8, help_text="Never below 8 with MFA, or 15 when a password is the only factor."
    )
    session_idle_minutes = models.PositiveIntegerField(default=60)
    session_max_hours = models.PositiveIntegerField(default=12)
    seats_per_creditor = models.PositiveIntegerField(default=5, help_text="0 means no limit.")
    seats_per_customer = models.PositiveIntegerField(default=5, help_text="0 means no limit.")
    magic_link_days = models.PositiveIntegerField(default=14)
    magic_link_max_uses = models.PositiveIntegerField(default=5)
    staff_magic_links = models.BooleanField("Staff may sign in with magic links", default=False)
    step_up_by_email_code = models.BooleanField(
        "Allow an emailed one-time code as step-up for magic-link sessions", default=True
    )
    inactive_days = models.PositiveIntegerField(
        default=90, help_text="Deactivate users inactive this long; 0 never."
    )
    view_as_can_act = models.BooleanField(
        "Staff viewing the portal as a customer may act for them",
        default=False,
        help_text="Off: \"view as customer\" is read-only. Every page and action is audited either way.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(name="policy_magic_link_days", condition=models.Q(magic_link_days__gte=1)),
            models.CheckConstraint(
                name="policy_magic_link_uses", condition=models.Q(magic_link_max_uses__gte=1)
            ),
        ]

    def __str__(self) -> str:
        return f"security policy of {self.organization}"

    def mfa_required_for(self, role: str) -> bool:
        if role in STAFF_ROLES:
            return self.mfa_staff
        if role == Role.CREDITOR:
            return self.mfa_creditors
        return self.mfa_customers

    def min_password_length_for(self, role: str) -> int:
        floor = 8 if self.mfa_required_for(role) else 15
        return max(floor, self.password_min_length)


def policy_for(organization: Organization) -> SecurityPolicy:
    """The organization's policy (created with the defaults on first use)."""
    policy, _ = SecurityPolicy.objects.get_or_create(organization=organization)
    return policy


def request_policy(organization: Organization) -> SecurityPolicy:
    """The policy as loaded with the request's membership (no query); services that act on
    the policy read it fresh with ``policy_for``."""
    try:
        return organization.security_policy
    except SecurityPolicy.DoesNotExist:
        return policy_for(organization)
