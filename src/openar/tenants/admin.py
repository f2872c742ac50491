from django.contrib import admin

from openar.tenants.models import Creditor, Membership, Organization


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "kind", "default_currency", "timezone")
    search_fields = ("name", "slug")


@admin.register(Creditor)
class CreditorAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "organization", "is_self")
    list_filter = ("organization",)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "role", "creditor", "customer", "is_active")
    list_filter = ("role", "organization")
    raw_id_fields = ("user", "creditor", "customer")
