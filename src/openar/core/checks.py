"""System checks of OpenAR's own settings (``manage.py check``, and before ``migrate`` and
``runserver``).

- ``openar.W001`` (warning): uploads are not scanned for malware, because ``OPENAR_CLAMD``
  is unset, in a deployment (``DEBUG`` off, not the test settings). Set ``OPENAR_CLAMD`` to
  where clamd listens, or, to run without a scanner on purpose, add ``openar.W001`` to
  ``SILENCED_SYSTEM_CHECKS``.
- ``openar.E001`` (error): ``OPENAR_CLAMD`` is set but is not an address OpenAR understands;
  every upload would be refused as "could not be checked".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from openar.core.clamd import parse_address

TEST_SETTINGS = "openar.settings.test"


@register(Tags.security)
def upload_scanning_check(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    address = str(getattr(settings, "OPENAR_CLAMD", "") or "").strip()
    if address:
        try:
            parse_address(address)
        except ValueError as exc:
            return [
                Error(
                    f"OPENAR_CLAMD is not a clamd address: {exc}.",
                    hint="Use unix:/run/clamav/clamd.ctl or tcp://127.0.0.1:3310.",
                    id="openar.E001",
                )
            ]
        return []
    if settings.DEBUG or str(getattr(settings, "SETTINGS_MODULE", "")) == TEST_SETTINGS:
        return []
    return [
        Warning(
            "Uploads are not scanned for malware: OPENAR_CLAMD is not set.",
            hint=(
                "Run ClamAV's clamd (with AlertExceedsMax yes in clamd.conf) and set OPENAR_CLAMD "
                "to where it listens, e.g. unix:/run/clamav/clamd.ctl or tcp://127.0.0.1:3310. "
                "To run without a scanner on purpose, add openar.W001 to SILENCED_SYSTEM_CHECKS."
            ),
            id="openar.W001",
        )
    ]
