"""A real SMTP server on loopback for the tests: aiosmtpd, in a thread of its own, on a free
port of 127.0.0.1, keeping every message it accepts.

    with SMTPServer() as server:
        settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
        ...                                  # the code under test sends through Django
        (message,) = server.wait_for(1)      # or server.messages, right after a sync send

Django's SMTP backend waits for the server's "250" after the message data, and the server
answers only once ``handle_DATA`` has stored the message: after ``send()`` returns (in any
thread) the message is already in ``messages``. ``wait_for`` is for senders that run
elsewhere (a live server thread, a browser's request).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import socket
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"
_URL = re.compile(r"https?://[^\s\"'<>]+")


@dataclass(frozen=True)
class Received:
    """One message as the server received it: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    peer: str
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def to(self) -> str:
        return str(self.message["To"])

    def part(self, content_type: str) -> str:
        """The decoded body of the first part of ``content_type`` ("" when there is none)."""
        for part in self.message.walk():
            if part.get_content_type() == content_type and not part.is_multipart():
                return str(part.get_content())
        return ""

    @property
    def text(self) -> str:
        return self.part("text/plain")

    @property
    def html(self) -> str:
        return self.part("text/html")

    def urls(self, content_type: str = "text/plain") -> list[str]:
        """Every http(s) address in that part, in order."""
        return _URL.findall(self.part(content_type))


class _Handler:
    def __init__(self, server: SMTPServer) -> None:
        self._server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        self._server._store(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(str(r) for r in envelope.rcpt_tos),
                peer=peer,
                message=message,
            )
        )
        return "250 Message accepted for delivery"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SMTPServer:
    """aiosmtpd's ``Controller`` on a free port of ``host`` (loopback only)."""

    def __init__(self, host: str = HOST) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"the test SMTP server listens on loopback only, not {host!r}")
        self.host = host
        self.port = 0
        self._controller: Controller | None = None
        self._messages: list[Received] = []
        self._arrived = threading.Condition()

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> SMTPServer:
        if self._controller is not None:
            raise RuntimeError("the SMTP server is already running")
        last: Exception | None = None
        for _ in range(5):  # the free port may be taken between the probe and the bind
            port = _free_port(self.host)
            controller = Controller(_Handler(self), hostname=self.host, port=port, ready_timeout=10)
            try:
                controller.start()
            except (OSError, RuntimeError, TimeoutError) as exc:
                last = exc
                with contextlib.suppress(AssertionError, RuntimeError):
                    controller.stop()
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start an SMTP server on {self.host}: {last}")

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what arrived -------------------------------------------------------------------------

    def _store(self, received: Received) -> None:
        with self._arrived:
            self._messages.append(received)
            self._arrived.notify_all()

    @property
    def messages(self) -> list[Received]:
        """A copy of the messages received so far, oldest first."""
        with self._arrived:
            return list(self._messages)

    def clear(self) -> None:
        with self._arrived:
            self._messages.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The messages once at least ``count`` arrived; AssertionError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} message(s) within {timeout}s, got {len(self._messages)}: "
                        f"{[m.subject for m in self._messages]}"
                    )
                self._arrived.wait(left)
            return list(self._messages)
