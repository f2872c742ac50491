"""The explicit list of payment providers."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured

from openar.payments.providers.base import PaymentProvider

_PROVIDERS: dict[str, Callable[[], PaymentProvider]] = {}


def register(name: str) -> Callable[[Callable[[], PaymentProvider]], Callable[[], PaymentProvider]]:
    def decorator(factory: Callable[[], PaymentProvider]) -> Callable[[], PaymentProvider]:
        if name in _PROVIDERS:
            raise ImproperlyConfigured(f"Two payment providers are named {name!r}.")
        _PROVIDERS[name] = factory
        return factory

    return decorator


def provider(name: str) -> PaymentProvider:
    _load()
    try:
        return _PROVIDERS[name]()
    except KeyError:
        raise ImproperlyConfigured(
            f"Unknown payment provider {name!r}; known: {', '.join(names())}."
        ) from None


def names() -> list[str]:
    _load()
    return sorted(_PROVIDERS)


def _load() -> None:
    # Each provider registers itself when imported; importing them here is the list.
    from openar.payments.providers import paypal, sandbox, stripe_provider  # noqa: F401
