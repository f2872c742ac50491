"""The ``openar`` command: demo, serve, seed, check, and Django's management commands."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence


def _settings(default: str) -> None:
    if "DJANGO_SETTINGS_MODULE" not in os.environ:
        os.environ["DJANGO_SETTINGS_MODULE"] = default


def _default_settings() -> str:
    """Production settings once a secret key is configured; the demo's otherwise."""
    return "openar.settings.production" if os.environ.get("OPENAR_SECRET_KEY") else "openar.settings.demo"


def _setup(default: str | None = None) -> None:
    _settings(default or _default_settings())
    import django

    django.setup()


def cmd_demo(args: argparse.Namespace) -> int:
    _setup("openar.settings.demo")
    from django.conf import settings
    from django.core.management import call_command

    from openar.demo import demo_links, demo_password, demo_seed_if_empty

    call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
    created = demo_seed_if_empty()
    base = f"http://127.0.0.1:{args.port}"
    print("OpenAR demo" + (" (demo data created)" if created else ""), flush=True)
    print(f"Data folder: {settings.DATA_DIR} (delete it to start over)")
    print("Sign in as:")
    for persona, email, url in demo_links(base):
        print(f"  {persona:<22} {email:<36} {url}")
    print(
        f"Or sign in at {base}/accounts/login/ with one of these emails and the password "
        f"{demo_password()!r}. Outgoing mail lands in the outbox folder of the data folder.",
        flush=True,
    )
    if args.no_serve:
        return 0
    # The worker sends reminders and messages (to the desk's outbox) beside the web server.
    worker = subprocess.Popen(
        [sys.executable, "-m", "openar", "worker", "--tick", "15"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "openar.settings.demo"},
    )
    print(
        f"Worker started (process {worker.pid}): reminders and messages go to {base}/desk/outbox/", flush=True
    )
    try:
        call_command("runserver", f"127.0.0.1:{args.port}", use_reloader=False, use_threading=True)
    finally:
        worker.terminate()
        worker.wait(timeout=10)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    _settings("openar.settings.production")
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "openar.wsgi:application",
        "--bind",
        args.bind,
        "--workers",
        str(args.workers),
        "--worker-class",
        "sync",
        "--access-logfile",
        "-" if args.access_log else "/dev/null",
        "--forwarded-allow-ips",
        args.forwarded_allow_ips,
    ]
    os.execv(sys.executable, argv)  # noqa: S606  (replaces this process with gunicorn)


def cmd_worker(args: argparse.Namespace) -> int:
    _setup()
    from django.core.management import call_command

    options: dict[str, object] = {"tick": args.tick, "once": args.once}
    if args.worker_id:
        options["worker_id"] = args.worker_id
    call_command("worker", **options)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    _setup()
    from openar.seed import seed

    report = seed(
        customers=args.customers,
        invoices_per_customer=args.invoices_per_customer,
        seed=args.seed,
        organization_slug=args.organization,
    )
    print(report)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    _setup()
    from openar.billing.ledger import ledger_check

    mismatches = ledger_check()
    for mismatch in mismatches:
        print(mismatch)
    if mismatches:
        print(f"ledger: {len(mismatches)} mismatch(es)", file=sys.stderr)
        return 1
    print("ledger: every balance matches its invoices, credit notes and allocations")
    return 0


def cmd_manage(argv: Sequence[str]) -> int:
    _settings(_default_settings())
    from django.core.management import execute_from_command_line

    execute_from_command_line(["openar manage", *argv])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openar", description="OpenAR accounts-receivable portal")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="migrate, seed demo data if empty, serve on 127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--no-serve", action="store_true", help="prepare and print links, then exit")
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="production server (gunicorn)")
    serve.add_argument("--bind", default=os.environ.get("OPENAR_BIND", "127.0.0.1:8000"))
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("OPENAR_WORKERS", "0")) or (2 * (os.cpu_count() or 1)),
    )
    serve.add_argument("--access-log", action="store_true")
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run the task queue and the periodic jobs (reminders, sending)")
    worker.add_argument("--tick", type=float, default=30.0, help="seconds between checks for periodic jobs")
    worker.add_argument("--once", action="store_true", help="queue what is due, run the queue, exit")
    worker.add_argument("--worker-id", default="", help="unique per worker (default: random)")
    worker.set_defaults(func=cmd_worker)

    seed = sub.add_parser("seed", help="fast deterministic bulk data (benchmarks)")
    seed.add_argument("--customers", type=int, required=True)
    seed.add_argument("--invoices-per-customer", type=int, required=True)
    seed.add_argument("--seed", type=int, default=1)
    seed.add_argument("--organization", default="bench", help="slug of the organization to fill")
    seed.set_defaults(func=cmd_seed)

    check = sub.add_parser("check", help="consistency checks")
    check.add_argument("what", choices=["ledger"])
    check.set_defaults(func=cmd_check)

    sub.add_parser("manage", help="Django management commands: openar manage <command> ...")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "manage":
        return cmd_manage(argv[1:])
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
