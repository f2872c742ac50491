from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "openar.payments"
    label = "payments"
    verbose_name = "Payments"
