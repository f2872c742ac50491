"""A small local imitation of PayPal's REST API, for the PayPal provider's tests.

PayPal cannot be reached from the test suite, and mocking ``requests`` would test nothing of
what goes over the wire, so the provider talks HTTP to this server instead (the ``api_base``
credential). It answers just what the provider uses, the way PayPal does (JSON requests and
answers, errors as ``{"name", "message", "debug_id", "details": [{"issue", ...}]}``):

- ``POST /v1/oauth2/token``: a bearer token for the app's client id and secret (HTTP Basic,
  ``grant_type=client_credentials``), valid ``expires_in`` seconds; else 401
  ``invalid_client``. Every other endpoint wants one of its tokens (401 ``invalid_token``).
- ``POST /v2/checkout/orders``: an order (``PAYER_ACTION_REQUIRED``, with its ``payer-action``
  link), refusing amounts with more decimals than PayPal takes in the currency
  (``DECIMAL_PRECISION``).
- ``GET /v2/checkout/orders/{id}``: that order, or 404 ``RESOURCE_NOT_FOUND``.
- ``POST /v2/checkout/orders/{id}/capture``: once a test has said the buyer approved
  (:meth:`FakePayPal.approve`, with the capture's outcome), a capture completed, pending or
  declined, or the 422 ``INSTRUMENT_DECLINED`` PayPal answers when the buyer's funding fails;
  ``ORDER_NOT_APPROVED`` before approval, ``ORDER_ALREADY_CAPTURED`` after a capture, and
  ``DUPLICATE_INVOICE_ID`` when another order with the same ``invoice_id`` was paid.
- ``GET /v2/payments/captures/{id}``: that capture (with ``supplementary_data``).
- ``POST /v2/payments/captures/{id}/refund``: a refund (its status is ``refund_status``), no
  more than what is left of the capture (``REFUND_AMOUNT_EXCEEDED``).
- ``POST /v1/notifications/verify-webhook-signature``: ``SUCCESS`` only when the transmission
  signature equals :func:`sign` of the transmission id, time, the webhook id given and the
  CRC32 of the event *exactly as sent* (PayPal's signed string, with an HMAC standing in for
  PayPal's RSA key), and the webhook id is one of the app's; ``FAILURE`` otherwise; 400
  ``VALIDATION_ERROR`` when a field is missing.

It honours ``PayPal-Request-Id`` as PayPal does: within one app, an id already answered with
success returns the same answer again, even when the requests arrive at the same time (one
lock around answering). It keeps no answer for a request that failed (an error a test
arranged with ``fail_next``, a refused token, a 422), so a retry after one of those can still
succeed.

Every request is recorded with its headers and its JSON (or form) body.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import hmac
import json
import re
import threading
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

TOKEN_PATH = "/v1/oauth2/token"
ORDERS_PATH = "/v2/checkout/orders"
VERIFY_PATH = "/v1/notifications/verify-webhook-signature"
ORDER_PATH = re.compile(r"/v2/checkout/orders/(?P<id>[A-Z0-9]+)")
CAPTURE_ORDER_PATH = re.compile(r"/v2/checkout/orders/(?P<id>[A-Z0-9]+)/capture")
CAPTURE_PATH = re.compile(r"/v2/payments/captures/(?P<id>[A-Z0-9]+)")
REFUND_PATH = re.compile(r"/v2/payments/captures/(?P<id>[A-Z0-9]+)/refund")

# Stands in for PayPal's private key: the tests sign with it as PayPal signs with its own.
SIGNING_KEY = b"fake-paypal-webhook-signing-key"
AUTH_ALGO = "SHA256withRSA"
CERT_URL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"
_NO_DECIMALS = {"HUF", "JPY", "TWD"}
_VERIFY_FIELDS = (
    "auth_algo",
    "cert_url",
    "transmission_id",
    "transmission_sig",
    "transmission_time",
    "webhook_id",
    "webhook_event",
)

# What PayPal answers for each status a test may ask for: (name, message).
_FAILURES: dict[int, tuple[str, str]] = {
    400: ("INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema."),
    401: ("AUTHENTICATION_FAILURE", "Authentication failed due to invalid authentication credentials."),
    403: ("NOT_AUTHORIZED", "Authorization failed due to insufficient permissions."),
    404: ("RESOURCE_NOT_FOUND", "The specified resource does not exist."),
    409: ("RESOURCE_CONFLICT", "The server has detected a conflict while processing this request."),
    422: ("UNPROCESSABLE_ENTITY", "The requested action could not be performed."),
    429: ("RATE_LIMIT_REACHED", "Too many requests. Blocked due to rate limiting."),
    500: ("INTERNAL_SERVER_ERROR", "An internal server error has occurred."),
    503: ("SERVICE_UNAVAILABLE", "Service Unavailable."),
}
_DESCRIPTIONS = {
    "INSTRUMENT_DECLINED": "The instrument presented was either declined by the processor or bank, "
    "or it can't be used for this payment.",
    "PAYER_ACTION_REQUIRED": "Payer needs to perform the following action before proceeding with payment.",
}


def sign(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> str:
    """The transmission signature of ``body``: over PayPal's signed string
    ``<transmission id>|<transmission time>|<webhook id>|<CRC32 of the body, decimal>``."""
    message = f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}"
    return base64.b64encode(hmac.new(SIGNING_KEY, message.encode(), hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class Received:
    """One request the fake received."""

    method: str
    path: str
    json: Any
    headers: dict[str, str]
    body: str

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == lowered), None)


@dataclass(frozen=True)
class Failure:
    status: int
    path: str
    issue: str
    links: tuple[dict[str, str], ...]


@dataclass
class FakePayPal:
    client_id: str
    client_secret: str
    webhook_ids: tuple[str, ...]
    expires_in: int = 32400  # PayPal's usual nine hours
    refund_status: str = "COMPLETED"
    requests: list[Received] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    captures: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    _outcomes: dict[str, str] = field(default_factory=dict)  # order id → what its capture does
    _failures: deque[Failure] = field(default_factory=deque)
    # (client id, request id) → (the request's method, path and body, the answer).
    _answered: dict[tuple[str, str], tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakePayPal:
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            # A short poll: stop() waits for it, once per test.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="fake-paypal",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    # --- what tests arrange and read -----------------------------------------------------------

    def fail_next(
        self, status: int, *, path: str = "", issue: str = "", times: int = 1, links: tuple[str, ...] = ()
    ) -> None:
        """Answer the next ``times`` requests whose path starts with ``path`` (any, when empty)
        with PayPal's error for ``status``: 422 with ``issue`` (``INSTRUMENT_DECLINED``,
        ``PAYER_ACTION_REQUIRED``, ...) and the given ``redirect``/``payer-action`` links,
        429 rate limited, 500 PayPal's own failure, ..."""
        link_objects = tuple({"href": href, "rel": "payer-action", "method": "GET"} for href in links)
        for _ in range(times):
            self._failures.append(Failure(status, path, issue, link_objects))

    def approve(self, order_id: str, capture: str = "COMPLETED") -> None:
        """The buyer approved the order at PayPal; capturing it then ends in ``capture``:
        ``COMPLETED``, ``PENDING``, ``DECLINED`` (a capture that PayPal declined) or
        ``INSTRUMENT_DECLINED`` (the buyer's funding failed: no capture, a 422)."""
        with self._lock:
            self.orders[order_id]["status"] = "APPROVED"
            self._outcomes[order_id] = capture

    def complete(self, capture_id: str) -> None:
        """A pending capture completed later."""
        with self._lock:
            self.captures[capture_id]["status"] = "COMPLETED"
            self.captures[capture_id].pop("status_details", None)

    def revoke_tokens(self) -> None:
        """PayPal forgets every token it issued (as when a token expires earlier than said)."""
        with self._lock:
            self.tokens.clear()

    def received(self, method: str, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    # --- what the server answers -----------------------------------------------------------------

    def handle(self, received: Received) -> tuple[int, dict[str, Any]]:
        """The status and JSON body of the answer to ``received``."""
        with self._lock:  # one request at a time: idempotency holds under concurrency
            self.requests.append(received)
            failure = next((f for f in self._failures if received.path.startswith(f.path)), None)
            if failure is not None:
                self._failures.remove(failure)
                return failure.status, _error(failure.status, failure.issue, list(failure.links))
            if received.path == TOKEN_PATH:
                return self._token(received)
            authorization = received.header("Authorization") or ""
            if not authorization.startswith("Bearer ") or authorization[7:] not in self.tokens:
                return 401, {
                    "error": "invalid_token",
                    "error_description": "Token signature verification failed",
                }
            request_id = received.header("PayPal-Request-Id") if received.method == "POST" else None
            fingerprint = f"{received.method} {received.path} {received.body}"
            if request_id:
                earlier = self._answered.get((self.client_id, request_id))
                if earlier is not None and earlier[0] == fingerprint:
                    return 200, earlier[2]  # a replay answers 200 where the first answered 201
            status, payload = self._route(received)
            if request_id and status < 300:
                # A snapshot: PayPal replays its first answer, not the object as it is now.
                self._answered[(self.client_id, request_id)] = (fingerprint, status, copy.deepcopy(payload))
            return status, payload

    def _token(self, received: Received) -> tuple[int, dict[str, Any]]:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if received.header("Authorization") != f"Basic {expected}":
            return 401, {"error": "invalid_client", "error_description": "Client Authentication failed"}
        if dict(parse_qsl(received.body)).get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}
        token = f"A21AA{uuid.uuid4().hex}"
        self.tokens.add(token)
        return 200, {
            "scope": "https://uri.paypal.com/services/payments/payment",
            "access_token": token,
            "token_type": "Bearer",
            "app_id": "APP-80W284485P519543T",
            "expires_in": self.expires_in,
            "nonce": uuid.uuid4().hex,
        }

    def _route(self, received: Received) -> tuple[int, dict[str, Any]]:
        method, path = received.method, received.path
        if method == "POST" and path == ORDERS_PATH:
            return self._create_order(received.json)
        if method == "POST" and path == VERIFY_PATH:
            return self._verify(received.body)
        if method == "POST" and (match := CAPTURE_ORDER_PATH.fullmatch(path)):
            return self._capture(match["id"])
        if method == "POST" and (match := REFUND_PATH.fullmatch(path)):
            return self._refund(match["id"], received.json)
        if method == "GET" and (match := ORDER_PATH.fullmatch(path)):
            found = self.orders.get(match["id"])
            return (200, found) if found is not None else (404, _error(404, "INVALID_RESOURCE_ID"))
        if method == "GET" and (match := CAPTURE_PATH.fullmatch(path)):
            found = self.captures.get(match["id"])
            return (200, found) if found is not None else (404, _error(404, "INVALID_RESOURCE_ID"))
        return 404, _error(404, "")

    def _create_order(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or body.get("intent") not in ("CAPTURE", "AUTHORIZE"):
            return 400, _error(400, "MISSING_REQUIRED_PARAMETER")
        units = body.get("purchase_units")
        if not isinstance(units, list) or len(units) != 1:
            return 400, _error(400, "MISSING_REQUIRED_PARAMETER")
        amount = units[0].get("amount") or {}
        if _amount_issue(amount):
            return 422, _error(422, _amount_issue(amount))
        order_id = uuid.uuid4().hex[:17].upper()
        now = _now()
        order = {
            "id": order_id,
            "intent": body["intent"],
            "status": "PAYER_ACTION_REQUIRED",
            "payment_source": {"paypal": {}},
            "purchase_units": [{**units[0], "payee": {"merchant_id": "C7CYMKZDG8D6E"}}],
            "create_time": now,
            "links": [
                {"href": f"https://api-m.sandbox.paypal.com/v2/checkout/orders/{order_id}", "rel": "self"},
                {
                    "href": f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}",
                    "rel": "payer-action",
                },
            ],
        }
        self.orders[order_id] = order
        return 201, order

    def _capture(self, order_id: str) -> tuple[int, dict[str, Any]]:
        order = self.orders.get(order_id)
        if order is None:
            return 404, _error(404, "INVALID_RESOURCE_ID")
        if order["status"] == "COMPLETED":
            return 422, _error(422, "ORDER_ALREADY_CAPTURED")
        if order["status"] != "APPROVED":
            return 422, _error(422, "ORDER_NOT_APPROVED")
        outcome = self._outcomes.get(order_id, "COMPLETED")
        if outcome == "INSTRUMENT_DECLINED":
            redirect = {
                "href": f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}",
                "rel": "redirect",
            }
            return 422, _error(422, outcome, [redirect])
        unit = order["purchase_units"][0]
        invoice_id = unit.get("invoice_id")
        paid = [
            o
            for o in self.orders.values()
            if o["status"] == "COMPLETED" and o["purchase_units"][0].get("invoice_id")
        ]
        if invoice_id and any(o["purchase_units"][0]["invoice_id"] == invoice_id for o in paid):
            return 422, _error(422, "DUPLICATE_INVOICE_ID")
        capture_id = uuid.uuid4().hex[:17].upper()
        now = _now()
        capture: dict[str, Any] = {
            "id": capture_id,
            "status": outcome,
            "amount": dict(unit["amount"]),
            "final_capture": True,
            "seller_protection": {"status": "ELIGIBLE"},
            "custom_id": unit.get("custom_id"),
            "invoice_id": invoice_id,
            "supplementary_data": {"related_ids": {"order_id": order_id}},
            "create_time": now,
            "update_time": now,
            "links": [
                {
                    "href": f"https://api-m.sandbox.paypal.com/v2/payments/captures/{capture_id}",
                    "rel": "self",
                },
                {"href": f"https://api-m.sandbox.paypal.com/v2/checkout/orders/{order_id}", "rel": "up"},
            ],
        }
        if outcome == "PENDING":
            capture["status_details"] = {"reason": "PENDING_REVIEW"}
        self.captures[capture_id] = capture
        unit["payments"] = {"captures": [capture]}  # the same object: later changes show in the order
        order["status"] = "COMPLETED"
        return 201, order

    def _refund(self, capture_id: str, body: Any) -> tuple[int, dict[str, Any]]:
        capture = self.captures.get(capture_id)
        if capture is None:
            return 404, _error(404, "INVALID_RESOURCE_ID")
        if capture["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED"):
            return 422, _error(
                422, "CAPTURE_FULLY_REFUNDED" if capture["status"] == "REFUNDED" else "REFUND_NOT_ALLOWED"
            )
        body = body if isinstance(body, dict) else {}
        captured = Decimal(capture["amount"]["value"])
        refunded = sum(
            (Decimal(r["amount"]["value"]) for r in self.refunds.values() if r["capture_id"] == capture_id),
            Decimal(0),
        )
        amount = body.get("amount") or {
            "value": str(captured - refunded),
            "currency_code": capture["amount"]["currency_code"],
        }
        if amount.get("currency_code") != capture["amount"]["currency_code"]:
            return 422, _error(422, "REFUND_CURRENCY_MISMATCH")
        if _amount_issue(amount):
            return 422, _error(422, _amount_issue(amount))
        if Decimal(amount["value"]) > captured - refunded:
            return 422, _error(422, "REFUND_AMOUNT_EXCEEDED")
        refund_id = uuid.uuid4().hex[:17].upper()
        now = _now()
        refund = {
            "id": refund_id,
            "status": self.refund_status,
            "amount": amount,
            "custom_id": body.get("custom_id"),
            "capture_id": capture_id,  # the fake's own bookkeeping: PayPal names it by the "up" link
            "create_time": now,
            "update_time": now,
            "links": [
                {"href": f"https://api-m.sandbox.paypal.com/v2/payments/refunds/{refund_id}", "rel": "self"},
                {"href": f"https://api-m.sandbox.paypal.com/v2/payments/captures/{capture_id}", "rel": "up"},
            ],
        }
        self.refunds[refund_id] = refund
        if self.refund_status == "COMPLETED":
            left = captured - refunded - Decimal(amount["value"])
            capture["status"] = "REFUNDED" if left == 0 else "PARTIALLY_REFUNDED"
        return 201, {k: v for k, v in refund.items() if k != "capture_id"}

    def _verify(self, text: str) -> tuple[int, dict[str, Any]]:
        try:
            members = raw_members(text)
        except ValueError:
            return 400, _error(400, "MALFORMED_REQUEST_JSON")
        values = {key: json.loads(raw) for key, raw in members.items()}
        missing = [name for name in _VERIFY_FIELDS if not values.get(name)]
        if missing:
            return 400, _error(400, "MISSING_REQUIRED_PARAMETER")
        webhook_id = str(values["webhook_id"])
        # The event exactly as the caller sent it: PayPal's CRC32 is over those bytes.
        expected = sign(
            str(values["transmission_id"]),
            str(values["transmission_time"]),
            webhook_id,
            members["webhook_event"].encode(),
        )
        verified = (
            webhook_id in self.webhook_ids
            and values["auth_algo"] == AUTH_ALGO
            and hmac.compare_digest(expected, str(values["transmission_sig"]))
        )
        return 200, {"verification_status": "SUCCESS" if verified else "FAILURE"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connect at once in the concurrency test


def raw_members(text: str) -> dict[str, str]:
    """The members of a JSON object, each value as its exact text (not parsed and serialized
    again), as PayPal reads the ``webhook_event`` it checks the signature of."""
    decoder = json.JSONDecoder()
    whitespace = re.compile(r"\s*")
    members: dict[str, str] = {}
    at = whitespace.match(text, 0).end()  # type: ignore[union-attr]  # \s* always matches
    if text[at : at + 1] != "{":
        raise ValueError("not an object")
    at = whitespace.match(text, at + 1).end()  # type: ignore[union-attr]
    if text[at : at + 1] == "}":
        return members
    while True:
        key, at = decoder.raw_decode(text, at)
        at = whitespace.match(text, at).end()  # type: ignore[union-attr]
        if text[at : at + 1] != ":":
            raise ValueError("expected ':'")
        start = whitespace.match(text, at + 1).end()  # type: ignore[union-attr]
        _, end = decoder.raw_decode(text, start)
        members[str(key)] = text[start:end]
        at = whitespace.match(text, end).end()  # type: ignore[union-attr]
        if text[at : at + 1] == "}":
            return members
        if text[at : at + 1] != ",":
            raise ValueError("expected ','")
        at = whitespace.match(text, at + 1).end()  # type: ignore[union-attr]


def _amount_issue(amount: dict[str, Any]) -> str:
    """PayPal's issue with an amount, or ``""``."""
    currency, value = amount.get("currency_code"), amount.get("value")
    if not isinstance(currency, str) or not isinstance(value, str):
        return "MISSING_REQUIRED_PARAMETER"
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        return "INVALID_PARAMETER_VALUE"
    try:
        exponent = -Decimal(value).as_tuple().exponent  # type: ignore[operator]
    except (InvalidOperation, TypeError):
        return "INVALID_PARAMETER_VALUE"
    if exponent > (0 if currency in _NO_DECIMALS else 2):
        return "DECIMAL_PRECISION"
    return ""


def _error(status: int, issue: str = "", links: list[dict[str, str]] | None = None) -> dict[str, Any]:
    name, message = _FAILURES[status]
    error: dict[str, Any] = {"name": name, "message": message, "debug_id": uuid.uuid4().hex[:13]}
    if issue:
        error["details"] = [
            {"issue": issue, "description": _DESCRIPTIONS.get(issue, issue.replace("_", " ").lower())}
        ]
    error["links"] = [
        *(links or []),
        {
            "href": f"https://developer.paypal.com/api/rest/reference/orders/v2/errors/#{issue}",
            "rel": "information_link",
        },
    ]
    return error


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _handler_for(fake: FakePayPal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            path = self.path.partition("?")[0]
            try:
                parsed = (
                    json.loads(body)
                    if body and self.headers.get_content_type() == "application/json"
                    else None
                )
            except ValueError:
                parsed = None
            received = Received(self.command, path, parsed, dict(self.headers.items()), body)
            status, payload = fake.handle(received)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Paypal-Debug-Id", uuid.uuid4().hex[:13])
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # the test output stays quiet
            return

    return Handler
