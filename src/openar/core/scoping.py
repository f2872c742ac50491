"""Tenant scoping that fails loudly.

Built on django-scopes' context (``scope(organization=...)``, ``scopes_disabled()``), with
two differences that matter:

- django-scopes treats ``organization=None`` as "no filter", which would hand every tenant's
  rows to an anonymous request. Here a scope without an organization refuses the query
  exactly like a missing one.
- django-scopes' refusing queryset blocks a list of methods and lets others (``exists()``,
  ``exclude()``, use as a subquery) through. Here the refusal sits where a query is cloned,
  run or nested, so no path reaches the database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from django.db import models
from django_scopes import ScopeError, get_scope

if TYPE_CHECKING:
    from openar.tenants.models import Organization

_M = TypeVar("_M", bound=models.Model)


def current_organization() -> Organization | None:
    """The organization of the active scope (None when unscoped or disabled)."""
    organization: Organization | None = get_scope().get("organization")
    return organization


class UnscopedQuerySet(models.QuerySet[_M]):
    """A queryset of a tenant model built outside an organization scope: it can create rows
    (the caller sets their organization) but neither be refined, evaluated nor nested."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ScopeError(f"{self.model.__name__} is tenant data: query it inside scope(organization=...)")

    # Every refinement (filter, exclude, all, values, ...) clones through _chain; everything
    # that runs SQL, or hands this query to another one, goes through the rest.
    _chain = _refuse
    _clone = _refuse
    _fetch_all = _refuse
    count = _refuse
    exists = _refuse
    contains = _refuse
    aggregate = _refuse
    update = _refuse
    _update = _refuse
    delete = _refuse
    _raw_delete = _refuse
    explain = _refuse
    iterator = _refuse
    in_bulk = _refuse
    resolve_expression = _refuse
    get_or_create = _refuse
    update_or_create = _refuse
    bulk_update = _refuse


class TenantManager(models.Manager[_M]):
    """The default manager of every tenant-owned model. ``create`` and ``bulk_create`` work
    anywhere (the caller sets the organization); reading needs a scope."""

    def get_queryset(self) -> models.QuerySet[_M]:
        current: dict[str, Any] = get_scope()
        if current.get("_enabled", True) is False:
            return super().get_queryset()
        organization = current.get("organization")
        if organization is None:
            return UnscopedQuerySet(self.model, using=self._db)
        return super().get_queryset().filter(organization=organization)
