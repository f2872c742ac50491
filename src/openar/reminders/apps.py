from django.apps import AppConfig


class RemindersConfig(AppConfig):
    name = "openar.reminders"
    label = "reminders"
    verbose_name = "Reminders"

    def ready(self) -> None:
        from openar.reminders import signals  # noqa: F401  (every organization gets the defaults)
