"""The clamd client: addresses, replies, and scans against a real clamd on loopback (the
``clamd`` fixture: a private daemon whose only signature is one made from the EICAR test
string), plus small fake daemons on a unix socket for the answers a real one rarely gives."""

from __future__ import annotations

import io
import secrets
import signal
import socket
import struct
import threading
import zipfile
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from openar.core.clamd import (
    Address,
    Scanner,
    ScannerUnavailable,
    ScanResult,
    configured_scanner,
    parse_address,
    parse_scan_reply,
)

SIGNATURE = "OpenAR-Test-EICAR.UNOFFICIAL"


def eicar() -> bytes:
    """The EICAR test string, put together here so that this file is not itself a hit."""
    return ("X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*").encode()


# --- addresses and replies ------------------------------------------------------------------


def test_addresses_of_a_unix_socket_and_of_tcp() -> None:
    assert parse_address("unix:/run/clamav/clamd.ctl") == Address(socket.AF_UNIX, "/run/clamav/clamd.ctl")
    assert parse_address("unix:///run/clamav/clamd.ctl") == Address(socket.AF_UNIX, "/run/clamav/clamd.ctl")
    assert parse_address("tcp://127.0.0.1:3310") == Address(socket.AF_INET, ("127.0.0.1", 3310))
    assert parse_address(" tcp://[::1]:3310 ") == Address(socket.AF_INET6, ("::1", 3310))
    assert str(parse_address("tcp://127.0.0.1:3310")) == "tcp://127.0.0.1:3310"


@pytest.mark.parametrize(
    "address",
    ["", "/run/clamd.ctl", "unix:clamd.ctl", "tcp://127.0.0.1", "tcp://:3310", "tcp://h:99999", "http://x:1"],
)
def test_an_address_not_understood_is_an_error(address: str) -> None:
    with pytest.raises(ValueError):
        parse_address(address)


def test_scan_replies() -> None:
    assert parse_scan_reply("stream: OK") == ScanResult(infected=False)
    assert parse_scan_reply("stream: Win.Test.EICAR_HDB-1 FOUND") == ScanResult(
        infected=True, signature="Win.Test.EICAR_HDB-1"
    )
    for reply in (
        "INSTREAM size limit exceeded. ERROR",
        "stream: lstat() failed. ERROR",
        "",
        "PONG",
        "stream: ",
    ):
        with pytest.raises(ScannerUnavailable):
            parse_scan_reply(reply)


def test_no_setting_means_no_scanner_and_a_setting_gives_one(settings: Any) -> None:
    settings.OPENAR_CLAMD = ""
    assert configured_scanner() is None
    settings.OPENAR_CLAMD = "tcp://127.0.0.1:3310"
    settings.OPENAR_CLAMD_TIMEOUT = 7
    scanner = configured_scanner()
    assert scanner is not None
    assert (scanner.address, scanner.timeout) == ("tcp://127.0.0.1:3310", 7.0)


# --- a real clamd ---------------------------------------------------------------------------


def test_ping_and_version(clamd: str) -> None:
    scanner = Scanner(clamd)
    assert scanner.ping() is True
    assert scanner.version().startswith("ClamAV ")


def test_a_clean_stream_is_ok_and_eicar_is_found(clamd: str) -> None:
    scanner = Scanner(clamd)
    assert scanner.scan(io.BytesIO(b"Invoice 1001, 120.00 EUR\n")) == ScanResult(infected=False)
    assert scanner.scan(io.BytesIO(eicar())) == ScanResult(infected=True, signature=SIGNATURE)


def test_eicar_split_across_many_chunks_is_found(clamd: str) -> None:
    """INSTREAM sends chunks; a signature across their boundaries is still one stream."""
    scanner = Scanner(clamd, chunk_size=7)
    data = b"a" * 1000 + eicar() + b"b" * 1000
    assert scanner.scan(io.BytesIO(data)) == ScanResult(infected=True, signature=SIGNATURE)


def test_clamd_looks_inside_a_zip(clamd: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("folder/readme.txt", b"nothing here\n")
        archive.writestr("folder/test.txt", eicar())
    buffer.seek(0)
    assert Scanner(clamd).scan(buffer) == ScanResult(infected=True, signature=SIGNATURE)


def test_the_same_clamd_over_tcp_on_loopback(clamd_tcp: str) -> None:
    assert clamd_tcp.startswith("tcp://127.0.0.1:")
    scanner = Scanner(clamd_tcp)
    assert scanner.ping() is True
    assert scanner.scan(io.BytesIO(eicar())) == ScanResult(infected=True, signature=SIGNATURE)
    assert scanner.scan(io.BytesIO(b"%PDF-1.4\n")) == ScanResult(infected=False)


def test_a_stream_past_clamds_limit_is_an_error_not_a_verdict(clamd: str) -> None:
    """The private clamd takes at most 100 MB a stream: beyond it, clamd answers an error,
    which must never read as clean."""

    class Endless(io.RawIOBase):
        sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self.sent > 120 * 1024 * 1024:
                return 0
            buffer[:] = b"\0" * len(buffer)
            self.sent += len(buffer)
            return len(buffer)

    with pytest.raises(ScannerUnavailable, match="size limit exceeded"):
        Scanner(clamd).scan(io.BufferedReader(Endless(), buffer_size=256 * 1024))


def test_past_its_limits_clamd_says_so_instead_of_ok(clamd: str) -> None:
    """The private clamd runs with ``AlertExceedsMax yes``, as production must: an archive
    nested deeper than MaxRecursion (17) is not "OK" but a heuristic hit naming the limit."""
    data = secrets.token_bytes(64)  # clamd caches verdicts by content: new bytes each run
    for depth in range(20):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(f"level-{depth}.zip" if depth else "note.txt", data)
        data = buffer.getvalue()
    assert Scanner(clamd).scan(io.BytesIO(data)) == ScanResult(
        infected=True, signature="Heuristics.Limits.Exceeded.MaxRecursion"
    )


# --- a scanner that cannot be reached, or answers badly --------------------------------------


def test_a_missing_socket_is_unavailable(tmp_path: Path) -> None:
    scanner = Scanner(f"unix:{tmp_path / 'clamd.ctl'}")
    assert scanner.ping() is False
    with pytest.raises(ScannerUnavailable, match="cannot connect to clamd"):
        scanner.scan(io.BytesIO(b"hello"))


def test_a_closed_tcp_port_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scanner = Scanner(f"tcp://127.0.0.1:{port}", timeout=2)
    with pytest.raises(ScannerUnavailable, match="cannot connect"):
        scanner.scan(io.BytesIO(b"hello"))


def test_a_bad_address_is_unavailable_not_a_crash() -> None:
    with pytest.raises(ScannerUnavailable, match="must start with unix: or tcp://"):
        Scanner("localhost:3310").scan(io.BytesIO(b"hello"))


FakeReply = Callable[[socket.socket], None]


@pytest.fixture
def fake_clamd(tmp_path: Path) -> Generator[Callable[[FakeReply], str], None, None]:
    """A daemon on a unix socket that reads the INSTREAM request and then does ``reply``."""
    servers: list[tuple[socket.socket, threading.Thread]] = []
    release = threading.Event()

    def start(reply: FakeReply) -> str:
        path = str(tmp_path / f"fake-{len(servers)}.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)

        def serve() -> None:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                _read_instream(conn)
                reply(conn)
                release.wait(10)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"unix:{path}"

    yield start
    release.set()
    for server, thread in servers:
        server.close()
        thread.join(5)


def _read_instream(conn: socket.socket) -> int:
    """Read a whole INSTREAM request; the number of bytes of the stream."""
    buffer = conn.makefile("rb")
    command = b""
    while not command.endswith(b"\0"):
        command += buffer.read(1)
    assert command == b"zINSTREAM\0"
    total = 0
    while True:
        (length,) = struct.unpack(">I", buffer.read(4))
        if length == 0:
            return total
        total += len(buffer.read(length))


def test_an_error_answer_is_unavailable(fake_clamd: Callable[[FakeReply], str]) -> None:
    address = fake_clamd(lambda conn: conn.sendall(b"stream: Can't allocate memory ERROR\0"))
    with pytest.raises(ScannerUnavailable, match="answered an error"):
        Scanner(address).scan(io.BytesIO(b"hello"))


def test_no_answer_within_the_timeout_is_unavailable(fake_clamd: Callable[[FakeReply], str]) -> None:
    address = fake_clamd(lambda conn: None)  # reads everything, then says nothing
    with pytest.raises(ScannerUnavailable, match="took too long"):
        Scanner(address, timeout=0.5).scan(io.BytesIO(b"hello"))


def test_closing_without_an_answer_is_unavailable(fake_clamd: Callable[[FakeReply], str]) -> None:
    address = fake_clamd(lambda conn: conn.shutdown(socket.SHUT_RDWR))
    with pytest.raises(ScannerUnavailable, match="without an answer"):
        Scanner(address).scan(io.BytesIO(b"hello"))


def test_an_answer_not_understood_is_unavailable(fake_clamd: Callable[[FakeReply], str]) -> None:
    address = fake_clamd(lambda conn: conn.sendall(b"stream: maybe\0"))
    with pytest.raises(ScannerUnavailable, match="not understood"):
        Scanner(address).scan(io.BytesIO(b"hello"))


def test_a_found_answer_from_a_fake_is_a_verdict(fake_clamd: Callable[[FakeReply], str]) -> None:
    """The reply parser, end to end over a socket: the NUL ends the reply."""
    address = fake_clamd(lambda conn: conn.sendall(b"stream: Some.Thing FOUND\0trailing"))
    assert Scanner(address).scan(io.BytesIO(b"x" * 200_000)) == ScanResult(True, "Some.Thing")


# --- scripts/clamd.py without ClamAV -----------------------------------------------------------


def _script() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "clamd.py"
    spec = importlib.util.spec_from_file_location("openar_clamd_script_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_clamav_the_script_runs_the_tests_and_says_they_are_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script()
    monkeypatch.setattr(script, "binaries", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    assert script.main(["--", "sh", "-c", 'test -z "$OPENAR_TEST_CLAMD" && exit 7']) == 7
    assert "apt-get install clamav-daemon clamav" in capsys.readouterr().err


def test_without_clamav_under_ci_the_script_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    script = _script()
    monkeypatch.setattr(script, "binaries", lambda: None)
    monkeypatch.setenv("CI", "true")
    marker = tmp_path / "ran"
    assert script.main(["--", "touch", str(marker)]) == script.NO_CLAMD == 3
    assert not marker.exists()  # the tests did not run at all
    assert "CI=true: a missing scanner fails the run" in capsys.readouterr().err


def test_the_script_gives_the_command_a_clamd_and_stops_it_after(clamd: str, tmp_path: Path) -> None:
    script = _script()
    if script.binaries() is None:
        pytest.skip("clamd comes from OPENAR_TEST_CLAMD here; ClamAV is not installed to start another")
    out = tmp_path / "address"
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        status = script.main(["--", "sh", "-c", f'echo "$OPENAR_TEST_CLAMD $OPENAR_TEST_CLAMD_TCP" > {out}'])
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert status == 0
    unix, tcp = out.read_text().split()
    assert unix.startswith("unix:/") and unix.endswith("/clamd.sock")
    assert tcp.startswith("tcp://127.0.0.1:")
    assert unix != clamd
    assert not Path(unix.removeprefix("unix:")).exists()  # stopped and removed
    assert Scanner(tcp, timeout=2).ping() is False
