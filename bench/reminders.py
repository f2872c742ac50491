"""OpenAR reminder benchmark: seed a fresh PostgreSQL database, time the reminder engine's
planning pass over every customer, then render reminders and hand them to a real SMTP
server on loopback, and print the figures next to the targets. See bench/README.md.

    .venv/bin/python bench/reminders.py [--customers 100000 --invoices-per-customer 10
                                         --render 3000 --keep]

Exit status: 0 when every step worked and every target is met, 1 when a target is missed,
2 when a step failed.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from run import (  # noqa: E402
    BenchError,
    database_name,
    drop_database,
    free_port,
    recreate_database,
    say,
    vacuum_analyze,
)

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/openar_bench"
PLAN_TARGET_SECONDS = 10.0
SEND_TARGET_PER_SECOND = 500.0
ORGANIZATION = "bench"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark reminder planning, rendering and sending.")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--invoices-per-customer", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data")
    parser.add_argument("--render", type=int, default=5000, help="reminders to render and send")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes (0: render and send in this process)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--profile", help="write a cProfile of rendering and sending to this file")
    return parser.parse_args(argv)


SMTP_SERVER = """
import sys, threading
from aiosmtpd.controller import Controller

class Counting:
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
        return "250 OK"

handler = Counting()
controller = Controller(handler, hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
print(handler.count, flush=True)
"""


class SMTPServer:
    """A real SMTP server (aiosmtpd) on loopback, in its own process (so that it does not
    share this one's CPU and interpreter lock), counting what it receives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-c", SMTP_SERVER, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None  # noqa: S101
        if self.process.stdout.readline().strip() != "ready":
            raise BenchError("the SMTP server (aiosmtpd) did not start")

    def stop(self) -> int:
        """Stop it; how many messages it received."""
        out, _ = self.process.communicate("", timeout=30)
        return int(out.strip() or 0)


def setup_django(url: str, data_dir: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="openar.settings.production",
        OPENAR_DATABASE_URL=url,
        OPENAR_SECRET_KEY=secrets.token_urlsafe(50),
        OPENAR_ENCRYPTION_KEYS="",
        OPENAR_ALLOWED_HOSTS="127.0.0.1",
        OPENAR_LOG_LEVEL="WARNING",
        OPENAR_DATA_DIR=data_dir,
        OPENAR_REPLY_DOMAIN="reply.bench.invalid",
    )
    import base64

    os.environ["OPENAR_ENCRYPTION_KEYS"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    import django

    django.setup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = os.environ.get("OPENAR_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    try:
        database_name(url)
        say(f"database {url} (dropped and created again)")
        recreate_database(url)
        data_dir = tempfile.mkdtemp(prefix="openar-bench-")
        setup_django(url, data_dir)
        return bench(args, url)
    except BenchError as exc:
        say(f"FAILED: {exc}")
        return 2
    finally:
        if not args.keep:
            try:
                drop_database(url)
            except Exception as exc:  # the database may not exist yet
                say(f"(could not drop the database: {exc})")


def bench(args: argparse.Namespace, url: str) -> int:
    import time_machine
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django_scopes import scope

    from openar.notifications.models import Message
    from openar.notifications.services import SEND_BATCH, messages_send
    from openar.reminders.engine import BATCH, make, make_reminders, plan
    from openar.reminders.models import DunningStep
    from openar.seed import seed
    from openar.tenants.models import Organization

    call_command("migrate", interactive=False, verbosity=0)
    started = time.perf_counter()
    report = seed(
        customers=args.customers,
        invoices_per_customer=args.invoices_per_customer,
        seed=args.seed,
        organization_slug=ORGANIZATION,
    )
    say(f"seeded in {time.perf_counter() - started:.1f} s: {report}")
    say(f"VACUUM (ANALYZE) {vacuum_analyze(url):.1f} s")
    connection.close()

    organization = Organization.objects.get(slug=ORGANIZATION)
    with scope(organization=organization):
        # Email reminders only, without the statement PDF: what is measured is rendering the
        # templates and handing the messages to SMTP (letters and statements are PDFs drawn
        # by ReportLab, measured elsewhere).
        DunningStep.objects.exclude(channel="email").delete()
        DunningStep.objects.update(attach_statement=False)
    # Mid-morning where the organization is: outside the quiet hours, as the worker's run is.
    now = datetime.datetime.combine(organization.today(), datetime.time(10), tzinfo=organization.tz)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        with scope(organization=organization):
            planned = plan(organization, now)
        timings.append(time.perf_counter() - started)
    plan_seconds = min(timings)
    say(
        f"planning pass: {len(planned):,} reminders due for {args.customers:,} customers, "
        f"best of 3: {plan_seconds:.2f} s (runs: {', '.join(f'{t:.2f}' for t in timings)})"
    )

    server = SMTPServer()
    received = 0
    try:
        os.environ.update(
            OPENAR_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            OPENAR_EMAIL_HOST="127.0.0.1",
            OPENAR_EMAIL_PORT=str(server.port),
            OPENAR_EMAIL_CHANNEL="smtp",
        )
        settings.EMAIL_BACKEND = os.environ["OPENAR_EMAIL_BACKEND"]
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.OPENAR_CHANNELS = {**settings.OPENAR_CHANNELS, "email": "smtp"}
        with scope(organization=organization):
            chosen = plan(organization, now)[: args.render]
        profiler = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        if args.workers:
            # What `openar worker` does: the plan queued as tasks of BATCH reminders, which
            # create their messages and queue their sending, all run by the worker processes.
            for start in range(0, len(chosen), BATCH):
                make_reminders.enqueue(
                    organization.pk,
                    [
                        [p.customer_id, p.step.pk, p.cycle, p.anchor_due.isoformat()]
                        for p in chosen[start : start + BATCH]
                    ],
                    now.isoformat(),
                )
            connection.close()
            workers = [
                subprocess.Popen(
                    [sys.executable, "-m", "openar", "manage", "worker", "--once", "--no-schedule"],
                    stdout=subprocess.DEVNULL,
                )
                for _ in range(args.workers)
            ]
            codes = [worker.wait(timeout=3600) for worker in workers]
            if any(codes):
                raise BenchError(f"a worker failed (exit codes {codes})")
            created_at = finished = time.perf_counter()
        else:
            if profiler:
                profiler.enable()
            with time_machine.travel(now, tick=True):
                make(organization, chosen, now)
            created_at = time.perf_counter()
            with scope(organization=organization):
                ids = list(Message.objects.filter(state=Message.State.READY).values_list("pk", flat=True))
            with time_machine.travel(now, tick=True):
                for start in range(0, len(ids), SEND_BATCH):  # one send task's batch at a time
                    messages_send(ids[start : start + SEND_BATCH])
            finished = time.perf_counter()
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
    finally:
        received = server.stop()
    with scope(organization=organization):
        states = list(Message.objects.values_list("state", flat=True))
        emails = Message.objects.filter(channel="email").count()
    sent = states.count("sent") + states.count("delivered")
    total_per_second = sent / (finished - started) if sent else 0.0
    how = f"{args.workers} worker processes" if args.workers else "this process"
    detail = (
        f"created {len(states):,} in {created_at - started:.2f} s, then sent in {finished - created_at:.2f} s"
        if not args.workers
        else f"{finished - started:.2f} s from queued to sent"
    )
    say(
        f"{how}: {len(chosen):,} planned reminders, {sent:,} sent ({len(states) - sent} not); {detail}; "
        f"the SMTP server received {received:,}"
    )
    say(f"rendered and handed to SMTP: {total_per_second:,.0f} messages/s")
    say()
    plan_ok = plan_seconds < PLAN_TARGET_SECONDS
    send_ok = total_per_second > SEND_TARGET_PER_SECOND
    say(
        f"{'met ' if plan_ok else 'MISSED'} planning pass {plan_seconds:.2f} s "
        f"(target < {PLAN_TARGET_SECONDS:.0f} s)"
    )
    say(
        f"{'met ' if send_ok else 'MISSED'} rendered and sent {total_per_second:,.0f}/s "
        f"(target > {SEND_TARGET_PER_SECOND:.0f}/s)"
    )
    if received != emails:
        raise BenchError(f"the SMTP server received {received} messages, but {emails} were emails")
    return 0 if plan_ok and send_ok else 1


if __name__ == "__main__":
    sys.exit(main())
