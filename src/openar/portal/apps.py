from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "openar.portal"
    label = "portal"
    verbose_name = "Customer portal"
