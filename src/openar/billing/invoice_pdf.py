"""Every invoice has a PDF: the one the ERP supplied (a PDF ``Document`` of kind invoice
attached to it; another file of that kind is an ordinary document of the invoice), or else
one drawn here, on the fly, from the invoice's data with ReportLab: who issued it, the
customer, number, dates, PO, lines with their tax, totals, the payments (dated in the
organization's time zone) and credit notes applied, and what is still open; a closed
invoice says what closed it ("PAID", "Closed by credit", "Paid and credited"). Nothing is
stored: the drawn PDF always shows the ledger as it is now. Each download is audited."""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table

from openar.billing.models import Invoice
from openar.billing.presenters import document_response
from openar.billing.selectors import invoice_applied, invoice_erp_pdf
from openar.billing.services import Downloader, document_download_audit, name_part, safe_filename
from openar.billing.statements import _escape, _footer, _table_style
from openar.core.money import format_money
from openar.core.uploads import protect_download


@dataclass(frozen=True)
class PdfLine:
    description: str
    sku: str
    quantity: Decimal
    unit_price: Decimal
    tax_rate: Decimal
    net_amount: Decimal
    tax_amount: Decimal

    @property
    def total(self) -> Decimal:
        return self.net_amount + self.tax_amount


@dataclass(frozen=True)
class PdfApplied:
    kind: str  # "payment" or "credit_note"
    date: datetime.date
    label: str
    amount: Decimal
    reversed: bool


@dataclass(frozen=True)
class InvoicePdf:
    """Everything the drawn invoice shows, read once."""

    issuer_name: str
    issuer_contact: list[str]
    creditor_name: str  # who is owed, when it is not the issuer itself (an agency's client)
    customer_name: str
    customer_number: str
    customer_address: list[str]
    number: str
    po_number: str
    issue_date: datetime.date
    due_date: datetime.date
    currency: str
    lines: list[PdfLine]
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    applied: list[PdfApplied]
    open_amount: Decimal
    notes: str

    @property
    def paid(self) -> Decimal:
        return sum(
            (item.amount for item in self.applied if item.kind == "payment" and not item.reversed), Decimal(0)
        )

    @property
    def credited(self) -> Decimal:
        return sum(
            (item.amount for item in self.applied if item.kind == "credit_note" and not item.reversed),
            Decimal(0),
        )

    @property
    def status(self) -> str:
        """What closed the invoice, for its heading: "PAID" only when payments did, "Closed by
        credit" when credit notes did, "Paid and credited" when both; "" while anything is
        open (or for an invoice of nothing, which nobody paid)."""
        if self.open_amount or not self.total:
            return ""
        if self.paid and self.credited:
            return "Paid and credited"
        if self.paid:
            return "PAID"
        if self.credited:
            return "Closed by credit"
        return "Settled"


def invoice_pdf_data(invoice: Invoice) -> InvoicePdf:
    organization = invoice.customer.organization
    creditor = invoice.creditor
    customer = invoice.customer
    return InvoicePdf(
        issuer_name=organization.name,
        issuer_contact=[part for part in (organization.email, organization.phone) if part],
        creditor_name=creditor.name if creditor.name != organization.name else "",
        customer_name=customer.name,
        customer_number=customer.number,
        customer_address=customer.address_lines,
        number=invoice.number,
        po_number=invoice.po_number,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        currency=invoice.currency,
        lines=[
            PdfLine(
                line.description,
                line.sku,
                line.quantity,
                line.unit_price,
                line.tax_rate,
                line.net_amount,
                line.tax_amount,
            )
            for line in invoice.lines.all()
        ],
        subtotal=invoice.subtotal,
        tax_total=invoice.tax_total,
        total=invoice.total,
        applied=[
            PdfApplied(item.kind, item.date, item.label, item.amount, item.reversed)
            for item in invoice_applied(invoice)
        ],
        open_amount=invoice.open_amount,
        notes=invoice.notes,
    )


def _quantity(value: Decimal) -> str:
    text = f"{value:,.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _rate(value: Decimal) -> str:
    if not value:
        return ""
    text = f"{value * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def render_invoice_pdf(data: InvoicePdf) -> bytes:
    """An A4 invoice: issuer and customer, the facts, the lines (their header repeats on
    every page), the totals, then what was paid and credited and what is still open."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"Invoice {data.number}",
        author=data.issuer_name,
    )
    styles = getSampleStyleSheet()
    normal = styles["Normal"]
    right = ParagraphStyle("right", parent=normal, alignment=TA_RIGHT)

    def money(amount: Decimal) -> str:
        return format_money(amount, data.currency)

    story: list = [Paragraph(_escape(data.issuer_name), styles["Title"])]
    if data.issuer_contact:
        story.append(Paragraph(_escape(" · ".join(data.issuer_contact)), normal))
    if data.creditor_name:
        story.append(Paragraph(f"On behalf of {_escape(data.creditor_name)}", normal))
    heading = f"Invoice {_escape(data.number)}"
    if data.status:
        heading += f" · {data.status}"
    story += [Spacer(1, 4 * mm), Paragraph(heading, styles["Heading2"])]

    facts = [
        ["Bill to", "Invoice number", _escape(data.number)],
        ["", "Issued", f"{data.issue_date:%d %B %Y}"],
        ["", "Due", f"{data.due_date:%d %B %Y}"],
    ]
    if data.po_number:
        facts.append(["", "PO number", _escape(data.po_number)])
    facts.append(["", "Currency", data.currency])
    address = [f"<b>{_escape(data.customer_name)}</b>", f"Account {_escape(data.customer_number)}"]
    address += [_escape(line) for line in data.customer_address]
    facts[0][0] = Paragraph("<br/>".join(["Bill to", *address]), normal)
    table = Table(facts, hAlign="LEFT", colWidths=[80 * mm, 32 * mm, 62 * mm])
    table.setStyle(
        [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("SPAN", (0, 0), (0, len(facts) - 1)),
            ("FONTNAME", (1, 0), (1, -1), "Helvetica-Bold"),
            ("FONTSIZE", (0, 0), (-1, -1), 9),
        ]
    )
    story += [Spacer(1, 2 * mm), table, Spacer(1, 6 * mm)]

    rows: list[list[object]] = [["Description", "Qty", "Unit price", "Tax", "Net", "Total"]]
    for line in data.lines:
        description = _escape(line.description)
        if line.sku:
            description += f" <font size=7 color='#475569'>{_escape(line.sku)}</font>"
        tax = money(line.tax_amount) if line.tax_amount else ""
        if line.tax_rate:
            tax = f"{tax} ({_rate(line.tax_rate)})"
        rows.append(
            [
                Paragraph(description, normal),
                Paragraph(_quantity(line.quantity), right),
                Paragraph(money(line.unit_price), right),
                Paragraph(tax, right),
                Paragraph(money(line.net_amount), right),
                Paragraph(money(line.total), right),
            ]
        )
    lines_table = Table(
        rows, repeatRows=1, hAlign="LEFT", colWidths=[62 * mm, 16 * mm, 24 * mm, 28 * mm, 22 * mm, 22 * mm]
    )
    lines_table.setStyle(_table_style())
    story.append(lines_table)

    totals: list[list[object]] = [
        ["Subtotal", Paragraph(money(data.subtotal), right)],
        ["Tax", Paragraph(money(data.tax_total), right)],
        ["Total", Paragraph(f"<b>{money(data.total)}</b>", right)],
    ]
    if data.credited:
        totals.append(["Credited", Paragraph(f"−{money(data.credited)}", right)])
    if data.paid:
        totals.append(["Paid", Paragraph(f"−{money(data.paid)}", right)])
    totals.append(["Open", Paragraph(f"<b>{money(data.open_amount)}</b>", right)])
    totals_table = Table(totals, hAlign="RIGHT", colWidths=[30 * mm, 36 * mm])
    totals_table.setStyle(
        [
            ("FONTSIZE", (0, 0), (-1, -1), 9),
            ("LINEABOVE", (0, 2), (-1, 2), 0.6, "#94a3b8"),
            ("LINEABOVE", (0, -1), (-1, -1), 0.6, "#94a3b8"),
            ("FONTNAME", (0, 2), (0, 2), "Helvetica-Bold"),
            ("FONTNAME", (0, -1), (0, -1), "Helvetica-Bold"),
        ]
    )
    story += [Spacer(1, 3 * mm), totals_table]

    if data.applied:
        applied: list[list[object]] = [["Date", "Payment or credit note", "Amount"]]
        for item in data.applied:
            label = _escape(item.label) + (" (reversed)" if item.reversed else "")
            applied.append(
                [
                    f"{item.date:%Y-%m-%d}",
                    Paragraph(label, normal),
                    Paragraph(f"−{money(item.amount)}", right),
                ]
            )
        applied_table = Table(applied, repeatRows=1, hAlign="LEFT", colWidths=[24 * mm, 120 * mm, 30 * mm])
        applied_table.setStyle(_table_style())
        story += [
            Spacer(1, 6 * mm),
            Paragraph("Payments and credits", styles["Heading3"]),
            applied_table,
        ]
    if data.notes.strip():
        story += [Spacer(1, 6 * mm), Paragraph(_escape(data.notes).replace("\n", "<br/>"), normal)]
    if data.open_amount:
        story += [
            Spacer(1, 6 * mm),
            Paragraph(
                f"Please pay {money(data.open_amount)} by {data.due_date:%d %B %Y}, quoting invoice "
                f"{_escape(data.number)}.",
                normal,
            ),
        ]
    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)
    return buffer.getvalue()


def invoice_pdf_filename(invoice: Invoice) -> str:
    """The drawn PDF's name: the whole invoice number kept ("2025/7" gives "invoice-2025-7.pdf")."""
    return safe_filename(f"invoice-{name_part(invoice.number)}.pdf") or f"invoice-{invoice.pk}.pdf"


def invoice_pdf_response(invoice: Invoice, *, for_customer: bool, by: Downloader) -> HttpResponseBase:
    """The invoice's PDF as a download: the ERP's when it sent one (``for_customer``: one the
    customer may see), else drawn now from the invoice's data; audited as downloaded ``by``.
    ``invoice`` comes with its customer's organization."""
    organization = invoice.customer.organization
    supplied = invoice_erp_pdf(invoice, for_customer=for_customer)
    if supplied is not None:
        document_download_audit(
            organization=organization, by=by, document=supplied, invoice=invoice, invoice_pdf="erp"
        )
        return document_response(supplied)
    response = HttpResponse(render_invoice_pdf(invoice_pdf_data(invoice)), content_type="application/pdf")
    protect_download(response, filename=invoice_pdf_filename(invoice))
    document_download_audit(organization=organization, by=by, invoice=invoice, invoice_pdf="drawn")
    return response
