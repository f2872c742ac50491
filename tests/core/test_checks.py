"""OpenAR's system checks: a deployment without a malware scanner is warned about
(``openar.W001``), and a scanner address that cannot work is an error (``openar.E001``)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.checks import Error, Warning, run_checks
from django.core.management import call_command

from openar.core.checks import upload_scanning_check

NOT_SCANNED = Warning(
    "Uploads are not scanned for malware: OPENAR_CLAMD is not set.",
    hint=(
        "Run ClamAV's clamd (with AlertExceedsMax yes in clamd.conf) and set OPENAR_CLAMD "
        "to where it listens, e.g. unix:/run/clamav/clamd.ctl or tcp://127.0.0.1:3310. "
        "To run without a scanner on purpose, add openar.W001 to SILENCED_SYSTEM_CHECKS."
    ),
    id="openar.W001",
)


@pytest.fixture
def deployed(settings: Any) -> Any:
    settings.SETTINGS_MODULE = "openar.settings.production"
    settings.DEBUG = False
    settings.OPENAR_CLAMD = ""
    return settings


def ours(messages: list[Any]) -> list[Any]:
    return [message for message in messages if message.id.startswith("openar.")]


def test_a_deployment_without_a_scanner_is_warned_about(deployed: Any) -> None:
    assert ours(run_checks()) == [NOT_SCANNED]


def test_the_warning_can_be_silenced_on_purpose(deployed: Any) -> None:
    deployed.SILENCED_SYSTEM_CHECKS = ["openar.W001"]
    out, err = io.StringIO(), io.StringIO()
    call_command("check", stdout=out, stderr=err)
    assert "openar.W001" not in out.getvalue() + err.getvalue()
    assert "1 silenced" in out.getvalue()


@pytest.mark.parametrize("address", ["unix:/run/clamav/clamd.ctl", "tcp://127.0.0.1:3310"])
def test_a_deployment_with_a_scanner_is_not_warned_about(deployed: Any, address: str) -> None:
    deployed.OPENAR_CLAMD = address
    assert ours(run_checks()) == []


def test_the_demo_and_the_tests_are_not_warned_about(deployed: Any) -> None:
    deployed.DEBUG = True
    assert upload_scanning_check() == []
    deployed.DEBUG = False
    deployed.SETTINGS_MODULE = "openar.settings.test"
    assert upload_scanning_check() == []


def test_a_scanner_address_that_cannot_work_is_an_error(deployed: Any) -> None:
    deployed.OPENAR_CLAMD = "clamd.example:3310"
    assert ours(run_checks()) == [
        Error(
            "OPENAR_CLAMD is not a clamd address: OPENAR_CLAMD must start with unix: or tcp://, "
            "not 'clamd.example:3310'.",
            hint="Use unix:/run/clamav/clamd.ctl or tcp://127.0.0.1:3310.",
            id="openar.E001",
        )
    ]
