"""Tenant scoping that fails loudly.

Built on django-scopes' context (``scope(organization=...)``, ``scopes_disabled()``), with
one difference that matters: django-scopes treats ``organization=None`` as "no filter",
which would hand every tenant's rows to an anonymous request. Here an active scope without
an organization refuses the query exactly like a missing one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models
from django_scopes import get_scope
from django_scopes.manager import DisabledQuerySet

if TYPE_CHECKING:
    from openar.tenants.models import Organization

_M = TypeVar("_M", bound=models.Model)


def current_organization() -> Organization | None:
    """The organization of the active scope (None when unscoped or disabled)."""
    organization: Organization | None = get_scope().get("organization")
    return organization


class TenantManager(models.Manager[_M]):
    """The default manager of every tenant-owned model."""

    def get_queryset(self) -> models.QuerySet[_M]:
        current: dict[str, Any] = get_scope()
        if current.get("_enabled", True) is False:
            return super().get_queryset()
        organization = current.get("organization")
        if organization is None:
            return DisabledQuerySet(self.model, using=self._db, missing_scopes={"organization"})
        return super().get_queryset().filter(organization=organization)

    def all(self) -> models.QuerySet[_M]:
        queryset = super().all()
        if isinstance(queryset, DisabledQuerySet):
            queryset.all()  # raises ScopeError
        return queryset
