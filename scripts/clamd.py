#!/usr/bin/env python3
"""A private ClamAV daemon (clamd) for the test suite.

    scripts/clamd.py -- COMMAND [ARG...]   run COMMAND with OPENAR_TEST_CLAMD set
    scripts/clamd.py                       start one, check it answers PING, stop it, say so

The daemon lives in a temporary folder: its own clamd.conf, a unix socket (the address
given in ``OPENAR_TEST_CLAMD``, ``unix:<folder>/clamd.sock``) and a TCP socket on a free
port of 127.0.0.1 (``OPENAR_TEST_CLAMD_TCP``), and a signature database holding ONLY one
test signature made here with ``sigtool --hex-dump`` from the EICAR test string: nothing is
downloaded (no freshclam). It answers in a second or two, and is stopped and removed when
COMMAND ends.

When clamd or sigtool is not installed (Debian: ``apt-get install clamav-daemon clamav``),
COMMAND runs without ``OPENAR_TEST_CLAMD`` and the scanner tests are skipped, saying why;
with ``CI=true`` that is an error instead (exit 3), as it is when the daemon does not start.

Also importable: ``PrivateClamd`` (a context manager) is what the tests' ``clamd`` fixture
uses when it is run without this script.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType

NO_CLAMD = 3
INSTALL_HINT = (
    "ClamAV's daemon is not installed, so the malware-scanner tests cannot run.\n"
    "Install it as root (Debian/Ubuntu), then run the tests again:\n"
    "    apt-get install clamav-daemon clamav"
)
SIGNATURE_NAME = "OpenAR-Test-EICAR"
# The EICAR test string, in two halves so that this file is not itself a test-virus hit.
_EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def say(message: str) -> None:
    print(f"clamd: {message}", file=sys.stderr, flush=True)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def find_binary(name: str) -> str | None:
    for folder in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
        path = Path(folder, name)
        if os.access(path, os.X_OK):
            return str(path)
    return shutil.which(name)


def binaries() -> tuple[str, str] | None:
    """clamd and sigtool, when both are installed."""
    clamd, sigtool = find_binary("clamd"), find_binary("sigtool")
    if clamd is None or sigtool is None:
        return None
    return clamd, sigtool


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(path: str, timeout: float = 2.0) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"zPING\0")
            return sock.recv(64).rstrip(b"\0\n") == b"PONG"
    except OSError:
        return False


class PrivateClamd:
    """A clamd of this run's own, in a temporary folder, with the EICAR test signature only."""

    def __init__(self, clamd: str, sigtool: str) -> None:
        self.clamd = clamd
        self.sigtool = sigtool
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def socket_path(self) -> str:
        assert self.folder is not None  # noqa: S101
        return str(self.folder / "clamd.sock")

    @property
    def address(self) -> str:
        return f"unix:{self.socket_path}"

    @property
    def tcp_address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _signature(self, database: Path) -> None:
        hex_dump = (
            subprocess.run(  # noqa: S603
                [self.sigtool, "--hex-dump"],
                input=_EICAR.encode(),
                capture_output=True,
                check=True,
                timeout=30,
            )
            .stdout.decode()
            .strip()
        )
        if not hex_dump or any(ch not in "0123456789abcdef" for ch in hex_dump):
            raise RuntimeError(f"sigtool --hex-dump gave an unexpected result: {hex_dump[:80]!r}")
        # name:target type (0, any file):offset (* anywhere):body
        (database / "openar-test.ndb").write_text(f"{SIGNATURE_NAME}:0:*:{hex_dump}\n")

    def _config(self, database: Path) -> Path:
        assert self.folder is not None  # noqa: S101
        (self.folder / "tmp").mkdir()
        lines = [
            f"LocalSocket {self.socket_path}",
            "LocalSocketMode 600",
            "FixStaleSocket yes",
            f"TCPSocket {self.port}",
            "TCPAddr 127.0.0.1",
            "Foreground yes",
            f"DatabaseDirectory {database}",
            f"TemporaryDirectory {self.folder / 'tmp'}",
            f"LogFile {self.folder / 'clamd.log'}",
            "LogTime yes",
            "LogVerbose no",
            "SelfCheck 0",
            "Bytecode no",
            # Look inside archives and office files (on by default; said so here on purpose).
            "ScanArchive yes",
            "ScanOLE2 yes",
            "ScanPDF yes",
            "ScanHTML yes",
            "AlertEncrypted no",
            # At least the largest upload limit (50 MB imports), with room.
            "StreamMaxLength 100M",
            "MaxFileSize 100M",
            "MaxScanSize 400M",
            # A file past any of the limits is answered Heuristics.Limits.Exceeded.* FOUND, not OK.
            "AlertExceedsMax yes",
            "ReadTimeout 30",
            "CommandReadTimeout 10",
        ]
        if os.geteuid() == 0:
            lines.append("User root")  # runs as whoever starts it; the folder is its own
        conf = self.folder / "clamd.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self, timeout: float = 90.0) -> PrivateClamd:
        self.folder = Path(tempfile.mkdtemp(prefix="openar-clamd-"))
        self.folder.chmod(0o700)
        database = self.folder / "db"
        database.mkdir()
        self._signature(database)
        self.port = free_port()
        conf = self._config(database)
        self.process = subprocess.Popen(  # noqa: S603
            [self.clamd, f"--config-file={conf}", "--foreground"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to the tests reaches it only through stop()
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"clamd exited with status {self.process.returncode}:\n{self.log_tail()}")
            if ping(self.socket_path):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"clamd did not answer PING within {timeout:g} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        if self.folder is None:
            return ""
        log = self.folder / "clamd.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        folder, self.folder = self.folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def __enter__(self) -> PrivateClamd:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if args and args[0] == "--":
        args = args[1:]
    if args and args[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    found = binaries()
    if found is None:
        if in_ci():
            print(f"error: {INSTALL_HINT}\n(CI=true: a missing scanner fails the run)", file=sys.stderr)
            return NO_CLAMD
        say(f"{INSTALL_HINT}\nThe scanner tests are skipped.")
        if not args:
            return NO_CLAMD
        env = {**os.environ, "OPENAR_TEST_CLAMD_MISSING": "clamd or sigtool is not installed"}
        env.pop("OPENAR_TEST_CLAMD", None)
        return subprocess.call(args, env=env)  # noqa: S603

    daemon = PrivateClamd(*found)
    child: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)  # the command stops first; clamd after it
            return
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        try:
            daemon.start()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            print(f"error: could not start a private clamd: {exc}", file=sys.stderr)
            return NO_CLAMD
        say(f"a private clamd answers at {daemon.address} and {daemon.tcp_address}; stopped at exit")
        if not args:
            return 0
        env = {**os.environ, "OPENAR_TEST_CLAMD": daemon.address, "OPENAR_TEST_CLAMD_TCP": daemon.tcp_address}
        child = subprocess.Popen(args, env=env)  # noqa: S603
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue
    finally:
        daemon.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
