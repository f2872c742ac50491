from django.contrib import admin

from openar.identity.models import User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("email", "full_name", "is_active", "is_superuser", "date_joined")
    search_fields = ("email", "full_name")
    exclude = ("password",)
