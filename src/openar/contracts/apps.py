from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "openar.contracts"
    label = "contracts"
    verbose_name = "Contracts"
