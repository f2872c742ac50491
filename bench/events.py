"""OpenAR payment-event benchmark: process provider events through the webhook path, on
SQLite and on PostgreSQL, and print events/s next to the target. See bench/README.md.

    .venv/bin/python bench/events.py [--events 10000] [--database sqlite|postgresql|both]
                                     [--profile FILE]

Each event is what a provider's webhook brings: a signed body (the sandbox provider's
signature, verified like Stripe's). Half the events put a bank payment in flight
("processing"), half settle it ("succeeded": allocations to its invoices, the ledger, the
timeline, the audit log, the receipt queued). Every event is sent on its own, as providers
do, through production's path: the webhook verifies and stores it
(``OPENAR_PAYMENT_EVENTS_QUEUED``), then the worker's drain applies what is stored in
batches (``openar.payments.events.events_drain``). Events/s is all the events over the time
of both, one after the other (a worker drains while deliveries arrive; here it only starts
once the last is stored). It also prints each part's own rate and the SQL statements per
event (the transaction's BEGIN and COMMIT not counted).

Exit status: 0 when every target is met, 1 when one is missed, 2 when a step failed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from run import BenchError, database_name, drop_database, recreate_database, say  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/openar_bench"
TARGET = 500.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark processing payment provider events.")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--profile",
        help="write a cProfile of sending the events to this file (with --database both: FILE.sqlite, "
        "FILE.postgresql)",
    )
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def inner(events: int, profile: str = "") -> float:
    """In a process whose settings point at the database to measure: prepare the payments,
    send the events, return events/s."""
    import cProfile
    import datetime
    import uuid
    from decimal import Decimal

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django_scopes import scope

    from openar.billing.models import Invoice
    from openar.billing.services import LineInput, invoice_issue
    from openar.customers.models import Customer
    from openar.payments.events import events_drain
    from openar.payments.models import Payment, PaymentTarget
    from openar.payments.providers import base
    from openar.payments.providers.sandbox import SIGNATURE_HEADER, event_body, sign
    from openar.payments.webhooks import receive
    from openar.tenants.models import Creditor, Organization

    call_command("migrate", interactive=False, verbosity=0)
    organization = Organization.objects.create(name="Bench Events Co.", slug="bench-events")
    payments_wanted = events // 2
    with scope(organization=organization):
        creditor = Creditor.objects.create(
            organization=organization, name="Bench Events Co.", code="self", is_self=True
        )
        customers = Customer.objects.bulk_create(
            Customer(organization=organization, creditor=creditor, number=f"E{n:06d}", name=f"Customer {n}")
            for n in range(max(1, payments_wanted // 10))
        )
        today = organization.today()
        invoices: list[Invoice] = []
        for n in range(payments_wanted):
            customer = customers[n % len(customers)]
            invoices.append(
                invoice_issue(
                    customer=customer,
                    number=f"INV-E{n:07d}",
                    issue_date=today - datetime.timedelta(days=40),
                    due_date=today - datetime.timedelta(days=10),
                    lines=[LineInput("Goods", Decimal(1), Decimal("120.00"))],
                )
            )
        payments = Payment.objects.bulk_create(
            Payment(
                organization=organization,
                creditor=creditor,
                customer_id=invoice.customer_id,
                amount=Decimal("120.00"),
                currency=invoice.currency,
                method="ach",
                state=Payment.State.PENDING,
                provider="sandbox",
                provider_payment_id=f"sbx_bench_{n:08d}",
                received_at=datetime.datetime.now(datetime.UTC),
            )
            for n, invoice in enumerate(invoices)
        )
        PaymentTarget.objects.bulk_create(
            PaymentTarget(
                organization=organization, payment=payment, invoice=invoice, amount=Decimal("120.00")
            )
            for payment, invoice in zip(payments, invoices, strict=True)
        )
    bodies = []
    now = datetime.datetime.now(datetime.UTC).isoformat()
    for payment in payments:
        for kind in (base.PAYMENT_PROCESSING, base.PAYMENT_SUCCEEDED):
            bodies.append(
                event_body(
                    [
                        {
                            "id": f"sbe_{uuid.uuid4().hex}",
                            "type": kind,
                            "payment": payment.provider_payment_id,
                            "at": now,
                        }
                    ]
                )
            )
    statements = 0

    def count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal statements
        statements += not sql.startswith("BEGIN")  # SQLite's; psycopg sends PostgreSQL's itself
        return execute(sql, params, many, context)

    profiler = cProfile.Profile() if profile else None
    outcomes: dict[str, int] = {}
    with connection.execute_wrapper(count):
        if profiler:
            profiler.enable()
        started = time.perf_counter()
        for body in bodies:
            for outcome in receive("sandbox", organization, body, {SIGNATURE_HEADER: sign(body)}):
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        stored = time.perf_counter()
        applied = events_drain()
        seconds = time.perf_counter() - started
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
    store_seconds, apply_seconds = stored - started, seconds - (stored - started)
    print(
        f"stored {len(bodies):,} in {store_seconds:.2f} s ({len(bodies) / store_seconds:,.0f}/s); "
        f"applied {applied:,} in {apply_seconds:.2f} s ({applied / apply_seconds:,.0f}/s)",
        flush=True,
    )
    from openar.billing.ledger import ledger_check

    if ledger_check():
        raise BenchError("the ledger does not balance after the events")
    from django.db.models import Count

    from openar.payments.models import ProviderEvent

    with scope(organization=organization):
        settled = Payment.objects.filter(state=Payment.State.SUCCEEDED).count()
    applied_outcomes = dict(
        ProviderEvent.objects.exclude(processed_at=None).values_list("outcome").annotate(n=Count("pk"))
    )
    if settled != payments_wanted or sum(applied_outcomes.values()) != len(bodies):
        raise BenchError(f"not every event was applied: {applied_outcomes}, {settled} payments settled")
    print(
        f"webhook answers {outcomes}; applied {applied_outcomes}; {settled:,} payments settled; "
        f"{statements / len(bodies):.1f} SQL statements per event",
        flush=True,
    )
    rate = len(bodies) / seconds
    print(f"RESULT {len(bodies)} {seconds:.3f} {rate:.1f}", flush=True)
    return rate


def run_on(label: str, env: dict[str, str], events: int, profile: str = "") -> float:
    started = time.perf_counter()
    command = [sys.executable, __file__, "--inner", "--events", str(events)]
    if profile:
        command += ["--profile", profile]
    result = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"{label} failed:\n{result.stdout[-2000:]}{result.stderr[-4000:]}")
    lines = result.stdout.strip().splitlines()
    count, seconds, rate = lines[-1].split()[1:]
    say(f"{label}: {lines[-3]}")
    say(f"{label}: {lines[-2]}")
    say(
        f"{label}: {int(count):,} events in {float(seconds):.2f} s = {float(rate):,.0f} events/s "
        f"(whole run with setup {time.perf_counter() - started:.0f} s)"
    )
    return float(rate)


def profile_for(args: argparse.Namespace, database: str) -> str:
    if not args.profile:
        return ""
    path = Path(f"{args.profile}.{database}" if args.database == "both" else args.profile)
    return str(path.resolve())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.inner:
        inner(args.events, args.profile or "")
        return 0
    base_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "openar.settings.production",
        "OPENAR_SECRET_KEY": secrets.token_urlsafe(50),
        "OPENAR_ENCRYPTION_KEYS": "",
        "OPENAR_ALLOWED_HOSTS": "127.0.0.1",
        "OPENAR_LOG_LEVEL": "WARNING",
    }
    import base64

    base_env["OPENAR_ENCRYPTION_KEYS"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    rates: dict[str, float] = {}
    try:
        if args.database in ("sqlite", "both"):
            folder = tempfile.mkdtemp(prefix="openar-bench-")
            env = {
                **base_env,
                "OPENAR_DATA_DIR": folder,
                "OPENAR_DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3",
            }
            rates["SQLite"] = run_on("SQLite", env, args.events, profile_for(args, "sqlite"))
        if args.database in ("postgresql", "both"):
            url = os.environ.get("OPENAR_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
            database_name(url)
            recreate_database(url)
            try:
                env = {
                    **base_env,
                    "OPENAR_DATA_DIR": tempfile.mkdtemp(prefix="openar-bench-"),
                    "OPENAR_DATABASE_URL": url,
                }
                rates["PostgreSQL"] = run_on("PostgreSQL", env, args.events, profile_for(args, "postgresql"))
            finally:
                drop_database(url)
    except BenchError as exc:
        say(f"FAILED: {exc}")
        return 2
    say()
    for label, rate in rates.items():
        say(
            f"{'met ' if rate >= TARGET else 'MISSED'} {label}: {rate:,.0f} events/s "
            f"(target at least {TARGET:.0f}/s)"
        )
    return 0 if all(rate >= TARGET for rate in rates.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
