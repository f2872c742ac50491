from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, object]:
    return {
        "site_name": "OpenAR",
        "debug": settings.DEBUG,
        "demo_password": getattr(settings, "OPENAR_DEMO_PASSWORD", ""),
    }
