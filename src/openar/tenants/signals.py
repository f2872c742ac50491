"""Every organization has a security policy from the moment it exists."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from openar.tenants.models import Organization, SecurityPolicy


@receiver(post_save, sender=Organization)
def create_security_policy(sender: type, instance: Organization, created: bool, **kwargs: Any) -> None:
    if created:
        SecurityPolicy.objects.get_or_create(organization=instance)
