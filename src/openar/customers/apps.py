from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "openar.customers"
    label = "customers"
    verbose_name = "Customers"
