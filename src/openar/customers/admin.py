from django.contrib import admin

from openar.customers.models import Contact, Customer


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("number", "name", "organization", "creditor", "currency")
    search_fields = ("number", "name", "email")
    list_filter = ("organization",)
    raw_id_fields = ("creditor", "assigned_collector")


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "customer", "organization", "is_primary")
    search_fields = ("name", "email")
    raw_id_fields = ("customer", "user")
