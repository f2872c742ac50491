from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "openar.billing"
    label = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from openar.billing import signals  # noqa: F401  (explicit: refuses invoice deletion)
