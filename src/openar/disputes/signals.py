"""Every organization has the default dispute reasons from the moment it exists."""

from __future__ import annotations

from typing import Any

from openar.disputes.reasons import reasons_create_defaults
from openar.tenants.models import Organization


def default_reasons_for_new_organization(
    sender: type, instance: Organization, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if created and not raw:
        reasons_create_defaults(instance)
