"""Statements of account: the data (one selector) and the PDF (ReportLab)."""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from openar.billing.models import Invoice
from openar.billing.selectors import Aging, customer_aging
from openar.core.money import format_money
from openar.customers.models import Customer


@dataclass(frozen=True)
class StatementLine:
    number: str
    po_number: str
    issue_date: datetime.date
    due_date: datetime.date
    currency: str
    total: Decimal
    open_amount: Decimal
    days_past_due: int


@dataclass(frozen=True)
class Statement:
    organization_name: str
    customer_name: str
    customer_number: str
    address_lines: list[str]
    as_of: datetime.date
    aging: list[Aging]
    lines: list[StatementLine]


def statement_for(customer: Customer, today: datetime.date) -> Statement:
    """Every open invoice of the customer, oldest due first, with the aging per currency."""
    invoices = (
        Invoice.objects.filter(customer=customer, open_amount__gt=0)
        .order_by("due_date", "pk")
        .values_list("number", "po_number", "issue_date", "due_date", "currency", "total", "open_amount")
    )
    lines = [
        StatementLine(number, po, issued, due, currency, total, open_amount, max((today - due).days, 0))
        for number, po, issued, due, currency, total, open_amount in invoices
    ]
    return Statement(
        organization_name=customer.organization.name,
        customer_name=customer.name,
        customer_number=customer.number,
        address_lines=customer.address_lines,
        as_of=today,
        aging=customer_aging(customer, today),
        lines=lines,
    )


def render_statement_pdf(statement: Statement) -> bytes:
    """An A4 statement: header, aging summary per currency, then the open invoices in a
    table whose header repeats on every page."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"Statement of account {statement.customer_number} {statement.as_of:%Y-%m-%d}",
        author=statement.organization_name,
    )
    styles = getSampleStyleSheet()
    right = ParagraphStyle("right", parent=styles["Normal"], alignment=TA_RIGHT)
    story: list = [
        Paragraph(statement.organization_name, styles["Title"]),
        Paragraph("Statement of account", styles["Heading2"]),
        Paragraph(f"As of {statement.as_of:%d %B %Y}", styles["Normal"]),
        Spacer(1, 4 * mm),
        Paragraph(
            f"<b>{_escape(statement.customer_name)}</b> · account {statement.customer_number}",
            styles["Normal"],
        ),
    ]
    story += [Paragraph(_escape(line), styles["Normal"]) for line in statement.address_lines]
    story.append(Spacer(1, 6 * mm))

    for aging in statement.aging:
        story.append(
            Paragraph(
                f"Balance due: <b>{format_money(aging.balance, aging.currency)}</b> · "
                f"past due: <b>{format_money(aging.past_due, aging.currency)}</b>",
                styles["Normal"],
            )
        )
        header = [label for _, label, _ in aging.bucket_rows]
        values = [format_money(amount, aging.currency) for _, _, amount in aging.bucket_rows]
        table = Table([header, values], hAlign="LEFT", colWidths=[34 * mm] * 5)
        table.setStyle(_table_style())
        story += [Spacer(1, 2 * mm), table, Spacer(1, 6 * mm)]

    rows: list[list[object]] = [["Invoice", "PO", "Issued", "Due", "Days late", "Total", "Open"]]
    for line in statement.lines:
        rows.append(
            [
                line.number,
                line.po_number,
                f"{line.issue_date:%Y-%m-%d}",
                f"{line.due_date:%Y-%m-%d}",
                str(line.days_past_due) if line.days_past_due else "",
                Paragraph(format_money(line.total, line.currency), right),
                Paragraph(format_money(line.open_amount, line.currency), right),
            ]
        )
    if not statement.lines:
        rows.append(["Nothing is open. Thank you!", "", "", "", "", "", ""])
    table = Table(
        rows,
        repeatRows=1,
        hAlign="LEFT",
        colWidths=[26 * mm, 28 * mm, 22 * mm, 22 * mm, 17 * mm, 29 * mm, 29 * mm],
    )
    table.setStyle(_table_style())
    story.append(Paragraph("Open invoices", styles["Heading3"]))
    story.append(table)
    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)
    return buffer.getvalue()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _table_style() -> TableStyle:
    return TableStyle(
        [
            ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
            ("FONTSIZE", (0, 0), (-1, -1), 8.5),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef2f7")),
            ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#94a3b8")),
            ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#e2e8f0")),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
    )


def _footer(canvas: Any, doc: Any) -> None:
    canvas.saveState()
    canvas.setFont("Helvetica", 8)
    canvas.setFillColor(colors.HexColor("#475569"))
    canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"Page {doc.page}")
    canvas.restoreState()
