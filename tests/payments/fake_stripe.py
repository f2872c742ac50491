"""A small local imitation of Stripe's API, for the Stripe provider's tests.

Stripe cannot be reached from the test suite, and mocking the SDK would test nothing of how
it is called, so the real SDK talks HTTP to this server instead (the ``api_base`` credential).
It answers just what the provider uses, the way Stripe does (form-encoded requests with
bracketed keys, JSON answers, ``{"error": {...}}`` bodies with Stripe's types and codes):

- ``POST /v1/checkout/sessions``: a Checkout Session (``cs_test_...``) with its payment page
  URL and PaymentIntent (``pi_...``), ``payment_status: "unpaid"`` until ``mark_paid``.
- ``GET /v1/checkout/sessions/{id}``: that session, or 404 ``resource_missing``.
- ``GET /v1/checkout/sessions?payment_intent=...``: the list of sessions of that PaymentIntent.
- ``POST /v1/customers``: a Customer (``cus_...``).
- ``POST /v1/checkout/sessions`` with ``mode=setup``: a setup session with its SetupIntent;
  ``save_method`` plays the customer saving a card or bank account there; reading it with
  ``expand[]=setup_intent.payment_method`` shows the method.
- ``POST /v1/payment_intents`` (off-session, confirmed): a charge of a saved method,
  ``succeeded``, ``processing`` or declined (402 ``card_declined``) as the method was saved.
- ``POST /v1/refunds``: a refund (``re_...``) of a paid session's PaymentIntent, no more than
  what is left to refund; its status is ``refund_status`` (``succeeded`` unless a test says
  ``pending``).

It honours ``Idempotency-Key`` as Stripe does: within one account (secret key), a key that
was already answered returns the same answer again (``Idempotent-Replayed: true``), even when
the requests arrive at the same time (one lock around answering), and a key reused with other
parameters is a 400 ``idempotency_error``. Like Stripe, it keeps no answer for a request that
never ran: a wrong key (401), or an error a test arranged with ``fail_next`` (402 card
declined, 429, 500, ...), so a retry after one of those can still succeed.

Every request is recorded, with its headers and its parameters decoded into nested dicts and
lists (``params["line_items"][0]["price_data"]["unit_amount"] == "1234"``; values stay the
strings the SDK sent).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

SESSIONS_PATH = "/v1/checkout/sessions"
SESSION_PATH = re.compile(r"/v1/checkout/sessions/(?P<id>[A-Za-z0-9_]+)")
REFUNDS_PATH = "/v1/refunds"
CUSTOMERS_PATH = "/v1/customers"
PAYMENT_INTENTS_PATH = "/v1/payment_intents"
_KEY_PART = re.compile(r"\[([^\]]*)\]")

# What Stripe answers for each status a test may ask for: (type, code, message).
_FAILURES: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", "parameter_invalid", "Invalid request."),
    401: ("invalid_request_error", None, "Invalid API Key provided: sk_test_****"),
    402: ("card_error", "card_declined", "Your card was declined."),
    403: ("invalid_request_error", None, "The provided key does not have the required permissions."),
    409: ("idempotency_error", None, "There is currently another in-progress request with this key."),
    429: ("invalid_request_error", "rate_limit", "Too many requests hit the API too quickly."),
    500: ("api_error", None, "An unknown error occurred."),
    503: ("api_error", None, "The service is temporarily unavailable."),
}


@dataclass(frozen=True)
class Received:
    """One request the fake received."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    body: str

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == lowered), None)


@dataclass(frozen=True)
class Failure:
    status: int
    type: str
    code: str | None
    message: str


@dataclass
class FakeStripe:
    secret_key: str
    refund_status: str = "succeeded"
    requests: list[Received] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Saved payment methods (from ``save_method``) and what charging each does: "succeeded",
    # "processing" (a bank debit), "declined" or "requires_action".
    payment_methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    _failures: deque[Failure] = field(default_factory=deque)
    # (secret key, idempotency key) → (the request's method, path and body, the answer).
    _answered: dict[tuple[str, str], tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeStripe:
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            # A short poll: stop() waits for it, once per test.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="fake-stripe",
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

    def fail_next(self, status: int, *, times: int = 1, message: str = "", code: str | None = None) -> None:
        """Answer the next ``times`` requests with Stripe's error for ``status`` (402: a card
        declined, 429: rate limited, 500: Stripe's own failure, ...)."""
        type_, default_code, default_message = _FAILURES[status]
        for _ in range(times):
            self._failures.append(Failure(status, type_, code or default_code, message or default_message))

    def mark_paid(self, session_id: str) -> None:
        """The customer paid at the Checkout page."""
        with self._lock:
            self.sessions[session_id].update(payment_status="paid", status="complete")

    def save_method(self, session_id: str, *, kind: str = "card", outcome: str = "succeeded") -> str:
        """The customer saved a card (or bank account) at a setup-mode Checkout page."""
        with self._lock:
            session = self.sessions[session_id]
            method_id = f"pm_{uuid.uuid4().hex[:24]}"
            method: dict[str, Any] = {"id": method_id, "object": "payment_method", "type": kind}
            if kind == "card":
                method["card"] = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2039}
            else:
                method["us_bank_account"] = {"bank_name": "STRIPE TEST BANK", "last4": "6789"}
            method["customer"] = session["customer"]
            self.payment_methods[method_id] = {**method, "outcome": outcome}
            session.update(status="complete")
            session["setup_intent_object"].update(status="succeeded", payment_method=method_id)
            return method_id

    def received(self, method: str, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    # --- what the server answers -----------------------------------------------------------------

    def handle(self, received: Received) -> tuple[int, dict[str, Any], dict[str, str]]:
        """The status, JSON body and extra headers of the answer to ``received``."""
        with self._lock:  # one request at a time: idempotency holds under concurrency
            self.requests.append(received)
            if self._failures:
                failure = self._failures.popleft()
                return failure.status, _error(failure.type, failure.message, failure.code), {}
            authorization = received.header("Authorization") or ""
            if authorization != f"Bearer {self.secret_key}":
                type_, code, message = _FAILURES[401]
                return 401, _error(type_, message, code), {}
            key = received.header("Idempotency-Key") if received.method == "POST" else None
            fingerprint = f"{received.method} {received.path} {received.body}"
            if key:
                earlier = self._answered.get((self.secret_key, key))
                if earlier is not None:
                    if earlier[0] != fingerprint:
                        return 400, _error("idempotency_error", _REUSED_KEY.format(key=key)), {}
                    return earlier[1], earlier[2], {"Idempotent-Replayed": "true", "Idempotency-Key": key}
            status, payload = self._route(received)
            if key:
                self._answered[(self.secret_key, key)] = (fingerprint, status, payload)
                return status, payload, {"Idempotency-Key": key}
            return status, payload, {}

    def _route(self, received: Received) -> tuple[int, dict[str, Any]]:
        if received.method == "POST" and received.path == SESSIONS_PATH:
            return self._create_session(received.params)
        if received.method == "GET" and received.path == SESSIONS_PATH:
            found = [
                s
                for s in self.sessions.values()
                if s["payment_intent"] == received.params.get("payment_intent", s["payment_intent"])
            ]
            limit = int(received.params.get("limit") or 10)
            return 200, {
                "object": "list",
                "url": SESSIONS_PATH,
                "has_more": len(found) > limit,
                "data": found[:limit],
            }
        match = SESSION_PATH.fullmatch(received.path)
        if received.method == "GET" and match is not None:
            session = self.sessions.get(match["id"])
            if session is None:
                return 404, _missing("checkout.session", match["id"], "session")
            if session["mode"] == "setup":
                return 200, self._setup_session(session, received.params.get("expand") or [])
            return 200, session
        if received.method == "POST" and received.path == CUSTOMERS_PATH:
            customer = {"id": f"cus_{uuid.uuid4().hex[:14]}", "object": "customer", **received.params}
            self.customers[customer["id"]] = customer
            return 200, customer
        if received.method == "POST" and received.path == PAYMENT_INTENTS_PATH:
            return self._create_payment_intent(received.params)
        if received.method == "POST" and received.path == REFUNDS_PATH:
            return self._create_refund(received.params)
        return 404, _error(
            "invalid_request_error", f"Unrecognized request URL ({received.method}: {received.path})."
        )

    def _setup_session(self, session: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        """A setup session as Stripe shows it: ``setup_intent`` an id, or the object (with
        its payment method) when asked to expand it."""
        shown = {key: value for key, value in session.items() if key != "setup_intent_object"}
        intent = dict(session["setup_intent_object"])
        if "setup_intent" in expand or "setup_intent.payment_method" in expand:
            method_id = intent.get("payment_method")
            if "setup_intent.payment_method" in expand and method_id:
                method = self.payment_methods[method_id]
                intent["payment_method"] = {k: v for k, v in method.items() if k != "outcome"}
            shown["setup_intent"] = intent
        return shown

    def _create_payment_intent(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        method = self.payment_methods.get(str(params.get("payment_method") or ""))
        if method is None:
            return 404, _missing("payment_method", str(params.get("payment_method")), "payment_method")
        if method["customer"] != params.get("customer"):
            return 400, _error("invalid_request_error", "The payment method belongs to another customer.")
        if params.get("confirm") != "true" or params.get("off_session") != "true":
            return 400, _error("invalid_request_error", "Expected an off-session, confirmed PaymentIntent.")
        intent_id = f"pi_{uuid.uuid4().hex[:24]}"
        if method["outcome"] == "declined":
            return 402, {
                "error": {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "message": "Your card has insufficient funds.",
                    "payment_intent": {"id": intent_id, "status": "requires_payment_method"},
                }
            }
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(params["amount"]),
            "currency": params["currency"],
            "customer": params["customer"],
            "payment_method": method["id"],
            "status": method["outcome"],
            "metadata": params.get("metadata") or {},
            "created": int(time.time()),
        }
        self.payment_intents[intent_id] = intent
        return 200, intent

    def _create_session(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if params.get("mode") == "setup":
            if not params.get("customer") or not params.get("success_url"):
                return 400, _error("invalid_request_error", "Setup mode needs a customer and success_url.")
            session_id = f"cs_test_{uuid.uuid4().hex}"
            setup = {
                "id": session_id,
                "object": "checkout.session",
                "mode": "setup",
                "url": f"https://checkout.stripe.com/c/setup/{session_id}",
                "customer": params["customer"],
                "status": "open",
                "metadata": params.get("metadata") or {},
                "payment_intent": None,
                "setup_intent": f"seti_{uuid.uuid4().hex[:24]}",
                "success_url": params["success_url"],
                "cancel_url": params.get("cancel_url"),
                "created": int(time.time()),
            }
            setup["setup_intent_object"] = {
                "id": setup["setup_intent"],
                "object": "setup_intent",
                "status": "requires_payment_method",
                "payment_method": None,
                "customer": params["customer"],
            }
            self.sessions[session_id] = setup
            return 200, self._setup_session(setup, [])
        if params.get("mode") != "payment":
            return 400, _error("invalid_request_error", "Missing mode.", "parameter_missing", "mode")
        if not params.get("success_url"):
            return 400, _error(
                "invalid_request_error", "Missing success_url.", "parameter_missing", "success_url"
            )
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            return 400, _error(
                "invalid_request_error", "Missing line_items.", "parameter_missing", "line_items"
            )
        currencies = {item["price_data"]["currency"] for item in items}
        if len(currencies) != 1:
            return 400, _error("invalid_request_error", "Line items must share one currency.")
        amount_total = sum(int(item["price_data"]["unit_amount"]) * int(item["quantity"]) for item in items)
        session_id = f"cs_test_{uuid.uuid4().hex}"
        created = int(time.time())
        session = {
            "id": session_id,
            "object": "checkout.session",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "payment_intent": f"pi_{uuid.uuid4().hex[:24]}",
            "amount_total": amount_total,
            "currency": currencies.pop(),
            "mode": "payment",
            "payment_method_types": params.get("payment_method_types") or ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "client_reference_id": params.get("client_reference_id"),
            "customer_email": params.get("customer_email"),
            "metadata": params.get("metadata") or {},
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "created": created,
            "expires_at": created + 24 * 3600,
            "livemode": False,
        }
        self.sessions[session_id] = session
        return 200, session

    def _create_refund(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        payment_intent = params.get("payment_intent")
        if not payment_intent:
            return 400, _error(
                "invalid_request_error", "One of charge or payment_intent is required.", "parameter_missing"
            )
        session = next((s for s in self.sessions.values() if s["payment_intent"] == payment_intent), None)
        if session is None:
            return 404, _missing("payment_intent", payment_intent, "payment_intent")
        if session["payment_status"] != "paid":
            return 400, _error(
                "invalid_request_error",
                f"This PaymentIntent ({payment_intent}) does not have a successful charge to refund.",
                "charge_not_refundable",
            )
        refunded = sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == payment_intent)
        left = session["amount_total"] - refunded
        amount = int(params.get("amount") or left)
        if amount <= 0 or amount > left:
            return 400, _error(
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left}).",
                "amount_too_large",
                "amount",
            )
        refund = {
            "id": f"re_{uuid.uuid4().hex[:24]}",
            "object": "refund",
            "amount": amount,
            "currency": session["currency"],
            "payment_intent": payment_intent,
            "status": self.refund_status,
            "metadata": params.get("metadata") or {},
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        return 200, refund


_REUSED_KEY = (
    "Keys for idempotent requests can only be used with the same parameters they were first used with. "
    "Try using a key other than '{key}' if you meant to execute a different request."
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connect at once in the concurrency test


def _error(type_: str, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    if code == "card_declined":
        error["decline_code"] = "generic_decline"
    return {"error": error}


def _missing(kind: str, id_: str, param: str) -> dict[str, Any]:
    return _error("invalid_request_error", f"No such {kind}: '{id_}'", "resource_missing", param)


def decode_params(text: str) -> dict[str, Any]:
    """Stripe's form encoding back into nested values: ``a[b][0][c]=1`` → ``{"a": {"b": [{"c":
    "1"}]}}``; a level whose keys are all numbers is a list."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        head, _, rest = key.partition("[")
        parts = [head, *_KEY_PART.findall("[" + rest)] if rest else [head]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _listify(root)


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    items = {key: _listify(item) for key, item in value.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def _handler_for(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            path, _, query = self.path.partition("?")
            received = Received(
                method=self.command,
                path=path,
                params=decode_params(body if self.command == "POST" else query),
                headers=dict(self.headers.items()),
                body=body,
            )
            status, payload, headers = fake.handle(received)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_{uuid.uuid4().hex[:14]}")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # the test output stays quiet
            return

    return Handler
