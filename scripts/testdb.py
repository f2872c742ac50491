#!/usr/bin/env python3
"""A PostgreSQL database for the test suite.

    scripts/testdb.py -- COMMAND [ARG...]   run COMMAND with OPENAR_TEST_DATABASE_URL set
    scripts/testdb.py                       find or start a server, check it answers, say so

Where the server comes from, first that works:

1. ``OPENAR_TEST_DATABASE_URL`` when it is set (used as is);
2. a server answering on 127.0.0.1:5432 with trust authentication, as user ``postgres``,
   then as the current user (skipped when ``OPENAR_TESTDB_NO_LOCAL=1``);
3. a throwaway server: ``initdb`` into a temporary folder, started on a free port of
   127.0.0.1 with its socket in that folder, stopped and removed when this script exits.
   The binaries are looked for in /usr/lib/postgresql/*/bin and on PATH. initdb refuses to
   run as root, so as root the server runs as an unprivileged user (``nobody``).

On a shared server each run gets its own database name, so runs at the same time do not
collide (Django creates ``test_<name>`` and drops it at the end).

Exit status: COMMAND's own; 3 when no PostgreSQL can be had (the message says what to
install); 4 when the server found does not answer a query.
"""

from __future__ import annotations

import getpass
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from urllib.parse import quote, urlsplit, urlunsplit

LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 5432
NO_DATABASE = 3
NOT_ANSWERING = 4
INSTALL_HINT = (
    "No PostgreSQL server can be had for the tests: OPENAR_TEST_DATABASE_URL is not set, "
    f"nothing answers on {LOCAL_HOST}:{LOCAL_PORT}, and no PostgreSQL server binaries "
    "(initdb, pg_ctl) are installed.\n"
    "Install them as root (Debian/Ubuntu), then run the tests again:\n"
    "    apt-get install postgresql\n"
    "or point the tests at a server: OPENAR_TEST_DATABASE_URL=postgres://user@host:port/name"
)


def say(message: str) -> None:
    print(f"testdb: {message}", file=sys.stderr, flush=True)


def redact(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def run_name() -> str:
    """A database name of this run's own; Django's test database is test_<name>."""
    return f"openar_{os.getpid()}_{int(time.time()) % 100000}"


# --- checking that a server answers ---------------------------------------------------------


def can_create_databases(host: str, port: int, user: str, timeout: float = 3.0) -> bool | None:
    """True when ``user`` signs in without a password and may create databases; False when
    it signs in but may not; None when it cannot sign in (or nothing answers)."""
    query = "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
    try:
        import psycopg
    except ImportError:
        psql = shutil.which("psql")
        if psql is None:
            return None
        result = subprocess.run(  # noqa: S603
            [psql, "-X", "-w", "-At", "-h", host, "-p", str(port), "-U", user, "-d", "postgres", "-c", query],
            capture_output=True,
            text=True,
            timeout=timeout + 5,
            env={**os.environ, "PGCONNECT_TIMEOUT": str(int(timeout))},
            check=False,
        )
        if result.returncode != 0:
            return None
        return result.stdout.strip() == "t"
    try:
        with psycopg.connect(
            host=host, port=port, user=user, dbname="postgres", connect_timeout=int(timeout)
        ) as conn:
            row = conn.execute(query).fetchone()
            return bool(row and row[0])
    except psycopg.Error:
        return None


def server_version(url: str) -> str | None:
    parts = urlsplit(url)
    try:
        import psycopg
    except ImportError:
        return "unknown version (psycopg is not installed)"
    try:
        with psycopg.connect(
            host=parts.hostname or None,
            port=parts.port or 5432,
            user=parts.username or None,
            password=parts.password or None,
            dbname="postgres",
            connect_timeout=5,
        ) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else None
    except psycopg.Error as exc:
        say(f"the server does not answer: {exc}")
        return None


def local_url() -> str | None:
    """The server on 127.0.0.1:5432, when one answers with trust authentication."""
    users = ["postgres"]
    try:
        current = getpass.getuser()
    except (KeyError, OSError):
        current = ""
    if current and current not in users:
        users.append(current)
    for user in users:
        allowed = can_create_databases(LOCAL_HOST, LOCAL_PORT, user)
        if allowed:
            return f"postgres://{quote(user)}@{LOCAL_HOST}:{LOCAL_PORT}/{run_name()}"
        if allowed is False:
            say(f"{LOCAL_HOST}:{LOCAL_PORT} answers as {user}, who may not create databases")
    return None


# --- a throwaway server ---------------------------------------------------------------------


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)


def server_binaries() -> tuple[Path, Path] | None:
    """initdb and pg_ctl of the newest PostgreSQL installed (Debian's, then PATH)."""
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    folders += ["/usr/local/pgsql/bin"]
    for folder in folders:
        initdb, pg_ctl = Path(folder, "initdb"), Path(folder, "pg_ctl")
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return initdb, pg_ctl
    initdb_path, pg_ctl_path = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb_path and pg_ctl_path:
        return Path(initdb_path), Path(pg_ctl_path)
    return None


def _world_traversable(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCAL_HOST, 0))
        return int(sock.getsockname()[1])


class Throwaway:
    """A PostgreSQL server of this run's own, in a temporary folder."""

    def __init__(self, initdb: Path, pg_ctl: Path) -> None:
        self.initdb = initdb
        self.pg_ctl = pg_ctl
        self.folder: Path | None = None
        self.data: Path | None = None
        self.port = 0
        self.started = False
        self.as_user: str | None = None
        self.wrap: Callable[[list[str]], list[str]] = lambda argv: argv

    # Running as root: initdb and postgres refuse, so they run as an unprivileged user.
    def _choose_user(self) -> None:
        if os.geteuid() != 0:
            return
        import pwd

        for name in ("nobody", "postgres"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            for wrap in (self._runuser(name), self._su(name)):
                if wrap is None:
                    continue
                probe = subprocess.run(wrap(["true"]), capture_output=True, check=False)  # noqa: S603
                if probe.returncode == 0:
                    self.as_user, self.wrap = name, wrap
                    return
        raise RuntimeError(
            "running as root, and no unprivileged user (nobody, postgres) could run initdb "
            "through runuser or su"
        )

    @staticmethod
    def _runuser(name: str) -> Callable[[list[str]], list[str]] | None:
        runuser = shutil.which("runuser")
        if runuser is None:
            return None
        return lambda argv: [runuser, "-u", name, "--", *argv]

    @staticmethod
    def _su(name: str) -> Callable[[list[str]], list[str]] | None:
        su = shutil.which("su")
        if su is None:
            return None
        import shlex

        return lambda argv: [su, "-s", "/bin/sh", name, "-c", shlex.join(argv)]

    def _run(self, argv: list[str], what: str, timeout: float = 120) -> None:
        assert self.folder is not None  # noqa: S101
        result = subprocess.run(  # noqa: S603
            self.wrap(argv),
            capture_output=True,
            text=True,
            cwd=self.folder,
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            check=False,
        )
        if result.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            output = f"{result.stdout}{result.stderr}{tail}"
            raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{output}")

    def start(self) -> str:
        self._choose_user()
        parent = None
        if self.as_user is not None and not _world_traversable(Path(tempfile.gettempdir())):
            parent = "/tmp"  # noqa: S108  (the unprivileged server user must reach its folder)
        self.folder = Path(tempfile.mkdtemp(prefix="openar-testdb-", dir=parent))
        if self.as_user is not None:
            import pwd

            entry = pwd.getpwnam(self.as_user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self.folder.chmod(0o700)
        self.data = self.folder / "data"
        self._run(
            [
                str(self.initdb),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            "initdb",
        )
        for attempt in range(3):
            self.port = free_port()
            options = (
                f"-p {self.port} -k {self.folder} -c listen_addresses={LOCAL_HOST} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
            )
            try:
                self._run(
                    [
                        str(self.pg_ctl),
                        "-D",
                        str(self.data),
                        "-l",
                        str(self.folder / "server.log"),
                        "-o",
                        options,
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                    "pg_ctl start",
                )
            except RuntimeError:
                if attempt == 2:
                    raise
                continue
            break
        self.started = True
        user = f" as user {self.as_user}" if self.as_user else ""
        say(
            f"started a throwaway PostgreSQL ({self.initdb.parent.parent.name}) in {self.folder} "
            f"on {LOCAL_HOST}:{self.port}{user}; it is stopped and removed at exit"
        )
        return f"postgres://postgres@{LOCAL_HOST}:{self.port}/openar"

    def stop(self) -> None:
        if self.folder is None:
            return
        folder, self.folder = self.folder, None
        if self.started and self.data is not None:
            self.started = False
            stop = subprocess.run(  # noqa: S603
                self.wrap([str(self.pg_ctl), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop"]),
                capture_output=True,
                text=True,
                cwd=folder,
                check=False,
            )
            if stop.returncode != 0:
                self._kill(self.data)
        shutil.rmtree(folder, ignore_errors=True)
        say(f"stopped the throwaway PostgreSQL and removed {folder}")

    @staticmethod
    def _kill(data: Path) -> None:
        try:
            pid = int((data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGQUIT)
            time.sleep(1)
        except (OSError, ValueError, IndexError):
            pass


# --- main -----------------------------------------------------------------------------------


def database_url(throwaway_holder: list[Throwaway]) -> str:
    url = os.environ.get("OPENAR_TEST_DATABASE_URL", "").strip()
    if url:
        say(f"using OPENAR_TEST_DATABASE_URL: {redact(url)}")
        return url
    if os.environ.get("OPENAR_TESTDB_NO_LOCAL", "").strip().lower() in {"1", "true", "yes"}:
        say(f"OPENAR_TESTDB_NO_LOCAL is set: not looking for a server on {LOCAL_HOST}:{LOCAL_PORT}")
    else:
        url_local = local_url()
        if url_local:
            say(f"using the PostgreSQL server on {LOCAL_HOST}:{LOCAL_PORT}: {url_local}")
            return url_local
        say(f"no PostgreSQL with trust authentication answers on {LOCAL_HOST}:{LOCAL_PORT}")
    binaries = server_binaries()
    if binaries is None:
        raise LookupError(INSTALL_HINT)
    throwaway = Throwaway(*binaries)
    throwaway_holder.append(throwaway)
    return throwaway.start()


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if args and args[0] == "--":
        args = args[1:]
    if args and args[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    holder: list[Throwaway] = []
    child: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)  # the command stops first; we clean up after it
            return
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        try:
            url = database_url(holder)
        except LookupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return NO_DATABASE
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            print(f"error: could not start a throwaway PostgreSQL: {exc}", file=sys.stderr)
            return NO_DATABASE
        if not args:
            version = server_version(url)
            if version is None:
                return NOT_ANSWERING
            say(f"PostgreSQL {version} answers")
            print(url, flush=True)
            return 0
        if holder:
            say(f"tests use {url}")
        child = subprocess.Popen(args, env={**os.environ, "OPENAR_TEST_DATABASE_URL": url})  # noqa: S603
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue  # Ctrl-C reached the command too: wait until it has stopped
    finally:
        for throwaway in holder:
            throwaway.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
