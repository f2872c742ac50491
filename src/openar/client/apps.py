from django.apps import AppConfig


class ClientConfig(AppConfig):
    name = "openar.client"
    label = "client"
    verbose_name = "Creditor-client portal"
