from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IdentityConfig(AppConfig):
    name = "openar.identity"
    label = "identity"
    verbose_name = "Identity"

    def ready(self) -> None:
        from openar.identity import signals

        signals.connect()
        post_migrate.connect(create_cache_table, sender=self, dispatch_uid="openar.identity.cache_table")


def create_cache_table(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """``migrate`` makes the database cache's table too (rate limits, lockouts and used codes
    live there unless Redis is configured); it does nothing for other cache backends."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)
