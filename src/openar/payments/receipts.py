"""Receipts of payments: what a payment paid (the data), the PDF (ReportLab, in the style of
the statements), and the email that carries it once the money has arrived.

``receipt_send`` runs as a task once the payment's transaction has committed
(``online._settle`` queues it inside that transaction with the database task queue, after
it with any other): the payment is settled whatever happens here, so a receipt that cannot
be written or sent is logged, never raised.
"""

from __future__ import annotations

import datetime
import io
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone
from django_scopes import scope, scopes_disabled
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table

from openar.billing.models import Document, Invoice
from openar.billing.services import document_store
from openar.billing.statements import _escape, _footer, _table_style  # a receipt looks like a statement
from openar.core.money import format_money
from openar.customers.models import Contact
from openar.identity.magic import magic_link_create
from openar.identity.models import MagicLink
from openar.notifications.models import Channel
from openar.notifications.rendering import text_to_html
from openar.notifications.services import Draft, address_of, message_create
from openar.payments.models import Allocation, Payment
from openar.payments.online import unapplied

logger = logging.getLogger(__name__)

# States a receipt can be given for: the money arrived (a refund later is shown on it).
RECEIPT_STATES = (Payment.State.SUCCEEDED, Payment.State.REFUNDED)


@dataclass(frozen=True)
class ReceiptLine:
    invoice_id: int
    number: str
    due_date: datetime.date
    paid: Decimal
    still_open: Decimal  # what the invoice has open now, after this payment


@dataclass(frozen=True)
class Receipt:
    payment_id: int
    organization_name: str
    customer_name: str
    customer_number: str
    address_lines: list[str]
    day: datetime.date
    method: str
    reference: str
    currency: str
    amount: Decimal
    fee: Decimal
    refunded: Decimal
    unapplied: Decimal
    lines: list[ReceiptLine]

    @property
    def invoices_total(self) -> Decimal:
        return sum((line.paid for line in self.lines), Decimal(0))

    @property
    def still_open(self) -> list[ReceiptLine]:
        """The invoices this payment paid that are not paid in full yet."""
        return [line for line in self.lines if line.still_open > 0]


def fee_label(fee: Decimal, method_label: str) -> str:
    """ "Card fee" or "Discount for paying by ACH bank debit": a negative fee is a discount."""
    return f"{method_label} fee" if fee >= 0 else f"Discount for paying by {method_label}"


def receipt_for(payment: Payment) -> Receipt:
    """What ``payment`` paid: its active allocations (one line per invoice, with what the
    invoice still has open now), its fee and the credit it left on the account. Runs in the
    payment's organization's scope."""
    customer = payment.customer
    organization = customer.organization
    paid: dict[int, Decimal] = {}
    for invoice_id, amount in (
        Allocation.objects.filter(payment=payment, reversed_at__isnull=True)
        .order_by("pk")
        .values_list("invoice_id", "amount")
    ):
        paid[invoice_id] = paid.get(invoice_id, Decimal(0)) + amount
    invoices = Invoice.objects.in_bulk(list(paid))
    lines = sorted(
        (
            ReceiptLine(
                invoice_id=invoice_id,
                number=invoices[invoice_id].number,
                due_date=invoices[invoice_id].due_date,
                paid=amount,
                still_open=invoices[invoice_id].open_amount,
            )
            for invoice_id, amount in paid.items()
        ),
        key=lambda line: (line.due_date, line.invoice_id),
    )
    when = payment.settled_at or payment.received_at
    return Receipt(
        payment_id=payment.pk,
        organization_name=organization.name,
        customer_name=customer.name,
        customer_number=customer.number,
        address_lines=customer.address_lines,
        day=timezone.localtime(when, organization.tz).date(),
        method=str(payment.get_method_display()),
        reference=payment.reference or payment.provider_payment_id,
        currency=payment.currency,
        amount=payment.amount,
        fee=payment.fee_amount,
        refunded=payment.refunded_amount,
        unapplied=unapplied(payment),
        lines=lines,
    )


def receipt_filename(receipt: Receipt) -> str:
    return f"receipt-{receipt.customer_number}-{receipt.day:%Y-%m-%d}-{receipt.payment_id}.pdf"


def render_receipt_pdf(receipt: Receipt) -> bytes:
    """An A4 receipt: who paid whom, when and how, the amount and fee, then each invoice paid
    with what it still has open."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"Payment receipt {receipt.customer_number} {receipt.day:%Y-%m-%d}",
        author=receipt.organization_name,
    )
    styles = getSampleStyleSheet()
    right = ParagraphStyle("right", parent=styles["Normal"], alignment=TA_RIGHT)
    money = receipt.currency

    def amount(value: Decimal) -> Paragraph:
        return Paragraph(format_money(value, money), right)

    story: list = [
        Paragraph(_escape(receipt.organization_name), styles["Title"]),
        Paragraph("Payment receipt", styles["Heading2"]),
        Paragraph(f"Received {receipt.day:%d %B %Y}", styles["Normal"]),
        Spacer(1, 4 * mm),
        Paragraph(
            f"<b>{_escape(receipt.customer_name)}</b> · account {_escape(receipt.customer_number)}",
            styles["Normal"],
        ),
    ]
    story += [Paragraph(_escape(line), styles["Normal"]) for line in receipt.address_lines]
    story.append(Spacer(1, 6 * mm))

    facts: list[list[object]] = [["Method", receipt.method]]
    if receipt.reference:
        facts.append(["Reference", receipt.reference])
    facts.append(["Invoices", amount(receipt.amount - receipt.fee)])
    if receipt.fee:
        facts.append([fee_label(receipt.fee, receipt.method), amount(receipt.fee)])
    facts.append(["Amount paid", amount(receipt.amount)])
    if receipt.refunded:
        facts.append(["Refunded since", amount(receipt.refunded)])
    table = Table(facts, hAlign="LEFT", colWidths=[60 * mm, 50 * mm])
    table.setStyle(_table_style())
    story += [table, Spacer(1, 6 * mm), Paragraph("Invoices paid", styles["Heading3"])]

    rows: list[list[object]] = [["Invoice", "Due", "Paid", "Still open"]]
    for line in receipt.lines:
        rows.append([line.number, f"{line.due_date:%Y-%m-%d}", amount(line.paid), amount(line.still_open)])
    if not receipt.lines:
        rows.append(["No invoice: the whole amount is credit on the account.", "", "", ""])
    table = Table(rows, repeatRows=1, hAlign="LEFT", colWidths=[50 * mm, 30 * mm, 40 * mm, 40 * mm])
    table.setStyle(_table_style())
    story.append(table)
    if receipt.unapplied > 0:
        story += [
            Spacer(1, 4 * mm),
            Paragraph(
                f"{format_money(receipt.unapplied, money)} is kept as credit on your account.",
                styles["Normal"],
            ),
        ]
    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)
    return buffer.getvalue()


def _recipient(payment: Payment) -> Contact | None:
    """Who gets the receipt: the contact who paid, else the customer's primary contact with
    an email address (None: the customer's own address, if any)."""
    if payment.contact is not None and payment.contact.email:
        return payment.contact
    return (
        Contact.objects.filter(customer=payment.customer)
        .exclude(email="")
        .order_by("-is_primary", "pk")
        .first()
    )


def _pay_rest_link(contact: Contact, receipt: Receipt, today: datetime.date) -> str:
    """A sign-in link that opens the pay page showing what is left: the one invoice, the
    past-due invoices, or (when some of it is not due yet) the account."""
    rest = receipt.still_open
    if len(rest) == 1:
        invoice = Invoice.objects.get(pk=rest[0].invoice_id)
        issued = magic_link_create(
            contact=contact, scope_=MagicLink.Scope.INVOICE, invoice=invoice, target="/portal/pay/"
        )
    elif all(line.due_date < today for line in rest):
        issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.PAST_DUE, target="/portal/pay/")
    else:
        issued = magic_link_create(contact=contact, scope_=MagicLink.Scope.ACCOUNT, target="/portal/pay/")
    return issued.url


def receipt_text(receipt: Receipt, *, greeting: str, link: str) -> str:
    money = receipt.currency
    parts = [
        f"Hello {greeting},",
        f"Thank you: {receipt.organization_name} received your payment of "
        f"{format_money(receipt.amount, money)} by {receipt.method} on {receipt.day:%d %B %Y}.",
    ]
    if receipt.lines:
        paid = "\n".join(
            f"- {line.number}: {format_money(line.paid, money)} "
            + (
                f"({format_money(line.still_open, money)} still open)"
                if line.still_open
                else "(paid in full)"
            )
            for line in receipt.lines
        )
        parts.append(f"It paid:\n{paid}")
    if receipt.fee:
        parts.append(f"{fee_label(receipt.fee, receipt.method)}: {format_money(receipt.fee, money)}.")
    if receipt.unapplied > 0:
        parts.append(f"{format_money(receipt.unapplied, money)} is kept as credit on your account.")
    rest = receipt.still_open
    if rest:
        left = sum((line.still_open for line in rest), Decimal(0))
        numbers = ", ".join(line.number for line in rest)
        how = f"To pay the rest, sign in here:\n{link}" if link else "To pay the rest, sign in to the portal."
        parts.append(f"Still open on {numbers}: {format_money(left, money)}. {how}")
    parts.append("The receipt is attached (PDF).")
    parts.append(receipt.organization_name)
    return "\n\n".join(parts) + "\n"


def receipt_send(*, payment_id: int) -> None:
    """Keep the receipt as a document of the customer and email it to the payer. Never
    raises: the payment has already been settled and committed."""
    try:
        _receipt_send(payment_id)
    except Exception:
        logger.exception("payment receipt not sent", extra={"payment_id": payment_id})


def _receipt_send(payment_id: int) -> None:
    with scopes_disabled():
        payment = (
            Payment.objects.select_related("customer__organization", "contact").filter(pk=payment_id).first()
        )
    if payment is None or payment.state not in RECEIPT_STATES:
        return
    customer = payment.customer
    organization = customer.organization
    with scope(organization=organization):
        receipt = receipt_for(payment)
        document = document_store(
            customer=customer,
            kind=Document.Kind.ATTACHMENT,
            title=f"Receipt {receipt.day:%Y-%m-%d}",
            filename=receipt_filename(receipt),
            content=render_receipt_pdf(receipt),
            content_type="application/pdf",
            visible_to_customer=True,
        )
        contact = _recipient(payment)
        if not address_of(contact, customer, Channel.EMAIL):
            logger.info("payment receipt kept, not emailed: no address", extra={"payment_id": payment_id})
            return
        link = ""
        if receipt.still_open and contact is not None:
            link = _pay_rest_link(contact, receipt, organization.today())
        text = receipt_text(receipt, greeting=contact.name if contact else customer.name, link=link)
        paid = format_money(receipt.amount, receipt.currency)
        subject = f"Receipt: your payment of {paid} to {organization.name}"
        message_create(
            customer=customer,
            channel=Channel.EMAIL,
            draft=Draft(subject, text, text_to_html(text), links=(link,) if link else ()),
            contact=contact,
            invoices=list(Invoice.objects.filter(pk__in=[line.invoice_id for line in receipt.lines])),
            attachments=[document],
        )
