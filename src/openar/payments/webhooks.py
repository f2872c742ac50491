"""Where payment providers send their events: ``/hooks/payments/<provider>/<organization>/``.

The organization in the address chooses whose credentials verify the event (each
organization has its own webhook secret at Stripe or PayPal). A request that does not verify
is refused (400) and nothing is stored (503 when the provider had to be asked and did not
answer: it sends the event again); a verified one is stored once and answered 200 even when
it changes nothing, so that the provider stops resending it. With
``OPENAR_PAYMENT_EVENTS_QUEUED`` (production's default) that is all the request does: the
workers apply the stored events in batches within a second (``events_drain``), and a burst
of deliveries costs the provider no waiting. Without it, each is applied before the answer
(``events_ingest``), as the demo and the tests do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_scopes import scope

from openar.payments.events import events_ingest, events_store
from openar.payments.online import credentials_for
from openar.payments.providers.base import InvalidEvent, ProviderUnavailable
from openar.payments.providers.registry import provider as provider_named
from openar.tenants.models import Organization

logger = logging.getLogger(__name__)


class _Credentials(Mapping[str, str]):
    """The organization's credentials for the provider, read and decrypted when the provider
    first looks at them, once per request: the sandbox, which signs with the server's own
    key, never does. A key that cannot decrypt them raises ``ProviderUnavailable`` there, as
    ``credentials_for`` does."""

    def __init__(self, organization: Organization, provider_name: str) -> None:
        self._organization = organization
        self._provider_name = provider_name
        self._data: dict[str, str] | None = None

    def _read(self) -> dict[str, str]:
        if self._data is None:
            with scope(organization=self._organization):
                self._data = credentials_for(self._organization, self._provider_name)
        return self._data

    def __getitem__(self, key: str) -> str:
        return self._read()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


def receive(
    provider_name: str, organization: Organization, body: bytes, headers: dict[str, str]
) -> list[str]:
    """Verify and store a provider's request body, and apply its events unless they are
    queued; returns an outcome per event. Raises InvalidEvent."""
    provider = provider_named(provider_name)
    events = provider.parse_events(body, headers, _Credentials(organization, provider_name))
    if getattr(settings, "OPENAR_PAYMENT_EVENTS_QUEUED", False):
        return events_store(provider_name, events, organization=organization)
    return events_ingest(provider_name, events, organization=organization)


@csrf_exempt
@require_POST
def provider_webhook(request: HttpRequest, provider: str, organization: str) -> HttpResponse:
    found = Organization.objects.filter(slug=organization).first()
    if found is None:
        return HttpResponse(status=404)
    try:
        outcomes = receive(provider, found, request.body, dict(request.headers))
    except ImproperlyConfigured:
        return HttpResponse(status=404)
    except InvalidEvent as exc:
        logger.warning("payment webhook refused", extra={"provider": provider, "reason": exc.message})
        return JsonResponse({"error": exc.message}, status=400)
    except ProviderUnavailable as exc:
        # Reading the event needed the provider (a dispute names no payment) and it did not
        # answer: nothing is stored, and a 503 makes the provider send the event again.
        logger.warning("payment webhook deferred", extra={"provider": provider, "reason": exc.message})
        return JsonResponse({"error": exc.message}, status=503)
    return JsonResponse({"received": len(outcomes), "outcomes": outcomes})
