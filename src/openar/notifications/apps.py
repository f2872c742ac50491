from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "openar.notifications"
    label = "notifications"
    verbose_name = "Messages"
