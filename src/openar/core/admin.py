"""Django's admin is for the installation's operators (superusers) only. Tenant data is
shown read-only: issued documents and the ledger change only through services."""

from __future__ import annotations

from typing import Any

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.http import HttpRequest

from openar.core.models import AuditEvent


def _superuser_only(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_superuser)


admin.site.has_permission = _superuser_only  # type: ignore[method-assign]
# The admin signs in through the same door as everyone: rate limits, lockout and MFA.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]
admin.site.site_header = "OpenAR operations"


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "organization", "action", "actor", "object_type", "object_id", "request_id")
    list_filter = ("action",)
    search_fields = ("action", "object_id", "request_id")
