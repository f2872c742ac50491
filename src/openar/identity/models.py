"""People who sign in. Email is the login; there is no username."""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

from openar.core.models import TenantModel


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("an email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """``is_staff`` and ``is_superuser`` are about Django's admin (operators of the
    installation); what a person may do in an organization comes from their Membership."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    must_change_password = models.BooleanField(
        default=False,
        help_text="The password was assigned by the organization: the person chooses their own "
        "at the next sign-in before anything else.",
    )

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class MagicLink(TenantModel):
    """A sign-in link for a customer's contact (or, where the policy allows, a staff user).

    Only the SHA-256 of the 128-bit token is stored. Opening the link consumes nothing; each
    confirmed sign-in consumes one use, atomically (``openar.identity.magic``).
    """

    class Scope(models.TextChoices):
        INVOICE = "invoice", "One invoice"
        PAST_DUE = "past_due", "The past-due invoices"
        ACCOUNT = "account", "The whole account"
        PAY = "pay", "The pay page (pay, promise or arrange what is past due; nothing else)"
        CONTRACT = "contract", "One contract to sign"

    token_hash = models.CharField(max_length=64, unique=True)
    contact = models.ForeignKey(
        "customers.Contact", null=True, blank=True, on_delete=models.CASCADE, related_name="magic_links"
    )
    user = models.ForeignKey(
        "identity.User", null=True, blank=True, on_delete=models.CASCADE, related_name="magic_links"
    )
    scope = models.CharField(max_length=20, choices=Scope.choices, default=Scope.PAST_DUE)
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    contract = models.ForeignKey(
        "contracts.Contract", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target = models.CharField(max_length=300, blank=True, help_text="Where the link lands (a path).")
    max_uses = models.PositiveIntegerField()
    uses = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        "identity.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="magic_link_for_contact_or_user",
                condition=(
                    models.Q(contact__isnull=False, user__isnull=True)
                    | models.Q(contact__isnull=True, user__isnull=False)
                ),
            ),
            models.CheckConstraint(
                name="magic_link_uses_within_max", condition=models.Q(uses__lte=models.F("max_uses"))
            ),
            models.CheckConstraint(
                name="magic_link_invoice_scope",
                condition=models.Q(scope="invoice", invoice__isnull=False) | ~models.Q(scope="invoice"),
            ),
            models.CheckConstraint(
                name="magic_link_contract_scope",
                condition=models.Q(scope="contract", contract__isnull=False) | ~models.Q(scope="contract"),
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="magic_link_org_time"),
            models.Index(fields=["contact", "-created_at"], name="magic_link_contact_time"),
        ]

    def __str__(self) -> str:
        return f"magic link {self.pk} ({self.get_scope_display()})"

    def state(self, now: datetime.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.uses >= self.max_uses:
            return "used"
        if self.expires_at <= now:
            return "expired"
        return "valid"
