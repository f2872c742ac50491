from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "openar.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from openar.core import checks  # noqa: F401  (registers the system checks)
