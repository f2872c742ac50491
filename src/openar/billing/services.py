"""Services that issue invoices and credit notes. Each runs in one transaction and writes
its audit event and timeline entry in it."""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile, File
from django.db import IntegrityError, transaction
from django.utils import timezone

from openar.billing.ledger import invoice_apply, invoices_lock
from openar.billing.models import CreditNote, Document, Invoice, InvoiceLine
from openar.core.audit import log_event
from openar.core.errors import ServiceError
from openar.core.files import atomic_with_files, file_saved
from openar.core.money import format_money, quantize
from openar.core.uploads import FORMATS, PDF
from openar.customers.models import Activity, Contact, Customer
from openar.customers.services import activity_record
from openar.identity.models import User
from openar.notifications.notices import tell_ar
from openar.payments.models import Allocation
from openar.tenants.models import Organization

if TYPE_CHECKING:
    from openar.core.uploads import CheckedUpload


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
    filename: str = "",
    content: bytes | None = None,
    content_type: str = "",
    upload: CheckedUpload | None = None,
    invoice: Invoice | None = None,
    visible_to_customer: bool = True,
    po_number: str = "",
    document_date: datetime.date | None = None,
    note: str = "",
    actor: User | None = None,
    contact: Contact | None = None,
    ip: str | None = None,
) -> Document:
    """Keep a document for ``customer`` (optionally about one of its invoices): either
    ``content`` (bytes the application made, e.g. a statement PDF) or an ``upload`` that
    ``openar.core.uploads.upload_check`` accepted (its file is streamed to storage; its
    name, type, size and digest are the checked ones unless given). The file is saved
    through Django's storage API under a name the server generates, before its row; should
    the transaction roll back, ``atomic_with_files`` blocks (this one, and the caller's)
    delete it again. The document is dated ``document_date``, else today in the
    organization's time zone. The audit event names the user (``actor``), else the contact
    of a sign-in link's session (``contact``), and the client's address (``ip``)."""
    if (content is None) == (upload is None):
        raise ServiceError("Give the document's content or an upload, not both.")
    if kind not in Document.Kind.values:
        raise ServiceError(f"Unknown document type {kind!r}.", field="kind")
    if invoice is not None and invoice.customer_id != customer.pk:
        raise ServiceError("A document can only be attached to the customer's own invoice.", field="invoice")
    if upload is not None:
        filename = filename or upload.filename
        content_type = content_type or upload.content_type
        size, digest = upload.size, upload.sha256
        upload.file.seek(0)
        stored: File = upload.file if isinstance(upload.file, File) else File(upload.file)
    else:
        assert content is not None  # noqa: S101  (checked above)
        size, digest = len(content), hashlib.sha256(content).hexdigest()
        stored = ContentFile(content)
    with atomic_with_files():
        document = Document(
            organization_id=customer.organization_id,
            customer=customer,
            invoice=invoice,
            kind=kind,
            title=title.strip()[:200],
            filename=safe_filename(filename)[:200] or "document",
            content_type=content_type or "application/octet-stream",
            size=size,
            sha256=digest,
            visible_to_customer=visible_to_customer,
            po_number=po_number.strip()[:60],
            document_date=document_date or customer.organization.today(),
            note=note.strip()[:500],
            uploaded_by=actor if actor is not None and actor.is_authenticated else None,
        )
        document.file.save(document.filename, stored, save=False)
        file_saved(document.file.storage, str(document.file.name))
        document.save()
        data: dict[str, object] = {"kind": kind, "size": size, "sha256": digest}
        if contact is not None:
            data["contact"] = contact.pk
        log_event(
            "openar.document.stored",
            organization=customer.organization,
            obj=document,
            actor=actor,
            data=data,
            ip=ip,
        )
    return document


@dataclass(frozen=True)
class Downloader:
    """Who fetches a file, for its audit event: the signed-in user (``actor``), else the
    contact of a sign-in link's session, and the client's address."""

    actor: User | None = None
    contact: Contact | None = None
    ip: str | None = None


def document_download_audit(
    *,
    organization: Organization,
    by: Downloader,
    document: Document | None = None,
    invoice: Invoice | None = None,
    invoice_pdf: str = "",
) -> None:
    """Record that ``by`` downloaded ``document``, or the PDF of ``invoice`` (``invoice_pdf``:
    "erp" when it is the ERP's document, "drawn" when drawn from the invoice's data, and then
    there is no ``document``). One insert, from ids already in hand; the front door calls it
    once it has found the file the person may have, so a refused request is not recorded."""
    if document is None and invoice is None:
        raise ValueError("A download is of a document or of an invoice's PDF.")
    data: dict[str, object] = {
        "document": document.pk if document is not None else None,
        "invoice": invoice.pk if invoice is not None else (document.invoice_id if document else None),
    }
    if invoice_pdf:
        data["invoice_pdf"] = invoice_pdf
    if by.contact is not None:
        data["contact"] = by.contact.pk
    log_event(
        "openar.document.downloaded",
        organization=organization,
        obj=document if document is not None else invoice,
        actor=by.actor,
        data=data,
        ip=by.ip,
    )


def safe_filename(name: str) -> str:
    """The last part of a name as a browser or an ERP sent it, without folders, control
    characters or characters that file systems refuse; never a dot file."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join("_" if ch in '<>:"|?*' or not ch.isprintable() else ch for ch in name)
    return " ".join(name.split()).lstrip(". ").strip()


def name_part(value: str) -> str:
    """A value that goes into a file name whole (an invoice or account number such as
    "2025/INV-7"): its path separators become "-", so that ``safe_filename`` keeps all of it
    rather than taking "INV-7" for a file in a folder "2025"."""
    return value.replace("/", "-").replace("\\", "-")


# What a customer may say an upload is: the kind it is kept as, and the title it gets when
# they give none.
CUSTOMER_UPLOAD_TYPES: dict[str, tuple[str, str]] = {
    "proof_of_delivery": (Document.Kind.PROOF_OF_DELIVERY, "Proof of delivery"),
    "purchase_order": (Document.Kind.PURCHASE_ORDER, "Purchase order"),
    "remittance_advice": (Document.Kind.ATTACHMENT, "Remittance advice"),
    "other": (Document.Kind.ATTACHMENT, "Document"),
}
CUSTOMER_UPLOAD_LABELS = {
    "proof_of_delivery": "Proof of delivery",
    "purchase_order": "Purchase order",
    "remittance_advice": "Remittance advice",
    "other": "Something else",
}


@dataclass(frozen=True)
class UploadDetails:
    """What the person uploading said about the files (the same for each file sent)."""

    kind: str
    title: str = ""
    invoice: Invoice | None = None
    po_number: str = ""
    document_date: datetime.date | None = None
    note: str = ""
    visible_to_customer: bool = True


def _titles(details: UploadDetails, default: str, uploads: list[CheckedUpload]) -> list[str]:
    """One title per file: the one given (followed by the file's name when several files
    share it), else the default followed by the file's name."""
    title = details.title.strip()
    if len(uploads) == 1:
        return [title or f"{default}: {safe_filename(uploads[0].filename)}"]
    base = title or default
    return [f"{base}: {safe_filename(upload.filename)}" for upload in uploads]


def documents_upload(
    *,
    customer: Customer,
    uploads: list[CheckedUpload],
    details: UploadDetails,
    actor: User | None = None,
    contact: Contact | None = None,
    by_customer: bool = False,
    ip: str | None = None,
) -> list[Document]:
    """Keep files that a person uploaded (each one already accepted by ``upload_check``),
    all or none, and say so on the customer's timeline. Each document's audit event names
    ``actor`` (else ``contact``, a sign-in link's) and the client's address ``ip``.

    ``by_customer``: the customer sent them from the portal. ``details.kind`` is then one of
    ``CUSTOMER_UPLOAD_TYPES``, the documents are visible to the customer, their note is on
    the timeline entry the customer sees too, and AR hears about them (an email to the
    assigned collector, else the organization, once committed).

    Otherwise staff sent them: any document kind (an invoice only as a PDF: it is then the
    invoice's PDF), visible as ``details`` says. Their note is for staff only: it is on an
    internal timeline entry (who added what); when the customer sees the documents, they
    also get a plain entry of their own ("Document added: <title>"), without the note."""
    if not uploads:
        raise ServiceError("Choose a file to upload.", field="files")
    if by_customer:
        if details.kind not in CUSTOMER_UPLOAD_TYPES:
            raise ServiceError("Say what the document is.", field="kind")
        kind, default = CUSTOMER_UPLOAD_TYPES[details.kind]
        label = CUSTOMER_UPLOAD_LABELS[details.kind].lower()
        visible = True
    else:
        if details.kind not in Document.Kind.values:
            raise ServiceError("Choose the document's type.", field="kind")
        kind, default = details.kind, Document.Kind(details.kind).label
        label = default.lower()
        visible = details.visible_to_customer
        if kind == Document.Kind.INVOICE:
            for upload in uploads:
                if upload.content_type != PDF:
                    what = FORMATS[upload.content_type].label if upload.content_type in FORMATS else "no PDF"
                    raise ServiceError(
                        f"An invoice is kept as its PDF: {safe_filename(upload.filename)} is "
                        f"{what}. Upload the invoice as a PDF, or "
                        "choose another type (an attachment, say) for this file.",
                        field="files",
                    )
    invoice = details.invoice
    if invoice is not None and invoice.customer_id != customer.pk:
        raise ServiceError("A document can only be attached to the customer's own invoice.", field="invoice")
    titles = _titles(details, default, uploads)
    with atomic_with_files():
        documents = [
            document_store(
                customer=customer,
                kind=kind,
                title=title,
                upload=upload,
                invoice=invoice,
                visible_to_customer=visible,
                po_number=details.po_number,
                document_date=details.document_date,
                note=details.note,
                actor=actor,
                contact=contact,
                ip=ip,
            )
            for upload, title in zip(uploads, titles, strict=True)
        ]
        names = ", ".join(document.filename for document in documents)
        about = f" for invoice {invoice.number}" if invoice is not None else ""
        count = f"{len(documents)} files" if len(documents) > 1 else "a file"
        if by_customer:
            who = (
                contact.name
                if contact is not None
                else (actor.get_full_name() if actor else "") or "The customer"
            )
            summary = f"{who} uploaded {count} ({label}){about}: {names}"
        else:
            who = (actor.get_full_name() if actor else "") or "Staff"
            summary = f"{who} added {count} ({label}){about}: {names}"
        invoice_id = invoice.pk if invoice is not None else None
        if by_customer:
            activity_record(
                customer=customer,
                kind=Activity.Kind.PORTAL,
                summary=summary,
                body=details.note.strip(),
                visibility=Activity.Visibility.CUSTOMER,
                actor=actor,
                invoice_id=invoice_id,
            )
        else:
            if visible:
                shown = ", ".join(document.title for document in documents)
                activity_record(
                    customer=customer,
                    kind=Activity.Kind.PORTAL,
                    summary=f"{'Documents' if len(documents) > 1 else 'Document'} added: {shown}",
                    visibility=Activity.Visibility.CUSTOMER,
                    actor=actor,
                    invoice_id=invoice_id,
                )
            activity_record(
                customer=customer,
                kind=Activity.Kind.NOTE,
                summary=summary,
                body=details.note.strip(),  # a staff note never leaves this internal entry
                visibility=Activity.Visibility.INTERNAL,
                actor=actor,
                invoice_id=invoice_id,
            )
        if by_customer:
            listing = "\n".join(f"- {d.title} ({d.filename}, {d.size:,} bytes)" for d in documents)
            note = f"\n\nTheir note: {details.note.strip()}" if details.note.strip() else ""
            tell_ar(
                customer,
                f"{customer.name} uploaded {count}{about}",
                f"{who} ({customer.name}, account {customer.number}) uploaded {count} "
                f"({label}){about} in the portal:\n\n{listing}{note}",
            )
    return documents


def document_visibility_set(*, document: Document, visible: bool, actor: User | None = None) -> Document:
    """Show a document to the customer or hide it from them. Nothing happens (and nothing is
    audited) when it already is as asked."""
    with transaction.atomic():
        locked = Document.objects.select_for_update().select_related("customer").get(pk=document.pk)
        if locked.visible_to_customer == visible:
            return locked
        updated = Document.objects.filter(pk=locked.pk, visible_to_customer=not visible).update(
            visible_to_customer=visible
        )
        if not updated:  # SQLite has no row locks: someone else changed it first
            locked.refresh_from_db()
            return locked
        locked.visible_to_customer = visible
        log_event(
            "openar.document.shown" if visible else "openar.document.hidden",
            organization=locked.customer.organization,
            obj=locked,
            actor=actor,
            data={"title": locked.title, "visible_to_customer": visible},
        )
    document.visible_to_customer = visible
    return locked
