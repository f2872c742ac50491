from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "openar.identity"
    label = "identity"
    verbose_name = "Identity"
