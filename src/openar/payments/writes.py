"""What applying provider events writes, gathered and written together.

Settling a payment writes a handful of rows: its allocations, its invoices' open amounts,
its new state, a timeline entry, an audit event and a queued receipt. Applying events one
at a time, each of those is a statement per payment. ``Writes`` keeps them in memory while a
batch of events is applied (``openar.payments.events``) and ``flush`` writes each kind in
one statement for the whole batch, inside the caller's transaction, with the same checks:
an invoice's open amount is computed in Decimal by the ledger's ``invoice_change`` and
written only if it still holds the figure it was computed from (``invoices_write``).

The caller holds the locks (payments, and the invoices through ``targets_of``) and flushes
before any code that reads or writes the same rows directly (``invoice_apply``, refunds,
returns): what is in memory and what is stored then agree again. ``flush`` forgets the
invoices it read, so that a payment settled after it reads them afresh.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, router, transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from openar.billing.ledger import invoice_change, invoices_write
from openar.billing.models import Invoice
from openar.core.audit import log_events
from openar.core.models import AuditEvent
from openar.customers.models import Activity
from openar.payments.models import Allocation, Payment, PaymentTarget


class Writes:
    def __init__(self) -> None:
        self.now = timezone.now()  # the batch's moment: one UPDATE for all it settles
        self.activities: list[Activity] = []
        self.audits: list[AuditEvent] = []
        self.allocations: list[Allocation] = []
        self.receipts: list[int] = []
        self._invoices: dict[int, tuple[Invoice, Decimal]] = {}  # changed: (invoice, figure read)
        self._payments: dict[int, dict[str, Any]] = {}  # changed fields by payment
        self._settling: set[int] = set()
        self._targets: dict[int, list[PaymentTarget]] | None = None

    # --- reading ---------------------------------------------------------------------------

    def expect_settling(self, payment_ids: Iterable[int]) -> None:
        """The payments this batch may settle: their targets and invoices are read (and the
        invoices locked) in one query when the first of them is settled."""
        self._settling.update(payment_ids)

    def targets_of(self, payment: Payment) -> list[PaymentTarget]:
        """What the payment was for, in the order it was chosen, with its invoices locked.
        Invoices are locked in id order in one query, as ``invoices_lock`` does, so that
        concurrent batches never deadlock; an invoice that several payments of the batch
        pay is one object, so each sees what the one before it left open."""
        if self._targets is None or payment.pk not in self._settling:
            if self._invoices:
                self.flush()  # before the invoices are read again: nothing in memory is lost
            self._settling.add(payment.pk)
            with scopes_disabled():
                rows = list(
                    PaymentTarget.objects.filter(payment_id__in=sorted(self._settling))
                    .select_related("invoice")
                    .select_for_update(of=("invoice",))
                    .order_by("invoice_id")
                )
            invoices: dict[int, Invoice] = {}
            self._targets = defaultdict(list)
            for target in sorted(rows, key=lambda row: row.pk):
                target.invoice = invoices.setdefault(target.invoice_id, target.invoice)
                self._targets[target.payment_id].append(target)
        return self._targets.get(payment.pk, [])

    # --- changing --------------------------------------------------------------------------

    def invoice_apply(self, invoice: Invoice, amount: Decimal) -> None:
        """``invoice_apply``, written at the next flush."""
        self._invoices.setdefault(invoice.pk, (invoice, invoice.open_amount))
        invoice_change(invoice, amount)

    def payment_set(self, payment: Payment, **fields: Any) -> None:
        """Change the payment's fields, in memory now and stored at the next flush."""
        for name, value in fields.items():
            setattr(payment, name, value)
        self._payments.setdefault(payment.pk, {}).update(fields)

    # --- writing ---------------------------------------------------------------------------

    def flush(self) -> None:
        with scopes_disabled():
            invoices_write(self._invoices)
            Allocation.objects.bulk_create(self.allocations, batch_size=500)
            by_change: dict[tuple[tuple[str, Any], ...], list[int]] = defaultdict(list)
            for payment_id, fields in self._payments.items():
                by_change[tuple(sorted(fields.items()))].append(payment_id)
            for change, payment_ids in by_change.items():
                Payment.objects.filter(pk__in=payment_ids).update(**dict(change))
            Activity.objects.bulk_create(self.activities, batch_size=500)
        log_events(self.audits)
        receipts_queue(self.receipts)
        self.activities, self.audits, self.allocations, self.receipts = [], [], [], []
        self._invoices, self._payments = {}, {}
        self._targets = None  # read again: the code that runs next may change them


def receipts_queue(payment_ids: list[int]) -> None:
    """Queue the receipts of payments that went through (a task: a PDF and an email are no
    part of settling a payment), called inside the transaction that settles them. A queue in
    the same database (django-tasks' database backend, production's) takes it in that
    transaction: committed with the payments or not at all, and no worker sees it before.
    Any other backend gets it once the payments are committed (the tests' immediate backend
    runs the task at once)."""
    if not payment_ids:
        return
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    from openar.payments.tasks import send_receipts

    ids = list(payment_ids)
    same_database = (
        isinstance(send_receipts.get_backend(), DatabaseBackend)
        and router.db_for_write(DBTaskResult) == DEFAULT_DB_ALIAS
    )
    if same_database and transaction.get_connection().in_atomic_block:
        send_receipts.enqueue(ids)
    else:
        transaction.on_commit(lambda: send_receipts.enqueue(ids))
