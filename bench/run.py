"""OpenAR benchmark: seed a fresh PostgreSQL database, serve it with gunicorn, drive the
customer portal with wrk, and print the figures next to the targets. See bench/README.md.

    .venv/bin/python bench/run.py [--customers 100000 --invoices-per-customer 10
                                   --duration 15 --connections 16 --workers N --keep]

Exit status: 0 when every step worked and every target is met, 1 when a target is missed,
2 when a step failed (wrk missing, seeding, server, a page that does not show what it must).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import http.cookies
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "portal.lua"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/openar_bench"
PASSWORD = "bench-password"  # noqa: S105  (what `openar seed` gives every customer)
ORGANIZATION = "bench"
HEALTHZ = "/healthz"
PAGES = ("/portal/", "/portal/invoices/", "/portal/invoices/?status=all")
PAGE_SHARE_TARGET = 0.10  # each page's rate, as a share of /healthz's on the same server
P99_TARGET_MS = 150.0
P99_TARGET_CONNECTIONS = 16
INVOICE_PAGE_SIZE = 25  # openar.portal.views.INVOICE_PAGE_SIZE


class BenchError(Exception):
    """A step that failed; the message says what to do."""


def say(message: str = "") -> None:
    print(message, flush=True)


# --- Command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Seed PostgreSQL, serve OpenAR, and benchmark the customer portal with wrk."
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--invoices-per-customer", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data")
    parser.add_argument("--duration", type=int, default=15, help="seconds of wrk per URL")
    parser.add_argument(
        "--warmup", type=int, default=3, help="seconds of wrk before each measurement"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="gunicorn workers (default: openar serve's, 2 x CPUs)",
    )
    parser.add_argument("--sessions", type=int, default=200, help="customers signed in and used")
    parser.add_argument(
        "--logins",
        type=int,
        default=3,
        help="of those, how many sign in through the login form (the rest get sessions from "
        "Django's session store: each form login costs a scrypt hash, ~0.4 s of CPU)",
    )
    parser.add_argument("--no-ledger-check", action="store_true", help="skip `openar check ledger`")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if args.customers < 1 or args.invoices_per_customer < 1:
        parser.error("--customers and --invoices-per-customer must be at least 1")
    if args.sessions < 1 or args.logins < 0 or args.duration < 1 or args.connections < 1:
        parser.error("--sessions, --duration and --connections must be positive")
    return args


# --- Database ----------------------------------------------------------------------------------


def database_name(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise BenchError(f"OPENAR_BENCH_DATABASE_URL must be a postgresql:// URL, not {url!r}")
    name = urllib.parse.unquote(parts.path.lstrip("/"))
    if "bench" not in name:
        # This database is dropped and created again: refuse anything that looks real.
        raise BenchError(
            f"The benchmark database is dropped and re-created; its name must contain "
            f"'bench' (got {name!r})."
        )
    return name


def maintenance_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/postgres"))


def recreate_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = database_name(url)
    with psycopg.connect(maintenance_url(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(database_name(url))
            )
        )


def vacuum_analyze(url: str) -> float:
    """What autovacuum would do soon after a bulk load: statistics for the planner, hint bits
    and the visibility map, so that the first measured requests do not pay for them."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return time.perf_counter() - started


# --- Processes ---------------------------------------------------------------------------------


def openar(*args: str) -> list[str]:
    return [sys.executable, "-m", "openar", *args]


def run(command: list[str], env: dict[str, str], what: str) -> tuple[str, float]:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(
            f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result.stdout.strip(), seconds


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)  # gunicorn: graceful shutdown
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_server(env: dict[str, str], workers: int, log: Path) -> Server:
    port = free_port()
    command = openar("serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers))
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(process, port, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"openar serve exited with {process.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_get(port, "/readyz").status == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise BenchError(f"openar serve did not become ready within 60 s:\n{server.log_tail()}")


# --- HTTP --------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: str


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: str | None = None,
    source: str = "127.0.0.1",
) -> Response:
    """One request to the server on 127.0.0.1, from the loopback address ``source``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Response(response.status, response.msg, response.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def http_get(port: int, path: str, cookie: str | None = None) -> Response:
    return http_request(port, "GET", path, headers={"Cookie": cookie} if cookie else None)


def set_cookies(response: Response) -> dict[str, str]:
    jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


@dataclass(frozen=True)
class CookieNames:
    session: str
    csrf: str


def login_source(n: int) -> str:
    """The loopback address the n-th form login comes from: allauth allows 30 logins a minute
    from one address, so every 25 logins come from the next one (127.0.0.2, 127.0.0.3, ...)."""
    return f"127.0.0.{2 + n // 25}"


def form_login(port: int, email: str, names: CookieNames, source: str) -> tuple[str, float]:
    """Sign in through allauth's form, as a browser would; return the Cookie header value."""
    started = time.perf_counter()
    page = http_request(port, "GET", "/accounts/login/", source=source)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
    csrf = set_cookies(page).get(names.csrf)
    if page.status != 200 or not token or not csrf:
        raise BenchError(f"GET /accounts/login/ gave {page.status} without a CSRF token")
    form = urllib.parse.urlencode(
        {"login": email, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)}
    )
    response = http_request(
        port,
        "POST",
        "/accounts/login/",
        headers={
            "Cookie": f"{names.csrf}={csrf}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        body=form,
        source=source,
    )
    session = set_cookies(response).get(names.session)
    if response.status != 302 or not session:
        raise BenchError(
            f"Signing in as {email} through /accounts/login/ gave {response.status} without a "
            "session cookie (wrong password, rate limit, or a changed login form?)"
        )
    return f"{names.session}={session}", time.perf_counter() - started


# --- Customers and their sessions ---------------------------------------------------------------


@dataclass
class SampleCustomer:
    number: str
    email: str
    invoices: list[tuple[str, bool, Any, Any]]  # (number, is open, issue date, due date), by id
    cookie: str = ""
    via: str = ""  # "form" or "store"

    def expected(self, path: str) -> tuple[list[str], bool]:
        """Invoice numbers the page must show, and whether all of them (else at least one)."""
        open_ones = sorted((i for i in self.invoices if i[1]), key=lambda i: i[3])
        if path.startswith("/portal/invoices/") and "status=all" in path:
            newest = sorted(self.invoices, key=lambda i: i[2], reverse=True)
            return [i[0] for i in newest[:INVOICE_PAGE_SIZE]], True
        if path.startswith("/portal/invoices/"):
            return [i[0] for i in open_ones[:INVOICE_PAGE_SIZE]], True
        if path == "/portal/":
            return [i[0] for i in open_ones], False
        return [], False


@dataclass
class Sessions:
    names: CookieNames
    customers: list[SampleCustomer] = field(default_factory=list)
    form_seconds: list[float] = field(default_factory=list)
    store_seconds: float = 0.0

    def summary(self) -> str:
        forms = self.form_seconds
        text = f"{len(forms)} through the login form"
        if forms:
            text += f" ({sum(forms) / len(forms):.2f} s each)"
        store = sum(1 for c in self.customers if c.via == "store")
        if store:
            text += f", {store} from Django's session store ({self.store_seconds:.2f} s)"
        return text


def django_setup(env: dict[str, str]) -> None:
    for key in (
        "DJANGO_SETTINGS_MODULE",
        "OPENAR_DATABASE_URL",
        "OPENAR_SECRET_KEY",
        "OPENAR_ENCRYPTION_KEYS",
        "OPENAR_DATA_DIR",
        "OPENAR_ALLOWED_HOSTS",
        "OPENAR_SSL_REDIRECT",
        "OPENAR_SECURE_COOKIES",
        "OPENAR_LOG_LEVEL",
    ):
        os.environ[key] = env[key]
    import django

    django.setup()


def sign_in(args: argparse.Namespace, port: int) -> Sessions:
    """Pick random seeded customers and get each a signed-in session: the first few through
    the login form, the others from Django's session store with the server's settings (the
    same SECRET_KEY and database), holding what a successful login stores."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.base import SessionBase
    from django.db import connections
    from django.utils.module_loading import import_string
    from django_scopes import scopes_disabled

    from openar.billing.models import Invoice
    from openar.tenants.models import Membership

    count = min(args.sessions, args.customers)
    digits = max(7, len(str(args.customers)))
    numbers = [
        f"C{n:0{digits}d}"
        for n in random.Random(args.seed).sample(range(1, args.customers + 1), count)
    ]
    with scopes_disabled():
        # (customer number, customer id, user) of each sampled customer
        people = [
            (m.customer.number, m.customer.pk, m.user)
            for m in Membership.objects.filter(
                organization__slug=ORGANIZATION, role="customer", customer__number__in=numbers
            ).select_related("user", "customer")
            if m.customer is not None
        ]
        by_customer: dict[int, list[tuple[str, bool, Any, Any]]] = {pk: [] for _, pk, _ in people}
        rows = Invoice.objects.filter(customer_id__in=list(by_customer)).order_by("pk")
        for customer_id, number, open_amount, issued, due in rows.values_list(
            "customer_id", "number", "open_amount", "issue_date", "due_date"
        ):
            by_customer[customer_id].append((number, open_amount > 0, issued, due))
    if len(people) != count:
        raise BenchError(
            f"Found {len(people)} of {count} sampled customers; was the seed complete?"
        )
    order = {number: i for i, number in enumerate(numbers)}
    people.sort(key=lambda person: order[person[0]])

    sessions = Sessions(CookieNames(settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME))
    store_class: type[SessionBase] = import_string(settings.SESSION_ENGINE + ".SessionStore")
    backend = settings.AUTHENTICATION_BACKENDS[0]
    started = time.perf_counter()
    for i, (number, customer_id, user) in enumerate(people):
        customer = SampleCustomer(number, user.email, by_customer[customer_id])
        if i < args.logins:
            customer.cookie, seconds = form_login(port, user.email, sessions.names, login_source(i))
            customer.via = "form"
            sessions.form_seconds.append(seconds)
        else:
            store = store_class()
            store[SESSION_KEY] = user._meta.pk.value_to_string(user)
            store[BACKEND_SESSION_KEY] = backend
            store[HASH_SESSION_KEY] = user.get_session_auth_hash()
            store.create()
            customer.cookie = f"{sessions.names.session}={store.session_key}"
            customer.via = "store"
        sessions.customers.append(customer)
    sessions.store_seconds = time.perf_counter() - started - sum(sessions.form_seconds)
    connections.close_all()
    return sessions


def check_page(port: int, path: str, customer: SampleCustomer) -> str | None:
    """None when the page is the customer's own, else what is wrong with it."""
    response = http_get(port, path, customer.cookie)
    if response.status != 200:
        location = response.headers.get("Location", "")
        return f"{path} as {customer.email}: status {response.status} {location}".strip()
    if 'name="login"' in response.body:
        return f"{path} as {customer.email}: the sign-in form instead of the page"
    numbers, all_of_them = customer.expected(path)
    shown = [n for n in numbers if n in response.body]
    if numbers and (len(shown) < len(numbers) if all_of_them else not shown):
        missing = sorted(set(numbers) - set(shown))
        return (
            f"{path} as {customer.email}: invoice numbers missing from the page: "
            f"{', '.join(missing[:5])}"
        )
    return None


def failing(port: int, path: str, customers: list[SampleCustomer]) -> dict[int, str]:
    """check_page for each customer, four at a time: {index: problem}."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = list(pool.map(lambda c: check_page(port, path, c), customers))
    return {i: problem for i, problem in enumerate(problems) if problem}


def verify(port: int, sessions: Sessions, pages: tuple[str, ...]) -> dict[str, str]:
    """Every session must open the first page, and a sample of customers with open invoices
    must see their own invoice numbers on every page. Returns the problems by page.

    Sessions from the session store that the server refuses while form-login sessions work
    (because the login flow comes to store more, say) are replaced by form logins."""
    customers = sessions.customers
    bad = failing(port, pages[0], customers)
    good_forms = [c for i, c in enumerate(customers) if c.via == "form" and i not in bad]
    store_bad = [i for i in bad if customers[i].via == "store"]
    if good_forms and store_bad:
        say(
            f"  {len(store_bad)} sessions from the session store were refused "
            f"({bad[store_bad[0]]}) while form logins work: signing those customers in through "
            "the form instead"
        )
        first = len(sessions.form_seconds)

        def login(n: int) -> float:
            customer = customers[n]
            customer.cookie, seconds = form_login(
                port, customer.email, sessions.names, login_source(first + n)
            )
            customer.via = "form"
            return seconds

        with ThreadPoolExecutor(max_workers=4) as pool:
            sessions.form_seconds += list(pool.map(login, store_bad))
        bad = failing(port, pages[0], customers)
    problems: dict[str, str] = {}
    if bad:
        problems[pages[0]] = next(iter(bad.values()))
    with_open = [c for c in customers if any(i[1] for i in c.invoices)] or customers
    for path in pages:
        if path not in problems and (found := failing(port, path, with_open[:20])):
            problems[path] = next(iter(found.values()))
    return problems


@dataclass
class Result:
    path: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors_status: int
    errors_socket: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk(
    args: argparse.Namespace, port: int, path: str, cookies: Path | None, seconds: int
) -> Result:
    command = [
        "wrk",
        f"-t{min(args.threads, args.connections)}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}{path}",
    ]
    if cookies is not None:
        command += ["--", str(cookies)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    match = re.search(r"^BENCH-RESULT (\{.*\})$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or not match:
        raise BenchError(
            f"wrk failed on {path} (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )
    data = json.loads(match.group(1))
    return Result(
        path=path,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors_status=data["errors_status"],
        errors_socket=sum(
            data[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout")
        ),
    )


def measure(args: argparse.Namespace, port: int, path: str, cookies: Path | None) -> Result:
    if args.warmup > 0:
        wrk(args, port, path, cookies, args.warmup)
    result = wrk(args, port, path, cookies, args.duration)
    say(
        f"  {path:<32} {result.rate:>10,.1f} req/s  p50 {result.p50_ms:7.1f} ms  "
        f"p99 {result.p99_ms:7.1f} ms"
    )
    return result


# --- Report ------------------------------------------------------------------------------------


def table(rows: list[list[str]], right: set[int]) -> Iterator[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        yield "  " + "  ".join(cells).rstrip()
        if n == 0:
            yield "  " + "  ".join("-" * w for w in widths)


def report(
    args: argparse.Namespace, reference: Result, results: list[Result], skipped: dict[str, str]
) -> bool:
    p99_applies = args.connections == P99_TARGET_CONNECTIONS
    rows = [
        [
            "URL",
            "req/s",
            "p50 ms",
            "p99 ms",
            "non-2xx/3xx",
            "socket errors",
            "vs /healthz",
            "targets",
        ]
    ]
    met = True
    for result in [reference, *results]:
        share = result.rate / reference.rate if reference.rate else 0.0
        verdicts = []
        if result is not reference:
            rate_ok = share >= PAGE_SHARE_TARGET
            verdicts.append(f"rate {'met' if rate_ok else 'MISSED'}")
            met &= rate_ok
            if p99_applies:
                p99_ok = result.p99_ms < P99_TARGET_MS
                verdicts.append(f"p99 {'met' if p99_ok else 'MISSED'}")
                met &= p99_ok
        met &= result.errors_status == 0 and result.errors_socket == 0
        rows.append(
            [
                result.path,
                f"{result.rate:,.1f}",
                f"{result.p50_ms:.1f}",
                f"{result.p99_ms:.1f}",
                f"{result.errors_status:,}",
                f"{result.errors_socket:,}",
                f"{share:.1%}",
                ", ".join(verdicts) or "reference",
            ]
        )
    for path, reason in skipped.items():
        rows.append([path, "-", "-", "-", "-", "-", "-", "not measured"])
        met = False
        say(f"  {path}: not measured: {reason}")
    say()
    for line in table(rows, right={1, 2, 3, 4, 5, 6}):
        say(line)
    say()
    say(
        f"Targets: every page at least {PAGE_SHARE_TARGET:.0%} of the /healthz rate on the same "
        "server; "
        f"p99 under {P99_TARGET_MS:.0f} ms at {P99_TARGET_CONNECTIONS} connections"
        + ("" if p99_applies else f" (not judged: this run used {args.connections})")
        + "; no errors."
    )
    say("All targets met." if met else "Some targets were missed.")
    return met


# --- Main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        say("wrk is not installed. Install it, then run this again:\n    apt-get install wrk")
        return 2
    url = os.environ.get("OPENAR_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    workers = args.workers or 2 * (os.cpu_count() or 1)
    data_dir = Path(tempfile.mkdtemp(prefix="openar-bench-"))
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="openar.settings.production",
        OPENAR_DATABASE_URL=url,
        OPENAR_SECRET_KEY=secrets.token_urlsafe(50),
        OPENAR_ENCRYPTION_KEYS=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        OPENAR_SSL_REDIRECT="false",
        OPENAR_SECURE_COOKIES="false",
        OPENAR_ALLOWED_HOSTS="127.0.0.1",
        OPENAR_LOG_LEVEL="WARNING",
        OPENAR_DATA_DIR=str(data_dir),
    )
    server: Server | None = None
    created = False
    try:
        name = database_name(url)
        say(f"Database {name}: dropping and creating it, migrating")
        recreate_database(url)
        created = True
        run(openar("manage", "migrate", "--no-input", "-v0"), env, "openar manage migrate")

        invoices = args.customers * args.invoices_per_customer
        say(
            f"Seeding {args.customers:,} customers x {args.invoices_per_customer} invoices "
            f"({invoices:,})"
        )
        output, seconds = run(
            openar(
                "seed",
                "--customers",
                str(args.customers),
                "--invoices-per-customer",
                str(args.invoices_per_customer),
                "--seed",
                str(args.seed),
                "--organization",
                ORGANIZATION,
            ),
            env,
            "openar seed",
        )
        say(f"  {output}")
        figures = re.search(
            r"([\d,]+) rows in ([\d.]+) s.*?: ([\d,]+) rows/s, ([\d,]+) invoices/s", output
        )
        if figures:
            say(
                f"  seed: {figures.group(3)} rows/s, {figures.group(4)} invoices/s "
                f"({figures.group(1)} rows in {figures.group(2)} s; {seconds:.1f} s with process "
                "start)"
            )
        say(f"  VACUUM (ANALYZE): {vacuum_analyze(url):.1f} s")
        if not args.no_ledger_check:
            output, seconds = run(openar("check", "ledger"), env, "openar check ledger")
            say(f"  {output} ({seconds:.1f} s)")

        server = start_server(env, workers, data_dir / "server.log")
        say(
            f"Serving on 127.0.0.1:{server.port}: gunicorn, {workers} sync workers, "
            "production settings"
        )
        django_setup(env)
        sessions = sign_in(args, server.port)
        say(f"Signed in {len(sessions.customers)} random customers: {sessions.summary()}")
        problems = verify(server.port, sessions, PAGES)
        if any(c.via == "form" for c in sessions.customers[args.logins :]):
            say(f"  now {sessions.summary()}")
        for path in PAGES:
            say(
                f"  check {path}: "
                + (problems.get(path) or "200, the customer's own invoice numbers")
            )
        cookies = data_dir / "cookies.txt"
        cookies.write_text("".join(c.cookie + "\n" for c in sessions.customers))

        say(
            f"wrk: {args.connections} connections, {args.threads} threads, {args.duration} s "
            "per URL "
            f"after {args.warmup} s of warm-up"
        )
        reference = measure(args, server.port, HEALTHZ, None)
        results = [
            measure(args, server.port, path, cookies) for path in PAGES if path not in problems
        ]
        for result in results[:1]:  # the sessions still work after the load
            if found := failing(server.port, result.path, sessions.customers[:10]):
                raise BenchError(f"After the measurements: {next(iter(found.values()))}")
        met = report(args, reference, results, problems)
        if problems:
            return 2
        return 0 if met else 1
    except BenchError as exc:
        say(f"\nbench: {exc}")
        return 2
    except KeyboardInterrupt:
        say("\nbench: interrupted")
        return 2
    finally:
        if server is not None:
            server.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if created and not args.keep:
            drop_database(url)
            say(f"Dropped database {database_name(url)}.")
        elif created:
            say(f"Kept database {database_name(url)} ({url}).")
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
