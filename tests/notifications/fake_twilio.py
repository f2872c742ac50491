"""A small local imitation of Twilio's Messages API, for the SMS channel's tests.

Twilio cannot be reached from the test suite, and mocking the SDK would test nothing of how
it is called, so the real SDK talks HTTP to this server instead (``OPENAR_TWILIO_API_BASE``).
It answers ``POST /2010-04-01/Accounts/{sid}/Messages.json`` the way Twilio does: 201 with
the message's JSON and a fresh ``SM...`` SID, 401 for wrong credentials, and whatever error
a test arranges for a given ``To`` number (``fail_for``). Every request is recorded.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

MESSAGES_PATH = re.compile(r"/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})/Messages\.json")


@dataclass(frozen=True)
class Received:
    """One request the fake received."""

    method: str
    path: str
    form: dict[str, list[str]]
    headers: dict[str, str]
    auth: tuple[str, str] | None

    def value(self, name: str) -> str | None:
        """The form field ``name`` (its only value), or None when it was not sent."""
        values = self.form.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Failure:
    status: int
    code: int | None = None
    message: str = ""


@dataclass
class FakeTwilio:
    account_sid: str
    auth_token: str
    requests: list[Received] = field(default_factory=list)
    failures: dict[str, Failure] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_for(self, to: str, status: int, code: int | None = None, message: str = "") -> None:
        """Answer ``status`` (with Twilio's error ``code`` in the JSON body, when given) to any
        message sent to ``to``."""
        self.failures[to] = Failure(status, code, message)

    def start(self) -> FakeTwilio:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-twilio", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    # --- what the server answers -------------------------------------------------------------

    def answer(self, received: Received) -> tuple[int, dict[str, Any] | str]:
        match = MESSAGES_PATH.fullmatch(received.path)
        if received.method != "POST" or match is None:
            return 404, _error(404, 20404, "The requested resource was not found")
        if received.auth != (self.account_sid, self.auth_token) or match["account"] != self.account_sid:
            return 401, _error(401, 20003, "Authenticate")
        to = received.value("To") or ""
        if not to:
            return 400, _error(400, 21604, "A 'To' phone number is required.")
        if not (received.value("From") or received.value("MessagingServiceSid")):
            return 400, _error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
        failure = self.failures.get(to)
        if failure is not None:
            if failure.code is None:
                return failure.status, failure.message or "Service Unavailable"
            return failure.status, _error(failure.status, failure.code, failure.message)
        sid = f"SM{uuid.uuid4().hex}"
        now = formatdate(usegmt=True)
        return 201, {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": received.value("From"),
            "messaging_service_sid": received.value("MessagingServiceSid"),
            "body": received.value("Body") or "",
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None
    return user, password


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            received = Received(
                method=self.command,
                path=self.path.split("?", 1)[0],
                form=parse_qs(body, keep_blank_values=True),
                headers=dict(self.headers.items()),
                auth=_basic_auth(self.headers.get("Authorization", "")),
            )
            fake.requests.append(received)
            status, payload = fake.answer(received)
            content = payload if isinstance(payload, str) else json.dumps(payload)
            data = content.encode()
            self.send_response(status)
            self.send_header(
                "Content-Type",
                "text/plain" if isinstance(payload, str) else "application/json; charset=utf-8",
            )
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # the test output stays quiet
            return

    return Handler
