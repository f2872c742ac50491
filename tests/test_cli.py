"""The ``openar`` command's ledger check, and the health probes a load balancer calls."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client

from factories import dec, issue_invoice, record_payment
from openar.cli import main
from openar.customers.models import Customer

HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def test_check_ledger_exits_0_when_clean_and_1_with_a_mismatch(
    customer: Customer, capsys: pytest.CaptureFixture[str]
) -> None:
    invoice = issue_invoice(customer, "INV-1", "100.00")
    record_payment(customer, "25.00")

    assert main(["check", "ledger"]) == 0
    clean = capsys.readouterr()
    assert clean.out == "ledger: every balance matches its invoices, credit notes and allocations\n"
    assert clean.err == ""

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_invoice SET open_amount = %s WHERE id = %s", [dec("70.00"), invoice.pk]
        )
    assert main(["check", "ledger"]) == 1
    broken = capsys.readouterr()
    assert broken.out == (
        f"invoice INV-1 (id {invoice.pk}, organization {customer.organization_id}): open amount "
        "differs from total minus active allocations; stored 70.0000, computed 75.0000\n"
    )
    assert broken.err == "ledger: 1 mismatch(es)\n"

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_invoice SET open_amount = %s WHERE id = %s", [dec("75.00"), invoice.pk]
        )
    assert main(["check", "ledger"]) == 0


def test_check_needs_to_know_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", "everything"])
    assert exited.value.code == 2
    assert "invalid choice: 'everything'" in capsys.readouterr().err


def test_healthz_answers_ok_with_a_request_id(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["Content-Type"] == "text/plain"
    assert HEX_ID.match(response["X-Request-ID"])
    assert "no-cache" in response["Cache-Control"]


def test_a_sane_incoming_request_id_is_echoed(client: Client) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "lb-2f9c.77_a"})

    assert response.status_code == 200
    assert response["X-Request-ID"] == "lb-2f9c.77_a"


@pytest.mark.parametrize("incoming", ["short", "has spaces in it", "x" * 65, "<script>alert(1)</script>"])
def test_an_insane_incoming_request_id_is_replaced(client: Client, incoming: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": incoming})

    assert response["X-Request-ID"] != incoming
    assert HEX_ID.match(response["X-Request-ID"])


def test_every_response_gets_its_own_request_id(client: Client) -> None:
    ids = {client.get("/healthz")["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.django_db
def test_readyz_answers_ok_when_the_database_does(client: Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert HEX_ID.match(response["X-Request-ID"])
