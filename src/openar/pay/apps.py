from django.apps import AppConfig


class PayConfig(AppConfig):
    name = "openar.pay"
    label = "pay"
    verbose_name = "Pay page"
