from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "openar.tenants"
    label = "tenants"
    verbose_name = "Organizations"

    def ready(self) -> None:
        from openar.tenants import signals  # noqa: F401  (explicit: every organization gets a policy)
