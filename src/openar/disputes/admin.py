from django.contrib import admin

from openar.core.admin import ReadOnlyAdmin
from openar.disputes.models import Dispute, DisputeReason


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "organization",
        "customer",
        "invoice",
        "state",
        "outcome",
        "disputed_total",
        "due_at",
    )
    list_filter = ("organization", "state")


@admin.register(DisputeReason)
class DisputeReasonAdmin(ReadOnlyAdmin):
    list_display = ("code", "organization", "label", "active", "sla_days")
    list_filter = ("organization",)
