"""Periodic jobs, started by ``openar worker``.

Each job has an interval; time is cut into slots of that length (in UTC, from the epoch).
A worker that finds a slot due claims it by inserting a ``PeriodicRun`` row (unique on job
and slot) and queues the job as a task; with several workers, on one machine or many, the
insert lets exactly one of them do it. A slot missed while every worker was down is not
replayed one by one: the next slot runs, and each job is written to catch up by itself
(the reminder engine plans what is due *now*, including what fell due meanwhile).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks import task

from openar.core.models import PeriodicRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    every: datetime.timedelta
    function: str  # dotted path of a callable taking ``now``


JOBS: tuple[Job, ...] = (
    Job("dispatch", datetime.timedelta(minutes=1), "openar.notifications.services.dispatch_due"),
    Job(
        "sweep-interrupted", datetime.timedelta(minutes=5), "openar.notifications.services.sweep_interrupted"
    ),
    Job("reminders", datetime.timedelta(minutes=15), "openar.reminders.engine.run_all"),
    Job("sandbox-events", datetime.timedelta(minutes=1), "openar.payments.sandbox.deliver_due"),
    # Each worker drains stored provider events every second; this catches what a worker
    # run with --once (or none at all for a while) left.
    Job("payment-events", datetime.timedelta(minutes=1), "openar.payments.events.events_drain"),
    Job("payment-events-retry", datetime.timedelta(hours=1), "openar.payments.events.events_retry"),
    Job("payments-expire", datetime.timedelta(hours=1), "openar.payments.online.expire_abandoned"),
    Job("autopay", datetime.timedelta(hours=1), "openar.payments.autopay.charge_due"),
    Job("promises", datetime.timedelta(hours=1), "openar.commitments.services.promises_run"),
    Job("installments", datetime.timedelta(hours=1), "openar.commitments.services.installments_run"),
    Job("contracts-expire", datetime.timedelta(hours=1), "openar.contracts.services.contracts_expire_all"),
    Job(
        "deactivate-inactive",
        datetime.timedelta(days=1),
        "openar.identity.services.deactivate_inactive_users",
    ),
    Job("prune-task-results", datetime.timedelta(days=1), "openar.core.periodic.prune_task_results"),
)
JOBS_BY_NAME = {job.name: job for job in JOBS}


def slot_of(job: Job, now: datetime.datetime) -> datetime.datetime:
    seconds = int(job.every.total_seconds())
    stamp = int(now.timestamp()) // seconds * seconds
    return datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC)


def schedule_due(now: datetime.datetime | None = None, *, worker: str = "") -> list[str]:
    """Claim and queue every job whose current slot nobody has claimed. Returns the names
    of the jobs this call queued."""
    now = now or timezone.now()
    queued = []
    for job in JOBS:
        slot = slot_of(job, now)
        try:
            with transaction.atomic():
                # The claim and the task in one transaction: a slot is never claimed and lost.
                PeriodicRun.objects.create(job=job.name, slot=slot, claimed_by=worker[:100])
                run_job.enqueue(job.name, now.isoformat())
        except IntegrityError:
            continue  # another worker has this slot
        queued.append(job.name)
    return queued


@task()
def run_job(name: str, now: str) -> str:
    """Run one periodic job (queued by ``schedule_due``)."""
    job = JOBS_BY_NAME[name]
    function: Callable[[datetime.datetime], object] = import_string(job.function)
    result = function(datetime.datetime.fromisoformat(now))
    logger.info("periodic job done", extra={"job": name, "result": str(result)[:200]})
    return str(result)[:1000]


def prune_task_results(
    now: datetime.datetime, *, keep: datetime.timedelta = datetime.timedelta(days=14)
) -> int:
    """Finished task results and periodic slots older than ``keep`` (failed ones included:
    the desk shows recent failures; the Message rows keep the lasting record)."""
    from django_tasks_db.models import DBTaskResult

    cutoff = now - keep
    deleted, _ = DBTaskResult.objects.finished().filter(finished_at__lt=cutoff).delete()
    PeriodicRun.objects.filter(slot__lt=cutoff).delete()
    return deleted
