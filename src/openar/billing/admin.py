from django.contrib import admin

from openar.billing.models import CreditNote, Invoice
from openar.core.admin import ReadOnlyAdmin


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "organization",
        "customer",
        "issue_date",
        "due_date",
        "currency",
        "total",
        "open_amount",
    )
    search_fields = ("number", "po_number")
    list_filter = ("organization",)


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = ("number", "organization", "invoice", "issue_date", "amount")
