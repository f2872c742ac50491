"""Services that issue invoices and credit notes. Each runs in one transaction and writes
its audit event and timeline entry in it."""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from openar.billing.ledger import invoice_apply, invoices_lock
from openar.billing.models import CreditNote, Document, Invoice, InvoiceLine
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.core.files import atomic_with_files, file_saved
from openar.core.money import format_money, quantize
from openar.customers.models import Activity, Customer
from openar.customers.services import activity_record
from openar.identity.models import User
from openar.payments.models import Allocation


@dataclass(frozen=True)
class LineInput:
    description: str
    quantity: Decimal
    unit_price: Decimal
    tax_rate: Decimal = Decimal(0)
    sku: str = ""


def invoice_issue(
    *,
    customer: Customer,
    number: str,
    issue_date: datetime.date,
    due_date: datetime.date,
    lines: list[LineInput],
    currency: str | None = None,
    po_number: str = "",
    notes: str = "",
    actor: User | None = None,
) -> Invoice:
    """Issue an invoice to ``customer``; its totals are computed from the lines."""
    currency = (currency or customer.currency).upper()
    number = number.strip()
    if not number:
        raise ServiceError("An invoice needs a number.", field="number")
    if not lines:
        raise ServiceError("An invoice needs at least one line.", field="lines")
    if due_date < issue_date:
        raise ServiceError("The due date cannot be before the issue date.", field="due_date")
    rows: list[InvoiceLine] = []
    for position, line in enumerate(lines, start=1):
        if line.quantity <= 0:
            raise ServiceError(f"Line {position}: the quantity must be more than zero.", field="lines")
        if line.unit_price < 0 or line.tax_rate < 0:
            raise ServiceError(f"Line {position}: prices and tax rates cannot be negative.", field="lines")
        net = quantize(line.quantity * line.unit_price, currency)
        rows.append(
            InvoiceLine(
                organization_id=customer.organization_id,
                position=position,
                sku=line.sku,
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
                tax_rate=line.tax_rate,
                net_amount=net,
                tax_amount=quantize(net * line.tax_rate, currency),
            )
        )
    subtotal = sum((row.net_amount for row in rows), Decimal(0))
    tax_total = sum((row.tax_amount for row in rows), Decimal(0))
    total = subtotal + tax_total
    try:
        with transaction.atomic():
            invoice = Invoice.objects.create(
                organization_id=customer.organization_id,
                creditor_id=customer.creditor_id,
                customer=customer,
                number=number,
                po_number=po_number.strip(),
                issue_date=issue_date,
                due_date=due_date,
                currency=currency,
                subtotal=subtotal,
                tax_total=tax_total,
                total=total,
                open_amount=total,
                closed_at=None if total else timezone.now(),
                notes=notes,
            )
            for row in rows:
                row.invoice = invoice
            InvoiceLine.objects.bulk_create(rows)
            activity_record(
                customer=customer,
                kind=Activity.Kind.INVOICE,
                summary=f"Invoice {number} issued for {format_money(total, currency)}, "
                f"due {due_date:%Y-%m-%d}",
                invoice_id=invoice.pk,
                actor=actor,
            )
            log_event(
                "openar.invoice.issued",
                organization=customer.organization,
                obj=invoice,
                actor=actor,
                data={"number": number, "total": str(total), "currency": currency},
            )
    except IntegrityError as exc:
        if Invoice.objects.filter(number=number).exists():
            raise ServiceError(f"Invoice number {number} is already used.", field="number") from exc
        raise
    return invoice


def credit_note_issue(
    *,
    invoice: Invoice,
    number: str,
    amount: Decimal,
    reason: str,
    issue_date: datetime.date | None = None,
    actor: User | None = None,
) -> CreditNote:
    """Correct ``invoice`` by ``amount`` (at most what is still open on it)."""
    amount = quantize(amount, invoice.currency)
    if amount <= 0:
        raise ServiceError("A credit note must be for more than zero.", field="amount")
    if not reason.strip():
        raise ServiceError("Say why the invoice is credited.", field="reason")
    organization = invoice.customer.organization
    with transaction.atomic():
        locked = invoices_lock([invoice.pk])[invoice.pk]
        if CreditNote.objects.filter(number=number).exists():
            raise ServiceError(f"Credit note number {number} is already used.", field="number")
        if amount > locked.open_amount:
            raise ServiceError(
                f"Invoice {locked.number} has {format_money(locked.open_amount, locked.currency)} open; "
                f"a credit note cannot exceed it.",
                field="amount",
            )
        note = CreditNote.objects.create(
            organization_id=locked.organization_id,
            creditor_id=locked.creditor_id,
            customer_id=locked.customer_id,
            invoice=locked,
            number=number,
            issue_date=issue_date or organization.today(),
            currency=locked.currency,
            amount=amount,
            reason=reason.strip(),
        )
        Allocation.objects.create(
            organization_id=locked.organization_id, invoice=locked, credit_note=note, amount=amount
        )
        invoice_apply(locked, amount)
        activity_record(
            customer=locked.customer,
            kind=Activity.Kind.CREDIT,
            summary=f"Credit note {number} of {format_money(amount, locked.currency)} "
            f"applied to invoice {locked.number}",
            body=reason.strip(),
            invoice_id=locked.pk,
            actor=actor,
        )
        log_event(
            "openar.credit_note.issued",
            organization=organization,
            obj=note,
            actor=actor,
            data={"invoice": locked.number, "amount": str(amount)},
        )
    invoice.open_amount, invoice.closed_at = locked.open_amount, locked.closed_at
    return note


def document_store(
    *,
    customer: Customer,
    kind: str,
    title: str,
    filename: str,
    content: bytes,
    content_type: str,
    invoice: Invoice | None = None,
    visible_to_customer: bool = True,
    actor: User | None = None,
) -> Document:
    """Keep a document for ``customer`` (optionally about one of its invoices). The file is
    saved through Django's storage API under a name the server generates, before its row;
    should the transaction roll back, ``atomic_with_files`` blocks (this one, and the
    caller's) delete it again."""
    if kind not in Document.Kind.values:
        raise ServiceError(f"Unknown document type {kind!r}.", field="kind")
    if invoice is not None and invoice.customer_id != customer.pk:
        raise ServiceError("A document can only be attached to the customer's own invoice.", field="invoice")
    with atomic_with_files():
        document = Document(
            organization_id=customer.organization_id,
            customer=customer,
            invoice=invoice,
            kind=kind,
            title=title.strip()[:200],
            filename=filename.strip()[:200] or "document",
            content_type=content_type,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            visible_to_customer=visible_to_customer,
            uploaded_by=actor if actor is not None and actor.is_authenticated else None,
        )
        document.file.save(document.filename, ContentFile(content), save=False)
        file_saved(document.file.storage, str(document.file.name))
        document.save()
        log_event(
            "openar.document.stored",
            organization=customer.organization,
            obj=document,
            actor=actor,
            data={"kind": kind, "size": len(content), "sha256": document.sha256},
        )
    return document
