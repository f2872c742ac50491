"""Provider events: each stored once, then applied to its payment once.

Two ways in, one way of applying:

- ``events_ingest`` stores a delivery's events and applies them at once, each in its own
  transaction with its row (the sandbox and the tests, a capture on the customer's return,
  an autopay charge's answer, and the webhook when ``OPENAR_PAYMENT_EVENTS_QUEUED`` is
  off): the caller gets each event's outcome.
- ``events_store`` only stores them (the webhook when events are queued, production's
  default): the provider gets its answer at once, and ``events_drain`` (run by every
  ``openar worker`` each second, and by the ``payment-events`` periodic job) applies what
  is stored in batches of up to ``BATCH`` events, one transaction each.

Either way ``_apply_rows`` applies them: it finds and locks every payment the events name
in one query, then applies each event in order (``online.event_apply``). Putting a bank
payment in flight and settling one (the events nearly all deliveries bring) write through a
``Writes`` that stores the whole batch's allocations, invoice figures, payment states,
timeline entries, audit events and receipts a statement per kind; any other event (a
return, a refund, a failure, a payment made by autopay) is applied alone with the batch
written before and after it. A batch that fails is rolled back and its events are applied
one by one, so that one event that cannot be applied never holds the others back: it keeps
the error as its outcome and is tried again by the hourly ``payment-events-retry`` job, at
most ``MAX_ATTEMPTS`` times.

An event that comes before the one it follows (a return before the payment's success)
waits, unprocessed, and is applied once its payment has settled (``waiting_apply``).
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from openar.core.bulk import rows_update
from openar.payments import online
from openar.payments.models import Payment, ProviderEvent
from openar.payments.providers import base
from openar.payments.writes import Writes
from openar.tenants.models import Organization

logger = logging.getLogger(__name__)

BATCH = 500
# A payment's own fields (not its relations), read back after an event applied alone.
REFRESHED = [
    field.attname
    for field in Payment._meta.concrete_fields
    if not field.is_relation and not field.primary_key
]
MAX_ATTEMPTS = 5
ERROR = "error"  # the outcome's first word when applying the event raised


def _fields(provider_name: str, event: base.Event, organization: Organization) -> dict[str, Any]:
    return {
        "organization": organization,
        "provider": provider_name,
        "event_id": event.event_id,
        "type": event.type,
        "provider_payment_id": event.provider_payment_id,
        "payload": {
            **dict(event.payload),
            "amount": str(event.amount) if event.amount is not None else None,
            "currency": event.currency,
            "message": event.message,
            "refund_id": event.refund_id,
            "occurred_at": event.occurred_at.isoformat(),
        },
    }


def events_store(provider_name: str, events: list[base.Event], *, organization: Organization) -> list[str]:
    """Store each event once, for ``events_drain`` to apply; returns "queued" for each one
    stored, "duplicate" for one stored before. ``organization`` is the one whose
    credentials verified the events: they can only ever touch that organization's payments."""
    outcomes = []
    for event in events:
        row = ProviderEvent(**_fields(provider_name, event, organization))
        try:
            if transaction.get_connection().in_atomic_block:
                with transaction.atomic():  # a savepoint: a duplicate leaves the caller's intact
                    row.save(force_insert=True)
            else:
                row.save(force_insert=True)  # one statement, committed on its own
        except IntegrityError:
            with scopes_disabled():
                stored = ProviderEvent.objects.filter(provider=provider_name, event_id=event.event_id)
                if not stored.exists():
                    raise
                # Delivered again: one that could not be applied is put back in line.
                stored.filter(processed_at__isnull=True, outcome__startswith=f"{ERROR}:").update(outcome="")
            outcomes.append("duplicate")
        else:
            outcomes.append("queued")
    return outcomes


def events_ingest(provider_name: str, events: list[base.Event], *, organization: Organization) -> list[str]:
    """Store each event once, then apply it. Returns an outcome per event ("duplicate" for
    one stored and applied before: it changes nothing). ``organization`` as for
    ``events_store``.

    One transaction per event: the row is inserted first, then applied in the same
    transaction under the payment's lock, and both commit together. A doubled event, even
    one delivered at the same moment, meets the unique provider and event id: it waits for
    the first transaction, then finds the event stored. Should applying fail, all of it is
    rolled back and the event is stored alone, unprocessed, before the error goes on: it is
    not lost, and its next delivery (or ``events_drain``) applies it."""
    outcomes = []
    for event in events:
        fields = _fields(provider_name, event, organization)
        inserted = False
        try:
            with transaction.atomic():
                row = ProviderEvent.objects.create(**fields)
                inserted = True
                (outcome,), moved = _apply_rows([row], organization)
        except Exception as exc:
            if inserted:
                # Applying failed and was rolled back: keep the event, unprocessed.
                try:
                    with transaction.atomic():
                        ProviderEvent.objects.create(**fields)
                except IntegrityError:
                    pass  # a doubled delivery stored it meanwhile
                raise
            if not isinstance(exc, IntegrityError):
                raise
            with scopes_disabled():
                row = ProviderEvent.objects.get(provider=provider_name, event_id=event.event_id)
            if row.processed_at is not None or row.organization_id != organization.pk:
                outcomes.append("duplicate")
                continue
            outcome = event_process(row.pk)
        else:
            waiting_apply(moved)
        outcomes.append(outcome)
    return outcomes


def event_process(event_pk: int) -> str:
    """Apply one stored event, once: its row is locked and re-checked ("duplicate" when it
    has been applied meanwhile). An event that still waits for what it follows stays
    unprocessed."""
    with transaction.atomic():
        with scopes_disabled():
            row = ProviderEvent.objects.select_for_update().get(pk=event_pk)
        if row.processed_at is not None:
            return "duplicate"
        (outcome,), moved = _apply_rows([row])
    waiting_apply(moved)
    return outcome


def events_apply_pending(limit: int = BATCH) -> int:
    """Apply up to ``limit`` stored events that nobody has tried yet, oldest first, in one
    transaction; returns how many were taken. On PostgreSQL the rows are claimed with
    ``SKIP LOCKED``: workers running it at once share the work. Should the batch fail, it is
    rolled back and its events are applied one by one; one that fails alone keeps the error
    as its outcome (and is tried again by ``events_retry``)."""
    moved: set[int] = set()
    with transaction.atomic():
        with scopes_disabled():
            rows = list(
                ProviderEvent.objects.select_for_update(skip_locked=True)
                .filter(processed_at__isnull=True, outcome="")
                .order_by("pk")[:limit]
            )
        if not rows:
            return 0
        try:
            with transaction.atomic():
                _, moved = _apply_rows(rows)
        except Exception:
            logger.exception("a batch of payment events failed: applying them one by one")
            moved = _apply_alone(rows)
    waiting_apply(moved)
    return len(rows)


def _apply_alone(rows: list[ProviderEvent]) -> set[int]:
    """Apply each event in its own savepoint, from its row as stored (the failed batch's
    changes to the row objects are gone with it); one that raises keeps the error."""
    moved: set[int] = set()
    for row in rows:
        with scopes_disabled():
            row.refresh_from_db()
        try:
            with transaction.atomic():
                _, moved_now = _apply_rows([row])
            moved |= moved_now
        except Exception as exc:
            _failed(row, exc)
    return moved


def _failed(row: ProviderEvent, exc: Exception) -> None:
    """Keep the error as the event's outcome (``events_retry`` tries it again later) and tie
    it to its payment when that can be found, so that the desk shows it with its events."""
    logger.error(
        "payment event not applied",
        exc_info=exc,
        extra={"event": row.pk, "provider": row.provider},
    )
    payment_id = None
    try:
        with transaction.atomic():
            [payment] = _payments_of([row], None)
            payment_id = payment.pk if payment is not None else None
    except Exception:  # the error is what matters here; the link is a convenience
        logger.exception("the payment of a failed event could not be read", extra={"event": row.pk})
    with scopes_disabled():
        ProviderEvent.objects.filter(pk=row.pk).update(
            outcome=f"{ERROR}: {type(exc).__name__}: {exc}"[:300],
            attempts=F("attempts") + 1,
            payment_id=payment_id,
        )


def events_drain(now: datetime.datetime | None = None, *, limit: int = BATCH) -> int:
    """Apply every stored event nobody has tried yet, a batch at a time; returns how many."""
    total = 0
    while True:
        taken = events_apply_pending(limit)
        total += taken
        if taken < limit:
            return total


def events_retry(now: datetime.datetime | None = None) -> int:
    """Put events whose applying raised back in line for ``events_drain`` (at most
    ``MAX_ATTEMPTS`` tries each), then drain. Returns how many were put back."""
    with scopes_disabled():
        again = ProviderEvent.objects.filter(
            processed_at__isnull=True, outcome__startswith=f"{ERROR}:", attempts__lt=MAX_ATTEMPTS
        ).update(outcome="")
    if again:
        events_drain()
    return again


def _payment_number(row: ProviderEvent) -> int | None:
    """The OpenAR payment id the event carries (its metadata), if it is a plain number."""
    text = str(row.payload.get("openar_payment_id") or "")
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else None


def _payments_of(rows: list[ProviderEvent], organization: Organization | None) -> list[Payment | None]:
    """Each event's payment, locked (only its own row: not its customer's or organization's,
    which other payments' events need too), among the payments of the organization whose
    credentials verified the event, never another's. Every payment the batch names is read
    and locked in one query, in id order, so that two batches lock the payments they share
    in the same order; with its customer. Events that name the same payment get the same
    object. ``organization``: the events' organization when the caller has it (not read
    again)."""
    wanted = Q()
    for row in rows:
        if row.organization_id is None:
            continue
        ours = Q(organization_id=row.organization_id, provider=row.provider)
        if row.provider_payment_id:
            # Looked up through the unique index, whose condition is repeated here: SQLite
            # uses a partial index only for a query that says so.
            wanted |= ours & Q(provider_payment_id=row.provider_payment_id) & ~Q(provider_payment_id="")
        if (number := _payment_number(row)) is not None:
            wanted |= ours & Q(pk=number)
    same = (
        organization
        if organization is not None and all(r.organization_id == organization.pk for r in rows)
        else None
    )
    by_provider_id: dict[tuple[int, str, str], Payment] = {}
    by_pk: dict[tuple[int, str, int], Payment] = {}
    if wanted:
        with scopes_disabled():
            found = (
                Payment.objects.select_for_update(of=("self",))
                .select_related("customer" if same is not None else "customer__organization")
                .filter(wanted)
                .order_by("pk")
            )
            for one in found:
                if one.provider_payment_id:
                    by_provider_id[(one.organization_id, one.provider, one.provider_payment_id)] = one
                by_pk[(one.organization_id, one.provider, one.pk)] = one
    result: list[Payment | None] = []
    for row in rows:
        payment: Payment | None = None
        if row.organization_id is not None:
            if row.provider_payment_id:
                payment = by_provider_id.get((row.organization_id, row.provider, row.provider_payment_id))
            number = _payment_number(row)
            if payment is None and number is not None:
                payment = by_pk.get((row.organization_id, row.provider, number))
        if payment is not None:
            customer = payment.customer
            if same is not None:
                customer.organization = same
            payment.organization = customer.organization
        result.append(payment)
    return result


def _apply_rows(
    rows: list[ProviderEvent], organization: Organization | None = None
) -> tuple[list[str], set[int]]:
    """Apply stored events, in order, inside the caller's transaction (which holds their
    rows); returns their outcomes and the payments that have settled (whose waiting events
    may now go on, once the caller has committed)."""
    payments = _payments_of(rows, organization)
    writes = Writes()
    writes.expect_settling(
        payment.pk
        for row, payment in zip(rows, payments, strict=True)
        if payment is not None and row.type == base.PAYMENT_SUCCEEDED
    )
    now = timezone.now()
    outcomes = []
    moved: set[int] = set()
    for row, payment in zip(rows, payments, strict=True):
        if payment is None:
            outcome = "no such payment"
        else:
            with scope(organization=payment.organization):
                before = payment.state
                quick = row.type in online.QUICK_KINDS and payment.saved_method_id is None
                if not quick:
                    writes.flush()
                outcome = online.event_apply(payment, row, writes)
                if not quick:
                    writes.flush()
                    # What it changed may have been written through another object (a
                    # refund reads the payment again): the batch's object reads it back.
                    with scopes_disabled():
                        payment.refresh_from_db(fields=REFRESHED)
                    if payment.saved_method_id is not None and payment.state != before:
                        from openar.payments.autopay import payment_outcome

                        payment_outcome(payment)  # autopay: a failure is counted and told
            # Only a settled payment lets waiting events go on.
            if payment.state != before and payment.state == Payment.State.SUCCEEDED:
                moved.add(payment.pk)
            row.organization_id = payment.organization_id
            row.payment = payment
        row.outcome = outcome[:300]
        row.processed_at = None if outcome.startswith(online.WAITING) else now
        outcomes.append(outcome)
    writes.flush()
    _rows_write(rows)
    return outcomes, moved


def _rows_write(rows: list[ProviderEvent]) -> None:
    rows_update(
        ProviderEvent,
        ["processed_at", "outcome", "organization", "payment"],
        [(row.processed_at, row.outcome, row.organization_id, row.payment_id, row.pk) for row in rows],
    )


def waiting_apply(payment_ids: Iterable[int]) -> None:
    """Apply the events that were waiting for these payments to move on (after the commit
    that moved them: a settled payment, a refund whose id is now known). One that raises
    keeps the error (``events_retry`` tries it again) and the others go on."""
    ids = sorted(payment_ids)
    if not ids:
        return
    with scopes_disabled():
        waiting = list(
            ProviderEvent.objects.filter(payment_id__in=ids, processed_at__isnull=True)
            .exclude(outcome="")
            .exclude(outcome__startswith=f"{ERROR}:")
            .order_by("received_at", "pk")
        )
    for row in waiting:
        try:
            event_process(row.pk)
        except Exception as exc:
            _failed(row, exc)
