"""Every organization starts with the default reminder templates and policy."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from openar.reminders.defaults import install_defaults
from openar.tenants.models import Organization


@receiver(post_save, sender=Organization)
def create_reminder_defaults(sender: type, instance: Organization, created: bool, **kwargs: Any) -> None:
    if created and not kwargs.get("raw"):
        install_defaults(instance)
