"""Which ways of paying an organization offers, and through which provider."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from openar.payments.models import ProviderAccount
from openar.payments.providers.base import saves_methods
from openar.payments.providers.registry import provider as provider_named
from openar.tenants.models import Organization

METHOD_ORDER = ("card", "ach", "paypal")
METHOD_LABELS = {"card": "Card", "ach": "Bank account (ACH)", "paypal": "PayPal"}
SANDBOX_METHODS = {"card": "sandbox", "ach": "sandbox"}  # no provider account set up yet


def methods_for(organization: Organization, *, saving: bool = False) -> dict[str, str]:
    """Method → provider, in display order: the organization's enabled provider accounts
    and their methods (the first account offering a method wins), else, where the
    installation allows test payments, the sandbox with card and bank. ``saving``: only
    providers that can save a method for later charges (autopay)."""
    found: dict[str, str] = {}
    accounts = ProviderAccount.objects.filter(organization=organization, enabled=True).order_by("pk")
    for account in accounts:
        try:
            offered = provider_named(account.provider)
        except ImproperlyConfigured:  # an account of a provider this installation lacks
            continue
        if saving and saves_methods(offered) is None:
            continue
        for method in account.methods or []:
            if method in offered.methods and method in METHOD_LABELS:
                found.setdefault(str(method), account.provider)
    if not found and getattr(settings, "OPENAR_SANDBOX_PAYMENTS", False):
        found = dict(SANDBOX_METHODS)  # the demo and the tests: test payments, no money
    return {method: found[method] for method in METHOD_ORDER if method in found}
