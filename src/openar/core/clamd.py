"""A small client of ClamAV's daemon, clamd: the malware scanner uploads go through.

``OPENAR_CLAMD`` says where clamd listens: ``unix:/run/clamav/clamd.ctl`` (a unix socket) or
``tcp://127.0.0.1:3310``; unset, nothing is scanned. clamd's protocol has neither
authentication nor encryption: keep it on a unix socket, on loopback, or on a private
network the scanner alone shares with OpenAR.

A file is sent with ``INSTREAM``: chunks of at most 64 KiB, each after its length as four
big-endian bytes, then a zero length; clamd answers ``stream: OK``, ``stream: <signature>
FOUND`` or ``<reason> ERROR``. clamd unpacks archives and office files itself (its
``ScanArchive`` and ``ScanOLE2`` options, on by default). Its ``StreamMaxLength`` must be at
least the largest upload limit, or large files come back as errors.

clamd.conf must also say ``AlertExceedsMax yes``. Without it, a file that passes one of
clamd's own limits (``MaxScanSize``, ``MaxFileSize``, ``MaxFiles``, ``MaxRecursion``, ...)
is scanned only up to that limit and answered ``OK``: an archive of 10,001 files or nested
deeper than ``MaxRecursion`` hides what lies past the limit. With it, clamd answers
``Heuristics.Limits.Exceeded.<Limit> FOUND``, and the upload is refused as too large to
check (not as malware).

Anything but a clear answer (no socket, refused connection, timeout, an ``ERROR``, a reply
not understood) raises ``ScannerUnavailable``: the caller refuses the file (fail closed).
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlsplit

from django.conf import settings

CHUNK = 64 * 1024
CONNECT_TIMEOUT = 5.0


class ScannerUnavailable(Exception):
    """The scanner could not give a verdict; the file must be treated as not checked."""


@dataclass(frozen=True)
class ScanResult:
    infected: bool
    signature: str = ""  # the name of what was found, when infected


@dataclass(frozen=True)
class Address:
    family: socket.AddressFamily
    target: str | tuple[str, int]

    def __str__(self) -> str:
        if isinstance(self.target, tuple):
            return f"tcp://{self.target[0]}:{self.target[1]}"
        return f"unix:{self.target}"


def parse_address(address: str) -> Address:
    """``unix:/path``, ``unix:///path`` or ``tcp://host:port``; ValueError otherwise."""
    address = address.strip()
    if address.startswith("unix:"):
        path = address[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]
        if not path.startswith("/"):
            raise ValueError(f"a unix socket address needs an absolute path: {address!r}")
        return Address(socket.AF_UNIX, path)
    if address.startswith("tcp://"):
        parts = urlsplit(address)
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"not a valid port in {address!r}") from exc
        if not parts.hostname or port is None:
            raise ValueError(f"a TCP address needs a host and a port: {address!r}")
        family = socket.AF_INET6 if ":" in parts.hostname else socket.AF_INET
        return Address(family, (parts.hostname, port))
    raise ValueError(f"OPENAR_CLAMD must start with unix: or tcp://, not {address!r}")


class Scanner:
    """One clamd, reached at ``address``; each call opens its own connection."""

    def __init__(self, address: str, *, timeout: float = 60.0, chunk_size: int = CHUNK) -> None:
        self.address = address
        self.timeout = timeout
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        return f"Scanner({self.address!r})"

    def _connect(self) -> socket.socket:
        try:
            address = parse_address(self.address)
        except ValueError as exc:
            raise ScannerUnavailable(str(exc)) from exc
        sock = socket.socket(address.family, socket.SOCK_STREAM)
        sock.settimeout(min(CONNECT_TIMEOUT, self.timeout))
        try:
            sock.connect(address.target)
        except OSError as exc:
            sock.close()
            raise ScannerUnavailable(f"cannot connect to clamd at {address}: {exc}") from exc
        sock.settimeout(self.timeout)
        return sock

    def _command(self, command: bytes) -> str:
        with self._connect() as sock:
            try:
                sock.sendall(b"z" + command + b"\0")
                return _reply(sock, time.monotonic() + self.timeout)
            except OSError as exc:
                raise ScannerUnavailable(f"clamd did not answer {command.decode()}: {exc}") from exc

    def ping(self) -> bool:
        """True when clamd answers PONG; False when it cannot be reached."""
        try:
            return self._command(b"PING") == "PONG"
        except ScannerUnavailable:
            return False

    def version(self) -> str:
        return self._command(b"VERSION")

    def scan(self, stream: IO[bytes]) -> ScanResult:
        """Scan ``stream`` from where it is to its end (callers seek to 0 first)."""
        deadline = time.monotonic() + self.timeout
        with self._connect() as sock:
            try:
                sock.sendall(b"zINSTREAM\0")
                while chunk := stream.read(self.chunk_size):
                    if time.monotonic() > deadline:
                        raise ScannerUnavailable(f"clamd took longer than {self.timeout:g} s")
                    sock.sendall(struct.pack(">I", len(chunk)) + chunk)
                sock.sendall(struct.pack(">I", 0))
            except OSError as exc:
                # clamd closes early when the stream passes its StreamMaxLength; say what it said.
                reply = _reply_if_any(sock)
                raise ScannerUnavailable(f"clamd stopped the scan: {reply or exc}") from exc
            try:
                reply = _reply(sock, deadline)
            except OSError as exc:
                raise ScannerUnavailable(f"clamd gave no verdict: {exc}") from exc
        return parse_scan_reply(reply)


def parse_scan_reply(reply: str) -> ScanResult:
    """The verdict in an INSTREAM reply; ScannerUnavailable for an error or anything else."""
    reply = reply.strip()
    if reply.endswith("ERROR"):
        raise ScannerUnavailable(f"clamd answered an error: {reply}")
    _, sep, verdict = reply.partition(": ")
    if not sep:
        raise ScannerUnavailable(f"clamd answered something not understood: {reply!r}")
    if verdict == "OK":
        return ScanResult(infected=False)
    if verdict.endswith(" FOUND"):
        signature = verdict[: -len(" FOUND")].strip()
        if signature:
            return ScanResult(infected=True, signature=signature)
    raise ScannerUnavailable(f"clamd answered something not understood: {reply!r}")


def _reply(sock: socket.socket, deadline: float) -> str:
    """One reply, up to its NUL (the ``z`` commands) or the end of the connection."""
    data = bytearray()
    while b"\0" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ScannerUnavailable("clamd took too long to answer")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(4096)
        except TimeoutError as exc:
            raise ScannerUnavailable("clamd took too long to answer") from exc
        if not chunk:
            break
        data += chunk
        if len(data) > 64 * 1024:
            raise ScannerUnavailable("clamd's answer is too long")
    if not data:
        raise ScannerUnavailable("clamd closed the connection without an answer")
    return data.split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()


def _reply_if_any(sock: socket.socket) -> str:
    try:
        return _reply(sock, time.monotonic() + 1.0)
    except (OSError, ScannerUnavailable):
        return ""


def configured_scanner() -> Scanner | None:
    """The scanner ``OPENAR_CLAMD`` configures, or None when it is unset (no scanning)."""
    address = str(getattr(settings, "OPENAR_CLAMD", "") or "").strip()
    if not address:
        return None
    return Scanner(address, timeout=float(getattr(settings, "OPENAR_CLAMD_TIMEOUT", 60)))
