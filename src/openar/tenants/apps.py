from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "openar.tenants"
    label = "tenants"
    verbose_name = "Organizations"
