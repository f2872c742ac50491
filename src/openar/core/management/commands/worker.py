"""``openar worker``: runs the task queue and the periodic jobs.

The queue is django-tasks-db's worker (tasks are rows in the database; on PostgreSQL a task
is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``, so workers on many machines share
it). A scheduler thread wakes every ``--tick`` seconds and queues the periodic jobs whose
slot has come (``openar.core.periodic``); several workers may run it, each slot is claimed
once. Another thread applies the payment providers' stored events every
``--events-interval`` seconds, in batches (``openar.payments.events.events_drain``; workers
share them, each batch claimed with ``SKIP LOCKED``). ``--once`` queues what is due, applies
the stored events, runs the queue until it is empty, and exits (cron, tests).
"""

from __future__ import annotations

import logging
import threading
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection
from django.utils.crypto import get_random_string
from django_tasks import DEFAULT_TASK_BACKEND_ALIAS
from django_tasks_db.management.commands.db_worker import Worker

from openar.core.periodic import schedule_due
from openar.payments.events import events_drain

logger = logging.getLogger("openar.worker")


class Command(BaseCommand):
    help = "Run the task queue and the periodic jobs (reminders, sending, sweeps)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--tick", type=float, default=30.0, help="Seconds between scheduler checks.")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="Seconds between queue polls when idle."
        )
        parser.add_argument("--once", action="store_true", help="Queue what is due, run the queue, exit.")
        parser.add_argument(
            "--no-schedule", action="store_true", help="Run the queue only (no periodic jobs)."
        )
        parser.add_argument("--worker-id", default="", help="Unique per worker (default: random).")
        parser.add_argument(
            "--events-interval",
            type=float,
            default=1.0,
            help="Seconds between applying the payment events that webhooks stored (0: never).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        worker_id = options["worker_id"] or get_random_string(20)
        if options["once"]:
            if not options["no_schedule"]:
                queued = schedule_due(worker=worker_id)
                self.stdout.write(f"queued: {', '.join(queued) or 'nothing due'}")
            if options["events_interval"] > 0:
                self.stdout.write(f"payment events applied: {events_drain()}")
            self._worker(worker_id, options["interval"], batch=True).run()
            return
        stop = threading.Event()
        if options["events_interval"] > 0:
            threading.Thread(
                target=self._every,
                args=(stop, options["events_interval"], events_drain, "applying payment events"),
                name="openar-payment-events",
                daemon=True,
            ).start()
        if not options["no_schedule"]:
            thread = threading.Thread(
                target=self._schedule,
                args=(stop, options["tick"], worker_id),
                name="openar-scheduler",
                daemon=True,
            )
            thread.start()
        self.stdout.write(f"openar worker {worker_id}: running the queue and the periodic jobs")
        worker = self._worker(worker_id, options["interval"], batch=False)
        worker.configure_signals()
        try:
            worker.run()
        finally:
            stop.set()

    @staticmethod
    def _worker(worker_id: str, interval: float, *, batch: bool) -> Worker:
        return Worker(
            queue_names=["*"],
            interval=interval,
            batch=batch,
            backend_name=DEFAULT_TASK_BACKEND_ALIAS,
            startup_delay=not batch,
            max_tasks=None,
            worker_id=worker_id,
            excluded_queue_names=[],
        )

    @staticmethod
    def _schedule(stop: threading.Event, tick: float, worker_id: str) -> None:
        Command._every(stop, tick, lambda: schedule_due(worker=worker_id), "scheduling periodic jobs")

    @staticmethod
    def _every(stop: threading.Event, seconds: float, work: Callable[[], object], what: str) -> None:
        """Run ``work`` every ``seconds`` until ``stop`` is set, on this thread's own database
        connection; an error is logged and the next round tries again."""
        while not stop.is_set():
            try:
                close_old_connections()
                work()
            except Exception:  # a database hiccup must not stop the thread
                logger.exception("%s failed", what)
            finally:
                connection.close()
            stop.wait(seconds)
