from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "openar.core"
    label = "core"
    verbose_name = "Core"
