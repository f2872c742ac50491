from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "openar.desk"
    label = "desk"
    verbose_name = "Staff desk"
