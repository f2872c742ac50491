"""The ledger: how invoices' open amounts move, and the check that recomputes them all.

An invoice's open amount is ``total - sum(active allocations)``. Services change it only
through ``invoice_apply`` inside the transaction that writes the allocation, so the stored
figure and the recomputed one never differ; ``ledger_check`` proves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from openar.billing.models import Invoice
from openar.core.bulk import rows_update
from openar.core.errors import LedgerError
from openar.core.money import format_money


def invoices_lock(ids: list[int]) -> dict[int, Invoice]:
    """Lock the invoices (in id order, so concurrent callers never deadlock) and return them.
    On SQLite, where rows cannot be locked, the writer's IMMEDIATE transaction serializes."""
    rows = Invoice.objects.select_for_update().filter(pk__in=sorted(set(ids))).order_by("pk")
    return {invoice.pk: invoice for invoice in rows}


def invoice_change(invoice: Invoice, amount: Decimal) -> None:
    """Take ``amount`` off the invoice's open amount in memory (negative re-opens it), with
    the ledger's checks: never below zero, never above the total. Raises LedgerError; the
    caller writes the figure (``invoice_apply`` at once, ``invoices_write`` for a batch)."""
    before = invoice.open_amount
    after = before - amount
    if after < 0:
        raise LedgerError(
            f"Invoice {invoice.number} has {format_money(before, invoice.currency)} open; "
            f"{format_money(amount, invoice.currency)} is more than that."
        )
    if after > invoice.total:
        raise LedgerError(f"Invoice {invoice.number} cannot be re-opened beyond its total.")
    invoice.open_amount = after
    invoice.closed_at = None if after else timezone.now()


def invoice_apply(invoice: Invoice, amount: Decimal) -> None:
    """Reduce the open amount by ``amount`` (negative re-opens it).

    The new figure is computed in Decimal here, never by SQL arithmetic (SQLite would do it in
    floating point), and written with a conditional UPDATE that re-checks the figure it was
    computed from: a stale caller changes nothing and gets a LedgerError.
    """
    before, closed_before = invoice.open_amount, invoice.closed_at
    invoice_change(invoice, amount)
    updated = Invoice.objects.filter(pk=invoice.pk, open_amount=before).update(
        open_amount=invoice.open_amount, closed_at=invoice.closed_at
    )
    if updated != 1:
        invoice.open_amount, invoice.closed_at = before, closed_before
        raise LedgerError(f"Invoice {invoice.number} changed meanwhile; try again.")


def invoices_write(changed: Mapping[int, tuple[Invoice, Decimal]]) -> None:
    """Write the open amounts of invoices changed in memory by ``invoice_change``, each given
    with the figure it had when read, as ``invoice_apply`` does for one: each row only if it
    still holds the figure read, all in one round trip; a stale caller gets a LedgerError
    (and its transaction, rolled back, changes nothing)."""
    if not changed:
        return
    rows = [
        (invoice.open_amount, invoice.closed_at, invoice.pk, before) for invoice, before in changed.values()
    ]
    matched = rows_update(Invoice, ["open_amount", "closed_at"], rows, where=["pk", "open_amount"])
    if matched != len(rows):
        raise LedgerError("An invoice changed meanwhile; try again.")


@dataclass(frozen=True)
class Mismatch:
    kind: str
    organization_id: int
    object_id: int
    number: str
    stored: Decimal | None
    computed: Decimal | None
    detail: str

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.number} (id {self.object_id}, organization {self.organization_id}): "
            f"{self.detail}; stored {self.stored}, computed {self.computed}"
        )


_CHECKS: list[tuple[str, str, str]] = [
    (
        "invoice",
        "open amount differs from total minus active allocations",
        """
        SELECT i.organization_id, i.id, i.number, i.open_amount,
               i.total - COALESCE(a.applied, 0)
        FROM billing_invoice i
        LEFT JOIN (SELECT invoice_id, SUM(amount) AS applied FROM payments_allocation
                   WHERE reversed_at IS NULL GROUP BY invoice_id) a ON a.invoice_id = i.id
        WHERE ABS(i.open_amount - (i.total - COALESCE(a.applied, 0))) > 0.00005 {org_i}
        """,
    ),
    (
        "invoice",
        "total differs from subtotal plus tax",
        """
        SELECT i.organization_id, i.id, i.number, i.total, i.subtotal + i.tax_total
        FROM billing_invoice i WHERE ABS(i.total - (i.subtotal + i.tax_total)) > 0.00005 {org_i}
        """,
    ),
    (
        "invoice",
        "subtotal and tax differ from the sum of the lines",
        """
        SELECT i.organization_id, i.id, i.number, i.subtotal + i.tax_total, l.net + l.tax
        FROM billing_invoice i
        JOIN (SELECT invoice_id, SUM(net_amount) AS net, SUM(tax_amount) AS tax
              FROM billing_invoiceline GROUP BY invoice_id) l ON l.invoice_id = i.id
        WHERE (ABS(i.subtotal - l.net) > 0.00005 OR ABS(i.tax_total - l.tax) > 0.00005) {org_i}
        """,
    ),
    (
        "invoice",
        "closed date does not match the open amount",
        """
        SELECT i.organization_id, i.id, i.number, i.open_amount, NULL
        FROM billing_invoice i
        WHERE ((i.open_amount = 0 AND i.closed_at IS NULL)
            OR (i.open_amount <> 0 AND i.closed_at IS NOT NULL)) {org_i}
        """,
    ),
    (
        "payment",
        "allocations exceed what the payment has for invoices (its amount without the method's fee, "
        "less refunds and what a dispute took back), or a payment that did not succeed is allocated",
        """
        SELECT p.organization_id, p.id, p.reference, p.amount, a.applied
        FROM payments_payment p
        JOIN (SELECT payment_id, SUM(amount) AS applied FROM payments_allocation
              WHERE reversed_at IS NULL AND payment_id IS NOT NULL GROUP BY payment_id) a
          ON a.payment_id = p.id
        WHERE (a.applied - (p.amount - p.fee_amount - p.refunded_amount - p.returned_amount) > 0.00005
               OR p.state <> 'succeeded') {org_p}
        """,
    ),
    (
        "credit note",
        "applied amount differs from the credit note",
        """
        SELECT c.organization_id, c.id, c.number, c.amount, COALESCE(a.applied, 0)
        FROM billing_creditnote c
        LEFT JOIN (SELECT credit_note_id, SUM(amount) AS applied FROM payments_allocation
                   WHERE reversed_at IS NULL AND credit_note_id IS NOT NULL
                   GROUP BY credit_note_id) a ON a.credit_note_id = c.id
        WHERE ABS(c.amount - COALESCE(a.applied, 0)) > 0.00005 {org_c}
        """,
    ),
    (
        "allocation",
        "currency differs between the invoice and what is applied to it",
        """
        SELECT a.organization_id, a.id, i.number, a.amount, NULL
        FROM payments_allocation a
        JOIN billing_invoice i ON i.id = a.invoice_id
        LEFT JOIN payments_payment p ON p.id = a.payment_id
        LEFT JOIN billing_creditnote c ON c.id = a.credit_note_id
        WHERE (COALESCE(p.currency, c.currency) <> i.currency
               OR COALESCE(p.customer_id, c.customer_id) <> i.customer_id
               OR a.organization_id <> i.organization_id) {org_a}
        """,
    ),
]


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value)).quantize(Decimal("0.0001"))


def ledger_check(organization_id: int | None = None) -> list[Mismatch]:
    """Recompute every balance from invoices, credit notes and allocations, set-based in SQL,
    and return each mismatch (an empty list means the ledger is consistent)."""
    mismatches: list[Mismatch] = []
    params: list[int] = []
    filters = {"org_i": "", "org_p": "", "org_c": "", "org_a": ""}
    if organization_id is not None:
        filters = {key: f"AND {key[-1]}.organization_id = %s" for key in filters}
        params = [organization_id]
    with connection.cursor() as cursor:
        for kind, detail, sql in _CHECKS:
            cursor.execute(sql.format(**filters), params)
            for org_id, object_id, number, stored, computed in cursor.fetchall():
                mismatches.append(
                    Mismatch(
                        kind, org_id, object_id, number or "", _decimal(stored), _decimal(computed), detail
                    )
                )
    return mismatches
