"""The base of every tenant-owned model, and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from openar.core.scoping import TenantManager


class TenantModel(models.Model):
    """A row that belongs to one organization.

    Its default manager is scoped: a query outside ``with scope(organization=...)`` (the
    request middleware, a task or a command sets it) raises ``ScopeError`` instead of
    silently returning every tenant's rows.
    """

    # No index of its own: every tenant table leads a composite or unique index with the
    # column that its queries filter on together with the organization (see each Meta).
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.PROTECT, related_name="+", db_index=False
    )

    objects = TenantManager()

    class Meta:
        abstract = True


class AuditEvent(TenantModel):
    """Who did what to which object, when, and from where. Written in the same transaction
    as the change it records; never updated or deleted by the application."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=100, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=40, blank=True)
    data = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}:{self.object_id}"


class PeriodicRun(models.Model):
    """One slot of a periodic job (e.g. "reminders" at 10:15), claimed by inserting this row:
    the unique key lets exactly one of several workers start it."""

    job = models.CharField(max_length=60)
    slot = models.DateTimeField()
    claimed_by = models.CharField(max_length=100)
    claimed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "slot"], name="periodic_run_once")]

    def __str__(self) -> str:
        return f"{self.job} @ {self.slot:%Y-%m-%d %H:%M}"
