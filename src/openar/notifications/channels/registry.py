"""The explicit list of channel backends, and which one each channel uses
(``settings.OPENAR_CHANNELS``: channel → backend name)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from openar.notifications.channels.base import ChannelBackend

_BACKENDS: dict[str, Callable[[], ChannelBackend]] = {}


def register(name: str) -> Callable[[Callable[[], ChannelBackend]], Callable[[], ChannelBackend]]:
    def decorator(factory: Callable[[], ChannelBackend]) -> Callable[[], ChannelBackend]:
        if name in _BACKENDS:
            raise ImproperlyConfigured(f"Two channel backends are named {name!r}.")
        _BACKENDS[name] = factory
        return factory

    return decorator


def backend_names() -> list[str]:
    _load()
    return sorted(_BACKENDS)


def backend_for(channel: str) -> ChannelBackend:
    """The backend configured for ``channel`` ("email", "sms", "letter", "portal")."""
    _load()
    name = settings.OPENAR_CHANNELS.get(channel)
    if name is None:
        raise ImproperlyConfigured(f"No backend is configured for the {channel!r} channel (OPENAR_CHANNELS).")
    try:
        return _BACKENDS[name]()
    except KeyError:
        raise ImproperlyConfigured(
            f"Unknown backend {name!r} for the {channel!r} channel; known: {', '.join(sorted(_BACKENDS))}."
        ) from None


def _load() -> None:
    # The backends register themselves when their module is imported; importing them here,
    # explicitly, is the registry.
    from openar.notifications.channels import email, letter, local, sms  # noqa: F401
