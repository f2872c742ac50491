"""Structured logs: one JSON object per line, carrying the request id of the request."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from openar.core.logging import JsonFormatter, RequestIdFilter, request_id_var


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("openar.test", logging.WARNING, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    RequestIdFilter().filter(record)
    return record


def test_a_log_line_is_json_with_the_current_request_id() -> None:
    token = request_id_var.set("req-12345678")
    try:
        line = JsonFormatter().format(_record("payment %s", invoice="INV-1"))
    finally:
        request_id_var.reset(token)
    payload = json.loads(line)
    assert payload["msg"] == "payment %s"
    assert payload["request_id"] == "req-12345678"
    assert payload["level"] == "WARNING"
    assert payload["logger"] == "openar.test"
    assert payload["invoice"] == "INV-1"
    assert payload["ts"].endswith("+00:00")


def test_outside_a_request_the_id_is_a_dash() -> None:
    assert json.loads(JsonFormatter().format(_record("boot")))["request_id"] == "-"


@pytest.mark.django_db
def test_logs_written_during_a_request_carry_its_id(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(getattr(record, "request_id", ""))

    handler = Capture()
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        response = Client().get("/no-such-page", HTTP_X_REQUEST_ID="trace-abcdef12")
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 404
    assert response["X-Request-ID"] == "trace-abcdef12"
    assert seen == ["trace-abcdef12"]


@pytest.mark.django_db
def test_an_unsafe_incoming_request_id_is_replaced() -> None:
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces\n")
    assert response.status_code == 200
    assert response["X-Request-ID"] != "bad id with spaces\n"
    assert len(response["X-Request-ID"]) == 32
